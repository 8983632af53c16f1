"""The command line of the comparison (``python -m calo_calib.compare``, a shim that calls :func:`main`).

    python -m calo_calib.compare runs/sweeps/calib/20261123-101500 [more dirs ...] [--out DIR]
    python -m calo_calib.compare --wandb my-team/calo_calib --group calib      # online only

Sources are directories holding run directories (a Hydra multirun directory, ``runs/``, one run
directory) or a W&B project/group. Prints the report (ranking and best configuration per bin, per
particle) and writes the files of :func:`calo_calib.comparison.outputs.write_outputs`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from calo_calib.comparison.loading import Unreadable, load_runs, load_wandb, wandb_online
from calo_calib.comparison.markdown import report_markdown
from calo_calib.comparison.outputs import write_outputs
from calo_calib.comparison.ranking import METRICS
from calo_calib.comparison.table import build_table


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m calo_calib.compare",
        description="Compare the runs of one or more sweeps: ranking by σ_rel, ratio to the BDT, plots, CSV.",
    )
    p.add_argument("dirs", nargs="*", type=Path, help="multirun directories, runs/, or run directories")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", help="also read the runs of this W&B project (online only)")
    p.add_argument("--group", help="W&B group (sweep name) to read with --wandb")
    p.add_argument(
        "--out", type=Path, help="output directory (default: <first existing dir>/comparison, else ./comparison)"
    )
    p.add_argument("--particle", help="only this particle (electron | photon_unconv | photon_conv)")
    p.add_argument(
        "--metric", choices=sorted(METRICS), default="sigma_rel", help="rank and plot by this (default: sigma_rel)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: exit status 0 if at least one run was read (unreadable ones are listed on stderr), else 1."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.dirs and not args.wandb:
        parser.error("give at least one directory or --wandb ENTITY/PROJECT")
    if args.group and not args.wandb:
        parser.error("--group needs --wandb ENTITY/PROJECT")
    # Default next to the first directory that exists (never create a missing one just for outputs).
    existing = [d for d in args.dirs if d.is_dir()]
    out_dir = args.out or ((existing[0] / "comparison") if existing else Path("comparison"))

    loaded = load_runs(args.dirs)
    if args.wandb:
        online, why = wandb_online()
        if online:
            loaded.extend(load_wandb(args.wandb, args.group, download_dir=out_dir / "wandb"))
        else:
            loaded.unreadable.append(Unreadable(f"wandb:{args.wandb}", f"W&B is not online ({why})"))
    for u in loaded.unreadable:
        print(f"not read: {u}", file=sys.stderr)
    sources = [str(d) for d in args.dirs] + ([f"wandb:{args.wandb}"] if args.wandb else [])
    if not loaded.runs:
        print(f"calo_calib.compare: error: no run could be read from {', '.join(sources)}", file=sys.stderr)
        return 1
    runs = [r for r in loaded.runs if not args.particle or r.particle == args.particle]
    if not runs:
        found = sorted({r.particle for r in loaded.runs})
        print(f"calo_calib.compare: error: no {args.particle} run among the {len(loaded.runs)} runs read "
              f"(particles: {', '.join(found)})", file=sys.stderr)  # fmt: skip
        return 1
    records = build_table(runs)
    print(f"{len(runs)} runs read from {', '.join(sources)}; {len(loaded.unreadable)} not read\n")
    print(report_markdown(records, loaded.unreadable, args.metric))
    written = write_outputs(records, out_dir, loaded.unreadable, args.metric)
    print(f"wrote {len(written)} files to {out_dir}")
    return 0

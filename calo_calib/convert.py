"""Convert cluster data between Parquet datasets, SALT HDF5 files and ROOT ntuples.

Usage::

    python -m calo_calib.convert SRC [SRC ...] DST [--to salt_h5|root|parquet] [--tree NAME]
        [--mapping YAML] [--max-cells N] [--truncate] [--norm PATH] [--overwrite] [--no-progress]

The input format is inferred from SRC: a directory of ``*.parquet`` shards or ``.parquet`` files ->
Parquet, ``.h5``/``.hdf5`` -> SALT HDF5, ``.root`` (or a directory of them) -> ROOT. The output format
is ``--to``, else inferred from DST's extension (``.h5``/``.hdf5``, ``.root``; anything else is a
Parquet dataset directory). SALT HDF5 <-> ROOT goes through a temporary Parquet dataset next to DST.
The code is in :mod:`calo_calib.io.conversion`; see ``docs/formats.md``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from calo_calib.io.conversion import FORMATS, convert

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m calo_calib.convert",
        description="Convert cluster data between Parquet datasets, SALT HDF5 and ROOT ntuples (docs/formats.md).",
    )
    p.add_argument("src", nargs="+", type=Path, help="input: dataset directory, .parquet, .h5/.hdf5 or .root file(s)")
    p.add_argument("dst", type=Path, help="output: .h5/.hdf5 file, .root file, or a dataset directory")
    p.add_argument("--to", choices=FORMATS, help="output format (default: from DST's extension)")
    p.add_argument("--tree", help="ROOT tree name (default: the mapping's 'tree', else 'clusters')")
    p.add_argument("--mapping", type=Path, help="ROOT column mapping YAML (default: same-name branches, "
                   "as conf/data/root_columns/default.yaml)")  # fmt: skip
    p.add_argument("--max-cells", type=int, help="SALT HDF5: width of the cells dataset (default: the largest n_cells)")
    p.add_argument("--truncate", action="store_true",
                   help="SALT HDF5: keep the max-cells most energetic cells of larger clusters instead of failing")  # fmt: skip
    p.add_argument("--norm", type=Path, help="SALT HDF5: norm dict YAML path (default: <dst stem>.norm.yaml)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (errors are printed, not raised)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        out = convert(
            args.src, args.dst, args.to, tree=args.tree, mapping=args.mapping, max_cells=args.max_cells,
            truncate=args.truncate, norm_path=args.norm, overwrite=args.overwrite, progress=not args.no_progress,
        )  # fmt: skip
    except (
        ValueError,
        TypeError,
        OSError,
    ) as err:  # OSError: FileNotFoundError, FileExistsError, IsADirectoryError, ...
        message = "; ".join(line.strip() for line in str(err).splitlines() if line.strip()) or type(err).__name__
        print(f"calo_calib.convert: error: {message}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

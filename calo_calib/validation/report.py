"""Validation of the fast simulation: dedicated samples, plots and a README table.

:func:`run_validation` generates dedicated samples with
:func:`calo_calib.simulation.simulate_table` (in worker processes, :mod:`~calo_calib.validation.samples`),
compares them with the reference numbers of :mod:`calo_calib.validation.targets` and writes to ``cfg.out``:

* PNG plots (conversion fraction, layer fractions, shower depth, response, resolution, eta-modulation,
  cell multiplicity, upstream-loss correlations, noise, and those of the sections);
* ``README.md`` (:mod:`~calo_calib.validation.readme`): one markdown table per topic with the columns
  "quantity | simulated | target | source tag | verdict/comment";
* ``results.json``: the same numbers, machine readable.

The analysis is one module per check family (:data:`CHECKS`, then the sections of
:mod:`~calo_calib.validation.sections`), each exposing ``run(v)`` on the :class:`Validation`. They run
in this order because they share the bootstrap generator ``v.rng`` and fill ``v.results`` and the
README sections in call order.

Deviations are reported, never tuned away: the verdict is computed from a tolerance stated in the
README, and every non-OK row is listed again at the end.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import json
import os
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from calo_calib.formatting import jsonable
from calo_calib.provenance import git_commit
from calo_calib.validation import readme
from calo_calib.validation.common import DEV, INFO, OK, PAL, Row, plotting, res_points
from calo_calib.validation.samples import Sample, build_samples, generate

__all__ = ["CHECKS", "DEV", "INFO", "OK", "PAL", "Row", "Sample", "Validation", "build_samples", "run_validation"]

CHECKS = (
    "calo_calib.validation.conversions",
    "calo_calib.validation.longitudinal",
    "calo_calib.validation.response",
    "calo_calib.validation.resolution",
    "calo_calib.validation.modulation",
    "calo_calib.validation.multiplicity",
    "calo_calib.validation.correlations",
    "calo_calib.validation.noise",
)
"""The report's own check families, in run order (before the sections)."""


class Validation:
    """The state the checks share: samples, rows, figures, notes, results and the bootstrap generator.

    ``data``: {sample key: worker summary (column -> (N,) array)}; ``sim_cfgs``: {sample key: resolved
    simulation config}; ``out``: the output directory of the figures.
    """

    def __init__(self, cfg: DictConfig, data: dict, sim_cfgs: dict, out: Path):
        self.cfg, self.data, self.sim_cfgs, self.out = cfg, data, sim_cfgs, out
        self.rows: list[Row] = []
        self.figures: dict[str, list[str]] = {}
        self.results: dict = {}
        self.notes: dict[str, list[str]] = {}
        self.plt, self.label, self.save_png = plotting()
        self.rng = np.random.default_rng(int(cfg.seed))
        self.nboot = int(cfg.bootstrap)
        any_cfg = next(iter(sim_cfgs.values()))
        self.det = any_cfg["detector"]

    def row(self, section, quantity, simulated, target, source, verdict, comment="") -> None:
        """Append one table row to ``section``."""
        self.rows.append(Row(section, quantity, simulated, target, source, verdict, comment))

    def note(self, section: str, text: str) -> None:
        """Append a paragraph shown above ``section``'s table."""
        self.notes.setdefault(section, []).append(text)

    def fig(self, section: str, name: str, fig) -> None:
        """Save ``fig`` as ``out/name`` (closes it) and show it under ``section``."""
        self.save_png(fig, self.out / name)  # (closes the figure)
        self.figures.setdefault(section, []).append(name)
        print(f"[validate] wrote {self.out / name}", flush=True)

    def res_points(self, particle: str = "electron") -> dict[tuple[float, float, float], dict]:
        """The fixed-point resolution samples of ``particle`` as {(mu, eta, E): data}."""
        return res_points(self.data, particle)

    def write_readme(self, meta: dict) -> Path:
        """``README.md`` of the rows, notes and figures so far (:func:`calo_calib.validation.readme.write_readme`)."""
        return readme.write_readme(self.out, self.rows, self.notes, self.figures, meta, self.cfg.eta_half_width)


def run_validation(cfg: DictConfig) -> Path:
    """Generate the validation samples, compare with the card targets and write plots + README to ``cfg.out``."""
    from calo_calib.validation.sections import extra_steps, sizes

    t0 = time.perf_counter()
    out = Path(str(cfg.out)).resolve()  # relative paths are relative to the working directory
    out.mkdir(parents=True, exist_ok=True)
    samples = build_samples(cfg)
    data, sim_cfgs, sim_s = generate(samples, int(cfg.seed), int(cfg.workers))
    gen_s = time.perf_counter() - t0
    print(
        f"[validate] simulation done in {gen_s:.0f} s wall ({sim_s:.0f} s summed over workers); analysing", flush=True
    )
    v = Validation(cfg, data, sim_cfgs, out)
    for name in CHECKS:
        importlib.import_module(name).run(v)
    for step in extra_steps(v):
        step()
    s = cfg.quick_sizes if cfg.quick else cfg
    meta = {
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_commit(),
        "n_clusters": int(sum(d["truth_e"].size for d in data.values())),
        "wall_s": time.perf_counter() - t0,
        "sim_cpu_s": sim_s,
        "workers": int(cfg.workers) or (os.cpu_count() or 1),
        "quick": bool(cfg.quick),
        "sizes": {k: int(s[k]) for k in ("n_per_point", "n_scan", "n_etamod", "n_default")} | sizes(cfg),
    }
    v.write_readme(meta)
    payload = {
        "meta": meta,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "rows": [r.__dict__ for r in v.rows],
        "results": v.results,
    }
    (out / "results.json").write_text(json.dumps(jsonable(payload), indent=1), encoding="utf-8")
    print(f"[validate] done in {time.perf_counter() - t0:.0f} s: {out}", flush=True)
    return out

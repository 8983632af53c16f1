"""Pile-up study: σ_rel versus ⟨μ⟩ for trained calibrations (:func:`study`).

    python -m calo_calib.pileup_study 'runs=[runs/electron/transformer-pull_huber/T1,runs/electron/bdt-mse/T2]'

For each ⟨μ⟩ in ``mus`` a test set of the runs' particle is simulated once (fixed ⟨μ⟩ per event,
topo-clustering thresholds at ``mu_reference`` as in a data-taking period) and cached under
``data_root``; every run's calibration is applied to it with its own features and selection.
Writes ``pileup.json`` (one record per ⟨μ⟩ and method), ``pileup.md`` and ``sigma_rel_vs_mu.png``.
The command ``python -m calo_calib.pileup_study`` (options ``conf/pileup_study.yaml``) and the sweep
callback :class:`calo_calib.launch.callbacks.PileupScanAfterSweep` call it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from calo_calib.formatting import jsonable

log = logging.getLogger("calo_calib.pileup_study")  # the command's logger name, as before the move
logging.getLogger("matplotlib").setLevel(logging.WARNING)  # mathtext font substitutions are not news


def simulate_test_set(particle: str, mu: float, n_clusters: int, seed: int, mu_reference: float, root: Path, workers: int, progress: bool) -> Path:
    """Simulate (or reuse) a test set at fixed ⟨μ⟩; returns its directory."""
    from calo_calib.simulation import compose_config
    from calo_calib.simulation.runner import run_simulation

    out = root / particle / f"mu{mu:g}_n{n_clusters}_seed{seed}"
    cfg = compose_config(
        [
            f"particle={particle}",
            f"n_clusters={n_clusters}",
            f"mu={float(mu)}",
            f"seed={seed}",
            f"out={out}",
            f"workers={workers}",
            f"progress={str(progress).lower()}",
            "pileup.mu_rel_sigma=0.0",
            f"pileup.mu_reference={float(mu_reference)}",
            "resume=true",
        ]
    )
    return run_simulation(cfg)


def study(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the study; returns the records ``{mu, method, run, sigma_rel, sigma_rel_err, median, n}``."""
    from calo_calib.calibration import load_run
    from calo_calib.evaluation import predictions as P
    from calo_calib.evaluation.metrics import bootstrap, median_response, sigma_rel
    from calo_calib.evaluation.plots import plot_pileup_scan

    runs = [Path(str(r)) for r in cfg.runs]
    if not runs:
        raise ValueError("runs: give at least one run directory")
    calibrations = [load_run(r, device=str(cfg.device)) for r in runs]
    particles = {c.particle for c in calibrations}
    if len(particles) != 1:
        raise ValueError(f"runs: all runs must calibrate the same particle, got {sorted(particles)}")
    particle = particles.pop()
    names = [c.name for c in calibrations]
    labels = [n if names.count(n) == 1 else f"{n} ({c.run_dir.name})" for n, c in zip(names, calibrations)]

    records: list[dict[str, Any]] = []
    for k, mu in enumerate(cfg.mus):
        data = simulate_test_set(
            particle, float(mu), int(cfg.n_clusters), int(cfg.seed) + k, float(cfg.mu_reference),
            Path(str(cfg.data_root)), int(cfg.workers), bool(cfg.progress),
        )  # fmt: skip
        for label, calib in zip(labels, calibrations):
            pred, dataset = calib.apply(data)
            table = P.build_predictions(dataset.scalar_table(list(P.TRUTH_COLUMNS)), pred.row_id, pred.correction, "model")
            truth = table.column("truth_e").to_numpy()
            methods = {"model": label}
            if label == labels[0]:  # the raw energy and the oracle depend only on the data (first run's selection)
                methods.update({"raw": "raw cluster E", "oracle": "oracle"})
            for column, method in methods.items():
                ratio = table.column(f"e_{column}").to_numpy() / truth
                s, s_err = bootstrap(sigma_rel, ratio, n_boot=int(cfg.n_boot), seed=int(cfg.seed))
                med, med_err = bootstrap(median_response, ratio, n_boot=int(cfg.n_boot), seed=int(cfg.seed))
                records.append({
                    "mu": float(mu), "method": method, "run": str(calib.run_dir),
                    "sigma_rel": s, "sigma_rel_err": s_err, "err": s_err, "median": med, "median_err": med_err,
                    "n": int(len(ratio)),
                })  # fmt: skip
                log.info("<mu>=%-5g %-28s sigma_rel %.4f +- %.4f", mu, method, s, s_err)

    out = Path(str(cfg.out)) if cfg.out else runs[0] / "pileup"
    out.mkdir(parents=True, exist_ok=True)
    payload = {"particle": particle, "runs": [str(r) for r in runs], "config": OmegaConf.to_container(cfg, resolve=True), "records": records}
    tmp = out / "pileup.json.tmp"
    tmp.write_text(json.dumps(jsonable(payload), indent=2))
    os.replace(tmp, out / "pileup.json")
    (out / "pileup.md").write_text(_markdown(records, particle))
    plot_pileup_scan(records, out / "sigma_rel_vs_mu.png")
    log.info("wrote %s", out)
    return records


def _markdown(records: list[dict[str, Any]], particle: str) -> str:
    methods = list(dict.fromkeys(r["method"] for r in records))
    mus = list(dict.fromkeys(r["mu"] for r in records))
    lines = [f"# σ_rel (%) versus ⟨μ⟩, {particle}", "", "| ⟨μ⟩ | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for mu in mus:
        cells = []
        for m in methods:
            r = next((r for r in records if r["mu"] == mu and r["method"] == m), None)
            cells.append(f"{100 * r['sigma_rel']:.2f} ± {100 * r['sigma_rel_err']:.2f}" if r else "–")
        lines.append(f"| {mu:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"

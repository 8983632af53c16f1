"""Helpers of the comparison tests: metrics.json read back, equality as the long table stores values,
and hand-made metrics.json contents with known numbers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from calo_calib.comparison.schema import VARIABLES, RunResult, run_from_metrics


def metrics_of(run_dir: Path | str) -> dict:
    return json.loads((Path(run_dir) / "metrics.json").read_text())


def numbers(rec: dict) -> tuple:
    """The source-independent content of a long-table record, NaN as None (so that == works)."""
    keys = ("particle", "model", "loss", "table", "method", *(f"{v}_{s}" for v in VARIABLES for s in ("lo", "hi")),
            "n", "sigma_rel", "sigma_rel_err", "median", "ratio_to_bdt", "ratio_to_bdt_err")  # fmt: skip
    return tuple(None if isinstance(rec[k], float) and math.isnan(rec[k]) else rec[k] for k in keys)


def same(a: float, b) -> bool:
    """Equal as the long table stores metrics.json values (null -> NaN)."""
    b = math.nan if b is None else float(b)
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=0)


E_BINS = ((10.0, 50.0), (50.0, 250.0))
ETA_BINS = ((0.0, 0.8), (0.8, 1.37))


def _stats(sigma: float | None, err: float = 0.001, median: float = 1.0) -> dict:
    return {"sigma_rel": sigma, "sigma_rel_err": err, "median": median, "median_err": 0.001, "n": 100}


def make_metrics(
    model: str, loss: str = "mse", sigma: float | None = 0.02, *, particle: str = "electron",
    fingerprint: str = "fp", per_bin: dict[tuple, float | None] | None = None, median: float = 1.0,
) -> dict:  # fmt: skip
    """A metrics.json content that passes the schema: methods raw, oracle and ``model``, with the
    model's inclusive σ_rel ``sigma`` (raw: 2×, oracle: ½) and, in each (E, |η|) bin, ``per_bin[(e_lo, eta_lo)]``
    (default ``sigma``; None: a low-count bin). The 1-D tables hold ``sigma`` in every bin."""
    methods = {"raw": 2 * (sigma or 0.02), "oracle": 0.5 * (sigma or 0.02), model: sigma}

    def row(edges: dict, model_sigma: float | None) -> dict:
        stats = {m: _stats(s) for m, s in methods.items()} | {model: _stats(model_sigma, median=median)}
        return {**edges, "n": 100, "low_count": model_sigma is None, **stats}

    e_rows = [row({"truth_e_lo": lo, "truth_e_hi": hi}, sigma) for lo, hi in E_BINS]
    return {
        "run": {"model": model, "loss": loss, "particle": particle, "test_fingerprint": fingerprint},
        "inclusive": {m: _stats(s, median=median if m == model else 1.0) for m, s in methods.items()},
        "vs_e": e_rows,
        "vs_abs_eta": [row({"abs_eta_lo": lo, "abs_eta_hi": hi}, sigma) for lo, hi in ETA_BINS],
        "vs_mu": [row({"mu_lo": 0.0, "mu_hi": 100.0}, sigma)],
        "vs_e_abs_eta": [
            row(
                {"truth_e_lo": e[0], "truth_e_hi": e[1], "abs_eta_lo": a[0], "abs_eta_hi": a[1]},
                (per_bin or {}).get((e[0], a[0]), sigma),
            )
            for e in E_BINS
            for a in ETA_BINS
        ],  # fmt: skip
    }


def make_run(tmp_path: Path, name: str, metrics: dict, **kwargs) -> RunResult:
    """A RunResult of ``metrics`` (through the one parser), its directory ``tmp_path/name``."""
    return run_from_metrics(metrics, tmp_path / name, sweep=kwargs.pop("sweep", "s"), **kwargs)

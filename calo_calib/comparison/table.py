"""The long table: many runs -> one flat record per (run, table, bin, method), with :data:`COLUMNS`.

σ_rel is a fraction (0.02 = 2 %), energies are in GeV; :func:`to_arrow` turns the records into a
pyarrow Table. The ratio to the BDT of each record is σ_rel(method) / σ_rel(BDT) in the same bin,
with the BDT taken, in this order, from

1. the run's own joined ``bdt`` method (a network run that found a BDT run on the same test data);
2. a BDT run of the same particle and the same test-data fingerprint among the loaded runs
   (``loss=mse`` preferred, then the newest): the reference of a BDT run is itself (ratio 1 ± 0).

Its error assumes independent σ_rel's, as ``comparison_to_bdt`` in metrics.json (conservative:
both are measured on the same clusters).
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from calo_calib.comparison.schema import BINNED_TABLES, VARIABLES, RunResult
from calo_calib.evaluation.report import compare as compare_metrics
from calo_calib.formatting import as_float

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

COLUMNS: dict[str, str] = {
    "sweep": "sweep of the run: <sweep_name>/<timestamp> of a Hydra multirun, else the loaded directory's name or the W&B group",
    "run_dir": "run directory (W&B: the directory metrics.json was downloaded to)",
    "job": "Hydra job directory name <num>_<override_dirname> (W&B: the run name)",
    "overrides": "the job's Hydra overrides that differ between the runs of its sweep, 'key=value,...' (sorted)",
    "config": "configuration label, unique per particle: <model>-<loss> plus the other varying overrides",
    "particle": "electron | photon_unconv | photon_conv",
    "model": "the run's model (transformer | gnn_edge | bdt)",
    "loss": "the run's loss (mse | huber)",
    "test_fingerprint": "fingerprint of the test data (equal: same test clusters)",
    "table": "inclusive | vs_e | vs_abs_eta | vs_mu | vs_e_abs_eta",
    "truth_e_lo": "lower edge of the true-energy bin [GeV] (NaN if not binned in E)",
    "truth_e_hi": "upper edge of the true-energy bin [GeV]",
    "abs_eta_lo": "lower edge of the |η| bin (NaN if not binned in |η|)",
    "abs_eta_hi": "upper edge of the |η| bin",
    "mu_lo": "lower edge of the ⟨μ⟩ bin (NaN if not binned in ⟨μ⟩)",
    "mu_hi": "upper edge of the ⟨μ⟩ bin",
    "n": "test clusters in the bin",
    "low_count": "the bin has fewer clusters than evaluation.min_count: its σ_rel is NaN",
    "method": "raw | oracle | bdt | the run's model",
    "is_model": "method is the run's own model (the row that ranks the configuration)",
    "sigma_rel": "IQR(E_reco/E_true) / (1.349 mean): a fraction, 0.02 = 2 %",
    "sigma_rel_err": "bootstrap error of sigma_rel (fraction)",
    "median": "median E_reco/E_true",
    "median_err": "bootstrap error of the median",
    "ratio_to_bdt": "sigma_rel / sigma_rel(BDT) in the same bin (< 1: better than the BDT)",
    "ratio_to_bdt_err": "error of the ratio (independent errors: conservative)",
    "bdt_reference": "where the BDT came from: joined (same run), self (this is the reference BDT run), the BDT run's directory, or empty (none)",
}
"""Columns of the long table, in order, with their meaning and units."""

_FLOAT_COLUMNS = {
    c for c in COLUMNS if c.endswith(("_lo", "_hi", "_err")) or c in ("sigma_rel", "median", "ratio_to_bdt")
}


def finite(x: Any) -> bool:
    """A finite float, as the long table stores a value (NaN: empty / low-count bin, missing ratio)."""
    return isinstance(x, float) and math.isfinite(x)


def particles(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Particles present in the long table, sorted."""
    return sorted({r["particle"] for r in records})


def model_rows(records: Iterable[Mapping[str, Any]], particle: str, table: str) -> list[Mapping[str, Any]]:
    """The records of ``particle`` in ``table`` whose method is the run's own model (one per run and bin)."""
    return [r for r in records if r["particle"] == particle and r["table"] == table and r["is_model"]]


def _varying_overrides(runs: Sequence[RunResult]) -> dict[int, dict[str, str]]:
    """Per run (by id): the overrides whose values differ between the runs of its sweep."""
    by_sweep: dict[str, list[RunResult]] = defaultdict(list)
    for r in runs:
        by_sweep[r.sweep].append(r)
    out: dict[int, dict[str, str]] = {}
    for members in by_sweep.values():
        keys = {k for r in members for k in r.overrides}
        varying = {k for k in keys if len({r.overrides.get(k) for r in members}) > 1}
        for r in members:
            out[id(r)] = {k: r.overrides[k] for k in sorted(varying) if k in r.overrides}
    return out


def _config_labels(runs: Sequence[RunResult], varying: Mapping[int, Mapping[str, str]]) -> dict[int, str]:
    """``<model>-<loss>`` plus the other varying overrides; disambiguated (sweep, then job) within a particle."""
    base = {}
    for r in runs:
        extra = [f"{k}={v}" for k, v in varying[id(r)].items() if k not in ("model", "loss", "particle")]
        base[id(r)] = " ".join([r.label, *extra])
    labels = dict(base)
    for suffix in (lambda r: f" ({r.sweep})", lambda r: f" ({r.sweep}/{r.job})", lambda r: f" ({r.run_dir})"):
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in runs:
            counts[(r.particle, labels[id(r)])] += 1
        clashes = [r for r in runs if counts[(r.particle, labels[id(r)])] > 1]
        if not clashes:
            break
        for r in clashes:
            labels[id(r)] = base[id(r)] + suffix(r)
    return labels


def _bdt_references(runs: Sequence[RunResult], reference_loss: str) -> dict[tuple[str, str], RunResult]:
    """(particle, test fingerprint) -> the BDT run used as reference: ``reference_loss`` first, then newest."""
    groups: dict[tuple[str, str], list[RunResult]] = defaultdict(list)
    for r in runs:
        if r.model == "bdt" and r.test_fingerprint:
            groups[(r.particle, r.test_fingerprint)].append(r)
    return {k: min(v, key=lambda r: (r.loss != reference_loss, -r.created, str(r.run_dir))) for k, v in groups.items()}


def _reference_for(run: RunResult, refs: Mapping[tuple[str, str], RunResult]) -> tuple[Mapping[str, Any], str] | None:
    """(metrics holding the reference ``bdt`` method, label for bdt_reference), or None."""
    if run.model != "bdt" and "bdt" in run.metrics["inclusive"]:
        return run.metrics, "joined"
    ref = refs.get((run.particle, run.test_fingerprint or ""))
    if ref is None:
        return None
    return ref.metrics, ("self" if ref is run else str(ref.run_dir))


def _ratios(run: RunResult, method: str, ref: tuple[Mapping[str, Any], str] | None) -> dict[str, Any] | None:
    """report.compare of ``method`` against the reference BDT: inclusive and per-bin ratio rows."""
    if ref is None:
        return None
    ref_metrics, label = ref
    try:
        out = compare_metrics(run.metrics, ref_metrics, method, "bdt")
    except (KeyError, ValueError) as err:
        log.warning("%s: no ratio to the BDT (%s) for %s: %s", run.run_dir, label, method, err)
        return None
    if ref_metrics is run.metrics and method == "bdt":
        # The reference divided by itself: exactly 1, with no error (fully correlated).
        for row in [out["inclusive"], *(r for t in BINNED_TABLES for r in out.get(t, []))]:
            if math.isfinite(row["ratio"]):
                row["ratio"], row["ratio_err"] = 1.0, 0.0
    return out


def build_table(runs: Sequence[RunResult], reference_loss: str = "mse") -> list[dict[str, Any]]:
    """The long table: one record per (run, table, bin, method), with the keys of :data:`COLUMNS`.

    Args:
        runs: runs from :func:`~calo_calib.comparison.loading.load_runs` / :func:`~calo_calib.comparison.loading.load_wandb`.
        reference_loss: when several BDT runs share a particle and test data, the reference is the
            one with this loss (then the newest).

    Returns:
        Records in run order, then ``inclusive, vs_e, vs_abs_eta, vs_mu, vs_e_abs_eta``, then bin,
        then method. σ_rel and its error are fractions; NaN marks empty/low-count bins and
        missing ratios. Edges of variables a table is not binned in are NaN.
    """
    varying = _varying_overrides(runs)
    labels = _config_labels(runs, varying)
    refs = _bdt_references(runs, reference_loss)
    records: list[dict[str, Any]] = []
    for run in runs:
        ref = _reference_for(run, refs)
        common = {
            "sweep": run.sweep,
            "run_dir": str(run.run_dir),
            "job": run.job,
            "overrides": ",".join(f"{k}={v}" for k, v in varying[id(run)].items()),
            "config": labels[id(run)],
            "particle": run.particle,
            "model": run.model,
            "loss": run.loss,
            "test_fingerprint": run.test_fingerprint or "",
        }
        methods = list(run.metrics["inclusive"])
        ratios = {m: _ratios(run, m, ref) for m in methods}
        ref_label = ref[1] if ref else ""
        for m in methods:
            stats, comp = run.metrics["inclusive"][m], ratios[m]
            records.append(_record(common, "inclusive", {}, stats, m, run.model, comp and comp["inclusive"], ref_label))
            records[-1].update(n=int(stats.get("n") or 0), low_count=False)
        for table, variables in BINNED_TABLES.items():
            for i, row in enumerate(run.metrics[table]):
                edges = {f"{v}_{s}": row[f"{v}_{s}"] for v in variables for s in ("lo", "hi")}
                for m in methods:
                    comp_rows = (ratios[m] or {}).get(table)
                    rec = _record(
                        common, table, edges, row[m], m, run.model, comp_rows[i] if comp_rows else None, ref_label
                    )
                    rec.update(n=int(row.get("n") or 0), low_count=bool(row.get("low_count", False)))
                    records.append(rec)
    return records


def _record(
    common: Mapping[str, Any], table: str, edges: Mapping[str, Any], stats: Mapping[str, Any], method: str,
    model: str, ratio: Mapping[str, Any] | None, ref_label: str,
) -> dict[str, Any]:  # fmt: skip
    rec: dict[str, Any] = dict.fromkeys(COLUMNS)
    rec.update(common)
    for v in VARIABLES:
        for s in ("lo", "hi"):
            rec[f"{v}_{s}"] = as_float(edges.get(f"{v}_{s}"))
    rec.update(
        table=table,
        method=method,
        is_model=method == model,
        sigma_rel=as_float(stats.get("sigma_rel")),
        sigma_rel_err=as_float(stats.get("sigma_rel_err")),
        median=as_float(stats.get("median")),
        median_err=as_float(stats.get("median_err")),
        ratio_to_bdt=as_float(ratio["ratio"]) if ratio else math.nan,
        ratio_to_bdt_err=as_float(ratio["ratio_err"]) if ratio else math.nan,
        bdt_reference=ref_label if ratio else "",
    )
    return rec


def to_arrow(records: Sequence[Mapping[str, Any]]) -> pa.Table:
    """The long table as a pyarrow Table (columns of :data:`COLUMNS`; NaN floats stay NaN)."""
    import pyarrow as pa

    types = {c: pa.float64() for c in _FLOAT_COLUMNS} | {
        "n": pa.int64(),
        "low_count": pa.bool_(),
        "is_model": pa.bool_(),
    }
    schema = pa.schema([(c, types.get(c, pa.string())) for c in COLUMNS])
    return pa.Table.from_pylist([{c: r[c] for c in COLUMNS} for r in records], schema=schema)

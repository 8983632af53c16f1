"""How much information about the hidden energy losses do the cluster inputs carry? (a diagnosis, not a target)

    python -m calo_calib.studies.information_content particle=electron label=baseline-gaussian-pileup
    python -m calo_calib.studies.information_content particle=photon_unconv n=40000 label=particle-pileup \\
        sim_overrides=[detector.readout.pileup.model=particles]

For one particle type and one simulation configuration (``conf/simulate.yaml`` composed with
``particle=<particle>`` and ``sim_overrides``), two independent samples are simulated with
:func:`calo_calib.simulation.simulate_table`: a training sample (``n`` clusters, seed ``seed``; its last
``val_fraction`` is the early-stopping set) and a test sample (``n_test`` clusters, another seed). Then,
on the test sample, per bin of E_true (``bins=e``, edges ``edges``) or of the true E_T (``bins=et``):

* **σ_rel** = IQR / (1.349 mean) of E_reco/E_true (:func:`calo_calib.evaluation.metrics.sigma_rel`, paired
  bootstrap errors) of: ``raw`` (E_cluster); ``bdt``, the project's XGBoost BDT
  (:class:`calo_calib.models.bdt.BDTModel`, target E_true/E_acc) on the ATLAS inputs
  (``features=atlas``, the inputs of ``model=bdt``); ``bdt_shapes``, the same on the ATLAS inputs plus the
  shower shapes of :mod:`calo_calib.data.shower_shapes` (``features=atlas+shapes``, the inputs of
  ``model=bdt_shapes``); and the ``oracle``
  (:func:`calo_calib.evaluation.predictions.oracle_energy`: every truth loss restored). The BDT is
  unbinned by default (``binned=false``: one booster with |η| and E_T as extra inputs), because the study's
  samples are too small to fill the ATLAS (|η|, E_T) grid; ``binned=true`` uses the grid;
* **R²** = 1 − Σ(y − ŷ)²/Σ(y − ȳ)² on the test clusters of an XGBoost regression (the BDT's
  :data:`~calo_calib.models.bdt.DEFAULT_PARAMS`, squared error, early stopping on the validation set) of each
  truth loss fraction, from the ATLAS inputs and from the inputs + shapes:
  ``outside`` = truth_e_outside_cluster/E_true, ``upstream`` = (truth_e_lost_upstream +
  truth_e_lost_passive)/E_true, ``leak_behind`` = truth_e_leak_behind/E_true, and ``pileup`` =
  truth_e_pileup_cluster/E_true: the pile-up energy (after the baseline subtraction) inside the cluster's
  accordion cells, a diagnostic truth the study's samples carry (``simulate_table(..., noise_truth=True)``;
  never stored in datasets). It says whether the cells let a model recognise the pile-up it should remove.
* **oracle_no_pileup** = oracle − truth_e_pileup_cluster: the oracle with the cluster's pile-up also
  removed, so (σ_oracle² − σ_oracle_no_pileup²) is the pile-up's share of the floor.

Reading it: the oracle is the floor, so (σ_bdt − σ_bdt_shapes)/(σ_bdt − σ_oracle) (``gap_closed``) is the
share of the BDT-to-oracle gap the shapes make accessible; the R² says which loss they inform. Running
it "before and after" a simulation mechanism (e.g. ``sim_overrides=[detector.readout.pileup.model=gaussian]``
vs ``particles``) with a ``label=`` each shows how much information the mechanism adds to the cells.

Output (``out``, default ``benchmarks/results``): ``information_content.json`` (a list of records; each
run appends one, with its ``label``, the overrides, sizes, seeds, machine, date and git commit) and
``information_content.md`` (regenerated from all records). Nothing else is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from calo_calib.formatting import fmt, jsonable

DEFAULTS: dict = {
    "particle": "electron",
    "n": 60000,  # training clusters (the last val_fraction for early stopping)
    "n_test": 30000,  # test clusters (independent sample, seed + 1)
    "seed": 1,
    "label": "unlabelled",
    "sim_overrides": [],
    "bins": "e",  # e: bins of E_true; et: bins of the true E_T
    "edges": [0, 50, 200, 1e9],  # GeV
    "binned": False,  # ATLAS (|eta|, E_T) grid for the BDT
    "val_fraction": 0.2,
    "exclude_crack": True,  # drop 1.37 < |eta| < 1.52 clusters (is_crack), as the benchmarks do
    "n_boot": 100,
    "nthread": 1,
    "num_boost_round": 500,
    "out": "benchmarks/results",
    "write": True,
}
METHODS = ("raw", "bdt", "bdt_shapes", "oracle", "oracle_no_pileup")
FEATURE_SETS = {"bdt": "atlas", "bdt_shapes": "atlas+shapes"}
FRACTIONS = {
    "outside": ("truth_e_outside_cluster",),
    "upstream": ("truth_e_lost_upstream", "truth_e_lost_passive"),
    "leak_behind": ("truth_e_leak_behind",),
    "pileup": ("truth_e_pileup_cluster",),
}
"""Truth loss fractions: name -> the truth columns summed (each divided by truth_e)."""
JSON_NAME, MD_NAME = "information_content.json", "information_content.md"


def parse_args(argv: Sequence[str]) -> dict:
    """``key=value`` arguments (OmegaConf dotlist syntax, lists as ``[a,b]``) over :data:`DEFAULTS`."""
    from omegaconf import OmegaConf

    for a in argv:
        if "=" not in a:
            raise SystemExit(f"information_content: expected key=value, got {a!r}")
    given = OmegaConf.to_container(OmegaConf.from_dotlist(list(argv)), resolve=True)
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise SystemExit(f"information_content: unknown argument(s) {unknown}; known: {sorted(DEFAULTS)}")
    args = {**DEFAULTS, **given}
    ov = args["sim_overrides"]
    args["sim_overrides"] = [str(x) for x in (ov if isinstance(ov, list) else [ov] if ov else [])]
    args["edges"] = [float(e) for e in args["edges"]]
    for k in ("n", "n_test", "seed", "n_boot", "nthread", "num_boost_round"):
        args[k] = int(args[k])
    if args["bins"] not in ("e", "et"):
        raise SystemExit(f"information_content: bins must be e or et, got {args['bins']!r}")
    return args


# ================================================================================================
# Data
# ================================================================================================


def simulate(particle: str, overrides: Sequence[str], n: int, seed: int):
    from calo_calib.simulation import compose_config, simulate_table

    cfg = compose_config([f"particle={particle}", *overrides])
    return simulate_table(cfg, int(n), int(seed), noise_truth=True)


def features(table, particle: str, exclude_crack: bool = True) -> dict[str, np.ndarray]:
    """The ATLAS inputs + shower shapes (``atlas+shapes``) and the truth columns, crack clusters dropped."""
    from calo_calib.data.high_level import high_level_features

    keep = np.ones(table.num_rows, dtype=bool)
    if exclude_crack and "is_crack" in table.column_names:
        keep = ~table["is_crack"].to_numpy(zero_copy_only=False).astype(bool)
    feats = high_level_features(table, particle, "atlas+shapes")
    cols = {"cluster_e", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3", "truth_e", "truth_eta", "truth_e_dep_cluster"}
    cols |= {c for cs in FRACTIONS.values() for c in cs}
    for c in sorted(cols):
        feats[c] = table[c].to_numpy(zero_copy_only=False).astype(np.float64)
    return {k: np.asarray(v)[keep] for k, v in feats.items()}


def loss_fraction(d: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    return sum(np.asarray(d[c], dtype=np.float64) for c in FRACTIONS[name]) / np.asarray(d["truth_e"], dtype=np.float64)


def _take(d: Mapping[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[rows] for k, v in d.items()}


# ================================================================================================
# Models
# ================================================================================================


def energy_predictions(train, val, test, particle: str, args: Mapping) -> dict[str, np.ndarray]:
    """E_reco of the test clusters for every method of :data:`METHODS`."""
    from calo_calib.evaluation.predictions import oracle_energy
    from calo_calib.models.bdt import BDTModel

    out = {"raw": np.asarray(test["cluster_e"], dtype=np.float64)}
    for method, fs in FEATURE_SETS.items():
        bdt = BDTModel(
            particle,
            binned=bool(args["binned"]),
            features=fs,
            nthread=int(args["nthread"]),
            num_boost_round=int(args["num_boost_round"]),
            params={"seed": int(args["seed"])},
        )
        bdt.fit(train, val, progress=False)
        corr = bdt.predict_correction(test)
        out[method] = corr * out["raw"]
    out["oracle"] = oracle_energy(test)
    out["oracle_no_pileup"] = out["oracle"] - np.asarray(test["truth_e_pileup_cluster"], dtype=np.float64)
    return out


def fraction_r2(train, val, test, particle: str, args: Mapping) -> dict[str, dict[str, np.ndarray]]:
    """{fraction: {feature-set method: predicted fraction of the test clusters}} (XGBoost, BDT params)."""
    import xgboost as xgb

    from calo_calib.data.high_level import bdt_input_names
    from calo_calib.models.bdt import DEFAULT_PARAMS

    out: dict[str, dict[str, np.ndarray]] = {}
    for frac in FRACTIONS:
        y_tr, y_va = loss_fraction(train, frac), loss_fraction(val, frac)
        out[frac] = {}
        for method, fs in FEATURE_SETS.items():
            names = bdt_input_names(particle, binned=False, features=fs)

            def mat(d, names=names):
                return np.column_stack([np.asarray(d[n], dtype=np.float32) for n in names])

            params = {**DEFAULT_PARAMS, "objective": "reg:squarederror", "eval_metric": "rmse",
                      "base_score": float(np.mean(y_tr)), "nthread": int(args["nthread"]), "seed": int(args["seed"])}  # fmt: skip
            dtr = xgb.DMatrix(mat(train), label=y_tr, feature_names=names)
            dva = xgb.DMatrix(mat(val), label=y_va, feature_names=names)
            booster = xgb.train(params, dtr, num_boost_round=int(args["num_boost_round"]), evals=[(dva, "val")],
                                early_stopping_rounds=20, verbose_eval=False)  # fmt: skip
            booster = booster[: int(booster.best_iteration) + 1]
            out[frac][method] = booster.predict(xgb.DMatrix(mat(test), feature_names=names)).astype(np.float64)
    return out


def r2_score(y: np.ndarray, pred: np.ndarray) -> float:
    """1 − Σ(y − ŷ)²/Σ(y − ȳ)² (NaN for fewer than 2 values or a constant y)."""
    y, pred = np.asarray(y, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    if y.size < 2:
        return float("nan")
    sst = float(np.sum((y - y.mean()) ** 2))
    return float(1.0 - np.sum((y - pred) ** 2) / sst) if sst > 0 else float("nan")


# ================================================================================================
# The study
# ================================================================================================


def _bin_labels(edges: Sequence[float], var: str) -> list[str]:
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        if lo <= 0:
            out.append(f"{var} < {hi:g}")
        elif hi >= 1e8:
            out.append(f"{var} > {lo:g}")
        else:
            out.append(f"{lo:g}-{hi:g}")
    return out


def analyse(test, e_reco: Mapping[str, np.ndarray], fracs, args: Mapping) -> list[dict]:
    from calo_calib.evaluation.metrics import bootstrap_stats, sigma_rel
    from calo_calib.evaluation.scorecard import gap_closed

    e_true = np.asarray(test["truth_e"], dtype=np.float64)
    x = e_true if args["bins"] == "e" else e_true / np.cosh(np.asarray(test["truth_eta"], dtype=np.float64))
    var = "E" if args["bins"] == "e" else "E_T"
    edges = list(args["edges"])
    labels = ["all"] + _bin_labels(edges, var)
    sel = [np.ones(e_true.size, dtype=bool)] + [(x >= lo) & (x < hi) for lo, hi in zip(edges[:-1], edges[1:])]
    rows = []
    for lab, m in zip(labels, sel):
        r = {"bin": lab, "n": int(m.sum())}
        if m.sum() >= 10:
            ratios = np.stack([e_reco[k][m] / e_true[m] for k in METHODS])
            vals, errs = bootstrap_stats(ratios, [sigma_rel], n_boot=int(args["n_boot"]), seed=int(args["seed"]))
            for i, k in enumerate(METHODS):
                r[f"sigma_rel_{k}"], r[f"sigma_rel_{k}_err"] = float(vals[i, 0]), float(errs[i, 0])
            r["gap_closed_shapes"] = float(
                gap_closed(r["sigma_rel_bdt_shapes"], r["sigma_rel_bdt"], r["sigma_rel_oracle"])
            )
        for frac, preds in fracs.items():
            y = loss_fraction(test, frac)[m]
            r[f"mean_{frac}"] = float(y.mean()) if y.size else float("nan")
            for method, p in preds.items():
                r[f"r2_{frac}_{method}"] = r2_score(y, p[m])
        rows.append(r)
    return rows


def run(args: Mapping) -> dict:
    """Simulate, train, evaluate; returns the record (and appends it to the results when ``write``)."""
    from calo_calib.provenance import git_commit, machine_info

    t0 = time.perf_counter()
    commit = git_commit()  # the code that runs: read before the work, not when the record is written
    particle = str(args["particle"])
    ov = list(args["sim_overrides"])
    train_all = features(simulate(particle, ov, args["n"], args["seed"]), particle, args["exclude_crack"])
    test = features(simulate(particle, ov, args["n_test"], args["seed"] + 1), particle, args["exclude_crack"])
    t_sim = time.perf_counter() - t0
    n_tr = train_all["truth_e"].size
    n_val = max(10, int(round(float(args["val_fraction"]) * n_tr)))
    train, val = _take(train_all, np.arange(n_tr - n_val)), _take(train_all, np.arange(n_tr - n_val, n_tr))
    e_reco = energy_predictions(train, val, test, particle, args)
    fracs = fraction_r2(train, val, test, particle, args)
    rows = analyse(test, e_reco, fracs, args)
    machine = machine_info()
    record = {
        "label": str(args["label"]),
        "particle": particle,
        "sim_overrides": ov,
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "git": commit,
        "machine": f"{machine['cpu']} ({os.environ.get('OMP_NUM_THREADS', '?')} thread(s), {machine['nproc']} cores)",
        "n_train": int(train["truth_e"].size),
        "n_val": int(val["truth_e"].size),
        "n_test": int(test["truth_e"].size),
        "seeds": [int(args["seed"]), int(args["seed"]) + 1],
        "bins": args["bins"],
        "edges": list(args["edges"]),
        "binned_bdt": bool(args["binned"]),
        "exclude_crack": bool(args["exclude_crack"]),
        "sim_seconds": round(t_sim, 1),
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "rows": rows,
    }
    if args.get("write", True):
        write(record, Path(str(args["out"])))
    return record


def write(record: dict, out: Path) -> tuple[Path, Path]:
    """Append ``record`` to ``out/information_content.json`` and regenerate the markdown table."""
    from calo_calib.io.atomic import write_text_atomic

    jp, mp = out / JSON_NAME, out / MD_NAME
    records = json.loads(jp.read_text(encoding="utf-8")) if jp.is_file() else []
    records.append(jsonable(record))
    write_text_atomic(jp, json.dumps(records, indent=1, ensure_ascii=False) + "\n")
    write_text_atomic(mp, markdown(records))
    return jp, mp


def _p(x, err=None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{100 * x:.2f}" + (f" ± {100 * err:.2f}" if err is not None and np.isfinite(err) else "")


def _f(x, nd: int = 2) -> str:
    return fmt(x, digits=nd)


def markdown(records: Sequence[dict]) -> str:
    lines = [
        "# Information content of the cluster inputs (a diagnosis, not a target)",
        "",
        "Generated by `python -m calo_calib.studies.information_content` (docs/studies.md). Per run (label, "
        "particle, simulation overrides) and bin of the test sample: σ_rel = IQR / (1.349 ⟨E_reco/E_true⟩) in % "
        "of the raw cluster energy, the XGBoost BDT on the ATLAS inputs, the same with the shower shapes, and the "
        "oracle (every truth loss restored), and the oracle with the cluster's pile-up also removed (records "
        "from 2026-12-01 on); gap closed = (σ_BDT − σ_BDT+shapes)/(σ_BDT − σ_oracle); R² of "
        "the truth loss fractions (outside the cluster, upstream + passive, leakage behind, pile-up in the "
        "cluster; each / E_true) predicted from the ATLAS inputs / inputs + shapes. Training and test are "
        "independently simulated.",
        "",
        "| label | particle | sim overrides | bin | n_test | σ raw | σ BDT | σ BDT+shapes | σ oracle | σ oracle − pile-up "
        "| gap closed | R² outside (inputs / +shapes) | R² upstream (inputs / +shapes) | R² leak behind (inputs / +shapes) "
        "| R² pile-up (inputs / +shapes) | date, machine, commit | n_train |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for rec in records:
        ov = " ".join(f"`{o}`" for o in rec.get("sim_overrides", [])) or "–"
        for r in rec["rows"]:
            r2 = [f"{_f(r.get(f'r2_{fr}_bdt'))} / {_f(r.get(f'r2_{fr}_bdt_shapes'))}" for fr in FRACTIONS]
            cells = [
                rec["label"], rec["particle"], ov, r["bin"], str(r["n"]),
                _p(r.get("sigma_rel_raw")), _p(r.get("sigma_rel_bdt"), r.get("sigma_rel_bdt_err")),
                _p(r.get("sigma_rel_bdt_shapes"), r.get("sigma_rel_bdt_shapes_err")), _p(r.get("sigma_rel_oracle")),
                _p(r.get("sigma_rel_oracle_no_pileup")), _f(r.get("gap_closed_shapes")), *r2,
                f"{rec['date']}, {rec['machine']}, {rec['git']}", str(rec["n_train"]),
            ]  # fmt: skip
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> dict:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    args = parse_args(argv)
    rec = run(args)
    print(markdown([rec]))
    if args["write"]:
        print(f"[information_content] appended to {Path(str(args['out'])) / JSON_NAME} ({rec['wall_seconds']:.0f} s)")
    return rec


if __name__ == "__main__":
    main(sys.argv[1:])

"""XGBoost baseline reproducing the ATLAS egammaMVACalib BDT (detector card §5.1).

* **Target** (as ATLAS): ``E_true / E_acc`` with E_acc = E1 + E2 + E3, the accordion energy.
* **Output** (as the networks): :meth:`BDTModel.predict_correction` returns the multiplicative
  correction to ``cluster_e``, E_reco = correction × cluster_e. Since ``cluster_e`` also contains
  the presampler energy, correction = prediction × E_acc / cluster_e (not the prediction itself).
* **Binning** (``binned=True``): one booster per (|η|, raw E_T) bin, E_T = E_acc / cosh η; the card's
  edges by default. Rows lying inside the crack [1.37, 1.52] use the card's crack E_T edges. A value
  on an edge belongs to the upper bin; values outside the grid go to the first/last bin.
* **Small bins are merged**, never given a constant: a bin with fewer than ``min_bin_clusters``
  training clusters (or fewer than ``max(1, min_bin_clusters // 10)`` validation clusters, which early
  stopping needs) is predicted by a booster trained on its whole |η| row (all E_T bins together,
  with ``abs_eta`` and ``e_t_raw`` as extra inputs); if the row is small too, by one global booster
  trained on every cluster (the unbinned model). Bins without any training cluster (e.g. the crack
  when it is excluded from training) follow the same rule, so every cluster gets a trained booster.
* **Per-bin inputs** (as ATLAS): ``f0`` is dropped in rows with |η| ≥ 1.8 (no presampler there) and
  ``cell_index_calo`` in the edge rows one or two middle cells wide (0-0.05, 1.52-1.55, 2.47-2.5
  with the default edges), where it is (nearly) constant.
* **Training selection**: clusters with E_true/E_acc > ``max_train_target`` (3 by default) or
  E_acc <= 0 are left out of the fit and of early stopping (see :data:`MAX_TRAIN_TARGET`); they are
  predicted and evaluated like every other cluster.
* ``binned=False``: one booster with ``abs_eta`` and ``e_t_raw`` as additional inputs.
* ``features``: ``atlas`` (the ATLAS inputs, default) or ``atlas+shapes`` (the same plus the shower
  shapes of :mod:`calo_calib.data.shower_shapes`, appended to every booster's inputs); recorded in
  the manifest, so a loaded model asks for the inputs it was trained with.
* Loss: ``mse`` → ``reg:squarederror``; ``huber`` → ``reg:pseudohubererror`` with
  ``huber_slope = huber_delta``. Each booster starts from the mean (mse) or median (huber) of its
  training targets, so the few trees early stopping keeps only model the corrections around it.
  Early stopping monitors the same loss (``rmse`` / ``mphe``) on the validation clusters of the bin,
  and the saved booster keeps only the trees up to the best iteration.

Saved layout: :mod:`calo_calib.models.bdt_files`; what goes into XGBoost: :mod:`calo_calib.models.bdt_params`.
Built from a run config by :func:`calo_calib.models.build_bdt` (``model._target_``, ``conf/model/bdt.yaml``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb
from tqdm.auto import tqdm

from calo_calib.data.high_level import BINLESS_EXTRA_INPUTS, bdt_input_names, check_features, dataset_bdt_inputs
from calo_calib.models.bdt_files import load_model, save_model
from calo_calib.models.bdt_params import (  # noqa: F401  (the card's constants, re-exported)
    CRACK,
    CRACK_ET_EDGES,
    DEFAULT_PARAMS,
    EDGE_ROW_MAX_WIDTH,
    EPS_E,
    ET_EDGES,
    ETA_EDGES,
    F0_MAX_ABS_ETA,
    FORMAT_VERSION,
    MANIFEST,
    MAX_TRAIN_TARGET,
    OBJECTIVES,
    check_edges,
    fit_targets,
    matrix,
    require,
    xgb_params,
)


class BDTModel:
    """Per-(|η|, E_T)-bin XGBoost regression of E_true/E_acc (see the module docstring).

    Args:
        particle: electron | photon_unconv | photon_conv | photon (decides the inputs).
        binned: one booster per bin (ATLAS) or a single booster.
        eta_edges: |η| bin edges.
        et_edges: raw-E_T bin edges [GeV].
        params: XGBoost parameters, merged over :data:`DEFAULT_PARAMS` (``objective`` and
            ``eval_metric`` are set by ``loss``; ``seed`` is honoured).
        num_boost_round: maximum trees per booster.
        early_stopping_rounds: stop when the validation loss has not improved for this many trees.
        min_bin_clusters: a bin (or row) with fewer training clusters is merged (see module docstring).
        nthread: XGBoost threads; 0 = XGBoost's default (all cores).
        loss: ``mse`` or ``huber``.
        huber_delta: pseudo-Huber slope δ (on E_true/E_acc) for ``loss='huber'``.
        crack_et_edges: raw-E_T edges [GeV] of the rows inside ``crack``.
        crack: |η| range whose rows use ``crack_et_edges``.
        max_train_target: training/validation clusters with E_true/E_acc above this are left out of
            the fit (junk clusters, see :data:`MAX_TRAIN_TARGET`); ``None`` keeps them. They are
            still predicted like any other cluster.
        features: ``atlas`` | ``atlas+shapes``: the input set
            (:func:`~calo_calib.data.high_level.bdt_input_names`).
    """

    def __init__(
        self,
        particle: str,
        binned: bool = True,
        eta_edges: Sequence[float] = ETA_EDGES,
        et_edges: Sequence[float] = ET_EDGES,
        params: Mapping[str, Any] | None = None,
        num_boost_round: int = 500,
        early_stopping_rounds: int = 20,
        min_bin_clusters: int = 200,
        nthread: int = 0,
        loss: str = "mse",
        huber_delta: float = 0.05,
        crack_et_edges: Sequence[float] = CRACK_ET_EDGES,
        crack: tuple[float, float] = CRACK,
        max_train_target: float | None = MAX_TRAIN_TARGET,
        features: str = "atlas",
    ) -> None:
        if loss not in OBJECTIVES:
            raise ValueError(f"BDT loss {loss!r}: expected one of {sorted(OBJECTIVES)}")
        if loss == "huber" and not huber_delta > 0:
            raise ValueError(f"BDT huber_delta must be > 0, got {huber_delta}")
        user = dict(params or {})
        for key in ("objective", "eval_metric"):
            if key in user:
                raise ValueError(f"BDT params[{key!r}] is set by loss={loss!r}; do not pass it")
        if num_boost_round < 1 or early_stopping_rounds < 1 or min_bin_clusters < 1:
            raise ValueError(
                f"BDT num_boost_round={num_boost_round}, early_stopping_rounds={early_stopping_rounds}, "
                f"min_bin_clusters={min_bin_clusters}: all must be >= 1"
            )
        self.particle = particle
        self.features = check_features(str(features))
        self.input_names = bdt_input_names(particle, binned=True, features=self.features)  # validates particle
        self.binned = bool(binned)
        self.eta_edges = check_edges("eta_edges", eta_edges)
        self.et_edges = check_edges("et_edges", et_edges)
        self.crack_et_edges = check_edges("crack_et_edges", crack_et_edges)
        self.crack = (float(crack[0]), float(crack[1]))
        if max_train_target is not None and not max_train_target > 1:
            raise ValueError(f"BDT max_train_target must be > 1 or None, got {max_train_target}")
        self.max_train_target = None if max_train_target is None else float(max_train_target)
        self.loss = loss
        self.huber_delta = float(huber_delta)
        self.num_boost_round = int(num_boost_round)
        self.early_stopping_rounds = int(early_stopping_rounds)
        self.min_bin_clusters = int(min_bin_clusters)
        self.nthread = int(nthread)
        self.params = {**DEFAULT_PARAMS, **user}
        # Grid: rows in |eta|, each with its own E_T edges; bins flattened row after row.
        self.row_et_edges = [
            self.crack_et_edges if self._is_crack_row(r) else self.et_edges for r in range(self.n_rows)
        ]
        self.row_offset = np.cumsum([0] + [len(e) - 1 for e in self.row_et_edges])
        self.bins: list[dict[str, float | int]] = [
            {"row": r, "eta_lo": self.eta_edges[r], "eta_hi": self.eta_edges[r + 1], "et_lo": e[k], "et_hi": e[k + 1]}
            for r, e in enumerate(self.row_et_edges)
            for k in range(len(e) - 1)
        ]
        self.boosters: dict[str, xgb.Booster] = {}
        self.booster_inputs: dict[str, list[str]] = {}
        self.routes: list[str] = []  # booster name per bin, set by fit/load
        self.summary: dict[str, Any] = {}

    # --- binning ---------------------------------------------------------------------------------

    @property
    def n_rows(self) -> int:
        return len(self.eta_edges) - 1

    def _is_crack_row(self, r: int) -> bool:
        lo, hi = self.eta_edges[r], self.eta_edges[r + 1]
        return lo >= self.crack[0] - 1e-9 and hi <= self.crack[1] + 1e-9

    def row_inputs(self, r: int, extra: Sequence[str] = ()) -> list[str]:
        """Inputs of the boosters of |η| row ``r`` (ATLAS drops, see the module docstring)."""
        lo, hi = self.eta_edges[r], self.eta_edges[r + 1]
        drop = set()
        if lo >= F0_MAX_ABS_ETA - 1e-9:
            drop.add("f0")
        if hi - lo <= EDGE_ROW_MAX_WIDTH + 1e-9:
            drop.add("cell_index_calo")
        return [n for n in self.input_names if n not in drop] + list(extra)

    def bin_index(self, abs_eta: np.ndarray, e_t_raw: np.ndarray) -> np.ndarray:
        """Bin of each cluster, (N,) int64 into :attr:`bins`; an edge value goes to the upper bin.

        Args:
            abs_eta: (N,) |η|.
            e_t_raw: (N,) raw E_T [GeV]. Out-of-grid values (incl. negative E_T) use the edge bins.
        """
        a = np.asarray(abs_eta, dtype=np.float64)
        et = np.asarray(e_t_raw, dtype=np.float64)
        row = np.clip(np.searchsorted(self.eta_edges, a, side="right") - 1, 0, self.n_rows - 1)
        out = np.empty(a.shape, dtype=np.int64)
        for r, edges in enumerate(self.row_et_edges):  # ~15 rows, vectorised inside
            m = row == r
            k = np.clip(np.searchsorted(edges, et[m], side="right") - 1, 0, len(edges) - 2)
            out[m] = self.row_offset[r] + k
        return out

    # --- training --------------------------------------------------------------------------------

    def _xgb_params(self, base_score: float) -> dict[str, Any]:
        return xgb_params(self.params, self.loss, self.huber_delta, self.nthread, base_score)

    def _train_one(
        self,
        names: list[str],
        train: Mapping[str, np.ndarray],
        y: np.ndarray,
        tr: np.ndarray,
        val: Mapping[str, np.ndarray],
        y_val: np.ndarray,
        va: np.ndarray,
    ) -> tuple[xgb.Booster, int]:
        """One booster on training rows ``tr`` with early stopping on validation rows ``va``."""
        dtrain = xgb.DMatrix(matrix(train, names, tr), label=y[tr], feature_names=names)
        dval = xgb.DMatrix(matrix(val, names, va), label=y_val[va], feature_names=names)
        start = np.median(y[tr]) if self.loss == "huber" else np.mean(y[tr])
        booster = xgb.train(
            self._xgb_params(start),
            dtrain,
            num_boost_round=self.num_boost_round,
            evals=[(dval, "val")],
            early_stopping_rounds=self.early_stopping_rounds,
            verbose_eval=False,
        )
        best = int(booster.best_iteration)
        return booster[: best + 1], best  # keep only the trees early stopping selected

    def _fit_inputs(self, data: Mapping[str, np.ndarray], what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(target E_true/E_acc, usable mask, bin index) of a train/val dict."""
        y, ok = fit_targets(data, self.particle, self.features, self.max_train_target, what)
        return y, ok, self.bin_index(data["abs_eta"], data["e_t_raw"])

    def fit(
        self, train: Mapping[str, np.ndarray], val: Mapping[str, np.ndarray], progress: bool = True
    ) -> dict[str, Any]:
        """Train every booster, with early stopping on ``val``; returns (and keeps) a JSON-able summary.

        Args:
            train, val: output of :func:`~calo_calib.data.high_level.high_level_features` plus
                ``truth_e`` (and ``cluster_e``, unused here) arrays, each (N,), GeV.
            progress: tqdm bar over the boosters.

        Returns:
            ``n_bins``, ``n_boosters``, ``n_bins_own`` / ``n_bins_row`` / ``n_bins_global`` (how bins are
            predicted), ``bins`` (per bin: edges, n_train, n_val, route, best_iteration),
            ``train_seconds``, ``train_clusters_per_s``, ``n_train_used``, ``n_train_skipped``.
        """
        # Long (~85 lines) on purpose: one pass over the (|eta|, E_T) bins that trains, routes and records each
        # booster; its bookkeeping (own / row / global routes) is read back by the summary at the end.
        y, ok, b = self._fit_inputs(train, "fit(train)")
        y_val, ok_val, b_val = self._fit_inputs(val, "fit(val)")
        if not ok.any() or not ok_val.any():
            raise ValueError(
                f"BDT fit: {int(ok.sum())} usable training and {int(ok_val.sum())} validation clusters (need > 0)"
            )
        nb = len(self.bins)
        n_tr = np.bincount(b[ok], minlength=nb)
        n_va = np.bincount(b_val[ok_val], minlength=nb)
        min_val = max(1, self.min_bin_clusters // 10)
        rows = np.array([bn["row"] for bn in self.bins])
        jobs: list[tuple[str, list[str], np.ndarray, np.ndarray]] = []  # (name, inputs, train rows, val rows)
        routes: list[str] = []
        if self.binned:
            row_tr = np.bincount(rows, weights=n_tr, minlength=self.n_rows)
            row_va = np.bincount(rows, weights=n_va, minlength=self.n_rows)
            row_ok = (row_tr >= self.min_bin_clusters) & (row_va >= min_val)
            for i, bn in enumerate(self.bins):
                r = int(bn["row"])
                if n_tr[i] >= self.min_bin_clusters and n_va[i] >= min_val:
                    routes.append(f"bin_{i:03d}")
                    jobs.append(
                        (
                            routes[-1],
                            self.row_inputs(r),
                            np.flatnonzero(ok & (b == i)),
                            np.flatnonzero(ok_val & (b_val == i)),
                        )
                    )
                else:
                    routes.append(f"row_{r:02d}" if row_ok[r] else "global")
            for r in sorted({int(rt[4:]) for rt in routes if rt.startswith("row_")}):
                in_row = rows[b] == r
                in_row_val = rows[b_val] == r
                jobs.append(
                    (
                        f"row_{r:02d}",
                        self.row_inputs(r, BINLESS_EXTRA_INPUTS),
                        np.flatnonzero(ok & in_row),
                        np.flatnonzero(ok_val & in_row_val),
                    )
                )
        else:
            routes = ["global"] * nb
        if "global" in routes:
            jobs.append(
                (
                    "global",
                    bdt_input_names(self.particle, binned=False, features=self.features),
                    np.flatnonzero(ok),
                    np.flatnonzero(ok_val),
                )
            )

        self.boosters, self.booster_inputs, best_it = {}, {}, {}
        t0 = time.perf_counter()
        for name, names, tr, va in tqdm(jobs, desc=f"BDT {self.particle}", unit="booster", disable=not progress):
            self.boosters[name], best_it[name] = self._train_one(names, train, y, tr, val, y_val, va)
            self.booster_inputs[name] = names
        seconds = time.perf_counter() - t0
        self.routes = routes
        n_used = int(ok.sum())
        self.summary = {
            "binned": self.binned,
            "n_bins": nb,
            "n_boosters": len(self.boosters),
            "n_bins_own": sum(r.startswith("bin_") for r in routes),
            "n_bins_row": sum(r.startswith("row_") for r in routes),
            "n_bins_global": sum(r == "global" for r in routes),
            "booster_best_iteration": best_it,
            "booster_n_train": {name: int(len(tr)) for name, _, tr, _ in jobs},
            "bins": [
                {
                    **bn,
                    "n_train": int(n_tr[i]),
                    "n_val": int(n_va[i]),
                    "route": routes[i],
                    "best_iteration": best_it[routes[i]],
                }
                for i, bn in enumerate(self.bins)
            ],
            "train_seconds": seconds,
            "train_clusters_per_s": n_used / seconds if seconds > 0 else None,
            "n_train_used": n_used,
            "n_train_skipped": int((~ok).sum()),
        }
        return self.summary

    # --- inference -------------------------------------------------------------------------------

    def dataset_inputs(self, dataset, truth: bool = False) -> dict[str, np.ndarray]:
        """This model's inputs of every selected cluster of a :class:`~calo_calib.data.loader.ClusterDataset`.

        The one way the BDT inputs are prepared (training in :func:`calo_calib.pipeline.train_bdt`,
        :func:`calo_calib.calibration.bdt.bdt_predictions` of the BDT run and of the exported BDT,
        ``experiments/bench_inference.py``):
        :func:`~calo_calib.data.high_level.dataset_bdt_inputs` with the model's own ``particle`` and
        ``features`` (``atlas`` | ``atlas+shapes``), so a model is always applied to the inputs it was
        trained on. Returns ``{name: (N,)}`` in the dataset's order, with ``cluster_e`` [GeV] and
        ``row_id`` (and ``truth_e`` [GeV] for ``truth=True``: training, or labelled data) added.
        """
        extra = ("cluster_e", "row_id") + (("truth_e",) if truth else ())
        return dataset_bdt_inputs(dataset, self.particle, self.features, extra=extra)

    def predict_ratio(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Predicted E_true/E_acc of every cluster, (N,) float64."""
        if not self.routes:
            raise RuntimeError("BDTModel: not trained (call fit or load)")
        require(features, ["abs_eta", "e_t_raw"], "predict")
        route = np.asarray(self.routes)[self.bin_index(features["abs_eta"], features["e_t_raw"])]
        out = np.full(route.shape, np.nan)
        for name in np.unique(route):
            rows = np.flatnonzero(route == name)
            names = self.booster_inputs[name]
            require(features, names, "predict")
            d = xgb.DMatrix(matrix(features, names, rows), feature_names=names)
            out[rows] = self.boosters[name].predict(d)
        return out

    def predict_correction(self, features: Mapping[str, np.ndarray]) -> np.ndarray:
        """Multiplicative correction to ``cluster_e``, (N,) float64: E_reco = correction × cluster_e.

        ``features``: :func:`~calo_calib.data.high_level.high_level_features` output plus
        ``cluster_e`` [GeV]. correction = (E_true/E_acc)_pred × E_acc / cluster_e; NaN where
        |cluster_e| < 1 keV (no meaningful correction to an empty cluster; never in simulated data).
        """
        require(features, ["cluster_e", "e_acc"], "predict")
        ratio = self.predict_ratio(features)
        cluster_e = np.asarray(features["cluster_e"], dtype=np.float64)
        e_acc = np.asarray(features["e_acc"], dtype=np.float64)
        ok = np.abs(cluster_e) >= EPS_E
        return np.where(ok, ratio * e_acc / np.where(ok, cluster_e, 1.0), np.nan)

    # --- persistence -----------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {
            "particle": self.particle,
            "binned": self.binned,
            "eta_edges": list(self.eta_edges),
            "et_edges": list(self.et_edges),
            "params": self.params,
            "num_boost_round": self.num_boost_round,
            "early_stopping_rounds": self.early_stopping_rounds,
            "min_bin_clusters": self.min_bin_clusters,
            "nthread": self.nthread,
            "loss": self.loss,
            "huber_delta": self.huber_delta,
            "crack_et_edges": list(self.crack_et_edges),
            "crack": list(self.crack),
            "max_train_target": self.max_train_target,
            "features": self.features,
        }

    def save(self, directory: Path | str) -> None:
        """Write ``<directory>/<booster>.json`` then the manifest ``bdt.json`` (each atomically)."""
        save_model(self, directory)

    @classmethod
    def load(cls, directory: Path | str, nthread: int | None = None) -> BDTModel:
        """Load a model written by :meth:`save` (``nthread`` overrides the saved thread count)."""
        return load_model(cls, directory, nthread)

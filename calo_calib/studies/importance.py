"""Permutation importance of a network calibration's inputs, and calorimeter-layer ablation.

Figure of merit: σ_rel = IQR / (1.349 · mean) of E_reco / E_true (:func:`calo_calib.evaluation.metrics.sigma_rel`),
inclusive and per (|η|, E_true) region of the run's evaluation binning (the ``vs_e_abs_eta`` table of
:mod:`calo_calib.evaluation.report`: coarse |η| edges × true-energy edges). For every input

    importance = σ_rel(perturbed) / σ_rel(nominal) - 1        (0: the network does not use it)

Perturbations (each on the whole evaluation sample, held in memory as the loader's batches):

* **cell feature** j (a column of ``cells``): its values are permuted across *all valid cells* of
  the sample (cells of different clusters and batches mix); padded positions stay as they are;
* **cluster feature** j (a column of ``cluster``): permuted across all clusters;
* **pair column** (``gnn_edge`` only: η, φ, x, y, z, layer, E of the ``pair`` tensor its edge
  features are computed from): permuted across all valid cells, like a cell feature;
* **layer ablation** (presampler, strips, middle, back; the layer index is ``pair[..., 5]``, the raw
  ``cell_layer``, whatever the cell features are): the layer's cells are marked invalid (and
  zeroed, as padding is). Clusters left without any valid cell are excluded and counted; the
  nominal σ_rel of that row is recomputed on the same remaining clusters. Nothing else is
  recomputed: cell features such as ``e_frac_layer`` and the cluster features (``e_ps``, ``e_l1``,
  ...) keep their nominal values, so the ablation measures what the *cells* of a layer add beyond
  the cluster-level layer energies.

Uncertainties: permutations are repeated ``repeats`` times with seeds ``(seed, input, repeat)``;
the importance is the mean over repeats and ``err`` the standard deviation (ddof = 1) of the
repeats. ``err_stat`` is the statistical error of the first repeat from a paired bootstrap of the
test clusters (the same resampled clusters in nominal and perturbed σ_rel); for the deterministic
layer ablation ``err`` is ``err_stat``.

Caveat (also in ``docs/studies.md``): permuting one feature while a correlated one stays intact
(``x``/``y``/``z`` and ``deta``/``dphi``; ``layer`` and the pair ``layer``; ``cluster_e`` and the layer
energies) lets the network recover the information from its partner, so permutation importance
*underestimates* the importance of correlated features; permuting also creates unphysical inputs
(a cell position from another cluster), off the training distribution.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from calo_calib.data.features import PAIR_COLUMNS
from calo_calib.evaluation.binning import ABS_ETA_COARSE_EDGES, ENERGY_EDGES, assign_bins, check_edges
from calo_calib.evaluation.metrics import BOOTSTRAP_CHUNK_ELEMENTS, sigma_rel

Batch = dict[str, torch.Tensor]
PathLike = str | os.PathLike[str]

PAIR_LAYER = PAIR_COLUMNS.index("cell_layer")
"""Column of the raw layer index in the ``pair`` tensor (B, L, 7)."""

PAIR_NAMES: tuple[str, ...] = ("eta", "phi", "x", "y", "z", "layer", "e")
"""Short names of the ``pair`` columns (:data:`calo_calib.data.features.PAIR_COLUMNS` order)."""

LAYERS: dict[int, str] = {0: "presampler", 1: "strips (L1)", 2: "middle (L2)", 3: "back (L3)"}
"""Layers ablated (the simulation has no TileGap3 cells, index 4)."""

DEFINITION = (
    "importance = sigma_rel(perturbed) / sigma_rel(nominal) - 1, sigma_rel = IQR(E_reco/E_true) / "
    "(1.349 * mean(E_reco/E_true)); permutation: mean over repeats, err = std over repeats; layer "
    "ablation: deterministic, err = paired bootstrap"
)

CAVEATS = (
    "Permuting a feature that is correlated with another input (x/y/z, deta/dphi, layer and e_frac_layer, "
    "cluster_e and the layer energies, the gnn_edge pair columns and the cell features) underestimates its "
    "importance: the network can recover the information from the intact partner.",
    "Permuted inputs are off the training distribution (e.g. a cell position from another cluster), so an "
    "importance measures the damage of breaking the feature, not a physical sensitivity.",
    "Layer ablation removes the layer's cells only; e_frac_layer and the cluster features keep their nominal "
    "values (they still carry the layer energies).",
)


# --- the evaluation sample --------------------------------------------------------------------


@dataclass
class Sample:
    """The evaluation clusters in memory, as the loader's batches (CPU tensors).

    ``batches``: dicts with cells (B, L, F_cell), valid (B, L), cluster (B, F_cluster), pair (B, L, 7),
    cluster_e (B,) [GeV], row_id (B,), ... (``calo_calib.data.loader``). ``truth_e`` [GeV] and
    ``abs_eta`` are (N,) arrays in the order of the batches' rows (N clusters in all).
    """

    batches: list[Batch]
    truth_e: np.ndarray
    abs_eta: np.ndarray
    cell_features: list[str]
    cluster_features: list[str]

    @property
    def n_clusters(self) -> int:
        return int(self.truth_e.size)

    @property
    def cluster_e(self) -> np.ndarray:
        """(N,) raw cluster energy [GeV]."""
        return torch.cat([b["cluster_e"] for b in self.batches]).double().numpy()

    @property
    def n_cells(self) -> int:
        """Valid cells of all clusters."""
        return int(sum(int(b["valid"].sum()) for b in self.batches))


def load_sample(
    calibration: Any,
    paths: PathLike | Sequence[PathLike],
    max_clusters: int | None = None,
    batch_size: int | None = None,
) -> Sample:
    """Read the first ``max_clusters`` selected clusters of ``paths`` with the run's features and selection.

    Args:
        calibration: a :class:`calo_calib.calibration.NetworkCalibration` (``.cfg``, ``.model``).
        paths: dataset directories / Parquet files (the run's test split usually).
        max_clusters: None = all selected clusters.
        batch_size: clusters per batch (None: the run's ``data.eval_batch_size``). ``gnn_edge`` holds
            O(B·L²) pair features per batch: smaller batches bound its memory.

    Raises:
        TypeError: for a calibration without a network (the BDT: use :func:`bdt_gain_importance`).
        ValueError: if no cluster is selected, or a row_id has no truth (a loader bug).
    """
    from calo_calib.calibration import cell_and_cluster_features, make_dataset

    if not isinstance(getattr(calibration, "model", None), torch.nn.Module):
        raise TypeError(
            f"permutation importance needs a network calibration (transformer, gnn_edge); got {type(calibration).__name__}"
        )
    cfg = calibration.cfg
    dataset = make_dataset(cfg, paths, max_clusters=max_clusters, batch_size=batch_size)
    batches = list(dataset.batches(0))
    if not batches:
        raise ValueError(f"no selected cluster in {paths}: nothing to evaluate")
    row_id = torch.cat([b["row_id"] for b in batches]).numpy()
    table = dataset.scalar_table(["truth_e", "cluster_eta"])
    ids = table.column("row_id").to_numpy()
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids, row_id, sorter=order)
    if np.any(pos >= ids.size) or np.any(ids[order[np.minimum(pos, ids.size - 1)]] != row_id):
        raise ValueError(f"{paths}: batches hold row_ids missing from the scalar table (loader inconsistency)")
    idx = order[pos]
    cells, clusters = cell_and_cluster_features(cfg)
    return Sample(
        batches=batches,
        truth_e=table.column("truth_e").to_numpy().astype(np.float64)[idx],
        abs_eta=np.abs(table.column("cluster_eta").to_numpy().astype(np.float64))[idx],
        cell_features=cells,
        cluster_features=clusters,
    )


# --- perturbations ----------------------------------------------------------------------------


def permute_cell_column(batches: Sequence[Batch], key: str, column: int, rng: np.random.Generator) -> list[Batch]:
    """Batches with ``batch[key][..., column]`` permuted across all valid cells of all batches.

    ``key`` is ``"cells"`` (B, L, F_cell) or ``"pair"`` (B, L, 7). Padded positions are untouched;
    the inputs are not modified (the perturbed tensor is a copy, the others are shared).
    """
    values = torch.cat([b[key][..., column][b["valid"]] for b in batches])
    shuffled = values[torch.from_numpy(rng.permutation(values.numel()))]
    out, start = [], 0
    for b in batches:
        valid = b["valid"]
        n = int(valid.sum())
        t = b[key].clone()
        col = t[..., column]  # a view: writing into it writes into t
        col[valid] = shuffled[start : start + n]
        start += n
        out.append({**b, key: t})
    return out


def permute_cluster_column(batches: Sequence[Batch], column: int, rng: np.random.Generator) -> list[Batch]:
    """Batches with ``cluster[:, column]`` permuted across all clusters of all batches."""
    values = torch.cat([b["cluster"][:, column] for b in batches])
    shuffled = values[torch.from_numpy(rng.permutation(values.numel()))]
    out, start = [], 0
    for b in batches:
        n = b["cluster"].shape[0]
        t = b["cluster"].clone()
        t[:, column] = shuffled[start : start + n]
        start += n
        out.append({**b, "cluster": t})
    return out


@dataclass
class Ablation:
    """Result of :func:`ablate_layer`: the batches without the layer's cells (and without the
    clusters left empty), ``keep`` (N,) bool over the original clusters, and the counts."""

    batches: list[Batch]
    keep: np.ndarray
    n_cells_removed: int

    @property
    def n_clusters_excluded(self) -> int:
        return int((~self.keep).sum())


def ablate_layer(batches: Sequence[Batch], layer: int) -> Ablation:
    """Mark every valid cell of calorimeter ``layer`` (``pair[..., 5]``) invalid and zero it, as padding.

    Clusters with no valid cell left are dropped from their batch (a network needs >= 1 valid cell)
    and flagged False in ``keep``; every tensor with a leading batch dimension is filtered alike.
    """
    out, keep_all, removed = [], [], 0
    for b in batches:
        hit = b["valid"] & (b["pair"][..., PAIR_LAYER] == float(layer))
        removed += int(hit.sum())
        valid = b["valid"] & ~hit
        keep = valid.any(dim=1)
        keep_all.append(keep.numpy())
        new = {**b, "valid": valid, "cells": b["cells"] * valid[..., None], "pair": b["pair"] * valid[..., None]}
        n = b["valid"].shape[0]
        new = {k: (v[keep] if torch.is_tensor(v) and v.dim() >= 1 and v.shape[0] == n else v) for k, v in new.items()}
        if int(keep.sum()) > 0:
            out.append(new)
    return Ablation(out, np.concatenate(keep_all), removed)


# --- predictions and resolution ---------------------------------------------------------------


def predict_corrections(
    model: torch.nn.Module, batches: Sequence[Batch], device: str | torch.device = "cpu"
) -> np.ndarray:
    """The network's correction E_reco / cluster_e for every row of ``batches``, (N,) float64, in order
    (the training code's inference, :func:`calo_calib.training.loop.predict`, in fp32)."""
    from calo_calib.training.distributed import DistEnv
    from calo_calib.training.loop import predict

    if not batches:
        return np.empty(0)
    env = DistEnv(0, 0, 1, torch.device(device))
    return predict(model.to(env.device), batches, env, precision="fp32")["correction"].astype(np.float64)


@dataclass(frozen=True)
class Regions:
    """(|η|, E_true) regions: ``flat`` (N,) region index (abs_eta slowest) or -1 outside the edges."""

    eta_edges: np.ndarray
    e_edges: np.ndarray
    flat: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return self.eta_edges.size - 1, self.e_edges.size - 1

    @property
    def n(self) -> int:
        return self.shape[0] * self.shape[1]

    def rows(self) -> list[dict[str, float | int]]:
        """One dict per region: abs_eta_lo/hi, truth_e_lo/hi [GeV], n (clusters)."""
        counts = np.bincount(self.flat[self.flat >= 0], minlength=self.n)
        out = []
        for r in range(self.n):
            i, j = divmod(r, self.shape[1])
            out.append({"abs_eta_lo": float(self.eta_edges[i]), "abs_eta_hi": float(self.eta_edges[i + 1]),
                        "truth_e_lo": float(self.e_edges[j]), "truth_e_hi": float(self.e_edges[j + 1]),
                        "n": int(counts[r])})  # fmt: skip
        return out


def make_regions(
    truth_e: np.ndarray,
    abs_eta: np.ndarray,
    e_edges: Sequence[float] = ENERGY_EDGES,
    eta_edges: Sequence[float] = ABS_ETA_COARSE_EDGES,
) -> Regions:
    """Assign each cluster (true energy [GeV], |η|) to a region (:func:`calo_calib.evaluation.binning.assign_bins`)."""
    ee, he = check_edges(e_edges, "truth_e edges"), check_edges(eta_edges, "abs_eta edges")
    ie, ih = assign_bins(truth_e, ee), assign_bins(abs_eta, he)
    flat = np.where((ie >= 0) & (ih >= 0), ih * (ee.size - 1) + ie, -1).astype(np.int64)
    return Regions(he, ee, flat)


def _groups(regions: Regions, mask: np.ndarray, min_count: int) -> list[np.ndarray | None]:
    """Cluster indices of the inclusive sample (first) and of every region, among ``mask``; None below min_count."""
    out: list[np.ndarray | None] = []
    for g in [np.flatnonzero(mask)] + [np.flatnonzero(mask & (regions.flat == r)) for r in range(regions.n)]:
        out.append(g if g.size >= max(min_count, 1) else None)
    return out


def _sigmas(ratio: np.ndarray, groups: list[np.ndarray | None]) -> np.ndarray:
    """σ_rel of ``ratio`` in each group (NaN for None), (1 + R,)."""
    return np.array([float(sigma_rel(ratio[g])) if g is not None else np.nan for g in groups])


def _paired_bootstrap(
    nominal: np.ndarray, perturbed: np.ndarray, groups: list[np.ndarray | None], n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """Std (ddof = 1) of σ_rel(perturbed)/σ_rel(nominal) - 1 over ``n_boot`` paired resamples, per group."""
    out = np.full(len(groups), np.nan)
    if n_boot < 2:
        return out
    for k, g in enumerate(groups):
        if g is None:
            continue
        a, b = nominal[g], perturbed[g]
        chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // (2 * g.size))
        vals = []
        for start in range(0, n_boot, chunk):
            idx = rng.integers(0, g.size, size=(min(chunk, n_boot - start), g.size))
            vals.append(sigma_rel(b[idx]) / sigma_rel(a[idx]) - 1.0)
        out[k] = float(np.concatenate(vals).std(ddof=1))
    return out


# --- the study --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    """One input to perturb: ``kind`` cell | cluster | pair | layer, ``name``, ``index`` (column or layer)."""

    kind: str
    name: str
    index: int

    @property
    def label(self) -> str:
        return f"{self.kind}: {self.name}"


def uses_pair(model: torch.nn.Module) -> bool:
    """Whether the network reads the ``pair`` tensor (the edge-feature transformer ``gnn_edge``)."""
    from calo_calib.models.gnn_edge import EdgeTransformer

    return isinstance(model, EdgeTransformer)


def perturbations(sample: Sample, with_pair: bool, layers: Sequence[int] = tuple(LAYERS)) -> list[Perturbation]:
    """Every cell feature, cluster feature, pair column (if ``with_pair``) and layer ablation."""
    out = [Perturbation("cell", n, j) for j, n in enumerate(sample.cell_features)]
    out += [Perturbation("cluster", n, j) for j, n in enumerate(sample.cluster_features)]
    if with_pair:
        out += [Perturbation("pair", n, j) for j, n in enumerate(PAIR_NAMES)]
    for layer in layers:
        if layer not in LAYERS:
            raise ValueError(f"layer ablation: unknown layer {layer}; valid: {LAYERS}")
        out.append(Perturbation("layer", LAYERS[layer], int(layer)))
    return out


def _permuted(sample: Sample, p: Perturbation, rng: np.random.Generator) -> list[Batch]:
    if p.kind == "cell":
        return permute_cell_column(sample.batches, "cells", p.index, rng)
    if p.kind == "pair":
        return permute_cell_column(sample.batches, "pair", p.index, rng)
    if p.kind == "cluster":
        return permute_cluster_column(sample.batches, p.index, rng)
    raise ValueError(f"not a permutation: {p}")


def feature_importance(
    model: torch.nn.Module,
    sample: Sample,
    *,
    repeats: int = 3,
    seed: int = 0,
    n_boot: int = 50,
    min_count: int = 30,
    e_edges: Sequence[float] = ENERGY_EDGES,
    eta_edges: Sequence[float] = ABS_ETA_COARSE_EDGES,
    layers: Sequence[int] = tuple(LAYERS),
    device: str | torch.device = "cpu",
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Permutation importance of every input and layer ablation of ``model`` on ``sample``.

    Args:
        model: a network (forward ``(cells, valid, cluster, pair)`` -> correction (B,) or NetworkOutput).
        sample: :func:`load_sample`.
        repeats: permutations per input (>= 1; >= 2 for an ``err``).
        seed: permutation seeds are ``(seed, input index, repeat)``; the bootstrap uses ``(seed, input index)``.
        n_boot: paired bootstrap resamples for ``err_stat`` (< 2: NaN).
        min_count: regions (and samples) with fewer clusters give NaN.
        e_edges, eta_edges: true-energy [GeV] and |η| region edges.
        layers: layer indices to ablate.
        device: where the model runs (moved there).
        progress: tqdm bar over the forward passes.

    Returns:
        A JSON-able dict (NaN where undefined): ``definition``, ``caveats``, ``n_clusters``,
        ``n_cells``, ``repeats``, ``seed``, ``n_boot``, ``min_count``, ``edges``, ``regions`` (one row
        per region, abs_eta slowest, with its cluster count), ``nominal`` (``sigma_rel``,
        ``regions``: σ_rel per region), and ``inputs``: one dict per perturbation with ``kind``,
        ``name``, ``label``, ``importance``, ``err``, ``err_stat``, ``repeats`` (inclusive importance
        of each repeat), ``sigma_rel`` (perturbed, inclusive) and ``regions``: {importance, err,
        err_stat} lists (R,); layer ablations add ``n_cells_removed``, ``n_clusters_excluded``.

    Raises:
        ValueError: ``repeats < 1`` or a non-finite E_reco / E_true (NaN network output).
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    model = model.to(device)
    regions = make_regions(sample.truth_e, sample.abs_eta, e_edges, eta_edges)
    scale = sample.cluster_e / sample.truth_e  # E_reco / E_true = correction * cluster_e / truth_e
    everyone = np.ones(sample.n_clusters, dtype=bool)
    all_groups = _groups(regions, everyone, min_count)
    todo = perturbations(sample, uses_pair(model), layers)
    n_passes = 1 + sum(repeats if p.kind != "layer" else 1 for p in todo)
    bar = tqdm(total=n_passes, desc="feature importance", unit="pass", disable=not progress)

    def ratio_of(batches: Sequence[Batch], keep: np.ndarray = everyone) -> np.ndarray:
        r = predict_corrections(model, batches, device) * scale[keep]
        if not np.all(np.isfinite(r)):
            raise ValueError(f"{int((~np.isfinite(r)).sum())} non-finite E_reco/E_true: the network output is NaN/inf")
        bar.update(1)
        return r

    nominal = ratio_of(sample.batches)
    nominal_sigma = _sigmas(nominal, all_groups)
    inputs = []
    for k, p in enumerate(todo):
        if on_step is not None:
            on_step(p.label)
        bar.set_postfix_str(p.label)
        boot_rng = np.random.default_rng([seed, k, 1_000_003])
        entry: dict[str, Any] = {"kind": p.kind, "name": p.name, "label": p.label}
        if p.kind == "layer":
            abl = ablate_layer(sample.batches, p.index)
            full = np.full(sample.n_clusters, np.nan)
            full[abl.keep] = ratio_of(abl.batches, abl.keep)
            groups = _groups(regions, abl.keep, min_count)
            nom_s = _sigmas(nominal, groups)  # nominal on the same surviving clusters
            imp = _sigmas(np.where(abl.keep, full, 0.0), groups) / nom_s - 1.0
            err = _paired_bootstrap(nominal, np.where(abl.keep, full, 0.0), groups, n_boot, boot_rng)
            per_repeat, err_rep, sigma = imp[None, :], err, _sigmas(np.where(abl.keep, full, 0.0), groups)[0]
            entry.update(n_cells_removed=abl.n_cells_removed, n_clusters_excluded=abl.n_clusters_excluded)
        else:
            rows, first = [], None
            for rep in range(repeats):
                pert = ratio_of(_permuted(sample, p, np.random.default_rng([seed, k, rep])))
                rows.append(_sigmas(pert, all_groups) / nominal_sigma - 1.0)
                first = pert if first is None else first
            per_repeat = np.stack(rows)  # (repeats, 1 + R)
            imp = per_repeat.mean(axis=0)
            err_rep = per_repeat.std(axis=0, ddof=1) if repeats > 1 else np.full(imp.shape, np.nan)
            err = _paired_bootstrap(nominal, first, all_groups, n_boot, boot_rng)
            sigma = nominal_sigma[0] * (1.0 + imp[0])
        entry.update(
            importance=float(imp[0]), err=float(err_rep[0]), err_stat=float(err[0]),
            repeats=[float(v) for v in per_repeat[:, 0]], sigma_rel=float(sigma),
            regions={"importance": imp[1:].tolist(), "err": err_rep[1:].tolist(), "err_stat": err[1:].tolist()},
        )  # fmt: skip
        inputs.append(entry)
    bar.close()
    return {
        "definition": DEFINITION,
        "caveats": list(CAVEATS),
        "n_clusters": sample.n_clusters,
        "n_cells": sample.n_cells,
        "repeats": int(repeats),
        "seed": int(seed),
        "n_boot": int(n_boot),
        "min_count": int(min_count),
        "edges": {"truth_e": regions.e_edges.tolist(), "abs_eta": regions.eta_edges.tolist()},
        "regions": regions.rows(),
        "nominal": {"sigma_rel": float(nominal_sigma[0]), "regions": nominal_sigma[1:].tolist()},
        "inputs": inputs,
    }


# --- BDT --------------------------------------------------------------------------------------


def bdt_gain_importance(bdt: Any) -> list[dict[str, Any]]:
    """XGBoost total-gain importance of a :class:`calo_calib.models.bdt.BDTCalibration`, summed over its boosters.

    Returns:
        One dict per input, sorted by decreasing gain: ``name``, ``total_gain`` (sum over the
        boosters' splits on it), ``fraction`` (of the summed gain of all inputs), ``n_boosters``
        (boosters that split on it at least once). Gain is a training-time quantity (loss reduction
        of the splits), not a test-set resolution change: not comparable with the network numbers.

    Raises:
        ValueError: if the BDT has no trained booster.
    """
    boosters = getattr(bdt, "boosters", None)
    if not boosters:
        raise ValueError("bdt_gain_importance: the BDT has no trained booster")
    gain: dict[str, float] = {}
    used: dict[str, int] = {}
    for name, booster in boosters.items():
        inputs = list(bdt.booster_inputs[name])
        for key, value in booster.get_score(importance_type="total_gain").items():
            # feature names are stored with the boosters; f<i> only if a booster was saved without them
            feat = inputs[int(key[1:])] if key not in inputs and key.startswith("f") and key[1:].isdigit() else key
            gain[feat] = gain.get(feat, 0.0) + float(value)
            used[feat] = used.get(feat, 0) + 1
    total = sum(gain.values())
    rows = [{"name": f, "total_gain": g, "fraction": g / total if total > 0 else float("nan"), "n_boosters": used[f]}
            for f, g in gain.items()]  # fmt: skip
    return sorted(rows, key=lambda r: -r["total_gain"])

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

Code: the evaluation sample and predictions in :mod:`~calo_calib.studies.importance_sample`, the
perturbations in :mod:`~calo_calib.studies.importance_perturbations`, σ_rel per region and the paired
bootstrap in :mod:`~calo_calib.studies.importance_stats`, the BDT gain table in
:mod:`~calo_calib.studies.importance_bdt`; this module runs the study (:func:`feature_importance`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from calo_calib.evaluation.binning import ABS_ETA_COARSE_EDGES, ENERGY_EDGES
from calo_calib.studies.importance_perturbations import ablate_layer, permute_cell_column, permute_cluster_column
from calo_calib.studies.importance_sample import Batch, Sample, predict_corrections
from calo_calib.studies.importance_stats import Regions, group_sigmas, make_regions, paired_bootstrap, region_groups

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



# --- the study ---------------------------------------------------------------------------------


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
    """The sample's batches with input ``p`` (cell, pair or cluster column) permuted."""
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
    # ~90 lines with the docstring (the result's JSON schema); the body (~55 lines) is the loop over
    # the perturbations, whose per-kind statistics are in _layer_ablation / _permutation.
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    model = model.to(device)
    regions = make_regions(sample.truth_e, sample.abs_eta, e_edges, eta_edges)
    scale = sample.cluster_e / sample.truth_e  # E_reco / E_true = correction * cluster_e / truth_e
    everyone = np.ones(sample.n_clusters, dtype=bool)
    all_groups = region_groups(regions, everyone, min_count)
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
    nominal_sigma = group_sigmas(nominal, all_groups)
    inputs = []
    for k, p in enumerate(todo):
        if on_step is not None:
            on_step(p.label)
        bar.set_postfix_str(p.label)
        boot_rng = np.random.default_rng([seed, k, 1_000_003])
        entry: dict[str, Any] = {"kind": p.kind, "name": p.name, "label": p.label}
        if p.kind == "layer":
            stats, extra = _layer_ablation(sample, p, ratio_of, nominal, regions, min_count, n_boot, boot_rng)
            entry.update(extra)
        else:
            rngs = [np.random.default_rng([seed, k, rep]) for rep in range(repeats)]
            stats = _permutation(sample, p, ratio_of, rngs, nominal, nominal_sigma, all_groups, n_boot, boot_rng)
        entry.update(_entry_values(*stats))
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


Stats = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]
"""(importance (1 + R,), per-repeat importances (repeats, 1 + R), err over repeats (1 + R,),
bootstrap err (1 + R,), perturbed inclusive σ_rel) of one input."""


def _layer_ablation(
    sample: Sample, p: Perturbation, ratio_of: Callable[..., np.ndarray], nominal: np.ndarray, regions: Regions,
    min_count: int, n_boot: int, boot_rng: np.random.Generator,
) -> tuple[Stats, dict[str, int]]:  # fmt: skip
    """Deterministic ablation of layer ``p.index``: σ_rel on the surviving clusters against the nominal
    on the same clusters; ``err`` is the paired bootstrap. Also the removed-cell and excluded-cluster counts."""
    abl = ablate_layer(sample.batches, p.index)
    full = np.full(sample.n_clusters, np.nan)
    full[abl.keep] = ratio_of(abl.batches, abl.keep)
    groups = region_groups(regions, abl.keep, min_count)
    nom_s = group_sigmas(nominal, groups)  # nominal on the same surviving clusters
    imp = group_sigmas(np.where(abl.keep, full, 0.0), groups) / nom_s - 1.0
    err = paired_bootstrap(nominal, np.where(abl.keep, full, 0.0), groups, n_boot, boot_rng)
    sigma = group_sigmas(np.where(abl.keep, full, 0.0), groups)[0]
    extra = {"n_cells_removed": abl.n_cells_removed, "n_clusters_excluded": abl.n_clusters_excluded}
    return (imp, imp[None, :], err, err, sigma), extra


def _permutation(
    sample: Sample, p: Perturbation, ratio_of: Callable[..., np.ndarray], rngs: Sequence[np.random.Generator],
    nominal: np.ndarray, nominal_sigma: np.ndarray, groups: list[np.ndarray | None], n_boot: int,
    boot_rng: np.random.Generator,
) -> Stats:  # fmt: skip
    """One permutation of input ``p`` per generator of ``rngs``: mean importance, spread over the
    repeats (NaN for one repeat) and the paired bootstrap of the first repeat."""
    rows, first = [], None
    for rng in rngs:
        pert = ratio_of(_permuted(sample, p, rng))
        rows.append(group_sigmas(pert, groups) / nominal_sigma - 1.0)
        first = pert if first is None else first
    per_repeat = np.stack(rows)  # (repeats, 1 + R)
    imp = per_repeat.mean(axis=0)
    err_rep = per_repeat.std(axis=0, ddof=1) if len(rngs) > 1 else np.full(imp.shape, np.nan)
    err = paired_bootstrap(nominal, first, groups, n_boot, boot_rng)
    sigma = nominal_sigma[0] * (1.0 + imp[0])
    return imp, per_repeat, err_rep, err, sigma


def _entry_values(imp: np.ndarray, per_repeat: np.ndarray, err_rep: np.ndarray, err: np.ndarray, sigma) -> dict:
    """The JSON fields of one input: inclusive values (index 0) and the per-region lists."""
    return dict(
        importance=float(imp[0]), err=float(err_rep[0]), err_stat=float(err[0]),
        repeats=[float(v) for v in per_repeat[:, 0]], sigma_rel=float(sigma),
        regions={"importance": imp[1:].tolist(), "err": err_rep[1:].tolist(), "err_stat": err[1:].tolist()},
    )  # fmt: skip

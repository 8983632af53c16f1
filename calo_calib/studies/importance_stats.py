"""The feature-importance study's figure of merit: σ_rel per (|η|, E_true) region and its paired bootstrap.

σ_rel = IQR / (1.349 · mean) of E_reco / E_true (:func:`calo_calib.evaluation.metrics.sigma_rel`),
inclusive and per region of the run's evaluation binning (:func:`make_regions`); the statistical
error of an importance is the spread of σ_rel(perturbed)/σ_rel(nominal) − 1 over paired resamples
of the clusters (:func:`paired_bootstrap`). Method: :mod:`calo_calib.studies.importance`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calo_calib.evaluation.binning import ABS_ETA_COARSE_EDGES, ENERGY_EDGES, assign_bins, check_edges
from calo_calib.evaluation.metrics import BOOTSTRAP_CHUNK_ELEMENTS, sigma_rel


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


def region_groups(regions: Regions, mask: np.ndarray, min_count: int) -> list[np.ndarray | None]:
    """Cluster indices of the inclusive sample (first) and of every region, among ``mask``; None below min_count."""
    out: list[np.ndarray | None] = []
    for g in [np.flatnonzero(mask)] + [np.flatnonzero(mask & (regions.flat == r)) for r in range(regions.n)]:
        out.append(g if g.size >= max(min_count, 1) else None)
    return out


def group_sigmas(ratio: np.ndarray, groups: list[np.ndarray | None]) -> np.ndarray:
    """σ_rel of ``ratio`` in each group (NaN for None), (1 + R,)."""
    return np.array([float(sigma_rel(ratio[g])) if g is not None else np.nan for g in groups])


def paired_bootstrap(
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

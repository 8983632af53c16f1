"""ATLAS egamma shower-shape variables from a cluster's cells, vectorised over many clusters.

:func:`shower_shapes` computes, for B clusters at once (no Python loop over clusters), the standard
ATLAS electron/photon identification variables plus a few cell-count and width summaries. Every
output is a (B,) float64 array. Cells come flattened: the (N,) arrays of all cells of all clusters
one after another, and ``seg`` (N,) the cluster index of each cell
(:func:`~calo_calib.data.cell_segments.flatten_cells` builds them from Parquet list columns, using the
list offsets).

Definitions
-----------
Window sizes are in cells of the named layer, centred on the hottest cell of the middle layer (the
cell with the largest energy among the cluster's middle-layer cells), as in athena's
``egammaMiddleShape`` / ``egammaStripsShape``. Window membership is the rounded index distance to
that cell, ``round(Δη / Δη_cell)`` and ``round(Δφ / Δφ_cell)`` with Δφ wrapped to [−π, π]; the cell
sizes come from :mod:`calo_calib.simulation.geometry` (``BARREL_REGIONS`` / ``ENDCAP_REGIONS`` at the
|η| of the hottest middle cell, the end-cap geometry from |η| ≥
:data:`~calo_calib.data.shower_shapes_middle.BARREL_END`; ``N_PHI``).

Middle layer (``egammaMiddleShape``, ATLAS EPJC 79 (2019) 639 Table 1, EPJC 79 (2019) 205 Table 2):

* ``r_eta`` = E(3×7) / E(7×7) (η × φ middle cells);
* ``r_phi`` = E(3×3) / E(3×7);
* ``w_eta2`` = √(Σ E η² / Σ E − (Σ E η / Σ E)²) over the 3×5 window (``CaloLayerCalculator::etas``;
  the ATLAS correction for the position within the cell, ``egammaqweta2c``, is not applied); 0 when
  Σ E ≤ 0 or the variance is negative.

Strips (``egammaStripsShape``; same papers). The strips within ±2.5 middle cells in η and ±1 strip
cell in φ of the hottest middle cell are summed over φ at equal η, giving a 1-D profile E_i with i
the strip index in η (strip units). i_max is the hottest strip of the profile, E1max its energy.

* ``w_s_tot`` = √(Σ E_i (i − i_max)² / Σ E_i) over the strips within ±1.25 middle cells of the hottest
  middle cell (≈ 20 strips in the barrel, ``setWstot``); 0 when the sums are ≤ 0;
* ``w_s3`` = the same over the 3 strips i_max − 1 … i_max + 1 (``setWs3``);
* ``f_side`` = E(±3 strips) / E(±1 strip) − 1 around i_max (``setFside``); 0 when E1max ≤ 60 MeV
  (the ATLAS threshold);
* ``e_ratio`` = (E1max − E2max) / (E1max + E2max); E2max is the energy of the second local maximum
  (the hottest strip with E > 0, other than i_max, hotter than its nearest existing neighbours on
  both sides, ``setEmax2``); with no second maximum E2max = 0 and ``e_ratio`` = 1;
* ``delta_e`` = E2max − E_min [GeV], E_min the lowest strip strictly between the two maxima
  (``setEmin``: 0 when there is no second maximum or no strip between them).

Longitudinal: ``f1`` = E_L1 / E and ``f3`` = E_L3 / E with E = ``cluster_e`` (EPJC 79 (2019) 639).

Summaries (not ATLAS identification variables; defined here):

* ``n_cells_<ps|l1|l2|l3>``: the cluster's cells per layer;
* ``w_eta_<layer>``, ``w_phi_<layer>``: energy-weighted η and φ [rad] standard deviation of the
  layer's cells, about their own weighted mean (φ as Δφ to ``cluster_phi``, wrapped); 0 when Σ E ≤ 0;
* ``e_max_frac``: the hottest cell's energy (any layer) / ``cluster_e``;
* ``neg_e_frac``: Σ |E| of the negative cells / Σ |E| of all cells ∈ [0, 1];
* with ``cell_noise``: ``n_cells_below_2sigma`` (cells with |E| < 2 σ_noise, the cells that only
  the topo-cluster boundary step admits) and ``e_below_2sigma`` (their summed energy, GeV).

Code: the middle-layer variables in :mod:`calo_calib.data.shower_shapes_middle`, the strip
variables in :mod:`calo_calib.data.shower_shapes_strips`, the summaries in
:mod:`calo_calib.data.shower_shapes_summary`, the flattened-cell helpers (per-cluster reductions,
cell sizes) in :mod:`calo_calib.data.cell_segments`; this module holds the names, the input checks
and the entry points :func:`shower_shapes` and :func:`shower_shapes_from_table`.

Ratio guards: every ratio whose |denominator| is below :data:`~calo_calib.data.cell_segments.EPS_E`
(1 keV) is 0 (``e_ratio`` included), as the high-level BDT inputs do; a cluster without middle-layer
cells has all middle-layer variables 0, one without strips (or with no strip above 0 GeV) all strip
variables 0. No output is NaN or inf for finite inputs.

Simplifications
---------------
* **Only the cluster's cells.** ATLAS computes the middle-layer windows from all calorimeter cells
  and the strip profile from the cluster's cells; here the Parquet rows hold only the cells of the
  egamma supercluster (topo-cluster cells within ±1.5 middle cells in η of the hottest middle cell
  in the barrel, ±2.5 in the end-cap; docs/simulation.md). The 7×7 window is therefore truncated to
  3 (barrel) or 5 (end-cap) cells in η: in the barrel ``r_eta`` = 1 exactly (E(3×7) and E(7×7)
  contain the same cells), and in the end-cap it measures E(3×7)/E(5×7). The strip windows (20
  strips) fit into the supercluster's ±1.5 middle cells (24 strips) in the barrel.
* One cell size per layer and cluster (the simulation's windows use the granularity of the region
  at the window centre); clusters within a cell of a granularity boundary (|η| = 1.4, 1.8, 2.0,
  2.4, the crack) can get slightly wrong index distances. ATLAS does not compute strip variables
  for 1.4 < |η| < 1.5 or |η| > 2.4; here they are computed everywhere.
* Index distances are geometric (a strip missing from the cluster still counts as a strip in the
  distances); ATLAS counts positions in its compacted strip array. F_side uses the strips within
  ±1 and ±3 of i_max (ATLAS takes the nearest existing strip as the ±1 neighbour).

Comparison with the published peaks (../shared/docs/physics_cells.md §2: ATLAS Geant4 MC, E_T 20–50
GeV, |η| < 0.8), measured on the default test samples (table in ``docs/models.md``, BDT section,
"Shower shapes"): w_η2 (median 0.0090–0.0095), w_s3 (0.64–0.67, 7–10 % above 0.6), F_side (0.09–0.12)
and E_ratio (0.95–0.96) are in or near the published ranges; R_φ is ≈ 0.02 too close to 1 for
electrons and unconverted photons (converted photons spread over 0.6–1 as published); w_s,tot is
≈ 35 % narrower than ≈ 2 strips; ΔE medians are 60–67 MeV (published < 50 MeV); f1 is low (0.23 e,
0.14 γ_unc, 0.25 γ_conv against ≈ 0.27) and f3 5–10× below 0.01–0.03; R_η is 1 in the barrel by
construction (truncated window, above).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa

from calo_calib.data.cell_segments import flatten_cells, ratio
from calo_calib.data.shower_shapes_middle import middle_shapes
from calo_calib.data.shower_shapes_strips import strip_shapes
from calo_calib.data.shower_shapes_summary import NOISE_SHAPE_NAMES, SUMMARY_SHAPE_NAMES, summaries

ATLAS_SHAPE_NAMES: tuple[str, ...] = (
    "r_eta",
    "r_phi",
    "w_eta2",
    "w_s_tot",
    "w_s3",
    "f_side",
    "e_ratio",
    "delta_e",
    "f1",
    "f3",
)
"""The ATLAS identification shower shapes, in this order."""

SHOWER_SHAPE_NAMES: tuple[str, ...] = ATLAS_SHAPE_NAMES + SUMMARY_SHAPE_NAMES + NOISE_SHAPE_NAMES
"""Every output of :func:`shower_shapes` (with ``cell_noise``), in order."""

CELL_COLUMNS: tuple[str, ...] = ("cell_e", "cell_eta", "cell_phi", "cell_layer")
NOISE_COLUMN = "cell_noise"
CLUSTER_COLUMNS: tuple[str, ...] = (
    "cluster_e",
    "cluster_eta",
    "cluster_phi",
    "cluster_e_ps",
    "cluster_e_l1",
    "cluster_e_l2",
    "cluster_e_l3",
)
"""The scalar (per-cluster) columns :func:`shower_shapes` reads."""


def shower_shape_names(with_noise: bool = True) -> list[str]:
    """The output names of :func:`shower_shapes`, in order (``with_noise``: cells with ``cell_noise``)."""
    return list(SHOWER_SHAPE_NAMES if with_noise else ATLAS_SHAPE_NAMES + SUMMARY_SHAPE_NAMES)


def shower_shape_cell_columns(with_noise: bool = True) -> list[str]:
    """The Parquet list (per-cell) columns :func:`shower_shapes` reads."""
    return list(CELL_COLUMNS) + ([NOISE_COLUMN] if with_noise else [])


# --- the shapes ----------------------------------------------------------------------------------


def shower_shapes(
    cells: Mapping[str, np.ndarray],
    seg: np.ndarray,
    n_clusters: int,
    clusters: Mapping[str, np.ndarray],
) -> dict[str, np.ndarray]:
    """The shower shapes of ``n_clusters`` clusters (definitions in the module docstring).

    Args:
        cells: flattened (N,) arrays of all cells of all clusters: ``cell_e`` [GeV], ``cell_eta``,
            ``cell_phi`` [rad], ``cell_layer`` (0 presampler, 1 strips, 2 middle, 3 back) and, if
            present, ``cell_noise`` [GeV]. Finite values.
        seg: (N,) int, the cluster index (0 … n_clusters − 1) of each cell; the cells of a cluster
            need not be contiguous (they are sorted by ``seg`` first when they are not).
        n_clusters: B.
        clusters: (B,) columns ``cluster_e`` [GeV], ``cluster_eta``, ``cluster_phi`` [rad],
            ``cluster_e_ps``, ``cluster_e_l1``, ``cluster_e_l2``, ``cluster_e_l3`` [GeV].

    Returns:
        ``{name: (B,) float64}`` for every name of :func:`shower_shape_names` (``with_noise`` when
        ``cell_noise`` is in ``cells``).

    Raises:
        ValueError: a missing column, arrays of different lengths, ``seg`` out of range or a
            non-finite cell value.
    """
    B = int(n_clusters)
    for name in CELL_COLUMNS:
        if name not in cells:
            raise ValueError(f"shower shapes: missing cell column {name!r} (have {sorted(cells)})")
    for name in CLUSTER_COLUMNS:
        if name not in clusters:
            raise ValueError(f"shower shapes: missing cluster column {name!r} (have {sorted(clusters)})")
    with_noise = NOISE_COLUMN in cells
    seg = np.asarray(seg, dtype=np.int64)
    e = np.asarray(cells["cell_e"], dtype=np.float64)
    eta = np.asarray(cells["cell_eta"], dtype=np.float64)
    phi = np.asarray(cells["cell_phi"], dtype=np.float64)
    layer = np.asarray(cells["cell_layer"], dtype=np.int64)
    noise = np.asarray(cells[NOISE_COLUMN], dtype=np.float64) if with_noise else None
    n = e.shape[0]
    if any(a.shape != (n,) for a in (seg, eta, phi, layer, *([noise] if noise is not None else []))):
        raise ValueError("shower shapes: cell arrays and seg must all be (N,)")
    if n and (seg.min() < 0 or seg.max() >= B):
        raise ValueError(f"shower shapes: seg must lie in [0, {B}), got [{seg.min()}, {seg.max()}]")
    if not (np.isfinite(e).all() and np.isfinite(eta).all() and np.isfinite(phi).all()):
        raise ValueError("shower shapes: non-finite cell energy or position")
    cl = {k: np.asarray(clusters[k], dtype=np.float64).reshape(B) for k in CLUSTER_COLUMNS}
    if n > 1 and (np.diff(seg) < 0).any():
        order = np.argsort(seg, kind="stable")
        seg, e, eta, phi, layer = seg[order], e[order], eta[order], phi[order], layer[order]
        noise = noise[order] if noise is not None else None

    out: dict[str, np.ndarray] = {}
    out.update(middle_shapes(e, eta, phi, layer, seg, B, cl))
    out.update(
        strip_shapes(e, eta, phi, layer, seg, B, cl, out.pop("_eta_h2"), out.pop("_phi_h2"), out.pop("_endcap"))
    )
    out["f1"] = ratio(cl["cluster_e_l1"], cl["cluster_e"])
    out["f3"] = ratio(cl["cluster_e_l3"], cl["cluster_e"])
    out.update(summaries(e, eta, phi, layer, seg, B, cl, noise))
    return {name: np.asarray(out[name], dtype=np.float64) for name in shower_shape_names(with_noise)}


def shower_shapes_from_table(table: pa.Table, chunk: int = 8192) -> dict[str, np.ndarray]:
    """:func:`shower_shapes` of every row of a table with the cell list columns and cluster columns.

    Processed in chunks of ``chunk`` clusters (bounded memory); ``cell_noise`` is used when present.
    Returns ``{name: (table.num_rows,) float64}``.
    """
    with_noise = NOISE_COLUMN in table.column_names
    cell_cols = shower_shape_cell_columns(with_noise)
    missing = [c for c in cell_cols + list(CLUSTER_COLUMNS) if c not in table.column_names]
    if missing:
        raise ValueError(f"shower shapes: missing column(s) {missing} (table has {table.column_names})")
    names = shower_shape_names(with_noise)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for start in range(0, max(table.num_rows, 1), chunk):
        t = table.slice(start, chunk)
        cells, seg = flatten_cells(t, cell_cols)
        clusters = {c: t.column(c).to_numpy() for c in CLUSTER_COLUMNS}
        res = shower_shapes(cells, seg, t.num_rows, clusters)
        for k in names:
            parts[k].append(res[k])
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}

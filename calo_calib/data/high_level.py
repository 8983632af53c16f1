"""ATLAS-like high-level cluster inputs of the BDT baseline (egammaMVACalib, detector card §5.1-5.2).

Computed vectorised from the scalar Parquet columns (``docs/data_format.md``); every array is (N,)
float64, one value per cluster. Units: GeV, rad, X0 (shower depth).

| name | definition | unit |
|---|---|---|
| ``cluster_eta`` | η of the cluster (signed; ATLAS ``clusterEta``) | – |
| ``abs_eta`` | \\|η\\| (used for the binning, and as an input of the unbinned BDT) | – |
| ``e_acc`` | accordion energy E1 + E2 + E3 (``accordionE``; the presampler is excluded) | GeV |
| ``e_t_raw`` | raw E_T = E_acc / cosh η (card §5.1; used for the binning) | GeV |
| ``shower_depth`` | Σ X_i E_i / Σ E_i over (PS, L1, L2, L3), :func:`~calo_calib.physics.observables.shower_depth` | X0 |
| ``f0`` | E_PS / E_acc | – |
| ``r12`` | E1 / E2 (Run-2 ``R12``) | – |
| ``eta_mod_calo`` | position inside the middle-layer cell: \\|η\\| − 0.025·cellIndex ∈ [0, 0.025) | – |
| ``cell_index_calo`` | floor(\\|η\\| / 0.025), the middle-layer cell number | – |
| ``phi_mod_calo`` | fmod(φ + 2π, P), P = π/512 for \\|η\\| < 1.425 else π/384 (accordion absorber period) | rad |
| ``conv_r`` | converted photons only: R_conv, 799 mm without a usable vertex | mm |
| ``conv_pt_ratio`` | converted photons only: max(pT1, pT2)/(pT1 + pT2), 1 unless two Si tracks | – |
| ``conv_et_over_pt`` | converted photons only: E_acc/(cosh η pT_conv), 0 unless two Si tracks | – |

Choices (see ``docs/models_bdt.md``):

* **phiModCalo** follows the card (§4.5/§5.2 [S9]) and the egamma training scripts: the φ position
  within an accordion absorber period (π/512 in the barrel, π/384 in the end-cap, switching at
  |η| = 1.425), which is where the φ modulation of the response lives. It is *not* the position in
  the 2π/256 middle cell. The simulation switches the absorber count at |η| = 1.5 instead of 1.425;
  only the (normally excluded) crack region 1.425-1.5 sees the mismatch.
* **etaModCalo / cellIndexCalo**: ATLAS writes fmod(|η|, 0.025) and floor(|η|/0.025). In floating
  point these two can disagree at an exact cell edge (e.g. |η| = 1.0 gives cellIndex 40 but
  fmod ≈ 0.025), so here ``eta_mod_calo = |η| − 0.025·cell_index_calo``, clipped to [0, 0.025): the
  pair always describes the same point. The calorimeter-frame η is ``cluster_eta`` itself (the
  simulation has no η_calo/η distinction beyond the vertex, which the clusters do not correct for).
* **mu is not an input**: the ATLAS BDT has no pile-up input (card §5.1); the resolution versus μ is
  an evaluation axis, not something the baseline is told.
* **Ratio guards**: layer energies are sums of noisy cells and can be ~0 or negative. A ratio whose
  |denominator| is below :data:`EPS_E` (1 keV, far below one cell's noise) is set to 0 rather than
  divided, so no input is inf/NaN. Negative energies are otherwise used as they are, as ATLAS does.

Feature sets (``features``, the ``model.features`` option of the BDT):

* ``atlas`` (default): the table above, from scalar columns only;
* ``atlas+shapes``: the same plus the shower shapes of :mod:`calo_calib.data.shower_shapes`
  (:data:`~calo_calib.data.shower_shapes.SHOWER_SHAPE_NAMES`: R_η, R_φ, w_η2, w_s,tot, w_s3, F_side,
  E_ratio, ΔE, f1, f3 and per-layer cell counts and widths, ...), computed from the cell list
  columns (:func:`shape_cell_columns`). :func:`dataset_bdt_inputs` reads them for the selected
  clusters of a :class:`~calo_calib.data.loader.ClusterDataset`, file by file and row group by row
  group (memory bounded by one row group).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calo_calib.physics.observables import shower_depth

PARTICLES = ("electron", "photon_unconv", "photon_conv", "photon")
"""Accepted particle names. ``photon`` (all photons, validation samples) gets the conversion inputs
too, since it contains converted photons (unconverted ones carry the defaults 799 / 1 / 0)."""

# Guard (GeV) under which a ratio's denominator counts as zero (see the module docstring).
EPS_E = 1e-6

L2_DETA = 0.025  # middle-layer cell size in eta (card §1)
_CELL_EDGE_NUDGE = 1e-9  # in units of a cell, see eta_cell_position
ETA_PHIMOD_SWITCH = 1.425  # |eta| where phiModCalo switches from the barrel to the end-cap period [S9]
PHIMOD_PERIOD_BARREL = np.pi / 512  # 1024 accordion absorbers in 2 pi
PHIMOD_PERIOD_ENDCAP = np.pi / 384  # 768 absorbers in the end-cap outer wheel

_BASE_COLUMNS = ["cluster_eta", "cluster_phi", "cluster_e_ps", "cluster_e_l1", "cluster_e_l2", "cluster_e_l3"]
_CONV_COLUMNS = ["conv_r", "conv_pt_ratio", "conv_et_over_pt"]

# ATLAS Run-1 inputs (card §5.1) plus the Run-2 R12, in the ATLAS order.
_BASE_INPUTS = [
    "cluster_eta",
    "e_acc",
    "shower_depth",
    "f0",
    "r12",
    "eta_mod_calo",
    "cell_index_calo",
    "phi_mod_calo",
]
# Inputs a booster spanning several (|eta|, E_T) bins gets in addition (unbinned mode, fallbacks):
# without them the trees would have to rebuild |eta| and E_T from cluster_eta and e_acc.
BINLESS_EXTRA_INPUTS = ["abs_eta", "e_t_raw"]


FEATURE_SETS = ("atlas", "atlas+shapes")
"""Accepted values of ``features``: the ATLAS inputs, or the ATLAS inputs plus the shower shapes."""


def check_features(features: str) -> str:
    """``features`` if it is one of :data:`FEATURE_SETS`, else a ValueError naming the choices."""
    if features not in FEATURE_SETS:
        raise ValueError(f"unknown BDT feature set {features!r}: expected one of {FEATURE_SETS}")
    return features


def uses_shapes(features: str) -> bool:
    """Whether the feature set needs the shower shapes (and so the cell list columns)."""
    return check_features(features) == "atlas+shapes"


def _check_particle(particle: str) -> None:
    if particle not in PARTICLES:
        raise ValueError(f"unknown particle {particle!r}: expected one of {PARTICLES}")


def has_conversion_inputs(particle: str) -> bool:
    """Whether ``particle`` gets the three conversion inputs (photon_conv, photon)."""
    _check_particle(particle)
    return particle in ("photon_conv", "photon")


def high_level_columns(particle: str, features: str = "atlas") -> list[str]:
    """The scalar Parquet columns :func:`high_level_features` reads for ``particle``.

    ``features="atlas+shapes"`` adds the cluster columns the shower shapes need (``cluster_e``);
    their cell list columns are :func:`shape_cell_columns`.
    """
    cols = _BASE_COLUMNS + (_CONV_COLUMNS if has_conversion_inputs(particle) else [])
    if uses_shapes(features):
        from calo_calib.data.shower_shapes import CLUSTER_COLUMNS

        cols = cols + [c for c in CLUSTER_COLUMNS if c not in cols]
    return cols


def shape_cell_columns(features: str = "atlas", with_noise: bool = True) -> list[str]:
    """The cell list columns the feature set reads (none for ``atlas``)."""
    if not uses_shapes(features):
        return []
    from calo_calib.data.shower_shapes import shower_shape_cell_columns

    return shower_shape_cell_columns(with_noise)


def bdt_input_names(particle: str, binned: bool = True, features: str = "atlas") -> list[str]:
    """The BDT input names, in order, for ``particle``.

    ``binned=False`` (one booster for all clusters) adds ``abs_eta`` and ``e_t_raw``. Per-bin
    boosters may drop ``f0`` and ``cell_index_calo`` (see :mod:`calo_calib.models.bdt`).
    ``features="atlas+shapes"`` appends :data:`~calo_calib.data.shower_shapes.SHOWER_SHAPE_NAMES`.
    """
    names = list(_BASE_INPUTS) + (list(_CONV_COLUMNS) if has_conversion_inputs(particle) else [])
    if uses_shapes(features):
        from calo_calib.data.shower_shapes import SHOWER_SHAPE_NAMES

        names += list(SHOWER_SHAPE_NAMES)
    return names if binned else names + BINLESS_EXTRA_INPUTS


def _column(data: pa.Table | Mapping[str, np.ndarray], name: str) -> np.ndarray:
    if isinstance(data, pa.Table):
        if name not in data.column_names:
            raise ValueError(f"high-level features: missing column {name!r} (table has {data.column_names})")
        return np.asarray(data.column(name).to_numpy(), dtype=np.float64)
    if name not in data:
        raise ValueError(f"high-level features: missing column {name!r} (have {sorted(data)})")
    return np.asarray(data[name], dtype=np.float64)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``|den| < EPS_E``."""
    ok = np.abs(den) >= EPS_E
    return np.where(ok, num / np.where(ok, den, 1.0), 0.0)


def eta_cell_position(eta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(eta_mod_calo, cell_index_calo) of each η, both (N,) float64 (see the module docstring)."""
    a = np.abs(np.asarray(eta, dtype=np.float64))
    # 0.3 / 0.025 = 11.999999999999998 in floating point: nudge by 1e-9 cell (2.5e-11 in eta, far below
    # any meaningful eta precision) so that a value on a cell edge belongs to the upper cell.
    cell = np.floor(a / L2_DETA + _CELL_EDGE_NUDGE)
    mod = np.clip(a - cell * L2_DETA, 0.0, np.nextafter(L2_DETA, 0.0))
    return mod, cell


def phi_mod_calo(phi: np.ndarray, abs_eta: np.ndarray) -> np.ndarray:
    """φ within an accordion absorber period [rad], (N,): fmod(φ + 2π, π/512 or π/384) [S9]."""
    period = np.where(np.abs(abs_eta) < ETA_PHIMOD_SWITCH, PHIMOD_PERIOD_BARREL, PHIMOD_PERIOD_ENDCAP)
    return np.fmod(np.asarray(phi, dtype=np.float64) + 2 * np.pi, period)


def high_level_features(
    table: pa.Table | Mapping[str, np.ndarray],
    particle: str,
    features: str = "atlas",
    shapes: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The high-level inputs of every cluster, each (N,) float64 (table in the module docstring).

    Args:
        table: the scalar columns of :func:`high_level_columns` (a pyarrow Table or a dict of arrays).
            For ``features="atlas+shapes"`` without ``shapes``: a pyarrow Table that also holds the
            cell list columns of :func:`shape_cell_columns` (``cell_noise`` optional).
        particle: electron | photon_unconv | photon_conv | photon.
        features: ``atlas`` | ``atlas+shapes`` (:data:`FEATURE_SETS`).
        shapes: precomputed shower shapes (:func:`~calo_calib.data.shower_shapes.shower_shapes`
            output, rows aligned with ``table``), e.g. from :func:`dataset_shower_shapes`.

    Returns:
        A dict with ``cluster_eta, abs_eta, e_acc, e_t_raw, shower_depth, f0, r12, eta_mod_calo,
        cell_index_calo, phi_mod_calo`` (+ ``conv_r, conv_pt_ratio, conv_et_over_pt`` for converted
        photons, + the shower shapes for ``atlas+shapes``). ``cluster_e`` and ``truth_e`` are not
        included (the caller adds them).

    Raises:
        ValueError: naming the first missing column, or an unknown particle or feature set.
    """
    _check_particle(particle)
    with_shapes = uses_shapes(features)
    cols = {name: _column(table, name) for name in high_level_columns(particle)}
    eta = cols["cluster_eta"]
    abs_eta = np.abs(eta)
    e_ps, e1, e2, e3 = (cols[f"cluster_e_{k}"] for k in ("ps", "l1", "l2", "l3"))
    e_acc = e1 + e2 + e3
    eta_mod, cell = eta_cell_position(eta)
    out = {
        "cluster_eta": eta,
        "abs_eta": abs_eta,
        "e_acc": e_acc,
        "e_t_raw": e_acc / np.cosh(eta),
        "shower_depth": shower_depth(np.stack([e_ps, e1, e2, e3], axis=-1), abs_eta),
        "f0": _safe_ratio(e_ps, e_acc),
        "r12": _safe_ratio(e1, e2),
        "eta_mod_calo": eta_mod,
        "cell_index_calo": cell,
        "phi_mod_calo": phi_mod_calo(cols["cluster_phi"], abs_eta),
    }
    for name in _CONV_COLUMNS if has_conversion_inputs(particle) else []:
        out[name] = cols[name]
    if with_shapes:
        if shapes is None:
            if not isinstance(table, pa.Table):
                raise ValueError(
                    "high-level features: atlas+shapes needs a pyarrow Table with the cell list columns, or shapes="
                )
            from calo_calib.data.shower_shapes import shower_shapes_from_table

            shapes = shower_shapes_from_table(table)
        n = len(eta)
        for name, value in shapes.items():
            value = np.asarray(value, dtype=np.float64)
            if value.shape != (n,):
                raise ValueError(f"high-level features: shower shape {name!r} has shape {value.shape}, expected ({n},)")
            out[name] = value
    return out


def dataset_shower_shapes(dataset, row_id: np.ndarray, chunk: int = 8192) -> dict[str, np.ndarray]:
    """Shower shapes of the clusters ``row_id`` of a :class:`~calo_calib.data.loader.ClusterDataset`.

    ``row_id`` (N,) int64 are the dataset's row ids (row index in the concatenation of
    ``dataset.files`` in order, as :meth:`~calo_calib.data.loader.ClusterDataset.scalar_table`
    returns them). The cell list columns (:func:`~calo_calib.data.shower_shapes.shower_shape_cell_columns`;
    ``cell_noise`` when every file has it) are read row group by row group and flattened with their
    offsets. Returns ``{name: (N,) float64}`` in the order of ``row_id``.
    """
    from calo_calib.data.shower_shapes import CLUSTER_COLUMNS, shower_shape_names, shower_shapes_from_table

    files = list(dataset.files)
    schemas = [pq.read_schema(f) for f in files]
    with_noise = all("cell_noise" in sc.names for sc in schemas)
    columns = shape_cell_columns("atlas+shapes", with_noise) + list(CLUSTER_COLUMNS)
    for f, sc in zip(files, schemas):
        missing = [c for c in columns if c not in sc.names]
        if missing:
            raise ValueError(f"{f}: missing column(s) {missing} needed for the shower shapes")
    row_id = np.asarray(row_id, dtype=np.int64)
    order = np.argsort(row_id, kind="stable")
    sorted_ids = row_id[order]
    names = shower_shape_names(with_noise)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    file_start = 0
    for f in files:
        pf = pq.ParquetFile(f)
        group_start = file_start
        for gi in range(pf.metadata.num_row_groups):
            n_rows = pf.metadata.row_group(gi).num_rows
            lo, hi = np.searchsorted(sorted_ids, [group_start, group_start + n_rows])
            if hi > lo:
                t = pf.read_row_group(gi, columns=columns).take(pa.array(sorted_ids[lo:hi] - group_start))
                res = shower_shapes_from_table(t, chunk=chunk)
                for k in names:
                    parts[k].append(res[k])
            group_start += n_rows
        file_start += pf.metadata.num_rows
    out = {}
    for k in names:
        values = np.concatenate(parts[k]) if parts[k] else np.zeros(0)
        if values.shape[0] != row_id.shape[0]:
            raise ValueError(
                f"dataset_shower_shapes: {values.shape[0]} clusters read for {row_id.shape[0]} row ids (row ids out of range?)"
            )
        full = np.empty_like(values)
        full[order] = values
        out[k] = full
    return out


def dataset_bdt_inputs(
    dataset, particle: str, features: str = "atlas", extra: tuple[str, ...] = ("cluster_e",)
) -> dict[str, np.ndarray]:
    """The BDT inputs of every selected cluster of a :class:`~calo_calib.data.loader.ClusterDataset`.

    :func:`high_level_features` of the dataset's scalar table (in its order, see
    :meth:`~calo_calib.data.loader.ClusterDataset.scalar_table`), with the shower shapes of
    :func:`dataset_shower_shapes` for ``features="atlas+shapes"``, plus the scalar columns named in
    ``extra`` as they are (``cluster_e``, ``truth_e``, ``row_id``, ...). Each value is (N,).
    """
    check_features(features)
    table = dataset.scalar_table(sorted(set(high_level_columns(particle, features)) | (set(extra) - {"row_id"})))
    shapes = dataset_shower_shapes(dataset, table.column("row_id").to_numpy()) if uses_shapes(features) else None
    feats = high_level_features(table, particle, features, shapes=shapes)
    for name in extra:
        feats[name] = table.column(name).to_numpy()
    return feats

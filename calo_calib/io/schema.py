"""The cluster data format: one row per cluster, cells as list columns.

This module is the single source of truth for column names, types and units; the prose version is
``docs/data_format.md``. Three kinds of columns:

* ``cluster_*``, ``conv_*``, ``conversion_type``, ``mu``, ``n_cells``, ``is_crack``, ``particle``:
  reconstruction-level quantities a calibration may use as inputs;
* ``cell_*``: per-cell list columns (one entry per cell of the cluster, same length in every list);
* ``truth_*``: generator-level quantities. They exist for targets and diagnostics only and must
  never be model inputs (the training data pipeline refuses them as features).

Units: energies in GeV, lengths in mm, angles in rad.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

# Layer indices follow the athena transformer calibration tool: 0 = presampler, 1 = strips,
# 2 = middle, 3 = back (4 would be TileGap3, which this simulation does not produce).
LAYER_PS, LAYER_STRIPS, LAYER_MIDDLE, LAYER_BACK = 0, 1, 2, 3
LAYER_NAMES = ("presampler", "strips", "middle", "back")

TRUTH_PREFIX = "truth_"
METADATA_KEY = b"calo_calib"


@dataclass(frozen=True)
class Column:
    """One column of the format: name, Arrow type, unit and meaning."""

    name: str
    type: pa.DataType
    unit: str
    doc: str


_f32 = pa.float32()
_list_f32 = pa.list_(pa.float32())

COLUMNS: tuple[Column, ...] = (
    # -- reconstruction level: cluster ---------------------------------------------------------
    Column("particle", pa.string(), "", "reconstructed particle type: electron, photon_unconv, photon_conv"),
    Column("cluster_e", _f32, "GeV", "raw cluster energy: sum of the cluster's cell energies (EM scale)"),
    Column("cluster_eta", _f32, "", "cluster eta: energy-weighted barycentre of its middle-layer cells (calorimeter frame)"),
    Column("cluster_phi", _f32, "rad", "cluster phi: energy-weighted barycentre of its middle-layer cells"),
    Column("cluster_e_ps", _f32, "GeV", "presampler energy of the cluster (E_L0)"),
    Column("cluster_e_l1", _f32, "GeV", "strip-layer energy (E_L1)"),
    Column("cluster_e_l2", _f32, "GeV", "middle-layer energy (E_L2)"),
    Column("cluster_e_l3", _f32, "GeV", "back-layer energy (E_L3)"),
    Column("cluster_e_tg3", _f32, "GeV", "TileGap3 (E4 scintillator) energy; always 0: not simulated"),
    Column("mu", _f32, "", "average number of interactions per crossing <mu> of the event"),
    Column("n_cells", pa.int32(), "", "number of cells in the cluster (length of every cell_* list)"),
    Column("is_crack", pa.bool_(), "", "cluster |eta| in the barrel/end-cap transition 1.37-1.52"),
    # -- reconstruction level: conversion tracking (ATLAS egammaMVAFunctions definitions) ---------
    Column("conversion_type", pa.int8(), "", "0 unconv, 1 singleSi, 2 singleTRT, 3 doubleSi, 4 doubleTRT, 5 doubleSiTRT (0 for electrons)"),
    Column("conv_r", _f32, "mm", "convR: reconstructed conversion radius if pT_conv > 3 GeV, else 799"),
    Column("conv_pt_ratio", _f32, "", "convPtRatio: max(pT1,pT2)/(pT1+pT2) for 2 Si tracks, else 1"),
    Column("conv_et_over_pt", _f32, "", "convEtOverPt: E_acc/(cosh(eta) pT_conv) for 2 Si tracks, else 0; clipped to [0, 2]"),
    Column("conv_pt", _f32, "GeV", "reconstructed pT of the conversion (|vector sum| of its tracks); 0 if none"),
    # -- cells -----------------------------------------------------------------------------------
    Column("cell_e", _list_f32, "GeV", "cell energy at the EM scale, noise included (can be negative)"),
    Column("cell_eta", _list_f32, "", "cell-centre eta (calorimeter frame, projective to the nominal IP)"),
    Column("cell_phi", _list_f32, "rad", "cell-centre phi"),
    Column("cell_x", _list_f32, "mm", "cell-centre x"),
    Column("cell_y", _list_f32, "mm", "cell-centre y"),
    Column("cell_z", _list_f32, "mm", "cell-centre z"),
    Column("cell_layer", pa.list_(pa.int8()), "", "0 presampler, 1 strips, 2 middle, 3 back"),
    Column("cell_noise", _list_f32, "GeV", "total noise sigma of the cell used by topo-clustering (electronic + pile-up at the reference <mu>)"),
    # -- truth (never an input) ------------------------------------------------------------------
    Column("truth_e", _f32, "GeV", "true energy of the generated particle"),
    Column("truth_eta", _f32, "", "true pseudorapidity (from the vertex)"),
    Column("truth_phi", _f32, "rad", "true azimuth at the vertex"),
    Column("truth_vertex_z", _f32, "mm", "z of the primary vertex"),
    Column("truth_e_lost_upstream", _f32, "GeV", "energy deposited in front of the presampler (inner detector, solenoid, cryostat)"),
    Column("truth_e_lost_passive", _f32, "GeV", "energy deposited in passive calorimeter material: presampler slab and the material between presampler and accordion"),
    Column("truth_e_leak_behind", _f32, "GeV", "longitudinal leakage beyond the back layer"),
    Column("truth_e_outside_cluster", _f32, "GeV", "accordion energy (EM scale, before fluctuations) in cells not in the cluster"),
    Column("truth_e_dep_cluster", _f32, "GeV", "accordion energy (EM scale, before sampling fluctuations, modulation and noise) in the cluster's cells"),
    Column("truth_converted", pa.bool_(), "", "photon converted inside the inner detector (R < 800 mm)"),
    Column("truth_conv_r", _f32, "mm", "true conversion radius; NaN if not converted in the inner detector"),
    Column("truth_conv_fraction", _f32, "", "energy fraction carried by the conversion electron; NaN if not converted"),
    Column("truth_brem_fraction", _f32, "", "fraction of the energy radiated by bremsstrahlung in the inner detector (electrons and conversion pairs)"),
    Column("truth_n_showers", pa.int8(), "", "number of electromagnetic (sub)showers simulated for the cluster"),
)

COLUMN_BY_NAME: dict[str, Column] = {c.name: c for c in COLUMNS}
CELL_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.name.startswith("cell_"))
TRUTH_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.name.startswith(TRUTH_PREFIX))
INPUT_COLUMNS: tuple[str, ...] = tuple(c.name for c in COLUMNS if not c.name.startswith(TRUTH_PREFIX))


def arrow_schema(metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
    """The Arrow schema of a cluster shard, with each column's unit and doc as field metadata."""
    fields = [
        pa.field(c.name, c.type, nullable=False, metadata={b"unit": c.unit.encode(), b"doc": c.doc.encode()})
        for c in COLUMNS
    ]
    return pa.schema(fields, metadata=metadata)


def missing_columns(names: list[str] | tuple[str, ...], required: tuple[str, ...] | None = None) -> list[str]:
    """Names of required columns (default: all of the format) absent from ``names``."""
    present = set(names)
    return [n for n in (required if required is not None else tuple(COLUMN_BY_NAME)) if n not in present]


def markdown_table() -> str:
    """The column list as a markdown table (docs/data_format.md embeds it; a test keeps them in sync)."""
    lines = ["| column | type | unit | meaning |", "|---|---|---|---|"]
    for c in COLUMNS:
        lines.append(f"| `{c.name}` | {c.type} | {c.unit or '–'} | {c.doc} |")
    return "\n".join(lines)

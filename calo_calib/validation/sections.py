"""Validation sections that simulate or integrate their own samples, and the hooks the report calls.

Each module in :data:`MODULES` provides ``samples(cfg) -> list[Sample]`` (appended to the report's
samples by :func:`~calo_calib.validation.samples.build_samples`) and ``run(v)`` (an analysis step on the
:class:`~calo_calib.validation.report.Validation`, after the report's own check families,
:data:`~calo_calib.validation.report.CHECKS`). A sample whose
``meta["summaries"]`` names entries of :data:`SUMMARIES` gets their per-cluster arrays added to its
worker summary (e.g. the shower shapes, which need the cell list columns the report otherwise drops).
"""

from __future__ import annotations

import importlib

MODULES = (
    "calo_calib.validation.shower_shapes",
    "calo_calib.validation.pileup_scan",
    "calo_calib.validation.pileup_cells",
    "calo_calib.validation.lateral",
    "calo_calib.validation.upstream_substructure",
    "calo_calib.validation.radial_containment",
    "calo_calib.validation.resolution_causes",
    "calo_calib.validation.pileup_granularity",
    "calo_calib.validation.delta_e_noise",
    "calo_calib.validation.longitudinal_tail",
    "calo_calib.validation.strip_crosstalk",
    "calo_calib.validation.depth_slices",
    "calo_calib.validation.calibration_method",
    "calo_calib.validation.lever_arm",
    "calo_calib.validation.calib_hits",
    "calo_calib.validation.strip_position",
    "calo_calib.validation.front_energy",
)
SUMMARIES = {"shower_shapes": "calo_calib.validation.shower_shapes:summarise"}
SIZE_KEYS = ("n_shapes", "n_pu_scan", "n_lateral", "n_upstream")
"""Sample-size keys of ``conf/validate.yaml`` (and its ``quick_sizes``) used by these sections."""


def _modules():
    return [importlib.import_module(m) for m in MODULES]


def extra_samples(cfg) -> list:
    out = []
    for m in _modules():
        out += m.samples(cfg)
    return out


def extra_summary(names, table) -> dict:
    out: dict = {}
    for name in names or ():
        mod, fn = SUMMARIES[name].split(":")
        out.update(getattr(importlib.import_module(mod), fn)(table))
    return out


def extra_steps(v) -> list:
    return [(lambda m=m: m.run(v)) for m in _modules()]


def sizes(cfg) -> dict:
    s = cfg.quick_sizes if cfg.quick else cfg
    return {k: int(s[k]) for k in SIZE_KEYS if k in s}


def generate_inline(samples: list, seed: int) -> tuple[dict, dict]:
    """Serial, in-process counterpart of :func:`~calo_calib.validation.samples.generate` (tests, debugging).

    Same jobs, seeds and summaries; returns ({key: data}, {key: simulation config}).
    :func:`calo_calib.validation.samples.generate_inline`, kept here where the section tests import it.
    """
    from calo_calib.validation.samples import generate_inline as _inline  # samples imports this module lazily

    return _inline(samples, seed)

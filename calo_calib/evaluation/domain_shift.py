"""How a calibration trained on MC behaves on a data-like sample (a detector variant): response shift and σ_rel.

Both samples are evaluated with :func:`calo_calib.evaluation.report.evaluate` (truth is used here
only to measure, never to train). Per method present in both:

- ``median_mc``, ``median_data``: median E_reco / E_true on the MC test split and on the data-like one;
- ``response_shift`` = median_data − median_mc (0: the calibration transfers; the energy scale a
  data-driven correction such as Z→ee would have to absorb), error from the two bootstrap errors
  in quadrature;
- ``sigma_rel_mc``, ``sigma_rel_data`` and their ratio ``sigma_rel_ratio`` = data / MC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from calo_calib.formatting import as_float, fmt


def _get(inc: Mapping[str, Any], key: str) -> float:
    return as_float(inc.get(key))


def domain_shift_summary(mc_metrics: Mapping[str, Any], data_metrics: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per method in both ``metrics["inclusive"]``: the numbers of the module docstring."""
    out = {}
    mc_inc, data_inc = mc_metrics["inclusive"], data_metrics["inclusive"]
    for method in data_inc:
        if method not in mc_inc:
            continue
        m, d = mc_inc[method], data_inc[method]
        s_mc, s_data = _get(m, "sigma_rel"), _get(d, "sigma_rel")
        out[method] = {
            "median_mc": _get(m, "median"),
            "median_data": _get(d, "median"),
            "response_shift": _get(d, "median") - _get(m, "median"),
            "response_shift_err": math.hypot(_get(d, "median_err"), _get(m, "median_err")),
            "sigma_rel_mc": s_mc,
            "sigma_rel_mc_err": _get(m, "sigma_rel_err"),
            "sigma_rel_data": s_data,
            "sigma_rel_data_err": _get(d, "sigma_rel_err"),
            "sigma_rel_ratio": s_data / s_mc if s_mc > 0 else float("nan"),
        }
    return out


def _f(x: float, scale: float = 100.0, digits: int = 2) -> str:
    return fmt(x, scale=scale, digits=digits)


def domain_shift_markdown(summary: Mapping[str, Mapping[str, float]], data_paths: list[str]) -> str:
    """A markdown section: one row per method."""
    lines = [
        "## Data-like sample (labels used only for this evaluation)",
        "",
        f"Data-like test clusters from {', '.join(data_paths)}. Response shift = median(E_reco/E_true) on the "
        "data-like sample − the same on the MC test split.",
        "",
        "| method | σ_rel MC [%] | σ_rel data-like [%] | ratio | median MC | median data-like | response shift [%] |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, s in summary.items():
        lines.append(
            f"| {method} | {_f(s['sigma_rel_mc'])} ± {_f(s['sigma_rel_mc_err'])} | {_f(s['sigma_rel_data'])} ± "
            f"{_f(s['sigma_rel_data_err'])} | {_f(s['sigma_rel_ratio'], 1, 3)} | {_f(s['median_mc'], 1, 4)} | "
            f"{_f(s['median_data'], 1, 4)} | {_f(s['response_shift'])} ± {_f(s['response_shift_err'])} |"
        )
    return "\n".join(lines) + "\n\n"

"""Markdown tables of the Z standard candle from its JSON record (:func:`calo_calib.zee.candle.run_candle`)."""

from __future__ import annotations

import math
from typing import Any


def _pm(v: Any, e: Any, scale: float = 1.0, digits: int = 2) -> str:
    if v is None:
        return "–"
    if e is None:
        return f"{scale * v:.{digits}f}"
    return f"{scale * v:.{digits}f} ± {scale * e:.{digits}f}"


def _fit_cell(f: dict | None, key: str, scale: float = 1.0, digits: int = 2) -> str:
    if not f:
        return "–"
    return _pm(f["values"].get(key), f["errors"].get(key), scale, digits)


def _rel_diff(d: dict | None, m: dict | None) -> str:
    if not d or not m:
        return "–"
    pd, pm = d["values"]["peak"], m["values"]["peak"]
    ed, em = d["errors"]["peak"], m["errors"]["peak"]
    if ed is None or em is None:
        return f"{100 * (pd / pm - 1):+.2f}"
    return f"{100 * (pd / pm - 1):+.2f} ± {100 * pd / pm * math.hypot(ed / pd, em / pm):.2f}"


def markdown(record: dict[str, Any]) -> str:
    """The candle's tables: samples, α per |η| bin, coarse categories, residuals, uncertainty study."""
    cfg = record["config"]
    lines = [
        "# Z → ee standard candle",
        "",
        f"MC: detector `{cfg['mc_detector']}`; data-like: detector `{cfg['data_detector']}` "
        f"(overrides {cfg['data_overrides'] or 'none'}), {cfg['n_events']} events in acceptance per sample; "
        f"fit model BW ⊗ {cfg['fit']['model']}; commit `{record.get('commit')}`. Data truth is used only in the "
        "diagnostic column 'truth ratio'.",
        "",
        "| sample | detector | decays tried | in acceptance | reconstructed (both clusters) | electrons without cluster |",
        "|---|---|---|---|---|---|",
    ]
    for name, s in record["samples"].items():
        lines.append(
            f"| {name} | {s['detector']} | {s['n_decays_tried']} | {s['n_events_generated']} | {s['n_events_reconstructed']} | {s['n_electrons_lost']} |"
        )
    edges = record["abs_eta_edges"]
    for method, r in record["methods"].items():
        lines += ["", f"## {method}", "", f"Events with both clusters calibrated: MC {r['n_events_mc']}, data {r['n_events_data']} "
                  f"(dropped by the calibration's selection: {r['n_events_dropped_mc']} / {r['n_events_dropped_data']})."]  # fmt: skip
        s = r["scales"]
        lines += ["", "### Energy-scale factors E_data = E_MC (1 + α_i)", ""]
        if s.get("alpha") is None:
            lines.append(f"Not determined: {s.get('error')}")
        else:
            ct = s.get("constant_term") or {}
            lines += [
                "| cluster \\|η\\| | α [%] | truth ratio [%] (diagnostic) | c'² [10⁻⁴] | c' [%] |",
                "|---|---|---|---|---|",
            ]
            for i in range(len(edges) - 1):
                c2 = _pm(ct["c2"][i], ct["c2_err"][i], 1e4) if ct else "–"
                c = _pm(ct["c"][i], ct["c_err"][i], 100) if ct else "–"
                lines.append(f"| {edges[i]:g}–{edges[i + 1]:g} | {_pm(s['alpha'][i], s['alpha_err'][i], 100, 3)} | "
                             f"{_pm(s['alpha_truth'][i], s['alpha_truth_err'][i], 100, 3)} | {c2} | {c} |")  # fmt: skip
            chi2 = f"{s['chi2']:.1f}/{s['ndf']}" if s.get("chi2") is not None else "–"
            lines += ["", f"Linear system χ²/ndf = {chi2} (categories (i ≤ j) with a converged fit in MC and data)."]
            res = [x for x in s["residuals"] if x.get("dpeak_after_err") and x.get("dpeak_before_err")]
            if res:
                pulls_b = [x["dpeak_before"] / x["dpeak_before_err"] for x in res]
                pulls_a = [x["dpeak_after"] / x["dpeak_after_err"] for x in res]
                lines += [
                    "",
                    "Residual data/MC peak differences per (i, j) category [%] (before → after the correction):",
                    "",
                    "| bins (i, j) | n data | Δpeak before | Δpeak after | Δ(σ/m) before | Δ(σ/m) after |",
                    "|---|---|---|---|---|---|",
                ]
                for x in res:
                    lines.append(
                        f"| {tuple(x['bins'])} | {x.get('n_data_before', '–')} | {_pm(x['dpeak_before'], x['dpeak_before_err'], 100, 3)} | "
                        f"{_pm(x['dpeak_after'], x['dpeak_after_err'], 100, 3)} | {_pm(x['drel_sigma_before'], x['drel_sigma_before_err'], 100, 3)} | "
                        f"{_pm(x['drel_sigma_after'], x['drel_sigma_after_err'], 100, 3)} |"
                    )
                lines += ["", f"Σ pull² of the peak differences: before {sum(p * p for p in pulls_b):.1f}, after {sum(p * p for p in pulls_a):.1f} "
                          f"for {len(res)} categories."]  # fmt: skip
        lines += ["", "### Coarse categories (peak, σ in GeV; Δ = data/MC − 1 in %)", "",
                  "| category | n MC | n data | peak MC | peak data | Δ before | Δ after | σ MC | σ data | σ data corr. | χ²/ndf MC, data |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for cat, c in r["coarse"].items():
            chis = ", ".join(f"{c[k]['chi2']:.0f}/{c[k]['ndf']}" if c.get(k) else "–" for k in ("mc", "data"))
            lines.append(
                f"| {cat} | {c['n_mc']} | {c['n_data']} | {_fit_cell(c['mc'], 'peak')} | {_fit_cell(c['data'], 'peak')} | "
                f"{_rel_diff(c['data'], c['mc'])} | {_rel_diff(c['corrected'], c['mc'])} | {_fit_cell(c['mc'], 'sigma')} | "
                f"{_fit_cell(c['data'], 'sigma')} | {_fit_cell(c['corrected'], 'sigma')} | {chis} |"
            )
        u = r.get("uncertainty_study")
        lines += ["", "### Predicted per-cluster uncertainty", ""]
        if u is None:
            lines.append("Skipped: this calibration predicts no per-cluster uncertainty.")
        else:
            lines += [f"Events with both predicted σ below {u['threshold']:.4f} (the {u['quantile']:g} quantile of the MC clusters) versus all:", "",
                      "| sample | subset | n | σ/m [%] (fit) | mean predicted σ_m/m [%] |", "|---|---|---|---|---|"]  # fmt: skip
            for name in ("mc", "data"):
                for tag in ("all", "low_sigma"):
                    row = u[name][tag]
                    pred = u[name]["predicted_rel_sigma_mean"][tag]
                    lines.append(f"| {name} | {tag} | {row['n']} | {_pm(row['rel_sigma'], row['rel_sigma_err'], 100, 3)} | "
                                 f"{'–' if pred is None else f'{100 * pred:.3f}'} |")  # fmt: skip
    return "\n".join(lines) + "\n"

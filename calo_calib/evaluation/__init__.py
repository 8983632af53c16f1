"""Evaluation of calibrations: the σ_rel figure of merit, binned tables, metrics.json, plots.

Modules: ``metrics`` (σ_rel, median, bootstrap), ``binning`` (bin edges, binned tables),
``report`` (evaluate, write_metrics, compare, summary_markdown), ``plots`` (PNGs),
``predictions`` (the predictions table of a run).
"""

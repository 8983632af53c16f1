"""Files a comparison writes: the long table as CSV, the Markdown report and the plots (each atomically)."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from calo_calib.comparison.markdown import report_markdown
from calo_calib.comparison.plots import AXES, plot_best_per_bin, plot_vs
from calo_calib.comparison.table import COLUMNS, particles
from calo_calib.io.atomic import write_text_atomic

if TYPE_CHECKING:
    from calo_calib.comparison.loading import Unreadable


def _csv_cell(value: Any) -> Any:
    # Empty cell for NaN: what spreadsheets and pandas.read_csv read as missing.
    return "" if isinstance(value, float) and math.isnan(value) else value


def write_csv(records: Sequence[Mapping[str, Any]], path: str | os.PathLike[str]) -> Path:
    """The long table as CSV (header = :data:`COLUMNS`; NaN as an empty cell), written atomically."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in records:
        writer.writerow([_csv_cell(r[c]) for c in COLUMNS])
    return write_text_atomic(path, buf.getvalue())


def write_outputs(
    records: Sequence[Mapping[str, Any]],
    out_dir: str | os.PathLike[str],
    unreadable: Sequence[Unreadable] = (),
    metric: str = "sigma_rel",
) -> list[Path]:
    """Write ``comparison.csv`` (long table), ``comparison.md`` (report) and per particle the PNGs
    ``<particle>_<metric>_<table>.png`` (vs_e, vs_abs_eta, vs_mu) and ``<particle>_best_e_abs_eta.png``."""
    from calo_calib.plotting.style import save_png

    out = Path(out_dir)
    written = [
        write_csv(records, out / "comparison.csv"),
        write_text_atomic(out / "comparison.md", report_markdown(records, unreadable, metric)),
    ]
    for p in particles(records):
        for table in AXES:
            fig = plot_vs(records, p, table, metric)
            written.append(save_png(fig, out / f"{p}_{metric}_{table}.png"))
        fig = plot_best_per_bin(records, p, metric)
        written.append(save_png(fig, out / f"{p}_best_e_abs_eta.png"))
    return written

"""Which clusters of the files a :class:`~calo_calib.data.loader.ClusterDataset` uses: one scan of the
row groups with structural checks, the selection cuts and the data checks, counted cut by cut.

The scan (:meth:`RowSelection.scan`) reads the used columns one row group at a time (vectorised with
pyarrow) and keeps, per row group, the indices of the selected rows (:class:`RowGroup`); the batches
are later read from these alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from calo_calib.data.arrow_columns import to_numpy
from calo_calib.data.cell_features import N_LAYERS
from calo_calib.data.checks import PHYSICAL_RANGES, DataError, open_parquet, out_of_range_rows

NONFINITE_MODES = ("error", "drop")


def new_counts() -> dict[str, int]:
    """The selection counters, all 0 (``ClusterDataset.counts``)."""
    return dict(
        n_rows=0, n_selected=0, n_crack_excluded=0, n_no_cells=0, n_nonpositive_e=0, n_nonfinite_dropped=0,
        n_low_et=0, n_target_above_max=0, n_out_of_range_dropped=0,
    )  # fmt: skip


@dataclass
class RowGroup:
    """Selected rows of one row group: ``rows`` are indices within the row group (ascending)."""

    file_index: int
    group_index: int
    start: int  # row index of the group's first row within its file
    rows: np.ndarray  # int64, selected rows within the group


def check_cell_structure(path: Path, t: pa.Table, start: int, cell_columns: list[str], n_cells: np.ndarray) -> None:
    """Raise :class:`DataError` on a row group whose cell lists the batches cannot be built from.

    Cell lists must all have n_cells entries (batches use one set of offsets for every column), and
    e_frac_layer groups cells by layer index, so an index outside [0, N_LAYERS) is corrupt data.
    """
    for c in cell_columns:
        lengths = pc.fill_null(pc.list_value_length(t[c]), -1)
        bad = np.flatnonzero(to_numpy(lengths) != n_cells)
        if len(bad):
            r = int(bad[0])
            raise DataError(
                f"{path}: row {start + r}: column {c!r} has {int(to_numpy(lengths)[r])} entries but "
                f"n_cells = {int(n_cells[r])}"
            )
    layer = t["cell_layer"]
    flat_layer = pc.list_flatten(layer)
    if len(flat_layer):
        mm = pc.min_max(flat_layer)
        if mm["min"].as_py() < 0 or mm["max"].as_py() >= N_LAYERS:
            flat = to_numpy(flat_layer)
            parents = to_numpy(pc.list_parent_indices(layer))
            r = int(parents[np.flatnonzero((flat < 0) | (flat >= N_LAYERS))[0]])
            raise DataError(f"{path}: row {start + r}: cell_layer value outside [0, {N_LAYERS})")


def nonfinite_cell_rows(col: pa.ChunkedArray, n: int) -> np.ndarray | None:
    """(n,) mask of the rows of list column ``col`` with a non-finite (or null) cell value; None if there are none.

    The cheap Arrow-level tests come first: most row groups are clean, and then no numpy mask is built.
    """
    values = pc.list_flatten(col)
    if not pa.types.is_floating(values.type) and values.null_count == 0:
        return None
    ok = pc.fill_null(pc.is_finite(values), False) if pa.types.is_floating(values.type) else pc.is_valid(values)
    if pc.all(ok).as_py() in (True, None):
        return None
    parents = to_numpy(pc.list_parent_indices(col))
    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[parents[~to_numpy(ok).astype(bool)]] = True
    return bad_rows


@dataclass
class RowSelection:
    """The selection of a :class:`~calo_calib.data.loader.ClusterDataset` (its arguments of the same
    names) and its counters ``counts`` (:func:`new_counts`), updated by :meth:`scan`."""

    scalar_columns: list[str]
    cell_columns: list[str]
    exclude_crack: bool
    min_cluster_et: float
    max_target: float | None
    nonfinite: str
    out_of_range: str
    option_prefix: str
    counts: dict[str, int] = field(default_factory=new_counts)

    def scan(self, files: Sequence[Path], max_clusters: int | None) -> list[RowGroup]:
        """One vectorised pass over the used columns: selection masks and data checks."""
        groups: list[RowGroup] = []
        n_kept = 0
        for fi, path in enumerate(files):
            pf = open_parquet(path)
            start = 0
            for gi in range(pf.metadata.num_row_groups):
                if max_clusters is not None and n_kept >= max_clusters:
                    return groups
                try:
                    t = pf.read_row_group(gi, columns=self.scalar_columns + self.cell_columns)
                except (OSError, pa.ArrowException) as err:  # a damaged page (footer intact)
                    raise DataError(f"{path}: cannot read row group {gi} (damaged shard?): {err}") from None
                n = t.num_rows
                self.counts["n_rows"] += n
                rows = self._select(path, t, start)
                if max_clusters is not None:
                    rows = rows[: max_clusters - n_kept]
                n_kept += len(rows)
                if len(rows):
                    groups.append(RowGroup(fi, gi, start, rows))
                start += n
        return groups

    def _select(self, path: Path, t: pa.Table, start: int) -> np.ndarray:
        """Selected row indices (within the row group) of table ``t``; updates counts, raises on bad data.

        In order: structural checks (raise), the selection cuts, then the data checks (non-finite and
        out-of-range values) among the clusters the cuts kept, so a value of a cut cluster never fails a run.
        """
        n_cells = to_numpy(t["n_cells"]).astype(np.int64)
        check_cell_structure(path, t, start, self.cell_columns, n_cells)
        keep = np.ones(t.num_rows, dtype=bool)
        self._apply_cuts(t, n_cells, keep)
        bad_by_col = self._nonfinite_rows(t, keep)
        if bad_by_col:
            self._drop_nonfinite(path, start, keep, bad_by_col)
        if self.out_of_range != "allow":
            self._drop_out_of_range(path, t, start, keep)
        return np.flatnonzero(keep).astype(np.int64)

    def _apply_cuts(self, t: pa.Table, n_cells: np.ndarray, keep: np.ndarray) -> None:
        """The selection of the calibration: clear the cut clusters in ``keep`` and count each cut.

        Each cut counts only the clusters still kept by the cuts before it (a cluster is counted once).
        """
        if self.exclude_crack:
            crack = to_numpy(pc.fill_null(t["is_crack"], False)).astype(bool)
            self.counts["n_crack_excluded"] += int(crack.sum())
            keep &= ~crack
        no_cells = keep & (n_cells <= 0)
        self.counts["n_no_cells"] += int(no_cells.sum())
        keep &= ~no_cells
        e = to_numpy(t["cluster_e"]).astype(np.float64)
        nonpos = keep & (e <= 0)  # NaN compares False: handled as non-finite below
        self.counts["n_nonpositive_e"] += int(nonpos.sum())
        keep &= ~nonpos
        if self.min_cluster_et > 0:
            # A reconstruction-level cut (egamma seeds need E_T above ~1.5 GeV): noise-dominated
            # clusters that carry a tiny fraction of the particle's energy are not calibrated.
            et = e / np.cosh(to_numpy(t["cluster_eta"]).astype(np.float64))
            low = keep & (et < self.min_cluster_et)
            self.counts["n_low_et"] += int(low.sum())
            keep &= ~low
        if self.max_target is not None:
            # Training-only truth cut (never on test data): a cluster holding a few per mille of the
            # true energy has E_true/E_cluster of 10-500; with a squared loss one such cluster
            # dominates a batch and the normalisation. ATLAS trains on truth-matched clusters.
            target = to_numpy(t["truth_e"]).astype(np.float64) / np.where(e > 0, e, np.nan)
            high = keep & (target > self.max_target)
            self.counts["n_target_above_max"] += int(high.sum())
            keep &= ~high

    def _nonfinite_rows(self, t: pa.Table, keep: np.ndarray) -> dict[str, np.ndarray]:
        """Column -> (n,) mask of the kept rows with a non-finite (or null) value in that used column.

        Only columns with at least one such row appear, scalar columns first (the error names them in this order).
        """
        bad_by_col: dict[str, np.ndarray] = {}
        for c in self.scalar_columns:
            col = t[c]
            if pa.types.is_floating(col.type) or col.null_count:
                ok = (
                    to_numpy(pc.fill_null(pc.is_finite(col), False))
                    if pa.types.is_floating(col.type)
                    else to_numpy(pc.is_valid(col))
                )
                bad = keep & ~ok.astype(bool)
                if bad.any():
                    bad_by_col[c] = bad
        for c in self.cell_columns:
            bad_rows = nonfinite_cell_rows(t[c], t.num_rows)
            if bad_rows is None:
                continue
            bad = keep & bad_rows
            if bad.any():
                bad_by_col[c] = bad
        return bad_by_col

    def _drop_nonfinite(self, path: Path, start: int, keep: np.ndarray, bad_by_col: dict[str, np.ndarray]) -> None:
        """Rows with a non-finite value (``bad_by_col`` of :meth:`_nonfinite_rows`): raise, or drop them from ``keep``."""
        self._raise_or_drop(path, start, keep, bad_by_col, self.nonfinite, "n_nonfinite_dropped",
                            lambda cols: "non-finite (NaN/inf/null) value",
                            f"use {self.option_prefix}nonfinite='drop' to drop them")  # fmt: skip

    def _drop_out_of_range(self, path: Path, t: pa.Table, start: int, keep: np.ndarray) -> None:
        """Finite values beyond the physical range of their column among the kept rows: raise or drop (in ``keep``)."""
        bad_by_col = {c: keep & b for c, b in out_of_range_rows(t, self.scalar_columns + self.cell_columns).items()}
        bad_by_col = {c: b for c, b in bad_by_col.items() if b.any()}
        if not bad_by_col:
            return
        self._raise_or_drop(path, start, keep, bad_by_col, self.out_of_range, "n_out_of_range_dropped",
                            lambda cols: "value outside the physical range ("
                            + ", ".join(f"|{c}| <= {PHYSICAL_RANGES[c]:g}" for c in cols) + ")",
                            f"use {self.option_prefix}out_of_range='drop' to drop them, or 'allow' to keep them")  # fmt: skip

    def _raise_or_drop(self, path: Path, start: int, keep: np.ndarray, bad_by_col: dict[str, np.ndarray], mode: str,
                       counter: str, what, hint: str) -> None:  # fmt: skip
        """The rows flagged in any column of ``bad_by_col`` (each (n,) bool): with ``mode`` ``"error"`` raise on
        the first, naming file, row and columns (``what(cols)`` says what is wrong); else count them in
        ``counts[counter]`` and drop them from ``keep``."""
        any_bad = np.logical_or.reduce(list(bad_by_col.values()))
        if mode == "error":
            r = int(np.flatnonzero(any_bad)[0])
            cols = [c for c, b in bad_by_col.items() if b[r]]
            raise DataError(
                f"{path}: row {start + r}: {what(cols)} in column(s) {cols}; "
                f"{int(any_bad.sum())} such row(s) in row group starting at row {start} ({hint})"
            )
        self.counts[counter] += int(any_bad.sum())
        keep &= ~any_bad

"""Streaming training batches from Parquet cluster shards, with length bucketing.

:class:`ClusterDataset` never holds the data set in memory: at construction it checks the schemas and
scans the files once (column by column, vectorised with pyarrow) to decide which clusters are used;
:meth:`ClusterDataset.batches` then reads one row group at a time into a bounded shuffle buffer.
Memory is bounded by the largest row group plus one buffer (per worker process, with ``workers``).

Batch contract (``docs/architecture.md``), B clusters, L = max ``n_cells`` in the batch:

* ``cells``    float32 (B, L, F_cell): raw cell features, 0 at padded positions;
* ``valid``    bool (B, L): True = a real cell;
* ``cluster``  float32 (B, F_cluster): raw cluster features;
* ``pair``     float32 (B, L, 7): raw eta, phi [rad], x, y, z [mm], layer, E [GeV], 0 at padding;
* ``target``   float32 (B,): truth_e / cluster_e;
* ``cluster_e`` float32 (B,) GeV;
* ``row_id``   int64 (B,): row index of the cluster in the concatenation of all files in sorted path
  order, before any selection; joins predictions with :meth:`ClusterDataset.scalar_table`.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import torch

from calo_calib.data import features as F
from calo_calib.data.checks import (
    OUT_OF_RANGE_MODES,
    PHYSICAL_RANGES,
    DataError,
    check_column_types,
    check_dataset_complete,
    open_parquet,
    out_of_range_rows,
)
from calo_calib.io.parquet import resolve_paths
from calo_calib.physics.resolution import resolution_model

log = logging.getLogger(__name__)

PathArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
NONFINITE_MODES = ("error", "drop")


@dataclass
class _RowGroup:
    """Selected rows of one row group: ``rows`` are indices within the row group (ascending)."""

    file_index: int
    group_index: int
    start: int  # row index of the group's first row within its file
    rows: np.ndarray  # int64, selected rows within the group


def expand_paths(paths: PathArg) -> list[Path]:
    """Dataset dirs and/or .parquet files -> unique files sorted by path (row ids follow this order)."""
    if isinstance(paths, (str, os.PathLike)):
        items: list[str | os.PathLike[str]] = [paths]
    else:
        items = list(paths)
    if not items:
        raise FileNotFoundError("ClusterDataset: empty list of paths")
    files: list[Path] = []
    for item in items:
        shards = resolve_paths(item)
        if Path(item).is_dir():  # all shards of a generated set, one provenance, dataset.json
            check_dataset_complete(item, shards)
        files += shards
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"Parquet file does not exist: {f}")
    # Duplicates (a file given twice, or a file inside a given directory) would give clusters twice.
    return sorted({f.resolve() for f in files})


def _to_numpy(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.to_numpy(zero_copy_only=False)


def _flat_values(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """The flattened values of a list column as numpy (slices respected)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    return col.flatten().to_numpy(zero_copy_only=False)


def _check_cell_structure(path: Path, t: pa.Table, start: int, cell_columns: list[str], n_cells: np.ndarray) -> None:
    """Raise :class:`DataError` on a row group whose cell lists the batches cannot be built from.

    Cell lists must all have n_cells entries (batches use one set of offsets for every column), and
    e_frac_layer groups cells by layer index, so an index outside [0, N_LAYERS) is corrupt data.
    """
    for c in cell_columns:
        lengths = pc.fill_null(pc.list_value_length(t[c]), -1)
        bad = np.flatnonzero(_to_numpy(lengths) != n_cells)
        if len(bad):
            r = int(bad[0])
            raise DataError(
                f"{path}: row {start + r}: column {c!r} has {int(_to_numpy(lengths)[r])} entries but "
                f"n_cells = {int(n_cells[r])}"
            )
    layer = t["cell_layer"]
    flat_layer = pc.list_flatten(layer)
    if len(flat_layer):
        mm = pc.min_max(flat_layer)
        if mm["min"].as_py() < 0 or mm["max"].as_py() >= F.N_LAYERS:
            flat = _to_numpy(flat_layer)
            parents = _to_numpy(pc.list_parent_indices(layer))
            r = int(parents[np.flatnonzero((flat < 0) | (flat >= F.N_LAYERS))[0]])
            raise DataError(f"{path}: row {start + r}: cell_layer value outside [0, {F.N_LAYERS})")


def _nonfinite_cell_rows(col: pa.ChunkedArray, n: int) -> np.ndarray | None:
    """(n,) mask of the rows of list column ``col`` with a non-finite (or null) cell value; None if there are none.

    The cheap Arrow-level tests come first: most row groups are clean, and then no numpy mask is built.
    """
    values = pc.list_flatten(col)
    if not pa.types.is_floating(values.type) and values.null_count == 0:
        return None
    ok = pc.fill_null(pc.is_finite(values), False) if pa.types.is_floating(values.type) else pc.is_valid(values)
    if pc.all(ok).as_py() in (True, None):
        return None
    parents = _to_numpy(pc.list_parent_indices(col))
    bad_rows = np.zeros(n, dtype=bool)
    bad_rows[parents[~_to_numpy(ok).astype(bool)]] = True
    return bad_rows


class ClusterDataset:
    """Clusters from Parquet shards as padded, length-bucketed torch batches.

    Args:
        paths: a dataset directory, a ``.parquet`` file, or a sequence of them. Files are used in sorted
            path order (this defines ``row_id``).
        cell_features: names from :data:`calo_calib.data.features.CELL_FEATURES`.
        cluster_features: names from :data:`calo_calib.data.features.CLUSTER_FEATURES`.
        batch_size: the global batch: clusters per optimiser step summed over all ranks (the last
            batch of an epoch may be smaller). Each rank gets ``batch_size // world_size`` of them,
            so the batches seen by N ranks together are exactly those of one process.
        shuffle: permute files, row groups, rows and batch order per epoch (training).
        seed: base seed; epoch ``e`` uses ``np.random.default_rng([seed, e])``.
        exclude_crack: drop clusters with ``is_crack`` (1.37 < |eta| < 1.52).
        nonfinite: ``"error"`` raises on a NaN/inf in a used column; ``"drop"`` drops and counts them.
        out_of_range: a finite value beyond the physical range of its column
            (:data:`calo_calib.data.checks.PHYSICAL_RANGES`, e.g. ``cell_x = 3e38``): ``"error"``
            raises naming file, row and column; ``"drop"`` drops and counts (``n_out_of_range_dropped``);
            ``"allow"`` keeps them.
        option_prefix: how the caller's options are spelled in the hints of the messages
            (``"data."`` for ``calo_calib.run``: ``data.nonfinite='drop'``; ``""`` for predict).
        buffer_clusters: shuffle/bucketing buffer size, rounded up to a multiple of ``batch_size``
            so that each buffer gives whole batches (only the epoch's last batch can be short).
        max_clusters: keep only the first N selected clusters in file order (quick runs). The scan
            stops once N are found, so ``counts`` then covers only the rows scanned.
        rank, world_size: distributed data parallelism; rank r takes the r-th contiguous slice of
            every global batch (``batch_size`` must be a multiple of ``world_size``).
        min_cluster_et: drop clusters with E_cluster / cosh(eta_cluster) below this (GeV); a
            reconstruction-level cut, applied to every split.
        max_target: drop clusters with E_true / E_cluster above this (training and validation only:
            a truth cut must never select test clusters); None keeps all.
        with_truth: False for data without ``truth_e`` (inference on real data): ``target`` is NaN.
        pad_multiple: pad every batch's cell dimension L up to a multiple of this (1 = to the longest
            cluster): fewer distinct shapes, so ``torch.compile`` with static shapes compiles once per bucket.
        workers: assemble batches in this many worker processes (0 = in the calling process). Each
            worker holds its own buffer: memory grows with it. Feeds a GPU faster than one core can.

    Raises:
        ValueError: bad arguments; :class:`~calo_calib.data.checks.DataError` (a ValueError) for bad
            data: missing columns (all listed, with the file), a column of the wrong type, a file that
            is not readable Parquet, an incomplete dataset directory, a non-finite value (file, row
            within the file, column) with ``nonfinite="error"``, an out-of-range value with
            ``out_of_range="error"``, cell lists whose length differs from ``n_cells``, or a
            cell_layer outside [0, 5).
        FileNotFoundError: a path that does not exist or a directory without shards.
    """

    def __init__(
        self,
        paths: PathArg,
        cell_features: Sequence[str],
        cluster_features: Sequence[str],
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        exclude_crack: bool = True,
        nonfinite: str = "error",
        buffer_clusters: int = 16384,
        max_clusters: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        min_cluster_et: float = 0.0,
        max_target: float | None = None,
        with_truth: bool = True,
        pad_multiple: int = 1,
        workers: int = 0,
        out_of_range: str = "error",
        option_prefix: str = "",
    ) -> None:
        if nonfinite not in NONFINITE_MODES:
            raise ValueError(f"{option_prefix}nonfinite must be one of {NONFINITE_MODES}, got {nonfinite!r}")
        if out_of_range not in OUT_OF_RANGE_MODES:
            raise ValueError(f"{option_prefix}out_of_range must be one of {OUT_OF_RANGE_MODES}, got {out_of_range!r}")
        self.out_of_range = out_of_range
        self.option_prefix = str(option_prefix)
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(buffer_clusters) < 1:
            raise ValueError(f"buffer_clusters must be >= 1, got {buffer_clusters}")
        if max_clusters is not None and int(max_clusters) < 0:
            raise ValueError(f"max_clusters must be >= 0 or None, got {max_clusters}")
        if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        if int(batch_size) % int(world_size):
            raise ValueError(
                f"batch_size={batch_size} (the global batch) is not a multiple of world_size={world_size}: "
                "every rank must get the same number of clusters per step"
            )
        self.cell_features = list(cell_features)
        self.cluster_features = list(cluster_features)
        self.scalar_columns = F.scalar_columns(self.cell_features, self.cluster_features)
        self.with_truth = bool(with_truth)
        if int(pad_multiple) < 1:
            raise ValueError(f"pad_multiple must be >= 1, got {pad_multiple}")
        self.pad_multiple = int(pad_multiple)
        if int(workers) < 0:
            raise ValueError(f"workers must be >= 0 (0 = assemble batches in this process), got {workers}")
        self.workers = int(workers)
        if not self.with_truth:  # inference on data without truth (real collisions): no target
            if max_target is not None:
                raise ValueError("max_target is a truth cut: it needs with_truth=True")
            self.scalar_columns = [c for c in self.scalar_columns if c != "truth_e"]
        self.cell_columns = F.cell_columns(self.cell_features, self.cluster_features)
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.exclude_crack = bool(exclude_crack)
        self.nonfinite = nonfinite
        self.buffer_size = math.ceil(int(buffer_clusters) / self.batch_size) * self.batch_size
        self.max_clusters = None if max_clusters is None else int(max_clusters)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.min_cluster_et = float(min_cluster_et)
        self.max_target = None if max_target is None else float(max_target)

        self.files = expand_paths(paths)
        self._check_schemas()
        self._file_rows = [open_parquet(f).metadata.num_rows for f in self.files]
        self._file_offset = np.concatenate([[0], np.cumsum(self._file_rows)]).astype(np.int64)
        self.counts: dict[str, int] = dict(
            n_rows=0, n_selected=0, n_crack_excluded=0, n_no_cells=0, n_nonpositive_e=0, n_nonfinite_dropped=0,
            n_low_et=0, n_target_above_max=0, n_out_of_range_dropped=0,
        )
        self._groups: list[_RowGroup] = self._scan()
        self._n = int(sum(len(g.rows) for g in self._groups))
        self.counts["n_selected"] = self._n
        c = self.counts
        log.info(
            "ClusterDataset: %d files, %d rows scanned, %d selected (crack %d, no cells %d, E<=0 %d, "
            "E_T < min %d, target > max %d, non-finite dropped %d%s)",
            len(self.files),
            c["n_rows"],
            c["n_selected"],
            c["n_crack_excluded"],
            c["n_no_cells"],
            c["n_nonpositive_e"],
            c["n_low_et"],
            c["n_target_above_max"],
            c["n_nonfinite_dropped"],
            f", max_clusters={self.max_clusters}" if self.max_clusters is not None else "",
        )

    # ------------------------------------------------------------------ construction
    def _check_schemas(self) -> None:
        needed = self.scalar_columns + self.cell_columns
        for path in self.files:
            schema = open_parquet(path).schema_arrow
            missing = [c for c in needed if c not in schema.names]
            if missing:
                raise DataError(
                    f"{path}: missing column(s) {missing} needed for cell features {self.cell_features} "
                    f"and cluster features {self.cluster_features}"
                )
            for c in self.cell_columns:
                t = schema.field(c).type
                if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
                    raise DataError(f"{path}: column {c!r} must be a list column (one entry per cell), has type {t}")
            for c in self.scalar_columns:
                t = schema.field(c).type
                if pa.types.is_nested(t):
                    raise DataError(f"{path}: column {c!r} must be a scalar column, has type {t}")
            check_column_types(path, schema, self.scalar_columns, self.cell_columns)

    def _scan(self) -> list[_RowGroup]:
        """One vectorised pass over the used columns: selection masks and data checks."""
        groups: list[_RowGroup] = []
        n_kept = 0
        for fi, path in enumerate(self.files):
            pf = open_parquet(path)
            start = 0
            for gi in range(pf.metadata.num_row_groups):
                if self.max_clusters is not None and n_kept >= self.max_clusters:
                    return groups
                try:
                    t = pf.read_row_group(gi, columns=self.scalar_columns + self.cell_columns)
                except (OSError, pa.ArrowException) as err:  # a damaged page (footer intact)
                    raise DataError(f"{path}: cannot read row group {gi} (damaged shard?): {err}") from None
                n = t.num_rows
                self.counts["n_rows"] += n
                rows = self._select(path, t, start)
                if self.max_clusters is not None:
                    rows = rows[: self.max_clusters - n_kept]
                n_kept += len(rows)
                if len(rows):
                    groups.append(_RowGroup(fi, gi, start, rows))
                start += n
        return groups

    def _select(self, path: Path, t: pa.Table, start: int) -> np.ndarray:
        """Selected row indices (within the row group) of table ``t``; updates counts, raises on bad data.

        In order: structural checks (raise), the selection cuts, then the data checks (non-finite and
        out-of-range values) among the clusters the cuts kept, so a value of a cut cluster never fails a run.
        """
        n_cells = _to_numpy(t["n_cells"]).astype(np.int64)
        _check_cell_structure(path, t, start, self.cell_columns, n_cells)
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
            crack = _to_numpy(pc.fill_null(t["is_crack"], False)).astype(bool)
            self.counts["n_crack_excluded"] += int(crack.sum())
            keep &= ~crack
        no_cells = keep & (n_cells <= 0)
        self.counts["n_no_cells"] += int(no_cells.sum())
        keep &= ~no_cells
        e = _to_numpy(t["cluster_e"]).astype(np.float64)
        nonpos = keep & (e <= 0)  # NaN compares False: handled as non-finite below
        self.counts["n_nonpositive_e"] += int(nonpos.sum())
        keep &= ~nonpos
        if self.min_cluster_et > 0:
            # A reconstruction-level cut (egamma seeds need E_T above ~1.5 GeV): noise-dominated
            # clusters that carry a tiny fraction of the particle's energy are not calibrated.
            et = e / np.cosh(_to_numpy(t["cluster_eta"]).astype(np.float64))
            low = keep & (et < self.min_cluster_et)
            self.counts["n_low_et"] += int(low.sum())
            keep &= ~low
        if self.max_target is not None:
            # Training-only truth cut (never on test data): a cluster holding a few per mille of the
            # true energy has E_true/E_cluster of 10-500; with a squared loss one such cluster
            # dominates a batch and the normalisation. ATLAS trains on truth-matched clusters.
            target = _to_numpy(t["truth_e"]).astype(np.float64) / np.where(e > 0, e, np.nan)
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
                    _to_numpy(pc.fill_null(pc.is_finite(col), False))
                    if pa.types.is_floating(col.type)
                    else _to_numpy(pc.is_valid(col))
                )
                bad = keep & ~ok.astype(bool)
                if bad.any():
                    bad_by_col[c] = bad
        for c in self.cell_columns:
            bad_rows = _nonfinite_cell_rows(t[c], t.num_rows)
            if bad_rows is None:
                continue
            bad = keep & bad_rows
            if bad.any():
                bad_by_col[c] = bad
        return bad_by_col

    def _drop_nonfinite(self, path: Path, start: int, keep: np.ndarray, bad_by_col: dict[str, np.ndarray]) -> None:
        """Rows with a non-finite value (``bad_by_col`` of :meth:`_nonfinite_rows`): raise, or drop them from ``keep``."""
        any_bad = np.zeros(keep.shape[0], dtype=bool)
        for b in bad_by_col.values():
            any_bad |= b
        if self.nonfinite == "error":
            r = int(np.flatnonzero(any_bad)[0])
            cols = [c for c, b in bad_by_col.items() if b[r]]
            raise DataError(
                f"{path}: row {start + r}: non-finite (NaN/inf/null) value in column(s) {cols}; "
                f"{int(any_bad.sum())} such row(s) in row group starting at row {start} "
                f"(use {self.option_prefix}nonfinite='drop' to drop them)"
            )
        self.counts["n_nonfinite_dropped"] += int(any_bad.sum())
        keep &= ~any_bad

    def _drop_out_of_range(self, path: Path, t: pa.Table, start: int, keep: np.ndarray) -> None:
        """Finite values beyond the physical range of their column among the kept rows: raise or drop (in ``keep``)."""
        bad_by_col = {c: keep & b for c, b in out_of_range_rows(t, self.scalar_columns + self.cell_columns).items()}
        bad_by_col = {c: b for c, b in bad_by_col.items() if b.any()}
        if not bad_by_col:
            return
        any_bad = np.logical_or.reduce(list(bad_by_col.values()))
        if self.out_of_range == "error":
            r = int(np.flatnonzero(any_bad)[0])
            cols = [c for c, b in bad_by_col.items() if b[r]]
            limits = ", ".join(f"|{c}| <= {PHYSICAL_RANGES[c]:g}" for c in cols)
            raise DataError(
                f"{path}: row {start + r}: value outside the physical range ({limits}) in column(s) {cols}; "
                f"{int(any_bad.sum())} such row(s) in row group starting at row {start} "
                f"(use {self.option_prefix}out_of_range='drop' to drop them, or 'allow' to keep them)"
            )
        self.counts["n_out_of_range_dropped"] += int(any_bad.sum())
        keep &= ~any_bad

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        """Number of selected clusters."""
        return self._n

    @property
    def local_batch_size(self) -> int:
        """Clusters per step on this rank: ``batch_size // world_size``."""
        return self.batch_size // self.world_size

    def _batch_sizes(self) -> tuple[int, int]:
        """(number of global batches of an epoch, size of the last one)."""
        # Buffers hold exactly buffer_size clusters (a multiple of batch_size) except the last one.
        full, rest = divmod(self._n, self.buffer_size)
        n = full * (self.buffer_size // self.batch_size) + math.ceil(rest / self.batch_size)
        last = rest % self.batch_size if rest % self.batch_size else self.batch_size
        return n, (last if n else 0)

    def steps_per_epoch(self) -> int:
        """Exact number of batches :meth:`batches` yields on this rank (the same for every epoch and rank)."""
        n, last = self._batch_sizes()
        # A final global batch with fewer clusters than ranks cannot give every rank a slice: dropped.
        return n - 1 if n and last < self.world_size else n

    # ------------------------------------------------------------------ batches
    def _group_order(self, rng: np.random.Generator | None) -> list[_RowGroup]:
        """Row groups in reading order: files, then the groups within each file, permuted when shuffling."""
        by_file: dict[int, list[_RowGroup]] = {}
        for g in self._groups:
            by_file.setdefault(g.file_index, []).append(g)
        file_order = sorted(by_file)
        if rng is not None:
            file_order = [file_order[i] for i in rng.permutation(len(file_order))]
        out: list[_RowGroup] = []
        for fi in file_order:
            groups = by_file[fi]
            if rng is not None:
                groups = [groups[i] for i in rng.permutation(len(groups))]
            out += groups
        return out

    def _plan(self, rng: np.random.Generator | None) -> list[list[_Part]]:
        """The epoch's buffers, planned from the scan alone (nothing is read): each buffer is a list of
        parts of row groups holding exactly ``buffer_size`` selected clusters (the last may hold fewer).

        Planning without reading lets a loader worker read only the row groups of its own buffers.
        """
        plan: list[list[_Part]] = []
        current: list[_Part] = []
        need = self.buffer_size
        for g in self._group_order(rng):
            lo = 0
            while lo < len(g.rows):  # a row group may be split between two buffers
                take = min(need, len(g.rows) - lo)
                current.append(_Part(g, lo, lo + take))
                lo += take
                need -= take
                if need == 0:
                    plan.append(current)
                    current, need = [], self.buffer_size
        if current:
            plan.append(current)
        return plan

    def _read_buffer(self, parts: list[_Part], cache: _ReadCache) -> _Buffer:
        """Read the row groups of one buffer (whole: cells are gathered per batch, see :class:`_Buffer`).

        ``cache`` keeps the open file and the last row group read, so a file's footer is parsed once
        per run of its row groups and a row group split between consecutive buffers is decoded once.
        """
        columns = self.scalar_columns + self.cell_columns
        pieces: list[_Piece] = []
        for part in parts:
            g = part.group
            key = (g.file_index, g.group_index)
            if cache.key != key:
                path = self.files[g.file_index]
                try:
                    if cache.file_index != g.file_index:
                        cache.file, cache.file_index = pq.ParquetFile(path), g.file_index
                    cache.table, cache.key = cache.file.read_row_group(g.group_index, columns=columns), key
                except (OSError, pa.ArrowException) as err:  # changed or damaged since the scan
                    raise OSError(f"{path}: cannot read row group {g.group_index}: {err}") from err
            rows = g.rows[part.lo : part.hi]
            pieces.append(_Piece(cache.table, rows, self._file_offset[g.file_index] + g.start + rows))
        return _Buffer(pieces, self.scalar_columns, self.cell_columns)

    def batches(self, epoch: int, all_ranks: bool = False) -> Iterator[dict[str, torch.Tensor]]:
        """Yield this rank's batches of ``epoch`` (see the module docstring for the dict contract).

        Deterministic for a given (seed, epoch, workers). Within each buffer the clusters are sorted by
        ``n_cells`` (after a shuffle, so equal lengths are in random order) and cut into batches of
        ``batch_size`` (length bucketing keeps padding small); with ``shuffle`` the batch order
        within the buffer is then permuted. With ``world_size > 1`` every global batch is cut into
        ``world_size`` contiguous slices and rank r takes slice r: N ranks together see exactly the
        batches of one process with the same ``batch_size`` and seed, so DDP's averaged gradient is
        the single-process gradient (the epoch's last, short batch is split as evenly as possible,
        or dropped if it has fewer clusters than ranks). Every rank runs the same number of steps
        (DDP needs matching collective calls). Evaluate with ``world_size = 1`` to see every cluster.

        With ``workers > 0`` the buffers are assembled in that many worker processes (buffer k by
        worker k mod workers) and their batches interleaved one by one: the same batches as with
        ``workers = 0``, in a different (still deterministic) order.

        Args:
            epoch: the epoch number (seeds the shuffle).
            all_ranks: yield every batch of the epoch, as a ``world_size = 1`` dataset would (used for
                statistics that must be identical on all ranks).
        """
        if self.workers > 0 and torch.utils.data.get_worker_info() is None:
            from calo_calib.data.workers import worker_batches

            yield from worker_batches(self, epoch, all_ranks)
            return
        yield from self.batches_of_worker(epoch, all_ranks, 0, 1)

    def batches_of_worker(self, epoch: int, all_ranks: bool, worker: int, n_workers: int) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of the buffers ``k`` with ``k % n_workers == worker`` (see :meth:`batches`)."""
        rank, ws = (0, 1) if all_ranks else (self.rank, self.world_size)
        plan = self._plan(np.random.default_rng([self.seed, int(epoch)]) if self.shuffle else None)
        cache = _ReadCache()
        for k, parts in enumerate(plan):
            if k % n_workers != worker:
                continue
            buf = self._read_buffer(parts, cache)
            # Each buffer has its own generator, so any worker can assemble it alone. Shuffle, then
            # a stable sort: clusters of equal length stay in random order.
            rng = np.random.default_rng([self.seed, int(epoch), k]) if self.shuffle else None
            perm = rng.permutation(len(buf.ids)) if rng is not None else np.arange(len(buf.ids))
            order = perm[np.argsort(buf.n_cells[perm], kind="stable")]
            chunks = [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            if rng is not None:
                chunks = [chunks[j] for j in rng.permutation(len(chunks))]
            for idx in chunks:
                if len(idx) < ws:
                    continue  # only the epoch's last batch can be this short (see steps_per_epoch)
                part = idx if ws == 1 else np.array_split(idx, ws)[rank]
                yield buf.batch(part, self.cell_features, self.cluster_features, self.pad_multiple)

    # ------------------------------------------------------------------ evaluation columns
    def scalar_table(self, columns: Sequence[str]) -> pa.Table:
        """The selected clusters' scalar columns in file order, plus ``row_id`` (int64).

        Raises:
            ValueError: if a column is missing from a file (named with the file) or is a list column.
        """
        columns = list(columns)
        parts: list[pa.Table] = []
        by_file: dict[int, list[_RowGroup]] = {}
        for g in self._groups:
            by_file.setdefault(g.file_index, []).append(g)
        for fi, path in enumerate(self.files):
            schema = pq.read_schema(path)
            missing = [c for c in columns if c not in schema.names]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}")
            nested = [c for c in columns if pa.types.is_nested(schema.field(c).type)]
            if nested:
                raise ValueError(f"scalar_table: {nested} are list (per-cell) columns, not scalar columns")
            if fi not in by_file:
                continue
            rows = np.concatenate([g.start + g.rows for g in by_file[fi]])
            t = pq.read_table(path, columns=columns).take(pa.array(rows))
            parts.append(t.append_column("row_id", pa.array(self._file_offset[fi] + rows, pa.int64())))
        if not parts:
            schema = pq.read_schema(self.files[0])
            return pa.table(
                {c: pa.array([], schema.field(c).type) for c in columns} | {"row_id": pa.array([], pa.int64())}
            )
        return pa.concat_tables(parts)


@dataclass
class _ReadCache:
    """The open Parquet file and the last row group read by one reader (process or worker)."""

    file_index: int = -1
    file: pq.ParquetFile | None = None
    key: tuple[int, int] = (-1, -1)
    table: pa.Table | None = None


@dataclass
class _Part:
    """Selected rows ``group.rows[lo:hi]`` of one row group: a buffer's share of it."""

    group: _RowGroup
    lo: int
    hi: int


@dataclass
class _Piece:
    """Selected ``rows`` (ascending, within the table) of one row group ``table``; ``ids`` their row_ids."""

    table: pa.Table
    rows: np.ndarray
    ids: np.ndarray


class _Buffer:
    """One buffer of S selected clusters as numpy: scalar columns (S,), the cell columns of the
    row groups they come from, flattened (N,), and where each selected cluster's cells start (S,)."""

    def __init__(self, pieces: list[_Piece], scalar_columns: list[str], cell_columns: list[str]) -> None:
        self.ids = np.concatenate([p.ids for p in pieces])
        self.scalars = {c: np.concatenate([_to_numpy(p.table[c])[p.rows] for p in pieces]) for c in scalar_columns}
        self.n_cells = self.scalars["n_cells"].astype(np.int64)
        starts, base = [], 0
        for p in pieces:
            # n_cells equals every cell list's length (checked when the files were scanned).
            all_n = _to_numpy(p.table["n_cells"]).astype(np.int64)
            offsets = np.concatenate([[0], np.cumsum(all_n)])
            starts.append(base + offsets[p.rows])
            base += int(offsets[-1])
        self.starts = np.concatenate(starts)
        self.cells = {c: np.concatenate([_flat_values(p.table[c]) for p in pieces]) for c in cell_columns}

    def batch(self, idx: np.ndarray, cell_features: list[str], cluster_features: list[str], pad_multiple: int = 1) -> dict[str, torch.Tensor]:
        """Padded tensors for the buffer rows ``idx`` (B,); L rounded up to a multiple of ``pad_multiple``."""
        b = len(idx)
        n = self.n_cells[idx]
        length = -(-int(n.max()) // pad_multiple) * pad_multiple
        total = int(n.sum())
        batch_start = np.cumsum(n) - n  # start of each cluster in the batch's flat cells
        # Flat position of every batch cell in the buffer, and its (cluster, slot) in the padded batch.
        within = np.arange(total) - np.repeat(batch_start, n)
        seg = np.repeat(np.arange(b), n)
        pos = self.starts[idx][seg] + within
        cells = {c: v[pos] for c, v in self.cells.items()}
        scalars = {c: v[idx] for c, v in self.scalars.items()}

        feat = F.compute_cell_features(cell_features, cells, seg, b, scalars)
        pair = F.compute_pair(cells)
        # Into the padded (B, L, .) grids one cluster slice at a time: each cluster's cells are
        # contiguous in feat/pair, and B slice copies beat a fancy-index scatter of every cell row
        # (the padding step ~1.6x faster, measured on 256-cluster batches of the default photon_conv data).
        cells_pad = np.zeros((b, length, feat.shape[1]), dtype=np.float32)
        pair_pad = np.zeros((b, length, pair.shape[1]), dtype=np.float32)
        for i, (lo, k) in enumerate(zip(batch_start.tolist(), n.tolist())):
            cells_pad[i, :k] = feat[lo : lo + k]
            pair_pad[i, :k] = pair[lo : lo + k]
        valid = np.arange(length) < n[:, None]
        cluster_e = scalars["cluster_e"].astype(np.float32)
        if "truth_e" in scalars:
            target = (scalars["truth_e"].astype(np.float64) / scalars["cluster_e"]).astype(np.float32)
        else:  # with_truth=False: no target to learn from
            target = np.full(b, np.nan, dtype=np.float32)
        return {
            "cells": torch.from_numpy(cells_pad),
            "valid": torch.from_numpy(valid),
            "cluster": torch.from_numpy(F.compute_cluster_features(cluster_features, scalars, cells, seg)),
            "pair": torch.from_numpy(pair_pad),
            "target": torch.from_numpy(target),
            "cluster_e": torch.from_numpy(cluster_e),
            # sigma/E expected at (E_cluster, |eta|) from the ATLAS MC model: the scale of the pull losses.
            "expected_resolution": torch.from_numpy(
                # |eta| capped inside the model's range (it is 0 beyond 2.5), E floored at 1 GeV.
                resolution_model(np.maximum(scalars["cluster_e"], 1.0), np.minimum(np.abs(scalars["cluster_eta"]), 2.49))
                .astype(np.float32)
            ),
            "row_id": torch.from_numpy(self.ids[idx].astype(np.int64)),
        }

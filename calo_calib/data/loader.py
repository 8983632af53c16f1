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

The work is split by job: :mod:`~calo_calib.data.dataset_files` (which files, schema checks),
:mod:`~calo_calib.data.selection` (the scan: cuts and data checks), :mod:`~calo_calib.data.epoch_plan`
(an epoch's buffers and their reading), :mod:`~calo_calib.data.batch_assembly` (bucketing and the
padded tensors); this module holds the dataset class that ties them together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from calo_calib.data import features as F
from calo_calib.data.batch_assembly import Buffer, bucketed_batches
from calo_calib.data.checks import OUT_OF_RANGE_MODES, open_parquet
from calo_calib.data.dataset_files import PathArg, check_schemas, expand_paths
from calo_calib.data.epoch_plan import ReadCache, plan_buffers, read_pieces
from calo_calib.data.selection import NONFINITE_MODES, RowGroup, RowSelection

__all__ = ["NONFINITE_MODES", "ClusterDataset", "PathArg", "expand_paths"]

log = logging.getLogger(__name__)


def _check_options(
    nonfinite: str,
    out_of_range: str,
    option_prefix: str,
    batch_size: int,
    buffer_clusters: int,
    max_clusters: int | None,
    rank: int,
    world_size: int,
) -> None:
    """Raise ValueError on a bad data-check mode, batch or buffer size, or rank layout."""
    if nonfinite not in NONFINITE_MODES:
        raise ValueError(f"{option_prefix}nonfinite must be one of {NONFINITE_MODES}, got {nonfinite!r}")
    if out_of_range not in OUT_OF_RANGE_MODES:
        raise ValueError(f"{option_prefix}out_of_range must be one of {OUT_OF_RANGE_MODES}, got {out_of_range!r}")
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


def _check_assembly_options(pad_multiple: int, workers: int, with_truth: bool, max_target: float | None) -> None:
    """Raise ValueError on a bad padding multiple or worker count, or a truth cut without truth."""
    if int(pad_multiple) < 1:
        raise ValueError(f"pad_multiple must be >= 1, got {pad_multiple}")
    if int(workers) < 0:
        raise ValueError(f"workers must be >= 0 (0 = assemble batches in this process), got {workers}")
    if not with_truth and max_target is not None:
        raise ValueError("max_target is a truth cut: it needs with_truth=True")


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

    @classmethod
    def from_config(
        cls,
        cfg,
        paths: PathArg,
        *,
        shuffle: bool = False,
        batch_size: int | None = None,
        max_clusters: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        training: bool = False,
        with_truth: bool = True,
        nonfinite: str | None = None,
        out_of_range: str | None = None,
    ) -> ClusterDataset:
        """The clusters of ``paths`` with a run config's features and selection (``conf/run.yaml``).

        ``training=True`` (training and validation splits) adds the truth-level target cut
        ``data.max_train_target``; test and inference data never get it. ``with_truth=False`` reads no
        truth at all (unlabelled data-like clusters of the domain adaptation; the target is NaN), and
        then never applies the truth cut. ``batch_size`` None: ``data.eval_batch_size`` rounded up to a
        multiple of ``world_size``. ``nonfinite`` and ``out_of_range`` (None: as the run was
        configured, ``data.nonfinite`` / ``data.out_of_range``) override the handling of bad values.
        """
        from calo_calib.data.configured import dataset_arguments

        options = dict(shuffle=shuffle, batch_size=batch_size, max_clusters=max_clusters, rank=rank, world_size=world_size,
                       training=training, with_truth=with_truth, nonfinite=nonfinite, out_of_range=out_of_range)  # fmt: skip
        return cls(paths, **dataset_arguments(cfg, **options))

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
        _check_options(
            nonfinite, out_of_range, option_prefix, batch_size, buffer_clusters, max_clusters, rank, world_size
        )
        self.out_of_range = out_of_range
        self.option_prefix = str(option_prefix)
        self.cell_features = list(cell_features)
        self.cluster_features = list(cluster_features)
        self.scalar_columns = F.scalar_columns(self.cell_features, self.cluster_features)
        self.with_truth = bool(with_truth)
        _check_assembly_options(pad_multiple, workers, self.with_truth, max_target)
        self.pad_multiple = int(pad_multiple)
        self.workers = int(workers)
        if not self.with_truth:  # inference on data without truth (real collisions): no target
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
        self._scan_files(paths)

    # ------------------------------------------------------------------ construction
    def _scan_files(self, paths: PathArg) -> None:
        """Find and check the files, then scan them once: which clusters are used (``counts``)."""
        self.files = expand_paths(paths)
        check_schemas(self.files, self.scalar_columns, self.cell_columns, self.cell_features, self.cluster_features)
        self._file_rows = [open_parquet(f).metadata.num_rows for f in self.files]
        self._file_offset = np.concatenate([[0], np.cumsum(self._file_rows)]).astype(np.int64)
        selection = RowSelection(
            self.scalar_columns, self.cell_columns, self.exclude_crack, self.min_cluster_et, self.max_target,
            self.nonfinite, self.out_of_range, self.option_prefix,
        )  # fmt: skip
        self.counts: dict[str, int] = selection.counts
        self._groups: list[RowGroup] = selection.scan(self.files, self.max_clusters)
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

    def batches_of_worker(
        self, epoch: int, all_ranks: bool, worker: int, n_workers: int
    ) -> Iterator[dict[str, torch.Tensor]]:
        """The batches of the buffers ``k`` with ``k % n_workers == worker`` (see :meth:`batches`)."""
        rank, ws = (0, 1) if all_ranks else (self.rank, self.world_size)
        rng_plan = np.random.default_rng([self.seed, int(epoch)]) if self.shuffle else None
        plan = plan_buffers(self._groups, self.buffer_size, rng_plan)
        cache = ReadCache()
        columns = self.scalar_columns + self.cell_columns
        for k, parts in enumerate(plan):
            if k % n_workers != worker:
                continue
            pieces = read_pieces(self.files, self._file_offset, parts, cache, columns)
            buf = Buffer(pieces, self.scalar_columns, self.cell_columns)
            # Each buffer has its own generator, so any worker can assemble it alone.
            rng = np.random.default_rng([self.seed, int(epoch), k]) if self.shuffle else None
            for idx in bucketed_batches(buf.n_cells, self.batch_size, rng):
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
        by_file: dict[int, list[RowGroup]] = {}
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

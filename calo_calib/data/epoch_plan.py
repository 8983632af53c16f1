"""An epoch's reading plan: row groups in (shuffled) order, cut into buffers of selected clusters,
and the reading of one buffer's row groups.

Planning from the scan alone (nothing is read) lets a loader worker read only the row groups of
its own buffers (:mod:`calo_calib.data.workers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from calo_calib.data.selection import RowGroup


@dataclass
class ReadCache:
    """The open Parquet file and the last row group read by one reader (process or worker)."""

    file_index: int = -1
    file: pq.ParquetFile | None = None
    key: tuple[int, int] = (-1, -1)
    table: pa.Table | None = None


@dataclass
class Part:
    """Selected rows ``group.rows[lo:hi]`` of one row group: a buffer's share of it."""

    group: RowGroup
    lo: int
    hi: int


@dataclass
class Piece:
    """Selected ``rows`` (ascending, within the table) of one row group ``table``; ``ids`` their row_ids."""

    table: pa.Table
    rows: np.ndarray
    ids: np.ndarray


def group_order(groups: Sequence[RowGroup], rng: np.random.Generator | None) -> list[RowGroup]:
    """Row groups in reading order: files, then the groups within each file, permuted when shuffling."""
    by_file: dict[int, list[RowGroup]] = {}
    for g in groups:
        by_file.setdefault(g.file_index, []).append(g)
    file_order = sorted(by_file)
    if rng is not None:
        file_order = [file_order[i] for i in rng.permutation(len(file_order))]
    out: list[RowGroup] = []
    for fi in file_order:
        file_groups = by_file[fi]
        if rng is not None:
            file_groups = [file_groups[i] for i in rng.permutation(len(file_groups))]
        out += file_groups
    return out


def plan_buffers(groups: Sequence[RowGroup], buffer_size: int, rng: np.random.Generator | None) -> list[list[Part]]:
    """The epoch's buffers, planned from the scan alone (nothing is read): each buffer is a list of
    parts of row groups holding exactly ``buffer_size`` selected clusters (the last may hold fewer)."""
    plan: list[list[Part]] = []
    current: list[Part] = []
    need = buffer_size
    for g in group_order(groups, rng):
        lo = 0
        while lo < len(g.rows):  # a row group may be split between two buffers
            take = min(need, len(g.rows) - lo)
            current.append(Part(g, lo, lo + take))
            lo += take
            need -= take
            if need == 0:
                plan.append(current)
                current, need = [], buffer_size
    if current:
        plan.append(current)
    return plan


def read_pieces(
    files: Sequence[Path], file_offset: np.ndarray, parts: list[Part], cache: ReadCache, columns: list[str]
) -> list[Piece]:
    """Read the row groups of one buffer (whole: cells are gathered per batch, see
    :class:`~calo_calib.data.batch_assembly.Buffer`); ``file_offset[i]`` is the row_id of file i's first row.

    ``cache`` keeps the open file and the last row group read, so a file's footer is parsed once
    per run of its row groups and a row group split between consecutive buffers is decoded once.
    """
    pieces: list[Piece] = []
    for part in parts:
        g = part.group
        key = (g.file_index, g.group_index)
        if cache.key != key:
            path = files[g.file_index]
            try:
                if cache.file_index != g.file_index:
                    cache.file, cache.file_index = pq.ParquetFile(path), g.file_index
                cache.table, cache.key = cache.file.read_row_group(g.group_index, columns=columns), key
            except (OSError, pa.ArrowException) as err:  # changed or damaged since the scan
                raise OSError(f"{path}: cannot read row group {g.group_index}: {err}") from err
        rows = g.rows[part.lo : part.hi]
        pieces.append(Piece(cache.table, rows, file_offset[g.file_index] + g.start + rows))
    return pieces

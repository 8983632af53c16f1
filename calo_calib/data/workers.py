"""Batches assembled in worker processes (``ClusterDataset(workers=N)``), through torch's DataLoader.

One core assembles ~50k clusters/s (Parquet decoding, cell gathering, features, padding); a GPU trains
the reference transformer several times faster than that. Worker ``w`` of ``N`` assembles the buffers
``k`` with ``k % N == w`` of the epoch's plan, reading only their row groups; the DataLoader takes one
batch from each worker in turn, so the order is deterministic, and the set of batches is exactly that
of ``workers=0`` (every cluster once per epoch). DDP ranks use the same plan and the same number of
workers, so their k-th batches are slices of the same global batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

if TYPE_CHECKING:
    from calo_calib.data.loader import ClusterDataset


class _EpochBatches(IterableDataset):
    """One epoch of a dataset's batches; inside a worker, only that worker's buffers."""

    def __init__(self, dataset: ClusterDataset, epoch: int, all_ranks: bool) -> None:
        self.dataset, self.epoch, self.all_ranks = dataset, epoch, all_ranks

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n = (0, 1) if info is None else (info.id, info.num_workers)
        # The batch tensors are shared with the main process through shared memory.
        torch.set_num_threads(1)
        return self.dataset.batches_of_worker(self.epoch, self.all_ranks, worker, n)


def worker_batches(dataset: ClusterDataset, epoch: int, all_ranks: bool = False) -> Iterator[dict[str, torch.Tensor]]:
    """Iterate ``dataset``'s batches of ``epoch`` assembled by ``dataset.workers`` worker processes.

    Errors in a worker (a corrupt file, ...) are re-raised here by the DataLoader with the worker's
    traceback.
    """
    loader = DataLoader(
        _EpochBatches(dataset, epoch, all_ranks),
        batch_size=None,  # the dataset yields whole batches
        num_workers=dataset.workers,
        prefetch_factor=2,
        persistent_workers=False,
    )
    yield from loader

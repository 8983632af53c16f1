"""Background prefetching keeps the batch order, surfaces loader errors and stops cleanly."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from calo_calib.data.prefetch import prefetch


def _batches(n: int, fail_at: int | None = None):
    for i in range(n):
        if i == fail_at:
            raise ValueError(f"bad row in batch {i}")
        yield {"x": torch.full((3,), float(i)), "row_id": torch.tensor([i])}


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_same_batches_in_the_same_order(depth):
    got = [int(b["row_id"]) for b in prefetch(_batches(20), depth=depth)]
    assert got == list(range(20))


def test_loader_errors_reach_the_consumer_at_their_batch():
    seen = []
    with pytest.raises(ValueError, match="bad row in batch 5"):
        for b in prefetch(_batches(10, fail_at=5), depth=2):
            seen.append(int(b["row_id"]))
    assert seen == [0, 1, 2, 3, 4]


def test_stopping_early_ends_the_worker_thread():
    before = threading.active_count()
    gen = prefetch(_batches(1000), depth=2)
    for i, _ in enumerate(gen):
        if i == 3:
            break
    gen.close()
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before

"""Background batch loading: the next batches are assembled (and pinned) while the model trains.

The loader's work (Parquet decoding, feature computation, padding) runs in one background thread;
numpy and pyarrow release the GIL for most of it, so it overlaps with the training step. On CUDA the
tensors are put in pinned memory so that ``.to(device, non_blocking=True)`` copies asynchronously.
The order of batches is exactly the order of the wrapped iterator.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

import torch

_END = object()


def prefetch(batches: Iterable[dict[str, Any]], depth: int = 2, pin_memory: bool = False) -> Iterator[dict[str, Any]]:
    """Iterate ``batches`` with up to ``depth`` batches prepared ahead in a background thread.

    Args:
        depth: batches held ready; 0 iterates in the calling thread (no prefetching).
        pin_memory: pin every tensor (for asynchronous host-to-GPU copies).

    Exceptions raised by the loader are re-raised in the caller, at the batch where they happened.
    """
    if depth <= 0:
        yield from batches
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work() -> None:
        try:
            for batch in batches:
                if pin_memory:
                    batch = {k: v.pin_memory() if torch.is_tensor(v) else v for k, v in batch.items()}
                while not stop.is_set():
                    try:
                        q.put(batch, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_END)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            q.put(err)

    thread = threading.Thread(target=work, name="calo_calib-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # the consumer stopped early (max_steps, an error): let the worker exit
        thread.join(timeout=5)

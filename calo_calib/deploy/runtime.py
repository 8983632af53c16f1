"""onnxruntime sessions for exported calibrations (CPU by default, CUDA when present and asked)."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def make_session(path: str | os.PathLike[str], device: str = "cpu", threads: int = 0):
    """An ``onnxruntime.InferenceSession``.

    Args:
        device: ``cpu``, ``cuda`` (error if the CUDA provider is missing) or ``auto`` (CUDA if present).
        threads: intra-op threads; 0 = onnxruntime's default (all cores).
    """
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    have_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
    if device == "cuda" and not have_cuda:
        raise RuntimeError(f"device=cuda but onnxruntime has no CUDA provider (available: {ort.get_available_providers()})")
    if device in ("cuda", "auto") and have_cuda:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers)


def run_outputs(session, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run a calibration graph and return every output by name (``correction``, and ``sigma`` if the graph has it)."""
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise ValueError(f"ONNX model needs inputs {names}; missing {missing}")
    outputs = [o.name for o in session.get_outputs()]
    return dict(zip(outputs, session.run(outputs, {n: feeds[n] for n in names})))


def run(session, feeds: Mapping[str, np.ndarray]) -> np.ndarray:
    """Run a calibration graph; feeds are keyed by input name (only the graph's inputs are passed)."""
    names = [i.name for i in session.get_inputs()]
    missing = [n for n in names if n not in feeds]
    if missing:
        raise ValueError(f"ONNX model needs inputs {names}; missing {missing}")
    return session.run(["correction"], {n: feeds[n] for n in names})[0]

"""The export's own check: onnxruntime versus PyTorch on real clusters of many sizes.

Per-cluster graph: real clusters spanning the smallest to the largest cell count of the sample, and
1-cell clusters (a real cluster cut to its first cell). Batched graph: real batches of 1, 2, 7 and
64 clusters with padding. The export fails if any correction (or, for a network with the
uncertainty head, any relative ``sigma``) differs by more than the tolerance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from calo_calib.deploy.runtime import run_outputs
from calo_calib.models.common import as_output, relative_sigma

Batch = dict[str, torch.Tensor]


@dataclass
class ParityReport:
    """Largest |ONNX − PyTorch| correction and the shapes that were checked."""

    max_abs_diff: float
    n_checked: int
    cell_counts: list[int]
    batch_sizes: list[int]

    def as_dict(self) -> dict:
        return {"max_abs_diff": self.max_abs_diff, "n_checked": self.n_checked, "cell_counts": self.cell_counts, "batch_sizes": self.batch_sizes}


def _single_clusters(batches: Sequence[Batch], n_pick: int = 24) -> list[dict[str, torch.Tensor]]:
    """Real clusters (cells unpadded) spanning the cell-count range, plus 1-cell cuts of two of them."""
    singles = []
    for b in batches:
        counts = b["valid"].sum(1)
        for i in range(b["cells"].shape[0]):
            n = int(counts[i])
            item = {"cluster": b["cluster"][i : i + 1], "cells": b["cells"][i, :n], "n": n}
            if "pair" in b:
                item["pair"] = b["pair"][i, :n]
            singles.append(item)
    singles.sort(key=lambda s: s["n"])
    idx = np.unique(np.linspace(0, len(singles) - 1, min(n_pick, len(singles))).round().astype(int))
    picked = [singles[i] for i in idx]
    for s in (picked[0], picked[-1]):  # a 1-cell cluster: the smallest unit the convention allows
        one = {k: (v[:1] if k in ("cells", "pair") else v) for k, v in s.items()}
        one["n"] = 1
        picked.append(one)
    return picked


def reference_outputs(model: torch.nn.Module, *args) -> dict[str, np.ndarray]:
    """The PyTorch outputs the graphs must reproduce: correction (and the relative sigma)."""
    o = as_output(model(*args))
    out = {"correction": o.correction.numpy()}
    if o.log_sigma is not None:
        out["sigma"] = relative_sigma(o.correction, o.log_sigma).numpy()
    return out


def _diff_all(got: dict[str, np.ndarray], ref: dict[str, np.ndarray], what: str) -> float:
    if set(got) != set(ref):
        raise ParityError(f"{what}: ONNX outputs {sorted(got)} != PyTorch outputs {sorted(ref)}")
    return max(_diff(got[k], ref[k], f"{what}, output {k}") for k in ref)


def check_parity(model: torch.nn.Module, per_cluster_session, batched_session, batches: Sequence[Batch], tolerance: float) -> ParityReport:
    """Compare the two ONNX graphs with ``model`` (eval mode, CPU, fp32); raise if beyond ``tolerance``.

    Args:
        batches: real loader batches (several, with different lengths).
        tolerance: largest allowed |Δ correction| (dimensionless; corrections are ~1).
    """
    model.eval()
    worst, n_checked, counts, sizes = 0.0, 0, [], []
    with torch.no_grad():
        for s in _single_clusters(batches):
            feeds = {"cluster": s["cluster"].numpy(), "cells": s["cells"].numpy()}
            pair = s.get("pair")
            if pair is not None:
                feeds["cell_pair"] = pair.numpy()
            ref = reference_outputs(model, s["cells"][None], torch.ones(1, s["n"], dtype=torch.bool), s["cluster"], None if pair is None else pair[None])
            got = run_outputs(per_cluster_session, feeds)
            worst = max(worst, _diff_all(got, ref, f"per-cluster graph, {s['n']} cells"))
            n_checked += 1
            counts.append(int(s["n"]))
        for size in (1, 2, 7, 64):
            b = next((b for b in batches if b["cells"].shape[0] >= size), None)
            if b is None:
                continue
            sub = {k: v[:size] for k, v in b.items() if torch.is_tensor(v)}
            length = int(sub["valid"].sum(1).max())  # trim to the batch's own padding
            sub = {k: (v[:, :length] if k in ("cells", "valid", "pair") else v) for k, v in sub.items()}
            feeds = {"cells": sub["cells"].numpy(), "valid": sub["valid"].numpy(), "cluster": sub["cluster"].numpy()}
            if "pair" in sub:
                feeds["pair"] = sub["pair"].numpy()
            ref = reference_outputs(model, sub["cells"], sub["valid"], sub["cluster"], sub.get("pair"))
            got = run_outputs(batched_session, feeds)
            worst = max(worst, _diff_all(got, ref, f"batched graph, batch {size} x {length} cells"))
            n_checked += size
            sizes.append(size)
    if worst > tolerance:
        raise ParityError(f"ONNX and PyTorch outputs (correction, sigma if any) differ by up to {worst:.3g} > tolerance {tolerance:g}")
    return ParityReport(worst, n_checked, sorted(set(counts)), sizes)


class ParityError(RuntimeError):
    """onnxruntime does not reproduce the PyTorch model within the tolerance."""


def _diff(got: np.ndarray, ref: np.ndarray, what: str) -> float:
    if got.shape != ref.shape:
        raise ParityError(f"{what}: ONNX output shape {got.shape} != PyTorch {ref.shape}")
    if not np.all(np.isfinite(got)):
        raise ParityError(f"{what}: ONNX output is not finite: {got}")
    return float(np.max(np.abs(got.astype(np.float64) - ref.astype(np.float64))))

#!/usr/bin/env python
"""Training-step and inference throughput of the networks (CPU here; the same script on a GPU).

    python experiments/bench_train.py                          # reference size, photon_conv default data
    python experiments/bench_train.py --size cpu --steps 20    # the CPU-sized default networks

For the transformer and the edge-feature network at realistic cell counts (real length-bucketed
batches of the default data), measures:
* training step (forward + backward + AdamW, fp32 on CPU, bf16 autocast on CUDA): clusters/s;
* model FLOP per cluster (torch's FLOP counter on one real step) and the achieved FLOP/s as a
  fraction of the measured dense-matmul ceiling of the device (model FLOP utilisation);
* peak memory: host RSS, and GPU memory on CUDA.
Appends to ``benchmarks/results/train.{json,md}`` with date, machine and commit. The data pipeline
is measured by ``experiments/bench_pipeline.py`` (per core, cold and warm, and with worker processes);
older records here carry a first-pass, batch-64 pipeline number of their own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import time
from pathlib import Path

import torch

from calo_calib.io.atomic import append_json_records, write_text_atomic
from calo_calib.provenance import git_commit, machine_info

REPO = Path(__file__).resolve().parents[1]
RESULTS_JSON = REPO / "benchmarks" / "results" / "train.json"
RESULTS_MD = REPO / "benchmarks" / "results" / "train.md"
REFERENCE = ["model.net.embed_dim=256", "model.net.n_layers=4", "model.net.n_heads=8", "model.net.head_hidden=128"]


def matmul_ceiling(device: torch.device, dtype: torch.dtype) -> float:
    """Dense matmul FLOP/s of the device (n = 2048 on CPU, 8192 on GPU): the utilisation reference."""
    n = 8192 if device.type == "cuda" else 2048
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    for _ in range(2):
        a @ b
    reps = 20 if device.type == "cuda" else 5
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def bench_model(
    model_name: str, particle: str, data: Path, size: str, steps: int, batch: int, device: torch.device, compiled: bool = False
) -> dict:
    """One model's record; ``compiled``: torch.compile with static shapes on batches padded to a multiple of 32."""
    from torch.utils.flop_counter import FlopCounterMode

    from calo_calib.calibration import build_run_network, cell_and_cluster_features, make_dataset
    from calo_calib.config import compose_run_config
    from calo_calib.data.normalization import compute_norm_stats
    from calo_calib.training.losses import build_loss

    pad = ["data.pad_multiple=32"] if compiled else []
    cfg = compose_run_config([f"model={model_name}", f"particle={particle}", f"data.batch_size={batch}", "data.workers=0", *pad, *(REFERENCE if size == "reference" else [])])
    ds = make_dataset(cfg, [data], shuffle=True, batch_size=batch, training=True)
    norm = compute_norm_stats(ds, max_clusters=5000)
    cells, clusters = cell_and_cluster_features(cfg)
    torch.manual_seed(0)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors()).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    loss_fn = build_loss("mse")
    use_bf16 = device.type == "cuda"
    batches = []
    for b in ds.batches(1):
        batches.append({k: v.to(device) for k, v in b.items() if torch.is_tensor(v)})
        if len(batches) >= steps + 2:
            break

    forward = model
    if compiled:  # one graph per (batch, padded length) bucket, as trainer.compile=true does
        torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
        forward = torch.compile(model, dynamic=False)

    def step(b, fwd=None) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = (fwd or forward)(b["cells"], b["valid"], b["cluster"], b.get("pair"))
        loss = loss_fn(pred.float(), b["target"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    with FlopCounterMode(display=False) as counter:
        step(batches[0], model)  # eager: the FLOP counter sees every op
    flop_per_cluster = counter.get_total_flops() / batches[0]["cells"].shape[0]
    for b in batches[1:] if compiled else batches[1:2]:  # warm-up (compiled: every shape once)
        step(b)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0, n = time.perf_counter(), 0
    for b in batches[2:]:
        step(b)
        n += b["cells"].shape[0]
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    rate = n / seconds
    model.eval()  # inference: forward only, no gradients (PyTorch; onnxruntime is in bench_inference.py)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
        for b in batches[2:] if compiled else batches[2:3]:  # warm-up (compiled: every shape once)
            forward(b["cells"], b["valid"], b["cluster"], b.get("pair"))
        if device.type == "cuda":
            torch.cuda.synchronize()
        t1 = time.perf_counter()
        for b in batches[2:]:
            forward(b["cells"], b["valid"], b["cluster"], b.get("pair"))
        if device.type == "cuda":
            torch.cuda.synchronize()
    infer_rate = n / (time.perf_counter() - t1)
    ceiling = matmul_ceiling(device, torch.bfloat16 if use_bf16 else torch.float32)
    mean_cells = sum(float(b["valid"].sum()) for b in batches[2:]) / n
    mean_padded = sum(b["valid"].numel() for b in batches[2:]) / n
    return {
        "model": model_name, "compiled": compiled, "size": size, "device": str(device), "precision": "bf16" if use_bf16 else "fp32",
        "threads": torch.get_num_threads(), "batch": batch, "steps": len(batches) - 2,
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "mean_cells": mean_cells, "mean_padded_length": mean_padded,
        "train_clusters_per_s": rate, "torch_inference_clusters_per_s": infer_rate, "model_gflop_per_cluster": flop_per_cluster / 1e9,
        "achieved_tflops": rate * flop_per_cluster / 1e12, "matmul_ceiling_tflops": ceiling / 1e12,
        "mfu_vs_matmul_ceiling": rate * flop_per_cluster / ceiling,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "peak_gpu_gb": torch.cuda.max_memory_allocated() / 1e9 if device.type == "cuda" else None,
    }  # fmt: skip


def _pipeline(record: dict) -> str:
    value = record.get("pipeline_clusters_per_s_per_core")
    return f"{value:.0f}" if value is not None else "see pipeline.md"


def _write(records: list[dict]) -> None:
    allrec = append_json_records(RESULTS_JSON, records)
    lines = [
        "# Training and data-pipeline throughput",
        "",
        "Generated by `experiments/bench_train.py` on real length-bucketed batches of the default data. MFU = achieved model",
        "FLOP/s over the measured dense-matmul ceiling of the same device and precision. Pipeline (older records only) =",
        "first pass of Parquet -> padded batches in one process at the benchmark batch; now `bench_pipeline.py` -> `pipeline.md`.",
        "",
        "| date (UTC) | machine | commit | model | size | device, precision | batch | mean cells (padded) | train clusters/s | PyTorch inference clusters/s | GFLOP/cluster (train step) | MFU | pipeline clusters/s/core | peak RSS / GPU (GB) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in allrec:
        gpu_mem = f"{r['peak_gpu_gb']:.1f}" if r.get("peak_gpu_gb") is not None else "–"
        lines.append(
            f"| {r['date_utc']} | {r['cpu']} ({r['nproc']} cores), GPU {r['gpu']} | {r['commit']} | {r['model']}{' (compiled)' if r.get('compiled') else ''} | {r['size']} | "
            f"{r['device']}, {r['precision']} | {r['batch']} | {r['mean_cells']:.0f} ({r['mean_padded_length']:.0f}) | "
            f"{r['train_clusters_per_s']:.0f} | {r.get('torch_inference_clusters_per_s', float('nan')):.0f} | {r['model_gflop_per_cluster']:.3f} | {100 * r['mfu_vs_matmul_ceiling']:.1f}% | "
            f"{_pipeline(r)} | {r['peak_rss_gb']:.1f} / {gpu_mem} |"
        )
    write_text_atomic(RESULTS_MD, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particle", default="photon_conv")
    parser.add_argument("--data", help="training clusters (default: data/default/<particle>/train, generated by `make data`)")
    parser.add_argument("--size", choices=["reference", "cpu"], default="reference")
    parser.add_argument("--models", default="transformer,gnn_edge")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=0, help="0: 1024 on GPU, 64 on CPU")
    parser.add_argument("--compile", choices=["auto", "yes", "no", "both"], default="auto", help="auto: eager and compiled on CUDA, eager on CPU")
    args = parser.parse_args()
    commit = git_commit()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = args.batch or (1024 if device.type == "cuda" else 64)
    data = Path(args.data or f"data/default/{args.particle}/train")
    if not data.exists():
        raise SystemExit(f"{data} does not exist: run `make data` (or pass --data)")
    stamp = {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), **machine_info(), "commit": commit, "particle": args.particle}
    records = []
    for name in args.models.split(","):
        modes = {"auto": [False, True] if device.type == "cuda" else [False], "yes": [True], "no": [False], "both": [False, True]}[args.compile]
        for compiled in modes:
            rec = {**stamp, **bench_model(name, args.particle, data, args.size, args.steps, batch, device, compiled)}
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items() if k != "host"})
            records.append(rec)
    _write(records)
    print(f"wrote {RESULTS_JSON} and {RESULTS_MD}")


if __name__ == "__main__":
    main()

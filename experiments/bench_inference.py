#!/usr/bin/env python
"""Inference benchmark of the exported calibrations (onnxruntime for the networks, XGBoost for the BDT).

    python experiments/bench_inference.py                       # photon_conv default data, CPU
    python experiments/bench_inference.py --particle electron --bdt-run runs/electron/bdt-mse/<time>

Measures, on real clusters of the test split:
* latency per cluster at batch 1 on ONE thread (the reconstruction use: one cluster per call, the
  per-cluster ONNX graph / one XGBoost row): median, 90th percentile, mean;
* throughput batched on all cores (batched ONNX graph with length-bucketed batches / XGBoost on
  whole arrays), clusters/s;
* with the CUDA provider when onnxruntime has one (GPU machines).
The network is the reference transformer size (embed 256, 4 layers, 8 heads) with the run's input
normalisation; its weights are untrained (timing does not depend on their values), and it is
exported and parity-checked exactly as ``calo_calib.export`` does. The BDT is a trained one (the
newest ``model=bdt`` run of the particle, or ``--bdt-run``). Appends to
``benchmarks/results/inference.{json,md}`` with date, machine and commit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from calo_calib.io.atomic import append_json_records, write_text_atomic
from calo_calib.provenance import git_commit, machine_info

REPO = Path(__file__).resolve().parents[1]
RESULTS_JSON = REPO / "benchmarks" / "results" / "inference.json"
RESULTS_MD = REPO / "benchmarks" / "results" / "inference.md"


def _latency(fn, items, warmup: int = 20) -> dict[str, float]:
    for it in items[:warmup]:
        fn(it)
    times = []
    for it in items:
        t0 = time.perf_counter()
        fn(it)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * np.array(times)
    return {"latency_ms_median": float(np.median(ms)), "latency_ms_p90": float(np.percentile(ms, 90)), "latency_ms_mean": float(ms.mean()), "n_latency": len(ms)}


def bench_network(particle: str, data: Path, n_latency: int, n_throughput: int, batch: int) -> list[dict]:
    from calo_calib.calibration import build_run_network, cell_and_cluster_features, make_dataset
    from calo_calib.config import compose_run_config
    from calo_calib.data.normalization import compute_norm_stats
    from calo_calib.deploy.onnx_export import export_batched, export_per_cluster
    from calo_calib.deploy.parity import check_parity
    from calo_calib.deploy.runtime import available_providers, make_session, run

    cfg = compose_run_config(["model=transformer", f"particle={particle}", "scale=full"])
    torch.manual_seed(0)
    ds = make_dataset(cfg, [data], batch_size=batch, max_clusters=max(n_throughput, n_latency))
    norm = compute_norm_stats(ds, max_clusters=5000)
    cells, clusters = cell_and_cluster_features(cfg)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors()).eval()
    batches = list(ds.batches(0))
    singles = [{"cluster": b["cluster"][i : i + 1].numpy(), "cells": b["cells"][i, : int(b["valid"][i].sum())].numpy()}
               for b in batches for i in range(b["cells"].shape[0])]  # fmt: skip
    # A random sample: the batches are sorted by cell count, so their first clusters are the smallest.
    pick = np.random.default_rng(0).choice(len(singles), size=min(n_latency, len(singles)), replace=False)
    singles = [singles[i] for i in pick]
    n_params = sum(p.numel() for p in model.parameters())
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        example = max(batches, key=lambda b: b["cells"].shape[0])
        meta = {"model": "transformer", "particle": particle}
        per_cluster = export_per_cluster(model, example, Path(tmp) / "pc.onnx", meta)
        batched = export_batched(model, example, Path(tmp) / "b.onnx", meta)
        small = [{k: v[:64] for k, v in b.items()} for b in batches[:: max(1, len(batches) // 8)]]
        report = check_parity(model, make_session(per_cluster, threads=1), make_session(batched), small, tolerance=1e-4)
        common = {"model": "transformer (reference size, untrained weights)", "n_parameters": n_params, "parity_max_abs_diff": report.max_abs_diff}

        s1 = make_session(per_cluster, threads=1)
        lat = _latency(lambda it: run(s1, it), singles)
        records.append({**common, "device": "cpu", "threads": 1, **lat, "mean_cells": float(np.mean([len(s["cells"]) for s in singles]))})
        mean_cells_all = float(np.mean([float(b["valid"].sum()) / b["valid"].shape[0] for b in batches]))

        for device in ["cpu"] + (["cuda"] if "CUDAExecutionProvider" in available_providers() else []):
            sb = make_session(batched, device=device, threads=0)
            feeds = [{"cells": b["cells"].numpy(), "valid": b["valid"].numpy(), "cluster": b["cluster"].numpy()} for b in batches]
            for f in feeds[:2]:
                run(sb, f)
            t0 = time.perf_counter()
            n = sum(run(sb, f).shape[0] for f in feeds)
            seconds = time.perf_counter() - t0
            records.append({**common, "device": device, "threads": "all", "batch": batch, "throughput_clusters_per_s": n / seconds, "n_throughput": n, "mean_cells": mean_cells_all})
    return records


def bench_bdt(particle: str, data: Path, bdt_run: Path, n_latency: int, n_throughput: int) -> list[dict]:
    from calo_calib.calibration import load_run, make_dataset
    from calo_calib.models.bdt import BDTModel

    calib = load_run(bdt_run)
    if calib.particle != particle:
        raise SystemExit(f"bench_inference: --bdt-run {bdt_run} is a {calib.particle} BDT, not {particle}")
    ds = make_dataset(calib.cfg, [data], max_clusters=n_throughput)
    # The inputs the saved BDT was trained on (its particle and features: atlas, or atlas+shapes with
    # the shower shapes from the cells), computed here once, outside the timed predictions.
    feats = calib.bdt.dataset_inputs(ds)
    records = []
    one = BDTModel.load(bdt_run / "bdt", nthread=1)
    rows = [{k: v[i : i + 1] for k, v in feats.items()} for i in range(min(n_latency, len(feats["cluster_e"])))]
    lat = _latency(one.predict_correction, rows)
    common = {"model": f"{calib.name} (trained: {bdt_run})"}  # bdt, or bdt_shapes (model.features: atlas+shapes)
    records.append({**common, "device": "cpu", "threads": 1, **lat})
    allc = BDTModel.load(bdt_run / "bdt", nthread=0)
    allc.predict_correction({k: v[:1000] for k, v in feats.items()})
    t0 = time.perf_counter()
    n = len(allc.predict_correction(feats))
    seconds = time.perf_counter() - t0
    records.append({**common, "device": "cpu", "threads": "all", "throughput_clusters_per_s": n / seconds, "n_throughput": n})
    return records


def _newest_bdt_run(particle: str) -> Path | None:
    """The newest ``model=bdt`` run of ``particle`` anywhere under ``runs/`` (single runs and benchmark runs)."""
    manifests = set(Path("runs").glob(f"**/{particle}/bdt-*/**/bdt/bdt.json"))
    return max(manifests, key=lambda p: p.stat().st_mtime).parents[1] if manifests else None


def _write(records: list[dict]) -> None:
    allrec = append_json_records(RESULTS_JSON, records)
    lines = [
        "# Inference benchmark: exported calibrations",
        "",
        "Generated by `experiments/bench_inference.py` on real clusters of the test split. Latency: one cluster per call",
        "on one thread (per-cluster ONNX graph, or one XGBoost row). Throughput: batched on all cores (batched ONNX",
        "graph with length-bucketed batches, or XGBoost on whole arrays). The transformer is the reference size with",
        "untrained weights (timing does not depend on them); the BDT is a trained one.",
        "",
        "| date (UTC) | machine | commit | particle | model | device | threads | latency median / p90 (ms) | throughput (clusters/s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in allrec:
        lat = f"{r['latency_ms_median']:.3f} / {r['latency_ms_p90']:.3f}" if "latency_ms_median" in r else "–"
        thr = f"{r['throughput_clusters_per_s']:.0f}" if "throughput_clusters_per_s" in r else "–"
        lines.append(f"| {r['date_utc']} | {r['cpu']} ({r['nproc']} cores), GPU {r['gpu']} | {r['commit']} | {r['particle']} | {r['model']} | {r['device']} | {r['threads']} | {lat} | {thr} |")
    write_text_atomic(RESULTS_MD, "\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--particle", default="photon_conv")
    parser.add_argument("--data", help="test clusters (default: data/default/<particle>/test)")
    parser.add_argument("--bdt-run", help="a model=bdt run directory (default: the newest under runs/)")
    parser.add_argument("--n-latency", type=int, default=1000)
    parser.add_argument("--n-throughput", type=int, default=16384)
    parser.add_argument("--batch", type=int, default=128, help="clusters per batched call (CPU: 128 beat 1024 on 2 cores)")
    args = parser.parse_args()
    commit = git_commit()
    data = Path(args.data or f"data/default/{args.particle}/test")
    stamp = {"date_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), **machine_info(), "commit": commit, "particle": args.particle}
    records = [{**stamp, **r} for r in bench_network(args.particle, data, args.n_latency, args.n_throughput, args.batch)]
    bdt_run = Path(args.bdt_run) if args.bdt_run else _newest_bdt_run(args.particle)
    if bdt_run is None:
        print(f"no model=bdt run of {args.particle} under runs/: BDT not measured (pass --bdt-run)")
    else:
        records += [{**stamp, **r} for r in bench_bdt(args.particle, data, bdt_run, args.n_latency, args.n_throughput)]
    for r in records:
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items() if k not in ("host",)})
    _write(records)
    print(f"wrote {RESULTS_JSON} and {RESULTS_MD}")


if __name__ == "__main__":
    main()

"""Batch inference with an exported calibration.

    python -m calo_calib.predict model=exported/transformer_photon_conv_batched.onnx input=data/my_clusters output=calibrated.parquet
    python -m calo_calib.predict model=exported/bdt_photon_conv input=... output=... threads=8

Reads the clusters with the features and the selection the model was exported with, streams them
through onnxruntime (CPU by default; ``device=cuda|auto`` for the CUDA provider) or XGBoost, and
writes ``output`` (Parquet, written to a temporary name and renamed): one row per selected cluster
with ``row_id`` (row in the input files, as in calo_calib's predictions), ``cluster_e`` [GeV],
``correction`` and ``e_calib = correction × cluster_e`` [GeV], ``sigma`` (σ(E)/e_calib) for a network
with the uncertainty head (``loss=gaussian_nll``), plus ``truth_e`` [GeV] when the input
carries truth. Clusters the model does not calibrate (crack, E_T below the seed threshold, no cells)
are counted in the log, not written.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import hydra
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from omegaconf import DictConfig
from tqdm import tqdm

from calo_calib.paths import CONF_DIR

log = logging.getLogger(__name__)


def _has_truth(paths) -> bool:
    from calo_calib.io.parquet import _resolve_paths

    files = _resolve_paths(paths)
    return all("truth_e" in pq.ParquetFile(f).schema_arrow.names for f in files)


def predict(model: str, input: str, output: str, batch_size: int = 1024, device: str = "cpu", threads: int = 0,
            truth: str | bool = "auto", progress: bool = True) -> dict:  # fmt: skip
    """Calibrate every selected cluster of ``input``; returns counts and throughput."""
    from calo_calib.deploy.predictors import load_predictor

    predictor = load_predictor(model, device=device, threads=threads)
    with_truth = _has_truth(input) if str(truth) == "auto" else str(truth).lower() in ("true", "1", "yes")
    dataset = predictor.dataset(input, batch_size=batch_size, with_truth=with_truth)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    fields = [("row_id", pa.int64()), ("cluster_e", pa.float32()), ("correction", pa.float32()), ("e_calib", pa.float32())]
    with_sigma = bool(getattr(predictor, "has_sigma", False))
    if with_sigma:  # a network trained with loss=gaussian_nll: its per-cluster resolution
        fields.append(("sigma", pa.float32()))
    if with_truth:
        fields.append(("truth_e", pa.float32()))
    schema = pa.schema(fields, metadata={b"model": str(Path(model).resolve()).encode(), b"input": str(input).encode()})
    n, t0 = 0, time.perf_counter()
    bar = tqdm(total=len(dataset), unit="cluster", unit_scale=True, desc="calibrating", disable=not progress)
    with pq.ParquetWriter(tmp, schema) as writer:
        for chunk in predictor.iter_predictions(dataset):
            corr = np.asarray(chunk["correction"], dtype=np.float32)
            e = np.asarray(chunk["cluster_e"], dtype=np.float32)
            cols = {"row_id": chunk["row_id"].astype(np.int64), "cluster_e": e, "correction": corr, "e_calib": corr * e}
            if with_sigma:
                cols["sigma"] = np.asarray(chunk["sigma"], dtype=np.float32)
            if with_truth:
                cols["truth_e"] = (np.asarray(chunk["target"], dtype=np.float64) * e).astype(np.float32)
            writer.write_table(pa.table(cols, schema=schema))
            n += len(corr)
            bar.update(len(corr))
    bar.close()
    os.replace(tmp, out)
    seconds = time.perf_counter() - t0
    stats = {"n_clusters": n, "seconds": seconds, "clusters_per_s": n / seconds if seconds > 0 else None, "selection": dataset.counts}
    log.info("calibrated %d clusters in %.1f s (%.0f clusters/s) -> %s; selection: %s", n, seconds, stats["clusters_per_s"] or 0, out, dataset.counts)
    return stats


@hydra.main(config_path=str(CONF_DIR / "apps" / "predict"), config_name="predict", version_base=None)
def main(cfg: DictConfig) -> None:
    """Hydra entry point (see module docstring)."""
    from calo_calib.deploy.predictors import PredictorError

    try:
        predict(str(cfg.model), str(cfg.input), str(cfg.output), int(cfg.batch_size), str(cfg.device), int(cfg.threads), cfg.truth, bool(cfg.progress))
    except (PredictorError, ValueError, FileNotFoundError, RuntimeError) as err:
        raise SystemExit(f"calo_calib.predict: error: {err}") from None


if __name__ == "__main__":
    main()

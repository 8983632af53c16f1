"""Batch inference with an exported calibration: :func:`predict` (what ``python -m calo_calib.predict`` calls).

Reads the clusters with the features and the selection the model was exported with, streams them
through onnxruntime (CPU by default; ``device=cuda|auto`` for the CUDA provider) or XGBoost, and
writes ``output`` (Parquet, written to a hidden temporary name and renamed; removed on any failure):
one row per selected cluster with ``row_id`` (row in the input files, as in calo_calib's predictions), ``cluster_e`` [GeV],
``correction`` and ``e_calib = correction × cluster_e`` [GeV], ``sigma`` (σ(E)/e_calib) for a network
with the uncertainty head (``loss=gaussian_nll``), plus ``truth_e`` [GeV] when the input
carries truth. Clusters the model does not calibrate (crack, E_T below the seed threshold, no cells)
are counted in the log, not written.

The output is checked before any work: never the model, an input file (also via a symlink or
``..``) or a directory, and an existing file only with ``overwrite=true``. ``nonfinite=error|drop``
chooses what a NaN/inf in a used column does (stop naming file, row and column; or drop and count
the cluster); by default as the model was exported.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

log = logging.getLogger("calo_calib.predict")  # the command's logger name, as before the move


def _has_truth(paths) -> bool:
    from calo_calib.io.parquet import resolve_paths

    files = resolve_paths(paths)
    return all("truth_e" in pq.ParquetFile(f).schema_arrow.names for f in files)


NONFINITE_CHOICES = ("error", "drop")


def check_output(model: str, input: str, output: str, overwrite: bool = False) -> Path:
    """Refuse, before any work, an ``output`` that would destroy or corrupt something of the user's.

    Refused: the model or an input file (also via a symlink, ``..`` or a hard link), a directory, an
    existing file without ``overwrite``, and a file inside the input dataset directory (a
    ``.parquet`` file there would be read as one of the dataset's shards).

    Raises:
        OutputError: naming the output and what it collides with.
        FileNotFoundError: the input does not exist (or is a directory without shards).
    """
    from calo_calib.io.dataset_stream import resolve_parquet_files
    from calo_calib.io.outputs import OutputError, check_output_file

    src, mdl = Path(input), Path(model)
    files = [src, *resolve_parquet_files(src)]
    if src.is_dir():
        files += [f for f in (src / "dataset.json",) if f.exists()]
    models = [
        mdl,
        *(sorted(f for f in mdl.rglob("*") if f.is_file()) if mdl.is_dir() else []),
    ]  # an exported BDT directory
    out = check_output_file(output, files, overwrite, models=models)
    if src.is_dir() and out.parent.resolve() == src.resolve():
        raise OutputError(f"output {out} is inside the input dataset directory {src}: it would become part of the dataset "
                          "(a .parquet file is read as one of its shards); write it elsewhere")  # fmt: skip
    return out


OUT_OF_RANGE_CHOICES = ("error", "drop", "allow")


def _check_choice(key: str, value: str | None, choices: tuple[str, ...]) -> str | None:
    """None (as exported) or one of ``choices``; anything else is an error naming ``key``."""
    if value is None or str(value).lower() in ("null", "none", "model", ""):
        return None
    if str(value) not in choices:
        raise ValueError(f"{key} must be one of {list(choices)} (or null: as the model was exported), got {value!r}")
    return str(value)


def _check_particle(input: str, particle: str, model: str, allow: bool) -> None:
    """The input's particle type (and conversion types) must be the model's, unless ``allow``."""
    from calo_calib.data.checks import check_particle
    from calo_calib.io.dataset_stream import resolve_parquet_files

    problems = check_particle(resolve_parquet_files(input), particle, what=f"input={input}",
                              override="allow_particle_mismatch=true", allow=allow)  # fmt: skip
    for p in problems:
        log.warning("PARTICLE MISMATCH (allow_particle_mismatch=true): %s (model %s)", p, model)


def _check_nonfinite(nonfinite: str | None) -> str | None:
    if nonfinite is None or str(nonfinite).lower() in ("null", "none", "model", ""):
        return None
    if str(nonfinite) not in NONFINITE_CHOICES:
        raise ValueError(
            f"nonfinite must be one of {list(NONFINITE_CHOICES)} (or null: as the model was exported), got {nonfinite!r}"
        )
    return str(nonfinite)


def predict(model: str, input: str, output: str, batch_size: int = 1024, device: str = "cpu", threads: int = 0,
            truth: str | bool = "auto", progress: bool = True, nonfinite: str | None = None,
            overwrite: bool = False, out_of_range: str | None = None,
            allow_particle_mismatch: bool = False) -> dict:  # fmt: skip
    """Calibrate every selected cluster of ``input``; returns counts and throughput.

    ``nonfinite``: ``error`` (stop at the first NaN/inf/null in a used column, naming file, row and
    column), ``drop`` (skip those clusters and count them: ``selection["n_nonfinite_dropped"]``), or
    None (the model's exported selection, ``error`` unless it was trained with ``data.nonfinite=drop``).
    ``out_of_range``: a finite value beyond the physical range of its column (``cell_x = 3e38``):
    ``error`` | ``drop`` | ``allow`` (None: as exported, ``error`` by default).
    ``allow_particle_mismatch``: calibrate data whose ``particle`` column (or conversion types)
    differ from the model's particle type (otherwise an error naming both).
    ``overwrite``: replace an existing ``output``. The output path is checked (:func:`check_output`)
    before anything is loaded; on any failure no temporary file is left behind.
    """
    from calo_calib.calibration import load_exported
    from calo_calib.io.dataset_stream import tmp_file

    nonfinite = _check_nonfinite(nonfinite)
    out = check_output(model, input, output, overwrite)
    calibration = load_exported(model, device=device, threads=threads)
    _check_particle(input, calibration.particle, model, allow_particle_mismatch)
    with_truth = _has_truth(input) if str(truth) == "auto" else str(truth).lower() in ("true", "1", "yes")
    dataset = calibration.dataset(input, batch_size=batch_size, with_truth=with_truth, nonfinite=nonfinite,
                                out_of_range=_check_choice("out_of_range", out_of_range, OUT_OF_RANGE_CHOICES))  # fmt: skip
    fields = [
        ("row_id", pa.int64()),
        ("cluster_e", pa.float32()),
        ("correction", pa.float32()),
        ("e_calib", pa.float32()),
    ]
    with_sigma = calibration.has_sigma
    if with_sigma:  # a network trained with loss=gaussian_nll: its per-cluster resolution
        fields.append(("sigma", pa.float32()))
    if with_truth:
        fields.append(("truth_e", pa.float32()))
    meta = {b"model": str(Path(model).resolve()).encode(), b"input": str(input).encode(),
            b"selection": json.dumps(dataset.counts).encode()}  # fmt: skip
    schema = pa.schema(fields, metadata=meta)
    n, t0 = 0, time.perf_counter()
    created = [d for d in reversed(out.parents) if not d.exists()]  # removed again (if empty) on failure
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_file(out)
    bar = tqdm(total=len(dataset), unit="cluster", unit_scale=True, desc="calibrating", disable=not progress)
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for chunk in calibration.iter_predictions(dataset):
                corr = np.asarray(chunk.correction, dtype=np.float32)
                e = np.asarray(chunk.cluster_e, dtype=np.float32)
                cols = {
                    "row_id": chunk.row_id.astype(np.int64),
                    "cluster_e": e,
                    "correction": corr,
                    "e_calib": corr * e,
                }
                if with_sigma:
                    cols["sigma"] = np.asarray(chunk.sigma, dtype=np.float32)
                if with_truth:
                    cols["truth_e"] = (np.asarray(chunk.target, dtype=np.float64) * e).astype(np.float32)
                writer.write_table(pa.table(cols, schema=schema))
                n += len(corr)
                bar.update(len(corr))
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        for d in reversed(created):
            try:
                d.rmdir()
            except OSError:
                break
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - t0
    stats = {
        "n_clusters": n,
        "seconds": seconds,
        "clusters_per_s": n / seconds if seconds > 0 else None,
        "selection": dataset.counts,
    }
    log.info(
        "calibrated %d clusters in %.1f s (%.0f clusters/s) -> %s; selection: %s",
        n,
        seconds,
        stats["clusters_per_s"] or 0,
        out,
        dataset.counts,
    )
    dropped = int(dataset.counts.get("n_nonfinite_dropped", 0))
    if dropped:
        log.warning("dropped %d cluster(s) with a non-finite (NaN/inf/null) value in a used column (nonfinite=drop); "
                    "they are not in %s", dropped, out)  # fmt: skip
    return stats

"""Export a trained calibration for C++ reconstruction and fast batch inference: :func:`export_run`
(what ``python -m calo_calib.export`` calls).

Networks (transformer, gnn_edge) -> two ONNX files with the normalisation inside the graph and the
feature names, particle, model, version and training provenance in the metadata:
``<model>_<particle>.onnx`` (one cluster per call) and
``<model>_<particle>_batched.onnx`` (padded batches with a mask); see
:mod:`calo_calib.deploy.onnx_graphs`. The export checks itself: onnxruntime against PyTorch on real
clusters of many sizes (1 cell to the largest; batches of 1, 2, 7, 64); beyond ``--tolerance`` it
fails and writes nothing. A network trained with ``loss=gaussian_nll`` is exported with two outputs,
``correction`` and ``sigma`` (the predicted relative resolution), both parity-checked. The BDT is exported in XGBoost's own JSON format
(``bdt_<particle>/``: the boosters per (|η|, E_T) bin and ``calibration.json``), which
``python -m calo_calib.predict`` runs with the same interface, plus ``mvautils/``: each booster as an
MVAUtils TTree and ``binning.json`` (:mod:`calo_calib.deploy.mvautils`). ``--flavour athena`` also
writes the file athena's egammaTransformerCalibTool loads as it is (MeV inputs ``cluster_features`` /
``cell_features``, ``gnn_config``; :mod:`calo_calib.deploy.athena_graph`), checked with the contract
player :mod:`calo_calib.deploy.athena_player`. ``export.json`` describes the export.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("calo_calib.export")

DEFAULT_TOLERANCE = 1e-5  # |Δ correction|; onnxruntime reproduces fp32 PyTorch to ~1e-7


class ExportError(RuntimeError):
    """The export cannot be made (bad run directory, no data for the parity check, parity failure)."""


def _run_dir_of(path: Path) -> Path:
    """A run directory, or the run directory of a checkpoint file (``<run>/checkpoints/best.pt``)."""
    if path.is_file() and path.suffix == ".pt":
        return path.parent.parent
    return path


def _parity_data(cfg, data: str | None) -> list[Path]:
    """Clusters for the parity check: ``--data``, else the run's test split (never generated here)."""
    if data:
        paths = [Path(data)]
    elif cfg.data.get("test"):
        test = cfg.data.test
        paths = [Path(str(p)) for p in ([test] if isinstance(test, str) else test)]
    else:
        paths = [Path(str(cfg.data.root)) / str(cfg.particle.name) / "test"]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ExportError(f"no clusters for the parity check: {', '.join(missing)} missing; pass --data <dataset dir>")
    return paths


def _provenance(run_dir: Path, cfg) -> dict[str, str]:
    from calo_calib import __version__
    from calo_calib.provenance import git_commit

    training_commit = "unknown"
    metrics_path = run_dir / "metrics.json"
    if metrics_path.exists():
        training_commit = str(json.loads(metrics_path.read_text()).get("run", {}).get("commit", "unknown"))
    return {
        "calo_calib_version": __version__,
        "model": str(cfg.model.name),
        "loss": str(cfg.loss.name),
        "particle": str(cfg.particle.name),
        "run_dir": str(run_dir.resolve()),
        "training_commit": training_commit,
        "export_commit": git_commit(),
        "exported_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _selection(cfg) -> dict[str, Any]:
    """The cluster selection the calibration was trained for (applied again at inference)."""
    return {
        "exclude_crack": bool(cfg.data.exclude_crack),
        "min_cluster_et": float(cfg.data.get("min_cluster_et") or 0.0),
        "nonfinite": str(cfg.data.nonfinite),
        "out_of_range": str(cfg.data.get("out_of_range") or "error"),
    }


def _check_parity_particle(paths: list[Path], cfg, allow: bool) -> None:
    """The parity data must be of the model's particle type (its metadata), unless ``allow``."""
    from calo_calib.data.checks import check_particle
    from calo_calib.io.dataset_stream import resolve_parquet_files

    files = [f for p in paths for f in resolve_parquet_files(p)]
    for p in check_particle(files, str(cfg.particle.name), what="parity data", override="--allow-particle-mismatch",
                            allow=allow):  # fmt: skip
        log.warning("PARTICLE MISMATCH (--allow-particle-mismatch): %s", p)


FLAVOURS = ("calo_calib", "athena")
"""``calo_calib``: the project's per-cluster and batched files; ``athena``: also the file athena's
``egammaTransformerCalibTool`` loads as it is (``docs/deployment.md``, "athena")."""


def athena_incompatibility(run_dir: Path, cfg, cells: list[str], clusters: list[str]) -> str | None:
    """Why the athena tool cannot serve this network (one line naming run, preset and fix), or None."""
    from calo_calib.deploy import athena_spec as spec

    particle = str(cfg.particle.name)
    if particle not in spec.PARTICLE_TYPES:
        return f"{run_dir}: --flavour athena: egammaTransformerCalibTool has no model for particle {particle!r}"
    want = spec.cluster_features(particle)
    if clusters == want and cells == list(spec.CELL_FEATURES):
        return None
    preset = cfg.data.get("cluster_features")
    return (f"{run_dir}: --flavour athena: egammaTransformerCalibTool feeds exactly {len(want)} cluster features "
            f"{want} and {len(spec.CELL_FEATURES)} cell features {list(spec.CELL_FEATURES)}, but this run was trained "
            f"with data.cluster_features={preset} ({len(clusters)} cluster features) and data.cell_features={cells}; "
            "the tool cannot serve it: retrain with data.cluster_features=athena and the default data.cell_features")  # fmt: skip


def _gnn_config(prov: dict[str, str], particle: str, outputs: list[str]) -> str:
    """The ``gnn_config`` metadata SaltModel parses: version, inputs (offset 0, scale 1: the
    normalisation is in the graph), outputs, and the project's provenance beside them."""
    from calo_calib.deploy import athena_spec as spec
    from calo_calib.deploy.onnx_export import metadata_json

    def node(name: str, variables: list[str]) -> dict[str, Any]:
        return {"name": name, "variables": [{"name": v, "offset": 0.0, "scale": 1.0} for v in variables]}

    name = spec.salt_model_name(prov["model"])
    return metadata_json({
        "onnx_model_version": spec.EXPORT_SALT_VERSION,
        "inputs": [node(spec.CLUSTER_INPUT, spec.cluster_features(particle))],
        "input_sequences": [node(spec.CELL_INPUT, list(spec.CELL_FEATURES))],
        "outputs": {name: {"labels": outputs, "node_index": 0}},
        "units": "energies MeV, lengths mm, angles rad (ATLAS units; egammaTransformerCalibTool)",
        "calo_calib": prov,
    })  # fmt: skip


def export_network(run_dir: Path, cfg, out: Path, tolerance: float, data: str | None, checkpoint: str,
                   allow_particle_mismatch: bool = False, flavour: str = "calo_calib") -> dict[str, Any]:  # fmt: skip
    import torch

    from calo_calib.calibration import NetworkRunCalibration, cell_and_cluster_features, make_dataset
    from calo_calib.deploy.onnx_export import export_batched, export_per_cluster, metadata_json
    from calo_calib.deploy.onnx_graphs import N_PAIR_INPUTS, has_sigma, needs_pair, output_names
    from calo_calib.deploy.parity import check_parity
    from calo_calib.deploy.runtime import make_session

    if flavour not in FLAVOURS:
        raise ExportError(f"--flavour {flavour!r} is not one of {list(FLAVOURS)}")
    cells, clusters = cell_and_cluster_features(cfg)
    if flavour == "athena":
        why = athena_incompatibility(run_dir, cfg, cells, clusters)
        if why:
            raise ExportError(why)  # before anything is written
    torch.manual_seed(0)
    calib = NetworkRunCalibration(run_dir, cfg, checkpoint=checkpoint, device="cpu")
    model = calib.model.eval()
    parity_paths = _parity_data(cfg, data)
    _check_parity_particle(parity_paths, cfg, allow_particle_mismatch)
    dataset = make_dataset(cfg, parity_paths, batch_size=64, max_clusters=2048)
    batches = list(dataset.batches(0))
    if not batches:
        raise ExportError(f"no selected clusters in {dataset.files} for the parity check")
    example = max(batches, key=lambda b: b["cells"].shape[0] * 1000 + b["cells"].shape[1])
    prov = _provenance(run_dir, cfg)
    meta = {
        **prov,
        "cell_features": metadata_json(cells),
        "cluster_features": metadata_json(clusters),
        "pair_inputs": metadata_json(["eta", "phi", "x", "y", "z", "layer", "e"] if needs_pair(model) else []),
        "selection": metadata_json(_selection(cfg)),
        "output": "correction: E_calib = correction * cluster_e (target E_true / E_cluster)"
        + ("; sigma: predicted relative resolution, sigma(E) = sigma * E_calib" if has_sigma(model) else ""),
        "outputs": metadata_json(output_names(model)),
        "units": "energies GeV, lengths mm, angles rad (docs/data_format.md)",
    }
    stem = f"{prov['model']}_{prov['particle']}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        staging = Path(tmp)
        per_cluster = export_per_cluster(model, example, staging / f"{stem}.onnx", meta)
        batched = export_batched(model, example, staging / f"{stem}_batched.onnx", meta)
        report = check_parity(model, make_session(per_cluster, threads=1), make_session(batched), batches, tolerance)
        log.info("parity OK: max |ONNX - PyTorch| = %.2e over %d clusters (cells %d..%d; batches %s)",
                 report.max_abs_diff, report.n_checked, min(report.cell_counts), max(report.cell_counts), report.batch_sizes)  # fmt: skip
        written = [per_cluster, batched]
        files = {"per_cluster": f"{stem}.onnx", "batched": f"{stem}_batched.onnx"}
        athena = None
        if flavour == "athena":
            athena = _export_athena(model, example, prov, meta, staging, parity_paths, batches, tolerance)
            written.append(staging / athena["file"])
            files["athena"] = athena["file"]
        for f in written:
            os.replace(f, out / f.name)
    return {
        **prov,
        "kind": "network",
        "flavour": flavour,
        "files": files,
        **({"athena": athena} if athena else {}),
        "cell_features": cells,
        "cluster_features": clusters,
        "pair_inputs": N_PAIR_INPUTS if needs_pair(model) else 0,
        "outputs": output_names(model),
        "selection": _selection(cfg),
        "parity": {**report.as_dict(), "tolerance": tolerance},
    }


def _export_athena(model, example, prov: dict[str, str], meta: dict[str, str], staging: Path, parity_paths: list[Path],
                   batches, tolerance: float) -> dict[str, Any]:  # fmt: skip
    """Write the egammaTransformerCalibTool file into ``staging`` and check it with the contract player."""
    from calo_calib.deploy import athena_spec as spec
    from calo_calib.deploy.athena_parity import check_athena_parity
    from calo_calib.deploy.onnx_export import export_athena, metadata_json
    from calo_calib.deploy.onnx_graphs import output_names

    particle = prov["particle"]
    prop, file_name = spec.MODEL_FILE_PROPERTY[particle]
    athena_meta = {
        **meta,
        spec.GNN_CONFIG_KEY: _gnn_config(prov, particle, output_names(model)),
        "cluster_features": metadata_json(spec.cluster_features(particle)),
        "cell_features": metadata_json(list(spec.CELL_FEATURES)),
        "units": "energies MeV, lengths mm, angles rad (ATLAS units, as egammaTransformerCalibTool passes them)",
        "output": "correction: E_calib [MeV] = correction * sum of the cluster's L0..L3 cell energies [MeV]"
        + ("; sigma: predicted relative resolution" if "sigma" in output_names(model) else ""),
    }
    export_athena(model, example, particle, staging / file_name, athena_meta)
    check = check_athena_parity(model, staging, file_name, particle, parity_paths, batches, tolerance)
    log.info("athena contract OK: max |player - PyTorch| = %.2e over %d clusters (outputs %s)",
             check["max_abs_diff"], check["n_checked"], check["outputs"])  # fmt: skip
    return {"file": file_name, "property": prop, "ParticleType": spec.PARTICLE_TYPES[particle],
            "salt_model_name": spec.salt_model_name(prov["model"]), "outputs": check["outputs"],
            "parity": {k: v for k, v in check.items() if k != "outputs"} | {"tolerance": tolerance}}  # fmt: skip


def _write_mvautils(src: Path, dst: Path) -> dict[str, Any]:
    """Each booster of the BDT in ``src`` as an MVAUtils TTree (``<booster>.root``) plus ``binning.json``;
    checked: the trees read back and walked as MVAUtils does equal XGBoost on random inputs."""
    import numpy as np

    from calo_calib.deploy import mvautils, mvautils_root
    from calo_calib.models.bdt import BDTModel

    with_root = mvautils_root.available()
    bdt = BDTModel.load(src, nthread=1)
    dst.mkdir(parents=True)
    boosters = {}
    rng = np.random.default_rng(0)
    for name, booster in bdt.boosters.items():
        path = mvautils.write_tree_file(dst / f"{name}.root", mvautils.preorder_trees(booster))
        offset = mvautils.base_score(booster)
        # Cheap self-check on random inputs (NaNs included: the default_left branches); the tests
        # check real clusters.
        x = rng.normal(size=(64, len(bdt.booster_inputs[name]))).astype(np.float32)
        x[::7, 0] = np.nan
        import xgboost as xgb

        ref = booster.predict(xgb.DMatrix(x, feature_names=bdt.booster_inputs[name]))
        walks = {"python": mvautils.MVAUtilsForest(mvautils.read_tree_file(path))}
        if with_root:  # the vector branches bound in C++ as MVAUtils binds them
            walks["root"] = mvautils_root.RootForest(path)
        for walk, forest in walks.items():
            diff = np.max(np.abs(forest.responses(x) + offset - ref))
            if diff > 1e-5:
                raise ExportError(f"{path}: MVAUtils walk ({walk}) differs from XGBoost by {diff:.3g}")
        boosters[name] = {"file": path.name, "tree": "xgboost", "inputs": bdt.booster_inputs[name], "offset": offset,
                          "n_trees": booster.num_boosted_rounds()}  # fmt: skip
    binning = {
        "format": "MVAUtils TTrees (creator=xgboost) per booster; response = BDT::GetResponse(inputs) + offset",
        "target": "E_true / E_acc, E_acc = E_L1 + E_L2 + E_L3; E_calib = response * E_acc",
        "bin_axes": {"abs_eta": "|cluster eta|", "e_t_raw": "E_acc / cosh(cluster eta) [GeV]"},
        "bin_rule": "a value on an edge belongs to the upper bin; values outside the grid use the first/last bin",
        "bins": bdt.bins, "routes": bdt.routes, "boosters": boosters,
        "vector_branches": "std::vector<int>/<float>/<bool> vars/values/default_left (written with ROOT), as "
        "MVAUtils::BDT binds them" if with_root else "uproot's int32_t[n]/float[n]/bool[n] with counters (ROOT is not "
        "installed): NOT loadable by MVAUtils::BDT; convert the JSON boosters with athena's convertXGBoostToRootTree.py",
    }  # fmt: skip
    (dst / "binning.json").write_text(json.dumps(binning, indent=1, default=float))
    return {"directory": "mvautils", "binning": "binning.json", "boosters": {k: v["file"] for k, v in boosters.items()}}


def export_bdt(run_dir: Path, cfg, out: Path) -> dict[str, Any]:
    """Copy the XGBoost boosters (JSON) with a ``calibration.json`` describing inputs and provenance."""
    from calo_calib.data.high_level import high_level_columns, shape_cell_columns

    src = run_dir / "bdt"
    if not (src / "bdt.json").exists():
        raise ExportError(f"{run_dir} has no trained BDT ({src / 'bdt.json'} is missing)")
    prov = _provenance(run_dir, cfg)
    # The input set the boosters were trained on (atlas | atlas+shapes), as the manifest records it.
    features = str(json.loads((src / "bdt.json").read_text())["config"].get("features", "atlas"))
    name = f"bdt_{prov['particle']}"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out, prefix=".export-") as tmp:
        staging = Path(tmp) / name
        shutil.copytree(src, staging)
        columns = sorted(set(high_level_columns(prov["particle"], features)) | set(shape_cell_columns(features)))
        info = {**prov, "kind": "bdt", "features": features, "input_columns": columns, "selection": _selection(cfg),
                "format": "XGBoost JSON boosters per (|eta|, E_T) bin; calo_calib.models.bdt.BDTModel.load"}  # fmt: skip
        (staging / "calibration.json").write_text(json.dumps(info, indent=2))
        info["mvautils"] = _write_mvautils(src, staging / "mvautils")
        (staging / "calibration.json").write_text(json.dumps(info, indent=2))
        if (out / name).exists():
            shutil.rmtree(out / name)
        os.replace(staging, out / name)
    return {**info, "files": {"bdt": name}}


def export_run(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None, tolerance: float = DEFAULT_TOLERANCE,
               data: str | None = None, allow_particle_mismatch: bool = False, flavour: str = "calo_calib") -> dict[str, Any]:  # fmt: skip
    """Export the calibration of a run directory (or checkpoint); returns the manifest written to ``export.json``.

    ``flavour="athena"`` also writes the file athena's egammaTransformerCalibTool loads as it is
    (refused, with the fix, for a network trained on other features than the tool's).

    The parity data (``data`` or the run's test split) must hold the model's particle type, unless
    ``allow_particle_mismatch``; an unfinished run (its ``status.json`` not ``completed``) is refused.
    """
    from calo_calib.calibration import load_run_config, run_calibration_class
    from calo_calib.io.atomic import write_json_atomic

    path = Path(path)
    if not path.exists():
        raise ExportError(f"{path} does not exist")
    run_dir = _run_dir_of(path)
    from calo_calib.run_status import unfinished_reason

    unfinished = unfinished_reason(run_dir)
    if unfinished:
        raise ExportError(f"{run_dir}: {unfinished}; export a completed run")
    checkpoint = path.name if path.is_file() else "best.pt"
    cfg = load_run_config(run_dir)
    out_dir = Path(out) if out else run_dir / "export"
    if run_calibration_class(cfg).is_network:  # ONNX graphs
        manifest = export_network(run_dir, cfg, out_dir, tolerance, data, checkpoint, allow_particle_mismatch, flavour)
    else:  # XGBoost JSON (+ MVAUtils trees)
        manifest = export_bdt(run_dir, cfg, out_dir)
    write_json_atomic(out_dir / "export.json", manifest)
    log.info("exported %s to %s: %s", run_dir, out_dir, ", ".join(manifest["files"].values()))
    return manifest

"""Contract tests that play athena: the exported files loaded as the ATLAS C++ tools load them.

Mirrored (contract restated, code never copied), public athena repository
https://github.com/ATLAS-experiment/athena (MVAUtils sources also from the rolandjansky/athena mirror):

* Reconstruction/egamma/egammaTransformerCalib/Root/egammaTransformerCalibTool.cxx @ 0ae1b757503a1202acd994f970f2e5a1a7705652
  (initialize: 11/15 cluster and 7 cell features; setupTransformerModel: dummy evaluation; getEnergy:
  feature definitions in MeV/mm, first element of the first vector output x sum of L0..L3 cell energies)
* .../egammaTransformerCalib/egammaTransformerCalibTool.h @ 3f3ef20357f797b24900e6ecef3e3a0be1d6a9b2
  (properties folder, ElectronModelFile, UnconvertedPhotonModelFile, ConvertedPhotonModelFile, ParticleType)
* PhysicsAnalysis/JetTagging/FlavorTagInference/Root/SaltModel.cxx @ 28f530dcbe11c45039276c6472fe6073aaea208a,
  FlavorTagInference/SaltModel.h @ 628ac7bea1bffcbdc332fd7cd9f089a4b85db55e,
  Root/SaltModelOutput.cxx @ 7bbb05f44167c5ecc767ef999c498ec45e6fb868,
  Root/SaltModelGraphConfig.cxx @ 446634e2e51904cc35c36ba1e98996302b743784
  (gnn_config JSON, onnx_model_version v0..v2, <model>_<output> names, rank rules, inputs by name)
* Reconstruction/MVAUtils/util/convertXGBoostToRootTree.py @ 4e2990c6f50f449a0e7ddc16f4f459b2e802e268,
  MVAUtils/Root/ForestXGBoost.cxx @ d7835dd8f397ed77bd8f75737eeebf2106bb2f9e and
  MVAUtils/ForestXGBoost.h @ 9b1a77b04a7b737e4631206a5672ebca37855cbd (rolandjansky/athena)

What they prove: a file written by ``calo_calib.export --flavour athena`` passes every check the
SaltModel constructor and runInference make, and the energies the tool's getEnergy would compute
from the cells in MeV reproduce ``calo_calib.predict`` (batched graph, GeV) to 1e-5 relative on real
clusters of the three particle types, the uncertainty-head model included. They are not athena: the
C++ build, the xAOD accessors and data-only corrections (layer recalibration, cell recovery) are
outside (docs/deployment.md, "athena").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pyarrow.parquet as pq
import pytest

from calo_calib.calibration import load_calibration
from calo_calib.config import compose_run_config
from calo_calib.deploy import athena_spec as spec
from calo_calib.deploy.athena_player import AthenaContractError, SaltModelPlayer, TransformerCalibPlayer
from calo_calib.deploy.atlas_units import atlas_clusters
from calo_calib.deploy.batch_predict import predict
from calo_calib.deploy.run_export import ExportError, athena_incompatibility, export_run
from calo_calib.pipeline import train_and_evaluate

# particle -> extra overrides: one run per particle; photon_unconv carries the uncertainty head.
RUNS = {"electron": [], "photon_unconv": ["loss=gaussian_nll"], "photon_conv": []}


def _train(root: Path, tiny_data, particle: str, extra: list[str], model: str = "transformer") -> Path:
    overrides = [
        f"model={model}", *tiny_data.run_overrides(particle), *extra,
        "logger=none", "evaluation.n_boot=5", "evaluation.plots=false", "progress=false", "compare_to=null",
        "trainer.epochs=1", "trainer.max_steps_per_epoch=4", "data.batch_size=32", "model.net.n_layers=1",
        "data.cluster_features=athena",  # the tool's features (the project's default adds the BDT's and shapes)
    ]  # fmt: skip
    run_dir = root / f"{model}_{particle}"
    train_and_evaluate(compose_run_config(overrides), run_dir)
    return run_dir


@pytest.fixture(scope="module")
def athena_exports(tmp_path_factory, tiny_data) -> dict[str, tuple[Path, dict, Path]]:
    """{particle: (run dir, export manifest, export dir)}, exported with --flavour athena into ONE
    folder, as the tool's ``folder`` property expects the three files."""
    root = tmp_path_factory.mktemp("athena_runs")
    folder = tmp_path_factory.mktemp("athena_folder")
    out = {}
    for particle, extra in RUNS.items():
        run_dir = _train(root, tiny_data, particle, extra)
        manifest = export_run(run_dir, folder, flavour="athena")
        out[particle] = (run_dir, manifest, folder)
    return out


@pytest.mark.parametrize("particle", list(RUNS))
def test_athena_file_loads_as_salt_model_and_reproduces_predict(athena_exports, tmp_path, particle):
    run_dir, manifest, folder = athena_exports[particle]
    name = spec.MODEL_FILE_PROPERTY[particle][1]
    assert manifest["files"]["athena"] == name and (folder / name).exists()

    # SaltModel's view of the file
    salt = SaltModelPlayer(folder / name)
    sigma = particle == "photon_unconv"
    assert salt.version == "v1" and salt.model_name == "transformer"
    assert [o.name for o in salt.outputs] == ["transformer_correction"] + (["transformer_sigma"] if sigma else [])
    assert salt.input_names == [spec.CLUSTER_INPUT, spec.CELL_INPUT]
    meta = {p.key: p.value for p in onnx.load(str(folder / name)).metadata_props}
    gnn = json.loads(meta["gnn_config"])
    assert gnn["calo_calib"]["run_dir"] == str(run_dir.resolve()) and meta["convention"] == "athena"
    assert [v["name"] for v in gnn["inputs"][0]["variables"]] == spec.cluster_features(particle)

    rel = _athena_vs_predict(run_dir, manifest, folder, particle, tmp_path)
    print(f"{particle}: {len(rel)} clusters, max relative |E_athena - E_predict| = {rel.max():.2e}")
    assert len(rel) > 100 and rel.max() < 1e-5
    assert manifest["athena"]["parity"]["max_abs_diff"] < 1e-5


def _athena_vs_predict(run_dir: Path, manifest: dict, folder: Path, particle: str, tmp_path: Path) -> np.ndarray:
    """Relative differences between the tool's getEnergy (cells in MeV, the athena file of ``folder``)
    and calo_calib.predict (batched file, GeV) on the run's test clusters."""
    calib = load_calibration(run_dir)
    test = str(calib.cfg.data.test)
    predict(str(folder / manifest["files"]["batched"]), test, str(tmp_path / "p.parquet"), progress=False)
    ref = pq.read_table(tmp_path / "p.parquet").to_pydict()
    tool = TransformerCalibPlayer(folder, particle)  # default file property, as the tool is configured
    clusters = atlas_clusters(test, ref["row_id"], converted=particle == "photon_conv")
    e_mev = np.array([tool.get_energy(c) for c in clusters])
    e_calib = np.asarray(ref["e_calib"], dtype=np.float64)
    return np.abs(e_mev / spec.MEV_PER_GEV - e_calib) / np.abs(e_calib)


def test_gnn_edge_athena_file_loads_and_reproduces_predict(tmp_path_factory, tiny_data, tmp_path):
    """The edge-feature network through the same tool: its pair features are rebuilt inside the
    graph from the 7 cell features, so the file has only the tool's two inputs."""
    run_dir = _train(tmp_path_factory.mktemp("gnn_run"), tiny_data, "photon_conv",
                     ["model.net.n_layers=1", "model.net.embed_dim=32"], model="gnn_edge")  # fmt: skip
    folder = tmp_path_factory.mktemp("gnn_folder")
    manifest = export_run(run_dir, folder, flavour="athena")
    salt = SaltModelPlayer(folder / spec.MODEL_FILE_PROPERTY["photon_conv"][1])
    assert salt.version == "v1" and salt.model_name == "gnnedge"
    assert [o.name for o in salt.outputs] == ["gnnedge_correction"]
    assert salt.input_names == [spec.CLUSTER_INPUT, spec.CELL_INPUT]
    rel = _athena_vs_predict(run_dir, manifest, folder, "photon_conv", tmp_path)
    print(f"gnn_edge photon_conv: {len(rel)} clusters, max relative |E_athena - E_predict| = {rel.max():.2e}")
    assert len(rel) > 100 and rel.max() < 1e-5

def test_salt_model_contract_rejects_what_athena_rejects(athena_exports, tmp_path):
    _, _, folder = athena_exports["electron"]
    src = onnx.load(str(folder / spec.MODEL_FILE_PROPERTY["electron"][1]))

    def variant(tag: str, edit) -> Path:
        m = onnx.ModelProto()
        m.CopyFrom(src)
        edit(m)
        path = tmp_path / f"{tag}.onnx"
        onnx.save(m, str(path))
        return path

    def set_meta(m, key, value):
        for p in m.metadata_props:
            if p.key == key:
                p.value = value

    def drop_meta(m, key):
        keep = [p for p in m.metadata_props if p.key != key]
        del m.metadata_props[:]
        m.metadata_props.extend(keep)

    with pytest.raises(AthenaContractError, match="no custom metadata 'gnn_config'"):
        SaltModelPlayer(variant("nometa", lambda m: drop_meta(m, "gnn_config")))
    with pytest.raises(AthenaContractError, match="Unknown Onnx model version"):
        SaltModelPlayer(variant("v9", lambda m: set_meta(m, "gnn_config", json.dumps({"onnx_model_version": "v9"}))))
    with pytest.raises(AthenaContractError, match="version not found"):
        SaltModelPlayer(variant("nover", lambda m: set_meta(m, "gnn_config", json.dumps({"inputs": []}))))

    def rename_input(m):
        for node in m.graph.node:
            node.input[:] = ["cluster" if i == spec.CLUSTER_INPUT else i for i in node.input]
        m.graph.input[0].name = "cluster"

    with pytest.raises(AthenaContractError, match="graph input 'cluster' is not one the tool provides"):
        TransformerCalibPlayer(tmp_path, "electron", model_file=variant("oldnames", rename_input).name)


def test_athena_export_refuses_a_model_the_tool_cannot_serve(athena_exports, tmp_path):
    run_dir, _, _ = athena_exports["electron"]
    cfg = compose_run_config(["particle=electron", "data.cluster_features=athena+bdt"])
    from calo_calib.calibration import cell_and_cluster_features

    why = athena_incompatibility(Path("runs/x"), cfg, *cell_and_cluster_features(cfg))
    assert why and "\n" not in why and "runs/x" in why and "data.cluster_features=athena+bdt" in why
    assert "retrain with data.cluster_features=athena" in why
    # through export_run, on a copy of a real run whose config says athena+bdt: nothing is written
    bad = tmp_path / "bad_run"
    shutil.copytree(run_dir, bad)
    text = (bad / "config.yaml").read_text()
    (bad / "config.yaml").write_text(text.replace("cluster_features: athena\n", "cluster_features: athena+bdt\n", 1))
    with pytest.raises(ExportError, match=r"bad_run: --flavour athena: .*athena\+bdt.*retrain with data.cluster_features=athena"):
        export_run(bad, tmp_path / "out", flavour="athena")
    assert not (tmp_path / "out" / spec.MODEL_FILE_PROPERTY["electron"][1]).exists()


@pytest.fixture(scope="module", params=["electron", "photon_unconv", "photon_conv"])
def bdt_export(request, tmp_path_factory, tiny_data) -> tuple[str, Path, dict, Path]:
    """A tiny binned BDT per particle type and its export (particle, run dir, manifest, export dir)."""
    particle = request.param
    root = tmp_path_factory.mktemp(f"bdt_run_{particle}")
    overrides = ["model=bdt", *tiny_data.run_overrides(particle), "model.num_boost_round=20", "model.min_bin_clusters=30", "model.params.min_child_weight=2", "logger=none",
                 "evaluation.n_boot=5", "evaluation.plots=false", "progress=false", "compare_to=null"]  # fmt: skip
    run_dir = root / f"bdt_{particle}"
    train_and_evaluate(compose_run_config(overrides), run_dir)
    out = tmp_path_factory.mktemp(f"bdt_export_{particle}")
    return particle, run_dir, export_run(run_dir, out), out


def test_mvautils_trees_reproduce_xgboost_on_real_clusters(bdt_export):
    from calo_calib.calibration import make_dataset
    from calo_calib.data.high_level import dataset_bdt_inputs
    from calo_calib.deploy import mvautils_root
    from calo_calib.deploy.mvautils import MVAUtilsForest, read_tree_file
    from calo_calib.models.bdt import BDTModel

    particle, run_dir, manifest, out = bdt_export
    directory = out / manifest["files"]["bdt"] / "mvautils"
    binning = json.loads((directory / "binning.json").read_text())
    calib = load_calibration(run_dir)
    bdt = BDTModel.load(run_dir / "bdt", nthread=1)
    feats = dataset_bdt_inputs(make_dataset(calib.cfg, [calib.cfg.data.test]), particle, bdt.features)
    route = np.asarray(binning["routes"])[bdt.bin_index(feats["abs_eta"], feats["e_t_raw"])]
    # With ROOT (installed by `make install`) the trees hold std::vector branches and are also read in
    # C++ through the branch types MVAUtils::BDT binds; without it only the Python walk can run.
    assert binning["vector_branches"].startswith("std::vector") == mvautils_root.available()
    worst, worst_cpp, n = 0.0, 0.0, 0
    import xgboost as xgb

    for name, entry in binning["boosters"].items():
        rows = np.flatnonzero(route == name)
        if not len(rows):
            continue
        x = np.column_stack([np.asarray(feats[c], np.float32)[rows] for c in entry["inputs"]])
        x[::5, 0] = np.nan  # missing values follow default_left
        ref = bdt.boosters[name].predict(xgb.DMatrix(x, feature_names=entry["inputs"]))
        got = MVAUtilsForest(read_tree_file(directory / entry["file"])).responses(x) + entry["offset"]
        worst = max(worst, float(np.max(np.abs(got - ref) / np.abs(ref))))
        if mvautils_root.available():
            got_cpp = mvautils_root.RootForest(directory / entry["file"]).responses(x) + entry["offset"]
            worst_cpp = max(worst_cpp, float(np.max(np.abs(got_cpp - ref) / np.abs(ref))))
        n += len(rows)
    print(f"MVAUtils walk vs XGBoost ({particle}): {n} clusters, {len(binning['boosters'])} boosters, "
          f"max relative diff {worst:.2e} (Python), {worst_cpp:.2e} (C++ via ROOT vector branches)")  # fmt: skip
    assert n > 100 and len(binning["boosters"]) > 1 and worst < 1e-5 and worst_cpp < 1e-5

"""Feature importance (calo_calib.studies.importance): known-answer toys, layer-ablation bookkeeping
against the Parquet cells (the command on a real run: ``test_feature_importance.py``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow.parquet as pq
import torch

from calo_calib.calibration import build_run_network, cell_and_cluster_features
from calo_calib.config import compose_run_config
from calo_calib.studies import importance as I
from calo_calib.studies.importance_perturbations import PAIR_LAYER, ablate_layer, permute_cell_column
from calo_calib.studies.importance_report import write_importance
from calo_calib.studies.importance_sample import Sample, load_sample

TINY_NET = ["model.net.embed_dim=16", "model.net.n_layers=1", "model.net.n_heads=2", "model.net.head_hidden=16"]
FAST = {"n_boot": 10, "min_count": 5, "progress": False}


def _network_sample(
    tiny_data, model: str = "transformer", max_clusters: int | None = None
) -> tuple[torch.nn.Module, Sample]:
    """An untrained small network of the run config and the tiny test split read through the run's loader."""
    cfg = compose_run_config([f"model={model}", *tiny_data.run_overrides("electron"), *TINY_NET])
    torch.manual_seed(0)
    cells, clusters = cell_and_cluster_features(cfg)
    net = build_run_network(cfg, len(cells), len(clusters), None).eval()
    # small batches: gnn_edge holds (B, L, L, .) pair tensors
    sample = load_sample(
        SimpleNamespace(cfg=cfg, model=net), [tiny_data("electron", "test", n=400)], max_clusters, batch_size=64
    )
    return net, sample


def test_an_input_with_zeroed_weights_has_exactly_zero_importance(tiny_data):
    net, sample = _network_sample(tiny_data, max_clusters=100)
    j_cell = sample.cell_features.index("x")
    j_clu = sample.cluster_features.index("e_l2")
    with torch.no_grad():  # the network cannot see cell x nor cluster e_l2 any more
        net.cell_embed[0].weight[:, j_cell] = 0.0
        net.cell_embed[0].weight[:, len(sample.cell_features) + j_clu] = 0.0
        net.cluster_embed[0].weight[:, j_clu] = 0.0
    res = I.feature_importance(net, sample, repeats=2, seed=1, layers=[], **FAST)
    by = {e["label"]: e for e in res["inputs"]}
    assert set(by) == {f"cell: {n}" for n in sample.cell_features} | {f"cluster: {n}" for n in sample.cluster_features}
    for name in ("cell: x", "cluster: e_l2"):
        assert by[name]["repeats"] == [0.0, 0.0]
        assert all(v == 0.0 for v in by[name]["regions"]["importance"] if np.isfinite(v))
    # a random network does use its other inputs: permuting them changes the resolution
    assert by["cell: y"]["importance"] != 0.0 and by["cluster: cluster_e"]["importance"] != 0.0


class MeanOfColumn(torch.nn.Module):
    """Toy calibration: correction = mean over the valid cells of cell column ``j`` (ignores everything else)."""

    def __init__(self, j: int) -> None:
        super().__init__()
        self.j = j

    def forward(self, cells, valid, cluster, pair=None):  # noqa: ANN001, ANN201
        v = valid.float()
        return (cells[..., self.j] * v).sum(1) / v.sum(1)


def test_the_input_carrying_the_answer_is_clearly_important(tiny_data):
    _, sample = _network_sample(tiny_data)
    j = sample.cell_features.index("z")
    rng = np.random.default_rng(5)
    for b in sample.batches:  # cell column z := target x (1 + 1 % noise): the mean of it is a near-perfect calibration
        noise = torch.from_numpy(rng.normal(0.0, 0.01, size=b["valid"].shape).astype(np.float32))
        b["cells"][..., j] = torch.where(b["valid"], b["target"][:, None] * (1 + noise), 0.0)
    res = I.feature_importance(MeanOfColumn(j), sample, repeats=3, seed=2, layers=[2], **FAST)
    by = {e["label"]: e for e in res["inputs"]}
    assert res["nominal"]["sigma_rel"] < 0.005  # the toy calibrates to ~1 % / sqrt(cells)
    assert by["cell: z"]["importance"] > 1.0  # permuting the answer: resolution more than doubles
    assert by["cell: z"]["err"] < 0.5 * by["cell: z"]["importance"]
    others = [e for e in res["inputs"] if e["kind"] in ("cell", "cluster") and e["name"] != "z"]
    assert all(e["repeats"] == [0.0, 0.0, 0.0] for e in others)
    # removing the middle layer removes cells but the mean of the survivors still carries the answer
    assert abs(by["layer: middle (L2)"]["importance"]) < 0.5 * by["cell: z"]["importance"]


def test_layer_ablation_removes_exactly_that_layers_cells(tiny_data):
    _, sample = _network_sample(tiny_data)
    # independent bookkeeping straight from the Parquet shards (row_id = row in the sorted files)
    files = sorted(Path(tiny_data("electron", "test", n=400)).glob("*.parquet"))
    layers = [lst for f in files for lst in pq.read_table(f, columns=["cell_layer"]).column("cell_layer").to_pylist()]
    row_id = torch.cat([b["row_id"] for b in sample.batches]).numpy()
    for layer in (0, 1, 2, 3):
        abl = ablate_layer(sample.batches, layer)
        expected_cells = sum(int(np.sum(np.asarray(layers[r]) == layer)) for r in row_id)
        expected_empty = np.array([bool(np.all(np.asarray(layers[r]) == layer)) for r in row_id])
        assert abl.n_cells_removed == expected_cells
        assert np.array_equal(~abl.keep, expected_empty)
        assert sum(int(b["valid"].sum()) for b in abl.batches) == sample.n_cells - expected_cells
        for b in abl.batches:
            assert not bool((b["valid"] & (b["pair"][..., PAIR_LAYER] == layer)).any())
            assert bool(b["valid"].any(dim=1).all())  # no cluster without a cell reaches the network
            assert float(b["cells"][~b["valid"]].abs().sum()) == 0.0
    assert ablate_layer(sample.batches, 2).n_cells_removed > 0
    # the original batches are untouched
    assert sum(int(b["valid"].sum()) for b in sample.batches) == sample.n_cells


def test_cell_permutation_shuffles_valid_cells_and_keeps_padding(tiny_data):
    _, sample = _network_sample(tiny_data)
    j = sample.cell_features.index("deta")
    out = permute_cell_column(sample.batches, "cells", j, np.random.default_rng(0))
    before = torch.cat([b["cells"][..., j][b["valid"]] for b in sample.batches])
    after = torch.cat([b["cells"][..., j][b["valid"]] for b in out])
    assert torch.equal(torch.sort(before).values, torch.sort(after).values)  # the same values ...
    assert (before != after).float().mean() > 0.9  # ... at other cells
    for b0, b1 in zip(sample.batches, out):
        assert torch.equal(b1["cells"][~b1["valid"]], b0["cells"][~b0["valid"]])  # padding intact
        others = [k for k in range(b0["cells"].shape[-1]) if k != j]
        assert torch.equal(b1["cells"][..., others], b0["cells"][..., others])


def test_gnn_edge_gets_pair_columns_and_outputs_are_written(tiny_data, tmp_path):
    net, sample = _network_sample(tiny_data, model="gnn_edge", max_clusters=40)
    res = I.feature_importance(net, sample, repeats=1, seed=3, layers=[1], **FAST)
    kinds = [e["kind"] for e in res["inputs"]]
    assert kinds.count("pair") == 7 and kinds.count("layer") == 1
    assert np.isnan(res["inputs"][0]["err"])  # one repeat: no spread
    paths = write_importance(res, tmp_path / "imp", title="electron, gnn_edge")
    back = json.loads(paths["json"].read_text())
    assert back["n_clusters"] == sample.n_clusters and len(back["inputs"]) == len(res["inputs"])
    md = paths["markdown"].read_text()
    assert "| layer | pair |" in md and "| middle (L2) |" not in md and "underestimates" in md
    assert paths["bars"].stat().st_size > 10_000 and paths["heatmap"].stat().st_size > 10_000

"""The fast paths give the simple version's numbers: padded length buckets, torch.compile, fit()."""

from __future__ import annotations

import copy

import pytest
import torch

from calo_calib.calibration import build_run_network, cell_and_cluster_features, make_dataset
from calo_calib.config import compose_run_config
from calo_calib.data.normalization import compute_norm_stats
from calo_calib.training.losses import build_loss


@pytest.fixture(scope="module")
def setup(tiny_data):
    path = tiny_data("electron", "train", n=400)

    def make(pad: int):
        cfg = compose_run_config(["model=transformer", "particle=electron", "model.net.n_layers=1", f"data.pad_multiple={pad}"])
        return cfg, make_dataset(cfg, [path], batch_size=32, training=True)

    cfg, plain = make(1)
    _, padded = make(32)
    norm = compute_norm_stats(plain)
    cells, clusters = cell_and_cluster_features(cfg)
    torch.manual_seed(0)
    model = build_run_network(cfg, len(cells), len(clusters), norm.as_tensors())
    return model, list(plain.batches(0)), list(padded.batches(0))


def test_length_buckets_padded_to_a_multiple_give_the_same_outputs(setup):
    model, plain, padded = setup
    assert len(plain) == len(padded)
    model.eval()
    with torch.no_grad():
        for a, b in zip(plain, padded):
            assert b["cells"].shape[1] % 32 == 0 and b["cells"].shape[1] >= a["cells"].shape[1]
            assert torch.equal(a["row_id"], b["row_id"]) and torch.equal(a["valid"].sum(1), b["valid"].sum(1))
            out_a = model(a["cells"], a["valid"], a["cluster"])
            out_b = model(b["cells"], b["valid"], b["cluster"])
            torch.testing.assert_close(out_a, out_b, rtol=0, atol=1e-5)


def test_compiled_training_step_matches_eager(setup):
    model, _, padded = setup
    eager = copy.deepcopy(model).train()
    compiled_module = copy.deepcopy(model).train()
    compiled = torch.compile(compiled_module, dynamic=False)
    loss_fn = build_loss("mse")
    batch = padded[len(padded) // 2]
    losses = []
    for net, params in ((eager, eager.parameters()), (compiled, compiled_module.parameters())):
        loss = loss_fn(net(batch["cells"], batch["valid"], batch["cluster"]), batch["target"])
        loss.backward()
        losses.append((loss.item(), [p.grad.clone() for p in params]))
    (loss_e, grads_e), (loss_c, grads_c) = losses
    assert loss_c == pytest.approx(loss_e, rel=1e-5)
    for g_e, g_c in zip(grads_e, grads_c):
        torch.testing.assert_close(g_c, g_e, rtol=1e-3, atol=1e-6)

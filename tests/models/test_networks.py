"""Properties of the two networks (transformer, gnn_edge): shapes, set symmetries, padding, state, training.

The networks are pure functions of tensors, so these tests feed synthetic batches with realistic raw
ranges (η, φ near the ±π seam, positions in mm, layers 0-3, energies in GeV incl. negative noise cells).
"""

from __future__ import annotations

import math

import pytest
import torch

from calo_calib.models import NETWORKS, build_network, count_parameters
from calo_calib.models.gnn_edge import pair_features, wrap_phi

F_CELL, F_CLUSTER = 7, 11
SMALL = dict(embed_dim=32, n_layers=2, n_heads=4, head_hidden=32)
NAMES = sorted(NETWORKS)


def make_batch(b: int, length: int, seed: int, min_cells: int = 1) -> dict[str, torch.Tensor]:
    """Random raw batch; cluster i has n_i in [min_cells, length] valid cells at the front."""
    g = torch.Generator().manual_seed(seed)
    n = torch.randint(min_cells, length + 1, (b,), generator=g)
    valid = torch.arange(length)[None, :] < n[:, None]
    cells = torch.randn(b, length, F_CELL, generator=g)
    cells[..., 0] = torch.rand(b, length, generator=g) * 10 - 0.5  # an energy-like feature [GeV]
    cluster = torch.randn(b, F_CLUSTER, generator=g) * 2 + 5
    eta = 0.8 + 0.05 * torch.randn(b, length, generator=g)
    phi = wrap_phi(math.pi - 0.02 + 0.05 * torch.randn(b, length, generator=g))  # straddles the ±π seam
    r = 1500 + 200 * torch.rand(b, length, generator=g)
    layer = torch.randint(0, 4, (b, length), generator=g).float()
    e = torch.randn(b, length, generator=g).abs() * 5 - 0.05
    pair = torch.stack([eta, phi, r * torch.cos(phi), r * torch.sin(phi), r * torch.sinh(eta), layer, e], -1)
    # Garbage at padding: the networks must never read it.
    cells[~valid] = 1e6
    pair[~valid] = -3e5
    return {"cells": cells, "valid": valid, "cluster": cluster, "pair": pair}


def make_norm(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "cell_mean": torch.randn(F_CELL, generator=g),
        "cell_std": torch.rand(F_CELL, generator=g) + 0.5,
        "cluster_mean": torch.randn(F_CLUSTER, generator=g) + 5,
        "cluster_std": torch.rand(F_CLUSTER, generator=g) + 1.5,
        "target_mean": torch.tensor(1.05),
        "target_std": torch.tensor(0.04),
    }


def net(name: str, seed: int = 0, norm: dict | None = None, **kw) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network(name, F_CELL, F_CLUSTER, make_norm() if norm is None else norm, **{**SMALL, **kw}).eval()


def run(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(batch["cells"], batch["valid"], batch["cluster"], batch["pair"])


@pytest.mark.parametrize("name", NAMES)
def test_output_shape_finite_and_starts_near_target_mean(name: str) -> None:
    out = run(net(name), make_batch(16, 12, seed=1))
    assert out.shape == (16,) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    # The small last layer makes an untrained net predict ~target_mean (1.05), well within target_std (0.04).
    assert (out - 1.05).abs().max() < 0.04


@pytest.mark.parametrize("name", NAMES)
def test_permutation_invariance(name: str) -> None:
    model = net(name)
    batch = make_batch(16, 12, seed=2)
    g = torch.Generator().manual_seed(3)
    # A different random order of all positions (valid cells and padding together) for every cluster.
    perm = torch.argsort(torch.rand(16, 12, generator=g), dim=1)
    permuted = {
        "cells": torch.gather(batch["cells"], 1, perm[..., None].expand(-1, -1, F_CELL)),
        "valid": torch.gather(batch["valid"], 1, perm),
        "pair": torch.gather(batch["pair"], 1, perm[..., None].expand(-1, -1, 7)),
        "cluster": batch["cluster"],
    }
    assert not torch.equal(permuted["valid"], batch["valid"])  # padding really moved to the middle
    torch.testing.assert_close(run(model, permuted), run(model, batch), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_padding_invariance_with_garbage(name: str) -> None:
    model = net(name)
    batch = make_batch(16, 10, seed=4)
    extra = 7
    g = torch.Generator().manual_seed(5)
    garbage_cells = torch.randn(16, extra, F_CELL, generator=g) * 1e8
    garbage_pair = torch.randn(16, extra, 7, generator=g) * 1e8
    garbage_cells[:, 0] = float("inf")
    garbage_pair[:, 1] = float("nan")
    padded = {
        "cells": torch.cat([batch["cells"], garbage_cells], 1),
        "valid": torch.cat([batch["valid"], torch.zeros(16, extra, dtype=torch.bool)], 1),
        "pair": torch.cat([batch["pair"], garbage_pair], 1),
        "cluster": batch["cluster"],
    }
    torch.testing.assert_close(run(model, padded), run(model, batch), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_single_valid_cell(name: str) -> None:
    model = net(name)
    batch = make_batch(4, 9, seed=6)
    batch["valid"][:] = False
    batch["valid"][:, 0] = True
    out = run(model, batch)
    assert torch.isfinite(out).all()
    alone = {k: (v if k == "cluster" else v[:, :1]) for k, v in batch.items()}
    torch.testing.assert_close(out, run(model, alone), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", NAMES)
def test_norm_buffers_in_state_dict_and_rebuild(name: str) -> None:
    model = net(name, seed=7)
    state = model.state_dict()
    for key, value in make_norm().items():
        torch.testing.assert_close(state[f"norm.{key}"], value.float())
    batch = make_batch(8, 11, seed=8)
    # Rebuilt without statistics (as a checkpoint loader does): the state_dict alone restores them.
    rebuilt = build_network(name, F_CELL, F_CLUSTER, None, **SMALL).eval()
    assert not torch.allclose(run(rebuilt, batch), run(model, batch))
    rebuilt.load_state_dict(state)
    assert torch.equal(run(rebuilt, batch), run(model, batch))


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name: str) -> None:
    model = net(name).train()
    batch = make_batch(8, 10, seed=9)
    out = model(batch["cells"], batch["valid"], batch["cluster"], batch["pair"])
    ((out - 1.0) ** 2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_bf16_autocast_runs(name: str) -> None:
    """The trainer uses bf16 autocast on GPU; the masks must follow the query dtype."""
    model = net(name)
    batch = make_batch(8, 10, seed=10)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(model, batch)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out, run(model, batch), atol=0.02, rtol=0)


def test_gnn_edge_uses_pair_and_transformer_ignores_it() -> None:
    batch = make_batch(8, 10, seed=11, min_cells=3)
    moved = dict(batch, pair=batch["pair"].clone())
    moved["pair"][..., 0] *= 3.0  # spread the cells in eta
    moved["pair"][..., 6] = moved["pair"][..., 6].flip(1)  # reassign energies
    # target_mean 0: compare the raw outputs, far from the float32 resolution at ~1.05.
    norm = dict(make_norm(), target_mean=torch.tensor(0.0), target_std=torch.tensor(1.0))
    gnn, tr = net("gnn_edge", norm=norm), net("transformer")
    out = run(gnn, batch)
    # Changing only the pair geometry/energies moves the output well above float32 noise (~1e-10 here);
    # untrained, the bias is a modest fraction of the logits, so 1% of the spread between clusters.
    assert (run(gnn, moved) - out).abs().max() > 0.01 * out.std()
    assert torch.equal(run(tr, dict(batch, pair=None)), run(tr, batch))
    with pytest.raises(ValueError, match="pair"):
        run(gnn, dict(batch, pair=None))


def test_pair_features_phi_seam_and_scales() -> None:
    """A global 2π shift of some cells' φ changes nothing; features are O(1) for a cluster window."""
    batch = make_batch(4, 10, seed=12, min_cells=10)
    shifted = batch["pair"].clone()
    shifted[:, ::2, 1] -= 2 * math.pi
    f, f_shift = pair_features(batch["pair"]), pair_features(shifted)
    assert f.shape == (4, 10, 10, 6)
    torch.testing.assert_close(f_shift, f, atol=1e-4, rtol=0)
    assert f.abs().max() < 10
    # Antisymmetric features (Δη, Δφ, Δlayer, log energy ratio) flip sign under i <-> j; distances don't.
    torch.testing.assert_close(f[..., [0, 1, 4, 5]], -f.transpose(1, 2)[..., [0, 1, 4, 5]], atol=1e-5, rtol=0)
    torch.testing.assert_close(f[..., [2, 3]], f.transpose(1, 2)[..., [2, 3]])
    w = wrap_phi(torch.tensor([math.pi, -math.pi, 3 * math.pi / 2, -3 * math.pi / 2, 0.1]))
    torch.testing.assert_close(w, torch.tensor([math.pi, math.pi, -math.pi / 2, math.pi / 2, 0.1]))


@pytest.mark.parametrize("name", NAMES)
def test_learns_a_synthetic_correction(name: str) -> None:
    """Target = mean cell energy × (1 + 0.5 tanh(cluster feature 0 standardised)): loss falls > 10x."""

    def target(batch: dict[str, torch.Tensor]) -> torch.Tensor:
        v = batch["valid"].float()
        mean_e = (batch["cells"][..., 0].where(batch["valid"], 0.0)).sum(1) / v.sum(1)
        return mean_e * (1 + 0.5 * torch.tanh(batch["cluster"][:, 0] - 5))

    ref = make_batch(512, 16, seed=13)
    y_ref = target(ref)
    valid_cells = ref["cells"][ref["valid"]]
    norm = {
        "cell_mean": valid_cells.mean(0),
        "cell_std": valid_cells.std(0),
        "cluster_mean": ref["cluster"].mean(0),
        "cluster_std": ref["cluster"].std(0),
        "target_mean": y_ref.mean(),
        "target_std": y_ref.std(),
    }
    model = net(name, norm=norm).train()
    test = make_batch(256, 16, seed=14)
    y_test = target(test)

    def test_loss() -> float:
        model.eval()
        loss = float(((run(model, test) - y_test) ** 2).mean())
        model.train()
        return loss

    initial = test_loss()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(300):
        batch = make_batch(32, 16, seed=1000 + step)  # fresh clusters every step: no memorisation
        loss = ((model(batch["cells"], batch["valid"], batch["cluster"], batch["pair"]) - target(batch)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    final = test_loss()
    assert final < initial / 10, (initial, final)


def test_build_network_and_bad_input() -> None:
    assert set(NETWORKS) == {"transformer", "gnn_edge"}
    with pytest.raises(ValueError, match="gnn_edge.*transformer|transformer.*gnn_edge"):
        build_network("mlp", F_CELL, F_CLUSTER, None)
    with pytest.raises(ValueError, match="n_heads"):
        build_network("transformer", F_CELL, F_CLUSTER, None, embed_dim=30, n_heads=4)
    bad = make_norm()
    bad["cell_std"] = torch.ones(F_CELL + 1)
    with pytest.raises(ValueError, match="cell_std"):
        build_network("gnn_edge", F_CELL, F_CLUSTER, bad)
    bad = make_norm()
    bad["target_std"] = torch.tensor(0.0)
    with pytest.raises(ValueError, match="target_std"):
        build_network("transformer", F_CELL, F_CLUSTER, bad)
    small = build_network("transformer", F_CELL, F_CLUSTER, None, **SMALL)
    assert count_parameters(small) == sum(p.numel() for p in small.parameters())
    assert count_parameters(small) < count_parameters(build_network("transformer", F_CELL, F_CLUSTER, None))


@pytest.mark.parametrize("name", NAMES)
def test_build_network_from_a_model_config_is_the_same_network(name):
    """build_network takes a registry name or a conf/model/*.yaml ``net`` node: same class, same weights."""
    from calo_calib.config import compose

    net_cfg = compose("run", [f"model={name}", "model.net.n_layers=1"]).model.net
    hparams = {k: v for k, v in net_cfg.items() if not str(k).startswith("_")}
    torch.manual_seed(0)
    by_name = build_network(name, F_CELL, F_CLUSTER, None, **hparams)
    torch.manual_seed(0)
    by_cfg = build_network(net_cfg, F_CELL, F_CLUSTER, None)
    assert type(by_cfg) is NETWORKS[name] and repr(by_cfg) == repr(by_name)
    a, b = by_name.state_dict(), by_cfg.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with_sigma = build_network(net_cfg, F_CELL, F_CLUSTER, None, predict_sigma=True)  # extra hparams pass through
    assert any(k.startswith("sigma_head.") for k in with_sigma.state_dict())


def test_build_run_network_adds_the_sigma_head_for_gaussian_nll():
    from calo_calib.calibration import build_run_network
    from calo_calib.config import compose

    for loss, sigma in (("pull_huber", False), ("gaussian_nll", True)):
        cfg = compose("run", ["model=transformer", f"loss={loss}", "model.net.n_layers=1"])
        net = build_run_network(cfg, F_CELL, F_CLUSTER, None)
        assert type(net) is NETWORKS["transformer"]
        assert any(k.startswith("sigma_head.") for k in net.state_dict()) == sigma

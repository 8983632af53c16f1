"""Training loop: resume continues exactly, a NaN loss stops cleanly, the schedule, the losses.

Uses a tiny network on synthetic batches in the loader's batch format, so the loop is tested
independently of the data pipeline and the architectures (those have their own tests).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from calo_calib.training import checkpoint as ckpt
from calo_calib.training.config import TrainerConfig, lr_lambda
from calo_calib.training.distributed import DistEnv
from calo_calib.training.epoch import NonFiniteLossError
from calo_calib.training.loop import fit
from calo_calib.training.losses import build_loss

ENV = DistEnv(0, 0, 1, torch.device("cpu"))


class TinyNet(torch.nn.Module):
    """Mean-pooled MLP over valid cells; has dropout so the RNG state matters for resume."""

    def __init__(self) -> None:
        super().__init__()
        self.cell = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2))
        self.head = torch.nn.Linear(16 + 2, 1)

    def forward(self, cells, valid, cluster, pair=None):
        h = self.cell(cells) * valid.unsqueeze(-1)
        pooled = h.sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
        return 1.0 + self.head(torch.cat([pooled, cluster], -1)).squeeze(-1)


def make_batches(epoch: int, n_batches: int = 6, seed: int = 0):
    """Deterministic per (seed, epoch), like ClusterDataset.batches(epoch)."""
    rng = np.random.default_rng([seed, epoch])
    for i in range(n_batches):
        b, length = 16, int(rng.integers(3, 9))
        cells = torch.tensor(rng.normal(size=(b, length, 3)), dtype=torch.float32)
        valid = torch.tensor(rng.random((b, length)) < 0.8)
        valid[:, 0] = True
        cluster = torch.tensor(rng.normal(size=(b, 2)), dtype=torch.float32)
        target = 1.0 + 0.1 * cluster[:, 0] + 0.05 * (cells[..., 0] * valid).sum(1) / valid.sum(1)
        yield {"cells": cells, "valid": valid, "cluster": cluster, "target": target, "row_id": torch.arange(i * b, (i + 1) * b)}


def run_fit(run_dir, epochs, resume=False, loss="mse", lr=1e-2):
    torch.manual_seed(0)
    model = TinyNet()
    cfg = TrainerConfig(epochs=epochs, lr=lr, patience=100, warmup_fraction=0.1)
    state = fit(model, make_batches, lambda: make_batches(99), 6, build_loss(loss), cfg, run_dir, ENV, resume=resume)
    return model, state


def test_training_reduces_the_loss(tmp_path):
    _, state = run_fit(tmp_path, epochs=4)
    losses = [h["val_loss"] for h in state.history]
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "checkpoints" / "best.pt").exists() and (tmp_path / "checkpoints" / "last.pt").exists()
    assert (tmp_path / "history.json").exists()


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path):
    full, _ = run_fit(tmp_path / "full", epochs=3)
    # A 3-epoch run that really crashes at the start of epoch 1 (after the epoch-0 checkpoint).
    resumed_dir = tmp_path / "interrupted"

    class Crash(RuntimeError):
        pass

    def crashing_batches(epoch):
        if epoch == 1:
            raise Crash("simulated crash at the start of epoch 1")
        return make_batches(epoch)

    torch.manual_seed(0)
    model = TinyNet()
    cfg = TrainerConfig(epochs=3, lr=1e-2, patience=100, warmup_fraction=0.1)
    with pytest.raises(Crash):
        fit(model, crashing_batches, lambda: make_batches(99), 6, build_loss("mse"), cfg, resumed_dir, ENV)
    torch.manual_seed(123)  # a different process state: resume must not depend on it
    np.random.seed(5)
    resumed, state = run_fit(resumed_dir, epochs=3, resume=True)
    assert [h["epoch"] for h in state.history] == [0, 1, 2]
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_last_checkpoint(tmp_path):
    model = TinyNet()
    cfg = TrainerConfig(epochs=3, lr=1e-2, patience=100)

    def poisoned(epoch):
        for i, batch in enumerate(make_batches(epoch)):
            if epoch == 1 and i == 2:
                batch["target"][0] = float("nan")
            yield batch

    with pytest.raises(NonFiniteLossError, match=r"epoch 1.*last good checkpoint"):
        fit(model, poisoned, lambda: make_batches(99), 6, build_loss("mse"), cfg, tmp_path, ENV)
    payload = ckpt.load(tmp_path / "checkpoints" / "last.pt")
    assert payload["state"]["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in payload["model"].values() if v.is_floating_point())


def test_early_stopping_stops_after_patience(tmp_path):
    model = TinyNet()
    cfg = TrainerConfig(epochs=50, lr=1e-9, patience=2, min_delta=1.0)  # no epoch can improve by 1.0
    state = fit(model, make_batches, lambda: make_batches(99), 6, build_loss("mse"), cfg, tmp_path, ENV)
    assert len(state.history) == 3  # first epoch sets best, then 2 without improvement


def test_schedule_warms_up_then_decays_to_the_floor():
    fn = lr_lambda(total_steps=100, warmup_steps=10, min_ratio=0.02)
    assert fn(0) == pytest.approx(0.1)
    assert fn(9) == pytest.approx(1.0)
    assert fn(10) == pytest.approx(1.0)
    assert fn(55) == pytest.approx(0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert fn(100) == pytest.approx(0.02)


def test_losses():
    pred, target = torch.tensor([1.0, 1.2]), torch.tensor([1.0, 1.0])
    assert build_loss("mse")(pred, target).item() == pytest.approx(0.02)
    # Huber with delta 0.05: residual 0.2 is in the linear part: delta*(|r| - delta/2)
    assert build_loss("huber", 0.05)(pred, target).item() == pytest.approx(0.5 * 0.05 * (0.2 - 0.025))
    with pytest.raises(ValueError, match="mse, huber, gaussian_nll, pull_mse, pull_huber"):
        build_loss("mae")
    with pytest.raises(ValueError, match="delta"):
        build_loss("huber", 0.0)


def test_trainer_config_rejects_bad_values():
    with pytest.raises(ValueError, match="trainer.epochs"):
        TrainerConfig(epochs=0)
    with pytest.raises(ValueError, match="trainer.precision"):
        TrainerConfig(precision="fp16")


def test_trainer_defaults_live_only_in_the_schema():
    """The trainer defaults are written in ONE place, the schema TrainerSchema (issue 17 item 3): the
    yaml of the group sets no key, TrainerConfig takes the schema's defaults, the composed run has them."""
    import dataclasses

    from omegaconf import OmegaConf

    from calo_calib.config import compose_run_config
    from calo_calib.config_schema import TrainerSchema
    from calo_calib.paths import conf_dir

    yaml = OmegaConf.to_container(OmegaConf.load(conf_dir() / "trainer" / "default.yaml"))
    assert set(yaml) == {"defaults"}, "conf/trainer/default.yaml sets no value: the schema holds the defaults"
    assert yaml["defaults"] == ["trainer_schema", "_self_"]
    schema = {f.name: f.default for f in dataclasses.fields(TrainerSchema)}
    fields = dataclasses.fields(TrainerConfig)
    assert set(schema) - {"device"} == {f.name for f in fields}, "every trainer key is a TrainerConfig field and back"
    assert dataclasses.asdict(TrainerConfig()) == {k: v for k, v in schema.items() if k != "device"}
    assert OmegaConf.to_container(compose_run_config([]).trainer) == schema
    for f in fields:  # the defaults have the field types (an int epochs, a float lr, ...)
        assert type(getattr(TrainerConfig(), f.name)).__name__ == f.type, f.name
    partial = TrainerConfig(epochs=3, lr=1e-2)
    assert (partial.epochs, partial.lr, partial.patience) == (3, 1e-2, schema["patience"])


def test_run_trainer_config_is_the_yaml():
    from calo_calib.config import compose_run_config
    from calo_calib.pipeline import trainer_config

    assert trainer_config(compose_run_config([])) == TrainerConfig()
    assert trainer_config(compose_run_config(["trainer.epochs=2"])) == TrainerConfig(epochs=2)

"""calo_calib.config.compose: the one Hydra composer, used by every compose_* entry point."""

from __future__ import annotations

import pytest
from hydra import initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

import calo_calib.config
from calo_calib.config import compose
from calo_calib.paths import conf_dir


def test_compose_applies_overrides_and_clears_the_global_state():
    cfg = compose("run", ["model=bdt", "seed=7"])
    assert cfg.model.kind == "bdt" and cfg.seed == 7 and "hydra" not in cfg
    with initialize_config_dir(config_dir=str(conf_dir()), version_base=None):  # a Hydra app "running"
        assert compose("simulate", ["particle=photon_conv"]).particle.name == "photon_conv"
    assert compose("run", []).model.name == "transformer"  # independent of what came before
    assert compose("run", [], return_hydra_config=True).hydra.job.name
    with pytest.raises(ConfigCompositionException, match="nosuchkey"):
        compose("run", ["nosuchkey=1"])


@pytest.mark.parametrize(
    "module, function, config_name",
    [
        ("calo_calib.config", "compose_run_config", "run"),
        ("calo_calib.simulation.api", "compose_config", "simulate"),
        ("calo_calib.validate", "compose_validate_config", "validate"),
        ("calo_calib.zee.candle", "compose_candle_config", "zee_candle"),
    ],
)
def test_every_entry_point_composes_through_compose(monkeypatch, module, function, config_name):
    import importlib

    calls = []
    real = calo_calib.config.compose

    def spy(name, overrides=(), **kw):
        calls.append((name, list(overrides)))
        return real(name, overrides, **kw)

    monkeypatch.setattr(calo_calib.config, "compose", spy)
    fn = getattr(importlib.import_module(module), function)
    cfg = fn(["seed=3"])
    assert calls == [(config_name, ["seed=3"])]
    assert OmegaConf.to_yaml(cfg) == OmegaConf.to_yaml(real(config_name, ["seed=3"]))

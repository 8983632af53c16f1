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


# --- typed configs (issue 17 item 3): the schemas of calo_calib/config_schema.py -------------------


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("trainer.epochz=3", "trainer.epochz"),
        ("data.batch_sise=64", "data.batch_sise"),
        ("model.net.embed_dimm=32", "model.net.embed_dimm"),
        ("model=bdt model.num_boost_rounds=3", "model.num_boost_rounds"),
        ("loss.deltaa=0.1", "loss.deltaa"),
        ("trainer.epochs=abc", "trainer.epochs"),
        ("data.batch_size=abc", "data.batch_size"),
        ("seed=x", "seed"),
        ("model=gnn_edge model.net.pair_hidden=wide", "model.net.pair_hidden"),
    ],
)
def test_an_unknown_key_or_a_mistyped_value_fails_at_compose_naming_the_key(override, needle):
    from calo_calib.config import compose_run_config, one_line_error

    with pytest.raises(ConfigCompositionException) as err:
        compose_run_config(override.split())
    assert needle in one_line_error(err.value)
    assert "\n" not in one_line_error(err.value)


def test_a_misspelt_key_in_a_group_yaml_fails_at_compose(tmp_path, monkeypatch):
    import shutil

    import calo_calib.paths

    conf = shutil.copytree(conf_dir(), tmp_path / "conf")
    path = conf / "data" / "default.yaml"
    path.write_text(path.read_text().replace("batch_size: 256", "batch_sise: 256"))
    monkeypatch.setattr(calo_calib.paths, "CONF_DIR", conf)
    with pytest.raises(ConfigCompositionException) as err:
        calo_calib.config.compose_run_config([])
    assert "batch_sise" in calo_calib.config.one_line_error(err.value)


def test_plus_adds_a_key_on_purpose():
    """``+``/``++`` open the node (Hydra): mixed sweeps pass ``++model.num_boost_round`` to network jobs
    and ``++model.net.n_layers`` to BDT jobs; the run's checks name unknown ``trainer`` keys."""
    from calo_calib.config import compose_run_config

    assert compose_run_config(["++model.num_boost_round=20"]).model.num_boost_round == 20
    assert compose_run_config(["model=bdt", "++model.net.n_layers=1"]).model.net.n_layers == 1
    assert compose_run_config(["model=bdt", "scale=full"]).model.net.embed_dim == 256


def _yaml_keys(node, prefix=""):
    """Dotted paths of the values a yaml file sets itself (its ``defaults`` list left out)."""
    out = []
    for key, value in node.items():
        if key == "defaults" and not prefix:
            continue
        path = f"{prefix}{key}"
        out += _yaml_keys(value, path + ".") if isinstance(value, dict) and value else [path]
    return out


def _schema_default(schema, path):
    """The schema's default of the dotted key ``path``: ``"???"`` (MISSING) or a value; KeyError if unknown."""
    import dataclasses
    import typing

    head, _, rest = path.partition(".")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    if head not in fields:
        raise KeyError(f"{path} is not a field of {schema.__name__}")
    f = fields[head]
    sub = typing.get_type_hints(schema)[head]
    if rest and dataclasses.is_dataclass(sub):
        return _schema_default(sub, rest)
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def test_every_default_lives_in_one_place():
    """A key is either MISSING in its group's schema and set by the yaml option, or defaulted in the
    schema and set by no yaml option of the group (conf/trainer: every key in the schema)."""
    from calo_calib.config_schema import GROUP_SCHEMAS

    checked = 0
    for (group, name), schema in GROUP_SCHEMAS.items():
        folder = conf_dir() / group if group else None
        for path in sorted(folder.glob("*.yaml")) if folder else [conf_dir() / "run.yaml"]:
            raw = OmegaConf.to_container(OmegaConf.load(path))
            if name not in raw.get("defaults", []):
                continue
            for key in _yaml_keys(raw):
                if key == "hydra" or key.startswith("hydra."):
                    continue
                assert _schema_default(schema, key) == "???", f"{path}: {key} has its default in {schema.__name__} too"
                checked += 1
    assert checked > 60


def test_no_library_module_reads_conf():
    """Only the entry points (``@hydra.main(config_path=CONF_DIR)``), ``config.py`` and ``paths.py`` name
    the config directory; everything below gets its config handed down (issue 17 item 3)."""
    import re
    from pathlib import Path

    package = Path(calo_calib.config.__file__).parent
    allowed = {"paths.py", "config.py", "run.py", "simulate.py", "make_data.py", "validate.py", "predict.py",
               "pileup_study.py", "studies/zee_candle.py"}  # fmt: skip
    offenders = []
    for path in sorted(package.rglob("*.py")):
        name = str(path.relative_to(package))
        if name not in allowed and re.search(r"\bCONF_DIR\b|\bconf_dir\(", path.read_text()):
            offenders.append(name)
    assert offenders == []

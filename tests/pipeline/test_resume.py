"""A run saved without a key this version reads is refused, naming the key and the run directory.

Runs saved before the ``adversary`` option and ``data.out_of_range`` / ``data.allow_particle_mismatch``
existed used to be continued with guessed defaults; they are now an error, both for a job continuing
in place (:func:`continues_in_place`) and for ``resume=<run_dir>`` (:func:`resumed_config`).
"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from calo_calib.config import compose_run_config
from calo_calib.pipeline import RunError, continues_in_place
from calo_calib.pipeline.resume import REQUIRED_SAVED_KEYS, load_saved_config, resumed_config


@pytest.fixture(scope="module")
def composed():
    """A run config, composed once for the module (composition is the slow part of these tests)."""
    return compose_run_config(["model=transformer"])


def saved_run(tmp_path, drop: str | None, cfg):
    """A started run directory (config.yaml + checkpoints/last.pt) of ``cfg`` whose saved config lacks ``drop``."""
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    saved = OmegaConf.to_container(cfg, resolve=True)
    if drop is not None:
        parent, key = drop.rsplit(".", 1)
        del saved[parent][key]
    OmegaConf.save(OmegaConf.create(saved), run_dir / "config.yaml")
    return cfg, run_dir


def test_a_complete_saved_config_continues_in_place(tmp_path, composed):
    cfg, run_dir = saved_run(tmp_path, None, composed)
    assert continues_in_place(cfg, run_dir)
    assert load_saved_config(run_dir).adversary.name == "none"


@pytest.mark.parametrize("key", REQUIRED_SAVED_KEYS)
def test_a_saved_config_without_a_key_is_refused_naming_it_and_the_run(tmp_path, key, composed):
    cfg, run_dir = saved_run(tmp_path, key, composed)
    for call in (lambda: continues_in_place(cfg, run_dir), lambda: load_saved_config(run_dir)):
        with pytest.raises(RunError) as err:
            call()
        assert key in str(err.value) and str(run_dir) in str(err.value) and "older version" in str(err.value)


def test_resume_of_a_run_saved_without_the_adversary_is_refused(tmp_path, composed):
    """``resume=<run_dir>``: refused before the Hydra overrides are read (``calo_calib.run`` prints a RunError
    as its one error line)."""
    _, run_dir = saved_run(tmp_path, "adversary.name", composed)
    with pytest.raises(RunError, match=rf"{run_dir}: the saved config .* has no adversary.name"):
        resumed_config(OmegaConf.create({"resume": str(run_dir)}))

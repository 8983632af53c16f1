"""Checks of a run on resume: a checkpoint without a data fingerprint is refused (no silent default)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from calo_calib.pipeline import RunError, adversary_name, data_fingerprint_check


def test_a_checkpoint_without_a_data_fingerprint_is_refused(tmp_path):
    cfg = OmegaConf.create({"resume_allow_data_change": True})  # not even the override lets it through
    with pytest.raises(
        RunError, match=rf"resume={tmp_path}: the checkpoint records no data fingerprint \(extra\['data'\]"
    ):
        data_fingerprint_check(cfg, None, {"digest": "abc", "files": []}, tmp_path)


def test_adversary_name_has_no_default_for_a_config_without_one():
    assert adversary_name(OmegaConf.create({"adversary": {"name": "grl"}})) == "grl"
    with pytest.raises(Exception, match="adversary"):
        adversary_name(OmegaConf.create({"model": {}}, flags={"struct": True}))

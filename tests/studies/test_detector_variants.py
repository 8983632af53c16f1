"""``calo_calib.studies.detector_variants`` (``experiments/detector_variants.py``): nominal and data-like
detector variants simulated with the same seed, the paired shifts and the outputs. The variants' own
effects at fixed kinematics are tested in ``tests/simulation/test_detector_variants.py``."""

from __future__ import annotations

import pytest

from calo_calib.simulation.material import ConfigError
from calo_calib.studies.detector_variants import main, run


def test_study_measures_the_variants(tmp_path):
    out = tmp_path / "dv"
    args = ["particle=electron", "n_clusters=400", "gun.spectrum=fixed", "gun.e_min=100", "gun.abs_eta_max=1.3"]
    res = main([*args, "variants=material_up,shower_width", f"out={out}"])  # the scripts' comma-separated list
    for name in (
        "detector_variants.json",
        "detector_variants.md",
        "detector_variants_shifts.png",
        "detector_variants_response.png",
    ):
        assert (out / name).is_file(), name
    assert set(res["shifts"]) == {"material_up", "shower_width"}
    assert res["variant_config"]["material_up"] == {"material.scale": pytest.approx(1.1), "name": "material_up"}
    up, wide = res["shifts"]["material_up"], res["shifts"]["shower_width"]
    assert up["n_paired"] >= 380 and wide["n_paired"] >= 380  # the same particles in each detector
    assert up["lost_upstream_over_true"]["value"] > 4 * up["lost_upstream_over_true"]["err"] > 0
    assert wide["frac_outside_3x3"]["value"] > 4 * wide["frac_outside_3x3"]["err"] > 0
    assert "| material_up |" in (out / "detector_variants.md").read_text()
    with pytest.raises(ConfigError, match="detector= is set by the script"):
        run(out, ["material_up"], ["detector=material_up"])
    with pytest.raises(ConfigError, match="unknown"):
        run(out, ["material_down"])
    # the same through the command line
    with pytest.raises(SystemExit, match="detector= is set by the script"):
        main(["detector=material_up", f"out={out}"])
    with pytest.raises(SystemExit, match="unknown"):
        main([f"out={out}", "variants=[material_down]"])


def test_unknown_option_and_missing_out_are_named(tmp_path):
    with pytest.raises(SystemExit, match=r"Could not override 'varaints'(.|\n)*conf/detector_variants.yaml"):
        main([f"out={tmp_path / 'dv'}", "varaints=[material_up]"])
    with pytest.raises(SystemExit, match="out=<directory> is required"):
        main(["variants=[material_up]"])
    assert not (tmp_path / "dv").exists()

"""End-to-end: ``python -m calo_calib.validate quick=true`` writes the README and the plots."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

EXPECTED_PNGS = (
    "conversion_fraction.png",
    "layer_fractions_eta.png",
    "shower_depth.png",
    "response_eta.png",
    "resolution_electron_mu0.png",
    "resolution_electron_mu32.png",
    "eta_modulation.png",
    "cell_multiplicity.png",
    "upstream_loss_correlation.png",
    "noise.png",
    "shower_shapes_electron.png",
    "shower_shapes_photon_unconv.png",
    "shower_shapes_photon_conv.png",
    "shower_shapes_vs_mu.png",
    "pileup_scan_electron.png",
    "upstream_substructure.png",
    "front_energy.png",
)


@pytest.mark.slow
def test_validate_quick(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), MPLBACKEND="Agg")
    proc = subprocess.run(
        [sys.executable, "-m", "calo_calib.validate", f"out={tmp_path}", "quick=true", "workers=2"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    readme = (tmp_path / "README.md").read_text()
    assert "| quantity | simulated | target | source tag | verdict/comment |" in readme
    for section in (
        "Photon conversions",
        "Energy resolution",
        "Eta modulation",
        "Cells per cluster",
        "Upstream energy loss",
        "Noise",
        "Shower shapes vs ATLAS MC",
        "Shower shapes vs ⟨μ⟩",
        "Electron resolution vs ⟨μ⟩",
        "Upstream substructure: brem photons and conversions",
        "Depth slices of the lateral integration (diagnosis)",
        "The per-point linear fit against a global BDT (diagnosis)",
        "The upstream lever arm and the strip widths (toy cascade; diagnosis)",
        "Out-of-cone energy against ATLAS's calibration hits (Geant4; diagnosis)",
        "The strip width w_s3 against the impact position in the strip (egammaqweta1c; diagnosis)",
        "Energy in front of the accordion against ATLAS's calibration hits (Geant4; diagnosis)",
    ):
        assert section in readme, section
    for png in EXPECTED_PNGS:
        p = tmp_path / png
        assert p.is_file() and p.stat().st_size > 10_000, png
        assert f"({png})" in readme, png
    assert (tmp_path / "results.json").is_file()
    # nothing written to the working directory by Hydra besides the requested outputs
    assert not (tmp_path / ".hydra").exists() and not (tmp_path / "outputs").exists()

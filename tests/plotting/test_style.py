"""Tests of calo_calib.plotting.style."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt

from calo_calib.plotting import style


def test_style_label_and_atomic_png(tmp_path: Path) -> None:
    style.use_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    style.label(ax, "electrons")
    texts = [t.get_text() for t in ax.texts]
    assert any("calo_calib" in t for t in texts)
    assert not any("ATLAS" in t for t in texts)
    out = style.save_png(fig, tmp_path / "plots" / "line.png")
    assert not plt.fignum_exists(fig.number)  # saved figures are closed
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["line.png"]

"""README writer on hand-made rows: section order, escaping, summary counts and the deviations table."""

from __future__ import annotations

from calo_calib.validation import readme
from calo_calib.validation.common import DEV, INFO, OK, Row

META = {"date": "2026-01-01 00:00 UTC", "git": "abc1234", "n_clusters": 10, "wall_s": 1.0, "workers": 1,
        "quick": True, "sizes": {"n_scan": 5}}  # fmt: skip


def test_render():
    rows = [Row("B", "x abs(eta)<1 mu=0", "1 | 2", "1", "[E]", OK), Row("A", "y", "3", "1", "[E]", DEV, "too high"),
            Row("B", "z", "0", "—", "—", INFO, "")]  # fmt: skip
    text = readme.render(rows, {"A": ["note of A"]}, {"C": ["c.png"], "A": ["a.png"]}, META, 0.05)
    assert "**Summary:** 1 OK, 1 DEVIATION, 1 INFO." in text and "QUICK MODE" in text and "n_scan = 5" in text
    assert text.index("## B") < text.index("## A") < text.index("## C")  # rows first, then figure-only sections
    assert "| x \\|η\\|<1 ⟨μ⟩=0 | 1 \\| 2 | 1 | [E] | **OK** |" in text  # every | escaped
    assert "note of A\n\n| quantity" in text and "![a.png](a.png)" in text
    assert (
        "## All deviations\n\n| section | quantity | simulated | target | comment |\n|---|---|---|---|---|\n| A | y | 3 | 1 | too high |"
        in text
    )
    assert text.endswith(readme.METHOD_NOTES[-1] + "\n")
    assert "## All deviations\n\nNone." in readme.render(rows[:1], {}, {}, META, 0.05)


def test_write_readme(tmp_path):
    p = readme.write_readme(tmp_path, [], {}, {}, META | {"quick": False}, 0.05)
    assert p == tmp_path / "README.md" and "QUICK" not in p.read_text()

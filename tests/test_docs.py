"""Documentation that must stay in sync with the code."""

from pathlib import Path

from calo_calib.io.schema import COLUMNS, markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_data_format_lists_every_column_as_in_the_schema():
    text = (DOCS / "data_format.md").read_text()
    assert markdown_table() in text, "docs/data_format.md is stale: regenerate its table from calo_calib.io.schema"
    for col in COLUMNS:
        assert f"`{col.name}`" in text


def test_simulation_doc_lists_deviations():
    text = (DOCS / "simulation.md").read_text()
    assert "Deviations from the card" in text

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


def test_sweeps_doc_lists_every_torchrun_launcher_option():
    import dataclasses

    from hydra_plugins.calo_calib_launchers.torchrun_launcher import TorchrunLauncherConf

    text = (DOCS / "sweeps.md").read_text()
    for f in dataclasses.fields(TorchrunLauncherConf):
        if not f.name.startswith("_") and f.name != "poll_seconds":
            assert f"`{f.name}`" in text, f"docs/sweeps.md does not document hydra.launcher.{f.name}"

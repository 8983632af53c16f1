"""Plots (calo_calib.comparison.plots) of a hand-made table: panels, series and the best-per-bin grid."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from calo_calib.comparison.plots import plot_best_per_bin, plot_vs
from calo_calib.comparison.table import build_table
from tests.comparison.helpers import E_BINS, ETA_BINS, make_metrics, make_run


@pytest.fixture
def records(tmp_path):
    runs = [
        make_run(tmp_path, "bdt", make_metrics("bdt", "mse", 0.02)),
        make_run(tmp_path, "net", make_metrics("transformer", "huber", 0.015, per_bin={(10.0, 0.0): 0.03})),
    ]
    yield build_table(runs)
    plt.close("all")


def test_plot_vs_has_a_ratio_panel_for_sigma_rel_only(records):
    fig = plot_vs(records, "electron", "vs_e")
    ax, rax = fig.axes
    assert ax.get_legend().get_title().get_text() == "2 configurations"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["bdt-mse", "transformer-huber"]
    assert ax.get_xscale() == "log" and rax.get_xlabel() == r"$E_\mathrm{true}$ [GeV]"
    assert len(rax.containers) == 2  # one ratio series per configuration
    fig = plot_vs(records, "electron", "vs_abs_eta", metric="median")
    assert len(fig.axes) == 1 and fig.axes[0].get_xscale() == "linear"


def test_best_per_bin_grid_has_one_cell_text_per_bin(records):
    fig = plot_best_per_bin(records, "electron")
    (ax,) = [a for a in fig.axes if a.get_xlabel()]
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) >= len(E_BINS) * len(ETA_BINS)
    assert "0.75" in texts and "1.00" in texts  # the network's ratio to the BDT; the BDT itself where it wins


@pytest.mark.filterwarnings("ignore:Attempting to set identical")  # an empty grid: matplotlib widens its limits
def test_best_per_bin_grid_without_bins_says_so(records):
    empty = plot_best_per_bin(records, "photon_conv")
    assert any("no bin with enough test clusters" in t.get_text() for a in empty.axes for t in a.texts)

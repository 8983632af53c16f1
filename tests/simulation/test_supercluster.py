"""Topo-cluster labelling and the egamma supercluster's satellites on hand-made cells.

The windows are the real geometry (barrel, |eta| = 0.41) with unit noise, so a cell's energy is its
significance; every answer below is worked out by hand from the 4-2-0 rules and athena's satellite
windows (5 x 5 middle cells for all, 5 x 12 with a track match for electrons, vertex tracks for Si
conversions).
"""

from __future__ import annotations

import numpy as np
import pytest
from omegaconf import OmegaConf

from calo_calib.simulation import geometry as geo
from calo_calib.simulation.clustering import topo_clusters
from calo_calib.simulation.supercluster import (
    SAME_TRACK,
    VERTEX_TRACKS,
    WINDOW_ONLY,
    Tracks,
    egamma_supercluster,
    satellites,
    track_matched,
)

L2 = geo.LAYER_L2
CFG = OmegaConf.create(
    {
        "seed_sigma": 4.0, "grow_sigma": 2.0, "boundary_sigma": 0.0, "satellite_min_e": 0.4,
        "satellite_window_eta": 5, "satellite_window_phi": 5, "electron_window_eta": 5,
        "electron_window_phi": 12, "track_match_deta": 0.05, "track_match_dphi": 0.05,
        "track_match_dphi_brem": 0.2, "eg_half_eta_barrel": 1, "eg_half_eta_endcap": 2, "ps_l1_extra_phi": 1,
    }
)  # fmt: skip


def _windows(c: int = 1):
    eta = np.full(c, 0.41)
    phi = np.full(c, 0.0123)
    endcap = np.zeros(c, bool)
    return [geo.layer_window(layer, eta, phi, endcap) for layer in range(geo.N_LAYERS)]


def _empty(windows):
    """Cells with energy -0.5 sigma (below growth, above the |E| >= 0 boundary) and sigma 1 GeV."""
    energy = [np.full(w.valid.shape, -0.5) for w in windows]
    sigma = [np.ones(w.valid.shape) for w in windows]
    return energy, sigma


def _l2_centre(windows):
    w = windows[L2]
    return w.valid.shape[1] // 2, w.valid.shape[2] // 2


def test_separate_blobs_are_separate_topo_clusters():
    windows = _windows()
    energy, sigma = _empty(windows)
    i, j = _l2_centre(windows)
    e2 = energy[L2]
    e2[0, i, j], e2[0, i, j + 1] = 10.0, 3.0  # seed + growth cell
    e2[0, i, j + 4] = 5.0  # a second seed three empty cells away
    e2[0, i - 3, j - 5] = 3.0  # growth cell with no seed: no cluster
    topo = topo_clusters(energy, sigma, windows, CFG)
    lab = topo.labels[L2][0]
    assert topo.row.tolist() == [0, 0]
    assert lab[i, j] == lab[i, j + 1] >= 0
    assert lab[i, j + 4] >= 0 and lab[i, j + 4] != lab[i, j]
    assert lab[i - 3, j - 5] == -1
    assert all((lab_l == -1).all() for k, lab_l in enumerate(topo.labels) if k != L2)
    first = lab[i, j]
    np.testing.assert_allclose(topo.e[first], 13.0)
    w = windows[L2]
    phi_expected = (10 * w.phi_centre[0, j] + 3 * w.phi_centre[0, j + 1]) / 13
    np.testing.assert_allclose(topo.phi[first], phi_expected)
    np.testing.assert_allclose(topo.eta[first], w.eta_centre[0, i])


def test_corner_and_cross_layer_neighbours_join_one_cluster():
    windows = _windows()
    energy, sigma = _empty(windows)
    i, j = _l2_centre(windows)
    energy[L2][0, i, j] = 10.0
    energy[L2][0, i + 1, j + 1] = 3.0  # corner neighbour
    # A strip under the hottest middle cell (overlapping in eta and phi) and a strip far away in eta
    # that overlaps no growth cell: the first joins, the second is a lone growth cell.
    w1, w2 = windows[1], windows[L2]
    eta_mid = w2.eta_centre[0, i]
    under = int(np.argmin(np.abs(w1.eta_centre[0] - eta_mid)))
    j1 = int(np.argmin(np.abs(w1.phi_centre[0] - w2.phi_centre[0, j])))
    energy[1][0, under, j1] = 3.0
    energy[1][0, 0, j1] = 3.0
    topo = topo_clusters(energy, sigma, windows, CFG)
    assert topo.row.size == 1
    assert topo.labels[L2][0, i + 1, j + 1] == 0
    assert topo.labels[1][0, under, j1] == 0
    assert topo.labels[1][0, 0, j1] == -1


def test_perimeter_cells_touch_the_merged_growth_cells():
    windows = _windows()
    energy, sigma = _empty(windows)
    i, j = _l2_centre(windows)
    energy[L2][0, i, j] = 10.0
    topo = topo_clusters(energy, sigma, windows, CFG)
    core = [lab >= 0 for lab in topo.labels]
    cells = topo.with_perimeter(core)
    got = cells[L2][0]
    assert got[i - 1 : i + 2, j - 1 : j + 2].all() and got.sum() == 9  # the 3x3 box in the layer
    assert cells[1].any() and cells[3].any()  # the overlapping cells of the layers around


def _topo_arrays(windows, positions):
    """Topo-clusters at middle-cell offsets (di, dj) from the centre with energies e (one window)."""
    energy, sigma = _empty(windows)
    i, j = _l2_centre(windows)
    for di, dj, e in positions:
        energy[L2][0, i + di, j + dj] = e
    return energy, sigma


@pytest.mark.parametrize(
    ("offset", "rule", "merged"),
    [
        ((0, 2), WINDOW_ONLY, True),  # 2 cells in phi: inside the 5x5 window
        ((0, 3), WINDOW_ONLY, False),  # 3 cells: outside
        ((2, 0), WINDOW_ONLY, True),
        ((3, 0), WINDOW_ONLY, False),
        ((0, 5), SAME_TRACK, True),  # electron: within 5x12 and on the track's brem side
        ((0, -5), SAME_TRACK, False),  # within 5x12 but on the far side of the track
        ((0, 5), VERTEX_TRACKS, True),  # conversion: a leg's track, no window
    ],
)
def test_satellite_rules(offset, rule, merged):
    windows = _windows()
    energy, sigma = _topo_arrays(windows, [(0, 0, 20.0), (*offset, 6.0)])
    w2 = windows[L2]
    i, j = _l2_centre(windows)
    # One track through the seed, bending towards -phi: its brem photons land at larger phi.
    tracks = Tracks(
        np.array([[w2.eta_centre[0, i], 0.0]]),
        np.array([[w2.phi_centre[0, j], 0.0]]),
        np.array([[1.0, 1.0]]),
        np.array([[True, False]]),
    )
    if rule == VERTEX_TRACKS:  # the second leg passes through the satellite
        tracks.phi[0, 1] = w2.phi_centre[0, j + offset[1]]
        tracks.eta[0, 1] = w2.eta_centre[0, i]
        tracks.valid[0, 1] = True
    topo = topo_clusters(energy, sigma, windows, CFG)
    seed = topo.labels[L2][:, i, j]
    sat = topo.labels[L2][0, i + offset[0], j + offset[1]]
    assert topo.row.size == 2 and sat != seed[0]
    assert satellites(topo, seed, np.array([rule]), tracks, CFG).tolist() == [s == sat and merged for s in range(2)]
    # The supercluster holds the satellite's cells inside its eta window (+-1 middle cell in the barrel).
    cells = egamma_supercluster(energy, sigma, windows, np.array([rule]), tracks, CFG)
    assert cells[L2][0, i, j]
    assert cells[L2][0, i + offset[0], j + offset[1]] == (merged and abs(offset[0]) <= 1)


def test_soft_topo_clusters_are_no_satellites():
    """A 0.3 GeV topo-cluster (one cell at 4.5 sigma with sigma = 0.067 GeV) next to the seed is below
    the 0.4 GeV egamma input cut; with the cut at 0.2 GeV it is a satellite."""
    windows = _windows()
    energy, sigma = _topo_arrays(windows, [(0, 0, 20.0)])
    i, j = _l2_centre(windows)
    energy[L2][0, i, j + 2] = 0.3
    sigma[L2][0, i, j + 2] = 0.3 / 4.5
    topo = topo_clusters(energy, sigma, windows, CFG)
    assert topo.row.size == 2
    seed = np.array([topo.labels[L2][0, i, j]])
    no_tracks = Tracks(np.zeros((1, 2)), np.zeros((1, 2)), np.ones((1, 2)), np.zeros((1, 2), bool))
    assert not satellites(topo, seed, np.array([WINDOW_ONLY]), no_tracks, CFG).any()
    soft = OmegaConf.merge(CFG, {"satellite_min_e": 0.2})
    assert satellites(topo, seed, np.array([WINDOW_ONLY]), no_tracks, soft).sum() == 1


def test_track_match_window_is_asymmetric_towards_the_brem():
    tracks = Tracks(np.array([[0.4, 0.0]]), np.array([[1.0, 0.0]]), np.array([[-1.0, 1.0]]), np.array([[True, False]]))
    row = np.zeros(6, np.int64)
    eta = np.array([0.4, 0.4, 0.4, 0.4, 0.46, 0.4])
    # brem side is -phi for this track: -0.19 matches, +0.06 does not, +0.04 does
    phi = np.array([1.0 - 0.19, 1.0 - 0.21, 1.0 + 0.04, 1.0 + 0.06, 1.0, 1.0 + 2 * np.pi])
    assert track_matched(eta, phi, row, tracks, CFG).tolist() == [True, False, True, False, False, True]


def test_every_simulated_cluster_holds_its_hottest_middle_cell():
    """The supercluster of simulated electrons contains the hottest middle cell of its window."""
    from calo_calib.simulation.api import compose_config
    from calo_calib.simulation.generator import Simulator

    cfg = compose_config(["particle=electron", "mu=40"])
    sim = Simulator(cfg, keep_l2_window=True)
    out = sim.batch(300, np.random.default_rng(3))
    hot = out["l2_window_hot"]
    assert hot.size > 250
    e_hot = out["l2_window_e"].reshape(hot.size, -1)[np.arange(hot.size), hot]
    # Each cluster's largest middle-layer cell is the window's hottest one.
    layer, offsets, cell_e = out["cell_layer"], out["cell_offsets"], out["cell_e"]
    for k in range(hot.size):
        sl = slice(offsets[k], offsets[k + 1])
        mid = cell_e[sl][layer[sl] == L2]
        assert np.isclose(mid.max(), e_hot[k], rtol=1e-5)


def test_labelled_topo_clusters_are_the_growth_from_every_seed():
    """On random cells, the union of the topo-clusters is the plain iterative 4-2-0 growth from all
    seeds, and no two topo-clusters touch through growth cells (else they would be one)."""
    from calo_calib.simulation.clustering import _neighbours

    rng = np.random.default_rng(5)
    c = 40
    windows = _windows(c)
    for w in windows:  # shift the windows so that the cells of different layers overlap irregularly
        w.phi_lo = w.phi_lo + rng.uniform(0, w.dphi, (c, 1))
    energy = [rng.standard_normal(w.valid.shape) * 1.6 for w in windows]
    sigma = [np.ones(w.valid.shape) for w in windows]
    topo = topo_clusters(energy, sigma, windows, CFG)
    grow = [w.valid & (np.abs(e) > 2.0) for w, e in zip(windows, energy)]
    reached = [g & (np.abs(e) > 4.0) for g, e in zip(grow, energy)]
    while True:
        new = [r | (n & g) for r, n, g in zip(reached, _neighbours(reached, topo.overlaps), grow)]
        if all((a == b).all() for a, b in zip(new, reached)):
            break
        reached = new
    assert sum(int(r.sum()) for r in reached) > 100  # the case is not trivial
    for lab, r in zip(topo.labels, reached):
        assert ((lab >= 0) == r).all()
    assert topo.row.size > c  # several topo-clusters per window
    for k in range(topo.row.size):
        mine = [lab == k for lab in topo.labels]
        touching = _neighbours(mine, topo.overlaps)
        for lab, t in zip(topo.labels, touching):
            assert set(np.unique(lab[t & (lab >= 0)]).tolist()) <= {k}


@pytest.mark.parametrize("particle", ["electron", "photon_conv"])
def test_track_satellites_recover_energy_outside_the_window(particle):
    """Same events with and without the track rules (a 0 eta window matches nothing): the electron's
    brem satellites in 5 x 12 cells and the conversion legs beyond 5 x 5 cells are kept by the track
    match, so less energy is left outside the cluster and the cluster has more cells (its energy can
    also fall: the added perimeter cells carry noise of either sign)."""
    from calo_calib.simulation.api import compose_config, simulate_columns

    runs = {}
    for name, extra in (("nominal", []), ("window only", ["detector.clustering.track_match_deta=0.0"])):
        cfg = compose_config([f"particle={particle}", "mu=20", "gun.e_min=10", "gun.e_max=40", *extra])
        runs[name], _ = simulate_columns(cfg, 1500, 21)
    nominal, window = runs["nominal"], runs["window only"]
    # The same particles (a cluster may pass the E_T cut in one run only): matched on the true energy.
    _, a, b = np.intersect1d(nominal["truth_e"], window["truth_e"], return_indices=True)
    assert a.size > 1450
    n_cells_n, n_cells_w = np.diff(nominal["cell_offsets"])[a], np.diff(window["cell_offsets"])[b]
    assert np.all(n_cells_n >= n_cells_w)  # merging more topo-clusters never removes cells
    assert np.mean(n_cells_n > n_cells_w) > 0.03  # the track rules act on a few % of the clusters
    outside_n, outside_w = nominal["truth_e_outside_cluster"][a], window["truth_e_outside_cluster"][b]
    assert np.mean(outside_n) < np.mean(outside_w)

"""The simulation's fast paths give the same bits as the straightforward code they replace.

Each reference below is the earlier implementation (or the plain numpy expression), run on random
inputs plus edge cases; the comparison is exact (array_equal, signs of zeros included).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from calo_calib.simulation import clustering, pileup_library, pileup_overlay, shower
from calo_calib.simulation import geometry as geo
from calo_calib.simulation.shower import _corner_difference, rectangle_fractions


def _same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True) and bool(
        np.all(np.signbit(a) == np.signbit(b))
    )


def _wrap_reference(phi):
    return (phi + np.pi) % (2 * np.pi) - np.pi


def test_wrap_phi_is_the_remainder():
    rng = np.random.default_rng(0)
    cases = [
        rng.uniform(-np.pi, np.pi, 10_000),  # in range: nothing to do
        rng.normal(0.0, 0.3, 10_000),  # differences of nearby angles
        rng.uniform(-3 * np.pi, 3 * np.pi, 10_000),  # one turn either way (fast path)
        rng.uniform(-9 * np.pi, 9 * np.pi, 10_000),  # several turns (remainder fallback)
        np.array([-3 * np.pi, -np.pi, 0.0, -0.0, np.pi, 3 * np.pi, np.nan, 1e-300, -1e-300]),
        np.array([], np.float64),
        rng.normal(0.0, 2.0, 1000).astype(np.float32),  # other dtypes: the remainder itself
    ]
    for k in range(-6, 7):  # around every multiple of pi, ulp by ulp (x + 2 pi may round to 2 pi)
        base = k * np.pi
        cases.append(base + np.arange(-40, 41) * np.spacing(base if base else 1e-300))
    for phi in cases:
        assert _same(geo.wrap_phi(phi.copy()), _wrap_reference(phi))
    for scalar in (0.5, -4.0, np.float64(7.0)):
        assert geo.wrap_phi(scalar) == _wrap_reference(scalar)


def test_float32_search_matches_float64_search():
    rng = np.random.default_rng(1)
    a = np.sort(rng.normal(0.0, 1.5, 50_000).astype(np.float32))
    v = np.concatenate(
        [
            rng.normal(0.0, 1.6, 5_000),
            a[rng.integers(0, a.size, 1_000)].astype(np.float64),  # exactly on a float32 value
            np.nextafter(a[rng.integers(0, a.size, 1_000)].astype(np.float64), np.inf),  # just above one
            np.nextafter(a[rng.integers(0, a.size, 1_000)].astype(np.float64), -np.inf),  # just below one
            [-10.0, 10.0, a[0], a[-1]],
        ]
    )
    assert np.array_equal(pileup_library.search_f32(a, v), np.searchsorted(a.astype(np.float64), v))


def _marginal_inputs(rng, n, k):
    edges = np.sort(rng.normal(0.0, 60.0, (n, k + 1)), axis=1).astype(np.float32)
    radii = np.stack([rng.uniform(1, 30, n), rng.uniform(20, 90, n), rng.uniform(0, 1, n)], axis=1).astype(np.float32)
    return edges, radii


def _marginal_reference(edges, radii):
    x2 = edges * edges
    core = x2 + radii[:, 0:1] ** 2
    np.sqrt(core, out=core)
    np.divide(edges, core, out=core)
    tail = x2 + radii[:, 1:2] ** 2
    np.sqrt(tail, out=tail)
    np.divide(edges, tail, out=tail)
    core -= tail
    core *= radii[:, 2:3]
    core += tail
    return 0.5 * (core[:, 1:] - core[:, :-1])


@pytest.mark.parametrize("k", [3, 9, 13, 59])
def test_marginal_fractions_both_layouts(k):
    edges, radii = _marginal_inputs(np.random.default_rng(k), 3000, k)
    ref = _marginal_reference(edges, radii)
    assert _same(pileup_overlay.marginal_fractions(edges.copy(), radii), ref)
    t = pileup_overlay.marginal_fractions_t(np.ascontiguousarray(edges.T), np.ascontiguousarray(radii.T))
    assert _same(np.ascontiguousarray(t.T), ref)


@pytest.mark.parametrize("k", [3, 9, 13, 59])
def test_fill_showers_scatters_energy_times_fractions(k):
    rng = np.random.default_rng(10 + k)
    c, b = 40, 500
    edges, _ = _marginal_inputs(rng, c, k)
    _, radii = _marginal_inputs(rng, b, k)
    ce = np.sort(rng.integers(0, c, b))
    impact = rng.normal(0.0, 30.0, b).astype(np.float32)
    energy = rng.exponential(0.2, b).astype(np.float32)
    slot = np.sort(rng.choice(4 * b, b, replace=False))
    for e in (energy, None):
        mat = np.zeros((4 * b, k), np.float32)
        pileup_overlay.fill_showers(mat, slot, edges, np.ascontiguousarray(edges.T), ce, impact, radii,
                             np.ascontiguousarray(radii.T), e)  # fmt: skip
        ref = np.zeros_like(mat)
        frac = _marginal_reference(edges[ce] - impact[:, None], radii)
        ref[slot] = frac if e is None else frac * e[:, None]
        assert _same(mat, ref)


def _atan_(x, numpy_kernel: bool):
    if numpy_kernel:
        return np.arctan(x)
    torch.from_numpy(x).atan_()
    return x


def _rectangle_reference(x_edges, y_edges, r, numpy_kernel: bool):
    x = x_edges.astype(np.float32)
    y = y_edges.astype(np.float32)
    r2 = (r * r).astype(np.float32)[:, None]
    inv_a = 1.0 / np.sqrt(x * x + r2)
    inv_b = 1.0 / np.sqrt(y * y + r2)
    xa = (x * inv_a)[:, :, None]
    yb = (y * inv_b)[:, None, :]
    g = xa * _atan_(y[:, None, :] * inv_a[:, :, None], numpy_kernel) + yb * _atan_(
        x[:, :, None] * inv_b[:, None, :], numpy_kernel
    )
    g *= np.float32(1.0 / (2.0 * np.pi))
    return np.maximum(g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1], 0.0)


@pytest.mark.parametrize("numpy_kernel", [True, False], ids=["numpy-atan", "torch-atan"])
@pytest.mark.parametrize("nx, ny", [(9, 13), (59, 3), (5, 13), (9, 3), (1, 1)])
def test_rectangle_fractions_matches_reference(nx, ny, numpy_kernel, monkeypatch):
    monkeypatch.setattr(shower, "_NUMPY_SIMD_ATAN", numpy_kernel)
    rng = np.random.default_rng(nx * 100 + ny)
    s = 700
    x = np.sort(rng.normal(0.0, 80.0, (s, nx + 1)), axis=1)
    y = np.sort(rng.normal(0.0, 80.0, (s, ny + 1)), axis=1)
    r = rng.uniform(3.0, 60.0, s)
    assert _same(rectangle_fractions(x, y, r), _rectangle_reference(x, y, r, numpy_kernel))
    g = rng.normal(size=(s, nx + 1, ny + 1)).astype(np.float32)
    assert _same(_corner_difference(g), g[:, 1:, 1:] - g[:, :-1, 1:] - g[:, 1:, :-1] + g[:, :-1, :-1])


def test_atan_kernels_agree_to_float32_precision():
    """The per-machine choice of atan kernel (numpy's SIMD or torch's) changes the fractions only
    in the last float32 bits: both kernels are within 2 ulp of the float64 arctan."""
    rng = np.random.default_rng(21)
    x = np.concatenate([rng.normal(0.0, 3.0, 200_000), rng.uniform(-1e4, 1e4, 1000), [0.0, -0.0, 1.0, -1.0]])
    x = x.astype(np.float32)
    exact = np.arctan(x.astype(np.float64))
    for numpy_kernel in (True, False):
        got = _atan_(x.copy(), numpy_kernel).astype(np.float64)
        ulp = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
        assert np.max(np.abs(got - exact) / ulp) <= 2.0


def _dilate_reference(mask):
    rows = mask.copy()
    rows[:, 1:] |= mask[:, :-1]
    rows[:, :-1] |= mask[:, 1:]
    out = rows.copy()
    out[:, :, 1:] |= rows[:, :, :-1]
    out[:, :, :-1] |= rows[:, :, 1:]
    return out


@pytest.mark.parametrize("shape", [(50, 9, 3), (50, 59, 3), (50, 9, 13), (50, 5, 13), (3, 1, 1), (4, 2, 1)])
def test_dilate_matches_reference(shape):
    rng = np.random.default_rng(sum(shape))
    for p in (0.02, 0.3):
        mask = rng.random(shape) < p
        assert _same(clustering._dilate(mask), _dilate_reference(mask))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("max_len", [1, 2, 7, 8, 9, 10, 30])
def test_segment_sum_matches_reduceat(dtype, max_len):
    from calo_calib.simulation.deposits import segment_sum

    rng = np.random.default_rng(max_len)
    lengths = rng.integers(1, max_len + 1, 400)
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    scale = 10.0 ** rng.integers(-8, 8, (lengths.sum(), 1, 1))  # mixed magnitudes: the order matters
    a = (rng.normal(size=(lengths.sum(), 5, 3)) * scale).astype(dtype)
    a[rng.random(a.shape) < 0.05] = -0.0
    a[rng.random(a.shape) < 0.05] = 0.0
    assert _same(segment_sum(a, starts), np.add.reduceat(a, starts, axis=0))
    one = np.array([0])  # a single segment: the whole array
    assert _same(segment_sum(a[:max_len], one), np.add.reduceat(a[:max_len], one, axis=0))


def _deposits(rng, c, m, n_part):
    cl = np.sort(rng.integers(0, c, m))
    part = rng.integers(0, n_part, m)
    flip = np.where(rng.random(m) < 0.5, -1.0, 1.0)
    rot = rng.uniform(-np.pi, np.pi, m)
    d = {"flip": flip, "rotation": rot, "weight": rng.random(m)}
    dep = pileup_overlay.Deposits.subset(np.arange(m), cl, part, d, np.arange(m), c)
    dep.e_layer = rng.exponential(0.1, (m, 4))
    return dep


def test_deposit_impacts_match_per_layer_gathers():
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    c, m, n_part = 300, 5000, 20_000
    eta_imp = rng.normal(0.0, 2.0, (4, n_part)).astype(np.float32)
    phi_imp = rng.uniform(-np.pi, np.pi, (4, n_part)).astype(np.float32)
    impacts = np.concatenate([eta_imp, phi_imp]).T.astype(np.float32, order="C")
    dep = _deposits(rng, c, m, n_part)
    dep.gather_impacts(SimpleNamespace(impacts=impacts))
    rho = rng.uniform(1400.0, 4000.0, c)
    phi_c = rng.uniform(-np.pi, np.pi, c)
    for layer in range(4):
        got = dep.in_layer(layer, rho, phi_c)
        r = rho[dep.cl]  # the earlier implementation: one gather per layer and coordinate
        assert _same(got["x"], (dep.flip * eta_imp[layer][dep.part] * r).astype(np.float32))
        y = (geo.wrap_phi(phi_imp[layer][dep.part] + dep.rot - phi_c[dep.cl]) * r).astype(np.float32)
        assert _same(got["y"], y)


def _track_cells_reference(x_edges, y_edges, tracks, tr):
    ne, nph = x_edges.shape[1] - 1, y_edges.shape[1] - 1
    ct = tracks.cl
    ix = np.floor((tr["x"] - x_edges[ct, 0]) / (x_edges[ct, 1] - x_edges[ct, 0])).astype(np.int64)
    iy = np.floor((tr["y"] - y_edges[ct, 0]) / (y_edges[ct, 1] - y_edges[ct, 0])).astype(np.int64)
    ok = (ix >= 0) & (ix < ne) & (iy >= 0) & (iy < nph)
    return ct[ok], ix[ok], iy[ok], tr["e"][ok]


def _edges(rng, c, ne, nph):
    x_edges = (rng.uniform(-300, 0, (c, 1)) + np.arange(ne + 1) * rng.uniform(3, 40, (c, 1))).astype(np.float32)
    y_edges = (rng.uniform(-100, 0, (c, 1)) + np.arange(nph + 1) * rng.uniform(20, 40, (c, 1))).astype(np.float32)
    return x_edges, y_edges


@pytest.mark.parametrize("ne, nph", [(9, 3), (59, 3), (9, 13), (5, 13)])
def test_track_cells_keep_the_tracks_inside(ne, nph):
    rng = np.random.default_rng(ne * nph)
    c, m = 400, 6000
    tracks = _deposits(rng, c, m, 1000)
    x_edges, y_edges = _edges(rng, c, ne, nph)
    tr = {
        "x": rng.uniform(-400, 400, m).astype(np.float32),
        "y": rng.uniform(-200, 200, m).astype(np.float32),
        "e": rng.exponential(0.1, m).astype(np.float32),
    }
    tr["x"][:50] = x_edges[tracks.cl[:50], 3]  # exactly on a cell edge
    cell, e = pileup_overlay.track_cells(x_edges, y_edges, tracks, tr)
    rc, rx, ry, re = _track_cells_reference(x_edges, y_edges, tracks, tr)
    assert 0 < cell.size < m
    assert _same(cell, (rc * ne + rx) * nph + ry) and _same(e, re)


@pytest.mark.parametrize("ne, nph", [(9, 3), (59, 3), (9, 13), (5, 13)])
def test_layer_cells_is_the_sum_of_the_deposits(ne, nph):
    """Showers (outer product of their eta and phi marginals, times their energy) and tracks (their
    energy in the one cell they cross) summed per cluster, against a loop over the deposits."""
    rng = np.random.default_rng(100 + ne * nph)
    c = 300  # three chunks of CHUNK = 128 clusters, the last one partial
    x_edges, y_edges = _edges(rng, c, ne, nph)
    cl_sh = np.sort(rng.integers(0, c - 20, 4000))  # the last 20 clusters get no shower
    d_sh = {"flip": np.ones(cl_sh.size), "rotation": np.zeros(cl_sh.size), "weight": np.ones(cl_sh.size)}
    showers = pileup_overlay.Deposits.subset(np.arange(cl_sh.size), cl_sh, cl_sh, d_sh, np.arange(cl_sh.size), c)
    _, radii = _marginal_inputs(rng, cl_sh.size, 3)
    sh = {
        "x": rng.normal(0.0, 100.0, cl_sh.size).astype(np.float32),
        "y": rng.normal(0.0, 60.0, cl_sh.size).astype(np.float32),
        "e": rng.exponential(0.3, cl_sh.size).astype(np.float32),
        "radii_t": np.ascontiguousarray(radii.T),
        "radii": radii if ne + 1 > pileup_overlay.WIDE else None,
    }
    tracks = _deposits(rng, c, 9000, 100)
    tr = {
        "x": rng.uniform(-400, 400, tracks.n).astype(np.float32),
        "y": rng.uniform(-200, 200, tracks.n).astype(np.float32),
        "e": rng.exponential(0.1, tracks.n).astype(np.float32),
    }
    got = pileup_overlay.layer_cells(x_edges, y_edges, showers, sh, tracks, tr)
    ref = np.zeros((c, ne, nph))
    fx = _marginal_reference(x_edges[cl_sh] - sh["x"][:, None], radii) * sh["e"][:, None]
    fy = _marginal_reference(y_edges[cl_sh] - sh["y"][:, None], radii)
    np.add.at(ref, cl_sh, fx[:, :, None].astype(np.float64) * fy[:, None, :])
    rc, rx, ry, re = _track_cells_reference(x_edges, y_edges, tracks, tr)
    np.add.at(ref, (rc, rx, ry), re)
    assert got.shape == (c, ne, nph) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-6)


def _sampling_fluctuation_reference(e_dep, a, rng):
    theta = (a**2).reshape((-1,) + (1,) * (e_dep.ndim - 1)) * np.ones_like(e_dep)
    shape = e_dep / theta
    out = np.zeros_like(e_dep)
    pos = shape > 0
    out[pos] = rng.gamma(shape[pos], theta[pos])
    return out


@pytest.mark.parametrize("shape", [(200, 59, 3), (200, 9, 13), (50,), (0, 5, 13)])
def test_sampling_fluctuation_same_draws(shape):
    from calo_calib.simulation.readout import sampling_fluctuation

    rng = np.random.default_rng(len(shape))
    e_dep = rng.exponential(0.5, shape) * (rng.random(shape) < 0.7)  # zeros are not drawn
    a = rng.uniform(0.08, 0.2, shape[0])
    got, state = sampling_fluctuation(e_dep, a, np.random.default_rng(7)), np.random.default_rng(7)
    assert _same(got, _sampling_fluctuation_reference(e_dep, a, state))


def test_dilate_row_mask_reused_across_cluster_counts():
    """The cached row-start mask is a prefix of one array per row shape: shrinking and growing the
    number of clusters (as the growth passes do) gives the reference dilation every time."""
    rng = np.random.default_rng(11)
    for c in (300, 17, 1, 301, 650, 40):
        for shape in ((c, 9, 13), (c, 59, 3)):
            mask = rng.random(shape) < 0.2
            assert _same(clustering._dilate(mask), _dilate_reference(mask))


def test_each_deposit_kind_has_its_own_padded_layout():
    """Showers and tracks get their own matrix slots: unique within each chunk, dense per cluster,
    and the chunk width is the most deposits of that kind in one cluster of the chunk."""
    rng = np.random.default_rng(12)
    c, m = 300, 4000
    cl = np.sort(rng.integers(0, c, m))
    part = rng.integers(0, 500, m)
    d = {"flip": np.where(rng.random(m) < 0.5, -1.0, 1.0), "rotation": rng.uniform(-1, 1, m), "weight": rng.random(m)}
    sel = rng.random(m) < 0.3
    for idx in (np.flatnonzero(sel), np.flatnonzero(~sel)):
        dep = pileup_overlay.Deposits.subset(idx, cl, part, d, np.arange(m), c)
        assert _same(dep.cl, cl[idx]) and _same(dep.part, part[idx]) and _same(dep.flip, d["flip"][idx])
        counts = np.bincount(dep.cl, minlength=c)
        for k in range(dep.width.size):
            lo, hi = dep.bounds[k], dep.bounds[k + 1]
            chunk = slice(k * pileup_overlay.CHUNK, min((k + 1) * pileup_overlay.CHUNK, c))
            assert dep.width[k] == counts[chunk].max()
            assert np.unique(dep.slot[lo:hi]).size == hi - lo
            assert np.all(dep.slot[lo:hi] < (chunk.stop - chunk.start) * dep.width[k])
            assert np.all(dep.slot[lo:hi] // dep.width[k] == dep.cl[lo:hi] % pileup_overlay.CHUNK)


def test_scratch_matrices_are_zero_when_reused():
    first = pileup_overlay._zeroed_scratch(0, (400, 9))
    first[:] = 1.0
    again = pileup_overlay._zeroed_scratch(0, (300, 13))  # same buffer, smaller
    assert again.shape == (300, 13) and again.flags.c_contiguous and not again.any()
    bigger = pileup_overlay._zeroed_scratch(0, (5000, 59))  # a new, larger buffer
    assert bigger.shape == (5000, 59) and not bigger.any()

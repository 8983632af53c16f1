"""Data-like detector variants (conf/detector/*.yaml) and their knobs (calo_calib/simulation/knobs.py).

Each variant is MEASURED on simulated samples against nominal with the same seed and gun: the
shift must have the configured sign with a margin of several standard errors (z-scores from the
two samples' spreads), and effects that must be absent (outside a local window) must be compatible
with zero. The knobs' defaults are checked to be the exact identity at the function level, and a
config that sets every knob to its default simulates the same table as nominal.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from omegaconf import OmegaConf

from calo_calib.io.parquet import list_shards, read_clusters, read_metadata
from calo_calib.paths import CONF_DIR, REPO_ROOT
from calo_calib.simulation import compose_config, simulate_table
from calo_calib.simulation.knobs import DEFAULTS, knob
from calo_calib.simulation.material import ConfigError
from calo_calib.simulation.readout import GainMap
from calo_calib.validation.detector_shifts import middle_layer_shape, negative_cell_rms
from calo_calib.validation.metrics import sigma_rel

VARIANTS = (
    "material_up", "material_local", "material_phi", "shower_depth", "shower_width", "constant_term", "noise_pileup"
)  # fmt: skip
SEED = 5


def fixed_gun(e: float, eta_lo: float, eta_hi: float) -> list[str]:
    return ["gun.spectrum=fixed", f"gun.e_min={e}", f"gun.abs_eta_min={eta_lo}", f"gun.abs_eta_max={eta_hi}"]


# Shared samples (electrons, fixed energy): barrel 50 GeV, barrel 200 GeV, end-cap 50 GeV, and the
# material_local window's |eta| range.
BARREL_50 = fixed_gun(50, 0.2, 0.6)
BARREL_200 = fixed_gun(200, 0.0, 0.8)
ENDCAP_50 = fixed_gun(50, 1.9, 2.3)
LOCAL_50 = fixed_gun(50, 0.8, 1.2)


# Each material or shower variant changes the pile-up overlay too, so it measures its own noise
# conditions (noise_conditions.py): 500 empty windows per |eta| point here instead of 3000 (3 s
# instead of 20 s each), for nominal and variants alike. The thresholds they set are not what these
# tests measure; the conditions' precision is tested in test_noise_conditions.py.
QUICK_CONDITIONS = "detector.readout.pileup.conditions.windows_per_point=500"


def sample(sim, variant: str, gun: list[str], n: int = 1000) -> dict[str, np.ndarray]:
    return sim([f"detector={variant}", "particle=electron", QUICK_CONDITIONS, *gun], n=n, seed=SEED)


def z_score(nominal: np.ndarray, variant: np.ndarray) -> float:
    """(mean variant - mean nominal) / its standard error (independent samples, finite values)."""
    a = np.asarray(nominal, float)
    b = np.asarray(variant, float)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    return float((b.mean() - a.mean()) / np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size))


def per_true(s: dict, column: str) -> np.ndarray:
    return s[column].astype(float) / s["truth_e"].astype(float)


def per_cluster_e(s: dict, column: str) -> np.ndarray:
    return s[column].astype(float) / s["cluster_e"].astype(float)


def accordion_response(s: dict) -> np.ndarray:
    return (s["cluster_e"] - s["cluster_e_ps"]).astype(float) / s["truth_e"].astype(float)


# -- configuration ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_inherits_nominal_and_changes_only_its_keys(variant):
    nominal = OmegaConf.to_container(compose_config([]).detector)
    cfg = compose_config([f"detector={variant}"]).detector
    assert cfg.name == variant
    changed = OmegaConf.to_container(cfg)
    own = OmegaConf.load(CONF_DIR / "detector" / f"{variant}.yaml")
    own_keys = {k for k in own if k != "defaults"}
    # Everything not set in the variant file is nominal's.
    for key, value in nominal.items():
        if key not in own_keys:
            assert changed[key] == value, f"{variant}: detector.{key} differs from nominal"
    assert changed != nominal


def test_nominal_file_sets_no_knob():
    """The nominal detector leaves every knob at its (identity) default, so its provenance is unchanged."""
    det = compose_config([]).detector
    for key in DEFAULTS:
        assert OmegaConf.select(det, key) is None, key
        assert knob(det, key) == DEFAULTS[key]


ALL_DEFAULT_KNOBS = [
    "+detector.shower.depth_scale=1.0",
    "+detector.shower.width_scale=1.0",
    "+detector.shower.depth_slice_factor=1",
    "+detector.readout.elec_noise_scale=1.0",
    "+detector.readout.pileup_noise_scale=1.0",
    "+detector.readout.gain_map={sigma_barrel:0.0,sigma_endcap:0.0,region_deta:0.2,region_n_phi:32,seed:3}",
    # a zero bump over the whole detector runs the bump code path and must change nothing
    "+detector.material.bumps=[{abs_eta:[0.0,2.5],phi:[-3.14159,3.14159],x0:0.0,where:id}]",
]


def ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("particle", ["electron", "photon"])
def test_nominal_equals_explicit_default_knobs(particle):
    nominal = simulate_table(compose_config([f"particle={particle}"]), 300, 21)
    explicit = simulate_table(compose_config([f"particle={particle}", *ALL_DEFAULT_KNOBS]), 300, 21)
    assert ipc_bytes(nominal) == ipc_bytes(explicit)  # bit-identical (Table.equals treats NaN != NaN)


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("+detector.shower.depth_scale=-1.0", "detector.shower.depth_scale"),
        ("+detector.shower.width_scale=0", "detector.shower.width_scale"),
        ("+detector.shower.width_scale=wide", "detector.shower.width_scale"),
        ("+detector.shower.depth_scal=1.05", "detector.shower.depth_scal"),
        ("+detector.shower.depth_slice_factor=0", "detector.shower.depth_slice_factor"),
        ("+detector.shower.depth_slice_factor=2.5", "detector.shower.depth_slice_factor"),
        ("+detector.readout.elec_noise_scale=-0.1", "detector.readout.elec_noise_scale"),
        ("+detector.readout.gain_map={sigma_barrel:0.5}", "detector.readout.gain_map.sigma_barrel"),
        ("+detector.readout.gain_map={sigma_barrel:0.01,region_n_phi:0}", "detector.readout.gain_map.region_n_phi"),
        ("+detector.readout.gain_map={sigma_barel:0.01}", "detector.readout.gain_map.sigma_barel"),
        (
            "+detector.material.bumps=[{abs_eta:[0.8,1.2],phi:[0.0,0.8],x0:0.3,where:calorimeter}]",
            "detector.material.bumps[0].where",
        ),
        (
            "+detector.material.bumps=[{abs_eta:[1.2,0.8],phi:[0.0,0.8],x0:0.3,where:id}]",
            "detector.material.bumps[0].abs_eta",
        ),
        (
            "+detector.material.bumps=[{abs_eta:[0.8,1.2],phi:[0.0,4.0],x0:0.3,where:id}]",
            "detector.material.bumps[0].phi",
        ),
        (
            "+detector.material.bumps=[{abs_eta:[0.8,1.2],phi:[0.0,0.8],x0:-0.3,where:id}]",
            "detector.material.bumps[0].x0",
        ),
        ("+detector.material.bumps=[{abs_eta:[0.8,1.2],phi:[0.0,0.8],where:id}]", "detector.material.bumps[0]"),
    ],
)
def test_invalid_knob_is_a_clear_config_error(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        compose_config([override])


# -- measured on simulated samples -------------------------------------------------------------


def test_material_up_more_loss_more_presampler_lower_accordion(sim):
    nom, var = sample(sim, "nominal", BARREL_50), sample(sim, "material_up", BARREL_50)
    assert z_score(per_true(nom, "truth_e_lost_upstream"), per_true(var, "truth_e_lost_upstream")) > 5
    assert z_score(per_true(nom, "cluster_e_ps"), per_true(var, "cluster_e_ps")) > 4
    assert z_score(accordion_response(nom), accordion_response(var)) < -3
    # Without a presampler (|eta| > 1.8) nothing measures the extra loss: the raw response drops.
    # (Where there is one, its EM-scale signal compensates the extra loss here: see docs/simulation.md.)
    # At <mu> = 0: a material effect, measured without the end-cap pile-up noise, which (as particles)
    # blurs the mean response enough to put a 3000-cluster z-score at the threshold.
    nom_ec = sample(sim, "nominal", ENDCAP_50 + ["mu=0"], 3000)
    var_ec = sample(sim, "material_up", ENDCAP_50 + ["mu=0"], 3000)
    assert z_score(per_true(nom_ec, "cluster_e"), per_true(var_ec, "cluster_e")) < -3.5


def test_material_local_only_inside_its_window(sim):
    nom, var = sample(sim, "nominal", LOCAL_50, 1500), sample(sim, "material_local", LOCAL_50, 1500)

    def window(s):
        return (s["truth_phi"] >= 0.0) & (s["truth_phi"] < 0.8)  # |eta| is inside by the gun range

    wn, wv = window(nom), window(var)
    assert wv.sum() > 150 and (~wv).sum() > 1000
    lost_n, lost_v = per_true(nom, "truth_e_lost_upstream"), per_true(var, "truth_e_lost_upstream")
    ps_n, ps_v = per_true(nom, "cluster_e_ps"), per_true(var, "cluster_e_ps")
    assert z_score(lost_n[wn], lost_v[wv]) > 4.5
    assert z_score(ps_n[wn], ps_v[wv]) > 3
    assert z_score(accordion_response(nom)[wn], accordion_response(var)[wv]) < -2.5
    assert z_score(lost_v[~wv], lost_v[wv]) > 5  # inside vs outside within the variant sample
    for n_, v_ in ((lost_n, lost_v), (ps_n, ps_v), (accordion_response(nom), accordion_response(var))):
        assert abs(z_score(n_[~wn], v_[~wv])) < 2.5  # outside: compatible with nominal


def test_material_phi_bundles_raise_the_brem_only_inside_them(sim):
    """material_phi: 8 ID service bundles, +0.2 X0 at 1.3 <= |eta| < 2 (optional [E] variant, item 4)."""
    gun = fixed_gun(50, 1.5, 1.9)
    # +0.2 X0 on ~25 % of the sample shifts the broad brem-fraction distribution little: 1,500
    # electrons give z ~ 2.5 on average over seeds (too weak for the z > 3 below), 6,000 give ~5.
    nom, var = sample(sim, "nominal", gun, 6000), sample(sim, "material_phi", gun, 6000)
    bumps = compose_config(["detector=material_phi"]).detector.material.bumps
    windows = [tuple(b.phi) for b in bumps if float(b.abs_eta[0]) == 1.3]
    assert len(windows) == 8

    def inside(s):
        phi = s["truth_phi"]
        return np.any([(phi >= lo) & (phi < hi) for lo, hi in windows], axis=0)

    wn, wv = inside(nom), inside(var)
    assert 0.15 < wv.mean() < 0.35  # 8 x 0.2 rad of 2 pi = 25 %
    # ID material: the electron radiates more before the calorimeter (its shower starts after the ID).
    brem_n, brem_v = nom["truth_brem_fraction"].astype(float), var["truth_brem_fraction"].astype(float)
    assert z_score(brem_n[wn], brem_v[wv]) > 3
    assert z_score(brem_v[~wv], brem_v[wv]) > 3  # phi dependence inside the variant sample itself
    assert abs(z_score(brem_n[~wn], brem_v[~wv])) < 2.5  # between the bundles: nominal


def test_shower_depth_moves_energy_to_the_back(sim):
    nom, var = sample(sim, "nominal", BARREL_200), sample(sim, "shower_depth", BARREL_200)
    assert z_score(per_cluster_e(nom, "cluster_e_l1"), per_cluster_e(var, "cluster_e_l1")) < -5
    assert z_score(per_cluster_e(nom, "cluster_e_l3"), per_cluster_e(var, "cluster_e_l3")) > 5
    # The presampler sees the shower's first X0 only, a small shift under its pile-up noise: at mu = 0.
    nom0, var0 = sample(sim, "nominal", [*BARREL_200, "mu=0"]), sample(sim, "shower_depth", [*BARREL_200, "mu=0"])
    assert z_score(per_cluster_e(nom0, "cluster_e_ps"), per_cluster_e(var0, "cluster_e_ps")) < -2.5
    # consistent with the cell layer column
    for s in (nom, var):
        l3 = np.bincount(
            np.repeat(np.arange(s["cluster_e"].size), np.diff(s["offsets"])),
            np.where(s["cell_layer"] == 3, s["cell_e"], 0.0),
            s["cluster_e"].size,
        )
        np.testing.assert_allclose(l3, s["cluster_e_l3"], rtol=1e-4, atol=1e-4)


def test_shower_width_widens_the_middle_layer(sim):
    nom, var = sample(sim, "nominal", BARREL_200), sample(sim, "shower_width", BARREL_200)
    sn, sv = middle_layer_shape(nom["_table"]), middle_layer_shape(var["_table"])
    assert z_score(sn["frac_outside_3x3"], sv["frac_outside_3x3"]) > 6
    assert z_score(sn["r_phi"], sv["r_phi"]) < -6
    # the longitudinal development is untouched
    assert abs(z_score(per_cluster_e(nom, "cluster_e_l3"), per_cluster_e(var, "cluster_e_l3"))) < 3


def test_constant_term_adds_in_quadrature(sim):
    nom, var = sample(sim, "nominal", BARREL_200), sample(sim, "constant_term", BARREL_200)
    r_nom, r_var = per_true(nom, "cluster_e"), per_true(var, "cluster_e")
    s_nom, s_var = sigma_rel(r_nom), sigma_rel(r_var)
    extra = np.sqrt(max(s_var**2 - s_nom**2, 0.0))
    assert 0.5 * 0.007 < extra < 1.5 * 0.007, (s_nom, s_var, extra)
    # It is a fixed map, not per-event smearing: the response follows the gain at the cluster's
    # position, and dividing it out restores the nominal resolution.
    gm = GainMap.from_config(compose_config(["detector=constant_term"]).detector)
    gain = gm.gains(var["cluster_eta"], var["cluster_phi"], np.zeros(r_var.size, bool))
    assert np.corrcoef(gain, r_var)[0, 1] > 0.3
    assert sigma_rel(r_var / gain) < s_nom + 0.5 * (s_var - s_nom)


def test_noise_pileup_raises_cell_noise(sim):
    nom, var = sample(sim, "nominal", BARREL_50), sample(sim, "noise_pileup", BARREL_50)
    ratio = negative_cell_rms(var["_table"]) / negative_cell_rms(nom["_table"])
    # electronic x1.2 and pile-up x1.15 at the same <mu>: the measured noise rms grows by ~15-20 %
    assert np.all(ratio > 1.08) and np.all(ratio < 1.3), ratio
    configured = var["cell_noise"].mean() / nom["cell_noise"].mean()
    assert 1.14 < configured < 1.21


# -- provenance, CLI and make_data ----------------------------------------------------------------


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_simulate_cli_records_the_variant(tmp_path):
    out = tmp_path / "x"
    proc = run_module(
        "calo_calib.simulate",
        "detector=material_up",
        QUICK_CONDITIONS,
        "particle=electron",
        "n_clusters=200",
        f"out={out}",
        "progress=false",
    )
    assert proc.returncode == 0, proc.stderr
    (shard,) = list_shards(out)
    assert read_metadata(shard)["config"]["detector"]["name"] == "material_up"
    assert read_metadata(shard)["config"]["detector"]["material"]["scale"] == pytest.approx(1.1)
    assert json.loads((out / "dataset.json").read_text())["config"]["detector"]["name"] == "material_up"
    assert read_clusters(out).num_rows == 200


def test_make_data_cli_with_a_variant(tmp_path):
    root = tmp_path / "material_local"
    proc = run_module(
        "calo_calib.make_data",
        f'overrides=["detector=material_local","{QUICK_CONDITIONS}"]',
        f"root={root}",
        "particles=[electron]",
        "splits.train=60",
        "splits.val=30",
        "splits.test=30",
        "workers=1",
        "progress=false",
    )
    assert proc.returncode == 0, proc.stderr
    for split in ("train", "val", "test"):
        meta = read_metadata(list_shards(root / "electron" / split)[0])
        assert meta["config"]["detector"]["name"] == "material_local"
        assert meta["config"]["detector"]["material"]["bumps"][0]["x0"] == pytest.approx(0.3)


def test_make_data_notices_a_different_detector(tmp_path):
    from calo_calib.simulation.default_data import make_split

    cfg = OmegaConf.load(CONF_DIR / "make_data.yaml")
    for key in ("defaults", "hydra"):
        cfg.pop(key, None)
    cfg.merge_with_dotlist([f"root={tmp_path}", "splits.train=50", "workers=1", "progress=false"])
    out = make_split(cfg, "electron", "train")
    (shard,) = list_shards(out)
    first = (shard.stat().st_mtime_ns, shard.stat().st_ino)
    make_split(cfg, "electron", "train")  # same detector: complete, left untouched
    assert (shard.stat().st_mtime_ns, shard.stat().st_ino) == first
    assert read_metadata(shard)["config"]["detector"]["name"] == "nominal"
    cfg.overrides = ["detector=noise_pileup"]
    make_split(cfg, "electron", "train")  # different provenance: not complete, regenerated
    assert (shard.stat().st_mtime_ns, shard.stat().st_ino) != first
    assert read_metadata(shard)["config"]["detector"]["name"] == "noise_pileup"


# -- measurement helpers and the experiment script ----------------------------------------------


def test_middle_layer_shape_on_known_cells():
    """Two clusters built by hand: R_phi = E(3x3)/E(3x7) around the hottest middle cell."""
    deta, dphi = 0.025, 2 * np.pi / 256
    # cluster 0: hottest L2 cell 10 GeV at (0.5, 1.0); 1 GeV two cells away in phi (in 3x7, not 3x3);
    # 2 GeV one cell away in eta (in 3x3); a strip cell (ignored). cluster 1: one L2 cell.
    cells = [
        [(2, 0.5, 1.0, 10.0), (2, 0.5, 1.0 + 2 * dphi, 1.0), (2, 0.5 + deta, 1.0, 2.0), (1, 0.5, 1.0, 5.0)],
        [(2, -1.0, -3.1, 4.0)],
    ]
    table = pa.table(
        {
            name: pa.array([[c[k] for c in cl] for cl in cells], type=pa.list_(typ))
            for k, (name, typ) in enumerate(
                [
                    ("cell_layer", pa.int8()),
                    ("cell_eta", pa.float32()),
                    ("cell_phi", pa.float32()),
                    ("cell_e", pa.float32()),
                ]
            )
        }
    )
    shape = middle_layer_shape(table)
    np.testing.assert_allclose(shape["r_phi"], [12.0 / 13.0, 1.0], rtol=1e-6)
    np.testing.assert_allclose(shape["frac_outside_3x3"], [1.0 / 13.0, 0.0], atol=1e-6)


def test_docs_describe_every_variant_and_knob():
    text = (REPO_ROOT / "docs" / "simulation.md").read_text()
    section = text[text.index("## Data-like detector variants") :]
    for path in sorted((CONF_DIR / "detector").glob("*.yaml")):
        if path.stem != "nominal":
            assert f"`{path.name}`" in section, f"docs/simulation.md does not describe {path.name}"
    for key in DEFAULTS:
        leaf = key.rsplit(".", 1)[-1]
        assert leaf in section, f"docs/simulation.md does not document detector.{key}"

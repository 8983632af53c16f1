"""evaluate / compare / metrics.json / markdown / plots on synthetic and on real simulated predictions."""

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from calo_calib.evaluation.plots import plot_pileup_scan, plot_resolution_vs_e, write_all_plots
from calo_calib.evaluation.report import compare, evaluate, summary_markdown, write_metrics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_predictions(n: int = 40_000, seed: int = 0) -> pa.Table:
    """Realistic test-set layout: E_true log-uniform 5-500 GeV, η uniform in ±2.47, <μ> ~ N(51, 10).

    Resolution model s(E, η) = 10%/√E ⊕ 0.3 GeV/E ⊕ 0.7%, doubled in the crack. The "bdt" has
    spread s, the "transformer" s/3 (the known better one), the oracle s/4, the raw energy 1.5 s
    plus an η-dependent loss of response.
    """
    rng = np.random.default_rng(seed)
    truth = np.exp(rng.uniform(np.log(5.0), np.log(500.0), n))
    eta = rng.uniform(-2.47, 2.47, n)
    mu = np.clip(rng.normal(51.0, 10.0, n), 0.0, None)
    s = np.sqrt((0.10 / np.sqrt(truth)) ** 2 + (0.3 / truth) ** 2 + 0.007**2)
    s *= np.where((np.abs(eta) > 1.37) & (np.abs(eta) < 1.52), 2.0, 1.0)
    raw = truth * (0.95 - 0.03 * np.abs(eta)) * (1 + 1.5 * s * rng.standard_normal(n))
    return pa.table(
        {
            "particle": pa.array(["electron"] * n),
            "truth_e": truth,
            "cluster_e": raw,
            "cluster_eta": eta,
            "mu": mu,
            "e_raw": raw,
            "e_bdt": truth * (1 + s * rng.standard_normal(n)),
            "e_transformer": truth * (1 + s / 3 * rng.standard_normal(n)),
            "e_oracle": truth * (1 + s / 4 * rng.standard_normal(n)),
        }
    )


METHODS = ["raw", "transformer", "bdt", "oracle"]
BINNED = ("vs_e", "vs_abs_eta", "vs_e_abs_eta", "vs_mu", "vs_e_t")


@pytest.fixture(scope="module")
def synthetic():
    pred = synthetic_predictions()
    return pred, evaluate(pred, METHODS, n_boot=40, seed=1, min_count=30)


def test_evaluate_structure_and_counts(synthetic):
    pred, m = synthetic
    assert m["n_clusters"] == pred.num_rows == 40_000
    assert set(m["inclusive"]) == set(METHODS)
    for method in METHODS:
        inc = m["inclusive"][method]
        assert set(inc) == {"sigma_rel", "sigma_rel_err", "median", "median_err", "n"}
        assert inc["n"] == 40_000 and 0 < inc["sigma_rel_err"] < 0.1 * inc["sigma_rel"]
    mu = pred.column("mu").to_numpy()
    assert sum(r["n"] for r in m["vs_e"]) == 40_000  # the gun range is the energy binning's range
    assert sum(r["n"] for r in m["vs_abs_eta"]) == sum(r["n"] for r in m["vs_e_abs_eta"]) == 40_000
    assert sum(r["n"] for r in m["vs_mu"]) == int(((mu >= 0) & (mu <= 200)).sum())
    assert len(m["vs_e_abs_eta"]) == (len(m["edges"]["abs_eta_coarse"]) - 1) * (len(m["edges"]["truth_e"]) - 1)
    assert m["inclusive"]["raw"]["median"] < 0.95  # the raw response loss is seen


def test_the_method_with_the_smaller_spread_wins_in_every_populated_bin(synthetic):
    _, m = synthetic
    populated = 0
    for table in BINNED:
        for row in m[table]:
            if row["low_count"]:
                assert math.isnan(row["transformer"]["sigma_rel"])
                continue
            populated += 1
            assert row["transformer"]["sigma_rel"] < row["bdt"]["sigma_rel"] < row["raw"]["sigma_rel"], (table, row)
            # the known ratio 1/3, within the statistical precision of a bin
            ratio = row["transformer"]["sigma_rel"] / row["bdt"]["sigma_rel"]
            assert ratio == pytest.approx(
                1 / 3, abs=6 * ratio * row["bdt"]["sigma_rel_err"] / row["bdt"]["sigma_rel"] + 0.05
            )
    assert populated > 90
    # resolution improves with energy (stochastic term) in every |eta| bin
    for lo in {r["abs_eta_lo"] for r in m["vs_e_abs_eta"]}:
        rows = [r for r in m["vs_e_abs_eta"] if r["abs_eta_lo"] == lo]
        assert rows[0]["bdt"]["sigma_rel"] > 2 * rows[-1]["bdt"]["sigma_rel"]
    # the crack is the worst |eta| region
    crack = next(r for r in m["vs_abs_eta"] if r["abs_eta_lo"] == 1.37)
    assert crack["bdt"]["sigma_rel"] == max(r["bdt"]["sigma_rel"] for r in m["vs_abs_eta"])


def test_compare_gives_the_known_ratio(synthetic):
    _, m = synthetic
    c = compare(m, m, "transformer", "bdt")
    assert c["inclusive"]["ratio"] == pytest.approx(1 / 3, rel=0.1)
    inc_t, inc_b = m["inclusive"]["transformer"], m["inclusive"]["bdt"]
    expected_err = (inc_t["sigma_rel"] / inc_b["sigma_rel"]) * math.hypot(
        inc_t["sigma_rel_err"] / inc_t["sigma_rel"], inc_b["sigma_rel_err"] / inc_b["sigma_rel"]
    )
    assert c["inclusive"]["ratio_err"] == pytest.approx(expected_err)
    for table in ("vs_e", "vs_abs_eta", "vs_e_abs_eta", "vs_mu"):
        assert len(c[table]) == len(m[table])
        for row, src in zip(c[table], m[table]):
            if src["low_count"]:
                assert math.isnan(row["ratio"])
            else:
                assert row["ratio"] == pytest.approx(src["transformer"]["sigma_rel"] / src["bdt"]["sigma_rel"])
                assert 0 < row["ratio_err"] < row["ratio"]
    with pytest.raises(KeyError, match="gnn_edge"):
        compare(m, m, "gnn_edge", "bdt")


def test_metrics_json_round_trips_without_nan_tokens(synthetic, tmp_path):
    _, m = synthetic
    m = dict(m, comparison_to_bdt=compare(m, m, "transformer", "bdt"))
    path = write_metrics(m, tmp_path / "out" / "metrics.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    back = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]  # no temporary file left
    assert back["inclusive"] == m["inclusive"]
    assert back["edges"]["abs_eta"] == list(m["edges"]["abs_eta"])
    empty = next(r for r in back["vs_mu"] if r["mu_lo"] == 100)  # 100 <= <mu> <= 200: no clusters
    assert empty["n"] == 0 and empty["low_count"] is True and empty["bdt"]["sigma_rel"] is None
    # a reference read back from JSON (null = NaN) can be compared with the in-memory metrics
    c = compare(m, back, "transformer", "bdt")
    assert c["inclusive"]["ratio"] == pytest.approx(m["comparison_to_bdt"]["inclusive"]["ratio"])
    assert math.isnan(next(r for r in c["vs_mu"] if r["mu_lo"] == 100)["ratio"])


def test_compare_refuses_different_binnings(synthetic):
    _, m = synthetic
    other = dict(m, vs_e=m["vs_e"][:-1])
    with pytest.raises(ValueError, match="vs_e"):
        compare(m, other, "transformer", "bdt")


def test_summary_markdown(synthetic):
    _, m = synthetic
    md = summary_markdown(m, METHODS)
    assert md.count("### ") == len(m["edges"]["abs_eta_coarse"]) - 1
    assert "transformer / BDT" in md and "σ_rel / σ_rel(BDT)" in md
    assert f"{100 * m['inclusive']['transformer']['sigma_rel']:.2f}" in md
    table_rows = [line for line in md.splitlines() if line.startswith("| ") and "–" in line.split("|")[1]]
    assert len(table_rows) == len(m["vs_e_abs_eta"])  # one line per E x |eta| cell
    no_bdt = summary_markdown(m, ["raw", "transformer", "oracle"])
    assert "BDT" not in no_bdt


def test_write_all_plots_and_pileup_scan(synthetic, tmp_path):
    pred, m = synthetic
    c = compare(m, m, "transformer", "bdt")
    paths = write_all_plots(pred, m, METHODS, tmp_path / "plots", comparison=c)
    assert len(paths) == 6 and len({p.name for p in paths}) == 6
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 5000, p
    records = [
        {"mu": mu, "method": meth, "sigma_rel": s * (1 + mu / 200), "err": 0.001}
        for mu in (0, 20, 51, 80) for meth, s in (("BDT", 0.02), ("transformer", 0.015))
    ]  # fmt: skip
    out = plot_pileup_scan(records, tmp_path / "pileup.png")
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000


def test_on_real_simulated_clusters(tiny_data, tmp_path):
    """Raw and oracle energies of real simulated electrons: the oracle (every truth loss restored)
    resolves better than the raw cluster energy, and the raw response is below 1 (upstream and
    passive losses). Tiny data: most bins are low-count, which must not break tables or plots."""
    from calo_calib.evaluation import predictions as P
    from calo_calib.io.parquet import read_clusters

    truth = read_clusters(tiny_data("electron", "test", n=400), columns=list(P.TRUTH_COLUMNS))
    truth = truth.append_column("row_id", pa.array(np.arange(truth.num_rows)))
    correction = truth.column("truth_e").to_numpy() / truth.column("cluster_e").to_numpy()
    pred = P.build_predictions(truth, np.arange(truth.num_rows), correction, "perfect")
    methods = P.method_names(pred)
    m = evaluate(pred, methods, n_boot=20, seed=0, min_count=30)
    inc = m["inclusive"]
    assert m["n_clusters"] == 400
    assert inc["perfect"]["sigma_rel"] < 1e-6 and inc["perfect"]["median"] == pytest.approx(1.0)
    assert inc["oracle"]["sigma_rel"] < inc["raw"]["sigma_rel"] < 0.5
    assert inc["raw"]["median"] < 0.99
    write_metrics(m, tmp_path / "metrics.json")
    json.loads((tmp_path / "metrics.json").read_text())
    assert all(r["low_count"] for r in m["vs_e_abs_eta"])  # 400 clusters in 72 cells: all empty
    out = plot_resolution_vs_e(m, methods, tmp_path / "resolution_vs_e.png")  # empty panels still plot
    assert out.read_bytes()[:8] == PNG_MAGIC and out.stat().st_size > 5000

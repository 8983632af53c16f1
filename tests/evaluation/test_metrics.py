"""σ_rel, median response and bootstrap errors against known distributions."""

import numpy as np
import pytest

from calo_calib.evaluation.metrics import MIN_ENTRIES, bootstrap, bootstrap_stats, iqr, median_response, sigma_rel


def test_sigma_rel_of_a_gaussian_is_its_relative_width():
    rng = np.random.default_rng(1)
    # IQR / 1.349 = sigma for a Gaussian; the mean in the denominator makes it sigma / mean
    assert sigma_rel(rng.normal(1.0, 0.05, 200_000)) == pytest.approx(0.05, rel=0.01)
    assert sigma_rel(rng.normal(0.98, 0.05, 200_000)) == pytest.approx(0.05 / 0.98, rel=0.01)


def test_sigma_rel_uses_linear_percentiles_and_the_mean():
    x = np.arange(1.0, 11.0)  # 1..10: q25 = 3.25, q75 = 7.75 (linear interpolation), mean 5.5
    assert sigma_rel(x) == pytest.approx(4.5 / (1.349 * 5.5))
    assert median_response(x) == pytest.approx(5.5)


def test_two_dimensional_input_gives_one_value_per_row():
    rng = np.random.default_rng(2)
    rows = rng.normal(1.0, [[0.02], [0.1]], size=(2, 5000))
    s = sigma_rel(rows)
    assert s.shape == (2,)
    assert s[0] == pytest.approx(sigma_rel(rows[0])) and s[1] == pytest.approx(sigma_rel(rows[1]))
    assert median_response(rows) == pytest.approx([np.median(rows[0]), np.median(rows[1])])


def test_median_response_of_a_shifted_sample():
    rng = np.random.default_rng(3)
    assert median_response(rng.normal(0.97, 0.03, 100_000)) == pytest.approx(0.97, abs=5e-4)


def test_bootstrap_error_matches_the_spread_over_independent_samples():
    rng = np.random.default_rng(4)
    n = 2000
    independent = sigma_rel(rng.normal(1.0, 0.05, size=(400, n)))  # 400 independent experiments
    true_spread = float(np.std(independent, ddof=1))
    value, err = bootstrap(sigma_rel, rng.normal(1.0, 0.05, n), n_boot=300, seed=7)
    assert value == pytest.approx(0.05, rel=0.1)
    assert err == pytest.approx(true_spread, rel=0.3)
    med, med_err = bootstrap(median_response, rng.normal(1.0, 0.05, n), n_boot=300, seed=7)
    # analytic: sigma(median) = sqrt(pi/2) sigma / sqrt(n) for a Gaussian
    assert med_err == pytest.approx(np.sqrt(np.pi / 2) * 0.05 / np.sqrt(n), rel=0.3)


def test_bootstrap_is_reproducible_and_chunking_does_not_change_it(monkeypatch):
    x = np.random.default_rng(5).normal(1.0, 0.05, 1000)
    a = bootstrap(sigma_rel, x, n_boot=50, seed=3)
    assert a == bootstrap(sigma_rel, x, n_boot=50, seed=3)
    assert a != bootstrap(sigma_rel, x, n_boot=50, seed=4)
    import calo_calib.evaluation.metrics as M

    monkeypatch.setattr(M, "BOOTSTRAP_CHUNK_ELEMENTS", 3000)  # 3 resamples per chunk
    assert bootstrap(sigma_rel, x, n_boot=50, seed=3) == pytest.approx(a, rel=1e-12)


def test_bootstrap_accepts_a_statistic_that_only_takes_one_sample():
    x = np.random.default_rng(6).normal(1.0, 0.05, 3000)
    value, err = bootstrap(lambda r: float(np.std(r)), x, n_boot=100, seed=0)
    assert value == pytest.approx(np.std(x))
    assert err == pytest.approx(0.05 / np.sqrt(2 * 3000), rel=0.3)


def test_paired_bootstrap_of_several_methods():
    rng = np.random.default_rng(7)
    ratios = np.stack([rng.normal(1, 0.02, 4000), rng.normal(1, 0.06, 4000)])
    values, errors = bootstrap_stats(ratios, [sigma_rel, median_response], n_boot=60, seed=1)
    assert values.shape == errors.shape == (2, 2)
    assert values[0, 0] == pytest.approx(0.02, rel=0.1) and values[1, 0] == pytest.approx(0.06, rel=0.1)
    assert errors[1, 0] > 2 * errors[0, 0] > 0


@pytest.mark.parametrize("n", [0, 1, MIN_ENTRIES - 1])
def test_small_samples_give_nan_without_crashing(n):
    x = np.ones(n)
    assert np.isnan(sigma_rel(x)) and np.isnan(median_response(x))
    value, err = bootstrap(sigma_rel, x, n_boot=20)
    assert np.isnan(value) and np.isnan(err)


def test_ten_entries_are_enough():
    x = np.linspace(0.9, 1.1, MIN_ENTRIES)
    assert np.isfinite(sigma_rel(x)) and np.isfinite(bootstrap(sigma_rel, x, n_boot=20)[1])


def test_non_finite_ratios_are_an_error_naming_the_count():
    x = np.ones(100)
    x[[3, 7]] = np.nan
    x[9] = np.inf
    for fn in (sigma_rel, median_response, lambda r: bootstrap(sigma_rel, r)):
        with pytest.raises(ValueError, match="3 of 100"):
            fn(x)


def test_single_resample_has_no_error():
    value, err = bootstrap(sigma_rel, np.random.default_rng(0).normal(1, 0.05, 500), n_boot=1)
    assert np.isfinite(value) and np.isnan(err)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap(sigma_rel, np.ones(50), n_boot=-1)


@pytest.mark.parametrize("n", [10, 11, 1000, 1001])
def test_fast_quantile_bootstrap_equals_evaluating_each_resample(n):
    """The counting fast path gives what sigma_rel / median_response give on the resampled values."""
    rng = np.random.default_rng(8)
    ratios = np.stack([rng.normal(1, 0.05, n), rng.exponential(0.1, n) + 0.9, np.round(rng.normal(1, 0.02, n), 2)])
    fast = bootstrap_stats(ratios, [sigma_rel, median_response], n_boot=30, seed=2)
    slow = bootstrap_stats(ratios, [lambda r: sigma_rel(r), lambda r: median_response(r)], n_boot=30, seed=2)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-12)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-9)


# --- the explicit rules: non-finite policy, minimum entries, non-positive mean --------------------


def test_known_iqr_and_sigma_rel_of_one_to_eight():
    x = np.arange(1.0, 9.0)  # q25 = 2.75, q75 = 6.25 (linear interpolation): IQR 3.5, mean 4.5
    assert iqr(x, min_entries=1) == pytest.approx(3.5)
    assert sigma_rel(x, min_entries=1) == pytest.approx(3.5 / (1.349 * 4.5))
    assert median_response(x, min_entries=1) == pytest.approx(4.5)
    assert np.isnan(iqr(x)) and np.isnan(sigma_rel(x))  # 8 < MIN_ENTRIES by default


def test_drop_policy_leaves_non_finite_entries_out():
    clean = np.random.default_rng(9).normal(1.0, 0.05, 200)
    dirty = np.concatenate([clean[:50], [np.nan, np.inf, -np.inf], clean[50:]])
    for fn in (iqr, sigma_rel, median_response):
        with pytest.raises(ValueError, match="3 of 203"):
            fn(dirty)
        with pytest.raises(ValueError, match="3 of 203"):
            fn(dirty, nonfinite="raise")
        assert fn(dirty, nonfinite="drop") == fn(clean)
    with pytest.raises(ValueError, match="nonfinite"):
        sigma_rel(clean, nonfinite="ignore")


def test_drop_policy_counts_only_finite_entries_against_the_minimum():
    x = np.concatenate([np.linspace(0.9, 1.1, 9), [np.nan, np.nan]])  # 11 entries, 9 finite
    assert np.isnan(sigma_rel(x, nonfinite="drop"))
    assert np.isfinite(sigma_rel(x, nonfinite="drop", min_entries=9))
    assert np.isnan(median_response(np.full(5, np.nan), nonfinite="drop", min_entries=1))


def test_drop_policy_on_a_stack_works_row_by_row():
    rng = np.random.default_rng(10)
    rows = rng.normal(1.0, 0.05, (3, 100))
    rows[1, :95] = np.nan  # 5 finite values left: below the minimum
    rows[2, 0] = np.inf
    s = sigma_rel(rows, nonfinite="drop")
    assert s.shape == (3,)
    assert s[0] == sigma_rel(rows[0]) and np.isnan(s[1]) and s[2] == sigma_rel(rows[2, 1:])


def test_non_positive_mean_gives_nan():
    x = np.random.default_rng(11).normal(-1.0, 0.1, 100)
    assert np.isnan(sigma_rel(x)) and np.isnan(sigma_rel(x, nonfinite="drop"))
    assert median_response(x) < 0  # the median is still defined
    values, errors = bootstrap_stats(np.stack([x, -x]), [sigma_rel], n_boot=20)
    assert np.isnan(values[0, 0]) and np.isfinite(values[1, 0]) and np.isfinite(errors[1, 0])


def test_drop_policy_bootstrap_leaves_non_finite_replicates_out():
    x = np.random.default_rng(12).normal(1.0, 0.05, 40)
    calls = []

    def sometimes_nan(r):  # every third replicate is NaN
        calls.append(1)
        return np.nan if len(calls) % 3 == 0 else float(np.mean(r))

    value, err = bootstrap(sometimes_nan, x, n_boot=30, seed=1, nonfinite="drop", min_entries=2)
    assert np.isfinite(err)
    _, err_raise = bootstrap(lambda r: np.nan, x, n_boot=30, seed=1)
    assert np.isnan(err_raise)


def test_drop_policy_bootstrap_resamples_non_finite_entries_as_they_are():
    x = np.concatenate([np.random.default_rng(13).normal(1.0, 0.05, 50), [np.nan] * 5])
    fn = lambda r: sigma_rel(r, nonfinite="drop", min_entries=1)  # noqa: E731
    value, err = bootstrap(fn, x, n_boot=40, seed=2, nonfinite="drop", min_entries=2)
    assert value == sigma_rel(x[:50]) and np.isfinite(err)
    with pytest.raises(ValueError, match="5 of 55"):
        bootstrap(fn, x, n_boot=40, seed=2)


def test_one_resample_per_draw_is_the_stream_of_successive_draws():
    """chunk=1 draws each resample by its own call of the generator: what the validation always did."""
    x = np.random.default_rng(14).normal(1.0, 0.05, 31)
    _, err = bootstrap(np.mean, x, n_boot=25, seed=np.random.default_rng(3), nonfinite="drop", min_entries=2, chunk=1)
    g = np.random.default_rng(3)
    ref = np.array([np.mean(x[g.integers(0, x.size, size=x.size)]) for _ in range(25)])
    assert err == float(ref.std(ddof=1))


def test_a_generator_passed_as_seed_advances():
    x = np.random.default_rng(15).normal(1.0, 0.05, 100)
    g = np.random.default_rng(4)
    a = bootstrap(sigma_rel, x, n_boot=10, seed=g)
    b = bootstrap(sigma_rel, x, n_boot=10, seed=g)
    assert a[0] == b[0] and a[1] != b[1]
    assert bootstrap(sigma_rel, x, n_boot=10, seed=np.random.default_rng(4)) == a

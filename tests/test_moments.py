"""The streaming moments shared by the normalisation statistics and the SALT norm dict."""

import numpy as np
import pytest

from calo_calib.moments import EXACT_ZERO_FLOOR, StreamingMoments


def _chunks(x: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    return np.split(x, np.cumsum(sizes)[:-1])


def test_chunked_2d_stream_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal([3000.0, 0.0, -5.0], [2.0, 1.0, 1e-3], size=(1000, 3))  # large offset, small spread
    m = StreamingMoments(3, std_floor=0.0)
    for part in _chunks(x, [1, 0, 7, 300, 2, 690]):
        m.update(part)
    np.testing.assert_allclose(m.mean, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(m.std(), x.std(0), rtol=1e-10)
    assert m.n.tolist() == [1000.0] * 3 and m.rows == 1000


def test_chunked_1d_stream_with_a_mask_matches_numpy_on_the_valid_values():
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 0.5, 500)
    x[::9] = np.nan
    m = StreamingMoments()
    left_out = sum(m.update(part, np.isfinite(part)) for part in _chunks(x, [50, 3, 0, 447]))
    ok = x[np.isfinite(x)]
    assert left_out == x.size - ok.size and m.rows == x.size and m.n[0] == ok.size
    assert m.mean[0] == pytest.approx(ok.mean(), rel=1e-14)
    assert m.std()[0] == pytest.approx(ok.std(), rel=1e-12)


def test_2d_mask_leaves_values_out_per_column():
    x = np.array([[1.0, 10.0], [2.0, 1e30], [3.0, 20.0]])
    m = StreamingMoments(2)
    assert m.update(x, x < 1e20) == 1
    np.testing.assert_allclose(m.mean, [2.0, 15.0])
    np.testing.assert_allclose(m.std(), [np.std([1.0, 2.0, 3.0]), 5.0])
    assert m.n.tolist() == [3.0, 2.0]


def test_std_floor_is_applied():
    x = np.column_stack([np.zeros(10), np.full(10, 1e-9) * np.arange(10), np.arange(10.0)])
    loose = StreamingMoments(3, std_floor=1e-6)
    exact = StreamingMoments(3, std_floor=EXACT_ZERO_FLOOR)
    loose.update(x)
    exact.update(x)
    assert loose.std()[0] == 1.0 and loose.std()[1] == 1.0  # 2.9e-9 < 1e-6: floored
    assert exact.std()[0] == 1.0 and exact.std()[1] == pytest.approx(np.std(x[:, 1]))  # only 0 is replaced
    assert loose.std()[2] == exact.std()[2] == pytest.approx(np.std(np.arange(10.0)))


def test_empty_columns_give_mean_zero_and_std_one():
    m = StreamingMoments(2, std_floor=1e-6)
    assert m.std().tolist() == [1.0, 1.0] and m.mean.tolist() == [0.0, 0.0]
    assert m.update(np.empty((0, 2))) == 0
    m.update(np.array([[np.nan, 4.0]]), np.array([[False, True]]))
    assert m.mean.tolist() == [0.0, 4.0] and m.std().tolist() == [1.0, 1.0]
    one = StreamingMoments()
    assert one.update(np.array([np.nan, np.nan]), np.array([False, False])) == 2
    assert one.n[0] == 0 and one.std()[0] == 1.0 and one.rows == 2

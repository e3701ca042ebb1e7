"""Quantiles against np.quantile / np.nanquantile, equal to the bit.

Columns of a row-major array are selected by buckets (`quantiles_cols`:
count per bucket, copy out the buckets holding the wanted ranks, select
there); shorter columns, and rows, by gathering and nth_element. Both paths
are run on the same data: `path="buckets"` lowers the row count from which
the bucket path is taken to 1.
"""
import warnings

import numpy as np
import pytest

from conftest import LAYOUTS, make_layout
from fastnorm import _cpu, stats
from fastnorm._ext import _quantiles

QS = [0.0, 0.01, 0.1, 0.25, 1 / 3, 0.5, 0.5, 0.75, 0.9, 0.99, 1.0]


@pytest.fixture(params=["gather", "buckets"])
def path(request, monkeypatch):
    if request.param == "buckets":
        monkeypatch.setattr(_cpu, "QUANTILE_BUCKET_MIN_ROWS", 1)
    return request.param


def reference(X, q, axis, ignore_nan):
    """NumPy's 'linear' quantiles of X in float64 (NaN where NumPy gives NaN)."""
    X64 = np.asarray(X, dtype=np.float64)
    if X64.shape[axis] == 0:
        return np.full((len(q), X64.shape[1 - axis]), np.nan)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return (np.nanquantile if ignore_nan else np.quantile)(X64, q, axis=axis)


def check(X, axis=0, q=QS, ignore_nan=False):
    got = stats.quantiles(X, q, axis=axis, ignore_nan=ignore_nan)
    np.testing.assert_array_equal(got, reference(X, q, axis, ignore_nan))
    return got


def kernel(X, q, ignore_nan, n_threads, min_rows=1):
    """quantiles_cols directly: per column of the C-contiguous X, (len(q), n_cols)."""
    out = np.empty((X.shape[1], len(q)))
    _quantiles.quantiles_cols(X, np.asarray(q, dtype=np.float64), ignore_nan, n_threads,
                              out, min_rows)
    return out.T


def with_specials(rng, X, *specials, frac=0.1):
    X = X.copy()
    for v in specials:
        X[rng.random(X.shape) < frac] = v
    return X


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_random_data(path, dtype, axis, layout, rng):
    base = (2.0 + 3.0 * rng.standard_normal((3000, 7))).astype(dtype)
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    X = make_layout(base, layout)
    for ignore_nan in (False, True):
        check(X, axis, ignore_nan=ignore_nan)
    check(X, axis, q=rng.random(40))  # many quantiles, in any order
    check(X, axis, q=[0.5])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", ["small_ints", "two_values", "constant", "mostly_zero"])
def test_heavy_duplicates(path, dtype, kind, rng):
    """Buckets holding a good part of a column: copied out a few columns at
    a time (all the columns' buckets would not fit at once)."""
    shape = (5000, 9)
    X = {"small_ints": lambda: rng.integers(-2, 3, shape),
         "two_values": lambda: np.where(rng.random(shape) < 0.5, 1.5, -7.0),
         "constant": lambda: np.full(shape, 4.25),
         "mostly_zero": lambda: np.where(rng.random(shape) < 0.9, 0.0,
                                         rng.standard_normal(shape))}[kind]().astype(dtype)
    for order in ("C", "F"):
        check(np.asarray(X, order=order))
        check(np.asarray(X, order=order), axis=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_columns(path, dtype, rng):
    X = rng.standard_normal((2000, 6)).astype(dtype)
    X[rng.random(X.shape) < 0.3] = np.nan
    X[:, 1] = np.nan            # all NaN
    X[1:, 2] = np.nan           # one value
    X[:, 3] = rng.standard_normal(2000)  # no NaN
    X[:2, 4] = 5.0
    X[2:, 4] = np.nan           # two values
    for ignore_nan in (False, True):
        got = check(X, ignore_nan=ignore_nan)
        assert np.isnan(got[:, 1]).all()
        assert np.isnan(got[:, 0]).all() != ignore_nan


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_infinities_and_zeros(path, dtype, rng):
    """+-inf, -0.0 and 0.0: NumPy's interpolation (inf - inf is NaN, even
    at a whole position) is followed exactly."""
    X = rng.standard_normal((3000, 8)).astype(dtype)
    X[:, 0:2] = with_specials(rng, X[:, 0:2], np.inf, -np.inf)
    X[:, 2] = with_specials(rng, X[:, 2], np.inf, frac=0.6)
    X[:, 3] = rng.choice(np.array([-0.0, 0.0, 1.0], dtype), 3000)
    X[:, 4] = rng.choice(np.array([-0.0, 0.0], dtype), 3000)
    X[:, 5] = with_specials(rng, X[:, 5], np.nan, np.inf, -np.inf)
    X[:, 6] = np.inf
    X[:, 7] = -np.inf
    for ignore_nan in (False, True):
        check(X, ignore_nan=ignore_nan)
        check(np.asfortranarray(X), ignore_nan=ignore_nan)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_subnormals_and_extremes(path, dtype, rng):
    info = np.finfo(dtype)
    X = rng.standard_normal((3000, 4))
    X[:, 0] *= float(info.smallest_subnormal) * 50  # subnormals of both signs
    X[:, 1] = np.where(rng.random(3000) < 0.5, float(info.max), -float(info.max))  # overflows
    X[:, 2] *= float(info.max) / 8
    X[:, 3] = rng.choice([float(info.smallest_subnormal), 0.0, -float(info.tiny)], 3000)
    check(X.astype(dtype))


@pytest.mark.parametrize("n_rows", [0, 1, 2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_few_rows(path, n_rows, dtype, rng):
    X = rng.standard_normal((n_rows, 3)).astype(dtype)
    if n_rows:
        check(X)
        X[0, 0] = np.nan
        check(X, ignore_nan=True)
        check(X)
    # no rows: NaN from the kernels (stats.quantiles refuses it earlier)
    got = _cpu.quantiles(np.empty((0, 3), dtype), 0, QS, ignore_nan=True)
    assert got.shape == (len(QS), 3) and np.isnan(got).all()


def test_misleading_sample(path, rng):
    """Every row the bucket placement samples holds the same value (the
    sample spaces its rows evenly): the buckets miss the data, only speed
    suffers."""
    n = 4096 * 5
    X = rng.standard_normal((n, 3))
    X[::5] = 0.0
    check(X)
    X = np.sort(rng.standard_normal((n, 3)), axis=0)  # sorted columns
    check(X)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_threads_same_bits(dtype, rng):
    X = (1.0 + rng.standard_normal((40_000, 70))).astype(dtype)  # two column tiles
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:, 3] = rng.choice(np.array([-0.0, 0.0, 2.0], dtype), X.shape[0])
    X[:, 4] = np.round(X[:, 4])
    q = np.sort(np.concatenate([QS, rng.random(10)]))
    for ignore_nan in (False, True):
        one = kernel(X, q, ignore_nan, 1)
        np.testing.assert_array_equal(one, reference(X, q, 0, ignore_nan))
        for n_threads in (2, 3):
            assert one.tobytes() == kernel(X, q, ignore_nan, n_threads).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_default_path_large(dtype, rng):
    """Above the threshold the bucket path is the default one."""
    assert _cpu.QUANTILE_BUCKET_MIN_ROWS <= 50_000
    X = (3.0 + rng.standard_normal((50_000, 5))).astype(dtype)
    X[rng.random(X.shape) < 0.01] = np.nan
    check(X, ignore_nan=True)
    check(X)
    check(np.asfortranarray(X), ignore_nan=True)


def test_no_copy_of_x(rng):
    """Column quantiles of a row-major array allocate 8 bytes per row, not a
    transposed copy of X."""
    import tracemalloc
    X = rng.standard_normal((100_000, 16)).astype(np.float32)
    tracemalloc.start()
    try:
        stats.quantiles(X, [0.25, 0.5, 0.75], ignore_nan=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * X.shape[0] + 2**20, peak

"""fastnorm.stats against float64 NumPy references."""
import math
import warnings

import numpy as np
import pytest

from conftest import LAYOUTS, assert_close, make_layout, random_data
from fastnorm import stats
from fastnorm.stats import MinMax, Moments

SHAPES = [(1000, 7), (3, 1000), (1, 5), (5, 1), (40_000, 3)]
DTYPES = ["float64", "float32", "int64"]


def shape_id(s):
    return "x".join(map(str, s))


def quiet(f, *args, **kw):
    """Call a NumPy reduction, silencing its empty/all-NaN slice warnings."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return f(*args, **kw)


def check_moments(m, X64, axis, *, count=None):
    """m against the float64 NumPy reference on X64 (already float64)."""
    n = X64.shape[axis]
    assert isinstance(m, Moments)
    for a in (m.count, m.mean, m.m2):
        assert a.dtype == np.float64
        assert a.shape == (X64.shape[1 - axis],)
    np.testing.assert_array_equal(m.count, n if count is None else count)
    mean = quiet(np.mean, X64, axis=axis)
    assert_close(m.mean, mean, np.float64)
    assert_close(m.var(), quiet(np.var, X64, axis=axis), np.float64)
    assert_close(m.var(ddof=0), quiet(np.var, X64, axis=axis), np.float64)
    assert_close(m.var(ddof=1), quiet(np.var, X64, axis=axis, ddof=1), np.float64)
    assert_close(m.std(), quiet(np.std, X64, axis=axis), np.float64)
    assert_close(m.std(ddof=1), quiet(np.std, X64, axis=axis, ddof=1), np.float64)
    assert_close(m.m2, quiet(np.var, X64, axis=axis) * n, np.float64)


# ------------------------------------------------------------------ moments ---

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_moments_match_numpy(dtype, shape, axis, layout, rng):
    base = random_data(rng, shape, dtype)
    X = make_layout(base, layout)
    m = stats.moments(X, axis=axis)
    # accumulation is in float64 whatever the input dtype: float32 input
    # gives the float64 answer for its values
    check_moments(m, base.astype(np.float64), axis)
    np.testing.assert_array_equal(X, base)


def test_moments_default_axis_is_0(rng):
    X = random_data(rng, (20, 3), np.float64)
    m = stats.moments(X)
    assert m.mean.shape == (3,)
    assert_close(m.mean, X.mean(axis=0))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moments_1d(dtype, rng):
    x = random_data(rng, (500,), dtype)
    m = stats.moments(x)
    assert m.count.shape == m.mean.shape == m.m2.shape == ()
    assert m.count == 500
    assert_close(m.mean, np.mean(x.astype(np.float64)))
    assert_close(m.var(ddof=1), np.var(x.astype(np.float64), ddof=1))
    with pytest.raises(ValueError, match="axis"):
        stats.moments(x, axis=1)


def test_moments_var_undefined_when_count_not_above_ddof(rng):
    X = random_data(rng, (1, 4), np.float64)
    m = stats.moments(X)
    np.testing.assert_array_equal(m.var(), np.zeros(4))
    assert np.isnan(m.var(ddof=1)).all()
    assert np.isnan(m.std(ddof=1)).all()
    assert np.isnan(stats.moments(random_data(rng, (3, 4), np.float64)).var(ddof=3)).all()


def weighted_reference(X, w, axis):
    """(count, mean, m2) with weights w along axis, by np.average."""
    Xa = X if axis == 0 else X.T
    mean = np.average(Xa, axis=0, weights=w)
    m2 = (w[:, None] * (Xa - mean) ** 2).sum(axis=0)
    return w.sum(), mean, m2


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moments_sample_weight(dtype, axis, layout, rng):
    shape = (3000, 5) if axis == 0 else (5, 3000)
    base = random_data(rng, shape, dtype)
    n = shape[axis]
    w = rng.random(n) * 3
    w[rng.random(n) < 0.2] = 0.0  # zero weights: samples that do not count
    w[:10] = 0.0
    X = make_layout(base, layout)
    m = stats.moments(X, axis=axis, sample_weight=w)
    count, mean, m2 = weighted_reference(base.astype(np.float64), w, axis)
    assert_close(m.count, np.full(5, count))
    assert_close(m.mean, mean)
    assert_close(m.m2, m2)
    assert_close(m.var(), m2 / count)
    # weights 0 / 1 select rows: the same as dropping the others
    sel = rng.random(n) < 0.5
    m_sel = stats.moments(X, axis=axis, sample_weight=sel.astype(np.float64))
    sub = base[sel] if axis == 0 else base[:, sel]
    check_moments(m_sel, sub.astype(np.float64), axis)
    # integer weights == repeating samples
    reps = rng.integers(0, 4, n)
    m_rep = stats.moments(X, axis=axis, sample_weight=reps)
    rep = np.repeat(base, reps, axis=axis).astype(np.float64)
    check_moments(m_rep, rep, axis, count=reps.sum())


def test_moments_scalar_and_all_zero_weight(rng):
    X = random_data(rng, (50, 3), np.float64)
    m = stats.moments(X, sample_weight=2.5)
    assert_close(m.count, np.full(3, 125.0))
    assert_close(m.mean, X.mean(axis=0))
    assert_close(m.var(), X.var(axis=0))
    m0 = stats.moments(X, sample_weight=np.zeros(50))
    np.testing.assert_array_equal(m0.count, 0)
    assert np.isnan(m0.mean).all()
    np.testing.assert_array_equal(m0.m2, 0)


@pytest.mark.parametrize("axis", [0, 1])
def test_moments_sample_weight_with_ignore_nan(axis, rng):
    base = random_data(rng, (400, 4), np.float64)
    base[rng.random(base.shape) < 0.15] = np.nan
    base[:, 2] = np.nan
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    n = base.shape[axis]
    w = rng.random(n)
    m = stats.moments(base, axis=axis, sample_weight=w, ignore_nan=True)
    Xa = base if axis == 0 else base.T
    valid = ~np.isnan(Xa)
    W = np.where(valid, w[:, None], 0.0)
    count = W.sum(axis=0)
    with np.errstate(all="ignore"):
        mean = (W * np.nan_to_num(Xa)).sum(axis=0) / count
        m2 = (W * np.where(valid, Xa - mean, 0) ** 2).sum(axis=0)
    assert_close(m.count, count)
    assert_close(m.mean, np.where(count > 0, mean, np.nan))
    assert_close(m.m2, np.where(count > 0, m2, 0.0))


@pytest.mark.parametrize("bad,exc", [
    (np.ones(49), ValueError), (np.ones((50, 1)), ValueError), (-np.ones(50), ValueError),
    (np.r_[np.ones(49), np.nan], ValueError), (np.r_[np.ones(49), np.inf], ValueError),
    (np.array(["a"] * 50), TypeError), (np.ones(50, dtype=complex), TypeError)])
def test_bad_sample_weight(bad, exc):
    with pytest.raises(exc, match="sample_weight"):
        stats.moments(np.ones((50, 3)), sample_weight=bad)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moments_ignore_nan(dtype, axis, layout, rng):
    base = random_data(rng, (600, 6), dtype)
    base[rng.random(base.shape) < 0.1] = np.nan
    base[:, 1] = np.nan   # a whole NaN column
    base[7, :] = np.nan   # a whole NaN row
    base[:-1, 4] = np.nan  # a single valid value
    X = make_layout(base, layout)
    m = stats.moments(X, axis=axis, ignore_nan=True)
    X64 = base.astype(np.float64)
    np.testing.assert_array_equal(m.count, (~np.isnan(X64)).sum(axis=axis))
    assert_close(m.mean, quiet(np.nanmean, X64, axis=axis))
    assert_close(m.var(), quiet(np.nanvar, X64, axis=axis))
    assert_close(m.var(ddof=1), quiet(np.nanvar, X64, axis=axis, ddof=1))
    # empty slots: count 0, mean NaN, m2 0 (the identity of merge)
    empty = m.count == 0
    assert empty.any()
    assert np.isnan(m.mean[empty]).all()
    np.testing.assert_array_equal(m.m2[empty], 0)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
def test_moments_nan_propagates_without_ignore_nan(axis, layout, rng):
    base = random_data(rng, (300, 5), np.float64)
    base[17, 2] = np.nan
    base[200, 4] = np.nan
    X = make_layout(base, layout)
    m = stats.moments(X, axis=axis)
    assert_close(m.mean, np.mean(base, axis=axis))
    assert_close(m.var(), np.var(base, axis=axis))
    bad = np.isnan(base).any(axis=axis)
    assert np.isnan(m.mean[bad]).all() and np.isnan(m.m2[bad]).all()
    assert np.isfinite(m.mean[~bad]).all()


@pytest.mark.parametrize("axis", [0, 1])
def test_moments_infinity_kept(axis, rng):
    base = random_data(rng, (100, 4), np.float64)
    base[3, 0] = np.inf
    base[5, 1] = -np.inf
    base[6, 2], base[9, 2] = np.inf, -np.inf
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    m = stats.moments(base, axis=axis)
    assert_close(m.mean, quiet(np.mean, base, axis=axis))  # +inf, -inf, nan, finite
    assert_close(m.var(), quiet(np.var, base, axis=axis))  # nan, nan, nan, finite
    m = stats.moments(base, axis=axis, ignore_nan=True)
    assert_close(m.mean, quiet(np.nanmean, base, axis=axis))


@pytest.mark.parametrize("shape,axis,n_out", [((0, 3), 0, 3), ((3, 0), 1, 3),
                                             ((0, 3), 1, 0), ((3, 0), 0, 0)])
def test_moments_empty_axis(shape, axis, n_out):
    for ignore_nan in (False, True):
        m = stats.moments(np.empty(shape), axis=axis, ignore_nan=ignore_nan)
        assert m.count.shape == m.mean.shape == m.m2.shape == (n_out,)
        np.testing.assert_array_equal(m.count, 0)
        assert np.isnan(m.mean).all()
        np.testing.assert_array_equal(m.m2, 0)
        assert np.isnan(m.var()).all()


def test_moments_empty_1d():
    m = stats.moments(np.empty(0))
    assert m.count == 0 and np.isnan(m.mean) and m.m2 == 0


@pytest.mark.parametrize("shape", [(20_000, 3), (10_000, 7), (50_000, 1)], ids=shape_id)
def test_moments_large_mean_unit_std_float64(shape, rng):
    # Several in-cache sub-chunks / blocks per column, so that their merge
    # (Chan's formula) is exercised, not only the in-cache two-pass. (Merging
    # exactly computed sub-chunk moments, correctly rounded to float64, meets
    # 1e-9 with a margin of 2x-10x on these shapes: the bound is attainable.)
    X = 1e8 + rng.standard_normal(shape)
    ref_mean = np.array([math.fsum(c) / c.size for c in X.T])
    ref_var = np.array([math.fsum((c - mu) ** 2) / c.size for c, mu in zip(X.T, ref_mean)])
    # the data really is adversarial: E[x^2] - E[x]^2 is far off
    naive = np.mean(X * X, axis=0) - np.mean(X, axis=0) ** 2
    assert not np.allclose(naive, ref_var, rtol=1e-3)
    for layout in LAYOUTS:
        for axis, Xa in ((0, X), (1, X.T)):
            for ignore_nan in (False, True):
                m = stats.moments(make_layout(Xa, layout), axis=axis, ignore_nan=ignore_nan)
                np.testing.assert_allclose(
                    m.var(), ref_var, rtol=1e-9,
                    err_msg=f"layout={layout} axis={axis} ignore_nan={ignore_nan}")
                np.testing.assert_allclose(m.mean, ref_mean, rtol=1e-12, atol=0)
    w = rng.random(X.shape[0])
    m = stats.moments(X, sample_weight=w)
    ref_wmean = np.array([math.fsum(w * c) / math.fsum(w) for c in X.T])
    ref_wvar = np.array([math.fsum(w * (c - mu) ** 2) / math.fsum(w)
                         for c, mu in zip(X.T, ref_wmean)])
    np.testing.assert_allclose(m.var(), ref_wvar, rtol=1e-9, err_msg="weighted")


def test_moments_large_mean_unit_std_float32(rng):
    X = (1e4 + rng.standard_normal((50_000, 3))).astype(np.float32)
    X64 = X.astype(np.float64)
    ref_var = X64.var(axis=0)
    for axis, Xa in ((0, X), (1, X.T)):
        m = stats.moments(Xa, axis=axis)
        np.testing.assert_allclose(m.var(), ref_var, rtol=1e-6)
        np.testing.assert_allclose(m.mean, X64.mean(axis=0), rtol=1e-12)
    # NumPy's own float32 variance is typically much worse than 1e-6 here,
    # which is why accumulation in float64 matters; do not depend on it, but
    # check fastnorm is at least as close as the float32 reduction
    err32 = np.abs(X.var(axis=0, dtype=np.float32) - ref_var) / ref_var
    err = np.abs(stats.moments(X).var() - ref_var) / ref_var
    assert (err <= np.maximum(err32, 1e-12)).all()


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_moments_means_jumping_between_sub_chunks(dtype, rng):
    # The kernel sums each in-cache sub-chunk (6553 rows of 5 columns here)
    # about the previous one's mean in one pass, and redoes it in two passes
    # where a column's mean lies far from that for its spread: steps longer
    # than a sub-chunk, up to 1e8 standard deviations, columns constant at a
    # new value after each step, whose M2 must stay exactly 0, and a column
    # whose first rows are NaN (its shift is then 0, 1e8 standard deviations
    # from the rest: only the redone sub-chunks keep its M2).
    n = 70_000
    steps = np.repeat(rng.permutation([0.0, 1e8, -3e5, 7.0, 1e8, 2.5, -1e8, 0.0, 1e3, 5e7]), 7000)
    X = np.column_stack([
        steps + rng.standard_normal(n),
        steps,
        np.full(n, 3.0),
        np.linspace(1e6, 3e6, n),
        np.where(np.arange(n) < 7000, np.nan, 1e8 + rng.standard_normal(n)),
    ]).astype(dtype)
    columns = [c[~np.isnan(c)] for c in X.astype(np.float64).T]
    ref_mean = np.array([math.fsum(c) / c.size for c in columns])
    ref_m2 = np.array([math.fsum((c - mu) ** 2) for c, mu in zip(columns, ref_mean)])
    for layout in LAYOUTS:
        m = stats.moments(make_layout(X, layout), axis=0, ignore_nan=True)
        np.testing.assert_allclose(m.mean, ref_mean, rtol=1e-12, atol=0, err_msg=layout)
        np.testing.assert_allclose(m.m2[:4], ref_m2[:4], rtol=1e-9, atol=0, err_msg=layout)
        # (the last column's sub-chunk means are held relative to that shift
        # of 0: their merges lose ~1e-9 of its small M2, as they always did)
        np.testing.assert_allclose(m.m2[4], ref_m2[4], rtol=1e-8, atol=0, err_msg=layout)
        assert m.mean[2] == 3.0 and m.m2[2] == 0.0, layout
        for a, b in ((0, 7000), (7000, 14_000), (14_000, 21_000)):  # one step
            part = stats.moments(make_layout(X[a:b], layout), axis=0)
            assert part.m2[1] == 0.0 and part.mean[1] == X[a, 1], layout


# -------------------------------------------------------------------- merge ---

@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_merge_of_halves_equals_whole(dtype, axis, rng):
    base = random_data(rng, (1200, 5), dtype, loc=50.0)
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    n = base.shape[axis]
    whole = stats.moments(base, axis=axis)
    for k in (0, 1, 7, n // 3, n // 2, n - 1, n):
        a = np.take(base, np.arange(k), axis=axis)
        b = np.take(base, np.arange(k, n), axis=axis)
        merged = stats.moments(a, axis=axis).merge(stats.moments(b, axis=axis))
        assert isinstance(merged, Moments)
        np.testing.assert_array_equal(merged.count, whole.count)
        assert_close(merged.mean, whole.mean)
        assert_close(merged.m2, whole.m2)
        # merge is symmetric
        other = stats.moments(b, axis=axis).merge(stats.moments(a, axis=axis))
        assert_close(other.mean, whole.mean)
        assert_close(other.m2, whole.m2)


def test_merge_three_parts_weighted_and_nan(rng):
    X = random_data(rng, (900, 4), np.float64)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:300, 3] = np.nan  # the first part has an all-NaN column
    w = rng.random(900)
    whole = stats.moments(X, sample_weight=w, ignore_nan=True)
    parts = [stats.moments(X[s], sample_weight=w[s], ignore_nan=True)
             for s in (slice(0, 300), slice(300, 610), slice(610, 900))]
    assert parts[0].count[3] == 0
    left = parts[0].merge(parts[1]).merge(parts[2])
    right = parts[0].merge(parts[1].merge(parts[2]))
    for merged in (left, right):
        assert_close(merged.count, whole.count)
        assert_close(merged.mean, whole.mean)
        assert_close(merged.m2, whole.m2)


def test_merge_large_mean(rng):
    # Chan's merge of parts of data with mean 1e8, std 1: the variance of the
    # whole to 1e-9 relative (the exactly summed reference)
    # (merging exactly computed moments of the parts stays ~10x below 1e-9)
    X = 1e8 + rng.standard_normal((40_000, 2))
    ref_mean = np.array([math.fsum(c) / c.size for c in X.T])
    ref_var = np.array([math.fsum((c - mu) ** 2) / c.size for c, mu in zip(X.T, ref_mean)])
    for k in (1, 8000, 20_000, 39_999):
        merged = stats.moments(X[:k]).merge(stats.moments(X[k:]))
        np.testing.assert_allclose(merged.var(), ref_var, rtol=1e-9, err_msg=f"split at {k}")
        np.testing.assert_allclose(merged.mean, ref_mean, rtol=1e-12)


def test_merge_bad_other(rng):
    m = stats.moments(random_data(rng, (10, 3), np.float64))
    for bad in (None, (m.count, m.mean, m.m2), np.zeros(3), "m"):
        with pytest.raises(TypeError, match="other"):
            m.merge(bad)
    with pytest.raises(ValueError, match="other"):
        m.merge(stats.moments(random_data(rng, (10, 4), np.float64)))
    with pytest.raises(ValueError, match="other"):
        m.merge(stats.moments(random_data(rng, (10,), np.float64)))



def test_moments_built_by_hand_from_lists_and_scalars():
    # a user-built Moments (a stored count, lists) merges as a computed one
    X = np.array([[1.0, 2.0], [3.0, 6.0], [5.0, 7.0]])
    first = stats.Moments(2, [2.0, 4.0], [2.0, 8.0])  # rows 0-1, count as an int
    merged = first.merge(stats.moments(X[2:]))
    whole = stats.moments(X)
    for field in ("count", "mean", "m2"):
        assert getattr(first, field).dtype == np.float64
        np.testing.assert_allclose(getattr(merged, field), getattr(whole, field))
    with pytest.raises(ValueError, match="one shape"):
        stats.Moments([1.0, 2.0], [1.0, 2.0, 3.0], [0.0, 0.0])
    with pytest.raises(TypeError, match="Moments.mean must be numbers"):
        stats.Moments(1, "mean", 0)


# ------------------------------------------------------------ min / max ---

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape", SHAPES, ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_min_max_match_numpy(dtype, shape, axis, layout, rng):
    base = random_data(rng, shape, dtype)
    X = make_layout(base, layout)
    want_dtype = np.float64 if dtype == "int64" else np.dtype(dtype)
    for ignore_nan in (False, True):
        r = stats.min_max(X, axis=axis, ignore_nan=ignore_nan)
        assert isinstance(r, MinMax)
        assert r.min.dtype == r.max.dtype == want_dtype
        np.testing.assert_array_equal(r.min, np.min(base, axis=axis).astype(want_dtype))
        np.testing.assert_array_equal(r.max, np.max(base, axis=axis).astype(want_dtype))
        mn, mx = r  # a named pair
        np.testing.assert_array_equal(mn, r.min)
        a = stats.max_abs(X, axis=axis, ignore_nan=ignore_nan)
        assert a.dtype == want_dtype
        np.testing.assert_array_equal(a, np.max(np.abs(base), axis=axis).astype(want_dtype))
    np.testing.assert_array_equal(X, base)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_min_max_nan(dtype, axis, layout, rng):
    base = random_data(rng, (500, 6), dtype)
    base[rng.random(base.shape) < 0.05] = np.nan
    base[:, 3] = np.nan
    base[9, :] = np.nan
    base[1:, 5] = np.nan
    X = make_layout(base, layout)
    r = stats.min_max(X, axis=axis)
    np.testing.assert_array_equal(r.min, np.min(base, axis=axis))
    np.testing.assert_array_equal(r.max, np.max(base, axis=axis))
    np.testing.assert_array_equal(stats.max_abs(X, axis=axis), np.max(np.abs(base), axis=axis))
    r = stats.min_max(X, axis=axis, ignore_nan=True)
    np.testing.assert_array_equal(r.min, quiet(np.nanmin, base, axis=axis))
    np.testing.assert_array_equal(r.max, quiet(np.nanmax, base, axis=axis))
    np.testing.assert_array_equal(stats.max_abs(X, axis=axis, ignore_nan=True),
                                  quiet(np.nanmax, np.abs(base), axis=axis))


@pytest.mark.parametrize("axis", [0, 1])
def test_min_max_infinity_kept(axis, rng):
    base = random_data(rng, (50, 4), np.float64)
    base[3, 0] = np.inf
    base[4, 1] = -np.inf
    base[5, 2], base[6, 2] = -np.inf, np.inf
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    for ignore_nan in (False, True):
        r = stats.min_max(base, axis=axis, ignore_nan=ignore_nan)
        np.testing.assert_array_equal(r.min, base.min(axis=axis))
        np.testing.assert_array_equal(r.max, base.max(axis=axis))
        np.testing.assert_array_equal(stats.max_abs(base, axis=axis), np.abs(base).max(axis=axis))


def test_min_max_1d_and_empty(rng):
    x = random_data(rng, (77,), np.float32)
    r = stats.min_max(x)
    assert r.min.shape == () and r.min.dtype == np.float32
    assert r.min == x.min() and r.max == x.max()
    assert stats.max_abs(x) == np.abs(x).max()
    for X, axis in ((np.empty((0, 3)), 0), (np.empty((3, 0)), 1), (np.empty(0), 0)):
        with pytest.raises(ValueError, match=r"\bX\b"):
            stats.min_max(X, axis=axis)
        with pytest.raises(ValueError, match=r"\bX\b"):
            stats.max_abs(X, axis=axis)


# ---------------------------------------------------------------- quantiles ---

QS = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape", [(1000, 7), (3, 1000), (1, 5), (5, 1), (4, 4)], ids=shape_id)
@pytest.mark.parametrize("dtype", DTYPES)
def test_quantiles_match_numpy(dtype, shape, axis, layout, rng):
    base = random_data(rng, shape, dtype)
    X = make_layout(base, layout)
    X64 = base.astype(np.float64)
    for ignore_nan in (False, True):
        got = stats.quantiles(X, QS, axis=axis, ignore_nan=ignore_nan)
        assert got.dtype == np.float64
        assert got.shape == (len(QS), shape[1 - axis])
        assert_close(got, np.quantile(X64, QS, axis=axis))
    # q in any order, with repeats, keeps its order
    q = [0.9, 0.1, 0.5, 0.1, 0.333]
    assert_close(stats.quantiles(X, q, axis=axis), np.quantile(X64, q, axis=axis))
    # scalar q -> one value per feature
    got = stats.quantiles(X, 0.37, axis=axis)
    assert got.shape == (shape[1 - axis],)
    assert_close(got, np.quantile(X64, 0.37, axis=axis))
    np.testing.assert_array_equal(X, base)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_quantiles_nan(dtype, axis, rng):
    base = random_data(rng, (300, 5), dtype)
    base[rng.random(base.shape) < 0.1] = np.nan
    base[:, 1] = np.nan
    base[1:, 3] = np.nan  # one valid value
    if axis == 1:
        base = np.ascontiguousarray(base.T)
    X64 = base.astype(np.float64)
    got = stats.quantiles(base, QS, axis=axis, ignore_nan=True)
    assert_close(got, quiet(np.nanquantile, X64, QS, axis=axis))
    got = stats.quantiles(base, QS, axis=axis)
    assert_close(got, np.quantile(X64, QS, axis=axis))  # NaN where any NaN


def test_quantiles_ties_and_constant(rng):
    X = np.repeat(rng.integers(0, 4, size=(25, 3)).astype(np.float64), 3, axis=0)
    X[:, 2] = 7.0
    assert_close(stats.quantiles(X, QS), np.quantile(X, QS, axis=0))


def test_quantiles_1d(rng):
    x = random_data(rng, (101,), np.float32)
    got = stats.quantiles(x, QS)
    assert got.shape == (len(QS),)
    assert_close(got, np.quantile(x.astype(np.float64), QS))
    got = stats.quantiles(x, 0.5)
    assert got.shape == ()
    assert_close(got, np.median(x.astype(np.float64)))


@pytest.mark.parametrize("q", [1.5, -0.1, [0.2, 1.01], [[0.5]], np.nan, [0.5, np.nan], None,
                               "a", ["0.5", "x"]])
def test_quantiles_bad_q(q):
    with pytest.raises(ValueError, match=r"\bq\b"):
        stats.quantiles(np.ones((4, 2)), q)


def test_quantiles_empty_axis():
    with pytest.raises(ValueError, match=r"\bX\b"):
        stats.quantiles(np.empty((0, 3)), 0.5)


# ------------------------------------------------------------ bad input ---

@pytest.mark.parametrize("func", [
    lambda X, **kw: stats.moments(X, **kw), lambda X, **kw: stats.min_max(X, **kw),
    lambda X, **kw: stats.max_abs(X, **kw), lambda X, **kw: stats.quantiles(X, 0.5, **kw)],
    ids=["moments", "min_max", "max_abs", "quantiles"])
def test_stats_bad_arguments(func):
    import scipy.sparse as sp
    X = np.ones((4, 3))
    for axis, exc in ((2, ValueError), (-3, ValueError), (1.5, TypeError), ("0", TypeError)):
        with pytest.raises(exc, match="axis"):
            func(X, axis=axis)
    with pytest.raises(TypeError, match="ignore_nan"):
        func(X, ignore_nan=1)
    for bad, exc in ((None, TypeError), (np.ones((2, 2, 2)), ValueError),
                     (np.array([["a"]]), TypeError), (np.ones((2, 2), complex), TypeError),
                     (sp.csr_matrix(np.eye(3)), TypeError)):
        with pytest.raises(exc, match=r"\bX\b"):
            func(bad)
    # negative axes count from the end, as in NumPy
    X = np.arange(12.0).reshape(4, 3) ** 2
    for neg, pos in ((-1, 1), (-2, 0)):
        a, b = func(X, axis=neg), func(X, axis=pos)
        if isinstance(a, Moments):
            a, b = (a.count, a.mean, a.m2), (b.count, b.mean, b.m2)
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

"""Extreme values in the moments kernels (issue 12), in both kernel builds.

A. float32 near its maximum: the provisional float32 sums of the column and
   channels-last kernels overflowed (mean inf, or NaN; StandardScaler's
   transform non-finite, group_norm NHWC NaN from ~9e37). Every finite
   float32 input must get float64 statistics.
B. Ill-conditioned float64 (1e8 + N(0, 1)): `scale` and
   `StandardScaler.transform` centred on the mean rounded to one double,
   which carried up to half an ulp of 1e8 (~7e-9) into every output;
   scikit-learn's `scale` is ~1e-15 from the exact z-scores. The mean is now
   used as two terms (`_cpu.moments(mean_lo=True)`).
C. Per-row moments of identical values gave a tiny nonzero M2 (~1e-28) for
   rows up to 32768 long; now exactly 0, as for columns.

The exact z-scores are computed in integer arithmetic (every double is an
integer over a power of two).
"""
import math
import textwrap
import warnings
from fractions import Fraction

import numpy as np
import pytest
import sklearn.preprocessing as skp
from numpy.testing import assert_allclose, assert_array_equal

import fastnorm
import fastnorm.functional as F
import fastnorm.preprocessing as fnp
from fastnorm import _cpu, stats
from fastnorm._ext import _openmp

from conftest import assert_close, run_with_baseline_kernels

EPS = np.finfo(np.float64).eps
F32_MAX = float(np.finfo(np.float32).max)


def _builds(name):
    """The portable module and, where the CPU runs it, the x86-64-v3 one."""
    import importlib
    builds = [pytest.param(importlib.import_module(f"fastnorm._ext.{name}"), id="baseline")]
    if _openmp.cpu_is_x86_64_v3():
        try:
            builds.append(pytest.param(importlib.import_module(f"fastnorm._ext.{name}_v3"),
                                       id="x86-64-v3"))
        except ImportError:
            pass
    return builds


def _kernel_moments(kernels, X, axis, w=None, ignore_nan=False, n_threads=2, shift=False):
    """(count, mean, m2[, shift]) from a moments kernel module directly."""
    n = X.shape[1] if axis == 0 else X.shape[0]
    out = [np.empty(n) for _ in range(4 if shift else 3)]
    kernel = kernels.moments_cols if axis == 0 else kernels.moments_rows
    kernel(X, w, ignore_nan, n_threads, *out)
    return out


def _reference_moments(X, axis):
    """float64 NumPy (count, mean, M2), NaNs skipped, centred twice."""
    X64 = np.asarray(X, dtype=np.float64)
    if axis == 1:
        X64 = X64.T
    ok = ~np.isnan(X64)
    count = ok.sum(0).astype(np.float64)
    mean = np.nansum(X64, 0) / count
    mean = mean + np.nansum(X64 - mean, 0) / count
    m2 = np.nansum((X64 - mean) ** 2, 0)
    return count, mean, m2


def _exact_z(col):
    """Exact z-scores of a 1-D float64 array (biased std), rounded once-ish:
    relative error ~1e-16. NaNs are skipped and kept."""
    col = np.asarray(col, dtype=np.float64)
    ok = ~np.isnan(col)
    ratios = [v.as_integer_ratio() for v in col[ok].tolist()]
    denom = max(d for _, d in ratios)  # a power of two
    ints = [num * (denom // d) for num, d in ratios]
    n, total = len(ints), sum(ints)
    devs = [n * v - total for v in ints]  # (x - mean) * n * denom, exactly
    sd = math.sqrt(Fraction(sum(d * d for d in devs), n))  # std * n * denom
    z = np.full(col.shape, np.nan)
    z[ok] = [float(Fraction(d) / Fraction(sd)) if sd else 0.0 for d in devs]
    return z


def _exact_z_cols(X):
    return np.stack([_exact_z(X[:, j]) for j in range(X.shape[1])], axis=1)


def _exact_mean(col):
    return sum(Fraction(v) for v in col.tolist()) / len(col)


# ====================================================== A. float32 near max ===

def _near_max_data(kind, shape, rng):
    if kind == "constant":
        return np.full(shape, 1e38, np.float32)
    if kind == "positive":  # any four summed overflow float32
        return rng.uniform(1e38, F32_MAX, shape).astype(np.float32)
    if kind == "symmetric":  # x - shift overflows
        return rng.uniform(-F32_MAX, F32_MAX, shape).astype(np.float32)
    if kind == "small_first":  # the shift from the first rows is small
        X = np.full(shape, 3e38, np.float32)
        X[: shape[0] // 2] = rng.standard_normal((shape[0] // 2, shape[1]))
        return X
    raise ValueError(kind)


NEAR_MAX = ["constant", "positive", "symmetric", "small_first"]


def _check_moments(count, mean, m2, X, axis):
    ref_count, ref_mean, ref_m2 = _reference_moments(X, axis)
    scale = np.nanmax(np.abs(X.astype(np.float64)), axis=axis)
    assert np.isfinite(mean).all() and np.isfinite(m2).all(), (mean, m2)
    assert_array_equal(count, ref_count)
    assert_allclose(mean, ref_mean, rtol=0, atol=1e-13 * scale.max())
    assert_allclose(m2, ref_m2, rtol=1e-11, atol=1e-13 * (scale ** 2 * count).max())


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("kind", NEAR_MAX)
@pytest.mark.parametrize("shape", [(8, 2), (1000, 3), (100_000, 3), (257, 1000)])
@pytest.mark.parametrize("ignore_nan", [False, True])
def test_moments_cols_float32_near_max(rng, kernels, kind, shape, ignore_nan):
    # was: inf (x86-64-v3) or NaN (portable) mean
    X = _near_max_data(kind, shape, rng)
    for n_threads in (1, 2):
        count, mean, m2 = _kernel_moments(kernels, X, 0, ignore_nan=ignore_nan,
                                          n_threads=n_threads)
        _check_moments(count, mean, m2, X, 0)


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("kind", NEAR_MAX)
def test_moments_float32_near_max_with_nans_and_weights(rng, kernels, kind):
    X = _near_max_data(kind, (5000, 7), rng)
    X[rng.random(X.shape) < 0.05] = np.nan
    X[:, 3] = np.nan  # all NaN
    X[:, 4] = _near_max_data(kind, (5000, 1), rng)[:, 0]  # no NaN
    count, mean, m2 = _kernel_moments(kernels, X, 0, ignore_nan=True)
    ok = np.arange(7) != 3
    _check_moments(count[ok], mean[ok], m2[ok], X[:, ok], 0)
    assert count[3] == 0
    # without ignore_nan a NaN still propagates, the clean column is exact
    count, mean, m2 = _kernel_moments(kernels, X, 0)
    assert np.isnan(mean[[0, 1, 2, 3, 5, 6]]).all()
    _check_moments(count[4:5], mean[4:5], m2[4:5], X[:, 4:5], 0)
    # weighted (summed in float64 all along)
    w = rng.uniform(0, 2, X.shape[0])
    Xc = np.ascontiguousarray(X[:, 4:5])
    count, mean, m2 = _kernel_moments(kernels, Xc, 0, w=w)
    X64 = Xc[:, 0].astype(np.float64)
    ref_mean = X64[0] + (w @ (X64 - X64[0])) / w.sum()  # exact for the constant
    assert_allclose(mean, ref_mean, rtol=0, atol=1e-13 * F32_MAX)
    assert_allclose(m2, w @ (X64 - ref_mean) ** 2, rtol=1e-11)


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("kind", NEAR_MAX)
def test_moments_rows_float32_near_max(rng, kernels, kind):
    X = np.ascontiguousarray(_near_max_data(kind, (40_000, 3), rng).T)
    count, mean, m2 = _kernel_moments(kernels, X, 1)
    _check_moments(count, mean, m2, X, 1)


@pytest.mark.parametrize("kind", NEAR_MAX)
@pytest.mark.parametrize("order", ["C", "F"])
def test_stats_moments_float32_near_max(rng, kind, order):
    X = np.asarray(_near_max_data(kind, (3000, 4), rng), order=order)
    m = stats.moments(X, axis=0)
    _check_moments(m.count, m.mean, m.m2, X, 0)
    m = stats.moments(X.T, axis=1)
    _check_moments(m.count, m.mean, m.m2, X, 0)


def test_standard_scaler_float32_near_max_issue_example():
    X = np.full((8, 2), 1e38, np.float32)
    s = fnp.StandardScaler().fit(X)
    assert_array_equal(s.mean_, np.float64(np.float32(1e38)))
    assert_array_equal(s.var_, 0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning either
        Y = s.transform(X)
    assert_array_equal(Y, 0.0)
    assert_array_equal(stats.moments(X).mean, np.float64(np.float32(1e38)))


@pytest.mark.parametrize("kind", ["positive", "symmetric", "small_first"])
def test_standard_scaler_float32_near_max_matches_float64(rng, kind):
    # was: mean_ inf and a non-finite transform, without an error
    X = _near_max_data(kind, (1000, 3), rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = fnp.StandardScaler().fit(X)
        Y = s.transform(X)
    X64 = X.astype(np.float64)
    ref = skp.StandardScaler().fit(X64)
    assert_allclose(s.mean_, ref.mean_, rtol=0, atol=1e-13 * F32_MAX)
    assert_allclose(s.var_, ref.var_, rtol=1e-11)
    assert Y.dtype == np.float32 and np.isfinite(Y).all()
    assert_close(Y, ref.transform(X64).astype(np.float32), np.float32)
    # scale() as well
    assert_close(fnp.scale(X), ref.transform(X64).astype(np.float32), np.float32)


# --- channels: NHWC statistics per channel, summed in float32 per block -------

@pytest.mark.parametrize("kernels", _builds("_channels"))
@pytest.mark.parametrize("value", [9e37, 1e38, 3e38, F32_MAX])
@pytest.mark.parametrize("shape", [(2, 9, 4), (3, 5000, 16), (1, 70, 1000)])
def test_channels_moments_float32_near_max_constant(kernels, value, shape):
    # was: NaN from ~9e37 (four values summed in float32)
    X3 = np.full(shape, value, np.float32)
    mean, m2 = np.empty((shape[0], shape[2])), np.empty((shape[0], shape[2]))
    kernels.moments(X3, 2, mean, m2)
    assert_array_equal(mean, np.float64(np.float32(value)))
    assert_array_equal(m2, 0.0)


@pytest.mark.parametrize("kernels", _builds("_channels"))
@pytest.mark.parametrize("kind", ["positive", "symmetric", "small_first"])
def test_channels_moments_float32_near_max_random(rng, kernels, kind):
    X3 = _near_max_data(kind, (3 * 6000, 8), rng).reshape(3, 6000, 8)
    mean, m2 = np.empty((3, 8)), np.empty((3, 8))
    kernels.moments(X3, 2, mean, m2)
    for a in range(3):
        _check_moments(np.full(8, 6000.0), mean[a], m2[a], X3[a], 0)


@pytest.mark.parametrize("value", [9e37, 1e38, 3e38])
def test_channel_moments_and_group_norm_nhwc_float32_near_max(value):
    x = np.full((2, 4, 3, 3), value, np.float32)  # NCHW
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))  # NHWC
    for layout, arr in (("NCHW", x), ("NHWC", xh)):
        m = stats.channel_moments(arr, layout=layout)
        assert_array_equal(m.mean, np.float64(np.float32(value)))
        assert_array_equal(m.m2, 0.0)
        for G in (1, 2, 4):
            y = F.group_norm(arr, G, layout=layout)
            assert_array_equal(y, 0.0)
        assert_array_equal(F.instance_norm(arr, layout=layout), 0.0)
        assert_array_equal(F.batch_norm(arr, None, None, training=True, layout=layout), 0.0)


def test_group_norm_nhwc_float32_near_max_random(rng):
    x = rng.uniform(-F32_MAX, F32_MAX, (2, 8, 20, 20)).astype(np.float32)
    xh = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    x64 = x.astype(np.float64).reshape(2, 2, -1)
    ref = ((x64 - x64.mean(-1, keepdims=True)) / np.sqrt(x64.var(-1, keepdims=True) + 1e-5))
    ref = ref.reshape(x.shape).astype(np.float32)
    y = F.group_norm(xh, 2, layout="NHWC")
    assert np.isfinite(y).all()
    assert_close(y.transpose(0, 3, 1, 2), ref, np.float32)
    assert_close(F.group_norm(x, 2), ref, np.float32)
    m = stats.channel_moments(xh, layout="NHWC")
    _check_moments(m.count, m.mean, m.m2, x.transpose(0, 2, 3, 1).reshape(-1, 8), 0)


# ================================================ B. ill-conditioned float64 ===

def _ill_conditioned(rng, shape, offset=1e8):
    return offset + rng.standard_normal(shape)


def _assert_near_exact(Y, Z, reference_err=None):
    """Y within 4 ulps of max |z| of the exact z-scores Z (and no farther from
    them than `reference_err`, scikit-learn's distance, where that is larger)."""
    err = np.nanmax(np.abs(Y - Z))
    bound = 4 * EPS * max(1.0, np.nanmax(np.abs(Z)))
    if reference_err is not None:
        bound = max(bound, reference_err)
    assert err <= bound, (err, bound)
    assert_array_equal(np.isnan(Y), np.isnan(Z))


@pytest.mark.parametrize("offset", [1e8, -3e10, 1e12, 7.0])
@pytest.mark.filterwarnings("ignore:Numerical issues were encountered:UserWarning")
def test_scale_ill_conditioned_matches_exact(rng, offset):
    # was: 4.9e-9 .. 9.4e-9 from the exact z-scores at 1e8 (scikit-learn: ~1e-15)
    X = _ill_conditioned(rng, (100, 3), offset)
    Z = _exact_z_cols(X)
    sk_err = np.abs(skp.scale(X) - Z).max()
    _assert_near_exact(fnp.scale(X), Z, sk_err)
    _assert_near_exact(fnp.scale(np.asfortranarray(X)), Z, sk_err)  # the row kernel
    _assert_near_exact(fnp.scale(np.ascontiguousarray(X.T), axis=1).T, Z, sk_err)
    _assert_near_exact(fnp.scale(X[:, 0]), Z[:, 0], sk_err)
    out = np.empty_like(X)
    fnp.scale(X, out=out)
    _assert_near_exact(out, Z, sk_err)
    Xc = X.copy()
    fnp.scale(Xc, copy=False)
    _assert_near_exact(Xc, Z, sk_err)


def test_scale_ill_conditioned_with_nans_and_without_std(rng):
    X = _ill_conditioned(rng, (200, 4))
    X[rng.random(X.shape) < 0.1] = np.nan
    _assert_near_exact(fnp.scale(X), _exact_z_cols(X))
    # with_std=False: x - mean, exactly rounded up to the spread's ulps
    Y = fnp.scale(X, with_std=False)
    for j in range(X.shape[1]):
        col = X[:, j][~np.isnan(X[:, j])]
        m = _exact_mean(col)
        exact = np.array([float(Fraction(v) - m) for v in col.tolist()])
        assert np.abs(Y[~np.isnan(X[:, j]), j] - exact).max() <= 4 * EPS * np.abs(exact).max()


@pytest.mark.filterwarnings("ignore:Numerical issues were encountered:UserWarning")
def test_scale_ill_conditioned_long_and_multi_block(rng):
    # columns over many sub-chunks and blocks; rows longer than one sub-chunk
    # (the M2 of 100000 values is a few ulps off, scikit-learn's more)
    X = _ill_conditioned(rng, (100_000, 2))
    Z = _exact_z_cols(X)
    sk_err = np.abs(skp.scale(X) - Z).max()
    assert sk_err < 1e-12
    _assert_near_exact(fnp.scale(X), Z, sk_err)
    _assert_near_exact(fnp.scale(np.ascontiguousarray(X.T), axis=1).T, Z, sk_err)


def test_standard_scaler_ill_conditioned_transform(rng):
    X = _ill_conditioned(rng, (100, 3))
    Z = _exact_z_cols(X)
    s = fnp.StandardScaler().fit(X)
    # the fitted attributes are the same as before: mean_ the rounded mean
    m = stats.moments(X)
    assert_array_equal(s.mean_, m.mean)
    assert_array_equal(s.var_, m.m2 / m.count)
    sk_err = np.abs(skp.StandardScaler().fit(X).transform(X) - Z).max()
    _assert_near_exact(s.transform(X), Z, sk_err)
    _assert_near_exact(s.fit_transform(X), Z, sk_err)
    _assert_near_exact(s.transform(np.asfortranarray(X)), Z, sk_err)
    _assert_near_exact(fnp.StandardScaler(with_std=False).fit(X).transform(X) / np.sqrt(m.m2 / m.count),
                       Z, sk_err)
    w = rng.uniform(0.5, 2, X.shape[0])
    sw = fnp.StandardScaler().fit(X, sample_weight=w)
    Yw = sw.transform(X)
    assert np.abs(np.average(Yw, axis=0, weights=w)).max() < 1e-14  # centred exactly
    # float32 input is unchanged by the low part (it is below float32's reach)
    X32 = X.astype(np.float32)
    s32 = fnp.StandardScaler().fit(X32)
    assert_array_equal(s32.transform(X32),
                       ((X32 - s32.mean_.astype(np.float32)).astype(np.float64)
                        / s32.scale_.astype(np.float32)).astype(np.float32))


def test_standard_scaler_low_part_is_dropped_when_mean_changes(rng):
    X = _ill_conditioned(rng, (100, 3))
    s = fnp.StandardScaler().fit(X)
    f = 1.0 / s.scale_
    # mean_ set by hand: centred on it alone
    s.mean_ = s.mean_ + 0.5
    assert_array_equal(s.transform(X), (X - s.mean_) * f)
    s.mean_[1] = 7.0  # in place, one feature: the others keep their low part
    s.fit(X)
    mean = s.mean_.copy()
    s.mean_[1] = 7.0
    Y = s.transform(X)
    assert_array_equal(Y[:, 1], (X[:, 1] - 7.0) * f[1])
    Z = _exact_z_cols(X)
    _assert_near_exact(Y[:, [0, 2]], Z[:, [0, 2]])
    s.mean_ = mean
    _assert_near_exact(s.transform(X), Z)
    # a later partial_fit merges in the mean_ alone (as before)
    s.partial_fit(X)
    assert "_mean_lo" not in vars(s)
    assert_array_equal(s.transform(X), (X - s.mean_) * (1.0 / s.scale_))
    # refitting with_mean=False keeps no low part
    s = fnp.StandardScaler(with_mean=False).fit(X)
    assert "_mean_lo" not in vars(s)


def test_standard_scaler_low_part_only_where_it_matters(rng):
    # well-conditioned data: the low part is below the outputs' digits, so
    # none is kept and transform is exactly as before
    X = rng.standard_normal((200, 4)) * 3 + 1
    s = fnp.StandardScaler().fit(X)
    assert "_mean_lo" not in vars(s)
    assert_array_equal(s.transform(X), (X - s.mean_) * (1.0 / s.scale_))
    X[:, 2] += 1e6  # one ill-conditioned feature
    s = fnp.StandardScaler().fit(X)
    assert "_mean_lo" in vars(s)
    _assert_near_exact(s.transform(X), _exact_z_cols(X))


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("length", [100, 40_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_kernel_mean_low_part(rng, kernels, axis, length, weighted):
    # mean + shift is the mean returned without `shift`; with the rounding
    # error of that sum, the mean to a few ulps of the spread
    X = _ill_conditioned(rng, (length, 3))
    if axis == 1:
        X = np.ascontiguousarray(X.T)
    w = rng.uniform(0.5, 2, length) if weighted else None
    count, mean, m2 = _kernel_moments(kernels, X, axis, w=w)
    count2, rel, m2b, shift = _kernel_moments(kernels, X, axis, w=w, shift=True)
    assert_array_equal(count, count2)
    assert_array_equal(m2, m2b)
    assert_array_equal(shift + rel, mean)
    hi, lo = _cpu.two_sum(shift, rel)
    assert_array_equal(hi, mean)
    cols = X.T if axis == 0 else X
    for j in range(3):
        col = cols[j].tolist()
        if weighted:
            ws = [Fraction(v) for v in w.tolist()]
            exact = sum(wi * Fraction(v) for wi, v in zip(ws, col)) / sum(ws)
        else:
            exact = _exact_mean(cols[j])
        assert abs(Fraction(hi[j]) + Fraction(lo[j]) - exact) <= 8 * EPS, (j, hi[j], lo[j])
        assert abs(Fraction(hi[j]) - exact) <= Fraction(np.spacing(hi[j])) / 2


def test_cpu_moments_mean_lo(rng):
    X = _ill_conditioned(rng, (500, 4))
    X[::7, 1] = np.nan
    X[:, 2] = np.nan
    X[3, 3] = np.inf
    count, mean, m2 = _cpu.moments(X, 0, ignore_nan=True)
    count2, mean2, m2b, lo = _cpu.moments(X, 0, ignore_nan=True, mean_lo=True)
    for a, b in ((count, count2), (mean, mean2), (m2, m2b)):
        assert_array_equal(a, b)
    assert np.isfinite(lo).all()
    assert lo[2] == 0 and lo[3] == 0  # all NaN; inf
    assert np.abs(lo[:2]).max() <= np.spacing(1e8) / 2


# ============================================ C. identical values per row ===

ROW_VALUES = np.array([0.1, 3.3, 1e-10, 1e10, -7.7, 0.0, 1 / 3])


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [1, 2, 3, 7, 100, 1000, 4097, 32767, 32768, 32769, 70_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_rows_identical_values_exact_zero_m2(rng, kernels, dtype, length, weighted):
    # was: ~1e-28 (1000 long) .. ~1e-23 (32768 long) for float64
    X = np.ascontiguousarray(np.broadcast_to(ROW_VALUES.astype(dtype)[:, None],
                                             (ROW_VALUES.size, length)))
    w = rng.uniform(0, 2, length) if weighted else None
    for n_threads in (1, 2):
        count, mean, m2 = _kernel_moments(kernels, X, 1, w=w, n_threads=n_threads)
        assert_array_equal(m2, 0.0)
        assert_array_equal(mean, X[:, 0].astype(np.float64))
        count, mean, m2 = _kernel_moments(kernels, X, 1, w=w, ignore_nan=True,
                                          n_threads=n_threads)
        assert_array_equal(m2, 0.0)
        assert_array_equal(mean, X[:, 0].astype(np.float64))


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("length", [50, 3000, 40_000])
def test_moments_rows_identical_values_with_nans_exact_zero_m2(kernels, length):
    X = np.full((6, length), 0.1)
    X[:, ::7] = np.nan
    X[1, :20] = np.nan  # leading NaNs
    X[2, :] = np.nan  # all NaN
    count, mean, m2 = _kernel_moments(kernels, X, 1, ignore_nan=True)
    assert_array_equal(count, (~np.isnan(X)).sum(1))
    ok = np.arange(6) != 2
    assert_array_equal(m2[ok], 0.0)
    assert_array_equal(mean[ok], 0.1)
    assert count[2] == 0 and m2[2] == 0


def test_row_moments_identical_values_public_api():
    for dtype in (np.float32, np.float64):
        X = np.full((3, 1000), 0.1, dtype)
        m = stats.moments(X, axis=1)
        assert_array_equal(m.m2, 0.0)
        assert_array_equal(m.var(), 0.0)
        assert_array_equal(m.mean, np.float64(dtype(0.1)))
        # a Fortran array's columns are the row kernel's rows
        s = fnp.StandardScaler().fit(np.asfortranarray(X.T))
        assert_array_equal(s.var_, 0.0)
        assert_array_equal(s.mean_, np.float64(dtype(0.1)))


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("length", [300, 32768, 50_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_rows_accuracy_and_determinism(rng, kernels, dtype, length, weighted):
    X = (1e8 + rng.standard_normal((30, length)) * np.geomspace(1e-3, 10, 30)[:, None])
    X = X.astype(dtype)
    X[0, 0] = 3e8  # a first value far from the rest
    w = rng.uniform(0, 2, length) if weighted else None
    ref = _kernel_moments(kernels, X, 1, w=w, n_threads=1)
    for n in (2, 3):
        for a, b in zip(ref, _kernel_moments(kernels, X, 1, w=w, n_threads=n)):
            assert_array_equal(a, b)
    X64 = X.astype(np.float64)
    ww = np.ones(length) if w is None else w
    mean = X64[:, 1] + ((X64 - X64[:, 1:2]) @ ww) / ww.sum()
    m2 = ((X64 - mean[:, None]) ** 2) @ ww
    count, our_mean, our_m2 = ref
    assert_allclose(our_mean, mean, rtol=1e-15)
    assert_allclose(our_m2, m2, rtol=1e-10)


@pytest.mark.parametrize("kernels", _builds("_stats"))
@pytest.mark.parametrize("length", [300, 50_000])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_rows_outlier_first_value_with_nans(rng, kernels, length, weighted):
    # the shift (the first finite value) far from the rest: the corrected
    # step, on the NaN-skipping path
    X = 1e8 + rng.standard_normal((4, length)) * 1e-2
    X[:, 0] = np.nan
    X[:, 1] = 3e8
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:, 1] = 3e8
    w = rng.uniform(0.5, 2, length) if weighted else None
    count, mean, m2 = _kernel_moments(kernels, X, 1, w=w, ignore_nan=True)
    ok = ~np.isnan(X)
    ww = np.broadcast_to(np.ones(length) if w is None else w, X.shape) * ok
    X0 = np.where(ok, X, 1e8)
    ref_mean = 1e8 + ((X0 - 1e8) * ww).sum(1) / ww.sum(1)
    assert_allclose(count, ww.sum(1), rtol=1e-14)
    assert_allclose(mean, ref_mean, rtol=2e-16 * 4)
    assert_allclose(m2, ((X0 - ref_mean[:, None]) ** 2 * ww).sum(1), rtol=1e-11)


@pytest.mark.parametrize("kernels", _builds("_stats"))
def test_moments_rows_non_finite_semantics(kernels):
    X = np.array([[1.0, np.inf, 2.0], [1.0, -np.inf, np.inf], [np.nan, 1.0, 2.0],
                  [np.inf, np.inf, np.inf]])
    count, mean, m2 = _kernel_moments(kernels, X, 1)
    assert mean[0] == np.inf and np.isnan(m2[0])
    assert np.isnan(mean[1]) and np.isnan(mean[2])
    assert mean[3] == np.inf
    count, mean, m2 = _kernel_moments(kernels, X, 1, ignore_nan=True)
    assert count[2] == 2 and mean[2] == 1.5 and m2[2] == 0.5


# ======================================== the portable build, via the API ===

def test_portable_build_through_public_api():
    code = textwrap.dedent("""
        import warnings
        import numpy as np
        from fastnorm import _cpu, stats, functional as F
        from fastnorm.preprocessing import StandardScaler, scale
        assert _cpu.KERNEL_BUILD == "baseline", _cpu.KERNEL_BUILD
        warnings.simplefilter("error")
        rng = np.random.default_rng(0)
        # A
        X = rng.uniform(1e38, 3.4e38, (1000, 3)).astype(np.float32)
        m = stats.moments(X)
        X64 = X.astype(np.float64)
        assert np.allclose(m.mean, X64.mean(0), rtol=1e-13), m.mean
        s = StandardScaler().fit(X)
        assert np.isfinite(s.mean_).all() and np.isfinite(s.transform(X)).all()
        xh = np.full((2, 3, 3, 4), 9e37, np.float32)
        assert (stats.channel_moments(xh, layout="NHWC").m2 == 0).all()
        assert (F.group_norm(xh, 2, layout="NHWC") == 0).all()
        # B
        X = 1e8 + rng.standard_normal((100, 3))
        Y = scale(X)
        Z = StandardScaler().fit(X).transform(X)
        assert np.abs(Y.mean(0)).max() < 1e-15, Y.mean(0)
        assert np.abs(Z.mean(0)).max() < 1e-15, Z.mean(0)
        # C
        for n in (1000, 32768):
            assert (stats.moments(np.full((3, n), 0.1), axis=1).m2 == 0).all()
        print("ok")
    """)
    run_with_baseline_kernels(code)

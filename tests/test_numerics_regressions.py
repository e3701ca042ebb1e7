"""Regressions in the numerics of the moment and sparse kernels, each checked
against scikit-learn or float64 NumPy.

- weighted sparse StandardScaler: a constant column is constant (the
  implicit zeros' weight entered even when a column had none);
- sparse near-constant columns get a variance of exactly 0, as scikit-learn's;
- dense moments: a column of identical values has M2 exactly 0, in both the
  portable and the x86-64-v3 kernel build;
- sparse normalize(norm="max") divides by max |x|, not the signed maximum.
"""
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.preprocessing as skp
from numpy.testing import assert_allclose, assert_array_equal

import fastnorm
import fastnorm.preprocessing as fnp
from fastnorm import _cpu
from fastnorm._ext import _openmp

from conftest import assert_close, run_with_baseline_kernels

SPARSE_FORMATS = {"csr": sp.csr_matrix, "csc": sp.csc_matrix}
DTYPES = (np.float32, np.float64)


def _sparse_with_zeros_and_nans(rng, shape, dtype, density=0.3, nan_frac=0.05):
    X = rng.standard_normal(shape) * 3 + 2
    X[rng.random(shape) > density] = 0
    X[rng.random(shape) < nan_frac] = np.nan
    X[:, 0] = 5.0 + rng.standard_normal(shape[0])  # no implicit zero
    X[:, 1] = 0.0  # only implicit zeros
    return X.astype(dtype)


# ------------------------------------------- sparse StandardScaler (bug 1) ---

# scikit-learn's own dense weighted variance can round below 0 here
@pytest.mark.filterwarnings("ignore:invalid value encountered in sqrt:RuntimeWarning")
@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("constant", [0.0, 1.0, 100.0, 0.1])
def test_standard_scaler_constant_column_is_constant(fmt, dtype, weighted, constant):
    # was: weighted CSR/CSC gave var ~3e-16, scale ~1.7e-8 and 1.0 -> 5.8e7
    rng = np.random.RandomState(0)
    X = np.full((100, 3), constant, dtype=dtype)
    if fmt != "dense":
        X = SPARSE_FORMATS[fmt](X)
    fit_params = {"sample_weight": rng.uniform(size=100) * 2} if weighted else {}
    ours = fnp.StandardScaler(with_mean=False).fit(X, **fit_params)
    ref = skp.StandardScaler(with_mean=False).fit(X, **fit_params)
    # at most rounding noise, far below scikit-learn's constant-feature bound
    assert np.all(ours.var_ <= (100 * np.finfo(np.float64).eps * constant) ** 2)
    assert_allclose(ours.var_, ref.var_, atol=1e-30)
    assert_array_equal(ours.scale_, ref.scale_)
    assert_array_equal(ours.scale_, 1.0)
    Y = ours.transform(X)
    assert_array_equal(Y.toarray() if fmt != "dense" else Y,
                       X.toarray() if fmt != "dense" else X)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_col_moments_constant_column_without_implicit_zeros(fmt, weighted):
    # the kernel itself: 1.0 everywhere, explicit, many rows (several CSR blocks)
    n = 5000
    rng = np.random.default_rng(1)
    X = SPARSE_FORMATS[fmt](np.ones((n, 4)))
    w = rng.uniform(0, 2, n) if weighted else None
    count, mean, m2 = _cpu.sparse_col_moments(X, w)
    assert_allclose(count, n if w is None else w.sum(), rtol=1e-12)
    assert_allclose(mean, 1.0, rtol=1e-14)
    assert np.all(m2 <= (n * np.finfo(np.float64).eps) ** 2 * count)
    if not weighted:
        assert_array_equal(m2, 0.0)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_samples", [10, 100, 10_000])
@pytest.mark.parametrize("average", [1e-10, 1.0, 1e10])
def test_sparse_near_constant_columns_exact_zero_variance(fmt, dtype, n_samples, average):
    # scikit-learn's test_standard_scaler_near_constant_features on CSR/CSC:
    # columns whose two values round to one get a variance of exactly 0
    scales = np.array([10.0 ** i for i in range(-30, 20)], dtype=dtype)
    X = np.empty((n_samples, scales.shape[0]), dtype=dtype)
    X[: n_samples // 2] = average + scales
    X[n_samples // 2:] = average - scales
    Xs = SPARSE_FORMATS[fmt](X)
    ours = fnp.StandardScaler(with_mean=False).fit(Xs)
    ref = skp.StandardScaler(with_mean=False).fit(Xs)
    same = X[0] == X[-1]
    assert_array_equal(ours.var_[same], 0.0)
    assert_array_equal(ours.scale_[same], 1.0)
    assert_allclose(ours.var_, ref.var_, rtol=1e-7, atol=0)
    assert_allclose(ours.scale_, ref.scale_, rtol=1e-7)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_standard_scaler_matches_sklearn(rng, fmt, dtype, weighted):
    # implicit zeros, NaNs, a column without implicit zero, one of zeros only
    X = SPARSE_FORMATS[fmt](_sparse_with_zeros_and_nans(rng, (3000, 7), dtype))
    w = rng.uniform(0, 3, X.shape[0]) if weighted else None
    ours = fnp.StandardScaler(with_mean=False).fit(X, sample_weight=w)
    ref = skp.StandardScaler(with_mean=False).fit(X, sample_weight=w)
    assert_allclose(ours.mean_, ref.mean_, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_allclose(ours.var_, ref.var_, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_allclose(ours.scale_, ref.scale_, rtol=1e-5 if dtype == np.float32 else 1e-12)
    assert_allclose(ours.n_samples_seen_, ref.n_samples_seen_, rtol=1e-6)
    assert_close(ours.transform(X).toarray(), ref.transform(X).toarray(), dtype)


@pytest.mark.parametrize("weighted", [False, True])
def test_sparse_col_moments_same_for_any_thread_count(rng, weighted):
    X = sp.csr_matrix(_sparse_with_zeros_and_nans(rng, (20_000, 9), np.float64))
    w = rng.uniform(0, 2, X.shape[0]) if weighted else None
    results = []
    for n in (1, 2, 3):
        with fastnorm.config_context(n_threads=n):
            results.append(_cpu.sparse_col_moments(X, w))
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert_array_equal(a, b)
    # and against float64 NumPy on the same data
    D = X.toarray()
    ww = np.ones(D.shape[0]) if w is None else w
    ok = ~np.isnan(D)
    W = (ww[:, None] * ok).sum(0)
    mean = np.nansum(ww[:, None] * D, 0) / W
    m2 = np.nansum(ww[:, None] * (D - mean) ** 2, 0)
    count, our_mean, our_m2 = results[0]
    assert_allclose(count, W, rtol=1e-12)
    assert_allclose(our_mean, mean, rtol=1e-12, atol=1e-14)
    assert_allclose(our_m2, m2, rtol=1e-11)


# ------------------------------------------ dense moments, both builds (2) ---

def _kernel_builds():
    from fastnorm._ext import _stats
    builds = [pytest.param(_stats, id="baseline")]
    if _openmp.cpu_is_x86_64_v3():
        try:
            from fastnorm._ext import _stats_v3
        except ImportError:
            pass
        else:
            builds.append(pytest.param(_stats_v3, id="x86-64-v3"))
    return builds


def _moments_cols(kernels, X, w=None, ignore_nan=False, n_threads=2):
    n = X.shape[1]
    count, mean, m2 = np.empty(n), np.empty(n), np.empty(n)
    kernels.moments_cols(X, w, ignore_nan, n_threads, count, mean, m2)
    return count, mean, m2


@pytest.mark.parametrize("kernels", _kernel_builds())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(100, 1), (1000, 50), (659, 50), (3000, 100),
                                   (257, 1000), (100_000, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_identical_values_exact_zero_m2(kernels, dtype, shape, weighted):
    # was: ~1e-58 .. 1e-33 for many columns (the sub-chunks' means were
    # rounded differently and their merge saw a difference)
    rng = np.random.default_rng(2)
    values = np.array([0.1, 3.3, 1e-10, 1e10, -7.7, 0.0, 1.0], dtype=dtype)
    X = np.ascontiguousarray(np.broadcast_to(np.resize(values, shape[1]), shape))
    w = rng.uniform(0, 2, shape[0]) if weighted else None
    for n_threads in (1, 2):
        count, mean, m2 = _moments_cols(kernels, X, w, n_threads=n_threads)
        assert_array_equal(m2, 0.0)
        assert_array_equal(mean, X[0].astype(np.float64))


@pytest.mark.parametrize("kernels", _kernel_builds())
def test_moments_identical_values_with_nans_exact_zero_m2(kernels):
    X = np.full((3000, 40), 0.1)
    X[::7, ::3] = np.nan
    X[:20, 5] = np.nan  # leading NaNs
    count, mean, m2 = _moments_cols(kernels, X, ignore_nan=True)
    assert_array_equal(m2, 0.0)
    assert_array_equal(mean, 0.1)
    assert_array_equal(count, (~np.isnan(X)).sum(0))


@pytest.mark.parametrize("kernels", _kernel_builds())
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_moments_cols_accuracy_and_determinism(rng, kernels, dtype, weighted):
    # the fix keeps the far-from-zero accuracy and thread-count independence
    X = (1e8 + rng.standard_normal((2000, 300)) * np.linspace(1e-3, 10, 300)).astype(dtype)
    w = rng.uniform(0, 2, X.shape[0]) if weighted else None
    ref = [_moments_cols(kernels, X, w, n_threads=1)]
    for n in (2, 3):
        for a, b in zip(ref[0], _moments_cols(kernels, X, w, n_threads=n)):
            assert_array_equal(a, b)
    X64 = X.astype(np.float64)
    ww = np.ones(X.shape[0]) if w is None else w
    mean = X64[0] + (ww @ (X64 - X64[0])) / ww.sum()  # shifted: exact enough at 1e8
    m2 = ww @ (X64 - mean) ** 2
    count, our_mean, our_m2 = ref[0]
    assert_allclose(our_mean, mean, rtol=1e-15)
    assert_allclose(our_m2, m2, rtol=1e-10)  # was ~1e-7 off for mean/std = 1e11


def test_baseline_build_constant_columns_through_public_api():
    # the build picked at import: FASTNORM_KERNELS=baseline in a fresh process
    code = textwrap.dedent("""
        import numpy as np
        from fastnorm import _cpu, stats
        from fastnorm.preprocessing import StandardScaler
        assert _cpu.KERNEL_BUILD == "baseline", _cpu.KERNEL_BUILD
        for dtype in (np.float32, np.float64):
            X = np.full((1000, 50), 0.1, dtype=dtype)
            m = stats.moments(X)
            assert (m.m2 == 0).all(), m.m2
            w = np.random.default_rng(0).uniform(0, 2, 1000)
            assert (stats.moments(X, sample_weight=w).m2 == 0).all()
            # scikit-learn's near-constant data: values that round to one are constant
            scales = np.array([10.0 ** i for i in range(-30, 20)], dtype=dtype)
            X = np.empty((100, scales.size), dtype=dtype)
            X[:50] = 1e-10 + scales
            X[50:] = 1e-10 - scales
            s = StandardScaler(with_mean=False).fit(X)
            same = X[0] == X[-1]
            assert (s.var_[same] == 0).all(), s.var_[same]
            assert (s.scale_[same] == 1).all()
        print("ok")
    """)
    run_with_baseline_kernels(code)


# ------------------------------------------ sparse normalize max (bug 3) ---

def test_sparse_normalize_max_example():
    X = np.array([[-2.0, -1.0], [-3.0, 1.0]])
    expected = np.array([[-1.0, -0.5], [-1.0, 1 / 3]])
    ref = skp.normalize(sp.csr_matrix(X), norm="max").toarray()
    assert_allclose(ref, expected, rtol=1e-15)
    assert_allclose(fnp.normalize(sp.csr_matrix(X), norm="max").toarray(), expected,
                    rtol=1e-15)
    assert_allclose(fnp.Normalizer(norm="max").fit_transform(sp.csr_matrix(X)).toarray(),
                    expected, rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [1, 0])
def test_sparse_normalize_max_matches_sklearn(rng, dtype, axis):
    X = rng.standard_normal((400, 30)) * 5 - 1
    X[rng.random(X.shape) > 0.4] = 0
    X[0] = -np.abs(X[0]) - 1  # negative, no implicit zero
    X[1] = 0  # empty
    X[2] = np.abs(X[2]) + 1  # positive, no implicit zero
    X[3] = -rng.random(30)
    X[3, ::2] = 0  # negative with implicit zeros
    X = X.astype(dtype)
    if axis == 0:
        X = np.ascontiguousarray(X.T)
    S = sp.csr_matrix(X) if axis == 1 else sp.csc_matrix(X)
    ref, ref_norms = skp.normalize(S, norm="max", axis=axis, return_norm=True)
    ours, norms = fnp.normalize(S, norm="max", axis=axis, return_norm=True)
    assert ours.dtype == dtype
    assert_close(ours.toarray(), ref.toarray(), dtype)
    assert_allclose(norms, ref_norms, rtol=1e-6 if dtype == np.float32 else 1e-15)
    # the dense path agrees
    assert_close(fnp.normalize(X, norm="max", axis=axis), ref.toarray(), dtype)
    if axis == 1:
        Y = fnp.Normalizer(norm="max").fit(S).transform(S)
        assert_close(Y.toarray(), ref.toarray(), dtype)

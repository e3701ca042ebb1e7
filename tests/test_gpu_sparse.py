"""CuPy sparse input (cupyx.scipy.sparse CSR/CSC) on the GPU path, against
the CPU path on the same SciPy matrix (X.get()): the scalers that take
sparse input (StandardScaler(with_mean=False), MaxAbsScaler,
RobustScaler(with_centering=False), Normalizer), the functions (scale,
maxabs_scale, robust_scale, normalize), the sparse ops themselves, and the
errors, which must be the CPU path's word for word.

On a CUDA GPU through CuPy; elsewhere (CI) through cudasim's stand-ins for
cupy and cupyx.scipy.sparse (tests/cudasim), which refuse implicit copies to
the host as CuPy does.
"""
import pickle
import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastnorm.preprocessing as fp
from fastnorm import _cpu, functional as F, stats
from fastnorm._cuda import _ops

from cudasim import cupy_for_tests, sparse_for_tests

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cupy_installed")]

cp, _ = cupy_for_tests()  # the modules the cupy_installed fixture installs
cps = sparse_for_tests()
DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-6, np.float64: 1e-12}
FORMATS = ["csr", "csc"]


# ------------------------------------------------------------------ helpers ---

def host_sparse(rng, fmt, dtype, *, n=40, p=8, nan=True, duplicates=True, zeros_only=False):
    """A SciPy matrix with what sparse code gets wrong: an empty row, an empty
    column, a constant column without implicit zeros, NaNs (one column of
    stored NaNs only), and duplicate entries (one value stored as two
    halves, which add up exactly)."""
    dense = rng.standard_normal((n, p)) * 3 + 1
    dense[rng.random((n, p)) < 0.6] = 0.0
    dense[5] = 0.0                  # an empty row
    dense[:, 3] = 0.0               # an empty column
    dense[:, 6] = 2.5               # constant, every row stored
    if nan:
        dense[7, 1] = np.nan
        dense[2, 4] = np.nan
        dense[:, 7] = np.nan        # nothing but stored NaNs
    if zeros_only:
        dense[...] = 0.0
    X = sp.csr_matrix(dense.astype(dtype)).asformat(fmt)
    if duplicates and X.nnz:
        X = with_duplicate(X)
    return X


def with_duplicate(X):
    """X with its first stored value split into two stored halves (same
    position): a matrix not in canonical format, of the same value."""
    k = 0
    major = int(np.searchsorted(X.indptr, k, side="right") - 1)
    half = X.data[k] / 2
    data = np.concatenate([[half, half], X.data[1:]]).astype(X.dtype)
    indices = np.concatenate([[X.indices[k], X.indices[k]], X.indices[1:]])
    indptr = X.indptr.copy()
    indptr[major + 1:] += 1
    Y = type(X)((data, indices, indptr), shape=X.shape)
    assert not Y.has_canonical_format
    return Y


def to_device(X):
    """The CuPy matrix of SciPy matrix X, structure kept as it is."""
    cls = cps.csr_matrix if X.format == "csr" else cps.csc_matrix
    return cls((cp.asarray(X.data), cp.asarray(X.indices), cp.asarray(X.indptr)),
               shape=X.shape)


def on_device(a):
    assert isinstance(a, cp.ndarray), type(a)
    return cp.asnumpy(a)


def assert_sparse_equal(ours, ref, dtype, err_msg=""):
    """`ours` is a CuPy sparse matrix of `ref`'s format and dtype holding
    its values."""
    assert type(ours).__module__.startswith("cupyx."), type(ours)
    assert cps.issparse(ours)
    assert ours.format == ref.format, (ours.format, ref.format)
    assert ours.dtype == ref.dtype == dtype
    np.testing.assert_allclose(ours.get().toarray(), ref.toarray(), rtol=RTOL[dtype],
                               atol=RTOL[dtype], equal_nan=True, err_msg=err_msg)


def assert_same_error(call_cpu, call_gpu):
    """Both calls raise, the same exception type with the same message (up to
    the repr of the matrix, where the message shows it)."""
    with pytest.raises(Exception) as cpu:
        call_cpu()
    message = str(cpu.value).split(" Got <")[0]
    with pytest.raises(type(cpu.value), match=re.escape(message)):
        call_gpu()


# ------------------------------------------------------------ the sparse ops ---

@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_ops_match_the_cpu_kernels(rng, dtype, fmt, weighted):
    X = host_sparse(rng, fmt, dtype)
    X.sum_duplicates()  # the ops take canonical matrices
    G = to_device(X)
    w = rng.random(X.shape[0]) * 2 if weighted else None
    ours = _ops.sparse_col_moments(G, None if w is None else cp.asarray(w))
    for name, got, ref in zip(("count", "mean", "m2"), ours, _cpu.sparse_col_moments(X, w)):
        np.testing.assert_allclose(on_device(got), ref, rtol=1e-12, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(on_device(_ops.sparse_col_max_abs(G)),
                                  _cpu.sparse_col_max_abs(X))
    factor = rng.standard_normal(X.shape[1])
    out, ref = cp.empty_like(G.data), np.empty_like(X.data)
    _ops.sparse_scale_cols(G, cp.asarray(factor), out)
    _cpu.sparse_scale_cols(X, factor, ref)
    np.testing.assert_array_equal(on_device(out), ref)
    qs = [0.9, 0.1, 0.5, 0.0, 1.0, 0.37]
    np.testing.assert_allclose(on_device(_ops.sparse_col_quantiles(G.tocsc(), qs)),
                               _cpu.sparse_col_quantiles(X.tocsc(), qs), rtol=1e-15,
                               equal_nan=True)
    if fmt == "csr":
        for norm in ("l1", "l2", "max"):
            out, ref = cp.empty_like(G.data), np.empty_like(X.data)
            _ops.sparse_normalize_rows(G, norm, out)
            _cpu.sparse_normalize_rows(X, norm, ref)
            np.testing.assert_allclose(on_device(out), ref, rtol=RTOL[dtype], equal_nan=True,
                                       err_msg=norm)


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_ops_on_edge_matrices(rng, fmt):
    """Nothing stored, one row, a column with its stored values all
    negative, every value stored: the same answers as the CPU kernels."""
    cases = [sp.csr_matrix((5, 3)), sp.csr_matrix(np.array([[0.0, -2.0, 3.0]])),
             sp.csr_matrix(np.array([[-1.0, 0], [-4.0, 2.0], [0, -3.0]])),
             sp.csr_matrix(rng.standard_normal((6, 4)) + 10.0),
             sp.csr_matrix((0, 3))]
    for X in cases:
        X = X.asformat(fmt)
        G = to_device(X)
        for got, ref in zip(_ops.sparse_col_moments(G), _cpu.sparse_col_moments(X)):
            np.testing.assert_allclose(on_device(got), ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(on_device(_ops.sparse_col_max_abs(G)),
                                      _cpu.sparse_col_max_abs(X))
        qs = [0.25, 0.5, 0.75]
        np.testing.assert_array_equal(on_device(_ops.sparse_col_quantiles(G.tocsc(), qs)),
                                      _cpu.sparse_col_quantiles(X.tocsc(), qs))


# ------------------------------------------------------------- transformers ---

TRANSFORMERS = [("StandardScaler", {"with_mean": False}),
                ("StandardScaler", {"with_mean": False, "with_std": False}),
                ("MaxAbsScaler", {}), ("MaxAbsScaler", {"clip": True}),
                ("RobustScaler", {"with_centering": False}),
                ("RobustScaler", {"with_centering": False, "quantile_range": (10.0, 80.0),
                                  "unit_variance": True}),
                ("Normalizer", {"norm": "l1"}), ("Normalizer", {"norm": "max"})]
FITTED = ("mean_", "var_", "scale_", "max_abs_", "center_")


@pytest.mark.parametrize("name, params", TRANSFORMERS, ids=[f"{n}-{p}" for n, p in TRANSFORMERS])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_transformers_on_sparse_match_the_cpu(rng, dtype, fmt, name, params):
    X = host_sparse(rng, fmt, dtype, nan=name != "Normalizer")  # Normalizer refuses NaN
    G = to_device(X)
    X_before, G_before = X.copy(), G.get()
    ref = getattr(fp, name)(**params).fit(X)
    ours = getattr(fp, name)(**params).fit(G)
    for attr in FITTED:
        value = getattr(ref, attr, None)
        if value is not None:  # fitted attributes live on the device
            np.testing.assert_allclose(on_device(getattr(ours, attr)), value, rtol=RTOL[dtype],
                                       equal_nan=True, err_msg=attr)
            assert getattr(ours, attr).dtype == value.dtype, attr
        else:
            assert getattr(ours, attr, None) is None, attr
    assert ours.n_features_in_ == ref.n_features_in_
    seen = getattr(ours, "n_samples_seen_", 0)  # one host number, or one per feature
    seen = on_device(seen) if isinstance(seen, cp.ndarray) else seen
    np.testing.assert_array_equal(seen, getattr(ref, "n_samples_seen_", 0))
    y = ours.transform(G)
    y_ref = ref.transform(X)
    assert_sparse_equal(y, y_ref, dtype)
    assert y is not G and y.data is not G.data
    assert_sparse_equal(G, G_before, dtype, "the input was written")
    if name != "Normalizer":
        assert_sparse_equal(ours.inverse_transform(y), ref.inverse_transform(y_ref), dtype)
    assert_sparse_equal(ours.fit_transform(G), ref.fit_transform(X), dtype)
    assert_sparse_equal(G, G_before, dtype, "the input was written")
    np.testing.assert_array_equal(X.toarray(), X_before.toarray())
    # pickled with its device state, it transforms as before
    again = pickle.loads(pickle.dumps(ours))
    assert_sparse_equal(again.transform(G), y_ref, dtype)


@pytest.mark.parametrize("fmt", FORMATS)
def test_copy_false_writes_into_the_input(rng, fmt):
    """copy=False scales the CuPy matrix's own data in place, as the CPU path
    does a SciPy matrix's (CSR for the transformers that take CSR only)."""
    X = host_sparse(rng, fmt, np.float64, duplicates=False)
    cases = [(lambda: fp.StandardScaler(with_mean=False, copy=False), True),
             (lambda: fp.MaxAbsScaler(copy=False), True),
             (lambda: fp.RobustScaler(with_centering=False, copy=False), True),
             (lambda: fp.Normalizer(copy=False), False)]
    for make, with_nan in cases:
        Xc = X.copy()
        if not with_nan:
            Xc.data = np.nan_to_num(Xc.data)
        ref_in, G = Xc.copy(), to_device(Xc)
        ref = make().fit(ref_in)
        ref_out = ref.transform(ref_in)
        ours = make().fit(G)
        out = ours.transform(G)
        assert (out is G) == (ref_out is ref_in), type(ref).__name__
        if out is G:  # written in place: the input now holds the result
            assert_sparse_equal(G, ref_in, np.float64, type(ref).__name__)
        if hasattr(ref, "inverse_transform"):
            back, back_ref = ours.inverse_transform(out), ref.inverse_transform(ref_out)
            assert (back is out) == (back_ref is ref_out)
            assert_sparse_equal(back, back_ref, np.float64)


def test_partial_fit_merges_on_the_device(rng):
    X = host_sparse(rng, "csr", np.float64, n=90)
    w = rng.random(90) * 3
    G = to_device(X)
    parts = (slice(0, 25), slice(25, 90))
    scaler, ref = fp.StandardScaler(with_mean=False), fp.StandardScaler(with_mean=False)
    for part in parts:
        scaler.partial_fit(to_device(X[part]), sample_weight=cp.asarray(w[part]))
        ref.partial_fit(X[part], sample_weight=w[part])
    for attr in ("mean_", "var_", "scale_"):
        np.testing.assert_allclose(on_device(getattr(scaler, attr)), getattr(ref, attr),
                                   rtol=1e-12, atol=1e-12, equal_nan=True, err_msg=attr)
    np.testing.assert_allclose(on_device(scaler.n_samples_seen_), ref.n_samples_seen_,
                               rtol=1e-12, atol=1e-12)  # (the NaN column: rounding only)
    # and merging batches gives what one fit gives
    whole = fp.StandardScaler(with_mean=False).fit(G, sample_weight=cp.asarray(w))
    np.testing.assert_allclose(on_device(scaler.var_), on_device(whole.var_), rtol=1e-12,
                               atol=1e-12, equal_nan=True)
    maxabs, maxabs_ref = fp.MaxAbsScaler(), fp.MaxAbsScaler()
    for part in parts:
        maxabs.partial_fit(to_device(X[part].tocsc()))
        maxabs_ref.partial_fit(X[part].tocsc())
    np.testing.assert_array_equal(on_device(maxabs.max_abs_), maxabs_ref.max_abs_)
    assert maxabs.n_samples_seen_ == maxabs_ref.n_samples_seen_ == 90
    # dense and sparse device batches merge alike
    dense_first = fp.MaxAbsScaler().partial_fit(cp.asarray(np.nan_to_num(X[:25].toarray())))
    dense_first.partial_fit(to_device(X[25:]))
    assert isinstance(dense_first.max_abs_, cp.ndarray)


# ---------------------------------------------------------------- functions ---

FUNCTIONS = [("scale", {"with_mean": False}), ("scale", {"with_mean": False, "with_std": False}),
             ("maxabs_scale", {}), ("maxabs_scale", {"axis": 1}),
             ("robust_scale", {"with_centering": False}),
             ("robust_scale", {"with_centering": False, "axis": 1,
                               "quantile_range": (5.0, 60.0)}),
             ("normalize", {}), ("normalize", {"norm": "l1", "axis": 0}),
             ("normalize", {"norm": "max"}), ("normalize", {"norm": "max", "axis": 0})]


@pytest.mark.parametrize("name, kw", FUNCTIONS, ids=[f"{n}-{k}" for n, k in FUNCTIONS])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_functions_on_sparse_match_the_cpu(rng, dtype, fmt, name, kw):
    X = host_sparse(rng, fmt, dtype, nan=name != "normalize")  # normalize refuses NaN
    G = to_device(X)
    G_before = G.get()
    ref = getattr(fp, name)(X, **kw)
    got = getattr(fp, name)(G, **kw)
    assert_sparse_equal(got, ref, dtype)
    assert_sparse_equal(G, G_before, dtype, "the input was written")
    # copy=False: into the input itself where the CPU path writes into its own
    X2, G2 = X.copy(), to_device(X)
    X2.sum_duplicates()
    G2.sum_duplicates()
    ref = getattr(fp, name)(X2, **kw, copy=False)
    got = getattr(fp, name)(G2, **kw, copy=False)
    assert_sparse_equal(got, ref, dtype)
    assert (got.data is G2.data) == (ref.data is X2.data)


def test_normalize_returns_the_max_norms(rng):
    X = host_sparse(rng, "csr", np.float64, nan=False)
    for axis, Xa in ((1, X), (0, X.tocsc())):
        Y, norms = fp.normalize(to_device(Xa), norm="max", axis=axis, return_norm=True)
        Y_ref, norms_ref = fp.normalize(Xa, norm="max", axis=axis, return_norm=True)
        assert_sparse_equal(Y, Y_ref, np.float64)
        np.testing.assert_array_equal(on_device(norms), norms_ref)


# ------------------------------------------------------------------- errors ---

def host(X):
    return X


def test_sparse_errors_are_the_cpu_paths(rng):
    """Where the CPU path refuses a SciPy matrix, the GPU path refuses the
    CuPy one with the same exception and message. Each case takes `on`,
    which puts a SciPy matrix on its side (host, or to_device)."""
    X = host_sparse(rng, "csr", np.float64)
    X.sum_duplicates()
    Xinf = X.copy()
    Xinf.data[3] = np.inf
    no_mean = fp.StandardScaler(with_mean=False)
    cases = [
        lambda on: fp.StandardScaler().fit(on(X)),                  # centring
        lambda on: fp.StandardScaler(with_mean=False).fit(on(X)).set_params(
            with_mean=True).transform(on(X)),
        lambda on: fp.StandardScaler(with_mean=False).fit(on(X)).set_params(
            with_mean=True).inverse_transform(on(X)),
        lambda on: fp.RobustScaler().fit(on(X)),
        lambda on: fp.MinMaxScaler().fit(on(X)),
        lambda on: fp.scale(on(X)),
        lambda on: fp.scale(on(X), with_mean=False, axis=1),
        lambda on: fp.minmax_scale(on(X)),
        lambda on: fp.normalize(on(X), norm="l2", return_norm=True),
        lambda on: fp.normalize(on(X)),                             # NaN
        lambda on: fp.Normalizer().fit(on(X)),                      # NaN
        lambda on: no_mean.fit(on(X[:, :5])).transform(on(X)),      # feature count
        lambda on: stats.moments(on(X)),
        lambda on: F.layer_norm(on(X), (X.shape[1],)),
        # an infinity, where NaN is allowed
        lambda on: fp.StandardScaler(with_mean=False).fit(on(Xinf)),
        lambda on: fp.MaxAbsScaler().fit(on(Xinf)),
        lambda on: fp.maxabs_scale(on(Xinf)),
        lambda on: fp.MaxAbsScaler().fit(on(X)).transform(on(Xinf)),
        lambda on: fp.MaxAbsScaler().fit(on(X)).inverse_transform(on(Xinf)),
        lambda on: fp.scale(on(Xinf), with_mean=False),
        lambda on: fp.RobustScaler(with_centering=False).fit(on(Xinf)),
    ]
    for case in cases:
        assert_same_error(lambda: case(host), lambda: case(to_device))


def test_out_is_refused_for_sparse_input(rng):
    X = host_sparse(rng, "csr", np.float64, nan=False)
    G = to_device(X)
    for name in ("scale", "maxabs_scale", "robust_scale", "normalize"):
        kw = {"with_mean": False} if name == "scale" else \
            {"with_centering": False} if name == "robust_scale" else {}
        assert_same_error(lambda: getattr(fp, name)(X, **kw, out=np.empty(X.shape)),
                          lambda: getattr(fp, name)(G, **kw, out=cp.empty(X.shape)))


def test_fitted_on_one_side_refuses_the_other(rng):
    X = host_sparse(rng, "csr", np.float64)
    G = to_device(X)
    on_gpu = fp.MaxAbsScaler().fit(G)
    on_cpu = fp.MaxAbsScaler().fit(X)
    with pytest.raises(TypeError, match="fitted on cupy arrays"):
        on_gpu.transform(X)
    with pytest.raises(TypeError, match="fitted on numpy arrays"):
        on_cpu.transform(G)
    with pytest.raises(TypeError, match="fitted on numpy arrays"):
        fp.StandardScaler(with_mean=False).fit(X).partial_fit(G)
    # a dense device array and a device sparse matrix are one side
    assert isinstance(fp.MaxAbsScaler().fit(cp.asarray(X.toarray())).transform(G).data,
                      cp.ndarray)


def test_malformed_device_matrices_are_refused(rng):
    """The ops index with the matrix's indices unchecked: an index out of
    range or a broken index pointer is a ValueError first (CuPy has no
    check_format: fastnorm checks on the device)."""
    X = host_sparse(rng, "csr", np.float64, nan=False, duplicates=False)
    G = to_device(X)
    bad_index = G.copy()
    bad_index.indices[2] = X.shape[1] + 3
    bad_pointer = G.copy()
    bad_pointer.indptr[3] = bad_pointer.indptr[4] + 1
    for bad, what in ((bad_index, "column index"), (bad_pointer, "non-decreasing")):
        for call in (lambda: fp.MaxAbsScaler().fit(bad),
                     lambda: fp.StandardScaler(with_mean=False).fit(bad),
                     lambda: fp.normalize(bad, norm="max")):
            with pytest.raises(ValueError, match=f"malformed sparse matrix.*{what}"):
                call()


def test_bool_data_is_scaled_as_float64(rng):
    """A bool matrix (CuPy's sparse matrices take bool, not integers) becomes
    float64, as scikit-learn's dtype check makes a SciPy one."""
    X = sp.csr_matrix(rng.random((12, 4)) < 0.3)
    got = fp.maxabs_scale(to_device(X))
    assert_sparse_equal(got, fp.maxabs_scale(X), np.float64)


def test_device_sparse_validation_keeps_feature_bookkeeping(rng):
    X = host_sparse(rng, "csc", np.float32)
    G = to_device(X)
    scaler = fp.RobustScaler(with_centering=False).fit(G)  # CSC needed: CSR converted
    assert scaler.n_features_in_ == X.shape[1]
    assert_same_error(lambda: fp.RobustScaler(with_centering=False).fit(X).transform(X[:, :3]),
                      lambda: scaler.transform(to_device(X[:, :3])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaler.transform(G)

"""Inputs that once gave wrong answers or confusing errors in the scaling
functions and transformers: overlapping out=, overflowing ranges, read-only
sparse data, pandas nullable columns."""
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn.preprocessing as skp

from fastnorm import preprocessing as fnp

FUNCS = ["scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize"]


@pytest.mark.parametrize("shift", [1, -1, 3])
@pytest.mark.parametrize("name", FUNCS)
def test_out_overlapping_x_partially(name, shift, rng):
    n_rows, n_cols = 400, 3
    X = rng.normal(2.0, 3.0, size=(n_rows, n_cols))
    buf = np.empty((n_rows + abs(shift)) * n_cols)
    lo = max(0, -shift) * n_cols
    A = buf[lo:lo + X.size].reshape(X.shape)
    A[...] = X
    out_at = max(0, shift) * n_cols
    out = buf[out_at:out_at + X.size].reshape(X.shape)  # X shifted by `shift` rows
    assert out is not A and np.shares_memory(out, A)
    result = getattr(fnp, name)(A, out=out)
    assert result is out
    np.testing.assert_allclose(out, getattr(skp, name)(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FUNCS)
def test_out_is_x_still_in_place(name, rng):
    X = rng.normal(2.0, 3.0, size=(50, 4))
    expected = getattr(skp, name)(X)
    assert getattr(fnp, name)(X, out=X) is X
    np.testing.assert_allclose(X, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_minmax_overflowing_range_maps_to_range_min():
    X = np.array([[1e308, 1.0], [-1e308, 2.0], [1e308, 3.0]])
    expected = skp.minmax_scale(X)
    np.testing.assert_array_equal(fnp.minmax_scale(X), expected)
    np.testing.assert_array_equal(fnp.MinMaxScaler().fit_transform(X), expected)
    assert not np.isnan(expected).any()


@pytest.mark.parametrize("make", [
    lambda: fnp.MaxAbsScaler(copy=False),
    lambda: fnp.StandardScaler(with_mean=False, copy=False),
    lambda: fnp.RobustScaler(with_centering=False, copy=False),
])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_read_only_sparse_with_copy_false(make, fmt, rng):
    X = sp.random(30, 4, density=0.5, format=fmt, random_state=0)
    X.data[:] = rng.normal(size=X.nnz)
    X.data.flags.writeable = False
    before = X.toarray()
    ours = make().fit_transform(X)
    theirs = type(make()).__mro__[1](**make().get_params()).fit_transform(X.copy())
    np.testing.assert_allclose(ours.toarray(), theirs.toarray(), rtol=1e-12)
    np.testing.assert_array_equal(X.toarray(), before)


@pytest.mark.parametrize("name", ["scale", "minmax_scale", "maxabs_scale", "robust_scale"])
def test_functions_take_pandas_nullable_with_na(name):
    frame = pd.DataFrame({"a": pd.array([1.0, None, 3.0, 4.5], dtype="Float64"),
                          "b": pd.array([1, 2, None, 7], dtype="Int64")})
    ours = getattr(fnp, name)(frame)
    np.testing.assert_allclose(ours, getattr(skp, name)(frame), rtol=1e-12, equal_nan=True)
    assert np.isnan(ours[1, 0]) and np.isnan(ours[2, 1])


@pytest.mark.parametrize("quantile_range", [(60, 90), (75, 100), (0, 20), (25, 75), (50, 50)])
def test_robust_quantile_range_not_straddling_median(quantile_range):
    X = np.array([3, 1, 4, 1.5, 5, 9, 2, 6], dtype=np.float64).reshape(-1, 1)
    ours = fnp.RobustScaler(quantile_range=quantile_range).fit(X)
    theirs = skp.RobustScaler(quantile_range=quantile_range).fit(X)
    np.testing.assert_array_equal(ours.center_, theirs.center_)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-15)
    np.testing.assert_allclose(fnp.robust_scale(X, quantile_range=quantile_range),
                               skp.robust_scale(X, quantile_range=quantile_range), rtol=1e-15)


@pytest.mark.parametrize("bad_index", [3, 10**7, -1])
@pytest.mark.parametrize("call", [
    lambda X: fnp.MaxAbsScaler().fit(X),
    lambda X: fnp.MaxAbsScaler().fit(np.ones((2, 3))).transform(X),
    lambda X: fnp.StandardScaler(with_mean=False).fit(X),
    lambda X: fnp.StandardScaler(with_mean=False).fit(np.ones((2, 3))).transform(X),
    lambda X: fnp.RobustScaler(with_centering=False).fit(X.T),  # CSC, rows out of range
    lambda X: fnp.normalize(X),
    lambda X: fnp.Normalizer().fit(np.ones((2, 3))).transform(X),
])
def test_malformed_sparse_indices_refused(call, bad_index):
    X = sp.csr_matrix((np.array([1.0, 2.0]), np.array([0, bad_index]), np.array([0, 1, 2])),
                      shape=(2, 3))
    with pytest.raises(ValueError, match="X"):
        call(X)

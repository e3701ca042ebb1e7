"""The transformer classes against scikit-learn's, which are the reference."""
import importlib
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.preprocessing as skp
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_wine
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils._test_common.instance_generator import _get_expected_failed_checks
from sklearn.utils.estimator_checks import parametrize_with_checks

from conftest import assert_close
from fastnorm import preprocessing as fnp

pytestmark = pytest.mark.filterwarnings(
    "ignore:Numerical issues:UserWarning", "ignore:All-NaN:RuntimeWarning",
    "ignore:invalid value:RuntimeWarning")

NAMES = ["StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer"]

# constructor arguments worth comparing, per class
PARAMS = {
    "StandardScaler": [{}, {"with_mean": False}, {"with_std": False},
                       {"with_mean": False, "with_std": False}],
    "MinMaxScaler": [{}, {"feature_range": (-3, 2)}, {"clip": True}],
    "MaxAbsScaler": [{}, {"clip": True}],
    "RobustScaler": [{}, {"with_centering": False}, {"with_scaling": False},
                     {"quantile_range": (10.0, 60.0)}, {"unit_variance": True}],
    "Normalizer": [{"norm": "l2"}, {"norm": "l1"}, {"norm": "max"}],
}
CASES = [(name, kw) for name in NAMES for kw in PARAMS[name]]
ATTRIBUTES = ["mean_", "var_", "scale_", "n_samples_seen_", "data_min_", "data_max_",
              "data_range_", "min_", "max_abs_", "center_", "n_features_in_"]


def pair(name, **kw):
    return getattr(fnp, name)(**kw), getattr(skp, name)(**kw)


def cond_of(X):
    """How much rounding a statistic to X's dtype can move the output."""
    with np.errstate(all="ignore"):
        spread = np.nanstd(X.astype(np.float64), axis=0)
        mag = np.nanmax(np.abs(X.astype(np.float64)), axis=0)
        c = np.where(spread > 0, mag / np.where(spread > 0, spread, 1), 1.0)
    return np.nan_to_num(np.maximum(c, 1.0), nan=1.0)


def assert_same_fit(ours, theirs, dtype):
    for attr in ATTRIBUTES:
        a, b = getattr(ours, attr, "missing"), getattr(theirs, attr, "missing")
        if isinstance(b, str) or b is None:
            assert a is b or a == b, attr
            continue
        assert np.shape(a) == np.shape(b), attr
        assert np.asarray(a).dtype == np.asarray(b).dtype, (attr, np.asarray(a).dtype,
                                                            np.asarray(b).dtype)
        # float32 data: the float32 tolerance (scikit-learn's sparse statistics
        # are float32 sums cast to float64; fastnorm's are float64 sums)
        tol = np.float32 if dtype == np.float32 else (
            np.asarray(b).dtype if np.asarray(b).dtype.kind == "f" else np.float64)
        assert_close(np.asarray(a), np.asarray(b), tol)


def data(rng, dtype, shape=(300, 6), nan=False):
    X = (rng.standard_normal(shape) * rng.uniform(0.5, 20, shape[1])
         + rng.uniform(-50, 50, shape[1])).astype(dtype)
    if nan:
        X[rng.random(shape) < 0.1] = np.nan
        X[:, 1] = np.nan  # a feature with no value
    return X


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,kw", CASES)
def test_fit_transform_inverse_match_sklearn(name, kw, dtype, rng):
    X = data(rng, dtype)
    ours, theirs = pair(name, **kw)
    got, want = ours.fit_transform(X), theirs.fit_transform(X)
    assert got.dtype == want.dtype == dtype
    assert_same_fit(ours, theirs, dtype)
    assert_close(got, want, dtype, cond=cond_of(X))
    X2 = data(rng, dtype, (50, 6))
    assert_close(ours.transform(X2), theirs.transform(X2), dtype, cond=cond_of(X2))
    if hasattr(theirs, "inverse_transform"):
        back, back_ref = ours.inverse_transform(want), theirs.inverse_transform(want)
        assert back.dtype == back_ref.dtype
        assert_close(back, back_ref, dtype, cond=cond_of(back_ref))


@pytest.mark.parametrize("name,kw", [c for c in CASES if c[0] != "Normalizer"])
def test_nan_ignored_in_fit_kept_in_transform(name, kw, rng):
    X = data(rng, np.float64, nan=True)
    ours, theirs = pair(name, **kw)
    got, want = ours.fit_transform(X), theirs.fit_transform(X)
    assert_same_fit(ours, theirs, np.float64)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(X))
    assert_close(got, want, np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_adversarial_data(name, rng):
    n = 200
    X = np.column_stack([
        np.full(n, 7.25),                           # constant
        1e8 + rng.standard_normal(n),               # mean 1e8, std 1
        rng.standard_t(1.5, n) * 1e3,               # heavy tails
        np.where(rng.random(n) < 0.5, 0.0, 1e-300),  # tiny
    ])
    for X_case in (X, X[:1]):  # and a single row
        ours, theirs = pair(name)
        got, want = ours.fit_transform(X_case), theirs.fit_transform(X_case)
        assert_same_fit(ours, theirs, np.float64)
        assert_close(got, want, np.float64, cond=cond_of(X_case))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_standard_scaler_sample_weight_with_zeros(dtype, rng):
    X = data(rng, dtype, nan=True)
    w = rng.uniform(0, 3, len(X))
    w[::7] = 0
    ours, theirs = pair("StandardScaler")
    ours.fit(X, sample_weight=w)
    theirs.fit(X, sample_weight=w)
    assert_same_fit(ours, theirs, dtype)
    # weights as repetitions
    counts = rng.integers(0, 4, len(X))
    a = fnp.StandardScaler().fit(X, sample_weight=counts.astype(float))
    b = fnp.StandardScaler().fit(np.repeat(X, counts, axis=0))
    assert_close(a.mean_, b.mean_, np.float64)
    assert_close(a.var_, b.var_, np.float64)


@pytest.mark.parametrize("name", ["StandardScaler", "MinMaxScaler", "MaxAbsScaler"])
@pytest.mark.parametrize("n_batches", [2, 7])
def test_partial_fit_in_batches_equals_one_fit(name, n_batches, rng):
    X = data(rng, np.float64, (500, 5), nan=True)
    X[:, 0] += 1e6  # far from zero: merging must stay exact
    whole = getattr(fnp, name)().fit(X)
    batched = getattr(fnp, name)()
    for part in np.array_split(X, n_batches):
        batched.partial_fit(part)
    sk_batched = getattr(skp, name)()
    for part in np.array_split(X, n_batches):
        sk_batched.partial_fit(part)
    assert_same_fit(batched, whole, np.float64)
    assert_same_fit(batched, sk_batched, np.float64)


def test_partial_fit_weighted_batches(rng):
    X = data(rng, np.float64, (400, 4), nan=True)
    w = rng.uniform(0, 2, len(X))
    whole = fnp.StandardScaler().fit(X, sample_weight=w)
    batched = fnp.StandardScaler()
    for idx in np.array_split(np.arange(len(X)), 5):
        batched.partial_fit(X[idx], sample_weight=w[idx])
    assert_same_fit(batched, whole, np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_input_not_modified_unless_copy_false(name, rng):
    X = data(rng, np.float64)
    X0 = X.copy()
    est = getattr(fnp, name)().fit(X)
    out = est.transform(X)
    np.testing.assert_array_equal(X, X0)
    assert not np.shares_memory(out, X)
    ro = X.copy()
    ro.flags.writeable = False
    np.testing.assert_array_equal(est.transform(ro), out)
    # copy=False works in place, as scikit-learn's does
    inplace = getattr(fnp, name)(copy=False).fit(X)
    Xc = X.copy()
    res = inplace.transform(Xc)
    ref = getattr(skp, name)(copy=False).fit(X).transform(X.copy())
    assert np.shares_memory(res, Xc)
    assert_close(res, ref, np.float64)


@pytest.mark.parametrize("layout", ["F", "strided"])
@pytest.mark.parametrize("name", NAMES)
def test_layouts(name, layout, rng):
    X = data(rng, np.float32, (200, 12))
    Xl = np.asfortranarray(X) if layout == "F" else X[::2, ::3]
    ours, theirs = pair(name)
    assert_close(ours.fit_transform(Xl), theirs.fit_transform(Xl), np.float32,
                 cond=cond_of(Xl))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input(name, rng):
    X = data(rng, np.float64)
    est = getattr(fnp, name)()
    if name != "Normalizer":
        with pytest.raises(NotFittedError):
            est.transform(X)
    est.fit(X)
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :3])
    Xinf = X.copy()
    Xinf[3, 2] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        getattr(fnp, name)().fit(Xinf)
    if name != "Normalizer":
        with pytest.raises(ValueError, match="infinity"):
            est.transform(Xinf)
    with pytest.raises(ValueError):
        getattr(fnp, name)().fit(np.empty((0, 3)))


def test_bad_parameters(rng):
    X = data(rng, np.float64)
    with pytest.raises(ValueError, match="feature range"):
        fnp.MinMaxScaler(feature_range=(2, 1)).fit(X)
    with pytest.raises(ValueError, match="quantile range"):
        fnp.RobustScaler(quantile_range=(80.0, 20.0)).fit(X)
    with pytest.raises(ValueError, match="norm"):
        fnp.Normalizer(norm="l3").fit(X)
    with pytest.raises(ValueError, match="sample_weight|Negative"):
        fnp.StandardScaler().fit(X, sample_weight=-np.ones(len(X)))
    with pytest.raises(ValueError, match="sample_weight|shape"):
        fnp.StandardScaler().fit(X, sample_weight=np.ones(len(X) - 1))


SPARSE_KW = {"StandardScaler": {"with_mean": False}, "RobustScaler": {"with_centering": False},
             "MaxAbsScaler": {}, "Normalizer": {}}


def sparse_data(rng, dtype, fmt, shape=(300, 7), nan=True, index_dtype=np.int32):
    X = sp.random(*shape, density=0.3, format=fmt, random_state=rng, dtype=np.float64)
    X.data = (X.data * 40 - 10).astype(dtype)
    if nan:
        X.data[rng.random(X.nnz) < 0.05] = np.nan
    X.indices = X.indices.astype(index_dtype)
    X.indptr = X.indptr.astype(index_dtype)
    return X


def assert_same_sparse(got, want, dtype):
    assert sp.issparse(got) and got.format == want.format and got.dtype == want.dtype
    assert_close(got.toarray(), want.toarray(), dtype)


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(SPARSE_KW))
def test_sparse_matches_sklearn(name, dtype, fmt, index_dtype, rng):
    X = sparse_data(rng, dtype, fmt, nan=name != "Normalizer", index_dtype=index_dtype)
    X0 = X.copy()
    ours, theirs = pair(name, **SPARSE_KW[name])
    got, want = ours.fit_transform(X), theirs.fit_transform(X)
    assert_same_fit(ours, theirs, dtype)
    assert_same_sparse(got, want, dtype)
    assert_close(X.toarray(), X0.toarray(), dtype)  # input untouched
    if hasattr(theirs, "inverse_transform"):
        assert_same_sparse(ours.inverse_transform(want), theirs.inverse_transform(want), dtype)


def test_sparse_standard_scaler_weights_and_batches(rng):
    X = sparse_data(rng, np.float64, "csr", shape=(600, 5))
    w = rng.uniform(0, 2, X.shape[0])
    w[::5] = 0
    for kw in ({"with_mean": False}, {"with_mean": False, "with_std": False}):
        ours, theirs = pair("StandardScaler", **kw)
        ours.fit(X, sample_weight=w)
        theirs.fit(X, sample_weight=w)
        assert_same_fit(ours, theirs, np.float64)
        batched = fnp.StandardScaler(**kw)
        sk_batched = skp.StandardScaler(**kw)
        for idx in np.array_split(np.arange(X.shape[0]), 4):
            batched.partial_fit(X[idx], sample_weight=w[idx])
            sk_batched.partial_fit(X[idx], sample_weight=w[idx])
        assert_same_fit(batched, ours, np.float64)
        assert_same_fit(batched, sk_batched, np.float64)


def test_sparse_max_abs_batches_and_clip(rng):
    X = sparse_data(rng, np.float64, "csc", shape=(400, 6))
    batched = fnp.MaxAbsScaler(clip=True)
    for part in (X[:150], X[150:]):
        batched.partial_fit(part)
    ref = skp.MaxAbsScaler(clip=True).fit(X)
    assert_same_fit(batched, ref, np.float64)
    assert_same_sparse(batched.transform(X * 2), ref.transform(X * 2), np.float64)


def test_sparse_duplicates_and_copy_false(rng):
    dense = np.zeros((4, 3))
    dense[0, 1] = 5.0
    # (0, 1) stored twice: scipy reads it as 2 + 3
    X = sp.csr_matrix((np.array([2.0, 3.0, -4.0]), np.array([1, 1, 2]), np.array([0, 2, 3, 3, 3])),
                      shape=(4, 3))
    for name in SPARSE_KW:
        ours, theirs = pair(name, **SPARSE_KW[name])
        assert_close(ours.fit_transform(X).toarray(),
                     theirs.fit_transform(X.toarray()), np.float64)
    Xc = sparse_data(rng, np.float64, "csr", nan=False)
    ref = skp.MaxAbsScaler(copy=False).fit(Xc).transform(Xc.copy())
    res = fnp.MaxAbsScaler(copy=False).fit(Xc).transform(Xc)
    assert res is Xc  # in place, as scikit-learn
    assert_same_sparse(res, ref, np.float64)


def test_sparse_refusals_name_the_problem(rng):
    X = sparse_data(rng, np.float64, "csr")
    with pytest.raises(ValueError, match="with_mean=False"):
        fnp.StandardScaler().fit(X)
    with pytest.raises(TypeError, match="sparse"):
        fnp.MinMaxScaler().fit(X)
    X.data[0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fnp.MaxAbsScaler().fit(X)


@pytest.mark.parametrize("name", NAMES)
def test_pipeline_clone_pickle_grid_search(name):
    X, y = load_wine(return_X_y=True)
    ours = make_pipeline(getattr(fnp, name)(), LogisticRegression(max_iter=2000))
    theirs = make_pipeline(getattr(skp, name)(), LogisticRegression(max_iter=2000))
    np.testing.assert_array_equal(ours.fit(X, y).predict(X), theirs.fit(X, y).predict(X))
    again = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(again.predict(X), ours.predict(X))
    cloned = clone(ours)
    assert type(cloned.steps[0][1]) is getattr(fnp, name)
    grid = GridSearchCV(ours, {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
    grid_ref = GridSearchCV(theirs, {"logisticregression__C": [0.1, 1.0]}, cv=3).fit(X, y)
    assert grid.best_params_ == grid_ref.best_params_
    assert grid.best_score_ == pytest.approx(grid_ref.best_score_)
    ct = ColumnTransformer([("s", getattr(fnp, name)(), [0, 1, 2])], remainder="passthrough")
    ct_ref = ColumnTransformer([("s", getattr(skp, name)(), [0, 1, 2])],
                               remainder="passthrough")
    assert_close(ct.fit_transform(X), ct_ref.fit_transform(X), np.float64)


@pytest.mark.parametrize("name", NAMES)
def test_feature_names_out(name):
    est = getattr(fnp, name)().fit(np.ones((3, 2)) * [[1], [2], [3]])
    np.testing.assert_array_equal(est.get_feature_names_out(), ["x0", "x1"])


def _sklearn_expected_failures(estimator):
    """The checks scikit-learn itself expects its namesake estimator to fail."""
    return _get_expected_failed_checks(getattr(skp, type(estimator).__name__)())


@parametrize_with_checks([getattr(fnp, name)() for name in NAMES],
                         expected_failed_checks=_sklearn_expected_failures)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("transform", ["pandas", "polars"])
@pytest.mark.parametrize("name", NAMES)
def test_set_output_dataframes(name, transform, rng):
    lib = importlib.import_module(transform)  # both are in the test extra
    X = data(rng, np.float64, (40, 3))
    frame = lib.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2]})
    ours = getattr(fnp, name)().set_output(transform=transform)
    theirs = getattr(skp, name)().set_output(transform=transform)
    got, want = ours.fit_transform(frame), theirs.fit_transform(frame)
    assert type(got) is type(want)
    assert list(got.columns) == ["a", "b", "c"]
    np.testing.assert_array_equal(ours.feature_names_in_, ["a", "b", "c"])
    assert_close(np.asarray(got), np.asarray(want), np.float64)


@pytest.mark.parametrize("density", [0.05, 0.6, 1.0])
@pytest.mark.parametrize("quantile_range", [(25.0, 75.0), (0.0, 100.0), (10.0, 35.0)])
def test_sparse_robust_quantiles_count_the_zeros(density, quantile_range, rng):
    X = sp.random(97, 6, density=density, format="csc", random_state=rng)
    X.data = X.data * 10 - 4  # negatives, positives and the implicit zeros between
    X.data[::11] = np.nan
    dense_col = sp.csc_matrix(np.full((97, 1), np.nan))  # a column of NaNs only
    X = sp.hstack([X, dense_col], format="csc")
    kw = {"with_centering": False, "quantile_range": quantile_range}
    ours, theirs = pair("RobustScaler", **kw)
    ours.fit(X)
    theirs.fit(X)
    assert_same_fit(ours, theirs, np.float64)

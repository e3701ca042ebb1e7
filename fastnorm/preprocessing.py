"""scikit-learn's scaling functions, on fastnorm's multithreaded kernels.

Each function takes the same arguments, defaults and semantics as its
namesake in `sklearn.preprocessing` (NaNs are ignored by the statistics and
kept in the output; near-constant features are scaled by 1; float32 stays
float32), for dense arrays. Differences:

- every function also takes a keyword-only ``out=`` array (X's shape and
  dtype) to write the result into without allocating;
- statistics are accumulated in float64 even for float32 input, so results
  can differ from scikit-learn's in the last float32 digits (they are closer
  to the exact answer); min-max scaling is computed as
  ``(x - data_min) * scale + range_min``, which stays accurate for data far
  from zero;
- float16 input is computed in float32 and returned in float16.

Arguments are checked by scikit-learn's own parameter validation (the same
InvalidParameterError and messages); sparse input is taken where
scikit-learn takes it; with scikit-learn's array API dispatch on, arrays of
another namespace (torch, array-api-strict, ...) go to scikit-learn's own
function.
"""
import numpy as np
import sklearn.preprocessing._data as _sk
from sklearn.utils._param_validation import validate_parameter_constraints

from . import _backend, _docs
from ._chunked import partial_fit_chunks
from ._common import FLOAT_DTYPES, _canonical, _minmax_shift, _scale_sparse_cols
from ._functions import (
    _AXIS,
    _apply,
    _handle_zeros_in_scale,
    _prepare,
    _sklearn_function,
    normalize,
)
# The transformer classes (scikit-learn's estimators on these kernels): the
# functions take their parameter checks and sparse paths from them
from ._scalers import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from ._validation import (
    check_bool,
    check_range_pair,
    check_sparse,
    raise_if_not_finite,
    warn_on_overflow,
)

__all__ = ["scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize",
           "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer",
           "partial_fit_chunks"]



@_sklearn_function({"X": ["array-like", "sparse matrix"], "axis": _AXIS, "with_mean": ["boolean"],
                    "with_std": ["boolean"], "copy": ["boolean"]},
                   prefer_skip_nested_validation=True)
def scale(X, *, axis=0, with_mean=True, with_std=True, copy=True, out=None):
    """Standardize X along `axis`: center to the mean, scale to unit variance.

    As sklearn.preprocessing.scale: the mean and the (biased) standard
    deviation ignore NaNs, features with a standard deviation under 10 eps
    get scale 1, ``copy=False`` scales in place when X is a writeable float
    array. X may be 1-D (then axis must be 0). Sparse X (CSR/CSC) is scaled
    without centering (``with_mean=False``), along axis 0, as in scikit-learn.
    float64 X is centred on its mean held as two doubles, so data far from
    zero for its spread (1e8 + N(0, 1)) keeps its digits, as scikit-learn's
    re-centring keeps them.
    """
    if _backend.is_sparse(X):
        return _scale_sparse(X, axis, with_mean, with_std, copy, out)
    with_mean = check_bool(with_mean, "with_mean")
    with_std = check_bool(with_std, "with_std")
    X, X2, axis, Y, Y2 = _prepare(X, axis, copy, out)
    ops = _backend.ops_for(X, out, name="X")
    if not (with_mean or with_std):
        raise_if_not_finite(X2, allow_nan=True)
        if Y is not X:
            Y[...] = X
        return Y
    # float64: centred on the mean as two terms, (x - mean) - mean_lo, so that
    # the mean's rounding (half an ulp of 1e8 for 1e8 + N(0, 1)) does not
    # reach every output (scikit-learn re-centres the result instead)
    mean_lo = 0.0
    if with_mean and X.dtype == np.float64:
        count, mean, m2, mean_lo = ops.moments(X2, axis, None, ignore_nan=True, mean_lo=True)
    else:
        count, mean, m2 = ops.moments(X2, axis, None, ignore_nan=True)
    if not np.isfinite(mean).all():  # an inf, or a column that is all NaN
        raise_if_not_finite(X2, allow_nan=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean[count == 0] = np.nan
        std = np.sqrt(m2 / count).astype(X.dtype)
    warn_on_overflow("mean and variance", mean, std if with_std else None)
    shift = mean if with_mean else 0.0
    factor = 1.0 / _handle_zeros_in_scale(std, X.dtype, X.ndim == 1).astype(np.float64) \
        if with_std else 1.0
    _apply(ops, X2, axis, Y2, shift=shift, scale=factor, offset=-mean_lo * factor)
    return Y


def _scale_sparse(X, axis, with_mean, with_std, copy, out):
    """scale() of a sparse matrix, with scikit-learn's checks and errors."""
    X = check_sparse(X, accept_sparse="csc", copy=copy, ensure_2d=False,
                     estimator="the scale function", dtype=FLOAT_DTYPES,
                     ensure_all_finite="allow-nan")
    if with_mean:
        raise ValueError("Cannot center sparse matrices: pass `with_mean=False` instead"
                         " See docstring for motivation and alternatives.")
    if axis != 0:
        raise ValueError(f"Can only scale sparse matrix on axis=0,  got axis={axis}")
    if out is not None:
        raise TypeError("out= takes dense arrays; sparse X is scaled into a sparse matrix")
    if not with_std:
        return X
    X = _canonical(X)
    count, _, m2 = _backend.ops_for(X.data).sparse_col_moments(X)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = _handle_zeros_in_scale(m2 / count, np.float64, False)
    return _scale_sparse_cols(X, False, 1.0 / _backend.namespace(var).sqrt(var))


def _min_max(ops, X2, axis):
    """NaN-ignoring (min, max) in float64, NaN where all are NaN; raises on inf."""
    mn, mx, count = ops.min_max(X2, axis)
    if np.isposinf(mx).any() or np.isneginf(mn).any():
        raise ValueError(f"Input X contains infinity or a value too large for {X2.dtype!r}.")
    mn[count == 0] = np.nan
    mx[count == 0] = np.nan
    return mn, mx


def _check_estimator_params(estimator_class, **params):
    """The checks scikit-learn's function leaves to its estimator (same errors)."""
    validate_parameter_constraints(
        {name: estimator_class._parameter_constraints[name] for name in params},
        params, caller_name=estimator_class.__name__)


@_sklearn_function({"X": ["array-like"], "axis": _AXIS}, prefer_skip_nested_validation=False)
def minmax_scale(X, feature_range=(0, 1), *, axis=0, copy=True, out=None):
    """Scale each feature (axis=0) or sample (axis=1) to `feature_range`.

    As sklearn.preprocessing.minmax_scale: NaNs are ignored by min and max
    and kept; a feature whose range is under 10 eps is mapped to
    feature_range[0] + (x - min).
    """
    _check_estimator_params(MinMaxScaler, feature_range=feature_range, copy=copy)
    lo, hi = check_range_pair(
        feature_range, "feature_range",
        message="Minimum of desired feature range must be smaller than maximum. "
                f"Got {feature_range!r}.")
    X, X2, axis, Y, Y2 = _prepare(X, axis, copy, out, rows_of_1d=True)
    ops = _backend.ops_for(X, out, name="X")
    mn, mx = _min_max(ops, X2, axis)
    data_min = mn.astype(X.dtype)
    data_range = mx.astype(X.dtype) - data_min
    factor = (hi - lo) / _handle_zeros_in_scale(data_range, X.dtype, False).astype(np.float64)
    _apply(ops, X2, axis, Y2, shift=_minmax_shift(data_min, factor), scale=factor, offset=lo)
    return Y


@_sklearn_function({"X": ["array-like", "sparse matrix"], "axis": _AXIS},
                   prefer_skip_nested_validation=False)
def maxabs_scale(X, *, axis=0, copy=True, out=None):
    """Scale each feature (axis=0) or sample (axis=1) by its maximum absolute
    value, as sklearn.preprocessing.maxabs_scale (NaNs ignored and kept;
    sparse X as scikit-learn takes it)."""
    _check_estimator_params(MaxAbsScaler, copy=copy)
    if _backend.is_sparse(X):
        return _scale_sparse_with(MaxAbsScaler(copy=copy), X, axis, out)
    X, X2, axis, Y, Y2 = _prepare(X, axis, copy, out, rows_of_1d=True)
    ops = _backend.ops_for(X, out, name="X")
    mn, mx = _min_max(ops, X2, axis)
    max_abs = np.maximum(np.abs(mn), np.abs(mx)).astype(X.dtype)
    factor = 1.0 / _handle_zeros_in_scale(max_abs, X.dtype, False).astype(np.float64)
    _apply(ops, X2, axis, Y2, scale=factor)
    return Y


def _scale_sparse_with(scaler, X, axis, out):
    """A sparse matrix scaled by a fastnorm scaler along `axis`, as
    scikit-learn's maxabs_scale/robust_scale do it."""
    X = check_sparse(X, accept_sparse=("csr", "csc"), copy=False, ensure_2d=False,
                     dtype=FLOAT_DTYPES, ensure_all_finite="allow-nan")
    if out is not None:
        raise TypeError("out= takes dense arrays; sparse X is scaled into a sparse matrix")
    return scaler.fit_transform(X) if axis == 0 else scaler.fit_transform(X.T).T


@_sklearn_function({"X": ["array-like", "sparse matrix"], "axis": _AXIS},
                   prefer_skip_nested_validation=False)
def robust_scale(X, *, axis=0, with_centering=True, with_scaling=True,
                 quantile_range=(25.0, 75.0), copy=True, unit_variance=False, out=None):
    """Center to the median and scale by the quantile range, as
    sklearn.preprocessing.robust_scale (NaNs ignored by the quantiles, kept
    in the output; quantiles interpolate linearly as np.nanpercentile; sparse
    X without centering, as scikit-learn takes it)."""
    _check_estimator_params(RobustScaler, with_centering=with_centering,
                            with_scaling=with_scaling, quantile_range=quantile_range,
                            copy=copy, unit_variance=unit_variance)
    if _backend.is_sparse(X):
        return _scale_sparse_with(
            RobustScaler(with_centering=with_centering, with_scaling=with_scaling,
                         quantile_range=quantile_range, copy=copy,
                         unit_variance=unit_variance), X, axis, out)
    with_centering = check_bool(with_centering, "with_centering")
    with_scaling = check_bool(with_scaling, "with_scaling")
    unit_variance = check_bool(unit_variance, "unit_variance")
    q_min, q_max = check_range_pair(
        quantile_range, "quantile_range", low=0, high=100, strict=False,
        message=f"Invalid quantile range: {quantile_range!r}")
    X, X2, axis, Y, Y2 = _prepare(X, axis, copy, out, rows_of_1d=True)
    ops = _backend.ops_for(X, out, name="X")
    raise_if_not_finite(X2, allow_nan=True)
    # float64 quantiles and a float64 zero threshold, as sklearn (np.nanpercentile)
    q = ops.quantiles(X2, axis, [q_min / 100, 0.5, q_max / 100], ignore_nan=True)
    shift = q[1] if with_centering else 0.0
    factor = 1.0
    if with_scaling:
        iqr = _handle_zeros_in_scale(q[2] - q[0], np.float64, False)
        if unit_variance:
            from scipy.stats import norm
            iqr = iqr / (norm.ppf(q_max / 100.0) - norm.ppf(q_min / 100.0))
        factor = 1.0 / iqr.astype(np.float64)
    _apply(ops, X2, axis, Y2, shift=shift, scale=factor)
    return Y


# help(): under each function's own summary, scikit-learn's sections
# (Parameters, Returns, See Also, Notes, Examples) and fastnorm's ``out``;
# dir(): the public names only
_OUT_PARAMETER = """\
out : ndarray of the shape of X, default=None
    fastnorm only: a writeable NumPy array with X's shape and float dtype
    (float64 for integer input) that the result is written into, without
    allocating, and that is returned (``copy`` then does not matter). Dense
    NumPy input only: a TypeError for sparse X or arrays of another
    namespace.
"""
for _name in ("scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize"):
    _docs.document_function(globals()[_name], getattr(_sk, _name), _OUT_PARAMETER,
                            module=__name__)
del _name
__dir__ = _docs.public_dir(globals())

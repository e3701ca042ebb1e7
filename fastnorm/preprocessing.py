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
import functools
import inspect
from numbers import Integral

import numpy as np
import scipy.sparse as sp
import sklearn.preprocessing._data as _sk
from sklearn.utils._param_validation import (
    Options,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils.validation import check_array

from . import _backend, _docs
from ._chunked import partial_fit_chunks
from ._common import FLOAT_DTYPES, _canonical, _for_sklearn, _minmax_shift, _scale_sparse_cols
# The transformer classes (scikit-learn's estimators on these kernels): the
# functions take their parameter checks and sparse paths from them
from ._scalers import MaxAbsScaler, MinMaxScaler, Normalizer, RobustScaler, StandardScaler
from ._validation import (
    as_float_array as _as_float_array,
    check_axis,
    check_bool,
    check_choice,
    check_out,
    check_range_pair,
    output_for,
    raise_if_not_finite,
    warn_on_overflow,
)

__all__ = ["scale", "minmax_scale", "maxabs_scale", "robust_scale", "normalize",
           "StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler", "Normalizer",
           "partial_fit_chunks"]



def _sklearn_function(constraints, prefer_skip_nested_validation):
    """Give a function scikit-learn's front door: its parameter validation
    (`constraints` as in scikit-learn, plus fastnorm's ``out``), arrays of
    another array-API namespace to scikit-learn's function of the same name,
    and float16 kept (computed in float32)."""
    def decorate(function):
        sklearn_function = getattr(_sk, function.__name__)
        signature = inspect.signature(function)

        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            params = signature.bind(*args, **kwargs)
            params.apply_defaults()
            params = params.arguments
            X = params["X"]
            if _for_sklearn(X):
                if params.pop("out") is not None:
                    raise TypeError("out= takes NumPy arrays; it cannot be used with "
                                    f"{type(X).__module__} input")
                return sklearn_function(**params)
            if isinstance(X, np.ndarray) and X.dtype == np.float16:
                return _in_float32(function, params)
            return function(**params)
        checked = validate_params({**constraints, "out": ["array-like", None]},  # check_out
                                  prefer_skip_nested_validation=prefer_skip_nested_validation)(wrapper)
        checked.unchecked = function  # for callers whose arguments are known good
        return checked
    return decorate


def _in_float32(function, params):
    """function(**params) for float16 X: computed on a float32 copy, the
    result stored in float16 (into `out`, or into X when copy=False)."""
    X, out, copy = params["X"], params["out"], params["copy"]
    if out is not None:
        check_out(out, X)
    result = function(**{**params, "X": X.astype(np.float32), "out": None, "copy": False})
    Y, norms = result if isinstance(result, tuple) else (result, None)
    target = out if out is not None else X if not copy and X.flags.writeable else None
    if target is None:
        target = Y.astype(np.float16)
    else:
        target[...] = Y
    return target if norms is None else (target, norms.astype(np.float16))


def _handle_zeros_in_scale(scale, dtype, scalar):
    """scikit-learn's rule: scales under 10 eps of X's dtype become 1 (only an
    exact 0 for the scalar statistics of 1-D input)."""
    scale = _backend.namespace(scale).array(scale, dtype=dtype)
    if scalar:
        scale[scale == 0] = 1
    else:
        scale[scale < 10 * np.finfo(dtype).eps] = 1
    return scale


def _prepare(X, axis, copy, out, *, allow_1d=True, rows_of_1d=False):
    """Validate X, axis and copy; return (X, 2-D view, axis, output, 2-D output).

    1-D X is one feature (a column). rows_of_1d: axis=1 is allowed on it and
    scales each sample alone, as sklearn's minmax/maxabs/robust_scale do.
    """
    check_bool(copy, "copy")
    X, fresh = _as_float_array(X, "X", allow_1d=allow_1d, gpu_for="fastnorm.preprocessing")
    axis = check_axis(axis, 2, allow_negative=False)
    if X.ndim == 1 and axis == 1 and not rows_of_1d:
        raise ValueError("axis=1 is out of bounds for a 1-D X (allowed: 0)")
    if out is not None and out is not X and _backend.array_library(out) == \
            _backend.array_library(X) and _backend.namespace(X).may_share_memory(out, X):
        # out overlaps X without being X: read from a copy, as NumPy's ufuncs do
        X, fresh = X.copy(), True
    Y = output_for(X, fresh, copy, out)
    if X.ndim == 1:
        return X, X[:, None], axis, Y, Y[:, None]
    return X, X, axis, Y, Y


def _apply(ops, X2, axis, Y2, shift=0.0, scale=1.0, offset=0.0):
    n = X2.shape[1] if axis == 0 else X2.shape[0]
    xp = _backend.namespace(X2)
    shift, scale, offset = (xp.broadcast_to(xp.asarray(a, dtype=np.float64), (n,))
                            for a in (shift, scale, offset))
    ops.affine(X2, axis, shift, scale, offset, Y2)


_AXIS = [Options(Integral, {0, 1})]


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
    if sp.issparse(X):
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
    X = check_array(X, accept_sparse="csc", copy=copy, ensure_2d=False,
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
        var = _sk._handle_zeros_in_scale(m2 / count, copy=False)
    return _scale_sparse_cols(X, False, 1.0 / np.sqrt(var))


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
    if sp.issparse(X):
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
    X = check_array(X, accept_sparse=("csr", "csc"), copy=False, ensure_2d=False,
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
    if sp.issparse(X):
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


@_sklearn_function({"X": ["array-like", "sparse matrix"], "norm": [StrOptions({"l1", "l2", "max"})],
                    "axis": _AXIS, "copy": ["boolean"], "return_norm": ["boolean"]},
                   prefer_skip_nested_validation=True)
def normalize(X, norm="l2", *, axis=1, copy=True, return_norm=False, out=None):
    """Scale each sample (axis=1) or feature (axis=0) to unit l1, l2 or max norm.

    As sklearn.preprocessing.normalize: X must be 2-D and finite (NaN is an
    error here, as in scikit-learn); norms under 10 eps are replaced by 1,
    and ``return_norm=True`` also returns those norms, in X's dtype. Sparse X
    (CSR, or CSC with axis=0) is normalized over its stored values; as in
    scikit-learn, ``return_norm=True`` works there only with norm="max".
    """
    if sp.issparse(X):
        return _normalize_sparse(X, norm, axis, copy, return_norm, out)
    norm = check_choice(norm, {"l1", "l2", "max"}, "norm")
    return_norm = check_bool(return_norm, "return_norm")
    X, X2, axis, Y, Y2 = _prepare(X, axis, copy, out, allow_1d=False)
    ops = _backend.ops_for(X, out, name="X")
    threshold = 10 * np.finfo(X.dtype).eps
    rows_contiguous = X2.flags.c_contiguous if axis == 1 else X2.flags.f_contiguous
    if norm != "max" and Y is not X and rows_contiguous:
        # one sweep per sample (or feature of a Fortran array): norm, then divide
        # while it is in cache. Not in place: a NaN/inf found afterwards must not
        # leave X half-scaled.
        Xk, Yk = (X2, Y2) if axis == 1 else (X2.T, Y2.T)
        norms = ops.normalize_rows(Xk, 1 if norm == "l1" else 2, threshold, Yk)
        if not np.isfinite(norms).all():
            raise_if_not_finite(X2, allow_nan=False)
        return (Y, _handle_zeros_in_scale(norms, X.dtype, False)) if return_norm else Y
    if norm == "max":
        mn, mx, count = ops.min_max(X2, axis)
        norms = np.maximum(np.abs(mn), np.abs(mx))
        if count.sum() < X2.size:
            norms[:] = np.nan  # a NaN is present: let the check below name it
    else:
        norms = ops.power_sums(X2, axis, 1 if norm == "l1" else 2)
        if norm == "l2":
            norms = np.sqrt(norms)
    if not np.isfinite(norms).all():
        raise_if_not_finite(X2, allow_nan=False)
    norms = _handle_zeros_in_scale(norms, X.dtype, False)
    _apply(ops, X2, axis, Y2, scale=1.0 / norms.astype(np.float64))
    return (Y, norms) if return_norm else Y


def _normalize_sparse(X, norm, axis, copy, return_norm, out):
    """normalize() of a sparse matrix, with scikit-learn's checks and errors."""
    X = check_array(X, accept_sparse="csc" if axis == 0 else "csr", copy=copy,
                    estimator="the normalize function", dtype=FLOAT_DTYPES,
                    force_writeable=True)
    if out is not None:
        raise TypeError("out= takes dense arrays; sparse X is normalized into a sparse matrix")
    if return_norm and norm in ("l1", "l2"):
        raise NotImplementedError("return_norm=True is not implemented for sparse "
                                  "matrices with norm 'l1' or norm 'l2'")
    rows = _canonical(X.T if axis == 0 else X)  # CSC along axis 0 is CSR of X.T
    ops = _backend.ops_for(rows.data)
    norms = ops.sparse_col_max_abs(rows.T).astype(X.dtype) if return_norm else None
    ops.sparse_normalize_rows(rows, norm, rows.data)
    Y = rows.T if axis == 0 else rows
    return (Y, norms) if return_norm else Y


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

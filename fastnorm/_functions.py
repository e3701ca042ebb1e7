"""What fastnorm.preprocessing's functions share, and `normalize`: below
both fastnorm.preprocessing (which exports the functions) and
fastnorm._scalers (whose Normalizer is `normalize`), so that neither module
imports the other's code back.

- `_sklearn_function`: scikit-learn's front door (its parameter validation,
  other array namespaces to scikit-learn, float16 computed in float32);
- `_prepare`, `_apply`, `_handle_zeros_in_scale`: argument preparation and
  the fused affine apply of every function.
"""
import functools
import inspect
from numbers import Integral

import numpy as np
import sklearn.preprocessing._data as _sk
from sklearn.utils._param_validation import (
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)

from . import _backend
from ._common import FLOAT_DTYPES, _canonical, _for_sklearn
from ._validation import (
    as_float_array as _as_float_array,
    check_axis,
    check_bool,
    check_choice,
    check_out,
    check_sparse,
    output_for,
    raise_if_not_finite,
)


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
            if "sparse matrix" not in constraints["X"] and _backend.is_sparse(X):
                # a CuPy matrix passes scikit-learn's "array-like" test, a SciPy one not
                raise InvalidParameterError(
                    f"The 'X' parameter of {function.__name__} must be an array-like. "
                    f"Got {X!r} instead.")
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
    if _backend.is_sparse(X):
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
    X = check_sparse(X, accept_sparse="csc" if axis == 0 else "csr", copy=copy,
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

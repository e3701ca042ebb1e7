"""Helpers the transformers (`fastnorm._scalers`) and the scaling functions
(`fastnorm.preprocessing`) share: which input goes where, and the sparse
and min-max pieces both compute with.
"""
import numpy as np
import sklearn
from sklearn.utils._array_api import _is_numpy_namespace, get_namespace

from . import _backend, _dask
from ._validation import check_sparse_format

# float16 is kept, as scikit-learn keeps it; the kernels see it as float32
FLOAT_DTYPES = (np.float64, np.float32, np.float16)


def _for_kernels(X):
    """X in a dtype the kernels take (float16 widened to float32 on the CPU;
    the GPU kernels take float16)."""
    if X.dtype == np.float16 and _backend.array_library(X) != "cupy":
        return X.astype(np.float32)
    return X


def _for_sklearn(X):
    """Whether X goes to scikit-learn's own implementation: an array of a
    namespace fastnorm has no kernel for (torch, array-api-strict, ...) while
    scikit-learn's array API dispatch is on. CuPy is fastnorm's own (its GPU
    path answers for it), never handed over silently."""
    if isinstance(X, np.ndarray) or not sklearn.get_config()["array_api_dispatch"] \
            or _backend.is_sparse(X) or _dask.is_dask_collection(X) \
            or _backend.array_library(X) == "cupy":
        return False
    xp, is_array_api = get_namespace(X)
    return is_array_api and not _is_numpy_namespace(xp)


def _canonical(X):
    """X (SciPy's or CuPy's) checked and without duplicate entries (scipy sums
    them; kernels read entries once). The kernels index with X's indices
    unchecked: an index out of range (scipy builds such a matrix without
    complaint) is a ValueError here, not a read out of bounds."""
    try:
        check_sparse_format(X)
    except ValueError as exc:
        raise ValueError(f"X is a malformed sparse matrix: {exc}") from None
    if getattr(X, "has_canonical_format", True):  # DOK/LIL cannot hold duplicates
        return X
    X = X.copy()
    X.sum_duplicates()
    return X


def _scale_sparse_cols(X, copy, factor):
    """X with every column multiplied by `factor` (None: unchanged), written
    into a new matrix (copy: one pass, the scaled values go straight into the
    new data array) or into X's own data."""
    X = _canonical(X)
    copy = copy or not _backend.is_writeable(X.data)  # read-only: a copy, as scikit-learn
    if factor is None or not X.nnz:
        return X.copy() if copy else X
    if not copy:
        _backend.ops_for(X.data).sparse_scale_cols(X, factor, X.data)
        return X
    data = _backend.namespace(X.data).empty_like(X.data)
    _backend.ops_for(data).sparse_scale_cols(X, factor, data)
    return type(X)((data, X.indices.copy(), X.indptr.copy()), shape=X.shape)


def _minmax_shift(data_min, factor):
    """The shift of the min-max affine (x - shift) * factor + range_min:
    data_min, except 0 where the range overflowed (factor 0), so those
    features map to range_min as scikit-learn's x * 0 + min_ does, not to
    inf * 0 = NaN."""
    overflowed = factor == 0
    if isinstance(overflowed, np.ndarray) and not overflowed.any():
        return data_min  # the common case, at a third of where's cost (small calls)
    return np.where(overflowed, 0.0, data_min)

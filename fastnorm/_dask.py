"""Dask input: per-chunk statistics on the workers, merged in a tree; lazy
transforms.

A Dask array (or DataFrame) passed to a fastnorm transformer or statistic is
never gathered: each row chunk's statistics (`Moments`, min/max) are
computed where the chunk lives, with fastnorm's kernels, and merged pairwise
in a tree of Dask tasks (Chan's formula: exact to rounding). Only the merged
statistics, one row per feature, come back. Transforms map each chunk
through the fitted NumPy transformer and stay lazy: a Dask DataFrame in
gives a Dask DataFrame out (same index and divisions, columns
get_feature_names_out()), and so does a "pandas" set_output config; a
"polars" one, which only an in-memory result could honour, is refused.
Whatever scheduler is active runs the tasks: a `distributed.Client` if one
is set up, else Dask's threads.

Dask is optional: nothing here imports it until a Dask collection is seen.
"""
import copy

import numpy as np

from ._moments import Moments, column_moments

FLOAT_DTYPES = (np.float64, np.float32)


def is_dask_collection(X):
    """Whether X is a Dask array or DataFrame (read off its type: no import)."""
    return type(X).__module__.split(".")[0] == "dask"


def _is_dataframe(X):
    return hasattr(X, "columns") and hasattr(X, "to_dask_array")


def as_dask_array(X, name="X"):
    """(2-D Dask array with known chunk sizes and whole rows, column names or None)."""
    import dask.array as da

    columns = None
    if _is_dataframe(X):
        columns = X.columns
        X = X.to_dask_array(lengths=True)  # one pass over the partitions' lengths
    if not isinstance(X, da.Array):
        raise TypeError(f"{name}: expected a Dask array or DataFrame, got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got {X.ndim}-D "
                         f"with shape {X.shape}")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(f"{name} has unknown chunk sizes (NaN in {name}.chunks); call "
                         f"{name}.compute_chunk_sizes() first")
    if len(X.chunks[1]) > 1:
        raise ValueError(f"{name} is chunked along the features ({len(X.chunks[1])} chunks "
                         f"on axis 1); each chunk must hold whole rows: "
                         f"{name}.rechunk({{1: -1}})")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; fastnorm normalizes real numbers")
    return X, columns


def float_dtype(dtype):
    """scikit-learn's choice: float32/float64 kept, everything else float64."""
    return np.dtype(dtype) if np.dtype(dtype) in FLOAT_DTYPES else np.dtype(np.float64)


def _chunk(block, dtype):
    """A chunk as the float array the kernels take, refusing a chunk whose
    dtype differs from what the Dask array declares (mixed chunks)."""
    if block.dtype != dtype:
        raise TypeError(f"a chunk of X has dtype {block.dtype} but X declares {dtype}: "
                        "its chunks have mixed dtypes; cast with X.astype(...)")
    return np.asarray(block, dtype=float_dtype(dtype))


# per chunk, on the workers ---------------------------------------------------

# A chunk's mean is rounded at its own magnitude, and Chan's merge scales
# that rounding by the distance between the chunks' means: data with mean
# 1e8 and spread 1 would lose digits in the merge. So the chunks report
# their moments relative to one shift K (a row of X), and a chunk whose
# |mean| is far above its spread is recomputed on x - K, exactly.
CONDITION_LIMIT = 1e3


def _first_row(block):
    row = np.asarray(block[0], dtype=np.float64)
    return np.where(np.isfinite(row), row, 0.0)


def _chunk_moments(block, dtype, ignore_nan, shift):
    X = _chunk(block, dtype)
    m = column_moments(X, ignore_nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(m.m2 / m.count)
        ill = np.abs(m.mean) > CONDITION_LIMIT * spread
    if ill.any():
        m = column_moments(np.subtract(X, shift, dtype=np.float64), ignore_nan)
        return m.count, m.mean, m.m2
    return m.count, m.mean - shift, m.m2


def _merge_moments(a, b):
    m = Moments(*a).merge(Moments(*b))
    return m.count, m.mean, m.m2


def _chunk_min_max(block, dtype):
    from . import _backend
    X = _chunk(block, dtype)
    if X.shape[0] == 0:
        n = X.shape[1]
        return np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n), 0
    X = np.ascontiguousarray(X)
    mn, mx, count = _backend.ops_for(X).min_max(X, 0)
    return mn, mx, count, X.shape[0]


def _merge_min_max(a, b):
    return np.fmin(a[0], b[0]), np.fmax(a[1], b[1]), a[2] + b[2], a[3] + b[3]


# Tasks get fresh keys (pure=False): a fit reads its data again rather than
# picking up results of an earlier fit that the cluster still holds.

def _tree(parts, merge):
    """Pairwise tree of merge tasks over `parts` (Dask delayed objects)."""
    import dask

    merge = dask.delayed(merge, pure=False)
    while len(parts) > 1:
        parts = [merge(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def _compute(task):
    """Run the task graph; a cluster lost on the way is named as such."""
    import dask

    try:
        return dask.compute(task)[0]
    except Exception as exc:
        module = type(exc).__module__.split(".")[0]
        if module == "distributed" or type(exc).__name__ in ("CancelledError",
                                                               "FutureCancelledError"):
            raise RuntimeError(
                f"the Dask computation failed in the cluster ({type(exc).__name__}: {exc}); "
                "the cluster or a worker went away, or a worker kept dying") from exc
        raise


def chunk_moments(X, ignore_nan=True):
    """(count, mean, m2) per column of Dask array X, float64 NumPy arrays."""
    import dask

    if X.shape[0] == 0:
        n = X.shape[1]
        return np.zeros(n), np.full(n, np.nan), np.zeros(n)
    blocks = [b for b, rows in zip(X.to_delayed().ravel(), X.chunks[0]) if rows]
    # the shift, a task of the same graph: the first row's finite values
    shift = dask.delayed(_first_row, pure=False)(blocks[0])
    fn = dask.delayed(_chunk_moments, pure=False)
    parts = [fn(b, X.dtype, ignore_nan, shift) for b in blocks]
    (count, mean, m2), shift = _compute((_tree(parts, _merge_moments), shift))
    return count, mean + shift, m2


def chunk_min_max(X):
    """(min, max, non-NaN count, rows) per column of Dask array X (NaN skipped)."""
    import dask

    fn = dask.delayed(_chunk_min_max, pure=False)
    parts = [fn(b, X.dtype) for b in X.to_delayed().ravel()]
    if not parts:
        n = X.shape[1]
        return np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n), 0
    return _compute(_tree(parts, _merge_min_max))


# transformers ----------------------------------------------------------------

def check_features(estimator, X, columns, reset):
    """scikit-learn's n_features_in_ / feature_names_in_ bookkeeping, on the
    collection's metadata (no data is read)."""
    from sklearn.utils.validation import _check_feature_names, _check_n_features

    meta = X._meta if columns is None else _meta_frame(columns, X.shape[1])
    _check_feature_names(estimator, meta, reset=reset)
    _check_n_features(estimator, np.empty((0, X.shape[1])), reset=reset)


def _meta_frame(columns, n):
    import pandas as pd
    return pd.DataFrame(np.empty((0, n)), columns=columns)


def _transform_chunk(block, estimator, method):
    return getattr(estimator, method)(block)


def _transform_partition(part, estimator, method, columns):
    import pandas as pd
    return pd.DataFrame(getattr(estimator, method)(part.to_numpy()), index=part.index,
                        columns=columns)


def transform_output(estimator):
    """scikit-learn's set_output config for estimator.transform, as far as a
    lazy result can honour it: "default" or "pandas" (a Dask DataFrame).
    "polars" has no lazy counterpart and would mean gathering X: ValueError."""
    from sklearn.utils._set_output import _get_output_config

    config = _get_output_config("transform", estimator)["dense"]
    if config not in ("default", "pandas"):
        raise ValueError(
            f"{type(estimator).__name__}.transform of a Dask collection cannot honour "
            f"transform_output={config!r} (set_output / sklearn.set_config) without "
            "gathering the data into memory: use 'pandas' for a lazy Dask DataFrame, "
            f"'default', or compute X first to get a {config} DataFrame.")
    return config


def lazy_transform(estimator, X, method):
    """estimator.<method> of every chunk of X, lazily: a Dask DataFrame (the
    input's index and divisions, columns get_feature_names_out()) for a Dask
    DataFrame in, or for transform under a "pandas" output config (see
    `transform_output`); else a Dask array. inverse_transform ignores the
    output config, as in scikit-learn.

    The chunks go through the fitted NumPy transformer itself (a shallow
    copy that never writes into a chunk and that does not expect column
    names: the chunks are plain arrays).
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(estimator)
    frame_in = _is_dataframe(X)
    config = transform_output(estimator) if method == "transform" else "default"
    frame_out = frame_in or config == "pandas"
    if frame_in:  # no as_dask_array: its pass over the partition lengths would not be lazy
        dtype = X._meta.to_numpy().dtype  # the partitions' common dtype
        if dtype.kind not in "biuf":
            raise TypeError(f"X has dtype {dtype}; fastnorm normalizes real numbers")
    else:
        X, _ = as_dask_array(X)
        dtype = X.dtype
    n_features = len(X.columns) if frame_in else X.shape[1]
    if method == "transform":  # as in memory: feature names and count checked against fit
        check_features(estimator, X, None, reset=False)
    elif n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input.")
    worker_copy = copy.copy(estimator)
    worker_copy.copy = True
    if hasattr(worker_copy, "feature_names_in_"):
        del worker_copy.feature_names_in_
    # chunks come back as arrays whatever the config where they run (the
    # copy's own dict, not the estimator's: the copy is shallow)
    worker_copy.__dict__.pop("_sklearn_output_config", None)
    worker_copy.set_output(transform="default")
    dtype = float_dtype(dtype)
    columns = list(estimator.get_feature_names_out()) if frame_out else None
    if frame_in:
        import pandas as pd
        meta = pd.DataFrame(np.empty((0, len(columns)), dtype), index=X._meta.index,
                            columns=columns)
        return X.map_partitions(_transform_partition, worker_copy, method, columns, meta=meta)
    Z = X.map_blocks(_transform_chunk, worker_copy, method, dtype=dtype,
                     meta=np.empty((0, 0), dtype))
    if frame_out:
        import dask.dataframe as dd
        return dd.from_dask_array(Z, columns=columns)  # divisions from the known chunks
    return Z

"""Dask input: per-chunk statistics on the workers, merged in one compute;
lazy transforms.

A Dask array (or DataFrame) passed to a fastnorm transformer or statistic is
never gathered: each row chunk's statistics (moments, min/max) are computed
where the chunk lives, with fastnorm's kernels (on the worker's idle threads
when it has fewer chunk tasks than threads), and merged with the exact
many-group formula (Chan et al.: exact to rounding) in wide merge tasks of
up to FAN_IN results, the last ones here: one graph, computed once. Only
statistics, a few rows per feature and chunk, travel. Transforms map each chunk
through the fitted NumPy transformer and stay lazy: a Dask DataFrame in
gives a Dask DataFrame out (same index and divisions, columns
get_feature_names_out()), and so does a "pandas" set_output config; a
"polars" one, which only an in-memory result could honour, is refused.
Whatever scheduler is active runs the tasks: a `distributed.Client` if one
is set up, else Dask's threads.

Dask is optional: nothing here imports it until a Dask collection is seen.
"""
import contextlib
import copy
import sys
import threading
import uuid

import numpy as np

from . import _backend
from ._config import config_context, effective_n_threads

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

# A fit is one Dask graph, computed once: one task per row chunk (a blockwise
# layer, which Dask's optimizer fuses with the tasks that make the chunks,
# and which the scheduler runs where each chunk lives) reduces its chunk to a
# small packed array of statistics; when there are more than FAN_IN of them,
# merge tasks fold groups of FAN_IN consecutive results (no tree of tiny
# pairwise merges); the last FAN_IN or fewer come back and are folded here.

FAN_IN = 32                    # results merged by one task (and at the end, here)
FAN_IN_BYTES = 32 * 2**20      # ... but no more than this many bytes of them

# Moments travel relative to a shift: a chunk reports (count, K, mean - K,
# M2), K being the kernel's own shift (a value of the chunk's data), so the
# mean is the double-double K + (mean - K) and never rounded at its own
# magnitude: data with mean 1e8 and spread 1 merges without losing digits,
# with no common shift to agree on first.
_N_MOMENT_ROWS = 4
_N_MIN_MAX_ROWS = 3

_lock = threading.Lock()
_running = 0  # chunk tasks running in this process now


def _worker_load():
    """(threads, tasks executing) of the distributed worker running this
    task, or None outside one (Dask's local thread pool)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        state = distributed.get_worker().state
        return state.nthreads, len(state.executing)
    except (ValueError, AttributeError):
        return None


@contextlib.contextmanager
def _task_threads():
    """The kernel threads of a chunk task: the worker's threads shared by the
    tasks running on it now (on a distributed worker, all its executing
    tasks; elsewhere, the chunk tasks of this process). A worker with fewer
    tasks than threads lends each task its idle threads; a busy one runs each
    on one thread (no OpenMP team per task on top of Dask's threads: no
    oversubscription). Results do not depend on it (kernels merge in a fixed
    order)."""
    global _running
    with _lock:
        _running += 1
        running = _running
    try:
        load = _worker_load()
        budget, running = (load[0], max(running, load[1])) if load \
            else (effective_n_threads(), running)
        with config_context(n_threads=max(1, budget // running)):
            yield
    finally:
        with _lock:
            _running -= 1


def _chunk_moments(block, dtype, ignore_nan):
    """(1, 4 * n_features) float64: count, K, mean - K, M2 of one chunk."""
    X = np.ascontiguousarray(_chunk(block, dtype))
    with _task_threads():
        count, mean, m2, lo = _backend.ops_for(X).moments(X, 0, None, ignore_nan,
                                                          mean_lo=True)
    # the kernel's double-double mean (mean + lo) as shift and remainder
    return np.concatenate([count, mean, lo, m2])[None, :]


def _chunk_min_max(block, dtype):
    """(1, 3 * n_features) float64: NaN-ignoring min, max, non-NaN count."""
    X = np.ascontiguousarray(_chunk(block, dtype))
    if X.shape[0] == 0:
        n = X.shape[1]
        return np.concatenate([np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n)])[None, :]
    with _task_threads():
        mn, mx, count = _backend.ops_for(X).min_max(X, 0)
    return np.concatenate([mn, mx, count])[None, :]


def _merge_moments(parts):
    """Fold packed moments (k, 4, n), in order, into one (4, n): the means
    relative to the first non-empty part's shift K0, then the exact
    many-group formula (Chan et al.): mean = K0 + sum(n_i d_i) / n,
    M2 = sum(M2_i) + sum(n_i (d_i - d)^2)."""
    count, shift, rel, m2 = np.moveaxis(parts, 1, 0)
    seen = count > 0
    first = np.argmax(seen, axis=0)
    cols = np.arange(count.shape[1])
    k0 = shift[first, cols]
    total = count.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        # an empty part is the identity: its shift and NaN/0 moments stay out
        d = np.where(seen, (shift - k0) + rel, 0.0)
        mean = (count * d).sum(axis=0) / total
        spread = np.where(seen, count * (d - mean) ** 2, 0.0)
        out_m2 = np.where(seen, m2, 0.0).sum(axis=0) + spread.sum(axis=0)
    mean = np.where(total > 0, mean, 0.0)
    return np.stack([total, k0, mean, out_m2])


def _merge_min_max(parts):
    mn, mx, count = np.moveaxis(parts, 1, 0)
    return np.stack([np.fmin.reduce(mn, axis=0), np.fmax.reduce(mx, axis=0),
                     count.sum(axis=0)])


def _two_sum(a, b):
    """(a + b rounded, its rounding error), exactly (Knuth's TwoSum): the same
    as fastnorm._cpu.two_sum, which this layer does not import."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        b_virtual = s - a
        a_virtual = s - b_virtual
        return s, (a - a_virtual) + (b - b_virtual)


def _merge_task(merge, rows, *parts):
    """A merge task: packed results in, one packed result (1, rows * n) out."""
    stacked = np.stack([np.asarray(p).reshape(rows, -1) for p in parts])
    return merge(stacked).reshape(1, -1)


def _reduce_chunks(X, per_chunk, args, merge, rows):
    """Every chunk of X through per_chunk(block, *args) where it lives, the
    results folded with merge, in one compute; returns merge's (rows, n)."""
    import dask

    n = X.shape[1]
    # fresh keys (a unique name): a fit reads its data again rather than
    # picking up results of an earlier fit that the cluster still holds
    name = f"fastnorm-{per_chunk.__name__.strip('_')}-{uuid.uuid4().hex}"
    stats = X.map_blocks(per_chunk, *args, name=name, dtype=np.float64,
                         chunks=((1,) * len(X.chunks[0]), (rows * n,)),
                         meta=np.empty((0, 0), np.float64))
    parts = list(stats.to_delayed().ravel())
    fan_in = max(2, min(FAN_IN, FAN_IN_BYTES // max(1, rows * n * 8)))
    task = dask.delayed(_merge_task, pure=False)
    while len(parts) > fan_in:
        parts = [task(merge, rows, *parts[i:i + fan_in]) if len(parts[i:i + fan_in]) > 1
                 else parts[i] for i in range(0, len(parts), fan_in)]
    results = _compute(parts)
    return merge(np.stack([np.asarray(p).reshape(rows, -1) for p in results]))


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


def chunk_moments(X, ignore_nan=True, mean_lo=False):
    """(count, mean, m2) per column of Dask array X, float64 NumPy arrays;
    mean_lo=True: (count, mean, m2, lo), mean + lo being the mean to a few
    ulps of the data's spread (see fastnorm._cpu.moments)."""
    n = X.shape[1]
    if X.shape[0] == 0:
        out = (np.zeros(n), np.full(n, np.nan), np.zeros(n))
        return out + (np.zeros(n),) if mean_lo else out
    count, shift, rel, m2 = _reduce_chunks(X, _chunk_moments, (X.dtype, ignore_nan),
                                           _merge_moments, _N_MOMENT_ROWS)
    mean, lo = _two_sum(shift, rel)
    with np.errstate(invalid="ignore"):
        mean = np.where(count > 0, mean, np.nan)
    if not mean_lo:
        return count, mean, m2
    return count, mean, m2, np.where(np.isfinite(lo), lo, 0.0)


def chunk_min_max(X):
    """(min, max, non-NaN count, rows) per column of Dask array X (NaN skipped)."""
    n = X.shape[1]
    if X.shape[0] == 0:
        return np.full(n, np.inf), np.full(n, -np.inf), np.zeros(n), 0
    mn, mx, count = _reduce_chunks(X, _chunk_min_max, (X.dtype,), _merge_min_max,
                                   _N_MIN_MAX_ROWS)
    return mn, mx, count, X.shape[0]


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

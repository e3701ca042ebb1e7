"""Mergeable statistics: the one place every fit gets its numbers.

All statistics follow NumPy's reductions: ``axis=0`` gives one value per
column, ``axis=1`` one per row. Accumulation is in float64 whatever the
input dtype, with a two-pass (in cache) / Chan scheme, so data with mean 1e8
and standard deviation 1 still gets the right variance.
"""
from typing import NamedTuple

import numpy as np

from . import _backend, _dask
from ._docs import public_dir as _public_dir
from ._moments import Moments
from ._validation import as_float_array, check_axis, check_bool, check_sample_weight

__all__ = ["Moments", "MinMax", "moments", "channel_moments", "min_max", "max_abs",
           "quantiles"]


class MinMax(NamedTuple):
    min: np.ndarray
    max: np.ndarray


def _prepare(X, axis, name="X"):
    X, _ = as_float_array(X, name, allow_1d=True, allow_empty=True, gpu_for="fastnorm.stats")
    axis = check_axis(axis, X.ndim)
    X2 = X if X.ndim == 2 else X[:, None]
    return X2, axis, X.ndim


def _squeeze(a, ndim):
    return a.reshape(()) if ndim == 1 else a


def moments(X, axis=0, sample_weight=None, ignore_nan=False):
    """Moments of X along `axis` (0: per column, 1: per row).

    sample_weight : one non-negative weight per element along `axis`.
    ignore_nan : skip NaNs (as np.nanmean/np.nanvar); otherwise a NaN makes
        its column's mean and m2 NaN. Infinities are kept, as in NumPy.

    A 2-D Dask array (axis=0, no sample_weight) is reduced chunk by chunk
    where it lives, the chunks' moments merged in a tree of Dask tasks.
    """
    if _dask.is_dask_collection(X):
        return _dask_moments(X, axis, sample_weight, ignore_nan)
    return _moments(X, axis, sample_weight, ignore_nan)[0]


def _moments(X, axis=0, sample_weight=None, ignore_nan=False, mean_lo=False):
    """(moments(X, ...), the low part of the mean or None) for in-memory X.

    mean_lo=True: also the low part of the mean (fastnorm._cpu.moments), so
    that mean + low part is the mean to a few ulps of the data's spread;
    what centres float64 data like 1e8 + N(0, 1) without losing digits.
    """
    X2, axis, ndim = _prepare(X, axis)
    ignore_nan = check_bool(ignore_nan, "ignore_nan")
    w = check_sample_weight(sample_weight, X2.shape[axis], xp=_backend.namespace(X2))
    ops = _backend.ops_for(X2)
    lo = None
    if mean_lo:
        count, mean, m2, lo = ops.moments(X2, axis, w, ignore_nan, mean_lo=True)
        lo = _squeeze(lo, ndim)
    else:
        count, mean, m2 = ops.moments(X2, axis, w, ignore_nan)
    mean[count == 0] = np.nan
    return Moments(*(_squeeze(a, ndim) for a in (count, mean, m2))), lo


def _dask_moments(X, axis, sample_weight, ignore_nan):
    if axis != 0 or sample_weight is not None:
        raise NotImplementedError("Dask input: moments along axis=0 without sample_weight "
                                  "only (each row chunk is reduced where it lives)")
    X, _ = _dask.as_dask_array(X)
    count, mean, m2 = _dask.chunk_moments(X, ignore_nan=check_bool(ignore_nan, "ignore_nan"))
    return Moments(count, np.where(count > 0, mean, np.nan), m2)


def channel_moments(x, layout="NCHW"):
    """Per-channel Moments of a batch of images (N, C, *spatial) (layout
    "NHWC": (N, *spatial, C)), over the samples and spatial positions.

    These are the statistics batch_norm normalizes with, in a mergeable
    form. On several workers (data parallel: the idea of SyncBatchNorm),
    merge the shards' Moments into the whole batch's and normalize each
    shard with them:

        total = functools.reduce(Moments.merge, [channel_moments(s) for s in shards])
        y = F.batch_norm(shard, total.mean, total.var(), w, b, training=False)

    (training=False normalizes with the given statistics; update running
    statistics with total.var(ddof=1), the unbiased variance, as torch does.)
    """
    from .functional import _batch_stats, _Channels, _float_array
    xa = _float_array(x, "x", gpu=True)
    ch = _Channels(xa, layout, 2, pooled=True, name="x")
    count = float(ch.N * ch.S)
    if count == 0:
        return Moments(ch.xp.zeros(ch.C), ch.xp.full(ch.C, np.nan), ch.xp.zeros(ch.C))
    mean, var = _batch_stats(ch)
    return Moments(ch.xp.full(ch.C, count), mean, var * count)


def min_max(X, axis=0, ignore_nan=False):
    """Minimum and maximum along `axis`, in X's dtype.

    ignore_nan=False: NaN where a NaN is present (np.min/np.max);
    ignore_nan=True: NaNs skipped, NaN only where all are NaN (np.nanmin).
    """
    X2, axis, ndim = _prepare(X, axis)
    ignore_nan = check_bool(ignore_nan, "ignore_nan")
    if X2.shape[axis] == 0:
        raise ValueError(f"X has no values along axis {axis} (shape {X2.shape}); "
                         "min and max are undefined")
    mn, mx, count = _backend.ops_for(X2).min_max(X2, axis)
    undefined = count == 0 if ignore_nan else count < X2.shape[axis]
    mn[undefined] = np.nan
    mx[undefined] = np.nan
    return MinMax(*(_squeeze(a.astype(X2.dtype), ndim) for a in (mn, mx)))


def max_abs(X, axis=0, ignore_nan=False):
    """max(|X|) along `axis`, in X's dtype (NaN handling as in `min_max`)."""
    mn, mx = min_max(X, axis=axis, ignore_nan=ignore_nan)
    xp = _backend.namespace(mn)
    return xp.maximum(xp.abs(mn), xp.abs(mx))


def quantiles(X, q, axis=0, ignore_nan=False):
    """Quantiles `q` (fractions in [0, 1]) along `axis`, as np.quantile /
    np.nanquantile with the default 'linear' method, in float64.

    Returns shape (len(q), n) for a sequence q, (n,) for a scalar q.
    """
    X2, axis, ndim = _prepare(X, axis)
    ignore_nan = check_bool(ignore_nan, "ignore_nan")
    try:
        q_arr = np.asarray(q, dtype=np.float64)
    except (TypeError, ValueError):
        q_arr = None
    if q_arr is None or q_arr.ndim > 1 or not np.all((q_arr >= 0) & (q_arr <= 1)):
        raise ValueError(f"q must be a number or 1-D sequence of numbers in [0, 1], got {q!r}")
    if X2.shape[axis] == 0:
        raise ValueError(f"X has no values along axis {axis} (shape {X2.shape})")
    qs = np.atleast_1d(q_arr)
    res = _backend.ops_for(X2).quantiles(X2, axis, qs, ignore_nan)
    res = res.reshape((qs.size,) + (() if ndim == 1 else (X2.shape[1 - axis],)))
    return res[0] if q_arr.ndim == 0 else res


__dir__ = _public_dir(globals())  # dir(): the public names (__all__) only

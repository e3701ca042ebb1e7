"""Out-of-core fitting on one machine: partial_fit over row chunks.

The source is read one chunk at a time, so memory stays bounded by the chunk
size, not the data size. For a numpy.memmap shared with its file (modes
"r", "r+", "w+") the pages of a chunk are released from the process once it
is fitted (the file stays in the page cache, so a second pass is fast, but
the resident set does not grow to the file's size).
"""
import mmap
import numbers

import numpy as np

CHUNK_BYTES = 64 * 2**20      # default chunk: 64 MiB of rows
PROGRESS_BYTES = 2**30        # progress bar by default from 1 GiB on


# Memmap modes whose mapping is shared with the file (MAP_SHARED): there
# MADV_DONTNEED only unmaps pages, and dirty ones stay in the page cache.
# Mode "c" is MAP_PRIVATE: it would throw away the user's in-memory edits.
_SHARED_MODES = ("r", "r+", "w+")


def _release_pages(X, chunk):
    """Drop the memmap pages behind `chunk` (a row slice of X) from the
    process's resident set: MADV_DONTNEED on a shared file mapping only
    unmaps them; the data stays in the file and the page cache."""
    buf = getattr(X, "_mmap", None)
    if buf is None or not hasattr(buf, "madvise") or not chunk.size \
            or getattr(X, "mode", None) not in _SHARED_MODES:
        return
    base = np.frombuffer(buf, dtype=np.uint8).ctypes.data
    start = chunk.ctypes.data - base
    end = start + chunk.nbytes
    start -= start % mmap.PAGESIZE
    buf.madvise(mmap.MADV_DONTNEED, start, end - start)


def _progress(total, verbose, unit_scale_bytes):
    if not verbose:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if verbose is True:
            raise ImportError("verbose=True shows a progress bar with tqdm: "
                              "pip install tqdm (or fastnorm[dask])") from None
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                desc="partial_fit") if unit_scale_bytes else tqdm(total=total,
                                                                 desc="partial_fit")


def partial_fit_chunks(estimator, X, *, chunk_rows=None, verbose=None):
    """Fit `estimator` with partial_fit over row chunks of X; returns it.

    X : a 2-D array (numpy.memmap, ndarray, or anything with .shape and row
        slicing, such as an h5py dataset), or an iterable of 2-D chunks (a
        chunked reader, e.g. pandas.read_csv(..., chunksize=...)).
    chunk_rows : rows per chunk for an array X (default: about 64 MiB).
    verbose : progress bar (tqdm). None: on for arrays of 1 GiB or more.

    The result equals estimator.fit(X) on the whole data (the statistics of
    the chunks merge exactly, to rounding). Any estimator with partial_fit
    works: StandardScaler, MinMaxScaler, MaxAbsScaler.
    """
    if not hasattr(estimator, "partial_fit"):
        raise TypeError(f"estimator must have partial_fit, got {type(estimator).__name__}")
    if verbose is not None and not isinstance(verbose, bool):
        raise TypeError(f"verbose must be True, False or None, got {verbose!r}")
    shape = getattr(X, "shape", None)
    if shape is not None:
        if len(shape) != 2:
            raise ValueError(f"X must be 2-D (samples, features), got shape {shape}")
        if chunk_rows is not None and (not isinstance(chunk_rows, numbers.Integral)
                                       or isinstance(chunk_rows, bool) or chunk_rows <= 0):
            raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
    # An interrupted or failed fit (Ctrl-C, a bad chunk) leaves the estimator
    # as it was: put its attributes back. _reset and partial_fit rebind them;
    # arrays are copied in case a partial_fit without _reset updates in place.
    saved = {k: v.copy() if isinstance(v, np.ndarray) else v
             for k, v in vars(estimator).items()}
    try:
        if hasattr(estimator, "_reset"):
            estimator._reset()  # as fit: start from scratch
        if shape is None:
            _fit_iterable(estimator, X, verbose)
        else:
            _fit_array(estimator, X, chunk_rows, verbose)
    except BaseException:
        vars(estimator).clear()
        vars(estimator).update(saved)
        raise
    return estimator


def _fit_iterable(estimator, chunks, verbose):
    bar = _progress(None, verbose, False)
    try:
        for chunk in chunks:
            estimator.partial_fit(chunk)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _fit_array(estimator, X, chunk_rows, verbose):
    n_rows, n_cols = X.shape
    row_bytes = max(1, n_cols * getattr(X, "dtype", np.dtype(np.float64)).itemsize)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // row_bytes)
    if verbose is None:
        verbose = n_rows * row_bytes >= PROGRESS_BYTES
    bar = _progress(n_rows * row_bytes, verbose, True)
    try:
        for start in range(0, max(n_rows, 1), chunk_rows):
            chunk = X[start:start + chunk_rows]
            estimator.partial_fit(chunk)
            if isinstance(X, np.memmap):
                _release_pages(X, chunk)
            if bar is not None:
                bar.update(chunk.shape[0] * row_bytes)
    finally:
        if bar is not None:
            bar.close()

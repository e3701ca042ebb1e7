"""Out-of-core fitting on one machine: partial_fit over row chunks.

The source is read one chunk at a time, so memory stays bounded by the chunk
size, not the data size. Reading and fitting overlap (double buffering): a
background thread reads chunk k+1 while the kernels (which release the GIL)
fit chunk k, so at most two chunks are in flight. For an iterable of chunks
that is its next item, for an array-like (h5py, zarr, ...) the next row
slice; for a numpy.memmap, whose chunks are views, it is reading into the
page cache the next chunk when it is not there (mincore on a few pages,
then MADV_POPULATE_READ), and the fit never waits for it. Pages already
cached are left to the kernel's page faults: on a machine whose cores the
kernels keep busy, mapping them on another thread costs more than it saves.
For a numpy.memmap shared with its file (modes "r", "r+", "w+") the pages of
a chunk are released from the process once it is fitted (the file stays in
the page cache, so a second pass is fast, but the resident set does not grow
to the file's size).
"""
import concurrent.futures
import contextlib
import ctypes
import ctypes.util
import errno
import mmap
import numbers

import numpy as np

# Default chunk: 128 MiB of rows. Each chunk's partial_fit has a fixed cost
# (~1 ms: validation, the merge, the kernels' start); from the page cache,
# 4000000 x 64 float64 read at 44% of the read bandwidth in 32 MiB chunks,
# 53% in 64 MiB, 57% in 128 MiB, 61% in 256 MiB (the in-memory fit: 69%).
CHUNK_BYTES = 128 * 2**20
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


# madvise(2) advice that maps a range's pages (reading those not in the page
# cache) in one call; Linux >= 5.14, and not in Python's mmap module.
MADV_POPULATE_READ = 22
_libc = None  # libc's madvise and mincore through ctypes (which releases the GIL), or False


def _libc_calls():
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
            madvise, mincore = libc.madvise, libc.mincore
        except (OSError, AttributeError):  # not a POSIX system
            _libc = False
            return _libc
        madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
        madvise.restype = mincore.restype = ctypes.c_int
        _libc = (madvise, mincore)
    return _libc


_populate_ok = True  # until the kernel refuses MADV_POPULATE_READ (EINVAL: Linux < 5.14)


def _page_range(chunk):
    start = chunk.ctypes.data
    end = start + chunk.nbytes
    start -= start % mmap.PAGESIZE
    return start, end - start


SAMPLED_PAGES = 8  # pages of a chunk whose residency says whether to read it ahead


def _looks_cached(chunk):
    """Whether `chunk` (a memmap's row slice) seems to be in the page cache:
    SAMPLED_PAGES pages spread over it, asked one by one (mincore(2), a few
    microseconds; asking for every page of 64 MiB costs a millisecond or two)."""
    calls = _libc_calls()
    if not calls or not chunk.size:
        return True
    start, length = _page_range(chunk)
    n_pages = -(-length // mmap.PAGESIZE)
    vec = ctypes.c_ubyte()
    for page in np.linspace(0, n_pages - 1, min(SAMPLED_PAGES, n_pages)).astype(np.int64):
        if calls[1](start + int(page) * mmap.PAGESIZE, 1, ctypes.byref(vec)) != 0 \
                or not vec.value & 1:
            return False
    return True


def _map_pages(chunk):
    """Read `chunk` (a memmap's row slice) into the page cache and map it, on
    the calling thread (the read-ahead thread): MADV_POPULATE_READ, or
    MADV_WILLNEED where it is not known. Advice only: failures are ignored
    (the kernel's page faults read the data)."""
    global _populate_ok
    calls = _libc_calls()
    if not calls or not chunk.size:
        return
    madvise = calls[0]
    start, length = _page_range(chunk)
    if _populate_ok:
        if madvise(start, length, MADV_POPULATE_READ) == 0:
            return
        if ctypes.get_errno() != errno.EINVAL:  # e.g. an I/O error: the kernel's faults will say
            return
        _populate_ok = False
    madvise(start, length, mmap.MADV_WILLNEED)


class _PagesAhead:
    """A memmap's next chunk read from its file on a background thread while
    this one is fitted, when it is not in the page cache already (pages there
    are left to the kernel's page faults: on a machine whose cores the
    kernels keep busy, mapping them on another thread costs more than it
    saves, so a file in the page cache starts no thread at all). The caller
    never waits for a read (the kernel's page faults read whatever is not
    there yet), and one chunk at most is read ahead: a request while the
    last one runs is dropped. Leaving the context waits for the read in
    progress, so no thread outlives it."""

    def __init__(self):
        self._pool = None
        self._pending = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def read(self, chunk):
        if self._pending is not None and not self._pending.done() or _looks_cached(chunk):
            return
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="fastnorm-prefetch")
        self._pending = self._pool.submit(_map_pages, chunk)


class _Prefetcher:
    """Items of `read` (a callable; StopIteration ends) in order, each read on
    a background thread while the caller works on the previous one: at most
    two items alive, the caller's and the next. An exception of `read` is
    raised by the caller's next() at its place in the order. Use it as a
    context manager: leaving it waits for the read in progress, so no thread
    outlives it."""

    _END = object()

    def __init__(self, read):
        self._read = read
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="fastnorm-prefetch")
        self._next = None

    def _read_one(self):
        try:
            return self._read()
        except StopIteration:
            return self._END

    def __enter__(self):
        self._next = self._pool.submit(self._read_one)
        return self

    def __exit__(self, *exc_info):
        self._next = None
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __iter__(self):
        return self

    def __next__(self):
        item = self._next.result()
        if item is self._END:
            raise StopIteration
        self._next = self._pool.submit(self._read_one)  # the next one, while this is used
        return item


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
    chunk_rows : rows per chunk for an array X (default: about 128 MiB).
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
    chunks = iter(chunks)
    try:
        with _Prefetcher(lambda: next(chunks)) as prefetched:
            for chunk in prefetched:
                estimator.partial_fit(chunk)
                if bar is not None:
                    bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def _row_reader(X, chunk_rows):
    """A callable giving X's row chunks in order (StopIteration at the end),
    read so that fitting them reads no more (an array-like's chunk, h5py's
    or zarr's, as an ndarray)."""
    starts = iter(range(0, max(X.shape[0], 1), chunk_rows))

    def read():
        start = next(starts)
        chunk = X[start:start + chunk_rows]
        return chunk if isinstance(chunk, np.ndarray) else np.asarray(chunk)

    return read


def _in_turn(read):
    """The items of `read` (see _Prefetcher), read when asked for (no thread)."""
    while True:
        try:
            item = read()
        except StopIteration:
            return
        yield item


def _fit_array(estimator, X, chunk_rows, verbose):
    n_rows, n_cols = X.shape
    row_bytes = max(1, n_cols * getattr(X, "dtype", np.dtype(np.float64)).itemsize)
    if chunk_rows is None:
        chunk_rows = max(1, CHUNK_BYTES // row_bytes)
    if verbose is None:
        verbose = n_rows * row_bytes >= PROGRESS_BYTES
    bar = _progress(n_rows * row_bytes, verbose, True)
    try:
        if isinstance(X, np.memmap):
            _fit_memmap(estimator, X, chunk_rows, bar, row_bytes)
            return
        read = _row_reader(X, chunk_rows)
        # an ndarray in memory has nothing to read ahead: no thread
        with contextlib.nullcontext(_in_turn(read)) if isinstance(X, np.ndarray) \
                else _Prefetcher(read) as chunks:
            for chunk in chunks:
                estimator.partial_fit(chunk)
                if bar is not None:
                    bar.update(chunk.shape[0] * row_bytes)
    finally:
        if bar is not None:
            bar.close()


def _fit_memmap(estimator, X, chunk_rows, bar, row_bytes):
    """Chunks of a memmap are views (slicing reads nothing): the next one's
    pages are read ahead on a thread while this one is fitted, then this
    one's are released (shared mappings)."""
    starts = range(0, max(X.shape[0], 1), chunk_rows)
    with _PagesAhead() as ahead:
        for start in starts:
            chunk = X[start:start + chunk_rows]
            if start + chunk_rows < X.shape[0]:
                ahead.read(X[start + chunk_rows:start + 2 * chunk_rows])
            estimator.partial_fit(chunk)
            _release_pages(X, chunk)
            if bar is not None:
                bar.update(chunk.shape[0] * row_bytes)

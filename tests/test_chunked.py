"""partial_fit_chunks reads the next chunk while it fits this one: results,
order, at most two chunks in flight, errors of the reading thread, Ctrl-C,
and no thread left behind."""
import os
import sys
import threading
import time

import numpy as np
import pytest

import fastnorm.preprocessing as fp
from fastnorm import _chunked

SCALERS = [fp.StandardScaler, fp.MinMaxScaler, fp.MaxAbsScaler]


def fitted_arrays(est):
    return {k: v for k, v in vars(est).items()
            if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)}


def assert_same_fit(est, ref):
    got, want = fitted_arrays(est), fitted_arrays(ref)
    assert got.keys() == want.keys() and got
    for key in want:
        np.testing.assert_allclose(got[key], want[key], rtol=1e-12, atol=0, err_msg=key)
    assert np.all(est.n_samples_seen_ == ref.n_samples_seen_)


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name.startswith("fastnorm-prefetch")]


def threads():
    # tqdm's progress bars start a monitor thread of their own, kept for later bars
    return threading.active_count() - sum(type(t).__name__ == "TMonitor"
                                          for t in threading.enumerate())


@pytest.fixture(autouse=True)
def no_thread_left():
    before = threads()
    yield
    assert not prefetch_threads()
    assert threads() == before


class Rows:
    """An array-like source (as an h5py dataset): shape, dtype, row slices
    that are read (copied) when asked for; records what it was asked."""

    def __init__(self, X, fail_at=None, exc=ValueError):
        self.X, self.fail_at, self.exc = X, fail_at, exc
        self.shape, self.dtype = X.shape, X.dtype
        self.reads, self.threads = 0, set()
        self.started = threading.Event()

    def __getitem__(self, key):
        self.reads += 1
        self.threads.add(threading.current_thread().name)
        if self.reads == self.fail_at:
            raise self.exc(f"read {self.reads} failed")
        return self.X[key].tolist()  # not an ndarray: partial_fit_chunks makes one


class Recorder:
    """An estimator that records the first value of each chunk it fits and
    how many chunks were read but not yet fitted when it got each."""

    def __init__(self, source=None, fail_at=None):
        self.source, self.fail_at = source, fail_at

    def _reset(self):
        self.seen_ = []
        self.in_flight_ = []

    def partial_fit(self, X):
        X = np.asarray(X)
        self.seen_.append(X[0, 0])
        if self.source is not None:
            self.in_flight_.append(self.source.reads - len(self.seen_) + 1)
        if self.fail_at == len(self.seen_):
            raise KeyboardInterrupt
        return self


@pytest.fixture
def memmap_file(tmp_path, rng):
    X = rng.standard_normal((20_011, 6)) * 3 + 7
    X[rng.random(X.shape) < 0.01] = np.nan
    path = tmp_path / "x.bin"
    X.tofile(path)
    return X, path


@pytest.mark.parametrize("mode", ["r", "r+", "c"])
@pytest.mark.parametrize("Scaler", SCALERS)
def test_memmap_chunks_fit_as_the_whole(memmap_file, mode, Scaler):
    X, path = memmap_file
    mm = np.memmap(path, dtype=np.float64, mode=mode, shape=X.shape)
    est = fp.partial_fit_chunks(Scaler(), mm, chunk_rows=1_999, verbose=False)
    assert_same_fit(est, Scaler().fit(X))


@pytest.mark.parametrize("Scaler", SCALERS)
def test_array_like_and_iterable_chunks_fit_as_the_whole(rng, Scaler):
    X = rng.standard_normal((5_003, 4)) + 2
    ref = Scaler().fit(X)
    source = Rows(X)
    assert_same_fit(fp.partial_fit_chunks(Scaler(), source, chunk_rows=500), ref)
    assert source.threads == {n for n in source.threads if n.startswith("fastnorm-prefetch")}
    chunks = (X[i:i + 777] for i in range(0, X.shape[0], 777))
    assert_same_fit(fp.partial_fit_chunks(Scaler(), chunks), ref)
    assert_same_fit(fp.partial_fit_chunks(Scaler(), [X[:1], X[1:]]), ref)  # a list
    assert_same_fit(fp.partial_fit_chunks(Scaler(), [X]), ref)              # one chunk


def test_chunks_come_in_order_with_at_most_two_in_flight(rng):
    X = np.arange(100.0 * 3).reshape(100, 3)
    source = Rows(X)
    est = fp.partial_fit_chunks(Recorder(source), source, chunk_rows=7)
    assert est.seen_ == list(X[::7, 0])
    # the chunk being fitted and at most the next one (read ahead)
    assert max(est.in_flight_) <= 2

    produced = []

    def chunks():
        for i in range(0, 100, 7):
            produced.append(i)
            yield X[i:i + 7]

    est = Recorder()
    est._reset()
    in_flight = []
    original = est.partial_fit

    def fit(chunk):
        original(chunk)
        in_flight.append(len(produced) - len(est.seen_) + 1)

    est.partial_fit = fit
    fp.partial_fit_chunks(est, chunks())
    assert est.seen_ == list(X[::7, 0])
    assert max(in_flight) <= 2


@pytest.mark.parametrize("kind", ["array", "iterable"])
def test_the_next_chunk_is_read_while_this_one_is_fitted(rng, kind):
    """Fitting chunk k waits until chunk k+1 is being read: without reading
    ahead, that would never happen (the wait would time out)."""
    X = rng.standard_normal((40, 2))
    reads = []
    next_read = [threading.Event() for _ in range(6)]

    def note_read(k):
        reads.append(threading.current_thread().name)
        next_read[k].set()

    if kind == "array":
        class Source(Rows):
            def __getitem__(self, key):
                note_read(key.start // 8)
                return super().__getitem__(key)
        source = Source(X)
    else:
        def source_gen():
            for k in range(5):
                note_read(k)
                yield X[8 * k:8 * k + 8]
        source = source_gen()

    class Waiting(Recorder):
        def partial_fit(self, chunk):
            k = len(self.seen_)
            if k + 1 < 5:
                assert next_read[k + 1].wait(timeout=10), f"chunk {k + 1} not read ahead"
            return super().partial_fit(chunk)

    est = fp.partial_fit_chunks(Waiting(), source, chunk_rows=8)
    assert len(est.seen_) == 5
    assert all(name.startswith("fastnorm-prefetch") for name in reads)


@pytest.mark.parametrize("exc", [ValueError, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("kind", ["array", "iterable"])
def test_an_error_of_the_reading_thread_is_raised_here(rng, exc, kind):
    X = rng.standard_normal((1_000, 3))
    est = fp.StandardScaler().fit(X[:10])
    before = {k: np.copy(v) for k, v in fitted_arrays(est).items()}
    if kind == "array":
        source = Rows(X, fail_at=4, exc=exc)
    else:
        def gen():
            yield from (X[i:i + 100] for i in range(0, 300, 100))
            raise exc("the reader failed")
        source = gen()
    with pytest.raises(exc, match="failed"):
        fp.partial_fit_chunks(est, source, chunk_rows=100)
    for key, want in before.items():  # the estimator as it was
        np.testing.assert_array_equal(getattr(est, key), want)


def test_ctrl_c_while_fitting_restores_and_stops_reading(rng, memmap_file):
    X, path = memmap_file
    for source in (Rows(X), np.memmap(path, dtype=np.float64, mode="r", shape=X.shape),
                   (X[i:i + 1_000] for i in range(0, X.shape[0], 1_000))):
        est = Recorder(fail_at=3)
        est._reset()
        est.seen_.append("before")
        with pytest.raises(KeyboardInterrupt):
            fp.partial_fit_chunks(est, source, chunk_rows=1_000)
        assert est.seen_ == ["before"]  # restored
        assert not prefetch_threads()


def _evict(path):
    """Drop the file's pages from the page cache (clean pages: written back first)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


needs_page_cache_control = pytest.mark.skipif(
    sys.platform != "linux",
    reason="Linux's page cache control: /proc/self/smaps, posix_fadvise, MADV_POPULATE_READ")


@needs_page_cache_control
def test_memmap_pages_are_read_ahead_while_fitting(memmap_file, monkeypatch):
    """A file not in the page cache: fitting chunk k waits until chunk k+1
    has been read ahead, on the read-ahead thread."""
    X, path = memmap_file
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    done = [threading.Event() for _ in range(6)]
    mapped = []
    real = _chunked._map_pages

    def map_pages(chunk):
        real(chunk)
        mapped.append((chunk[0, 0], threading.current_thread().name))
        done[len(mapped)].set()

    class Waiting(fp.StandardScaler):
        def partial_fit(self, chunk, *args, **kwargs):
            k = getattr(self, "chunks_", 0)
            if k + 1 < 5:
                assert done[k + 1].wait(timeout=10), f"chunk {k + 1} not read ahead"
                time.sleep(0.05)  # the read's future completes (else the next is dropped)
            super().partial_fit(chunk, *args, **kwargs)
            self.chunks_ = k + 1
            return self

    monkeypatch.setattr(_chunked, "_map_pages", map_pages)
    looks_cached = _chunked._looks_cached
    # small chunks: the kernel's own readahead may bring the next one in first
    monkeypatch.setattr(_chunked, "_looks_cached", lambda chunk: False)
    _evict(path)
    est = fp.partial_fit_chunks(Waiting(), mm, chunk_rows=5_000)
    monkeypatch.setattr(_chunked, "_looks_cached", looks_cached)
    np.testing.assert_array_equal([first for first, _ in mapped], mm[5_000::5_000, 0])
    assert all(name.startswith("fastnorm-prefetch") for _, name in mapped)
    ref = fp.StandardScaler().fit(X)
    np.testing.assert_allclose(est.var_, ref.var_, rtol=1e-12)
    # in the page cache now: nothing to read ahead, no thread
    mapped.clear()
    assert_same_fit(fp.partial_fit_chunks(fp.StandardScaler(), mm, chunk_rows=5_000), ref)
    assert mapped == []
    # a kernel without MADV_POPULATE_READ: read-ahead advice instead, same fit
    monkeypatch.setattr(_chunked, "_map_pages", real)
    monkeypatch.setattr(_chunked, "_populate_ok", False)
    _evict(path)
    assert_same_fit(fp.partial_fit_chunks(fp.StandardScaler(), mm, chunk_rows=5_000), ref)


@needs_page_cache_control
def test_reading_ahead_reads_and_maps_a_chunk(tmp_path):
    path = tmp_path / "ones.bin"
    np.ones((1 << 18, 4)).tofile(path)  # 8 MiB
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=(1 << 18, 4))

    def rss_kib():
        rss, inside = 0, False
        with open("/proc/self/smaps") as f:
            for line in f:
                fields = line.split()
                if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:
                    inside = len(fields) >= 6 and fields[5] == str(path)
                elif inside and fields[0] == "Rss:":
                    rss += int(fields[1])
        return rss

    half = mm[: 1 << 17]  # the first 4 MiB
    assert _chunked._looks_cached(half)  # just written
    _evict(path)
    assert not _chunked._looks_cached(half)
    _chunked._map_pages(half)  # read from the file (and mapped)
    assert _chunked._looks_cached(half)
    if _chunked._populate_ok:
        assert 4096 <= rss_kib() < 8192


def test_progress_bar_counts_chunks_of_an_iterable(rng, capsys):
    pytest.importorskip("tqdm")
    X = rng.standard_normal((300, 2))
    fp.partial_fit_chunks(fp.StandardScaler(), (X[i:i + 100] for i in range(0, 300, 100)),
                          verbose=True)
    assert "3it" in capsys.readouterr().err


def test_in_memory_arrays_are_fitted_without_a_thread(rng, monkeypatch):
    def no_thread(*args, **kwargs):
        raise AssertionError("a prefetch thread for an in-memory array")
    monkeypatch.setattr(_chunked, "_Prefetcher", no_thread)
    X = rng.standard_normal((1_000, 3))
    est = fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=300)
    assert_same_fit(est, fp.StandardScaler().fit(X))

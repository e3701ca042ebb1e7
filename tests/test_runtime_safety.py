"""Runtime safety (issue 12): a copy-on-write memmap's edits survive
partial_fit_chunks, no thread count crashes the OpenMP runtime, fastnorm
works in a fork()ed child after threaded kernels ran in the parent, and an
interrupted partial_fit_chunks leaves the estimator as it was.

Crashes and hangs are checked in a fresh interpreter with a timeout."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastnorm
import fastnorm.preprocessing as fp
from fastnorm import _config
from fastnorm._config import MAX_THREADS_PER_CPU, effective_n_threads

BIG = 1 << 30  # bytes: far above the small-input threshold


@pytest.fixture(autouse=True)
def _default_config():
    _config._config()["n_threads"] = None
    yield
    _config._config()["n_threads"] = None


def _run_python(code, timeout=120, **env):
    """Run `code` in a fresh interpreter; (returncode, stdout, stderr). It runs
    in its own process group, so a hung fork()ed grandchild dies with it."""
    full_env = dict(os.environ)
    full_env.update(env)
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"hung: killed after {timeout} s")
    return proc.returncode, out.strip(), err


# ------------------------------------------------- copy-on-write memmaps ---

def _file(tmp_path, shape=(4000, 3), value=0.0):
    path = tmp_path / "X.f64"
    np.full(shape, value).tofile(path)
    return path


def test_copy_on_write_memmap_keeps_in_memory_edits(tmp_path):
    # mode "c" is a private mapping: releasing its pages would throw the
    # edits away (and, as chunks are not page-aligned, before some are fitted)
    path = _file(tmp_path)
    X = np.memmap(path, dtype=np.float64, mode="c", shape=(4000, 3))
    X[:] = 5.0
    X[1::2] = 7.0
    scaler = fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=1000)
    assert np.all(X[0::2] == 5.0) and np.all(X[1::2] == 7.0), "the edits are gone"
    np.testing.assert_allclose(scaler.mean_, 6.0, rtol=1e-14)
    np.testing.assert_allclose(scaler.var_, 1.0, rtol=1e-14)
    assert np.all(np.fromfile(path) == 0.0)  # and the file is untouched


def test_copy_on_write_memmap_from_np_load(tmp_path):
    np.save(tmp_path / "X.npy", np.zeros((3000, 5), dtype=np.float32))
    X = np.load(tmp_path / "X.npy", mmap_mode="c")
    X[:] = 2.0
    scaler = fp.partial_fit_chunks(fp.MinMaxScaler(), X, chunk_rows=700)
    assert np.all(X == 2.0)
    assert np.all(scaler.data_min_ == 2.0) and np.all(scaler.data_max_ == 2.0)


def test_shared_read_write_memmap_keeps_edits_and_writes_them(tmp_path):
    # mode "r+" is shared with the file: released pages are re-read from the
    # page cache, where the edits are
    path = _file(tmp_path)
    X = np.memmap(path, dtype=np.float64, mode="r+", shape=(4000, 3))
    X[:] = 5.0
    scaler = fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=1000)
    assert np.all(X == 5.0)
    np.testing.assert_allclose(scaler.mean_, 5.0, rtol=1e-14)
    X.flush()
    del X
    assert np.all(np.fromfile(path) == 5.0)


def _mapping_rss_kib(path):
    """Resident KiB of this process's mappings of `path` (Linux)."""
    rss, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5 and ":" in fields[3]:  # a mapping header
                inside = len(fields) >= 6 and fields[5] == str(path)
            elif inside and fields[0] == "Rss:":
                rss += int(fields[1])
    return rss


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_read_only_memmap_pages_are_still_released(tmp_path):
    path = _file(tmp_path, shape=(1 << 20, 4), value=1.0)  # 32 MiB
    X = np.memmap(path, dtype=np.float64, mode="r", shape=(1 << 20, 4))
    fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=1 << 15)  # 1 MiB chunks
    assert _mapping_rss_kib(path) < 4096
    np.asarray(X).sum()  # the check itself sees a resident mapping
    assert _mapping_rss_kib(path) > 16384


# ------------------------------------------------------------ thread counts ---

def test_huge_n_threads_is_capped():
    cap = MAX_THREADS_PER_CPU * _config.available_cpus()
    for n in (1_000_000, 2**31 - 1, 2**63 - 1, np.int64(2**40)):
        with fastnorm.config_context(n_threads=n):
            assert effective_n_threads(BIG) == cap
        fastnorm.set_config(n_threads=n)
        assert effective_n_threads(BIG) == cap
        assert fastnorm.get_config()["n_threads"] == n  # kept as given
    with fastnorm.config_context(n_threads=cap):
        assert effective_n_threads(BIG) == cap


@pytest.mark.parametrize("bad", [0, -1, -2**31, 1.5, 2.0, "4", [2], True])
def test_bad_n_threads_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        with fastnorm.config_context(n_threads=bad):
            pass
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        fastnorm.set_config(n_threads=bad)
    assert fastnorm.get_config()["n_threads"] is None


HUGE_THREADS_CODE = """
    import numpy as np
    import fastnorm
    from fastnorm import stats
    from fastnorm._config import effective_n_threads
    X = np.random.default_rng(0).standard_normal((100_000, 8))
    with fastnorm.config_context(n_threads=1):
        expected = fastnorm.preprocessing.scale(X)
    for n in (1_000_000, 2**31 - 1, 2**63 - 1):
        with fastnorm.config_context(n_threads=n):
            assert np.array_equal(fastnorm.preprocessing.scale(X), expected)
            stats.moments(X, axis=1)
            stats.quantiles(X, [0.5], axis=1)
        fastnorm.set_config(n_threads=n)
        assert np.array_equal(fastnorm.preprocessing.scale(X), expected)
    print("ok")
"""


def test_huge_n_threads_does_not_crash():
    rc, out, err = _run_python(HUGE_THREADS_CODE)
    assert rc == 0 and out == "ok", f"exit status {rc}\n{err[-3000:]}"


ENV_THREADS_CODE = """
    import numpy as np
    import fastnorm
    from threadpoolctl import threadpool_limits
    from fastnorm._config import available_cpus, effective_n_threads
    X = np.random.default_rng(0).standard_normal((100_000, 8))
    print(effective_n_threads(1 << 30) <= available_cpus())
    fastnorm.preprocessing.scale(X)
    with threadpool_limits(limits=1_000_000, user_api="openmp"):
        print(effective_n_threads(1 << 30) <= available_cpus())
        fastnorm.preprocessing.scale(X)
"""


@pytest.mark.parametrize("omp", ["1000000", "2147483647", "4294967296", "0", "-3", "many"])
def test_any_omp_num_threads_does_not_crash(omp):
    rc, out, err = _run_python(ENV_THREADS_CODE, OMP_NUM_THREADS=omp)
    assert rc == 0, f"exit status {rc}\n{err[-3000:]}"
    assert out.split() == ["True", "True"]


# ---------------------------------------------------------------- fork() ---

FORK_CODE = """
    import os, signal, time
    import numpy as np
    import fastnorm
    from fastnorm._config import effective_n_threads
    X = np.random.default_rng(0).standard_normal((100_000, 8))
    with fastnorm.config_context(n_threads=2):
        assert effective_n_threads(X.nbytes) == 2
        expected = fastnorm.preprocessing.scale(X)  # starts OpenMP's threads
    pid = os.fork()
    if pid == 0:
        ok = np.array_equal(fastnorm.preprocessing.scale(X), expected)  # hung here
        ok = ok and effective_n_threads(X.nbytes) == 1
        with fastnorm.config_context(n_threads=2):  # asked for: still one thread
            ok = ok and np.array_equal(fastnorm.preprocessing.scale(X), expected)
            ok = ok and effective_n_threads(X.nbytes) == 1
        os._exit(0 if ok else 3)
    deadline = time.monotonic() + 30
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child", os.waitstatus_to_exitcode(status))
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            print("child hung")
            break
        time.sleep(0.02)
    with fastnorm.config_context(n_threads=2):  # the parent still uses threads
        assert effective_n_threads(X.nbytes) == 2
        assert np.array_equal(fastnorm.preprocessing.scale(X), expected)
    print("parent ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_after_threaded_kernel_runs_single_threaded():
    rc, out, err = _run_python(FORK_CODE, timeout=90)
    assert rc == 0, err[-3000:]
    assert out.splitlines() == ["child 0", "parent ok"]


POOL_CODE = """
    import multiprocessing
    import numpy as np
    import fastnorm
    X = np.random.default_rng(0).standard_normal((100_000, 8))
    with fastnorm.config_context(n_threads=2):
        fastnorm.preprocessing.scale(X)

    def work(seed):
        Y = np.random.default_rng(seed).standard_normal((100_000, 8))
        return float(fastnorm.stats.moments(Y, axis=0).mean.sum())

    with multiprocessing.get_context("fork").Pool(2) as pool:
        print(len(pool.map(work, range(4))))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_multiprocessing_pool_after_threaded_kernel():
    rc, out, err = _run_python(POOL_CODE, timeout=60)
    assert rc == 0, err[-3000:]
    assert out == "4"


# ------------------------------------------- interrupted partial_fit_chunks ---

class _InterruptedRows:
    """A 2-D array source whose `fail_at`-th row slice raises (Ctrl-C)."""

    def __init__(self, X, fail_at, exc=KeyboardInterrupt):
        self.X, self.fail_at, self.exc, self.calls = X, fail_at, exc, 0
        self.shape, self.dtype = X.shape, X.dtype

    def __getitem__(self, key):
        self.calls += 1
        if self.calls == self.fail_at:
            raise self.exc()
        return self.X[key]


def _state(est):
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in vars(est).items()}


SCALERS = [fp.StandardScaler, fp.MinMaxScaler, fp.MaxAbsScaler]


@pytest.mark.parametrize("Scaler", SCALERS)
@pytest.mark.parametrize("source", ["array", "iterable"])
@pytest.mark.parametrize("exc", [KeyboardInterrupt, ValueError])
def test_interrupted_fit_leaves_fitted_estimator_as_it_was(Scaler, source, exc, rng):
    old = rng.standard_normal((500, 4)) * 3 + 1
    X = rng.standard_normal((1000, 4))
    est = Scaler().fit(old)
    before = _state(est)
    if source == "array":
        data = _InterruptedRows(X, fail_at=3, exc=exc)
    else:
        def data_gen():
            yield X[:100]
            yield X[100:200]
            raise exc()
        data = data_gen()
    with pytest.raises(exc):
        fp.partial_fit_chunks(est, data, chunk_rows=100)
    np.testing.assert_equal(_state(est), before)
    np.testing.assert_array_equal(est.transform(X), Scaler().fit(old).transform(X))
    # and a later call fits from scratch as usual
    fp.partial_fit_chunks(est, X, chunk_rows=100)
    np.testing.assert_allclose(est.transform(X), Scaler().fit(X).transform(X), atol=1e-12)


def test_interrupted_fit_leaves_unfitted_estimator_unfitted(rng):
    from sklearn.exceptions import NotFittedError
    est = fp.StandardScaler(with_mean=False)
    with pytest.raises(KeyboardInterrupt):
        fp.partial_fit_chunks(est, _InterruptedRows(rng.standard_normal((1000, 4)), 4),
                              chunk_rows=100)
    assert _state(est) == _state(fp.StandardScaler(with_mean=False))
    with pytest.raises(NotFittedError):
        est.transform(np.ones((2, 4)))


def test_interrupted_memmap_fit_keeps_the_estimator(tmp_path, rng, monkeypatch):
    # Ctrl-C while a memmap chunk is released (called once per chunk)
    from fastnorm import _chunked
    path = _file(tmp_path, value=3.0)
    X = np.memmap(path, dtype=np.float64, mode="r", shape=(4000, 3))
    est = fp.StandardScaler().fit(rng.standard_normal((50, 3)))
    before = _state(est)
    calls = []
    release = _chunked._release_pages

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        release(*args)

    monkeypatch.setattr(_chunked, "_release_pages", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fp.partial_fit_chunks(est, X, chunk_rows=1000)
    np.testing.assert_equal(_state(est), before)

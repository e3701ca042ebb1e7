"""Global configuration: backend choice and thread count.

`n_threads` for a kernel comes from one place, `effective_n_threads`:
config_context(n_threads=...) first, then the OpenMP runtime's
omp_get_max_threads() (which follows OMP_NUM_THREADS and threadpoolctl's
threadpool_limits), capped by the CPUs this process may use. An explicit
n_threads is capped at MAX_THREADS_PER_CPU times those CPUs: a million
threads would crash the OpenMP runtime. Inputs smaller than
SMALL_INPUT_BYTES run on one thread: starting threads costs more than they
save there.

In a child made by fork() (multiprocessing's "fork" start method, joblib's
multiprocessing backend, fork-based data loaders) every kernel runs on one
thread, whatever n_threads says: GNU OpenMP's thread pool does not survive
fork(), and a parallel region in the child would hang forever.
"""
import contextlib
import os
import threading
from numbers import Integral

from ._ext import _openmp

BACKENDS = ("auto", "cpu", "gpu")
SMALL_INPUT_BYTES = 64 * 1024
MAX_THREADS_PER_CPU = 4  # oversubscription past this only costs, and far past it crashes

_defaults = {"backend": "auto", "n_threads": None}
class _Local(threading.local):
    """Each thread's configuration, made from the defaults on its first use
    (no attribute probing on the hot path: a missing attribute costs ~1 µs)."""

    def __init__(self):
        self.config = dict(_defaults)


_local = _Local()
_forked_child = False


def _after_fork_in_child():
    global _forked_child
    _forked_child = True


# libgomp is not fork-safe: after the parent ran a parallel region, one in the
# child waits forever for the parent's threads. One thread never starts them.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _config():
    return _local.config


def current_backend():
    """The backend in force ('auto', 'cpu' or 'gpu'), without get_config's copy
    (small calls ask on every call)."""
    return _local.config["backend"]


def get_config():
    """The current configuration: a dict with keys 'backend' and 'n_threads'."""
    return dict(_config())


def _check(backend, n_threads):
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if n_threads is not None and (
        not isinstance(n_threads, Integral) or isinstance(n_threads, bool) or n_threads < 1
    ):
        raise ValueError(f"n_threads must be a positive integer or None, got {n_threads!r}")


def set_config(backend=None, n_threads=None):
    """Set fastnorm's configuration for this thread.

    backend : 'auto' (the input array's library decides), 'cpu' or 'gpu'
        (insist on one: an input of the other kind is an error, never copied).
    n_threads : positive int, the threads every kernel uses (the default,
        None, follows OpenMP and threadpoolctl). None leaves the current value.
        Capped at MAX_THREADS_PER_CPU (4) times the CPUs this process may use.
        In a fork()ed child process kernels run on one thread whatever this
        says: the OpenMP runtime's threads do not survive fork().
    """
    _check(backend, n_threads)
    cfg = _config()
    if backend is not None:
        cfg["backend"] = backend
    if n_threads is not None:
        cfg["n_threads"] = int(n_threads)


@contextlib.contextmanager
def config_context(*, backend=None, n_threads=None):
    """Temporarily change the configuration (see `set_config`)."""
    _check(backend, n_threads)
    old = get_config()
    set_config(backend=backend, n_threads=n_threads)
    try:
        yield
    finally:
        _config().update(old)


def available_cpus():
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def effective_n_threads(n_bytes=None):
    """Threads a kernel should use for an input of `n_bytes` bytes."""
    if _forked_child or (n_bytes is not None and n_bytes < SMALL_INPUT_BYTES):
        return 1
    n = _config()["n_threads"]
    if n is None:
        n = min(_openmp.max_threads(), available_cpus())
    else:
        n = min(n, MAX_THREADS_PER_CPU * available_cpus())
    return max(1, int(n))

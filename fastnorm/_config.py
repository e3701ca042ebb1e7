"""Global configuration: backend choice and thread count.

`n_threads` for a kernel comes from one place, `effective_n_threads`:
config_context(n_threads=...) first, then the OpenMP runtime's
omp_get_max_threads() (which follows OMP_NUM_THREADS and threadpoolctl's
threadpool_limits), capped by the CPUs this process may use. Inputs smaller
than SMALL_INPUT_BYTES run on one thread: starting threads costs more than
they save there.
"""
import contextlib
import os
import threading
from numbers import Integral

from ._ext import _openmp

BACKENDS = ("auto", "cpu", "gpu")
SMALL_INPUT_BYTES = 64 * 1024

_defaults = {"backend": "auto", "n_threads": None}
_local = threading.local()


def _config():
    if not hasattr(_local, "config"):
        _local.config = dict(_defaults)
    return _local.config


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
    if n_bytes is not None and n_bytes < SMALL_INPUT_BYTES:
        return 1
    n = _config()["n_threads"]
    if n is None:
        n = min(_openmp.max_threads(), available_cpus())
    return max(1, int(n))

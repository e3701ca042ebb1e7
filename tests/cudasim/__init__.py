"""cudasim: fastnorm's CUDA sources executed on the CPU, for CI (no GPU).

`cupy_for_tests()` gives the GPU tests their `cupy`: CuPy itself where it
finds a GPU, else the stand-in `cupy_stub`, whose RawModule compiles each
kernel source for the host (include/cudasim.h) and runs every block's
threads as fibers, with __syncthreads, __shared__ memory, warp shuffles
and atomics honoured. `installed(stub)` puts the stand-in in
sys.modules["cupy"] for the duration of a test, so that fastnorm's GPU
path (which imports cupy lazily) runs on it, and with it the stand-ins for
`cupyx` and `cupyx.scipy.sparse` (cupyx_stub, cupyx_sparse_stub: CSR/CSC
matrices on cudasim arrays); `sparse_for_tests()` gives the tests their
`cupyx.scipy.sparse`.

It checks kernel logic (results, barriers every thread reaches, argument
sizes, launch bounds) but cannot see races, memory errors or timing: a
kernel that passes here has still to be run on a GPU.
"""
import contextlib
import sys


def real_cupy_with_gpu():
    """CuPy if it is installed and finds a GPU, else None."""
    try:
        import cupy
    except ImportError:
        return None
    try:
        return cupy if cupy.is_available() else None
    except Exception:  # a broken driver install: no GPU to test on
        return None


def cupy_for_tests():
    """(the cupy module the GPU tests use, True when it is the stand-in)."""
    cp = real_cupy_with_gpu()
    if cp is not None:
        return cp, False
    from . import cupy_stub
    return cupy_stub, True


def sparse_for_tests():
    """The cupyx.scipy.sparse module that goes with cupy_for_tests()'s cupy."""
    if real_cupy_with_gpu() is not None:
        import cupyx.scipy.sparse
        return cupyx.scipy.sparse
    from . import cupyx_sparse_stub
    return cupyx_sparse_stub


_CUPYX_MODULES = ("cupyx", "cupyx.scipy", "cupyx.scipy.sparse")


def _clear_fastnorm_caches():
    from fastnorm._cuda import _launch, _loader
    _loader._module.cache_clear()
    _loader._kernel.cache_clear()
    _launch._sm_count.cache_clear()


@contextlib.contextmanager
def installed(stub):
    """sys.modules["cupy"] is `stub` (and "cupyx", "cupyx.scipy.sparse" the
    cupyx stand-ins) inside the block (and fastnorm's
    compiled-kernel caches are fresh on both sides of it)."""
    from . import cupyx_stub
    names = ("cupy",) + _CUPYX_MODULES
    stubs = (stub, cupyx_stub, cupyx_stub.scipy, cupyx_stub.scipy.sparse)
    saved = {name: sys.modules.get(name) for name in names}
    sys.modules.update(zip(names, stubs))
    _clear_fastnorm_caches()
    try:
        yield stub
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        _clear_fastnorm_caches()

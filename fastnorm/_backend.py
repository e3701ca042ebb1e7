"""Which implementation runs a call: picked from the input array's library.

NumPy arrays run on the CPU kernels (`fastnorm._cpu`), CuPy arrays on the
GPU kernels (`fastnorm._cuda._ops`), on the arrays' device. fastnorm never
copies data between host and device behind the caller's back: mixing the
two libraries in one call, or asking for a backend the data is not on, is
an error. The library is read off the array's type, so CuPy is imported
only when CuPy arrays are seen.
"""
import numpy as np

from ._config import current_backend, get_config


def _is_cupyx(x):
    return type(x).__module__.split(".")[0] == "cupyx"


def array_library(x):
    """'cupy' for a CuPy array or a CuPy sparse matrix (cupyx.scipy.sparse),
    'numpy' for everything else."""
    if type(x) is np.ndarray:  # the common case, asked on every small call
        return "numpy"
    return "cupy" if type(x).__module__.split(".")[0] == "cupy" or _is_cupyx(x) else "numpy"


def is_sparse(x):
    """Whether x is a sparse matrix: SciPy's (on the CPU) or CuPy's
    (cupyx.scipy.sparse, on the GPU)."""
    if _is_cupyx(x):
        import cupyx.scipy.sparse
        return cupyx.scipy.sparse.issparse(x)
    import scipy.sparse
    return scipy.sparse.issparse(x)


def _device_array(a):
    """The device array that tells where `a` lives: a CuPy sparse matrix's
    data (CuPy's sparse matrices have no usable .device)."""
    return a.data if _is_cupyx(a) and is_sparse(a) else a


def device_id(a):
    """The id of the GPU that CuPy array or sparse matrix `a` lives on."""
    return _device_array(a).device.id


def namespace(x):
    """The array module of x: cupy for a CuPy array, else numpy."""
    if array_library(x) == "cupy":
        import cupy
        return cupy
    import numpy
    return numpy


def is_writeable(a):
    """Whether array `a` may be written: NumPy's flag; CuPy has no read-only
    arrays (its flags have no `writeable`)."""
    return getattr(a.flags, "writeable", True)


class _GpuKernels:
    """fastnorm._cuda._ops, where a kernel it lacks is a NotImplementedError
    naming it (rather than an AttributeError from deep inside a call)."""

    def __getattr__(self, name):
        from ._cuda import _ops
        try:
            return getattr(_ops, name)
        except AttributeError:
            raise NotImplementedError(
                f"fastnorm's GPU path has no '{name}' kernel yet: this call cannot run on "
                "CuPy arrays. Pass NumPy arrays (cupy.asnumpy) to run it on the CPU.") from None


_GPU = _GpuKernels()


def ops_for(*arrays, name="X"):
    """The kernel module that serves these arrays (all must live in one place;
    a sparse matrix lives where its data does)."""
    if all(type(a) is np.ndarray for a in arrays):
        ops = numpy_ops()  # the common case, at a fraction of the checks' cost
        if ops is not None:
            return ops
    if any(type(a).__module__.split(".")[0] == "dask" for a in arrays):
        # np.asarray would gather the whole collection here, silently
        raise TypeError(f"{name} is a Dask collection; this function takes in-memory arrays. "
                        "Dask input goes to the transformers of fastnorm.preprocessing "
                        "(fit/partial_fit/transform) and to fastnorm.stats.moments")
    libs = {array_library(a) for a in arrays if a is not None}
    if len(libs) > 1:
        raise TypeError(f"{name}: NumPy and CuPy arrays are mixed in one call; "
                        "convert them to one library first (fastnorm does not copy "
                        "between host and device implicitly)")
    lib = libs.pop() if libs else "numpy"
    backend = get_config()["backend"]
    if lib == "numpy" and backend == "gpu":
        raise NotImplementedError(
            f"{name} is a NumPy array but backend='gpu' was requested: pass CuPy arrays "
            "(cupy.asarray(X)) to run on the GPU; fastnorm does not copy between host "
            "and device implicitly.")
    if lib == "cupy" and backend == "cpu":
        raise TypeError(f"{name} is a CuPy array but backend='cpu' was requested: pass NumPy "
                        "arrays (cupy.asnumpy(X)); fastnorm does not copy between device "
                        "and host implicitly.")
    if lib == "cupy":
        devices = {device_id(a) for a in arrays if a is not None and array_library(a) == "cupy"}
        if len(devices) > 1:
            raise TypeError(f"{name}: the arrays of one call live on different GPUs "
                            f"{sorted(devices)}; fastnorm does not copy between devices")
        return _GPU
    from . import _cpu
    return _cpu


def numpy_ops():
    """The CPU kernel module for a call whose arrays are all plain NumPy
    ndarrays (the caller checked that), or None when the configured backend
    is 'gpu' (then `ops_for` raises the error). What `ops_for` returns for
    such arrays, at a fraction of its cost: small calls ask on every call."""
    if current_backend() == "gpu":
        return None
    global _CPU
    if _CPU is None:
        from . import _cpu
        _CPU = _cpu
    return _CPU


_CPU = None


def refuse_gpu(x, name, what):
    """NotImplementedError for CuPy input to `what`, an entry point whose GPU
    path does not exist yet."""
    if array_library(x) == "cupy":
        raise NotImplementedError(
            f"{name} is a CuPy array, but {what} has no GPU path yet. Pass a NumPy array "
            "(cupy.asnumpy(X)) to run it on the CPU; fastnorm does not copy between "
            "device and host implicitly.")

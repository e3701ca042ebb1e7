"""Which implementation runs a call: picked from the input array's library.

NumPy arrays run on the CPU kernels (`fastnorm._cpu`). CuPy arrays will run
on the GPU kernels; until that path exists they raise NotImplementedError:
fastnorm never copies data between host and device behind the caller's back.
The library is read off the array's type, so CuPy is never imported here.
"""
from ._config import get_config


def array_library(x):
    """'cupy' for a CuPy array, 'numpy' for everything else."""
    return "cupy" if type(x).__module__.split(".")[0] == "cupy" else "numpy"


def ops_for(*arrays, name="X"):
    """The kernel module that serves these arrays (all must live in one place)."""
    if any(type(a).__module__.split(".")[0] == "dask" for a in arrays):
        # np.asarray would gather the whole collection here, silently
        raise TypeError(f"{name} is a Dask collection; this function takes in-memory arrays. "
                        "Dask input goes to the transformers of fastnorm.preprocessing "
                        "(fit/partial_fit/transform) and to fastnorm.stats.moments")
    libs = {array_library(a) for a in arrays if a is not None}
    if len(libs) > 1:
        raise TypeError(f"{name}: NumPy and CuPy arrays are mixed in one call; "
                        "convert them to one library first")
    lib = libs.pop() if libs else "numpy"
    backend = get_config()["backend"]
    if lib == "cupy" or backend == "gpu":
        what = "is a CuPy array" if lib == "cupy" else "was requested with backend='gpu'"
        raise NotImplementedError(
            f"{name} {what}, but fastnorm's GPU path is not available yet. "
            "Pass a NumPy array (cupy.asnumpy(X)) to run on the CPU; fastnorm "
            "does not copy between device and host implicitly.")
    from . import _cpu
    return _cpu

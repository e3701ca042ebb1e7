"""A stand-in for the part of `cupyx` that fastnorm uses, on the CPU:
installed as `cupyx` (and `cupyx.scipy.sparse`, see cupyx_sparse_stub) with
cudasim's `cupy` by the GPU tests when no GPU is present.

Only what CuPy's cupyx has: `scatter_add` (an atomic scatter-add on a GPU;
NumPy's add.at here) and the sparse matrices. Test-only.
"""
import types

import numpy as np

from . import cupy_stub, cupyx_sparse_stub

__version__ = cupy_stub.__version__


def scatter_add(a, slices, value):
    """cupyx.scatter_add: a[slices] += value, repeated indices all adding up
    (numpy.add.at; on a GPU the order of the additions is unspecified)."""
    if not isinstance(a, cupy_stub.ndarray):
        raise TypeError("cupyx.scatter_add takes a CuPy array")
    np.add.at(a._a, cupy_stub._unwrap(slices), cupy_stub._unwrap(value, allow_host=True))


scipy = types.ModuleType("cupyx.scipy")
scipy.sparse = cupyx_sparse_stub

"""A stand-in for the part of CuPy that fastnorm uses, on the CPU: installed
as `cupy` by the GPU tests when no GPU is present (see tests/cudasim).

- `ndarray` holds a NumPy array ("device memory") and behaves as CuPy's:
  NumPy functions and ufuncs on it return stand-in arrays, and implicit
  conversion to NumPy (np.asarray) is a TypeError, as in CuPy, so that a GPU
  path that silently copies to the host fails here as it would on a GPU;
  operands that are NumPy arrays are refused too. `.data.ptr` is the
  buffer's address, which the kernels read.
- `RawModule`/`RawKernel` compile CUDA sources for the host with cudasim's
  header (`_compile`) and run the launches there.
- `cuda` has one device (0) with a small multiprocessor count.
- `flags` has CuPy's three fields only (no `writeable`: CuPy arrays have
  no read-only state).

Its limit: any NumPy function works on its arrays, where CuPy implements
most but not all of them; a NumPy function CuPy lacks fails only on a GPU.

Test-only: never imported by fastnorm itself.
"""
import functools
import sys
import types

import numpy as np

from . import _compile

__version__ = "0.0+cudasim"
SIMULATED = True  # lets a test tell the stand-in from CuPy

_MODULE = sys.modules[__name__]


def _unwrap(x, allow_host=False):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, np.ndarray) and x.ndim and not allow_host:
        raise TypeError("Unsupported type <class 'numpy.ndarray'>: a NumPy array given where "
                        "CuPy takes device arrays (copy it with cupy.asarray first)")
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v, allow_host) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v, allow_host) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray._of(x)
    if isinstance(x, tuple):
        return tuple(_wrap(v) for v in x)
    if isinstance(x, list):
        return [_wrap(v) for v in x]
    return x


class _MemoryPointer:
    def __init__(self, ptr):
        self.ptr = ptr


class ndarray(np.lib.mixins.NDArrayOperatorsMixin):
    __slots__ = ("_a",)

    def __init__(self, shape, dtype=float, order="C"):
        self._a = np.empty(shape, dtype, order=order)

    @classmethod
    def _of(cls, a):
        obj = cls.__new__(cls)
        obj._a = a
        return obj

    # -- CuPy's refusals ---------------------------------------------------
    def __array__(self, dtype=None, copy=None):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. Please use "
                        "`.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = _unwrap(inputs)
        if "out" in kwargs:
            kwargs["out"] = _unwrap(kwargs["out"])
        return _wrap(getattr(ufunc, method)(*inputs, **kwargs))

    def __array_function__(self, func, types_, args, kwargs):
        return _wrap(func(*_unwrap(args), **_unwrap(kwargs)))

    # -- attributes ---------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    @property
    def flags(self):  # CuPy's Flags: these three only (no `writeable`)
        f = self._a.flags
        return types.SimpleNamespace(c_contiguous=f.c_contiguous, f_contiguous=f.f_contiguous,
                                     owndata=f.owndata)
    T = property(lambda self: _wrap(self._a.T))
    data = property(lambda self: _MemoryPointer(self._a.ctypes.data))
    device = property(lambda self: cuda.Device(0))

    @property
    def __cuda_array_interface__(self):
        return {"shape": self.shape, "typestr": self.dtype.str, "version": 3,
                "data": (self.data.ptr, not self._a.flags.writeable),
                "strides": None if self._a.flags.c_contiguous else self.strides}

    def get(self, stream=None, order="C", out=None):
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr):
        self._a[...] = arr

    def __getattr__(self, name):  # the methods: NumPy's, on the device array
        if name.startswith("__"):  # not NumPy's __array_interface__ and the like
            raise AttributeError(name)
        attr = getattr(self._a, name)
        if not callable(attr):
            return _wrap(attr)

        @functools.wraps(attr)
        def method(*args, **kwargs):
            return _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return method

    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value, allow_host=True)

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) if isinstance(v, np.ndarray) else ndarray._of(np.asarray(v))
                for v in self._a)

    def __bool__(self):
        return bool(self._a)

    def __int__(self):
        return int(self._a)

    def __float__(self):
        return float(self._a)

    def __index__(self):
        return self._a.__index__()

    def __repr__(self):
        return repr(self._a).replace("array(", "array(", 1)

    def __reduce__(self):  # pickles as CuPy's do: the data comes along
        return _rebuild, (np.array(self._a, copy=True),)

    def __copy__(self):
        return _wrap(self._a.copy())

    def __deepcopy__(self, memo):
        return _wrap(self._a.copy())


ndarray.__module__ = "cupy"


def _rebuild(a):
    return ndarray._of(a)


# -- functions -----------------------------------------------------------------

def asarray(a, dtype=None, order=None, **_):
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    return ndarray._of(np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K", ndmin=0, **_):
    base = a._a if isinstance(a, ndarray) else a
    return ndarray._of(np.array(base, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, **_):
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return np.asarray(a, order=order)


def argsort(a, axis=-1, kind=None):
    """CuPy's sorts are stable whatever `kind` (which takes None or 'stable'
    only); NumPy's default quicksort is not: sort stably here, as CuPy."""
    if kind not in (None, "stable"):
        raise ValueError("cudasim: CuPy's argsort takes kind=None or 'stable' only")
    return _wrap(np.argsort(_unwrap(a), axis=axis, kind="stable"))


def sort(a, axis=-1, kind=None):
    """As argsort: stable, as CuPy's."""
    if kind not in (None, "stable"):
        raise ValueError("cudasim: CuPy's sort takes kind=None or 'stable' only")
    return _wrap(np.sort(_unwrap(a), axis=axis, kind="stable"))


def is_available():
    return True


def get_array_module(*args):
    return _MODULE if any(isinstance(a, ndarray) for a in args) else np


def __getattr__(name):  # everything else: NumPy's function on device arrays
    obj = getattr(np, name)
    if isinstance(obj, (types.FunctionType, types.BuiltinFunctionType, np.ufunc)) or \
            type(obj).__name__ == "_ArrayFunctionDispatcher":
        @functools.wraps(obj)
        def function(*args, **kwargs):
            return _wrap(obj(*_unwrap(args), **_unwrap(kwargs)))
        return function
    return obj


# -- kernels -------------------------------------------------------------------

class RawModule:
    def __init__(self, code=None, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 *, name_expressions=None, jitify=False):
        if code is None:
            with open(path) as f:
                code = f.read()
        self.code = code
        self.options = tuple(options)
        self.name_expressions = list(name_expressions or ())
        self._library = None
        self._bounds = _compile.launch_bounds(code)

    def _lib(self):
        if self._library is None:
            self._library = _compile.build(self.code, self.name_expressions, self.options)
        return self._library

    def get_function(self, name):
        if name not in self.name_expressions:
            raise cuda.driver.CUDADriverError(
                f"CUDA_ERROR_NOT_FOUND: named symbol not found ({name!r} is not among the "
                "module's name_expressions)")
        base = name.split("<")[0].strip()
        return RawKernel._of(self._lib(), self.name_expressions.index(name), name,
                             self._bounds.get(base, 1024))


class RawKernel:
    def __init__(self, code, name, options=(), **_):
        module = RawModule(code=code, options=options, name_expressions=[name])
        kernel = module.get_function(name)
        self.__dict__.update(kernel.__dict__)

    @classmethod
    def _of(cls, library, index, name, max_threads):
        k = cls.__new__(cls)
        k._library, k._index, k.name, k.max_threads_per_block = library, index, name, max_threads
        k.attributes = {"max_threads_per_block": max_threads}
        return k

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None,
                 enable_cooperative_groups=False):
        if shared_mem:
            raise NotImplementedError("cudasim: dynamic shared memory is not supported")
        if not isinstance(args, tuple):
            raise TypeError("kernel arguments must be a tuple")
        _compile.launch(self._library, self._index, grid, block, args,
                        self.max_threads_per_block, ndarray)


# -- cuda ----------------------------------------------------------------------

class _Device:
    MULTIPROCESSORS = 4  # few: grid-stride kernels get few blocks here

    def __init__(self, device=0):
        if int(device) != 0:
            raise ValueError(f"cudasim has one device (0), not {device}")
        self.id = 0
        self.attributes = {"MultiProcessorCount": self.MULTIPROCESSORS,
                           "MaxThreadsPerBlock": 1024, "WarpSize": 32}
        self.compute_capability = "90"

    def synchronize(self):
        pass

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def __eq__(self, other):
        return isinstance(other, _Device) and other.id == self.id

    def __hash__(self):
        return hash(self.id)


class _CUDADriverError(RuntimeError):
    pass


cuda = types.SimpleNamespace(
    Device=_Device,
    runtime=types.SimpleNamespace(getDevice=lambda: 0, getDeviceCount=lambda: 1,
                                  deviceSynchronize=lambda: None),
    driver=types.SimpleNamespace(CUDADriverError=_CUDADriverError),
    get_current_stream=lambda: None,
)

"""Compile a CUDA source for the host with cudasim's header, and launch its
kernels (see include/cudasim.h for what this execution can and cannot see).

A module is the source plus one `extern "C"` launcher per name expression,
compiled once by g++ into a shared library cached under the system's
temporary directory (keyed on the source, the header and the flags).
"""
import ctypes
import hashlib
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

INCLUDE = Path(__file__).parent / "include"
CXX = os.environ.get("CXX", "g++")
FLAGS = ("-std=c++17", "-O1", "-fPIC", "-shared", "-w", "-fno-strict-aliasing")
CACHE = Path(tempfile.gettempdir()) / "fastnorm-cudasim"

_BOUNDS = re.compile(r"__launch_bounds__\s*\(\s*(\d+)[^)]*\)\s*(\w+)\s*\(")


def _library_text(code, name_expressions):
    launchers = "\n".join(
        f'extern "C" int cudasim_launch_{i}(const unsigned* g, const unsigned* b, unsigned mt, '
        f"void** a, int n, const size_t* s, char* e, int el) "
        f"{{ return ::cudasim::launch(&{expr}, g, b, mt, a, n, s, e, el); }}"
        for i, expr in enumerate(name_expressions))
    return '#include "cudasim.h"\n' + code + "\n" + launchers + "\n"


def build(code, name_expressions, options=()):
    """The ctypes library of `code` with a launcher per name expression."""
    text = _library_text(code, name_expressions)
    header = b"".join(p.read_bytes() for p in sorted(INCLUDE.iterdir()))
    key = hashlib.sha256(text.encode() + header + " ".join((CXX, *FLAGS)).encode()).hexdigest()
    CACHE.mkdir(parents=True, exist_ok=True)
    lib = CACHE / f"{key[:24]}.so"
    if not lib.exists():
        src = CACHE / f"{key[:24]}.cpp"
        src.write_text(text)
        tmp = CACHE / f"{key[:24]}.{os.getpid()}.so"
        res = subprocess.run([CXX, *FLAGS, "-I", str(INCLUDE), "-o", str(tmp), str(src)],
                             capture_output=True, text=True)
        if res.returncode:
            raise CompileError(res.stderr[-6000:])
        os.replace(tmp, lib)  # atomic: concurrent test processes may build the same module
    return ctypes.CDLL(str(lib))


class CompileError(RuntimeError):
    pass


def launch_bounds(code):
    """{kernel name: max threads per block} from the __launch_bounds__ in `code`."""
    return {name: int(n) for n, name in _BOUNDS.findall(code)}


def _argument(a, ndarray):
    """(a ctypes buffer with the argument's bytes, its size), as CuPy passes
    kernel arguments: arrays as pointers, NumPy scalars as their bytes,
    Python int/float/bool as int64/float64/bool, None as a null pointer."""
    if a is None:
        return ctypes.c_void_p(0), 8
    if isinstance(a, ndarray):
        return ctypes.c_void_p(a.data.ptr), 8
    if isinstance(a, bool):
        a = np.bool_(a)
    elif isinstance(a, int):
        a = np.int64(a)
    elif isinstance(a, float):
        a = np.float64(a)
    if not isinstance(a, np.generic):
        raise TypeError(f"unsupported kernel argument type: {type(a).__name__}")
    raw = np.array(a).tobytes()
    return ctypes.create_string_buffer(raw, len(raw)), len(raw)


def launch(library, index, grid, block, args, max_threads, ndarray):
    def dims(d):
        d = (d,) if isinstance(d, int) else tuple(int(v) for v in d)
        if not 1 <= len(d) <= 3:
            raise ValueError(f"grid and block take 1 to 3 dimensions, got {d}")
        return (ctypes.c_uint * 3)(*d, *(1,) * (3 - len(d)))

    buffers, sizes = zip(*(_argument(a, ndarray) for a in args)) if args else ((), ())
    pointers = (ctypes.c_void_p * max(1, len(args)))(
        *(ctypes.cast(ctypes.pointer(b), ctypes.c_void_p) for b in buffers))
    size_array = (ctypes.c_size_t * max(1, len(args)))(*sizes)
    err = ctypes.create_string_buffer(2048)
    fn = getattr(library, f"cudasim_launch_{index}")
    fn.restype = ctypes.c_int
    if fn(dims(grid), dims(block), ctypes.c_uint(max_threads), pointers, len(args), size_array,
          err, len(err)):
        raise LaunchError(err.value.decode())


class LaunchError(RuntimeError):
    pass

"""Kernel sources of the GPU path and their compiled CuPy modules.

FAMILIES is the one table of every kernel and every (storage, accumulation)
type pair it is instantiated for; the runtime (`get_kernel`) and the compile
check (`fastnorm._cuda.check`) both read it, so a kernel missing from it is
neither compiled nor checked. CuPy is imported inside the functions that
need it, never at import time.
"""
import functools
from importlib import resources

# (storage type T, accumulation type A) of each supported NumPy dtype: float16
# accumulates in float32, float32 in float32, float64 in float64.
TYPES = {
    "float32": ("float", "float"),
    "float64": ("double", "double"),
    "float16": ("__half", "float"),
}

# The accumulation dtype (of the A-typed arguments and outputs) per dtype.
ACC_DTYPE = {"float32": "float32", "float64": "float64", "float16": "float32"}

_KERNELS = {
    "row_norms": (
        "layer_norm_fwd",
        "layer_norm_bwd",
        "layer_norm_param_grads_partial",
        "layer_norm_param_grads_merge",
    ),
    "column_stats": (
        "col_moments_partial",
        "col_moments_merge",
        "col_min_max_partial",
        "col_min_max_merge",
        "col_max_abs_partial",
        "col_max_abs_merge",
        "row_moments",
    ),
    "apply": (
        "affine_cols",
        "affine_rows",
    ),
    "channels": (
        "channel_moments_partial",
        "channel_moments_merge",
        "channel_dot_sums_partial",
        "channel_dot_sums_merge",
        "channel_affine",
        "channel_backward",
        "lrn_forward",
        "lrn_backward",
    ),
}

# family -> its name expressions, e.g. "layer_norm_fwd<float, float>"
FAMILIES = {
    family: [f"{kernel}<{t}, {a}>" for kernel in kernels for t, a in TYPES.values()]
    for family, kernels in _KERNELS.items()
}

# NVRTC options (CuPy adds its own include paths, the architecture and -ftz).
OPTIONS = ("--std=c++14",)

_INCLUDE = '#include "common.cuh"'


def name_expression(kernel, dtype):
    """The name expression of `kernel` for arrays of `dtype` (a NumPy dtype
    or its name), e.g. ("layer_norm_fwd", float16) -> "layer_norm_fwd<__half, float>"."""
    t, a = TYPES[getattr(dtype, "name", str(dtype))]
    return f"{kernel}<{t}, {a}>"


def _read(name):
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def source(family):
    """The complete CUDA source of `family`: its .cu file with common.cuh
    pasted in place of its include, #line directives keeping compiler
    messages on the original files. One self-contained text, so that NVRTC
    needs no include path of ours and CuPy's cache (keyed on the text) sees
    every edit."""
    if family not in FAMILIES:
        raise KeyError(f"unknown kernel family {family!r}; known: {sorted(FAMILIES)}")
    text = _read(f"{family}.cu")
    common = _read("common.cuh").replace("#pragma once", "")  # keeps its line
    lines = text.split("\n")
    at = lines.index(_INCLUDE)  # ValueError if the family lost its include
    return "\n".join([
        *lines[:at],
        '#line 1 "common.cuh"',
        common,
        f'#line {at + 2} "{family}.cu"',
        *lines[at + 1:],
    ])


def get_kernel(family, name_expression):
    """The cupy.RawKernel of `name_expression` (listed in FAMILIES[family])
    on the current device; its module is compiled on first use, once per
    (device, family)."""
    if name_expression not in FAMILIES.get(family, ()):
        raise KeyError(f"{name_expression!r} is not a kernel of family {family!r} "
                       "(see fastnorm._cuda._loader.FAMILIES)")
    import cupy
    return _kernel(cupy.cuda.runtime.getDevice(), family, name_expression)


@functools.lru_cache(maxsize=None)
def _module(device_id, family):
    import cupy
    return cupy.RawModule(code=source(family), options=OPTIONS,
                          name_expressions=FAMILIES[family])


@functools.lru_cache(maxsize=None)
def _kernel(device_id, family, name_expression):
    # called with device_id current, where get_function compiles the module
    return _module(device_id, family).get_function(name_expression)

# The kernels live in _stats.pxi; setup.py compiles this module for any CPU of the architecture.
include "_stats.pxi"

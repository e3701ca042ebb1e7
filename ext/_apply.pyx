# The kernels live in _apply.pxi; setup.py compiles this module for any CPU of the architecture.
include "_apply.pxi"

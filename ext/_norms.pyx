# The kernels live in _norms.pxi; setup.py compiles this module for any CPU of the architecture.
include "_norms.pxi"

# The kernels live in _channels.pxi; setup.py compiles this module for any CPU of the architecture.
include "_channels.pxi"

# The kernels live in _channels.pxi; setup.py compiles this module with -march=x86-64-v3 (AVX2, FMA).
include "_channels.pxi"

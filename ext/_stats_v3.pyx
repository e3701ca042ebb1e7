# The kernels live in _stats.pxi; setup.py compiles this module with -march=x86-64-v3 (AVX2, FMA).
include "_stats.pxi"

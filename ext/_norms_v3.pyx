# The kernels live in _norms.pxi; setup.py compiles this module with -march=x86-64-v3 (AVX2, FMA).
include "_norms.pxi"

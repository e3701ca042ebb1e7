# The probe lives in _bandwidth.pxi; setup.py compiles this module with -march=x86-64-v3, like the kernels it judges.
include "_bandwidth.pxi"

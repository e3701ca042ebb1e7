# The probe lives in _bandwidth.pxi; setup.py compiles this module for any CPU of the architecture.
include "_bandwidth.pxi"

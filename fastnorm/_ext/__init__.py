"""Compiled kernels (built from ext/*.pyx). Kernels never validate: callers
pass C-contiguous float32/float64 buffers, explicit sizes and n_threads."""

"""What the OpenMP runtime that fastnorm's kernels use says about threads."""

cdef extern from "omp_compat.h":
    int FASTNORM_OPENMP
    int omp_get_max_threads() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTNORM_OPENMP)


def max_threads():
    """omp_get_max_threads(): follows OMP_NUM_THREADS and threadpoolctl limits."""
    return omp_get_max_threads()

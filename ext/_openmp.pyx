"""What the machine and the OpenMP runtime that fastnorm's kernels use offer."""

cdef extern from "omp_compat.h":
    int FASTNORM_OPENMP
    int omp_get_max_threads() nogil

cdef extern from "cpu_features.h":
    int fastnorm_cpu_is_x86_64_v3()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTNORM_OPENMP)


def max_threads():
    """omp_get_max_threads(): follows OMP_NUM_THREADS and threadpoolctl limits."""
    return omp_get_max_threads()


def cpu_is_x86_64_v3():
    """True when this CPU runs the kernels built for x86-64-v3 (AVX2 + FMA)."""
    return bool(fastnorm_cpu_is_x86_64_v3())

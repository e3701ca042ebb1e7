/* Lets the kernels call the OpenMP runtime whether or not the compiler
 * supports OpenMP: without it, everything runs on one thread. */
#ifndef FASTNORM_OMP_COMPAT_H
#define FASTNORM_OMP_COMPAT_H
#ifdef _OPENMP
#include <omp.h>
#define FASTNORM_OPENMP 1
#else
#define FASTNORM_OPENMP 0
static inline int omp_get_max_threads(void) { return 1; }
static inline int omp_get_thread_num(void) { return 0; }
#endif
#endif

/* shifted_sums_{float,double} and squared_deviations_{float,double}: see
 * moments_cols_impl.h. */
#ifndef FASTNORM_MOMENTS_COLS_H
#define FASTNORM_MOMENTS_COLS_H
#include <Python.h>

#define T float
#define FASTNORM_FN(name) name##_float
#include "moments_cols_impl.h"
#undef T
#undef FASTNORM_FN

#define T double
#define FASTNORM_FN(name) name##_double
#include "moments_cols_impl.h"
#undef T
#undef FASTNORM_FN
#endif

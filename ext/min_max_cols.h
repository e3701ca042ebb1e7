/* min_max_cols_block_{float,double} and min_max_row_{float,double}: see
 * min_max_cols_impl.h. */
#ifndef FASTNORM_MIN_MAX_COLS_H
#define FASTNORM_MIN_MAX_COLS_H
#include <math.h>
#include <Python.h>

#define T float
#define FASTNORM_FN(name) name##_float
#include "min_max_cols_impl.h"
#undef T
#undef FASTNORM_FN

#define T double
#define FASTNORM_FN(name) name##_double
#include "min_max_cols_impl.h"
#undef T
#undef FASTNORM_FN
#endif

/* row_norm_fwd_*, row_norm_bwd_*, row_norm_param_grads_* for float and
 * double: see row_norms_impl.h. */
#ifndef FASTNORM_ROW_NORMS_H
#define FASTNORM_ROW_NORMS_H
#include <math.h>
#include <Python.h>

#define T float
#define FASTNORM_FN(name) name##_float
#include "row_norms_impl.h"
#undef T
#undef FASTNORM_FN

#define T double
#define FASTNORM_FN(name) name##_double
#include "row_norms_impl.h"
#undef T
#undef FASTNORM_FN
#endif

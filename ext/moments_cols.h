/* shifted_sums_{float,double} and squared_deviations_{float,double}: see
 * moments_cols_impl.h. */
#ifndef FASTNORM_MOMENTS_COLS_H
#define FASTNORM_MOMENTS_COLS_H
#define FASTNORM_TEMPLATE "moments_cols_impl.h"
#include "for_float_and_double.h"
#endif

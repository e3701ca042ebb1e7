/* min_max_cols_block_{float,double} and min_max_row_{float,double}: see
 * min_max_cols_impl.h. */
#ifndef FASTNORM_MIN_MAX_COLS_H
#define FASTNORM_MIN_MAX_COLS_H
#include "read_ahead.h"
#define FASTNORM_TEMPLATE "min_max_cols_impl.h"
#include "for_float_and_double.h"
#endif

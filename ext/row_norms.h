/* row_norm_fwd_*, row_norm_bwd_* for float and
 * double: see row_norms_impl.h. */
#ifndef FASTNORM_ROW_NORMS_H
#define FASTNORM_ROW_NORMS_H
#include <string.h>
#include "near_center.h"
#include "row_norms_float32.h"
#define FASTNORM_TEMPLATE "row_norms_impl.h"
#include "for_float_and_double.h"
#endif

/* Instantiates the C template FASTNORM_TEMPLATE (a header written in terms
 * of T and FASTNORM_FN(name)) for float and double: FASTNORM_FN(f) becomes
 * f_float and f_double; FASTNORM_T_IS_FLOAT is 1 for float, 0 for double. Include it once per template:
 *
 *     #define FASTNORM_TEMPLATE "row_norms_impl.h"
 *     #include "for_float_and_double.h"
 */
#include <math.h>
#include <Python.h>

#define T float
#define FASTNORM_FN(name) name##_float
#define FASTNORM_T_IS_FLOAT 1
#include FASTNORM_TEMPLATE
#undef T
#undef FASTNORM_FN
#undef FASTNORM_T_IS_FLOAT

#define T double
#define FASTNORM_FN(name) name##_double
#define FASTNORM_T_IS_FLOAT 0
#include FASTNORM_TEMPLATE
#undef T
#undef FASTNORM_FN
#undef FASTNORM_T_IS_FLOAT

#undef FASTNORM_TEMPLATE

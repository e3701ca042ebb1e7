/* block_* and lrn_* bodies for float and double: see channels_impl.h. */
#ifndef FASTNORM_CHANNELS_H
#define FASTNORM_CHANNELS_H
#define FASTNORM_TEMPLATE "channels_impl.h"
#include "for_float_and_double.h"
#endif

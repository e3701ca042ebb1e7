/* The test that decides whether sums taken about a center (a row's first
 * value, the previous sub-chunk's mean) are enough: the corrected two-pass
 * step M2 = sum_dd - sum_d^2 / n is accurate to a few ulps when the data's
 * mean lies within 8 standard deviations of the center (sum_d^2 / n <=
 * 64 M2), the subtraction then cancelling at most 6 bits. Otherwise, and
 * with an inf or NaN, the caller sums again about the mean. A constant run
 * whose value differs from the center fails it (its M2 would be a rounding
 * residue, not exactly 0). */
#ifndef FASTNORM_NEAR_CENTER_H
#define FASTNORM_NEAR_CENTER_H
#include <math.h>

/* shift_sq: sum_d^2 / n, as the caller rounds it; sum_dd: the squared
 * deviations' sum about the center */
static inline int sums_near_center(double shift_sq, double sum_dd)
{
    return 65.0 * shift_sq <= 64.0 * sum_dd && sum_dd < INFINITY;
}
#endif

/* shifted_sums_{float,double}, resum_non_finite_{float,double},
 * squared_deviations_{float,double} and row_corrected_mean_{float,double}:
 * see moments_cols_impl.h; correct_to_mean and near_center below. */
#ifndef FASTNORM_MOMENTS_COLS_H
#define FASTNORM_MOMENTS_COLS_H
#include "near_center.h"
#include "read_ahead.h"

/* Evaluated as written, without setup.py's -fassociative-math (which is for
 * the row kernels' reductions): these loops vectorize across columns without
 * it, and the corrected two-pass relies on their order of operations. With
 * it, GCC turned (center - K) + d into (center + d) - K, rounding every
 * sub-chunk's mean at the data's magnitude (M2 off by ~1e-7 relative for
 * mean/std = 1e11), and summed the zeros of a constant column to ~1e-17. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("no-associative-math")
#endif

#define FASTNORM_TEMPLATE "moments_cols_impl.h"
#include "for_float_and_double.h"

/* The corrected two-pass step for the columns of an unweighted sub-chunk of
 * w_sum rows whose deviations about center went into m2 (sum of squares) and
 * dev (sum): mean becomes the exact mean of the sub-chunk - K, m2 its M2,
 * dev w_sum (its count). Columns where an inf or NaN left d not finite keep
 * mean and m2 as they are. */
static void correct_to_mean(Py_ssize_t n_cols, double w_sum, const double *restrict K,
                            const double *restrict center, double *restrict mean,
                            double *restrict m2, double *restrict dev)
{
    Py_ssize_t j;
    for (j = 0; j < n_cols; j++) {
        /* A division, not * (1 / w_sum): equal deviations (a constant
         * column) then give d equal to them, so M2 is exactly 0. */
        double d = dev[j] / w_sum;
        if (fabs(d) < INFINITY) {
            /* from center (= mean + K rounded, pass 1 being approximate):
             * a constant column's mean stays exact */
            mean[j] = (center[j] - K[j]) + d;
            m2[j] = m2[j] - dev[j] * d;
        }
        dev[j] = w_sum;
    }
}

/* Whether the sums about center of squared_deviations (m2, and dev: the
 * deviations' sum over w_sum rows) give every column's M2 = m2 - dev^2/w_sum
 * to a few ulps without a second pass (near_center.h). */
static int near_center(Py_ssize_t n_cols, double w_sum, const double *restrict m2,
                       const double *restrict dev)
{
    Py_ssize_t j;
    int far = 0;
    for (j = 0; j < n_cols; j++)
        far |= !sums_near_center(dev[j] * (dev[j] / w_sum), m2[j]);
    return !far;
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
#endif

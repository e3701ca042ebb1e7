/* Read-bandwidth probe body: sum of a[0:n] with 16 independent partial sums,
 * so the additions never wait on each other and the loop runs at the pace
 * of memory, not of one addition chain's latency. */
#ifndef FASTNORM_READ_STREAM_H
#define FASTNORM_READ_STREAM_H
#include <Python.h>

static double fastnorm_sum_lanes(const double *restrict a, Py_ssize_t n)
{
    double acc[16] = {0};
    Py_ssize_t i, k;
    for (i = 0; i + 16 <= n; i += 16)
        for (k = 0; k < 16; k++)
            acc[k] += a[i + k];
    for (; i < n; i++)
        acc[0] += a[i];
    for (k = 1; k < 16; k++)
        acc[0] += acc[k];
    return acc[0];
}
#endif

/* Software prefetch for column kernels that stream a block of rows once,
 * a sweep of a few rows at a time, and store per-column accumulators on
 * every sweep. Those stores keep the core from running far enough ahead
 * by itself to keep memory busy (float64 moments: 5.3 GB/s of 11.4 at one
 * thread without it, 8-9 with it), so each sweep prefetches the lines that
 * lie READ_AHEAD_BYTES past it. A prefetch past the end of an array does
 * not fault. */
#ifndef FASTNORM_READ_AHEAD_H
#define FASTNORM_READ_AHEAD_H
#include <Python.h>

#ifndef READ_AHEAD_BYTES
#define READ_AHEAD_BYTES 4096
#endif

/* Prefetch [p + READ_AHEAD_BYTES, p + READ_AHEAD_BYTES + nbytes). */
static inline void read_ahead(const void *p, Py_ssize_t nbytes)
{
    const char *q = (const char *)p + READ_AHEAD_BYTES;
    Py_ssize_t k;
    for (k = 0; k < nbytes; k += 64)
        __builtin_prefetch(q + k, 0, 3);
}
#endif

/* Software prefetch for column kernels that stream a block of rows once,
 * a sweep of a few rows at a time, and store per-column accumulators on
 * every sweep. Those stores keep the core from running far enough ahead
 * by itself to keep memory busy (float64 moments: 5.3 GB/s of 11.4 at one
 * thread without it, 8-9 with it), so each sweep prefetches the lines that
 * lie READ_AHEAD_BYTES past it. Only short sweeps do (at most
 * READ_AHEAD_BYTES, the rows then being one stream): the rows of a longer
 * one are each a long stream, which the hardware prefetcher follows, and
 * prefetching them too made them slower (20000 x 4096: 0.82-0.86x the time
 * without). A prefetch past the end of an array does not fault.
 *
 * A macro, not a function: GCC split such a function, found the part that
 * only prefetches free of side effects and deleted the calls to it. */
#ifndef FASTNORM_READ_AHEAD_H
#define FASTNORM_READ_AHEAD_H

#ifndef READ_AHEAD_BYTES
#define READ_AHEAD_BYTES 4096
#endif

/* Prefetch [p + READ_AHEAD_BYTES, p + READ_AHEAD_BYTES + nbytes) where
 * nbytes <= READ_AHEAD_BYTES. */
#define READ_AHEAD(p, nbytes) do { \
        const char *ahead_ = (const char *)(p) + READ_AHEAD_BYTES; \
        const Py_ssize_t n_ = (nbytes); \
        Py_ssize_t k_; \
        if (n_ <= READ_AHEAD_BYTES) \
            for (k_ = 0; k_ < n_; k_ += 64) \
                __builtin_prefetch(ahead_ + k_, 0, 3); \
    } while (0)
#endif

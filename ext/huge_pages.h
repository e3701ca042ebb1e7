/* Transparent huge pages for a large new buffer, as NumPy asks for them for
 * its arrays (its threshold, 4 MiB, is kept). Where THP is in "madvise" mode,
 * writing a buffer's 4 KiB pages the first time ran at a quarter of the
 * speed: a new 128 MiB torch tensor filled in 63 ms, on huge pages in
 * 13-16 ms (torch's CPU allocator does not ask for them). Advice only: it
 * must come before the first write, and nothing changes where THP is
 * unavailable. */
#ifndef FASTNORM_HUGE_PAGES_H
#define FASTNORM_HUGE_PAGES_H
#include <stddef.h>
#include <stdint.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

static inline void fastnorm_advise_huge_pages(void *p, size_t nbytes)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t page = 4096;
    const uintptr_t start = ((uintptr_t)p + page - 1) & ~(page - 1);
    const uintptr_t end = ((uintptr_t)p + nbytes) & ~(page - 1);
    if (nbytes >= ((size_t)4 << 20) && end > start)
        madvise((void *)start, end - start, MADV_HUGEPAGE);
#else
    (void)p;
    (void)nbytes;
#endif
}
#endif

"""Row-normalization kernels of the deep-learning norms (layer_norm, rms_norm).

X is (n_rows, n) C-contiguous: each row is one normalized group. Forward
kernels write y and save (mean, rstd) per row in float64; backward kernels
take them back. Statistics accumulate in float64 with a corrected two-pass
over the row while it is in cache, so mean 1e4 +- 1 in float32 (and 1e8 +- 1
in float64) keeps its variance. The per-row bodies are in row_norms_impl.h.

The weight and bias gradients are column sums over rows: rows are split into
a fixed number of blocks (a function of the shape only), each block sums its
rows, and the blocks are added in order: bitwise the same for any thread
count.

16-bit storage (layer_norm_fwd_16 / layer_norm_bwd_16): x, y, dy, dx are
bfloat16 or float16 held as uint16, weight and bias float32, statistics and
parameter gradients float64 as above. Each row is converted into a float32
scratch row (per thread, in cache), the float body runs on it, and its
result is rounded back to 16 bits (half.h): the same numerics as the float32
kernels, no per-type copy of the bodies, and one read of each input.
"""
cimport numpy as cnp
from cython.parallel cimport prange, threadid
from libc.stdlib cimport calloc, free, malloc

cnp.import_array()

ctypedef fused floating:
    float
    double

cdef extern from "huge_pages.h":
    void fastnorm_advise_huge_pages(void* p, size_t nbytes) noexcept nogil


def advise_huge_pages(size_t address, size_t nbytes):
    """Ask for transparent huge pages for the new, untouched buffer of
    nbytes at address when it is large (huge_pages.h): for outputs that
    torch allocates, first-touch writes ran 4x faster."""
    fastnorm_advise_huge_pages(<void*> address, nbytes)


cdef extern from "row_norms.h":
    void row_norm_fwd_float(const float* x, Py_ssize_t n, const float* w, const float* b,
                            double eps, int rms, float* y, double* mean,
                            double* rstd) noexcept nogil
    void row_norm_fwd_double(const double* x, Py_ssize_t n, const double* w, const double* b,
                             double eps, int rms, double* y, double* mean,
                             double* rstd) noexcept nogil
    void row_norm_bwd_float(const float* dy, const float* x, Py_ssize_t n, const float* w,
                            double mu, double r, int rms, float* dx, double* dw,
                            double* db) noexcept nogil
    void row_norm_bwd_double(const double* dy, const double* x, Py_ssize_t n,
                             const double* w, double mu, double r, int rms,
                             double* dx, double* dw, double* db) noexcept nogil

cdef extern from "half.h":
    void fastnorm_half_to_float(const unsigned short* src, Py_ssize_t n, int bf16,
                                float* dst) noexcept nogil
    void fastnorm_float_to_half(const float* src, Py_ssize_t n, int bf16,
                                unsigned short* dst) noexcept nogil

cdef enum:
    MAX_BLOCKS = 64
    BLOCK_VALUES = 16384  # the least work of a block of the parameter gradients


cdef inline Py_ssize_t _n_blocks(Py_ssize_t n_rows, Py_ssize_t n) noexcept nogil:
    """Blocks of rows whose parameter-gradient partial sums are added in
    block order: a function of the shape alone, so the sums are bitwise the
    same for any thread count; few for small inputs, whose partial sums
    (2 n doubles a block) would otherwise cost more than their rows."""
    return max(1, min(n_rows, min(<Py_ssize_t> MAX_BLOCKS, n_rows * n // BLOCK_VALUES)))


def layer_norm_fwd(const floating[:, ::1] X, const floating[::1] weight,
                   const floating[::1] bias, double eps, bint rms, int n_threads,
                   floating[:, ::1] out, double[::1] mean, double[::1] rstd):
    """out = (x - mean) * rstd * weight + bias per row (rms: mean = 0 and
    rstd = 1 / sqrt(mean(x^2) + eps), no bias); weight/bias may be None."""
    cdef Py_ssize_t n_rows = X.shape[0], n = X.shape[1], i
    cdef const floating* w = NULL if weight is None else &weight[0]
    cdef const floating* b = NULL if bias is None else &bias[0]
    if n == 0:
        return
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        if floating is float:
            row_norm_fwd_float(&X[i, 0], n, w, b, eps, rms, &out[i, 0], &mean[i], &rstd[i])
        else:
            row_norm_fwd_double(&X[i, 0], n, w, b, eps, rms, &out[i, 0], &mean[i], &rstd[i])


cdef void _rows_fwd_float(const float* x, Py_ssize_t n_rows, Py_ssize_t n, const float* w,
                          const float* b, double eps, int rms, float* y, double* mean,
                          double* rstd, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    if n_threads <= 1:  # no parallel region: its fork/join costs microseconds
        for i in range(n_rows):
            row_norm_fwd_float(x + i * n, n, w, b, eps, rms, y + i * n, mean + i, rstd + i)
    else:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            row_norm_fwd_float(x + i * n, n, w, b, eps, rms, y + i * n, mean + i, rstd + i)


cdef void _rows_fwd_double(const double* x, Py_ssize_t n_rows, Py_ssize_t n, const double* w,
                           const double* b, double eps, int rms, double* y, double* mean,
                           double* rstd, int n_threads) noexcept nogil:
    cdef Py_ssize_t i
    if n_threads <= 1:
        for i in range(n_rows):
            row_norm_fwd_double(x + i * n, n, w, b, eps, rms, y + i * n, mean + i, rstd + i)
    else:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            row_norm_fwd_double(x + i * n, n, w, b, eps, rms, y + i * n, mean + i, rstd + i)


def row_norm_fwd(cnp.ndarray X, Py_ssize_t n_rows, Py_ssize_t n, object weight, object bias,
                 double eps, bint rms, int n_threads, object out=None):
    """(out, mean, rstd) of layer_norm (rms: rms_norm) over rows of n values.

    The lean entry of layer_norm_fwd for every size, small calls above all:
    X is a C-contiguous float32/float64 ndarray of any shape holding n_rows
    rows of n values; weight/bias None or C-contiguous ndarrays of n values
    of X's dtype (the caller checked all this). out has X's shape and dtype:
    the given `out` (a C-contiguous ndarray of X's size and dtype that does
    not overlap X, weight or bias: the caller checked it), written in place,
    or a new array. mean and rstd are float64 (n_rows,). No memoryviews and
    no fused-type dispatch: a call costs a fraction of a microsecond beyond
    the arithmetic.
    """
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef cnp.npy_intp nr = n_rows
    if out is None:
        out = cnp.PyArray_EMPTY(cnp.PyArray_NDIM(X), cnp.PyArray_DIMS(X), typenum, 0)
    cdef cnp.ndarray mean = cnp.PyArray_EMPTY(1, &nr, cnp.NPY_DOUBLE, 0)
    cdef cnp.ndarray rstd = cnp.PyArray_EMPTY(1, &nr, cnp.NPY_DOUBLE, 0)
    cdef void* x = cnp.PyArray_DATA(X)
    cdef void* y = cnp.PyArray_DATA(<cnp.ndarray> out)
    cdef double* m = <double*> cnp.PyArray_DATA(mean)
    cdef double* r = <double*> cnp.PyArray_DATA(rstd)
    cdef void* w = NULL if weight is None else cnp.PyArray_DATA(<cnp.ndarray> weight)
    cdef void* b = NULL if bias is None else cnp.PyArray_DATA(<cnp.ndarray> bias)
    if n_rows > 0 and n > 0:
        with nogil:
            if typenum == cnp.NPY_FLOAT:
                _rows_fwd_float(<const float*> x, n_rows, n, <const float*> w,
                                <const float*> b, eps, rms, <float*> y, m, r, n_threads)
            else:
                _rows_fwd_double(<const double*> x, n_rows, n, <const double*> w,
                                 <const double*> b, eps, rms, <double*> y, m, r, n_threads)
    return out, mean, rstd


cdef int _row_norm_fwd_ptrs(size_t x, Py_ssize_t n_rows, Py_ssize_t n, size_t weight,
                            size_t bias, double eps, bint rms, bint is_double, int n_threads,
                            size_t out, size_t mean, size_t rstd) except -1:
    """row_norm_fwd_into's work (see there)."""
    cdef double* scratch = NULL
    if n_rows <= 0 or n <= 0:
        return 0
    if mean == 0 or rstd == 0:
        scratch = <double*> malloc(2 * n_rows * sizeof(double))
        if scratch == NULL:
            raise MemoryError()
        mean, rstd = <size_t> scratch, <size_t> (scratch + n_rows)
    with nogil:
        if is_double:
            _rows_fwd_double(<const double*> x, n_rows, n, <const double*> weight,
                             <const double*> bias, eps, rms, <double*> out, <double*> mean,
                             <double*> rstd, n_threads)
        else:
            _rows_fwd_float(<const float*> x, n_rows, n, <const float*> weight,
                            <const float*> bias, eps, rms, <float*> out, <double*> mean,
                            <double*> rstd, n_threads)
    free(scratch)
    return 0


def row_norm_fwd_into(size_t x, Py_ssize_t n_rows, Py_ssize_t n, size_t weight, size_t bias,
                      double eps, bint rms, bint is_double, int n_threads, size_t out,
                      size_t mean, size_t rstd):
    """row_norm_fwd over buffers given by address (0: no weight/bias), for
    callers whose arrays are not NumPy's (fastnorm.torch's CPU tensors):
    making NumPy views of them costs more than a small call's kernel. The
    caller guarantees C-contiguous buffers of these sizes, float64 when
    is_double else float32 (mean and rstd float64, n_rows values each; 0 for
    both: the caller does not want them, and a scratch buffer takes them)."""
    _row_norm_fwd_ptrs(x, n_rows, n, weight, bias, eps, rms, is_double, n_threads, out, mean,
                       rstd)


# fastnorm.torch's common inference call (see _row_norm_inference there),
# checked here: its checks are most of a small call's cost (a 32 x 64
# kernel takes ~1.7 us, torch's whole call ~6 us), and compiled they cost
# about half of what they cost in Python. torch is not imported here:
# fastnorm.torch hands over what the checks need (set_tensor_api).
cdef tuple _plain_tensor_types = ()
cdef tuple _eager_guards = ()
cdef object _grad_enabled = None
cdef object _empty_like = None
cdef tuple _tensor_dtypes = ()  # float32, float64, bfloat16, float16
cdef object _threads_for_bytes = None
cdef Py_ssize_t _one_thread_below = 0


def set_tensor_api(tuple plain_types, tuple guards, grad_enabled, empty_like, tuple dtypes,
                   threads_for_bytes, Py_ssize_t one_thread_below):
    """What row_norm_tensor_fwd needs of torch and fastnorm: the tensor
    types whose memory it may use, the callables any of which returning
    true means the call is not plain eager execution, torch.is_grad_enabled,
    torch.empty_like, (torch.float32, torch.float64, torch.bfloat16,
    torch.float16), the thread count for a kernel over a number of bytes,
    and the size in bytes below which that count is 1 (not asked: a call
    costs a tenth of a microsecond)."""
    global _plain_tensor_types, _eager_guards, _grad_enabled, _empty_like
    global _tensor_dtypes, _threads_for_bytes, _one_thread_below
    _plain_tensor_types, _eager_guards, _grad_enabled = plain_types, guards, grad_enabled
    _empty_like, _tensor_dtypes = empty_like, dtypes
    _threads_for_bytes, _one_thread_below = threads_for_bytes, one_thread_below


cdef object _kernel_param(object p, object dtype, Py_ssize_t n, bint grad, bint half):
    """p as the kernel takes it (None or p), or False when p is not a plain
    contiguous CPU tensor of n values of dtype (or float32 beside 16-bit
    input) that autograd need not follow."""
    if p is None:
        return None
    if type(p) not in _plain_tensor_types or (grad and p.requires_grad) or not p.is_cpu \
            or p.dim() != 1 or p.numel() != n or not p.is_contiguous():
        return False
    if half and p.dtype is _tensor_dtypes[0]:
        return p
    return p if p.dtype is dtype else False


cdef inline size_t _address(object t):
    return 0 if t is None else <size_t> t.data_ptr()


def row_norm_tensor_fwd(input, normalized_shape, weight, bias, eps, bint rms, alloc=None):
    """layer_norm (rms_norm: rms) of a torch tensor, or None when the call
    is not the common inference call: plain eager execution that autograd
    need not record, on a contiguous float32/float64/bfloat16/float16 CPU
    tensor normalized over its last dimension, weight and bias None or
    contiguous CPU tensors of that size and dtype (float32 too beside 16-bit
    input) (the caller takes the general path). No statistics are kept. The
    output is empty_like(input), or alloc("output", input) when alloc is
    given."""
    cdef object guard
    cdef bint grad, half, bf16 = False
    cdef Py_ssize_t n, n_rows, itemsize, work_bytes
    cdef int n_threads
    cdef object shape
    if type(input) not in _plain_tensor_types or type(eps) is not float:
        return None
    for guard in _eager_guards:
        if guard():
            return None
    grad = _grad_enabled()
    dtype = input.dtype
    if dtype is _tensor_dtypes[0]:
        itemsize = 4
    elif dtype is _tensor_dtypes[1]:
        itemsize = 8
    elif dtype is _tensor_dtypes[2] or dtype is _tensor_dtypes[3]:
        itemsize, bf16 = 2, dtype is _tensor_dtypes[2]
    else:
        return None
    half = itemsize == 2
    shape = input.shape
    if (grad and input.requires_grad) or not input.is_cpu or not len(shape) \
            or not input.is_contiguous():
        return None
    n = shape[len(shape) - 1]  # (this build does not wrap negative indices)
    if n <= 0 or (normalized_shape != (n,) and normalized_shape != n):
        return None
    weight = _kernel_param(weight, dtype, n, grad, half)
    bias = _kernel_param(bias, dtype, n, grad, half)
    if weight is False or bias is False:
        return None
    n_rows = input.numel() // n
    if alloc is None:
        out = _empty_like(input)
        fastnorm_advise_huge_pages(<void*> <size_t> out.data_ptr(), n_rows * n * itemsize)
    else:
        out = alloc("output", input)
    work_bytes = n_rows * n * (8 if itemsize == 8 else 4)  # (16-bit: float32's work)
    n_threads = 1 if work_bytes < _one_thread_below else _threads_for_bytes(work_bytes)
    if half:
        _row_norm_fwd16_ptrs(<const unsigned short*> _address(input), n_rows, n,
                             <const void*> _address(weight), <const void*> _address(bias),
                             eps, rms, bf16, n_threads, <unsigned short*> _address(out),
                             NULL, NULL, weight is not None and weight.dtype is dtype,
                             bias is not None and bias.dtype is dtype)
    else:
        _row_norm_fwd_ptrs(_address(input), n_rows, n, _address(weight), _address(bias), eps,
                           rms, itemsize == 8, n_threads, _address(out), 0, 0)
    return out


ctypedef fused grad_t:  # the parameter gradients' dtype (summed in float64)
    float
    double


cdef int _rows_bwd(const floating* dy, const floating* x, Py_ssize_t n_rows, Py_ssize_t n,
                   const floating* w, const double* mean, const double* rstd, bint rms,
                   floating* dx, grad_t* dw, grad_t* db, int n_threads) noexcept nogil:
    """dx of every row; when dw is not NULL also dw = sum dy * xhat and
    db = sum dy over rows (summed in float64, then stored as grad_t), in the
    row's first pass, with the sums dx needs (one read of dy and x from
    memory; see row_norm_bwd), in fixed blocks (_n_blocks). -1 when out of
    memory."""
    cdef Py_ssize_t i, blk, r0, r1, rows_per_block, n_blocks
    cdef double* partial
    cdef double* p
    if dw == NULL:
        for i in prange(n_rows, schedule="static", num_threads=n_threads):
            if floating is float:
                row_norm_bwd_float(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms, dx + i * n,
                                   NULL, NULL)
            else:
                row_norm_bwd_double(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms,
                                    dx + i * n, NULL, NULL)
        return 0
    n_blocks = _n_blocks(n_rows, n)
    rows_per_block = (n_rows + n_blocks - 1) // n_blocks
    partial = <double*> calloc(2 * n_blocks * n, sizeof(double))
    if partial == NULL:
        return -1
    for blk in prange(n_blocks, schedule="static", num_threads=n_threads):
        p = partial + 2 * blk * n
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_rows)
        for i in range(r0, r1):
            if floating is float:
                row_norm_bwd_float(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms, dx + i * n,
                                   p, p + n)
            else:
                row_norm_bwd_double(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms,
                                    dx + i * n, p, p + n)
    _sum_blocks(partial, n_blocks, n)
    for i in range(n):
        dw[i] = <grad_t> partial[i]
        db[i] = <grad_t> partial[n + i]
    free(partial)
    return 0


def layer_norm_bwd(const floating[:, ::1] dY, const floating[:, ::1] X,
                   const floating[::1] weight, const double[::1] mean,
                   const double[::1] rstd, bint rms, bint want_dw, bint want_db,
                   int n_threads, floating[:, ::1] dX, double[::1] dw, double[::1] db):
    """Gradients of layer_norm (rms_norm with rms=True) given the saved
    (mean, rstd): dX always, dw = sum dy * xhat and db = sum dy over rows
    when asked (float64; see _rows_bwd)."""
    cdef Py_ssize_t n_rows = X.shape[0], n = X.shape[1], j
    cdef int status
    if n == 0:
        return
    if n_rows == 0:
        if want_dw or want_db:
            for j in range(n):
                dw[j] = 0.0
                db[j] = 0.0
        return
    with nogil:
        status = _rows_bwd(&dY[0, 0], &X[0, 0], n_rows, n,
                           NULL if weight is None else &weight[0], &mean[0], &rstd[0], rms,
                           &dX[0, 0], <double*> (&dw[0] if want_dw or want_db else NULL),
                           <double*> (&db[0] if want_dw or want_db else NULL), n_threads)
    if status:
        raise MemoryError()


def row_norm_bwd_into(size_t dy, size_t x, Py_ssize_t n_rows, Py_ssize_t n, size_t weight,
                      size_t mean, size_t rstd, bint rms, bint is_double, int n_threads,
                      size_t dx, size_t dw, size_t db):
    """layer_norm_bwd over buffers given by address (weight 0: none; dw, db
    0: not wanted, else n values each of x's dtype), for callers whose arrays
    are not NumPy's (fastnorm.torch's CPU tensors); the caller guarantees
    C-contiguous buffers of these sizes (see row_norm_fwd_into)."""
    cdef int status
    cdef Py_ssize_t j
    if n <= 0:
        return
    if n_rows <= 0:
        for j in range(n if dw else 0):
            if is_double:
                (<double*> dw)[j] = 0.0
                (<double*> db)[j] = 0.0
            else:
                (<float*> dw)[j] = 0.0
                (<float*> db)[j] = 0.0
        return
    with nogil:
        if is_double:
            status = _rows_bwd(<const double*> dy, <const double*> x, n_rows, n,
                               <const double*> weight, <const double*> mean,
                               <const double*> rstd, rms, <double*> dx, <double*> dw,
                               <double*> db, n_threads)
        else:
            status = _rows_bwd(<const float*> dy, <const float*> x, n_rows, n,
                               <const float*> weight, <const double*> mean,
                               <const double*> rstd, rms, <float*> dx, <float*> dw,
                               <float*> db, n_threads)
    if status:
        raise MemoryError()


cdef void _sum_blocks(double* partial, Py_ssize_t n_blocks, Py_ssize_t n) noexcept nogil:
    """The first block's (dw, db) pair (2 n values) += every other block's,
    in block order."""
    cdef Py_ssize_t blk, j
    for blk in range(1, n_blocks):
        for j in range(2 * n):
            partial[j] += partial[2 * blk * n + j]


def half_to_float(const unsigned short[::1] src, bint bfloat16, float[::1] out):
    """out = src (bfloat16 bits or float16 bits) as float32, exactly."""
    with nogil:
        fastnorm_half_to_float(&src[0] if src.shape[0] else NULL, src.shape[0], bfloat16,
                               &out[0] if out.shape[0] else NULL)


def float_to_half(const float[::1] src, bint bfloat16, unsigned short[::1] out):
    """out = src rounded to bfloat16 or float16 (to nearest, ties to even)."""
    with nogil:
        fastnorm_float_to_half(&src[0] if src.shape[0] else NULL, src.shape[0], bfloat16,
                               &out[0] if out.shape[0] else NULL)


cdef float* _scratch(int n_threads, Py_ssize_t rows, Py_ssize_t n) except NULL:
    """`rows` float rows of length n per thread, for the 16-bit kernels."""
    cdef float* buf = <float*> malloc(max(1, n_threads) * rows * n * sizeof(float))
    if buf == NULL:
        raise MemoryError()
    return buf


cdef int _params_as_float(const void** w, bint w16, const void** b, bint b16, Py_ssize_t n,
                          bint bfloat16, float** buffer) noexcept nogil:
    """Points *w and *b (each NULL, float32 values, or with w16/b16 16-bit
    values of x's kind) at float32 values: the 16-bit ones converted once
    into a new *buffer of 2n floats, which the caller frees (NULL when none
    was needed; torch's conversion of a small parameter cost more than the
    kernel). -1 when out of memory."""
    w16 = w16 and w[0] != NULL
    b16 = b16 and b[0] != NULL
    buffer[0] = NULL
    if not (w16 or b16):
        return 0
    buffer[0] = <float*> malloc(2 * n * sizeof(float))
    if buffer[0] == NULL:
        return -1
    if w16:
        fastnorm_half_to_float(<const unsigned short*> w[0], n, bfloat16, buffer[0])
        w[0] = buffer[0]
    if b16:
        fastnorm_half_to_float(<const unsigned short*> b[0], n, bfloat16, buffer[0] + n)
        b[0] = buffer[0] + n
    return 0


cdef int _row_norm_fwd16_ptrs(const unsigned short* x, Py_ssize_t n_rows, Py_ssize_t n,
                              const void* w, const void* b, double eps, bint rms,
                              bint bfloat16, int n_threads, unsigned short* out,
                              double* mean, double* rstd, bint w16=False,
                              bint b16=False) except -1:
    """layer_norm_fwd_16's work over buffers (mean, rstd NULL: not wanted).
    w, b: float32, or (w16, b16) 16-bit values of x's kind (see
    _params_as_float)."""
    cdef Py_ssize_t i
    cdef float* scratch
    cdef float* xs
    cdef double* stats = NULL
    cdef float* params = NULL
    if n == 0 or n_rows == 0:
        return 0
    n_threads = max(1, n_threads)
    scratch = _scratch(n_threads, 2, n)
    if mean == NULL or rstd == NULL:
        stats = <double*> malloc(2 * n_rows * sizeof(double))
        mean, rstd = stats, stats + n_rows
    if mean == NULL or _params_as_float(&w, w16, &b, b16, n, bfloat16, &params) < 0:
        free(scratch)
        free(stats)
        raise MemoryError()
    for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
        xs = scratch + 2 * n * threadid()
        fastnorm_half_to_float(x + i * n, n, bfloat16, xs)
        row_norm_fwd_float(xs, n, <const float*> w, <const float*> b, eps, rms, xs + n,
                           mean + i, rstd + i)
        fastnorm_float_to_half(xs + n, n, bfloat16, out + i * n)
    free(scratch)
    free(stats)
    free(params)
    return 0


def layer_norm_fwd_16(const unsigned short[:, ::1] X, const float[::1] weight,
                      const float[::1] bias, double eps, bint rms, bint bfloat16,
                      int n_threads, unsigned short[:, ::1] out, double[::1] mean,
                      double[::1] rstd):
    """layer_norm_fwd on 16-bit storage: X and out hold bfloat16 (bfloat16
    true) or float16 bits; weight/bias float32 or None."""
    if X.shape[0] == 0 or X.shape[1] == 0:
        return
    _row_norm_fwd16_ptrs(&X[0, 0], X.shape[0], X.shape[1],
                         NULL if weight is None else &weight[0],
                         NULL if bias is None else &bias[0], eps, rms, bfloat16, n_threads,
                         &out[0, 0], &mean[0], &rstd[0])


def row_norm_fwd16_into(size_t x, Py_ssize_t n_rows, Py_ssize_t n, size_t weight, size_t bias,
                        double eps, bint rms, bint bfloat16, int n_threads, size_t out,
                        size_t mean, size_t rstd, bint w16=False, bint b16=False):
    """layer_norm_fwd_16 over buffers given by address, as row_norm_fwd_into
    (x, out: 16-bit bits; weight, bias: float32, or 16-bit like x with w16,
    b16, or 0; mean, rstd: float64 or both 0)."""
    _row_norm_fwd16_ptrs(<const unsigned short*> x, n_rows, n, <const void*> weight,
                         <const void*> bias, eps, rms, bfloat16, n_threads,
                         <unsigned short*> out, <double*> mean, <double*> rstd, w16, b16)


cdef inline void _bwd_row_16(const unsigned short* dy, const unsigned short* x, Py_ssize_t n,
                             const float* w, double mu, double r, bint rms, bint bfloat16,
                             float* s, unsigned short* dx, double* p) noexcept nogil:
    """dx of one row through the float scratch s (3 rows of n); when p is
    not NULL, also add the row's dw, db to p, p + n."""
    fastnorm_half_to_float(dy, n, bfloat16, s)
    fastnorm_half_to_float(x, n, bfloat16, s + n)
    row_norm_bwd_float(s, s + n, n, w, mu, r, rms, s + 2 * n, p, NULL if p == NULL else p + n)
    fastnorm_float_to_half(s + 2 * n, n, bfloat16, dx)


cdef int _row_norm_bwd16_ptrs(const unsigned short* dy, const unsigned short* x,
                              Py_ssize_t n_rows, Py_ssize_t n, const void* weight,
                              const double* mean, const double* rstd, bint rms, bint bfloat16,
                              int n_threads, unsigned short* dx, double* dw,
                              double* db, bint w16=False) except -1:
    """layer_norm_bwd_16's work over buffers; dw and db both NULL when the
    parameter gradients are not wanted. weight: float32, or 16-bit like x
    with w16 (see _params_as_float)."""
    cdef Py_ssize_t i, j, blk, n_blocks, r0, r1, rows_per_block
    cdef float* scratch
    cdef double* partial = NULL
    cdef double* p
    cdef float* w16_as_float = NULL
    cdef const void* no_bias = NULL
    cdef const float* w
    if n == 0:
        return 0
    if n_rows == 0:
        if dw != NULL:
            for j in range(n):
                dw[j] = 0.0
                db[j] = 0.0
        return 0
    n_threads = max(1, n_threads)
    scratch = _scratch(n_threads, 3, n)
    if _params_as_float(&weight, w16, &no_bias, False, n, bfloat16, &w16_as_float) < 0:
        free(scratch)
        raise MemoryError()
    w = <const float*> weight
    if dw == NULL:
        for i in prange(n_rows, nogil=True, schedule="static", num_threads=n_threads):
            _bwd_row_16(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms, bfloat16,
                        scratch + 3 * n * threadid(), dx + i * n, NULL)
        free(scratch)
        free(w16_as_float)
        return 0
    n_blocks = _n_blocks(n_rows, n)
    rows_per_block = (n_rows + n_blocks - 1) // n_blocks
    partial = <double*> calloc(2 * n_blocks * n, sizeof(double))
    if partial == NULL:
        free(scratch)
        free(w16_as_float)
        raise MemoryError()
    for blk in prange(n_blocks, nogil=True, schedule="static", num_threads=n_threads):
        p = partial + 2 * blk * n
        r0 = blk * rows_per_block
        r1 = min(r0 + rows_per_block, n_rows)
        for i in range(r0, r1):
            _bwd_row_16(dy + i * n, x + i * n, n, w, mean[i], rstd[i], rms, bfloat16,
                        scratch + 3 * n * threadid(), dx + i * n, p)
    _sum_blocks(partial, n_blocks, n)
    for j in range(n):
        dw[j] = partial[j]
        db[j] = partial[n + j]
    free(partial)
    free(scratch)
    free(w16_as_float)
    return 0


def layer_norm_bwd_16(const unsigned short[:, ::1] dY, const unsigned short[:, ::1] X,
                      const float[::1] weight, const double[::1] mean,
                      const double[::1] rstd, bint rms, bint bfloat16, bint want_dw,
                      bint want_db, int n_threads, unsigned short[:, ::1] dX,
                      double[::1] dw, double[::1] db):
    """layer_norm_bwd on 16-bit storage (see layer_norm_fwd_16). The weight
    and bias gradients are summed in the same pass as dX (each row is read
    once), in the same fixed blocks as layer_norm_bwd: bitwise the same for
    any thread count."""
    cdef Py_ssize_t n_rows = X.shape[0], n = X.shape[1]
    cdef bint want = (want_dw or want_db) and n > 0
    _row_norm_bwd16_ptrs(&dY[0, 0] if n_rows and n else NULL,
                         &X[0, 0] if n_rows and n else NULL, n_rows, n,
                         NULL if weight is None or n == 0 else &weight[0],
                         &mean[0] if n_rows else NULL, &rstd[0] if n_rows else NULL, rms,
                         bfloat16, n_threads, &dX[0, 0] if n_rows and n else NULL,
                         &dw[0] if want else NULL, &db[0] if want else NULL)


def row_norm_bwd16_into(size_t dy, size_t x, Py_ssize_t n_rows, Py_ssize_t n, size_t weight,
                        size_t mean, size_t rstd, bint rms, bint bfloat16, int n_threads,
                        size_t dx, size_t dw, size_t db, bint w16=False):
    """layer_norm_bwd_16 over buffers given by address (dy, x, dx: 16-bit
    bits; weight: float32, or 16-bit like x with w16, or 0; mean, rstd:
    float64; dw, db: float64, n values each, or both 0 when not wanted)."""
    _row_norm_bwd16_ptrs(<const unsigned short*> dy, <const unsigned short*> x, n_rows, n,
                         <const void*> weight, <const double*> mean, <const double*> rstd,
                         rms, bfloat16, n_threads, <unsigned short*> dx, <double*> dw,
                         <double*> db, w16)

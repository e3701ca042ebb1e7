"""CPU implementation: prepares C-contiguous views and calls the compiled kernels.

Every function takes 2-D arrays already validated by `_validation` and an
`axis` in sklearn's sense: axis=0 gives one result per column (reducing over
rows), axis=1 one result per row. A Fortran-ordered array is the C-ordered
transpose of itself, so it is reduced with the other kernel instead of being
copied; only arbitrary strided views are copied.
"""
import math
import os

import numpy as np

from ._config import SMALL_INPUT_BYTES, effective_n_threads
from ._ext import _openmp, _quantiles


def _load_kernels():
    """The fastest build of the stats, apply and norm kernels (and of the
    bandwidth probe that judges them) this CPU runs.

    FASTNORM_KERNELS=baseline forces the portable build (to compare the two).
    """
    if os.environ.get("FASTNORM_KERNELS", "") != "baseline" and _openmp.cpu_is_x86_64_v3():
        try:
            from ._ext import _apply_v3, _bandwidth_v3, _channels_v3, _norms_v3, _stats_v3
            return "x86-64-v3", _stats_v3, _apply_v3, _bandwidth_v3, _norms_v3, _channels_v3
        except ImportError:  # built by a compiler without x86-64-v3 support
            pass
    from ._ext import _apply, _bandwidth, _channels, _norms, _stats
    return "baseline", _stats, _apply, _bandwidth, _norms, _channels


# Which build runs ("x86-64-v3" or "baseline"): benchmark tables report it.
KERNEL_BUILD, _stats, _apply, bandwidth_probe, _norms, _channels = _load_kernels()


def _kernel_view(X, axis):
    """(C-contiguous 2-D array with X's data, axis to reduce in it, transposed?)."""
    if X.flags.c_contiguous:
        return X, axis, False
    if X.flags.f_contiguous:
        return X.T, 1 - axis, True
    return np.ascontiguousarray(X), axis, False


def _n_out(X, axis):
    return X.shape[1] if axis == 0 else X.shape[0]


def moments(X, axis, weights=None, ignore_nan=False, mean_lo=False):
    """Per-column (axis=0) or per-row (axis=1) (count, mean, M2), float64.

    `weights` has one entry per reduced element (per row for axis=0).

    mean_lo=True also returns the low part of the mean: (count, mean, M2,
    mean_lo), mean + mean_lo being the mean to a few ulps of the data's
    spread (mean alone is that rounded to a double: off by up to half an
    ulp of the mean, a lot for data like 1e8 + N(0, 1)). `mean` is the same
    either way; mean_lo is 0 where mean is not finite.
    """
    Xk, ak, _ = _kernel_view(X, axis)
    n = _n_out(Xk, ak)
    count, mean, m2 = np.empty(n), np.empty(n), np.empty(n)
    kernel = _stats.moments_cols if ak == 0 else _stats.moments_rows
    if not mean_lo:
        kernel(Xk, weights, ignore_nan, effective_n_threads(X.nbytes), count, mean, m2)
        return count, mean, m2
    # the kernel's mean is shift + (mean - shift), two doubles: the rounding
    # error of that sum (exact, by TwoSum) is the low part
    shift = np.empty(n)
    kernel(Xk, weights, ignore_nan, effective_n_threads(X.nbytes), count, mean, m2, shift)
    hi, lo = two_sum(shift, mean)
    lo[~np.isfinite(lo)] = 0.0
    return count, hi, m2, lo


def two_sum(a, b):
    """(a + b rounded, its rounding error), exactly (Knuth's TwoSum), elementwise."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + b
        b_virtual = s - a
        a_virtual = s - b_virtual
        return s, (a - a_virtual) + (b - b_virtual)


def min_max(X, axis):
    """Per-column/row NaN-ignoring (min, max, count of non-NaN), float64.

    A column/row with no non-NaN value gets min=+inf, max=-inf.
    """
    Xk, ak, _ = _kernel_view(X, axis)
    n = _n_out(Xk, ak)
    mn, mx, count = np.empty(n), np.empty(n), np.empty(n)
    kernel = _stats.min_max_cols if ak == 0 else _stats.min_max_rows
    kernel(Xk, effective_n_threads(X.nbytes), mn, mx, count)
    return mn, mx, count


def power_sums(X, axis, p):
    """Per-column/row sum of |x|**p (p in 1, 2), float64; NaN propagates."""
    Xk, ak, _ = _kernel_view(X, axis)
    out = np.empty(_n_out(Xk, ak))
    kernel = _stats.power_sums_cols if ak == 0 else _stats.power_sums_rows
    kernel(Xk, p, effective_n_threads(X.nbytes), out)
    return out


# Columns of at least this many rows are selected by bucket passes over the
# row-major array (_quantiles.quantiles_cols); shorter ones are gathered.
QUANTILE_BUCKET_MIN_ROWS = 16_384


def quantiles(X, axis, qs, ignore_nan=False):
    """Quantiles (fractions `qs`, in any order) per column/row: shape (len(qs), n).

    Rows of a row-major array are contiguous: each is selected on its own.
    Columns are selected in place, in passes over the rows (no transposed
    copy); extra memory: 8 bytes per row (the candidate keys) and ~70 KB of
    counts per thread.
    """
    Xk, ak, _ = _kernel_view(X, axis)
    qs = np.asarray(qs, dtype=np.float64)
    order = np.argsort(qs, kind="stable")  # the kernels select in ascending order
    sorted_qs = np.ascontiguousarray(qs[order])
    out = np.empty((_n_out(Xk, ak), qs.shape[0]))
    n_threads = effective_n_threads(X.nbytes)
    if ak == 1:
        _quantiles.quantiles_rows(Xk, sorted_qs, ignore_nan, n_threads, out)
    else:
        _quantiles.quantiles_cols(Xk, sorted_qs, ignore_nan, n_threads, out,
                                  QUANTILE_BUCKET_MIN_ROWS)
    result = np.empty_like(out.T)
    result[order] = out.T
    return result


def affine(X, axis, shift, scale, offset, out):
    """out = (X - shift) * scale + offset, one triple per column (axis=0) or row.

    `out` has X's shape and dtype; it may be X itself. Returns whether X
    held an infinity (found on the way, for the callers that refuse it).
    """
    Xk, ak, transposed = _kernel_view(X, axis)
    out_k = out.T if transposed else out
    target = out_k if out_k.flags.c_contiguous else np.empty(Xk.shape, X.dtype)
    kernel = _apply.affine_cols if ak == 0 else _apply.affine_rows
    rows_with_inf = kernel(
        Xk, *(np.ascontiguousarray(a, dtype=np.float64) for a in (shift, scale, offset)),
        target, effective_n_threads(X.nbytes))
    if target is not out_k:
        out_k[...] = target
    return rows_with_inf > 0


def normalize_rows(X, p, threshold, out):
    """Fused per-row l1 (p=1) or l2 (p=2) normalization into `out` (not X).

    Returns the float64 norms. A norm that rounds (to X's dtype) under
    `threshold` divides by 1 instead. X is C-contiguous 2-D.
    """
    norms = np.empty(X.shape[0])
    target = out if out.flags.c_contiguous else np.empty(X.shape, X.dtype)
    _apply.normalize_rows(X, p, threshold, target, norms, effective_n_threads(X.nbytes))
    if target is not out:
        out[...] = target
    return norms


# ----------------------------------------------------------- sparse (scipy) ---
# X is a canonical CSR/CSC matrix with float32/float64 data (see _scalers).

def _sparse_buffers(X):
    """(data, indices, indptr) with one index dtype for both index arrays."""
    idx = np.int32 if X.indices.dtype == np.int32 and X.indptr.dtype == np.int32 else np.int64
    return X.data, X.indices.astype(idx, copy=False), X.indptr.astype(idx, copy=False)


def sparse_col_moments(X, weights=None):
    """Per-column (count, mean, M2) of a sparse matrix; implicit zeros count,
    explicit NaNs are skipped; `weights` one per row."""
    from ._ext import _sparse
    n = X.shape[1]
    count, mean, m2 = np.empty(n), np.empty(n), np.empty(n)
    w = None if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    _sparse.col_moments(*_sparse_buffers(X), X.shape[0], n, X.format == "csc", w,
                        effective_n_threads(X.data.nbytes), count, mean, m2)
    return count, mean, m2


def sparse_col_max_abs(X):
    """Per-column max |x| of a sparse matrix (implicit zeros count, NaN
    skipped; NaN for a column of NaNs only)."""
    from ._ext import _sparse
    out = np.empty(X.shape[1])
    _sparse.col_max_abs(*_sparse_buffers(X), X.shape[0], X.shape[1], X.format == "csc",
                        effective_n_threads(X.data.nbytes), out)
    return out


def sparse_scale_cols(X, factor, out_data):
    """out_data = X.data * factor[column]; out_data may be X.data."""
    from ._ext import _sparse
    _sparse.scale_cols(*_sparse_buffers(X), X.format == "csc",
                       np.ascontiguousarray(factor, dtype=np.float64), out_data,
                       effective_n_threads(X.data.nbytes))


def sparse_normalize_rows(X, norm, out_data):
    """Normalize the rows of CSR X into out_data (see _sparse.normalize_csr_rows)."""
    from ._ext import _sparse
    data, _, indptr = _sparse_buffers(X)
    _sparse.normalize_csr_rows(data, indptr, {"l1": 1, "l2": 2, "max": 0}[norm],
                               out_data, effective_n_threads(X.data.nbytes))


def sparse_col_quantiles(X, qs):
    """Quantiles (fractions `qs`, any order) of each column of CSC X, implicit
    zeros included and NaNs skipped: shape (len(qs), n_cols), float64."""
    out = np.empty((X.shape[1], len(qs)))
    _quantiles.quantiles_csc_cols(X.data, X.indptr.astype(np.int64, copy=False), X.shape[0],
                                  np.ascontiguousarray(qs, dtype=np.float64),
                                  effective_n_threads(X.data.nbytes), out)
    return out.T


# ------------------------------------------------------- deep-learning norms ---

def _half_storage(X, bfloat16):
    """(uint16 view of X, bfloat16?) when X is 16-bit storage, else None:
    float16, or uint16 holding bfloat16 bits (bfloat16=True)."""
    if bfloat16:
        return X, True  # the kernel's buffer check rejects anything but uint16
    if X.dtype == np.float16:
        return X.view(np.uint16), False
    return None


def row_norm_forward(X, weight, bias, eps, rms, *, bfloat16=False, out=None):
    """layer_norm (rms: rms_norm) of each row of C-contiguous X, the rows
    being its last dimension (2-D X, or any C-contiguous N-D array whose
    normalized values are that dimension: no reshape needed).

    Returns (out, mean, rstd): out of X's shape and dtype, the statistics
    float64 (one per row). X float32 or float64 (weight, bias None or
    C-contiguous arrays of X.shape[-1] values of its dtype), or 16-bit
    storage (2-D): float16, or uint16 holding bfloat16 bits with
    bfloat16=True, with float32 weight and bias; computed as float32 is
    (float64 statistics) and rounded to 16 bits, to nearest even.

    out: None (a new array), or a C-contiguous array of X's shape and dtype
    that overlaps no input (the caller checked it), written in place.
    """
    half = _half_storage(X, bfloat16)
    if half is not None:
        out = np.empty_like(X) if out is None else out
        mean, rstd = np.empty(X.shape[0]), np.empty(X.shape[0])
        X16, bf16 = half
        # 2 * nbytes: the work per element is float32's
        _norms.layer_norm_fwd_16(X16, weight, bias, eps, rms, bf16,
                                 effective_n_threads(2 * X.nbytes),
                                 out.view(np.uint16), mean, rstd)
        return out, mean, rstd
    n = X.shape[-1]
    n_rows = X.size // n if n else math.prod(X.shape[:-1])
    return _norms.row_norm_fwd(X, n_rows, n, weight, bias, eps, rms,
                               effective_n_threads(X.nbytes), out)


def row_norm_forward_into(x, n_rows, n, weight, bias, eps, rms, is_double, out, mean, rstd):
    """row_norm_forward over C-contiguous buffers given by address (x, out:
    n_rows * n float32, or float64 when is_double; weight, bias: n values or
    0 for none; mean, rstd: n_rows float64, or both 0 when not wanted),
    written into out, mean, rstd.
    For arrays that are not NumPy's (torch's CPU tensors), whose caller
    checked all of this."""
    nbytes = n_rows * n * (8 if is_double else 4)
    _norms.row_norm_fwd_into(x, n_rows, n, weight, bias, eps, rms, is_double,
                             effective_n_threads(nbytes), out, mean, rstd)


def set_tensor_api(plain_types, guards, grad_enabled, empty_like, dtypes):
    """Hands fastnorm.torch's tensor API to row_norm_tensor_forward (see
    _norms.set_tensor_api)."""
    _norms.set_tensor_api(plain_types, guards, grad_enabled, empty_like, dtypes,
                          effective_n_threads, SMALL_INPUT_BYTES)


# Transparent huge pages for a large new buffer (address, nbytes) before its
# first write: torch's CPU allocator does not ask for them, NumPy's does.
advise_huge_pages = _norms.advise_huge_pages

# layer_norm (rms: rms_norm) of a torch CPU tensor, checked and run in
# compiled code, or None when the call is not the common inference call
# (see _norms.row_norm_tensor_fwd); called as it is, a wrapper's frame
# costs a tenth of a small call's margin.
row_norm_tensor_forward = _norms.row_norm_tensor_fwd


def row_norm_backward_into(dy, x, n_rows, n, weight, mean, rstd, rms, is_double, dx, dw, db):
    """row_norm_backward over C-contiguous buffers given by address (dy, x,
    dx: n_rows * n float32, or float64 when is_double; weight: n values or 0;
    mean, rstd: n_rows float64; dw, db: n values each of x's dtype, summed
    in float64, or both 0 when not wanted), written into dx, dw, db. For
    arrays that are not NumPy's (torch's CPU tensors), whose caller checked
    all of this."""
    nbytes = n_rows * n * (8 if is_double else 4)
    _norms.row_norm_bwd_into(dy, x, n_rows, n, weight, mean, rstd, rms, is_double,
                             effective_n_threads(2 * nbytes), dx, dw, db)


def row_norm_forward16_into(x, n_rows, n, weight, bias, eps, rms, bfloat16, out, mean, rstd,
                            w16=False, b16=False):
    """row_norm_forward_into for 16-bit storage (x, out: bfloat16 bits with
    bfloat16, else float16; weight, bias: float32, or 16-bit like x with
    w16, b16, or 0)."""
    _norms.row_norm_fwd16_into(x, n_rows, n, weight, bias, eps, rms, bfloat16,
                               effective_n_threads(4 * n_rows * n), out, mean, rstd, w16, b16)


def row_norm_backward16_into(dy, x, n_rows, n, weight, mean, rstd, rms, bfloat16, dx, dw, db,
                             w16=False):
    """row_norm_backward_into for 16-bit storage (dy, x, dx: bfloat16 bits
    with bfloat16, else float16; weight: float32, or 16-bit like x with w16,
    or 0; dw, db: float64, or both 0 when not wanted)."""
    _norms.row_norm_bwd16_into(dy, x, n_rows, n, weight, mean, rstd, rms, bfloat16,
                               effective_n_threads(8 * n_rows * n), dx, dw, db, w16)


def row_norm_backward(dY, X, weight, mean, rstd, rms, want_dw, want_db, *, bfloat16=False,
                      dX=None):
    """(dX, dw, db) of row_norm_forward; dw/db float64 (None unless wanted).

    16-bit storage as in row_norm_forward: dY and X of the same 16-bit dtype
    (bfloat16=True for uint16 bfloat16 bits), weight float32 or None; dX in
    X's dtype: a new array, or the given one (C-contiguous, X's shape and
    dtype, overlapping no input) written in place.
    """
    dX = np.empty_like(X) if dX is None else dX
    n = X.shape[1]
    dw, db = np.empty(n), np.empty(n)
    half = _half_storage(X, bfloat16)
    if half is not None:
        X16, bf16 = half
        if dY.dtype != X.dtype:  # a view of another dtype would misread dY
            raise TypeError(f"dY ({dY.dtype}) and X ({X.dtype}) must share a 16-bit dtype")
        dY16 = dY if bf16 else dY.view(np.uint16)
        _norms.layer_norm_bwd_16(dY16, X16, weight, mean, rstd, rms, bf16, want_dw, want_db,
                                 effective_n_threads(4 * X.nbytes), dX.view(np.uint16), dw, db)
        return dX, (dw if want_dw else None), (db if want_db else None)
    _norms.layer_norm_bwd(dY, X, weight, mean, rstd, rms, want_dw, want_db,
                          effective_n_threads(2 * X.nbytes), dX, dw, db)
    return dX, (dw if want_dw else None), (db if want_db else None)


def half_to_float32(H, *, bfloat16=False):
    """float32 copy (same shape) of 16-bit storage H: float16, or uint16
    holding bfloat16 bits with bfloat16=True. Exact."""
    H = np.ascontiguousarray(H)
    out = np.empty(H.shape, np.float32)
    src = H if bfloat16 else H.view(np.uint16)
    _norms.half_to_float(src.reshape(-1), bfloat16, out.reshape(-1))
    return out


def float32_to_half(X, *, bfloat16=False):
    """X (float32) rounded to nearest even 16-bit storage: float16, or
    uint16 bfloat16 bits with bfloat16=True. The kernels' rounding."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty(X.shape, np.uint16 if bfloat16 else np.float16)
    _norms.float_to_half(X.reshape(-1), bfloat16, out.view(np.uint16).reshape(-1))
    return out


# ---------------------------------------------------------- channel norms ---
# X3 is a C-contiguous (A, B, K) view; statistics are per (a, k), reduced
# over B (see ext/_channels.pxi). Coefficient arrays are float64 (A, K).
# The kernels of batch, group and instance norm also take 16-bit storage
# (bfloat16=True: uint16 bfloat16 bits; or float16) as row_norm_forward
# does, with float32 weight and bias; outputs in X3's dtype.

def _coef(c, shape):
    if getattr(c, "shape", None) != shape:  # (already in shape: no broadcast view)
        c = np.broadcast_to(c, shape)
    return np.ascontiguousarray(c, dtype=np.float64)


def _channel_storage(X3, bfloat16, *others, passes=1):
    """(threads for `passes` over X3, bfloat16 flag, the kernels' views of
    X3 and of `others` (arrays of its dtype: 16-bit storage as uint16))."""
    half = _half_storage(X3, bfloat16)
    if half is None:
        return effective_n_threads(passes * X3.nbytes), False, (X3, *others)
    for a in others:  # a view of another dtype would misread it
        if a.dtype != X3.dtype:
            raise TypeError(f"the arrays ({a.dtype}) and X ({X3.dtype}) must share a 16-bit "
                            "dtype")
    views = [a if half[1] else a.view(np.uint16) for a in (X3, *others)]
    # 2 * nbytes: the work per element is float32's
    return effective_n_threads(2 * passes * X3.nbytes), half[1], views


def channel_moments(X3, *, bfloat16=False):
    """(mean, M2) over axis 1 of X3, each (A, K) float64."""
    A, _, K = X3.shape
    mean, m2 = np.empty((A, K)), np.empty((A, K))
    threads, bf16, (X,) = _channel_storage(X3, bfloat16)
    _channels.moments(X, threads, mean, m2, bf16)
    return mean, m2


def channel_dot_sums(dY3, X3, shift, *, bfloat16=False):
    """(sum of dY, sum of dY * (X - shift)) over axis 1, each (A, K) float64."""
    A, _, K = X3.shape
    sdy, sdyx = np.empty((A, K)), np.empty((A, K))
    threads, bf16, (X, dY) = _channel_storage(X3, bfloat16, dY3, passes=2)
    _channels.dot_sums(dY, X, _coef(shift, (A, K)), threads, sdy, sdyx, bf16)
    return sdy, sdyx


def channel_affine(X3, shift, scale, offset, out=None, *, bfloat16=False):
    """(X3 - shift) * scale + offset, coefficients broadcast to (A, K).

    out (here and below; dX for the gradients): None for a new array, or a
    C-contiguous array of X3's shape and dtype overlapping no input (the
    caller checked it), written in place."""
    A, _, K = X3.shape
    out = np.empty_like(X3) if out is None else out
    threads, bf16, (X, Y) = _channel_storage(X3, bfloat16, out)
    _channels.affine(X, _coef(shift, (A, K)), _coef(scale, (A, K)), _coef(offset, (A, K)),
                     threads, Y, bf16)
    return out


def channel_backward(dY3, X3, shift, p, q, r, dX=None, *, bfloat16=False):
    """dY3 * p + (X3 - shift) * q + r, coefficients broadcast to (A, K)."""
    A, _, K = X3.shape
    dX = np.empty_like(X3) if dX is None else dX
    threads, bf16, (X, dY, dX_) = _channel_storage(X3, bfloat16, dY3, dX, passes=2)
    _channels.backward(dY, X, *(_coef(c, (A, K)) for c in (shift, p, q, r)),
                       threads, dX_, bf16)
    return dX


def channel_power_sums(X3, p):
    """Sum of X^2 (p=2), of |X| (p=1), or max |X| (p=0) over axis 1: (A, K)."""
    out = np.empty((X3.shape[0], X3.shape[2]))
    _channels.power_sums(X3, p, effective_n_threads(X3.nbytes), out)
    return out


def lrn_forward(X3, size, alpha, beta, k, out=None):
    """Local response norm across axis 1 of X3 (N, C, S)."""
    out = np.empty_like(X3) if out is None else out
    _channels.lrn_forward(X3, size, alpha, beta, k, effective_n_threads(X3.nbytes), out)
    return out


def lrn_backward(dY3, X3, size, alpha, beta, k, dX=None):
    """Input gradient of lrn_forward."""
    dX = np.empty_like(X3) if dX is None else dX
    _channels.lrn_backward(dY3, X3, size, alpha, beta, k,
                           effective_n_threads(2 * X3.nbytes), dX)
    return dX


# Fused variants (statistics and apply in one visit of an item that fits in
# cache): NCHW items of n_count samples x c_count channels, channels-last
# items of one sample with G groups. See ext/_channels.pxi.

def fused_forward_nchw(X3, n_count, c_count, weight, bias, eps, out=None, *,
                       bfloat16=False):
    """(out, mean, var): the biased variance; per item, float64, n-major."""
    N, C, _ = X3.shape
    n_items = (N // n_count) * (C // c_count)
    out = np.empty_like(X3) if out is None else out
    mean, var = np.empty(n_items), np.empty(n_items)
    threads, bf16, (X, Y) = _channel_storage(X3, bfloat16, out)
    _channels.fused_forward_nchw(X, n_count, c_count, weight, bias, eps, threads, Y, mean,
                                 var, bf16)
    return out, mean, var


def fused_backward_nchw(dY3, X3, n_count, c_count, weight, mean, rstd, dX=None, *,
                        bfloat16=False):
    """(dX, sdy, sdyx), the sums per (n, c) as (N, C) float64."""
    N, C, _ = X3.shape
    dX = np.empty_like(X3) if dX is None else dX
    sdy, sdyx = np.empty(N * C), np.empty(N * C)
    threads, bf16, (X, dY, dX_) = _channel_storage(X3, bfloat16, dY3, dX, passes=2)
    _channels.fused_backward_nchw(dY, X, n_count, c_count, weight,
                                  np.ascontiguousarray(mean, dtype=np.float64).reshape(-1),
                                  np.ascontiguousarray(rstd, dtype=np.float64).reshape(-1),
                                  threads, dX_, sdy, sdyx, bf16)
    return dX, sdy.reshape(N, C), sdyx.reshape(N, C)


def fused_forward_nhwc(X3, G, weight, bias, eps, out=None, *,
                       bfloat16=False):
    """(out, mean, var) of channels-last X3 (N, S, C); mean/var (N, G)."""
    N = X3.shape[0]
    out = np.empty_like(X3) if out is None else out
    mean, var = np.empty((N, G)), np.empty((N, G))
    threads, bf16, (X, Y) = _channel_storage(X3, bfloat16, out)
    _channels.fused_forward_nhwc(X, G, weight, bias, eps, threads, Y, mean, var, bf16)
    return out, mean, var


def fused_backward_nhwc(dY3, X3, G, weight, mean, rstd, dX=None, *,
                        bfloat16=False):
    """(dX, sdy, sdyx), the sums per (n, c) as (N, C) float64."""
    N, _, C = X3.shape
    dX = np.empty_like(X3) if dX is None else dX
    sdy, sdyx = np.empty((N, C)), np.empty((N, C))
    threads, bf16, (X, dY, dX_) = _channel_storage(X3, bfloat16, dY3, dX, passes=2)
    _channels.fused_backward_nhwc(dY, X, G, weight,
                                  np.ascontiguousarray(mean, dtype=np.float64),
                                  np.ascontiguousarray(rstd, dtype=np.float64),
                                  threads, dX_, sdy, sdyx, bf16)
    return dX, sdy, sdyx

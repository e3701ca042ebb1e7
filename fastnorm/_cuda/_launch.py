"""Launch helpers of the GPU kernels, one per operation, mirroring
fastnorm._cpu: they allocate the outputs, compute grid and block shapes from
the array shapes (and the device's properties where results do not depend
on them), and run both stages of the grid reductions.

Inputs are C-contiguous CuPy arrays of float16, float32 or float64, already
validated by the front end; a cheap check here refuses anything else, since
a wrong buffer would be read out of bounds. Outputs are new arrays: in the
input's dtype for elementwise results and the row norms' saved statistics
(whose dtype is the accumulation dtype, `_loader.ACC_DTYPE`), float64 for the
statistics merged across blocks (as the CPU kernels return). Coefficient
arguments (shift, scale, ...) are cast to the accumulation dtype.

Shapes (they match the kernels' assumptions, stated in the .cu files):
- row kernels: one warp per row (block (32, 8)) for rows of at most 1024
  elements, else one block per row (block (threads, 1), threads a multiple
  of 32 from the row length);
- stage 1 of a grid reduction: blocks of 256 threads, (tile, rows); the
  number of rows per block depends on the shape only, so the result is
  bitwise the same on every run and device;
- stage 2: one warp per output, 256-thread blocks;
- elementwise: grid-stride, 256-thread blocks, enough blocks to fill the
  device.

CuPy is imported lazily.
"""
import functools

import numpy as np

from . import _loader

WARP = 32
ROWS_PER_BLOCK_WARP_MODE = 8  # rows of a (32, 8) block, one per warp
WARP_ROW_MAX = 1024  # longest row one warp takes
ELEMENTS_PER_THREAD = 16  # block per row: threads = row length / this
MAX_THREADS = 1024  # the kernels' __launch_bounds__
BLOCK = 256  # threads of the column, merge and elementwise kernels
TARGET_BLOCKS = 2048  # stage-1 blocks aimed at: a few waves of 132 SMs
CHUNK_ROWS = 4  # rows per in-register chunk of the column moments

# Fill new outputs (and partial buffers) with NaN instead of leaving them
# uninitialized: the tests set it, so that elements a kernel fails to write
# show up as NaN.
POISON = False

_NULL = np.uint64(0)  # a null pointer argument


def _cupy():
    import cupy
    return cupy


def _ceil_div(a, b):
    return -(-a // b)


def _alloc(shape, dtype):
    cp = _cupy()
    return cp.full(shape, np.nan, dtype) if POISON else cp.empty(shape, dtype)


def _check(a, what, dtype=None):
    cp = _cupy()
    if not isinstance(a, cp.ndarray):
        raise TypeError(f"{what}: a CuPy array is required, got {type(a).__name__}")
    if a.dtype.name not in _loader.TYPES or (dtype is not None and a.dtype != dtype):
        raise TypeError(f"{what}: dtype {a.dtype} (expected {dtype or 'float16/32/64'})")
    if not a.flags.c_contiguous:
        raise ValueError(f"{what}: must be C-contiguous")
    if a.device.id != cp.cuda.runtime.getDevice():
        raise ValueError(f"{what}: on device {a.device.id}, not the current device")
    return a


def _same_shape(dY, X, what="dY3"):
    """dY (checked) with X's shape: a wrong one would be read out of bounds."""
    _check(dY, what, X.dtype)
    if dY.shape != X.shape:
        raise ValueError(f"{what} has shape {dY.shape}, X {X.shape}")
    return dY


def _optional(a, what, dtype, size):
    """a (checked, `size` elements) or a null pointer for None."""
    if a is None:
        return _NULL
    _check(a, what, dtype)
    if a.size != size:
        raise ValueError(f"{what}: {a.size} elements, expected {size}")
    return a


def _acc(dtype):
    return np.dtype(_loader.ACC_DTYPE[np.dtype(dtype).name])


def _coef(c, shape, dtype):
    """Coefficients broadcast to `shape`, C-contiguous, in `dtype`."""
    cp = _cupy()
    return cp.ascontiguousarray(cp.broadcast_to(cp.asarray(c, dtype=dtype), shape))


def _kernel(family, name, dtype):
    return _loader.get_kernel(family, _loader.name_expression(name, np.dtype(dtype)))


@functools.lru_cache(maxsize=None)
def _sm_count(device_id):
    return _cupy().cuda.Device(device_id).attributes["MultiProcessorCount"]


# ---------------------------------------------------------------- shapes ---

def row_shape(n_rows, n, kernel):
    """(grid, block) of a row kernel: a warp per row when n <= 1024, else a
    block per row of a multiple of 32 threads, about 16 elements each."""
    if n <= WARP_ROW_MAX:
        return (_ceil_div(n_rows, ROWS_PER_BLOCK_WARP_MODE),), (WARP, ROWS_PER_BLOCK_WARP_MODE)
    limit = min(MAX_THREADS, kernel.max_threads_per_block) // WARP * WARP
    threads = min(limit, max(2 * WARP, _ceil_div(_ceil_div(n, ELEMENTS_PER_THREAD), WARP) * WARP))
    return (n_rows,), (threads, 1)


def column_tile(n_cols):
    """Block (bx, by) of a stage-1 kernel: bx (a power of two up to 32)
    consecutive columns, read together, times by = 256 / bx threads per column."""
    bx = 1
    while bx < min(n_cols, WARP):
        bx *= 2
    return bx, BLOCK // bx


def row_blocks(n_rows, n_other_blocks, by):
    """(rows per block, number of row blocks) of a stage-1 grid that has
    n_other_blocks blocks per row block: about TARGET_BLOCKS blocks in all,
    at least one chunk of rows per thread. A function of the shape only."""
    if n_rows == 0:
        return CHUNK_ROWS * by, 0
    want = max(1, TARGET_BLOCKS // max(1, n_other_blocks))
    rows = max(CHUNK_ROWS * by, _ceil_div(n_rows, want))
    return rows, _ceil_div(n_rows, rows)


def merge_shape(n_out):
    """(grid, block) of a stage-2 kernel: one warp per output."""
    return (_ceil_div(n_out, BLOCK // WARP),), (BLOCK,)


def elementwise_shape(n, dtype):
    """(grid, block) of a grid-stride kernel over n elements (16-byte
    vectors of them where aligned): up to 16 blocks per SM."""
    work = _ceil_div(n, 16 // np.dtype(dtype).itemsize)
    sms = _sm_count(_cupy().cuda.runtime.getDevice())
    return (max(1, min(_ceil_div(work, BLOCK), 16 * sms)),), (BLOCK,)


# ------------------------------------------------------------- row norms ---

def _into(buffer, shape, dtype, what):
    """The given output buffer (checked: the kernels index it as C-contiguous
    `shape`), or a new array."""
    if buffer is None:
        return _alloc(shape, dtype)
    _check(buffer, what, dtype)
    if buffer.shape != tuple(shape):
        raise ValueError(f"{what} has shape {buffer.shape}, expected {tuple(shape)}")
    return buffer


def row_norm_forward(X, weight, bias, eps, rms, out=None):
    """layer_norm (rms: rms_norm) of each row of 2-D X: (out, mean, rstd),
    the statistics in the accumulation dtype (mean 0 for rms). out: None or
    a C-contiguous array of X's shape and dtype, written in place (here and
    below; dX for the gradients)."""
    _check(X, "X")
    n_rows, n = X.shape
    acc = _acc(X.dtype)
    out = _into(out, X.shape, X.dtype, "out")
    mean, rstd = _alloc(n_rows, acc), _alloc(n_rows, acc)
    if n_rows == 0 or n == 0:
        return out, mean, rstd
    k = _kernel("row_norms", "layer_norm_fwd", X.dtype)
    grid, block = row_shape(n_rows, n, k)
    k(grid, block, (X, _optional(weight, "weight", X.dtype, n),
                    _optional(bias, "bias", X.dtype, n), np.int64(n_rows), np.int64(n),
                    np.float64(eps), np.int32(bool(rms)), out, mean, rstd))
    return out, mean, rstd


def row_norm_backward(dY, X, weight, mean, rstd, rms, want_dw, want_db, dX=None):
    """(dX, dw, db) of row_norm_forward; dw and db float64 (None unless wanted)."""
    _check(X, "X")
    _check(dY, "dY", X.dtype)
    n_rows, n = X.shape
    if dY.shape != X.shape:
        raise ValueError(f"dY has shape {dY.shape}, X {X.shape}")
    acc = _acc(X.dtype)
    for a, what in ((mean, "mean"), (rstd, "rstd")):
        _check(a, what, acc)
        if a.size != n_rows:
            raise ValueError(f"{what}: {a.size} elements for {n_rows} rows")
    dX = _into(dX, X.shape, X.dtype, "dX")
    dw = _alloc(n, np.float64) if want_dw else None
    db = _alloc(n, np.float64) if want_db else None
    if n == 0:
        return dX, dw, db
    if n_rows:
        k = _kernel("row_norms", "layer_norm_bwd", X.dtype)
        grid, block = row_shape(n_rows, n, k)
        k(grid, block, (dY, X, _optional(weight, "weight", X.dtype, n), mean, rstd,
                        np.int64(n_rows), np.int64(n), np.int32(bool(rms)), dX))
    if want_dw or want_db:
        bx, by = column_tile(n)
        n_tiles = _ceil_div(n, bx)
        rows, n_blocks = row_blocks(n_rows, n_tiles, by)
        partial = _alloc((n_blocks, n, 2), np.float64)  # Sum2<double>: (sum dy * xhat, sum dy)
        if n_blocks:
            _kernel("row_norms", "layer_norm_param_grads_partial", X.dtype)(
                (n_tiles, n_blocks), (bx, by),
                (dY, X, mean, rstd, np.int64(n_rows), np.int64(n), np.int64(rows), partial))
        grid, block = merge_shape(n)
        _kernel("row_norms", "layer_norm_param_grads_merge", X.dtype)(
            grid, block, (partial, np.int64(n_blocks), np.int64(n),
                          _NULL if dw is None else dw, _NULL if db is None else db))
    return dX, dw, db


# ---------------------------------------------------------- column stats ---

def _column_stat(X, name, n_fields, outs, extra=()):
    """Both stages of a column statistic of 2-D X into the float64 arrays
    `outs`; the partials are (row blocks, n_cols, n_fields) in A."""
    n_rows, n_cols = X.shape
    if n_cols == 0:
        return
    bx, by = column_tile(n_cols)
    n_tiles = _ceil_div(n_cols, bx)
    rows, n_blocks = row_blocks(n_rows, n_tiles, by)
    partial = _alloc((n_blocks, n_cols, n_fields), _acc(X.dtype))
    if n_blocks:
        _kernel("column_stats", f"{name}_partial", X.dtype)(
            (n_tiles, n_blocks), (bx, by),
            (X, np.int64(n_rows), np.int64(n_cols), np.int64(rows), *extra, partial))
    grid, block = merge_shape(n_cols)
    _kernel("column_stats", f"{name}_merge", X.dtype)(
        grid, block, (partial, np.int64(n_blocks), np.int64(n_cols), *outs))


def moments(X, axis, weights=None, ignore_nan=False):
    """Per-column (axis=0) or per-row (axis=1) (count, mean, M2), float64.
    `weights` has one entry per reduced element; NaNs are skipped with
    ignore_nan, else they propagate."""
    _check(X, "X")
    n_rows, n_cols = X.shape
    n_out, n_red = (n_cols, n_rows) if axis == 0 else (n_rows, n_cols)
    acc = _acc(X.dtype)
    w = _NULL if weights is None else _optional(_coef(weights, (n_red,), acc), "weights", acc,
                                                n_red)
    count, mean, m2 = (_alloc(n_out, np.float64) for _ in range(3))
    if axis == 0:
        _column_stat(X, "col_moments", 3, (count, mean, m2), (w, np.int32(bool(ignore_nan))))
    elif n_rows:
        if n_cols == 0:
            for a in (count, mean, m2):
                a.fill(0)
            return count, mean, m2
        k = _kernel("column_stats", "row_moments", X.dtype)
        grid, block = row_shape(n_rows, n_cols, k)
        k(grid, block, (X, np.int64(n_rows), np.int64(n_cols), w, np.int32(bool(ignore_nan)),
                        count, mean, m2))
    return count, mean, m2


def col_min_max(X):
    """Per-column NaN-ignoring (min, max, count of non-NaN), float64; a column
    without a non-NaN value gets (+inf, -inf, 0)."""
    _check(X, "X")
    mn, mx, count = (_alloc(X.shape[1], np.float64) for _ in range(3))
    _column_stat(X, "col_min_max", 3, (mn, mx, count))
    return mn, mx, count


def col_max_abs(X):
    """Per-column NaN-ignoring max |x|, float64 (-inf without a non-NaN value)."""
    _check(X, "X")
    out = _alloc(X.shape[1], np.float64)
    _column_stat(X, "col_max_abs", 1, (out,))
    return out


# ---------------------------------------------------------------- apply ---

def affine(X, axis, shift, scale, offset, out=None):
    """out = (X - shift) * scale + offset, one triple per column (axis=0) or
    row (axis=1); out may be X. Returns (out, has_inf): has_inf a 0-d int32
    array, nonzero when X held an infinity (read it when needed: no sync here)."""
    cp = _cupy()
    _check(X, "X")
    n_rows, n_cols = X.shape
    out = _alloc(X.shape, X.dtype) if out is None else _check(out, "out", X.dtype)
    if out.shape != X.shape:
        raise ValueError(f"out has shape {out.shape}, X {X.shape}")
    has_inf = cp.zeros((), np.int32)
    if X.size == 0:
        return out, has_inf
    n_coef = n_cols if axis == 0 else n_rows
    acc = _acc(X.dtype)
    coefs = [_coef(c, (n_coef,), acc) for c in (shift, scale, offset)]
    grid, block = elementwise_shape(X.size, X.dtype)
    _kernel("apply", "affine_cols" if axis == 0 else "affine_rows", X.dtype)(
        grid, block, (X, np.int64(n_rows), np.int64(n_cols), *coefs, out, has_inf))
    return out, has_inf


# ------------------------------------------------------------- channels ---
# X3 is a C-contiguous (A, B, K) array, statistics per (a, k) over B.

def _channel_stat(X3, name, n_fields, outs, inputs, extra=()):
    n_a, B, K = X3.shape
    bx, by = column_tile(K)
    n_tiles = _ceil_div(K, bx)
    rows, n_blocks = row_blocks(B, n_a * n_tiles, by)
    n_grid = n_a * n_blocks * n_tiles
    if n_grid >= 2**31:
        raise ValueError(f"{X3.shape}: more than 2**31 - 1 blocks")
    partial = _alloc((n_a, n_blocks, K, n_fields), _acc(X3.dtype))
    _kernel("channels", f"{name}_partial", X3.dtype)(
        (n_grid,), (bx, by),
        (*inputs, np.int64(n_a), np.int64(B), np.int64(K), np.int64(rows), *extra, partial))
    grid, block = merge_shape(n_a * K)
    _kernel("channels", f"{name}_merge", X3.dtype)(
        grid, block, (partial, np.int64(n_a), np.int64(K), np.int64(n_blocks), *outs))


def channel_moments(X3):
    """(mean, M2) over axis 1 of X3, each (A, K) float64; NaN when B == 0."""
    _check(X3, "X3")
    n_a, B, K = X3.shape
    mean, m2 = _alloc((n_a, K), np.float64), _alloc((n_a, K), np.float64)
    if n_a == 0 or K == 0:
        return mean, m2
    if B == 0:
        mean.fill(np.nan)
        m2.fill(np.nan)
        return mean, m2
    _channel_stat(X3, "channel_moments", 3, (mean, m2), (X3,))
    return mean, m2


def channel_dot_sums(dY3, X3, shift):
    """(sum of dY, sum of dY * (X - shift)) over axis 1, each (A, K) float64."""
    _check(X3, "X3")
    _same_shape(dY3, X3)
    n_a, B, K = X3.shape
    sdy, sdyx = _alloc((n_a, K), np.float64), _alloc((n_a, K), np.float64)
    if n_a == 0 or K == 0:
        return sdy, sdyx
    if B == 0:
        sdy.fill(0)
        sdyx.fill(0)
        return sdy, sdyx
    _channel_stat(X3, "channel_dot_sums", 2, (sdy, sdyx), (dY3, X3),
                  (_coef(shift, (n_a, K), _acc(X3.dtype)),))
    return sdy, sdyx


def channel_affine(X3, shift, scale, offset, out=None):
    """(X3 - shift) * scale + offset, coefficients broadcast to (A, K)."""
    _check(X3, "X3")
    n_a, B, K = X3.shape
    out = _into(out, X3.shape, X3.dtype, "out")
    if X3.size:
        acc = _acc(X3.dtype)
        grid, block = elementwise_shape(X3.size, X3.dtype)
        _kernel("channels", "channel_affine", X3.dtype)(
            grid, block, (X3, np.int64(n_a), np.int64(B), np.int64(K),
                          *(_coef(c, (n_a, K), acc) for c in (shift, scale, offset)), out))
    return out


def channel_backward(dY3, X3, shift, p, q, r, dX=None):
    """dY3 * p + (X3 - shift) * q + r, coefficients broadcast to (A, K)."""
    _check(X3, "X3")
    _same_shape(dY3, X3)
    n_a, B, K = X3.shape
    dX = _into(dX, X3.shape, X3.dtype, "dX")
    if X3.size:
        acc = _acc(X3.dtype)
        grid, block = elementwise_shape(X3.size, X3.dtype)
        _kernel("channels", "channel_backward", X3.dtype)(
            grid, block, (dY3, X3, np.int64(n_a), np.int64(B), np.int64(K),
                          *(_coef(c, (n_a, K), acc) for c in (shift, p, q, r)), dX))
    return dX


def lrn_forward(X3, size, alpha, beta, k, out=None):
    """Local response norm across axis 1 of X3 (N, C, S)."""
    _check(X3, "X3")
    out = _into(out, X3.shape, X3.dtype, "out")
    if X3.size:
        grid, block = elementwise_shape(X3.size, X3.dtype)
        _kernel("channels", "lrn_forward", X3.dtype)(
            grid, block, (X3, *(np.int64(d) for d in X3.shape), np.int64(size),
                          np.float64(alpha), np.float64(beta), np.float64(k), out))
    return out


def lrn_backward(dY3, X3, size, alpha, beta, k, dX=None):
    """Input gradient of lrn_forward."""
    _check(X3, "X3")
    _same_shape(dY3, X3)
    dX = _into(dX, X3.shape, X3.dtype, "dX")
    if X3.size:
        grid, block = elementwise_shape(X3.size, X3.dtype)
        _kernel("channels", "lrn_backward", X3.dtype)(
            grid, block, (dY3, X3, *(np.int64(d) for d in X3.shape), np.int64(size),
                          np.float64(alpha), np.float64(beta), np.float64(k), dX))
    return dX

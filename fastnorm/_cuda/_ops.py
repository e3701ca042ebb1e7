"""The GPU kernel module: what `fastnorm._backend.ops_for` hands out for
CuPy arrays, with the functions, arguments and results of `fastnorm._cpu`
(statistics float64, outputs in the input's dtype), on CuPy arrays of the
current device. Inputs of any strides are made C-contiguous here (the
kernels take contiguous buffers); a Fortran-ordered X is read as its
C-ordered transpose, without a copy.

Some operations have no RawKernel yet and are CuPy expressions here
(power sums, quantiles by a per-column sort): correct, but with temporaries
a kernel would not need. Functions of `fastnorm._cpu` absent here raise a
NotImplementedError naming them when the front end reaches for them (see
`_backend`).
"""
from . import _launch


def _cupy():
    import cupy
    return cupy


def _kernel_view(X, axis):
    """(C-contiguous X, axis): an F-contiguous X as its transpose."""
    cp = _cupy()
    if X.ndim == 2 and not X.flags.c_contiguous and X.flags.f_contiguous:
        return X.T, 1 - axis
    return cp.ascontiguousarray(X), axis


def moments(X, axis, weights=None, ignore_nan=False, mean_lo=False):
    """(count, mean, M2) along `axis`; with mean_lo also the mean's low part,
    which the GPU kernels do not compute (zeros: mean is all there is)."""
    cp = _cupy()
    X, axis = _kernel_view(X, axis)
    count, mean, m2 = _launch.moments(X, axis, weights, ignore_nan)
    return (count, mean, m2, cp.zeros_like(mean)) if mean_lo else (count, mean, m2)


def min_max(X, axis):
    """NaN-ignoring (min, max, count of non-NaN) along `axis`, float64."""
    cp = _cupy()
    X, axis = _kernel_view(X, axis)
    if axis == 1:  # no row kernel yet: the columns of a transposed copy
        X = cp.ascontiguousarray(X.T)
    return _launch.col_min_max(X)


def power_sums(X, axis, p):
    """Per-column/row sum of |x|**p (p in 1, 2), float64; NaN propagates.
    (A CuPy expression: a float64 temporary of X.)"""
    cp = _cupy()
    X64 = X.astype(cp.float64)
    return (cp.abs(X64) if p == 1 else X64 * X64).sum(axis=axis)


def normalize_rows(X, p, threshold, out):
    """Per-row l1 (p=1) or l2 (p=2) normalization into `out`; returns the
    float64 norms. A norm that rounds (to X's dtype) under `threshold`
    divides by 1 instead, as fastnorm._cpu's."""
    cp = _cupy()
    norms = power_sums(X, 1, p)
    if p == 2:
        norms = cp.sqrt(norms)
    divisor = cp.where(norms.astype(X.dtype) < threshold, 1.0, norms)
    affine(X, 1, 0.0, 1.0 / divisor, 0.0, out)
    return norms


def _lerp(a, b, t):
    """NumPy's linear interpolation: exact at both ends, monotonic."""
    cp = _cupy()
    return cp.where(t >= 0.5, b - (b - a) * (1.0 - t), a + (b - a) * t)


def quantiles(X, axis, qs, ignore_nan=False):
    """Quantiles (fractions `qs`, in any order) per column/row, shape
    (len(qs), n), float64, interpolated as np.quantile's 'linear' (NaN
    skipped with ignore_nan, else a NaN makes its column's quantiles NaN).
    (CuPy's sort of each column: a sorted float64 copy of X.)"""
    cp = _cupy()
    S = cp.sort(X.astype(cp.float64), axis=axis)  # NaN sort last
    if axis == 1:
        S = S.T
    n_rows = S.shape[0]
    nan = cp.isnan(S)
    n_valid = n_rows - nan.sum(axis=0)
    qs = cp.asarray(qs, dtype=cp.float64)[:, None]
    if n_rows == 0:
        return cp.full((qs.shape[0], S.shape[1]), cp.nan)
    pos = qs * cp.maximum(n_valid - 1, 0)
    lo = cp.minimum(cp.floor(pos), cp.maximum(n_valid - 1, 0)).astype(cp.int64)
    hi = cp.minimum(lo + 1, cp.maximum(n_valid - 1, 0))
    lo_val = cp.take_along_axis(S, lo, axis=0)
    hi_val = cp.where(pos > lo, cp.take_along_axis(S, hi, axis=0), lo_val)
    result = _lerp(lo_val, hi_val, pos - lo)
    undefined = n_valid == 0 if ignore_nan else n_valid < n_rows
    return cp.where(undefined[None, :], cp.nan, result)


def affine(X, axis, shift, scale, offset, out):
    """out = (X - shift) * scale + offset per column (axis=0) or row (out may
    be X); returns whether X held an infinity (one device-to-host read)."""
    cp = _cupy()
    Xc = cp.ascontiguousarray(X)
    direct = out is not None and out.flags.c_contiguous
    result, has_inf = _launch.affine(Xc, axis, shift, scale, offset,
                                     out=out if direct else None)
    if out is not None and not direct:
        out[...] = result
    return bool(int(has_inf))


def row_norm_forward(X, weight, bias, eps, rms):
    return _launch.row_norm_forward(_cupy().ascontiguousarray(X), weight, bias, eps, rms)


def row_norm_backward(dY, X, weight, mean, rstd, rms, want_dw, want_db):
    """As fastnorm._cpu's; the statistics may come in any float dtype (the
    kernels take them in the accumulation dtype, which the forward returns)."""
    cp = _cupy()
    acc = _launch._acc(X.dtype)
    return _launch.row_norm_backward(cp.ascontiguousarray(dY), cp.ascontiguousarray(X), weight,
                                     cp.ascontiguousarray(mean, dtype=acc),
                                     cp.ascontiguousarray(rstd, dtype=acc), rms, want_dw,
                                     want_db)


def channel_moments(X3):
    return _launch.channel_moments(_cupy().ascontiguousarray(X3))


def channel_power_sums(X3, p):
    """Sum of X^2 (p=2), of |X| (p=1), or max |X| (p=0) over axis 1: (A, K),
    float64. (A CuPy expression: a float64 temporary of X3.)"""
    cp = _cupy()
    X64 = X3.astype(cp.float64)
    if p == 0:
        if X3.shape[1] == 0:
            return cp.zeros((X3.shape[0], X3.shape[2]))
        return cp.abs(X64).max(axis=1)
    return (cp.abs(X64) if p == 1 else X64 * X64).sum(axis=1)


def channel_dot_sums(dY3, X3, shift):
    cp = _cupy()
    return _launch.channel_dot_sums(cp.ascontiguousarray(dY3), cp.ascontiguousarray(X3), shift)


def channel_affine(X3, shift, scale, offset):
    return _launch.channel_affine(_cupy().ascontiguousarray(X3), shift, scale, offset)


def channel_backward(dY3, X3, shift, p, q, r):
    cp = _cupy()
    return _launch.channel_backward(cp.ascontiguousarray(dY3), cp.ascontiguousarray(X3),
                                    shift, p, q, r)


def lrn_forward(X3, size, alpha, beta, k):
    return _launch.lrn_forward(_cupy().ascontiguousarray(X3), size, alpha, beta, k)


def lrn_backward(dY3, X3, size, alpha, beta, k):
    cp = _cupy()
    return _launch.lrn_backward(cp.ascontiguousarray(dY3), cp.ascontiguousarray(X3), size,
                                alpha, beta, k)

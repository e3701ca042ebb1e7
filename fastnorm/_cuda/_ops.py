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


def row_norm_forward(X, weight, bias, eps, rms, out=None):
    return _launch.row_norm_forward(_cupy().ascontiguousarray(X), weight, bias, eps, rms, out)


def row_norm_backward(dY, X, weight, mean, rstd, rms, want_dw, want_db, dX=None):
    """As fastnorm._cpu's; the statistics may come in any float dtype (the
    kernels take them in the accumulation dtype, which the forward returns)."""
    cp = _cupy()
    acc = _launch._acc(X.dtype)
    return _launch.row_norm_backward(cp.ascontiguousarray(dY), cp.ascontiguousarray(X), weight,
                                     cp.ascontiguousarray(mean, dtype=acc),
                                     cp.ascontiguousarray(rstd, dtype=acc), rms, want_dw,
                                     want_db, dX)


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


def channel_affine(X3, shift, scale, offset, out=None):
    return _launch.channel_affine(_cupy().ascontiguousarray(X3), shift, scale, offset, out)


def channel_backward(dY3, X3, shift, p, q, r, dX=None):
    cp = _cupy()
    return _launch.channel_backward(cp.ascontiguousarray(dY3), cp.ascontiguousarray(X3),
                                    shift, p, q, r, dX)


def lrn_forward(X3, size, alpha, beta, k, out=None):
    return _launch.lrn_forward(_cupy().ascontiguousarray(X3), size, alpha, beta, k, out)


def lrn_backward(dY3, X3, size, alpha, beta, k, dX=None):
    cp = _cupy()
    return _launch.lrn_backward(cp.ascontiguousarray(dY3), cp.ascontiguousarray(X3), size,
                                alpha, beta, k, dX)


# ------------------------------------------------- sparse (cupyx.scipy.sparse) ---
# As fastnorm._cpu's sparse_* functions: X is a canonical CSR/CSC matrix with
# float32/float64 data (see fastnorm._scalers), implicit zeros count as
# values, explicit NaNs are skipped. CuPy expressions over (data, indices,
# indptr), not RawKernels: per-column/row sums are atomic scatter-adds in
# float64 (so their rounding, unlike the CPU's fixed-order sums, may vary
# by an ulp from run to run), maxima and quantiles come from one stable sort
# of the stored values by (column, value).

def _entry_majors(X):
    """The major index of every stored entry: its row in CSR, column in CSC."""
    cp = _cupy()
    return cp.searchsorted(X.indptr, cp.arange(X.data.shape[0], dtype=X.indptr.dtype),
                           side="right") - 1


def _entry_cols_rows(X):
    """(column, row) of every stored entry of CSR/CSC X."""
    major = _entry_majors(X)
    return (major, X.indices) if X.format == "csc" else (X.indices, major)


def _segment_sums(values, segment, n):
    """Sum of `values` per segment id (0 <= segment < n), float64."""
    import cupyx
    cp = _cupy()
    out = cp.zeros(n, dtype=cp.float64)
    cupyx.scatter_add(out, segment, values.astype(cp.float64, copy=False))
    return out


def _sorted_segments(values, segment, n):
    """(values ascending within each segment, segments in order, start and
    end of each segment's run): `values` must hold no NaN."""
    cp = _cupy()
    order = cp.argsort(values)  # CuPy's sorts are stable: the value order
    order = order[cp.argsort(segment[order])]  # survives within each segment
    sorted_segment = segment[order]
    ids = cp.arange(n, dtype=sorted_segment.dtype)
    return (values[order], cp.searchsorted(sorted_segment, ids, side="left"),
            cp.searchsorted(sorted_segment, ids, side="right"))


def _segment_max(values, segment, n):
    """Max of non-negative, NaN-free `values` per segment, 0 for an empty one."""
    cp = _cupy()
    if values.shape[0] == 0:
        return cp.zeros(n)
    ordered, start, end = _sorted_segments(values, segment, n)
    return cp.where(end > start, ordered[cp.maximum(end - 1, 0)], 0.0).astype(cp.float64)


def sparse_col_moments(X, weights=None):
    """Per-column (count, mean, M2), float64, implicit zeros counted, NaNs
    skipped; `weights` one per row. The CPU kernels' two passes, term for
    term (mean from the weighted sums, then the corrected two-pass M2 with
    the implicit zeros' weight added where a column has some)."""
    cp = _cupy()
    n_rows, n_cols = X.shape
    cols, rows = _entry_cols_rows(X)
    nan = cp.isnan(X.data)
    if weights is None:
        w, total_w = cp.ones(X.data.shape[0]), float(n_rows)
    else:
        w, total_w = weights[rows], weights.sum()
    values = cp.where(nan, 0.0, X.data.astype(cp.float64))
    count = total_w - _segment_sums(cp.where(nan, w, 0.0), cols, n_cols)
    has_count = count != 0
    mean = cp.where(has_count, _segment_sums(w * values, cols, n_cols)
                    / cp.where(has_count, count, 1.0), 0.0)
    d = cp.where(nan, 0.0, values - mean[cols])
    sq = _segment_sums(w * d * d, cols, n_cols)
    dev = _segment_sums(w * d, cols, n_cols)
    # the implicit zeros: weight total - explicit, each deviating by -mean
    zero_w = total_w - _segment_sums(w, cols, n_cols)
    has_zeros = _segment_sums(cp.ones_like(w), cols, n_cols) < n_rows
    sq = cp.where(has_zeros, sq + zero_w * mean * mean, sq)
    dev = cp.where(has_zeros, dev - zero_w * mean, dev)
    m2 = sq - dev * dev / cp.where(has_count, count, 1.0)
    m2 = cp.where(has_count & (m2 > 0), m2, 0.0)  # never below 0 by rounding
    return count, mean, m2


def sparse_col_max_abs(X):
    """Per-column max |x| (implicit zeros counted, NaN skipped; NaN for a
    column of stored NaNs only), float64."""
    cp = _cupy()
    n_rows, n_cols = X.shape
    cols, _ = _entry_cols_rows(X)
    nan = cp.isnan(X.data)
    # |x| >= 0 = the implicit zeros' value: a NaN entered as 0 changes nothing
    out = _segment_max(cp.where(nan, 0.0, cp.abs(X.data.astype(cp.float64))), cols, n_cols)
    stored = _segment_sums(cp.ones(X.data.shape[0]), cols, n_cols)
    seen = _segment_sums(~nan, cols, n_cols)
    return cp.where((seen == 0) & (stored == n_rows) & (n_rows > 0), cp.nan, out)


def sparse_scale_cols(X, factor, out_data):
    """out_data = X.data * factor[column] (in float64, stored in X's dtype);
    out_data may be X.data."""
    cp = _cupy()
    cols, _ = _entry_cols_rows(X)
    factor = cp.asarray(factor, dtype=cp.float64)
    out_data[...] = X.data * factor[cols]


def sparse_normalize_rows(X, norm, out_data):
    """Rows of CSR X divided by their l1, l2 or max |x| norm (a zero norm
    divides by 1), into out_data (which may be X.data)."""
    cp = _cupy()
    rows = _entry_majors(X)
    n_rows = X.shape[0]
    values = X.data.astype(cp.float64)
    if norm == "l1":
        s = _segment_sums(cp.abs(values), rows, n_rows)
    elif norm == "l2":
        s = cp.sqrt(_segment_sums(values * values, rows, n_rows))
    else:  # 'max': NaN skipped, as the CPU kernel's comparisons skip it
        s = _segment_max(cp.where(cp.isnan(values), 0.0, cp.abs(values)), rows, n_rows)
    s = cp.where(s == 0, 1.0, s)
    out_data[...] = values / s[rows]


def sparse_col_quantiles(X, qs):
    """Quantiles (fractions `qs`, any order) of each column, implicit zeros
    included and NaNs skipped (np.nanpercentile of the dense column): shape
    (len(qs), n_cols), float64. The stored values are sorted per column and
    the zeros counted in, interpolated as the CPU kernel does."""
    cp = _cupy()
    n_rows, n_cols = X.shape
    cols, _ = _entry_cols_rows(X)
    stored = _segment_sums(cp.ones(X.data.shape[0]), cols, n_cols)
    keep = ~cp.isnan(X.data)
    values, cols = X.data[keep].astype(cp.float64), cols[keep]
    if values.shape[0]:
        ordered, start, end = _sorted_segments(values, cols, n_cols)
    else:  # nothing stored: every column is its zeros
        ordered = cp.zeros(1)
        start = end = cp.zeros(n_cols, dtype=cp.int64)
    n_neg = _segment_sums(values < 0, cols, n_cols).astype(cp.int64)
    n_explicit = (end - start).astype(cp.int64)
    m = n_explicit + (n_rows - stored.astype(cp.int64))  # non-NaN values, zeros included
    n_zeros = m - n_explicit
    last = max(ordered.shape[0] - 1, 0)

    def kth(k):  # k-th smallest of the column's sorted values merged with its zeros
        from_values = cp.where(k < n_neg, k, k - n_zeros)
        picked = ordered[cp.clip(start + from_values, 0, last)]
        return cp.where((k >= n_neg) & (k < n_neg + n_zeros), 0.0, picked)

    q = cp.asarray(qs, dtype=cp.float64)[:, None]
    pos = q * (m - 1).astype(cp.float64)
    lo = cp.minimum(cp.floor(pos).astype(cp.int64), m - 1)
    lo_val = kth(lo)
    hi_val = cp.where(lo + 1 < m, kth(lo + 1), lo_val)
    return cp.where(m == 0, cp.nan, _lerp(lo_val, hi_val, pos - lo))

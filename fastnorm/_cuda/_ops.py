"""The GPU kernel module: what `fastnorm._backend.ops_for` hands out for
CuPy arrays, with the functions, arguments and results of `fastnorm._cpu`
(statistics float64, outputs in the input's dtype), on CuPy arrays of the
current device. Inputs of any strides are made C-contiguous here (the
kernels take contiguous buffers); a Fortran-ordered X is read as its
C-ordered transpose, without a copy.

Functions of `fastnorm._cpu` without a GPU kernel yet are absent: the front
end then raises NotImplementedError naming them (see `_backend`).
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

"""The GPU kernels, launched through fastnorm._cuda._launch, against float64
NumPy references and against fastnorm's CPU kernels (fastnorm._cpu).

On a machine with a CUDA GPU they run on it, through CuPy; elsewhere (CI)
through cudasim (tests/cudasim), which executes the same CUDA sources on the
CPU: that checks the kernels' logic, not races, memory errors or speed.
Every output and partial buffer starts as NaN (_launch.POISON), so an
element a kernel fails to write shows. Inputs are rounded to the tested
dtype first and the references computed from the rounded values in float64;
float16 inputs go to the CPU kernels as float32 (exact).
"""
import warnings

import numpy as np
import pytest

from cudasim import cupy_for_tests

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cupy_installed")]

cp, _ = cupy_for_tests()  # the module the cupy_installed fixture installs


from fastnorm import _cpu  # noqa: E402
from fastnorm._cuda import _launch  # noqa: E402

DTYPES = [np.float16, np.float32, np.float64]

# Relative tolerances (the absolute one is the same times max(1, max|ref|)):
# "out": outputs stored in the dtype, "stat": statistics accumulated in the
# accumulation dtype (float32 for float16), "grad": backward outputs, whose
# sums cancel.
TOL = {
    np.float16: {"out": 2e-3, "stat": 1e-5, "grad": 4e-3},
    np.float32: {"out": 2e-5, "stat": 1e-5, "grad": 1e-4},
    np.float64: {"out": 1e-11, "stat": 1e-11, "grad": 1e-10},
}


@pytest.fixture(autouse=True)
def poison(monkeypatch):
    monkeypatch.setattr(_launch, "POISON", True)


def check(ours, ref, dtype, kind, scale=None, what=""):
    """ours (CuPy or NumPy) equals ref to TOL[dtype][kind], NaN where ref is
    NaN only. `scale` (default max|ref|) sets the absolute tolerance, e.g.
    the sum of |terms| of a sum, which bounds its rounding error."""
    ours = cp.asnumpy(ours).astype(np.float64) if isinstance(ours, cp.ndarray) else \
        np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, what
    if scale is None:
        finite = np.abs(ref[np.isfinite(ref)])
        scale = finite.max() if finite.size else 1.0
    tol = TOL[dtype][kind]
    np.testing.assert_allclose(ours, ref, rtol=tol, atol=tol * max(1.0, float(np.max(scale))),
                               equal_nan=True, err_msg=what)


def data(rng, shape, dtype, loc=0.5, scale=2.0):
    """Random normal values rounded to dtype (a NumPy array)."""
    return (rng.standard_normal(shape) * scale + loc).astype(dtype)


def to_gpu(a, misaligned=False):
    """a on the GPU, C-contiguous; misaligned: starting one element past a
    16-byte boundary (so the kernels take their scalar paths)."""
    if not misaligned:
        return cp.asarray(a)
    buf = cp.empty(a.size + 1, a.dtype)
    view = buf[1:].reshape(a.shape)
    view[...] = cp.asarray(a)
    assert view.flags.c_contiguous and view.data.ptr % 16 != 0
    return view


def cpu_dtype(dtype):
    return np.float32 if dtype == np.float16 else dtype


def f64(a):
    return np.asarray(a, np.float64)


# ------------------------------------------------------------- row norms ---

def ref_row_norm(x, w, b, eps, rms):
    x = f64(x)
    mu = np.zeros(len(x)) if rms else x.mean(1)
    var = (x * x).mean(1) if rms else x.var(1)
    r = 1.0 / np.sqrt(var + eps)
    y = (x - mu[:, None]) * r[:, None]
    if w is not None:
        y = y * f64(w)
    if b is not None:
        y = y + f64(b)
    return y, mu, r


def ref_row_norm_bwd(dy, x, w, mu, r, rms):
    dy, x = f64(dy), f64(x)
    g = dy * (f64(w) if w is not None else 1.0)
    xhat = (x - mu[:, None]) * r[:, None]
    c1 = 0.0 if rms else g.mean(1, keepdims=True)
    c2 = (g * xhat).mean(1, keepdims=True)
    return r[:, None] * (g - c1 - xhat * c2), (dy * xhat).sum(0), dy.sum(0), np.abs(dy * xhat).sum(0)


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("n", [1, 5, 64, 1000, 1024, 1025, 4099, 8192])
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_norm_forward_backward(rng, dtype, n, rms, affine, misaligned):
    n_rows, eps = 37, 1e-5
    x, dy = data(rng, (n_rows, n), dtype), data(rng, (n_rows, n), dtype, 0.0, 1.0)
    w = data(rng, n, dtype, 1.0, 0.5) if affine else None
    b = data(rng, n, dtype, 0.0, 0.5) if affine and not rms else None
    g = {k: None if v is None else to_gpu(v, misaligned)
         for k, v in dict(x=x, dy=dy, w=w, b=b).items()}

    y, mean, rstd = _launch.row_norm_forward(g["x"], g["w"], g["b"], eps, rms)
    assert y.dtype == dtype and mean.dtype == rstd.dtype == _launch._acc(dtype)
    y_ref, mu_ref, r_ref = ref_row_norm(x, w, b, eps, rms)
    check(y, y_ref, dtype, "out", what="y")
    check(mean, mu_ref, dtype, "stat", what="mean")
    check(rstd, r_ref, dtype, "stat", what="rstd")

    # the CPU kernel (float64 statistics)
    cd = cpu_dtype(dtype)
    y_cpu, mu_cpu, r_cpu = _cpu.row_norm_forward(
        x.astype(cd), None if w is None else w.astype(cd), None if b is None else b.astype(cd),
        eps, rms)
    check(y, y_cpu, dtype, "out", what="y vs CPU")
    check(rstd, r_cpu, dtype, "stat", what="rstd vs CPU")

    dx, dw, db = _launch.row_norm_backward(g["dy"], g["x"], g["w"], mean, rstd, rms, True, True)
    dx_ref, dw_ref, db_ref, dw_scale = ref_row_norm_bwd(dy, x, w, cp.asnumpy(mean).astype(float),
                                                        cp.asnumpy(rstd).astype(float), rms)
    check(dx, dx_ref, dtype, "grad", what="dx")
    check(dw, dw_ref, dtype, "stat", scale=dw_scale, what="dw")
    check(db, db_ref, dtype, "stat", scale=np.abs(f64(dy)).sum(0), what="db")

    dx_cpu, dw_cpu, db_cpu = _cpu.row_norm_backward(
        dy.astype(cd), x.astype(cd), None if w is None else w.astype(cd), mu_cpu, r_cpu, rms,
        True, True)
    check(dx, dx_cpu, dtype, "grad", what="dx vs CPU")
    check(db, db_cpu, dtype, "stat", scale=np.abs(f64(dy)).sum(0), what="db vs CPU")


@pytest.mark.parametrize("want", [(True, False), (False, True)])
def test_row_norm_param_grads_optional_and_deterministic(rng, want):
    x, dy = data(rng, (5000, 48), np.float32), data(rng, (5000, 48), np.float32)
    gx, gdy = cp.asarray(x), cp.asarray(dy)
    _, mean, rstd = _launch.row_norm_forward(gx, None, None, 1e-5, False)
    first = _launch.row_norm_backward(gdy, gx, None, mean, rstd, False, *want)
    again = _launch.row_norm_backward(gdy, gx, None, mean, rstd, False, *want)
    for a, b, wanted in zip(first[1:], again[1:], want):
        assert (a is not None) == wanted
        if wanted:
            assert cp.array_equal(a, b)  # bitwise: the merge order is fixed


def test_layer_norm_far_from_zero(rng):
    # mean 1e4, std 1 in float32: E[x^2] - E[x]^2 would lose every digit
    x = data(rng, (16, 4096), np.float32, 1e4, 1.0)
    y, mean, rstd = _launch.row_norm_forward(cp.asarray(x), None, None, 0.0, False)
    y_ref, mu_ref, r_ref = ref_row_norm(x, None, None, 0.0, False)
    np.testing.assert_allclose(cp.asnumpy(rstd), r_ref, rtol=1e-4)
    np.testing.assert_allclose(cp.asnumpy(y), y_ref, atol=2e-3)


# ---------------------------------------------------------- column stats ---

def ref_moments(x, w, ignore_nan, axis):
    x = f64(x)
    if axis == 1:
        x = x.T
    w = np.ones(len(x)) if w is None else f64(w)
    w = np.broadcast_to(w[:, None], x.shape)
    keep = ~np.isnan(x) if ignore_nan else np.ones(x.shape, bool)
    w = np.where(keep, w, 0.0)
    xv = np.where(keep, x, 0.0)
    count = w.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, (w * xv).sum(0) / count, 0.0)
        m2 = np.where(count > 0, (w * (xv - mean) ** 2).sum(0), 0.0)
    if not ignore_nan:  # a NaN makes mean and M2 NaN
        bad = np.isnan(x).any(0)
        mean[bad] = np.nan
        m2[bad] = np.nan
    return count, mean, m2


SHAPES = [(1, 1), (1000, 1), (333, 7), (5000, 64), (257, 33), (40, 1025), (20000, 3)]


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("nan", [None, "ignore", "propagate"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_moments(rng, dtype, shape, axis, weighted, nan, misaligned):
    x = data(rng, shape, dtype)
    if nan:
        x[rng.random(shape) < 0.1] = np.nan
        x[(slice(None), 0) if axis == 0 else (0, slice(None))] = np.nan  # one all-NaN output
    n_red = shape[axis]
    # weights exact in float32, as the kernels read them in the accumulation dtype
    w = rng.integers(0, 4, n_red).astype(np.float64) / 2 if weighted else None
    ignore = nan == "ignore"
    count, mean, m2 = _launch.moments(to_gpu(x, misaligned), axis, w, ignore)
    c_ref, mu_ref, m2_ref = ref_moments(x, w, ignore, axis)
    check(count, c_ref, dtype, "stat", what="count")
    check(mean, mu_ref, dtype, "stat", what="mean")
    check(m2, m2_ref, dtype, "stat", what="M2")

    c_cpu, mu_cpu, m2_cpu = _cpu.moments(x.astype(cpu_dtype(dtype)), axis, w, ignore)
    check(count, c_cpu, dtype, "stat", what="count vs CPU")
    seen = c_ref > 0  # the mean of nothing is 0 here, the CPU's shift there
    check(cp.asnumpy(mean)[seen], mu_cpu[seen], dtype, "stat", what="mean vs CPU")
    check(cp.asnumpy(m2)[seen], m2_cpu[seen], dtype, "stat", what="M2 vs CPU")


def test_moments_deterministic_and_far_from_zero(rng):
    x = data(rng, (200_000, 5), np.float32, 1e4, 1.0)
    g = cp.asarray(x)
    first = _launch.moments(g, 0)
    again = _launch.moments(g, 0)
    assert all(cp.array_equal(a, b) for a, b in zip(first, again))
    _, mu_ref, m2_ref = ref_moments(x, None, False, 0)
    np.testing.assert_allclose(cp.asnumpy(first[2]), m2_ref, rtol=1e-4)
    np.testing.assert_allclose(cp.asnumpy(first[1]), mu_ref, rtol=1e-6)
    # float64, mean 1e8 and std 1
    x = data(rng, (100_000, 3), np.float64, 1e8, 1.0)
    _, mu, m2 = _launch.moments(cp.asarray(x), 0)
    _, mu_ref, m2_ref = ref_moments(x, None, False, 0)
    np.testing.assert_allclose(cp.asnumpy(m2), m2_ref, rtol=1e-7)


def test_moments_empty():
    count, mean, m2 = _launch.moments(cp.empty((0, 4), cp.float32), 0)
    for a in (count, mean, m2):
        assert cp.asnumpy(a).tolist() == [0.0] * 4


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_min_max_and_max_abs(rng, dtype, shape, misaligned):
    x = data(rng, shape, dtype)
    x[rng.random(shape) < 0.1] = np.nan
    x[:, 0] = np.nan  # a column without a non-NaN value
    g = to_gpu(x, misaligned)
    mn, mx, count = _launch.col_min_max(g)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the all-NaN column
        mn_ref, mx_ref = np.nanmin(f64(x), 0), np.nanmax(f64(x), 0)
    mn_ref[np.isnan(mn_ref)], mx_ref[np.isnan(mx_ref)] = np.inf, -np.inf
    # exact: min and max are values of x
    np.testing.assert_array_equal(cp.asnumpy(mn), mn_ref)
    np.testing.assert_array_equal(cp.asnumpy(mx), mx_ref)
    np.testing.assert_array_equal(cp.asnumpy(count), (~np.isnan(x)).sum(0))
    mn_cpu, mx_cpu, count_cpu = _cpu.min_max(x.astype(cpu_dtype(dtype)), 0)
    np.testing.assert_array_equal(cp.asnumpy(mn), mn_cpu)
    np.testing.assert_array_equal(cp.asnumpy(mx), mx_cpu)
    np.testing.assert_array_equal(cp.asnumpy(count), count_cpu)

    ma = _launch.col_max_abs(g)
    ma_ref = np.maximum(np.abs(mn_ref), np.abs(mx_ref))
    ma_ref[~np.isfinite(mn_ref)] = -np.inf
    np.testing.assert_array_equal(cp.asnumpy(ma), ma_ref)


# ---------------------------------------------------------------- apply ---

@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (1000, 64), (33, 1025), (4097, 5)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_affine(rng, dtype, shape, axis, misaligned, in_place):
    x = data(rng, shape, dtype)
    n = shape[1] if axis == 0 else shape[0]
    acc = _launch._acc(dtype)
    shift, scale, offset = (data(rng, n, acc) for _ in range(3))
    g = to_gpu(x, misaligned)
    out, has_inf = _launch.affine(g, axis, shift, scale, offset, out=g if in_place else None)
    assert (out is g) == in_place and int(has_inf) == 0
    bc = (slice(None),) if axis == 0 else (slice(None), None)
    ref = (f64(x) - f64(shift)[bc]) * f64(scale)[bc] + f64(offset)[bc]
    check(out, ref, dtype, "out")
    target = np.empty_like(x, dtype=cpu_dtype(dtype))
    _cpu.affine(x.astype(cpu_dtype(dtype)), axis, shift, scale, offset, target)
    check(out, target, dtype, "out", what="vs CPU")


def test_affine_reports_inf():
    x = cp.ones((100, 9), cp.float32)
    assert int(_launch.affine(x, 0, 0.0, 1.0, 0.0)[1]) == 0
    x[57, 3] = -cp.inf
    out, has_inf = _launch.affine(x, 0, 0.0, 1.0, 0.0)
    assert int(has_inf) != 0 and float(out[57, 3]) == -np.inf


# ------------------------------------------------------------- channels ---

CHANNEL_SHAPES = [(6, 1000, 1), (3, 517, 7), (2, 300, 64), (1, 5000, 3), (16, 49, 33), (4, 1, 8)]


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("shape", CHANNEL_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_reductions(rng, dtype, shape, misaligned):
    x, dy = data(rng, shape, dtype), data(rng, shape, dtype, 0.0, 1.0)
    gx, gdy = to_gpu(x, misaligned), to_gpu(dy, misaligned)
    cd = cpu_dtype(dtype)

    mean, m2 = _launch.channel_moments(gx)
    mu_ref = f64(x).mean(1)
    m2_ref = ((f64(x) - mu_ref[:, None, :]) ** 2).sum(1)
    check(mean, mu_ref, dtype, "stat", what="mean")
    check(m2, m2_ref, dtype, "stat", what="M2")
    mu_cpu, m2_cpu = _cpu.channel_moments(x.astype(cd))
    check(mean, mu_cpu, dtype, "stat", what="mean vs CPU")
    check(m2, m2_cpu, dtype, "stat", what="M2 vs CPU")

    shift = data(rng, (shape[0], shape[2]), _launch._acc(dtype))
    sdy, sdyx = _launch.channel_dot_sums(gdy, gx, shift)
    d = f64(x) - f64(shift)[:, None, :]
    check(sdy, f64(dy).sum(1), dtype, "stat", scale=np.abs(f64(dy)).sum(1), what="sdy")
    check(sdyx, (f64(dy) * d).sum(1), dtype, "stat", scale=np.abs(f64(dy) * d).sum(1),
          what="sdyx")
    sdy_cpu, sdyx_cpu = _cpu.channel_dot_sums(dy.astype(cd), x.astype(cd), shift)
    check(sdy, sdy_cpu, dtype, "stat", scale=np.abs(f64(dy)).sum(1), what="sdy vs CPU")
    check(sdyx, sdyx_cpu, dtype, "stat", scale=np.abs(f64(dy) * d).sum(1), what="sdyx vs CPU")


def test_channel_moments_empty_b():
    mean, m2 = _launch.channel_moments(cp.empty((2, 0, 3), cp.float32))
    assert cp.isnan(mean).all() and cp.isnan(m2).all()


@pytest.mark.parametrize("misaligned", [False, True])
@pytest.mark.parametrize("shape", CHANNEL_SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_affine_and_backward(rng, dtype, shape, misaligned):
    x, dy = data(rng, shape, dtype), data(rng, shape, dtype, 0.0, 1.0)
    gx, gdy = to_gpu(x, misaligned), to_gpu(dy, misaligned)
    acc = _launch._acc(dtype)
    coef = [data(rng, (shape[0], shape[2]), acc) for _ in range(4)]
    cd = cpu_dtype(dtype)

    out = _launch.channel_affine(gx, *coef[:3])
    sh, sc, of = (f64(c)[:, None, :] for c in coef[:3])
    check(out, (f64(x) - sh) * sc + of, dtype, "out", what="affine")
    check(out, _cpu.channel_affine(x.astype(cd), *coef[:3]), dtype, "out", what="affine vs CPU")

    dx = _launch.channel_backward(gdy, gx, *coef)
    sh, p, q, r = (f64(c)[:, None, :] for c in coef)
    check(dx, f64(dy) * p + (f64(x) - sh) * q + r, dtype, "out", what="backward")
    check(dx, _cpu.channel_backward(dy.astype(cd), x.astype(cd), *coef), dtype, "out",
          what="backward vs CPU")


def ref_lrn(x, dy, size, alpha, beta, k):
    """Forward and input gradient of torch's local_response_norm, float64."""
    x, dy = f64(x), f64(dy)
    C = x.shape[1]
    lo, hi = size // 2, (size - 1) // 2
    base = np.empty_like(x)
    for c in range(C):
        a, b = max(0, c - lo), min(C - 1, c + hi)
        base[:, c] = k + alpha / size * (x[:, a:b + 1] ** 2).sum(1)
    d = base ** beta
    t = dy * x / (d * base)
    dx = np.empty_like(x)
    for c in range(C):  # channel c is in the windows of [c - hi, c + lo]
        a, b = max(0, c - hi), min(C - 1, c + lo)
        dx[:, c] = dy[:, c] / d[:, c] - 2 * alpha * beta / size * x[:, c] * t[:, a:b + 1].sum(1)
    return x / d, dx


@pytest.mark.parametrize("size", [1, 2, 5])
@pytest.mark.parametrize("shape", [(2, 7, 50), (1, 16, 1), (3, 3, 257)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_lrn(rng, dtype, shape, size):
    alpha, beta, k = 0.1, 0.75, 1.0
    x, dy = data(rng, shape, dtype), data(rng, shape, dtype, 0.0, 1.0)
    cd = cpu_dtype(dtype)
    y_ref, dx_ref = ref_lrn(x, dy, size, alpha, beta, k)
    y = _launch.lrn_forward(cp.asarray(x), size, alpha, beta, k)
    check(y, y_ref, dtype, "out", what="forward")
    check(y, _cpu.lrn_forward(x.astype(cd), size, alpha, beta, k), dtype, "out",
          what="forward vs CPU")
    dx = _launch.lrn_backward(cp.asarray(dy), cp.asarray(x), size, alpha, beta, k)
    check(dx, dx_ref, dtype, "grad", what="backward")
    check(dx, _cpu.lrn_backward(dy.astype(cd), x.astype(cd), size, alpha, beta, k), dtype,
          "grad", what="backward vs CPU")


@pytest.mark.parametrize("call", ["channel_dot_sums", "channel_backward", "lrn_backward"])
def test_gradient_of_another_shape_is_refused(call):
    """A dY of the wrong shape would be read out of bounds (GPU review, 1)."""
    x, dy = cp.ones((2, 3, 4), cp.float32), cp.ones((2, 3, 3), cp.float32)
    args = {"channel_dot_sums": (dy, x, 0.0), "channel_backward": (dy, x, 0.0, 1.0, 0.0, 0.0),
            "lrn_backward": (dy, x, 2, 1e-4, 0.75, 1.0)}[call]
    with pytest.raises(ValueError, match="shape"):
        getattr(_launch, call)(*args)


def test_param_grads_of_many_rows_keep_float64_accuracy(rng, monkeypatch):
    """dw and db are sums over every row: with one row block (what rows of
    65536 or more get), each thread adds n_rows / 8 rows; in float32 that
    loses digits (GPU review item 3). The partial sums are double."""
    monkeypatch.setattr(_launch, "TARGET_BLOCKS", 1)  # one row block, as wide rows get
    n_rows, n = 40000, 32
    x = data(rng, (n_rows, n), np.float32, 3.0, 1.0)
    dy = (1.0 + 0.01 * rng.standard_normal((n_rows, n))).astype(np.float32)
    gx, gdy = cp.asarray(x), cp.asarray(dy)
    _, mean, rstd = _launch.row_norm_forward(gx, None, None, 1e-5, False)
    _, dw, db = _launch.row_norm_backward(gdy, gx, None, mean, rstd, False, True, True)
    xhat = (f64(x) - cp.asnumpy(mean)[:, None]) * cp.asnumpy(rstd)[:, None]
    np.testing.assert_allclose(cp.asnumpy(db), f64(dy).sum(0), rtol=2e-7)
    np.testing.assert_allclose(cp.asnumpy(dw), (f64(dy) * xhat).sum(0), rtol=1e-6,
                               atol=1e-6 * np.abs(f64(dy) * xhat).sum(0).max())

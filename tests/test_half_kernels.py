"""16-bit storage row-norm kernels (bfloat16, float16) of fastnorm._cpu.

Oracle: float64 NumPy computed from the exactly converted 16-bit inputs;
outputs within about one unit in the last place of the 16-bit type. The
conversions themselves are checked bit for bit (round to nearest, ties to
even; subnormals, overflow, inf, NaN). Every kernel test runs on both
builds (baseline and x86-64-v3) in this process, by pointing fastnorm._cpu
at the build's module.
"""
import importlib

import numpy as np
import pytest
from conftest import run_with_baseline_kernels

from fastnorm import _cpu
from fastnorm._ext import _openmp

try:
    import torch
except ImportError:  # the torch comparisons skip
    torch = None


def _norm_builds():
    builds = [pytest.param(importlib.import_module("fastnorm._ext._norms"), id="baseline")]
    if _openmp.cpu_is_x86_64_v3():
        try:
            builds.append(pytest.param(importlib.import_module("fastnorm._ext._norms_v3"),
                                       id="x86-64-v3"))
        except ImportError:
            pass
    return builds


@pytest.fixture(params=_norm_builds())
def kernels(request, monkeypatch):
    """fastnorm._cpu running on one build's norm kernels."""
    monkeypatch.setattr(_cpu, "_norms", request.param)
    return request.param


STORAGE = ["bfloat16", "float16"]
LENGTHS = [1, 3, 7, 64, 1000, 4097]


# ------------------------------------------------------------ references ---

def to_f32(h, storage):
    """Exact float32 values of 16-bit storage."""
    if storage == "bfloat16":
        return (h.astype(np.uint32) << 16).view(np.float32)
    return h.view(np.float16).astype(np.float32)


def bf16_round_ref(f):
    """float32 -> bfloat16 bits, ties to even, in integers (NaN: quiet NaN)."""
    u = np.asarray(f, np.float32).view(np.uint32).astype(np.uint64)
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), (u >> 16).astype(np.uint16) | np.uint16(0x40), r)


def from_f64(v, storage):
    """A float64 reference rounded to the storage type (for inf/NaN checks)."""
    with np.errstate(over="ignore", invalid="ignore"):
        if storage == "bfloat16":
            return bf16_round_ref(v.astype(np.float32))
        return v.astype(np.float16)


def ulp(v, storage):
    """One unit in the last place of the 16-bit type at |v| (float64)."""
    bits, emin = (8, -126) if storage == "bfloat16" else (11, -14)
    _, e = np.frexp(np.abs(v))  # |v| = m 2^e, m in [0.5, 1)
    return np.ldexp(1.0, np.maximum(e - 1, emin) - (bits - 1))


def make(rng, shape, storage, scale=1.0, loc=0.0):
    """16-bit storage of random data and its exact float64 values."""
    v = (rng.standard_normal(shape) * scale + loc).astype(np.float32)
    h = _cpu.float32_to_half(v, bfloat16=storage == "bfloat16")
    return h, exact(h, storage)


def exact(h, storage):
    return to_f32(h, storage).astype(np.float64)


def ref_forward(x, w, b, eps, rms):
    mu = np.zeros(x.shape[0]) if rms else x.mean(axis=1)
    d = x - mu[:, None]
    rstd = 1.0 / np.sqrt((d * d).mean(axis=1) + eps)
    xhat = d * rstd[:, None]
    y = xhat * (1.0 if w is None else w) + (0.0 if b is None else b)
    scale = np.abs(xhat * (1.0 if w is None else w)) + (0.0 if b is None else np.abs(b))
    return y, mu, rstd, scale


def ref_backward(dy, x, w, mu, rstd, rms):
    xhat = (x - mu[:, None]) * rstd[:, None]
    g = dy * (1.0 if w is None else w)
    c1 = 0.0 if rms else g.mean(axis=1, keepdims=True)
    c2 = (g * xhat).mean(axis=1, keepdims=True)
    dx = rstd[:, None] * (g - c1 - xhat * c2)
    scale = rstd[:, None] * (np.abs(g) + np.abs(c1) + np.abs(xhat * c2))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0), scale


def assert_16_close(ours, ref, scale, storage, ulps=1.0, rel=1e-6, what=""):
    """ours (16-bit storage) within `ulps` units of the float64 `ref`, plus
    `rel` times the terms' magnitude (`scale`, the sum of their magnitudes:
    float32 rounding of the terms by default);
    NaN and inf exactly where the rounded reference has them."""
    o = exact(ours, storage)
    r16 = exact(from_f64(ref, storage), storage)
    special = ~np.isfinite(r16)
    np.testing.assert_array_equal(np.isnan(o), np.isnan(r16), err_msg=f"NaN {what}")
    np.testing.assert_array_equal(o[special & ~np.isnan(r16)], r16[special & ~np.isnan(r16)],
                                  err_msg=f"inf {what}")
    fin = ~special
    tol = ulps * ulp(ref[fin], storage) + rel * scale[fin]
    err = np.abs(o[fin] - ref[fin])
    bad = err > tol
    assert not bad.any(), (f"{what}: {bad.sum()} of {bad.size} beyond tolerance, worst "
                           f"{(err / tol).max():.3g}x; ours {o[fin][bad][:5]}, ref {ref[fin][bad][:5]}")


def run(x16, storage, w, b, rms, eps=1e-5, dy16=None, want=(True, True)):
    bf = storage == "bfloat16"
    y, mean, rstd = _cpu.row_norm_forward(x16, w, b, eps, rms, bfloat16=bf)
    if dy16 is None:
        return y, mean, rstd
    dx, dw, db = _cpu.row_norm_backward(dy16, x16, w, mean, rstd, rms, *want, bfloat16=bf)
    return y, mean, rstd, dx, dw, db


# ----------------------------------------------------------- conversions ---

@pytest.mark.parametrize("build", _norm_builds())
def test_float16_to_float32_all_patterns(build):
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    out = np.empty(h.size, np.float32)
    build.half_to_float(h, False, out)
    ref = h.view(np.float16).astype(np.float32)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_array_equal(out[ok].view(np.uint32), ref[ok].view(np.uint32))


@pytest.mark.parametrize("build", _norm_builds())
def test_bfloat16_to_float32_all_patterns(build):
    h = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)
    out = np.empty(h.size, np.float32)
    build.half_to_float(h, True, out)
    np.testing.assert_array_equal(out.view(np.uint32), h.astype(np.uint32) << 16)


def _around_every_midpoint(storage):
    """float32 values at, just below and just above the midpoint between
    every pair of neighbouring 16-bit values (and the 16-bit values
    themselves), both signs, plus random bit patterns."""
    h = np.arange(0x7C00 if storage == "float16" else 0x7F80, dtype=np.uint16)
    lo = to_f32(h, storage)
    hi = to_f32(h + np.uint16(1), storage)  # the next one up (float16 0x7bff -> inf)
    if storage == "float16":
        hi = np.where(np.isinf(hi), np.float32(65536.0), hi)  # where 65504's ulp would end
    mid = ((lo.astype(np.float64) + hi) / 2).astype(np.float32)  # exact in float32
    v = np.concatenate([lo, mid, np.nextafter(mid, np.float32(0)),
                        np.nextafter(mid, np.float32(np.inf))])
    rnd = np.random.default_rng(0).integers(0, 1 << 32, 200_000, dtype=np.uint64)
    v = np.concatenate([v, -v, rnd.astype(np.uint32).view(np.float32),
                        np.array([np.inf, -np.inf, np.nan, -np.nan, 0.0, -0.0,
                                  3.4e38, -3.4e38, 1e-45, -1e-45], np.float32)])
    return v.astype(np.float32)


@pytest.mark.parametrize("build", _norm_builds())
def test_float32_to_float16_rounds_to_nearest_even(build):
    v = _around_every_midpoint("float16")
    out = np.empty(v.size, np.uint16)
    build.float_to_half(v, False, out)
    with np.errstate(over="ignore"):
        ref = v.astype(np.float16).view(np.uint16)  # NumPy rounds to nearest even
    nan = np.isnan(v)
    np.testing.assert_array_equal(np.isnan(out.view(np.float16)), nan)
    np.testing.assert_array_equal(out[~nan], ref[~nan])
    # the cases by name: ties to even, subnormals, overflow
    cases = {1.0 + 2.0**-11: 0x3C00, 1.0 + 3 * 2.0**-11: 0x3C02,  # ties
             2.0**-25: 0x0000, 2.0**-25 * 1.5: 0x0001, 3 * 2.0**-25: 0x0002,  # subnormal ties
             2.0**-14 - 2.0**-25: 0x0400,  # a tie up into the normals
             65504.0: 0x7BFF, 65519.99: 0x7BFF, 65520.0: 0x7C00, 1e6: 0x7C00, -1e6: 0xFC00}
    got = np.empty(len(cases), np.uint16)
    build.float_to_half(np.array(list(cases), np.float32), False, got)
    np.testing.assert_array_equal(got, np.array(list(cases.values()), np.uint16))


@pytest.mark.parametrize("build", _norm_builds())
def test_float32_to_bfloat16_rounds_to_nearest_even(build):
    v = _around_every_midpoint("bfloat16")
    out = np.empty(v.size, np.uint16)
    build.float_to_half(v, True, out)
    nan = np.isnan(v)
    np.testing.assert_array_equal(np.isnan(to_f32(out, "bfloat16")), nan)
    np.testing.assert_array_equal(out[~nan], bf16_round_ref(v)[~nan])
    cases = {1.0 + 2.0**-8: 0x3F80, 1.0 + 3 * 2.0**-8: 0x3F82,  # ties to even
             1.0 + 2.0**-8 + 2.0**-20: 0x3F81,
             3.3895314e38: 0x7F7F, 3.4e38: 0x7F80, -3.4e38: 0xFF80,  # overflow to inf
             1e-45: 0x0000, 1.1754942e-38: 0x0080}  # float32 subnormals
    got = np.empty(len(cases), np.uint16)
    build.float_to_half(np.array(list(cases), np.float32), True, got)
    np.testing.assert_array_equal(got, np.array(list(cases.values()), np.uint16))
    if torch is not None:  # torch's own rounding agrees
        t = torch.from_numpy(v[~nan]).to(torch.bfloat16).view(torch.int16).numpy()
        np.testing.assert_array_equal(out[~nan], t.view(np.uint16))


def test_conversion_helpers_round_trip():
    v = np.random.default_rng(1).standard_normal((5, 7)).astype(np.float32)
    for bf in (False, True):
        h = _cpu.float32_to_half(v, bfloat16=bf)
        assert h.dtype == (np.uint16 if bf else np.float16) and h.shape == v.shape
        back = _cpu.half_to_float32(h, bfloat16=bf)
        assert back.dtype == np.float32
        np.testing.assert_array_equal(_cpu.float32_to_half(back, bfloat16=bf), h)
        assert np.abs(back - v).max() <= np.abs(v).max() * (2.0**-8 if bf else 2.0**-11)


# -------------------------------------------------------------- kernels ---

@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
@pytest.mark.parametrize("affine", ["none", "weight", "bias", "both"])
@pytest.mark.parametrize("n", LENGTHS)
def test_forward_backward_against_float64(kernels, rng, storage, rms, affine, n):
    rows = 5
    x16, x = make(rng, (rows, n), storage, scale=2.0, loc=0.5)
    dy16, dy = make(rng, (rows, n), storage)
    w = rng.standard_normal(n).astype(np.float32) if affine in ("weight", "both") else None
    b = rng.standard_normal(n).astype(np.float32) if affine in ("bias", "both") else None
    y, mean, rstd, dx, dw, db = run(x16, storage, w, b, rms, dy16=dy16)
    assert y.dtype == x16.dtype and dx.dtype == x16.dtype and y.shape == x16.shape
    assert dw.dtype == np.float64 and db.dtype == np.float64
    wd = None if w is None else w.astype(np.float64)
    bd = None if b is None else b.astype(np.float64)
    ry, rmu, rr, yscale = ref_forward(x, wd, bd, 1e-5, rms)
    np.testing.assert_allclose(mean, rmu, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rstd, rr, rtol=1e-10)
    assert_16_close(y, ry, yscale, storage, what="y")
    rdx, rdw, rdb, dxscale = ref_backward(dy, x, wd, mean, rstd, rms)
    assert_16_close(dx, rdx, dxscale, storage, what="dx")
    pscale = (np.abs(dy) * np.abs((x - mean[:, None]) * rstd[:, None])).sum(axis=0) + 1
    np.testing.assert_allclose(dw, rdw, rtol=0, atol=1e-12 * pscale.max())
    np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-12 * (np.abs(dy).sum(axis=0).max() + 1))


@pytest.mark.parametrize("storage", STORAGE)
def test_parameter_gradients_only_when_asked(kernels, rng, storage):
    x16, _ = make(rng, (9, 33), storage)
    dy16, _ = make(rng, (9, 33), storage)
    w = np.ones(33, np.float32)
    full = run(x16, storage, w, None, False, dy16=dy16)
    for want in [(False, False), (True, False), (False, True)]:
        _, _, _, dx, dw, db = run(x16, storage, w, None, False, dy16=dy16, want=want)
        np.testing.assert_array_equal(dx, full[3])
        assert (dw is None) != want[0] and (db is None) != want[1]
        if dw is not None:
            np.testing.assert_array_equal(dw, full[4])
        if db is not None:
            np.testing.assert_array_equal(db, full[5])


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_large_mean_keeps_its_variance(kernels, rng, storage, rms):
    # values a few ulps apart around a large mean: the two-pass statistics
    # in float64 give the spread exactly
    loc = 1000.0 if storage == "float16" else 1e5
    x16, x = make(rng, (4, 257), storage, scale=loc * 2.0**-7, loc=loc)
    y, mean, rstd = run(x16, storage, None, None, rms)
    ry, rmu, rr, scale = ref_forward(x, None, None, 1e-5, rms)
    np.testing.assert_allclose(rstd, rr, rtol=1e-9)
    assert_16_close(y, ry, scale, storage, what="y")


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_nan_and_inf_propagate(kernels, rng, storage, rms):
    n = 37
    x16, x = make(rng, (4, n), storage)
    bf = storage == "bfloat16"
    special = _cpu.float32_to_half(np.array([np.nan, np.inf, -np.inf], np.float32), bfloat16=bf)
    x16[1, 5], x16[2, 30], x16[3, 0] = special
    x = exact(x16, storage)
    dy16, dy = make(rng, (4, n), storage)
    w = rng.standard_normal(n).astype(np.float32)
    y, mean, rstd, dx, dw, db = run(x16, storage, w, None, rms, dy16=dy16)
    with np.errstate(invalid="ignore", over="ignore"):
        ry, rmu, rr, ys = ref_forward(x, w.astype(np.float64), None, 1e-5, rms)
        rdx, rdw, _, dxs = ref_backward(dy, x, w.astype(np.float64), mean, rstd, rms)
    assert_16_close(y, ry, np.nan_to_num(ys), storage, what="y")
    assert_16_close(dx, rdx, np.nan_to_num(dxs), storage, what="dx")
    assert np.isnan(exact(y, storage)[1]).all()  # a NaN poisons its row
    if not rms:
        assert np.isnan(exact(y, storage)[2:]).all()  # inf - mean(inf) is NaN
    np.testing.assert_array_equal(np.isnan(dw), np.isnan(rdw))
    assert np.isfinite(exact(y, storage)[0]).all()  # the other rows untouched


@pytest.mark.parametrize("storage", STORAGE)
def test_output_overflows_to_inf(kernels, rng, storage):
    x16, x = make(rng, (3, 64), storage)
    big = 1e5 if storage == "float16" else 3e38
    w = np.full(64, big, np.float32)
    y, _, _ = run(x16, storage, w, None, False)
    ry, _, _, _ = ref_forward(x, w.astype(np.float64), None, 1e-5, False)
    yo = exact(y, storage)
    over = np.abs(ry) > (65520.0 if storage == "float16" else 3.4e38 * 1.001)
    assert over.any()
    np.testing.assert_array_equal(yo[over], np.sign(ry[over]) * np.inf)


@pytest.mark.parametrize("storage", STORAGE)
def test_subnormal_outputs(kernels, rng, storage):
    # tiny weights push float16 outputs into its subnormal range
    x16, x = make(rng, (3, 64), storage)
    tiny = 2.0**-20 if storage == "float16" else 2.0**-130
    w = np.full(64, tiny, np.float32)
    y, _, _ = run(x16, storage, w, None, False)
    ry, _, _, scale = ref_forward(x, w.astype(np.float64), None, 1e-5, False)
    assert_16_close(y, ry, scale, storage, what="y")
    yo = exact(y, storage)
    assert ((yo != 0) & (np.abs(yo) < (2.0**-14 if storage == "float16" else 2.0**-126))).any()


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
def test_thread_count_is_bitwise_irrelevant(kernels, rng, storage, rms):
    rows, n = 203, 129
    x16, _ = make(rng, (rows, n), storage)
    dy16, _ = make(rng, (rows, n), storage)
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    X, dY = x16.view(np.uint16), dy16.view(np.uint16)
    bf = storage == "bfloat16"
    results = []
    for threads in (1, 2, 3):
        y, mean, rstd = np.empty_like(X), np.empty(rows), np.empty(rows)
        kernels.layer_norm_fwd_16(X, w, b, 1e-5, rms, bf, threads, y, mean, rstd)
        dx, dw, db = np.empty_like(X), np.empty(n), np.empty(n)
        kernels.layer_norm_bwd_16(dY, X, w, mean, rstd, rms, bf, True, True, threads, dx, dw, db)
        results.append((y, mean, rstd, dx, dw, db))
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(a.view(np.uint8), c.view(np.uint8))


@pytest.mark.parametrize("storage", STORAGE)
def test_builds_agree(rng, storage):
    """baseline and x86-64-v3 give the same bits (same float body, exact
    conversions)."""
    builds = [p.values[0] for p in _norm_builds()]
    if len(builds) < 2:
        pytest.skip("only the baseline build runs here")
    x16, _ = make(rng, (17, 1000), storage, scale=3.0)
    dy16, _ = make(rng, (17, 1000), storage)
    w = rng.standard_normal(1000).astype(np.float32)
    out = []
    for k in builds:
        X, dY, bf = x16.view(np.uint16), dy16.view(np.uint16), storage == "bfloat16"
        y, mean, rstd = np.empty_like(X), np.empty(17), np.empty(17)
        k.layer_norm_fwd_16(X, w, None, 1e-5, False, bf, 1, y, mean, rstd)
        dx, dw, db = np.empty_like(X), np.empty(1000), np.empty(1000)
        k.layer_norm_bwd_16(dY, X, w, mean, rstd, False, bf, True, True, 1, dx, dw, db)
        out.append((y, dx))
    # FMA contraction in the v3 float body may move a result by one unit
    for a, c in zip(*out):
        assert np.abs(exact(a, storage) - exact(c, storage)).max() <= ulp(
            np.abs(exact(a, storage)).max(), storage)


def test_empty_and_zero_width(kernels):
    for storage in STORAGE:
        bf = storage == "bfloat16"
        dtype = np.uint16 if bf else np.float16
        for shape in [(0, 5), (3, 0)]:
            x = np.zeros(shape, dtype)
            y, mean, rstd = _cpu.row_norm_forward(x, None, None, 1e-5, False, bfloat16=bf)
            assert y.shape == shape and y.dtype == dtype
            dx, dw, db = _cpu.row_norm_backward(x, x, None, mean, rstd, False, True, True,
                                                bfloat16=bf)
            assert dx.shape == shape and dw.shape == (shape[1],)
            if shape[0] == 0:
                np.testing.assert_array_equal(dw, 0.0)


def test_float32_and_float64_unchanged(rng):
    """The 16-bit keyword leaves the float paths alone."""
    x = rng.standard_normal((4, 10))
    for dtype in (np.float32, np.float64):
        y, mean, rstd = _cpu.row_norm_forward(x.astype(dtype), None, None, 1e-5, False)
        assert y.dtype == dtype


def test_baseline_kernels_selected_by_environment():
    run_with_baseline_kernels(
        "import numpy as np\n"
        "from fastnorm import _cpu\n"
        "assert _cpu.KERNEL_BUILD == 'baseline'\n"
        "x = np.linspace(-3, 3, 40, dtype=np.float32).reshape(4, 10)\n"
        "h = _cpu.float32_to_half(x)\n"
        "y, m, r = _cpu.row_norm_forward(h, None, None, 0.0, False)\n"
        "ref = (x - x.mean(1, keepdims=True)) / x.std(1, keepdims=True)\n"
        "assert np.abs(y.astype(np.float64) - ref).max() < 2e-3\n"
        "print('ok')\n")


# ------------------------------------------------------------ vs torch ---

@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("rms", [False, True], ids=["layer", "rms"])
@pytest.mark.parametrize("n", [7, 1000, 4097])
def test_against_torch(kernels, rng, storage, rms, n):
    """torch's bf16/fp16 CPU norms (float accumulation) agree within two
    units, the gradients of the parameters to float32 precision of torch's
    sums. Parameters exactly representable in 16 bits, so torch sees the
    same numbers with 16-bit parameters."""
    tdtype = torch.bfloat16 if storage == "bfloat16" else torch.float16
    bf = storage == "bfloat16"
    x16, x = make(rng, (6, n), storage, scale=1.5, loc=0.3)
    dy16, dy = make(rng, (6, n), storage)
    w16, w = make(rng, (n,), storage)
    b16, b = make(rng, (n,), storage)
    w, b = w.astype(np.float32), b.astype(np.float32)

    def tt(h):
        return torch.from_numpy(exact(h, storage)).to(tdtype)

    tx = tt(x16).requires_grad_(True)
    tw, tb = tt(w16).requires_grad_(True), tt(b16).requires_grad_(True)
    if rms:
        ty = torch.nn.functional.rms_norm(tx, (n,), tw, eps=1e-5)
        tgrads = torch.autograd.grad(ty, [tx, tw], tt(dy16))
    else:
        ty = torch.nn.functional.layer_norm(tx, (n,), tw, tb, eps=1e-5)
        tgrads = torch.autograd.grad(ty, [tx, tw, tb], tt(dy16))
    y, mean, rstd, dx, dw, db = run(x16, storage, w, None if rms else b, rms, dy16=dy16)
    to64 = (lambda t: t.detach().to(torch.float64).numpy())
    eps16 = 2.0**-8 if bf else 2.0**-11
    ry, _, _, yscale = ref_forward(x, w.astype(np.float64), None if rms else b.astype(np.float64),
                                   1e-5, rms)
    # torch's forward is within half a unit of the truth too
    assert_16_close(y, to64(ty), yscale, storage, ulps=2.0, what="y vs torch")
    # torch's backward keeps some intermediates in 16 bits: where dx cancels
    # (layer_norm), it is off by a few 16-bit units of the terms' magnitude
    _, _, _, dxscale = ref_backward(dy, x, w.astype(np.float64), mean, rstd, rms)
    assert_16_close(dx, to64(tgrads[0]), dxscale, storage, ulps=2.0, rel=4 * eps16,
                    what="dx vs torch")
    # torch returns 16-bit parameter gradients, summed in float32
    tdw = to64(tgrads[1])
    np.testing.assert_allclose(dw, tdw, rtol=0, atol=4 * eps16 * np.abs(tdw).max())
    if not rms:
        tdb = to64(tgrads[2])
        np.testing.assert_allclose(db, tdb, rtol=0, atol=4 * eps16 * np.abs(tdb).max())


def test_mismatched_storage_is_an_error():
    x = np.zeros((2, 4), np.float16)
    _, mean, rstd = _cpu.row_norm_forward(x, None, None, 1e-5, False)
    with pytest.raises(TypeError, match="16-bit"):
        _cpu.row_norm_backward(x.astype(np.float32), x, None, mean, rstd, False, True, True)
    with pytest.raises(ValueError):  # bfloat16 bits must come as uint16
        _cpu.row_norm_forward(x, None, None, 1e-5, False, bfloat16=True)
    with pytest.raises(ValueError):  # 16-bit kernels take float32 parameters
        _cpu.row_norm_forward(x, np.ones(4), None, 1e-5, False)

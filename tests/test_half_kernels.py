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


def _builds(module="_norms"):
    """A kernel module of each build this CPU runs (baseline, x86-64-v3)."""
    builds = [pytest.param(importlib.import_module(f"fastnorm._ext.{module}"), id="baseline")]
    if _openmp.cpu_is_x86_64_v3():
        try:
            builds.append(pytest.param(importlib.import_module(f"fastnorm._ext.{module}_v3"),
                                       id="x86-64-v3"))
        except ImportError:
            pass
    return builds


def _norm_builds():
    return _builds("_norms")


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


# ========================================================= channel norms ===
# batch_norm, group_norm and instance_norm on 16-bit storage (both layouts,
# fused items and unfused blocks), through fastnorm.functional: float16
# arrays, and bfloat16 bits as functional.BFloat16Bits (fastnorm.torch's way).

import fastnorm  # noqa: E402
from fastnorm import functional as F  # noqa: E402


@pytest.fixture(params=_builds("_channels"))
def channel_kernels(request, monkeypatch):
    """fastnorm._cpu running on one build's channel kernels."""
    monkeypatch.setattr(_cpu, "_channels", request.param)
    return request.param


@pytest.fixture(params=["fused", "blocks"])
def channel_path(request, monkeypatch):
    """The fused item kernels where they apply, or (blocks) the unfused
    block kernels everywhere (as items larger than the 16-bit fused limit
    run; float32 input too, for the bitwise comparisons)."""
    if request.param == "blocks":
        monkeypatch.setattr(F._Channels, "fusable", lambda self, G=None, batch=False: False)
    return request.param


def _arg16(h, storage):
    """16-bit storage as fastnorm.functional takes it."""
    return F.BFloat16Bits(h) if storage == "bfloat16" else h


def _to_layout(a, layout):
    """An NCHW array (N, C, *spatial) in `layout` (NHWC: channels-last memory)."""
    return a if layout == "NCHW" or a.ndim == 2 else np.ascontiguousarray(np.moveaxis(a, 1, -1))


def _from_layout(a, layout):
    return a if layout == "NCHW" or a.ndim == 2 else np.moveaxis(a, -1, 1)


def _group_axes(x, norm, G):
    """x (N, C, *spatial) float64 viewed as (N, G, C/G, S) with the axes its
    statistics reduce over."""
    N, C = x.shape[:2]
    v = x.reshape(N, G, C // G, -1)
    return v, ((0, 2, 3) if norm == "batch" else (2, 3))


def ref_channel_forward(x, norm, G, w, b, eps, mean=None, var=None):
    """float64 reference: (y, mean, rstd, |terms|) of x (N, C, *spatial);
    given (mean, var) per channel (eval) normalize with those."""
    N, C = x.shape[:2]
    v, axes = _group_axes(x, norm, G)
    if mean is None:
        mu = v.mean(axis=axes, keepdims=True)
        var_ = ((v - mu) ** 2).mean(axis=axes, keepdims=True)
    else:  # per channel: (1, C, 1, 1) in the (N, G=C, 1, S) view
        mu, var_ = mean.reshape(1, C, 1, 1), var.reshape(1, C, 1, 1)
    rstd = 1.0 / np.sqrt(var_ + eps)
    xhat = ((v - mu) * rstd).reshape(x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    wv = 1.0 if w is None else w.reshape(shape)
    bv = 0.0 if b is None else b.reshape(shape)
    return xhat * wv + bv, mu, rstd, np.abs(xhat * wv) + np.abs(bv), xhat


def ref_channel_backward(dy, xhat, norm, G, rstd, w, batch_stats):
    """float64 reference gradients (dx, dw, db, |terms of dx|)."""
    N, C = dy.shape[:2]
    shape = (1, C) + (1,) * (dy.ndim - 2)
    g = dy * (1.0 if w is None else w.reshape(shape))
    red = tuple(i for i in range(dy.ndim) if i != 1)
    dw, db = (dy * xhat).sum(axis=red), dy.sum(axis=red)
    gv, axes = _group_axes(g, norm, G)
    hv = xhat.reshape(gv.shape)
    if batch_stats:
        c1 = gv.mean(axis=axes, keepdims=True)
        c2 = (gv * hv).mean(axis=axes, keepdims=True)
        dx = rstd * (gv - c1 - hv * c2)
        scale = rstd * (np.abs(gv) + np.abs(c1) + np.abs(hv * c2))
    else:
        dx, scale = rstd * gv, np.abs(rstd * gv)
    return dx.reshape(dy.shape), dw, db, scale.reshape(dy.shape)


def _channel_call(norm, x, dy, G, w, b, training, running, layout, eps=1e-5):
    """(y, saved, dx, dw, db) of one channel norm through fastnorm.functional;
    running: (mean, var) arrays updated in place, or None."""
    rm, rv = running if running is not None else (None, None)
    if norm == "batch":
        y, saved = F.batch_norm(x, rm, rv, w, b, training=training, eps=eps, layout=layout,
                                return_saved=True)
        grads = F.batch_norm_backward(dy, x, rm, rv, w, b, training=training, eps=eps,
                                      layout=layout, saved=saved)
    elif norm == "group":
        y, saved = F.group_norm(x, G, w, b, eps, layout=layout, return_saved=True)
        grads = F.group_norm_backward(dy, x, G, w, b, eps, layout=layout, saved=saved)
    else:
        y, saved = F.instance_norm(x, rm, rv, w, b, use_input_stats=training, eps=eps,
                                   layout=layout, return_saved=True)
        grads = F.instance_norm_backward(dy, x, rm, rv, w, b, use_input_stats=training,
                                         eps=eps, layout=layout, saved=saved)
    return (y, saved) + tuple(grads)


def _bits(a):
    return getattr(a, "bits", a).view(np.uint16)


CHANNEL_SHAPES = [(2, 3, 5, 7), (4, 1, 6, 6), (3, 4, 1, 1), (2, 6, 33), (1, 8, 9, 13),
                  (5, 2, 130, 257), (6, 4)]
CHANNEL_NORMS = [("batch", True), ("batch", False), ("group", True), ("instance", True),
                 ("instance", False)]


def _channel_cases(shapes):
    """(norm, training, shape) for each norm and each shape it takes: instance
    norm needs spatial values, more than one in training (torch's rule)."""
    cases = []
    for norm, training in CHANNEL_NORMS:
        for shape in shapes:
            spatial = int(np.prod(shape[2:])) if len(shape) > 2 else 0
            if norm == "instance" and (spatial == 0 or (training and spatial == 1)):
                continue
            name = f"{norm}-{'train' if training else 'eval'}-{'x'.join(map(str, shape))}"
            cases.append(pytest.param(norm, training, shape, id=name))
    return cases


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("affine", ["none", "both"])
@pytest.mark.parametrize("norm,training,shape", _channel_cases(CHANNEL_SHAPES))
def test_channel_norms_against_float64(channel_kernels, channel_path, rng, storage, norm,
                                       training, layout, affine, shape):
    N, C = shape[:2]
    S = int(np.prod(shape[2:]))
    G = {1: 1, 2: 2, 3: 3}.get(C, 2 if C % 2 == 0 else 1) if norm == "group" else C
    x16, x = make(rng, shape, storage, scale=2.0, loc=0.5)
    dy16, dy = make(rng, shape, storage)
    w = rng.standard_normal(C).astype(np.float32) if affine != "none" else None
    b = rng.standard_normal(C).astype(np.float32) if affine == "both" else None
    running = None
    if not training or norm == "batch":
        running = (rng.standard_normal(C).astype(np.float32),
                   rng.uniform(0.5, 2.0, C).astype(np.float32))
    run_mean, run_var = (None, None) if running is None else (r.astype(np.float64)
                                                              for r in running)
    xl, dyl = _to_layout(x16, layout), _to_layout(dy16, layout)
    y, saved, dx, dw, db = _channel_call(norm, _arg16(xl, storage), _arg16(dyl, storage), G,
                                         w, b, training, running, layout)
    y, dx = _from_layout(_bits(y), layout), _from_layout(_bits(dx), layout)
    assert y.shape == dx.shape == shape
    if storage == "float16":
        assert _channel_call(norm, xl, dyl, G, w, b, training, None if running is None else
                             tuple(r.copy() for r in running), layout)[0].dtype == np.float16
    wd = None if w is None else w.astype(np.float64)
    bd = None if b is None else b.astype(np.float64)
    eval_stats = (run_mean, run_var) if not training else (None, None)
    ry, rmu, rrstd, yscale, xhat = ref_channel_forward(x, norm, G, wd, bd, 1e-5, *eval_stats)
    assert_16_close(y, ry, yscale, storage, what="y")
    if training:  # the saved statistics, float64 from the exact inputs
        np.testing.assert_allclose(np.ravel(saved.mean), rmu.reshape(np.shape(saved.mean)).ravel()
                                   if norm != "batch" else rmu.ravel(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(np.ravel(saved.rstd), rrstd.ravel(), rtol=1e-9)
        if running is not None:  # updated in place, unbiased variance
            count = N * S
            var_u = (1.0 / rrstd.ravel() ** 2 - 1e-5) * count / (count - 1)
            np.testing.assert_allclose(running[0], 0.9 * run_mean + 0.1 * rmu.ravel(),
                                       rtol=1e-6, atol=1e-6)
            np.testing.assert_allclose(running[1], 0.9 * run_var + 0.1 * var_u, rtol=1e-5,
                                       atol=1e-6)
    rdx, rdw, rdb, dxscale = ref_channel_backward(dy, xhat, norm, G, rrstd, wd, training)
    assert_16_close(dx, rdx, dxscale, storage, what="dx")
    red = tuple(i for i in range(len(shape)) if i != 1)
    pscale = (np.abs(dy) * np.abs(xhat)).sum(axis=red).max() + np.abs(dy).sum(axis=red).max()
    if w is not None:
        assert dw.dtype == np.float32
        np.testing.assert_allclose(dw, rdw, rtol=0, atol=1e-6 * pscale)
    if b is not None:
        assert db.dtype == np.float32
        np.testing.assert_allclose(db, rdb, rtol=0, atol=1e-6 * pscale)


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("norm,training", CHANNEL_NORMS[:4],
                         ids=[f"{n}-{'train' if t else 'eval'}" for n, t in CHANNEL_NORMS[:4]])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", [(3, 4, 9, 11), (2, 6, 40), (4, 2, 3, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_channel_norms_are_the_float32_paths_rounded(channel_kernels, channel_path, rng,
                                                     storage, norm, training, layout, shape):
    """The 16-bit kernels give bit for bit what the float32 kernels give on
    the exactly converted input, rounded to 16 bits: the same statistics,
    the same arithmetic, no accuracy lost against a float32 copy."""
    C = shape[1]
    bf = storage == "bfloat16"
    x16, _ = make(rng, shape, storage, scale=3.0, loc=-1.0)
    dy16, _ = make(rng, shape, storage)
    x16, dy16 = _to_layout(x16, layout), _to_layout(dy16, layout)
    w = rng.standard_normal(C).astype(np.float32)
    b = rng.standard_normal(C).astype(np.float32)
    G = 2 if norm == "group" else C
    running = [np.zeros(C, np.float32), np.ones(C, np.float32)]
    ours = _channel_call(norm, _arg16(x16, storage), _arg16(dy16, storage), G, w, b, training,
                         running, layout)
    running32 = [np.zeros(C, np.float32), np.ones(C, np.float32)]
    ref = _channel_call(norm, _cpu.half_to_float32(x16, bfloat16=bf),
                        _cpu.half_to_float32(dy16, bfloat16=bf), G, w, b, training, running32,
                        layout)
    for i in (0, 2):  # y, dx
        np.testing.assert_array_equal(_bits(ours[i]),
                                      _bits(_cpu.float32_to_half(ref[i], bfloat16=bf)))
    np.testing.assert_array_equal(ours[1].mean, ref[1].mean)
    np.testing.assert_array_equal(ours[1].rstd, ref[1].rstd)
    np.testing.assert_array_equal(ours[3], ref[3])
    np.testing.assert_array_equal(ours[4], ref[4])
    np.testing.assert_array_equal(running, running32)


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("norm", ["batch", "group", "instance"])
def test_channel_norms_nan_and_inf_pass_through(channel_kernels, channel_path, rng, storage,
                                                layout, norm):
    N, C, S = 3, 4, 40
    x16, _ = make(rng, (N, C, S), storage)
    special = _cpu.float32_to_half(np.array([np.nan, np.inf], np.float32),
                                   bfloat16=storage == "bfloat16")
    x16[1, 2, 7], x16[2, 0, 3] = special
    dy16, _ = make(rng, (N, C, S), storage)
    G = C if norm != "group" else 2
    y, _, dx, dw, db = _channel_call(norm, _arg16(_to_layout(x16, layout), storage),
                                     _arg16(_to_layout(dy16, layout), storage), G,
                                     np.ones(C, np.float32), np.zeros(C, np.float32), True,
                                     None, layout)
    y = exact(_from_layout(_bits(y), layout), storage)
    dx = exact(_from_layout(_bits(dx), layout), storage)
    # the poisoned statistics' values are NaN, and only those
    poisoned = np.zeros((N, C), bool)
    for n, c in ((1, 2), (2, 0)):
        if norm == "batch":
            poisoned[:, c] = True
        elif norm == "group":
            poisoned[n, (c // 2) * 2:(c // 2) * 2 + 2] = True
        else:
            poisoned[n, c] = True
    for arr in (y, dx):
        assert np.isnan(arr[poisoned]).all()
        assert np.isfinite(arr[~poisoned]).all()
    assert np.isnan(dw[poisoned.any(axis=0)]).all() and np.isfinite(db).all()


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("shape", [(0, 4, 5, 5), (3, 4, 0, 5)], ids=["N=0", "S=0"])
def test_channel_norms_empty(storage, layout, shape):
    x16 = np.zeros(_to_layout(np.zeros(shape), layout).shape,
                   np.uint16 if storage == "bfloat16" else np.float16)
    w, b = np.ones(4, np.float32), np.zeros(4, np.float32)
    for norm in ("batch", "group", "instance"):
        if norm == "batch" and shape[0] == 0:
            training = True
        elif norm == "instance" and shape[2] == 0:
            continue  # (torch refuses one spatial value or fewer)
        else:
            training = True
        y, _, dx, dw, db = _channel_call(norm, _arg16(x16, storage), _arg16(x16, storage), 2,
                                         w, b, training, None, layout)
        assert _bits(y).shape == x16.shape and _bits(dx).shape == x16.shape
        assert getattr(y, "dtype", None) in (np.uint16, np.float16)
        np.testing.assert_array_equal(dw, 0.0)
        np.testing.assert_array_equal(db, 0.0)


@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("norm", ["batch", "group"])
def test_channel_norms_thread_count_is_bitwise_irrelevant(channel_kernels, channel_path, rng,
                                                          storage, layout, norm):
    shape = (5, 6, 37, 29)
    x16, _ = make(rng, shape, storage)
    dy16, _ = make(rng, shape, storage)
    x16, dy16 = _to_layout(x16, layout), _to_layout(dy16, layout)
    w = rng.standard_normal(6).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        with fastnorm.config_context(n_threads=threads):
            r = _channel_call(norm, _arg16(x16, storage), _arg16(dy16, storage), 3, w, None,
                              True, None, layout)
        results.append([_bits(r[0]), r[1].mean, r[1].rstd, _bits(r[2]), r[3]])
    for other in results[1:]:
        for a, c in zip(results[0], other):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(c))


def test_channel_norms_16_bit_parameter_rules(rng):
    x16 = rng.standard_normal((2, 4, 8)).astype(np.float16)
    ok = F.group_norm(x16, 2, np.ones(4, np.float16), np.zeros(4, np.float32))
    assert ok.dtype == np.float16
    dx, dw, db = F.group_norm_backward(x16, x16, 2, np.ones(4, np.float16),
                                       np.zeros(4, np.float32))
    assert dx.dtype == np.float16 and dw.dtype == np.float16 and db.dtype == np.float32
    with pytest.raises(TypeError, match="weight has dtype float64"):
        F.group_norm(x16, 2, np.ones(4))
    with pytest.raises(ValueError, match="weight must have shape"):
        F.batch_norm(x16, None, None, np.ones(3, np.float32), training=True)
    with pytest.raises(TypeError, match="running_mean has dtype float64"):
        F.batch_norm(x16, np.zeros(4), np.ones(4, np.float32), training=True)
    with pytest.raises(TypeError, match="weight has dtype float16"):  # bfloat16: float32 only
        F.batch_norm(F.BFloat16Bits(x16.view(np.uint16)), None, None,
                     np.ones(4, np.float16), training=True)
    with pytest.raises(ValueError, match="grad_output must have input's shape"):
        F.batch_norm_backward(x16.astype(np.float32), x16, None, None, training=True)
    rm, rv = np.zeros(4, np.float16), np.ones(4, np.float16)  # float16 beside float16
    F.batch_norm(x16, rm, rv, training=True)
    assert rm.dtype == np.float16 and (rm != 0).any()


# ------------------------------------------------ channel norms vs torch ---

@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("storage", STORAGE)
@pytest.mark.parametrize("norm,training,shape",
                         _channel_cases([(4, 6, 7, 9), (2, 1, 5, 3), (8, 4, 1, 1), (2, 4, 37, 41)]))
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
@pytest.mark.parametrize("affine", [False, True], ids=["plain", "affine"])
def test_channel_norms_against_torch(channel_kernels, rng, storage, norm, training,
                                     channels_last, shape, affine):
    """fastnorm.torch against torch's own bf16/fp16 CPU batch_norm,
    group_norm and instance_norm (float accumulation), forward and
    gradients, with 16-bit parameters that both take."""
    import fastnorm.torch as ft
    tdtype = torch.bfloat16 if storage == "bfloat16" else torch.float16
    C = shape[1]
    # (groups of two values have dx = 0 exactly: both sides would be noise)
    G = 2 if norm == "group" and C % 2 == 0 and shape[2] * shape[3] > 1 else 1

    def tt(a):
        t = torch.from_numpy(np.ascontiguousarray(a)).to(tdtype)
        return t.contiguous(memory_format=torch.channels_last) if channels_last else t

    x = tt(rng.standard_normal(shape) * 1.5 + 0.3)
    dy = tt(rng.standard_normal(shape))
    w = torch.from_numpy(rng.standard_normal(C)).to(tdtype) if affine else None
    b = torch.from_numpy(rng.standard_normal(C)).to(tdtype) if affine else None
    # (torch wants the running statistics in the parameters' dtype)
    rm = torch.from_numpy(rng.standard_normal(C)).to(tdtype if affine else torch.float32)
    rv = torch.from_numpy(rng.uniform(0.5, 2, C)).to(tdtype if affine else torch.float32)
    results = []
    for lib in (ft, torch.nn.functional):
        leaves = [t.detach().clone().requires_grad_(True) if t is not None else None
                  for t in (x, w, b)]
        # (clone keeps channels_last memory)
        stats = [rm.clone(), rv.clone()]
        if norm == "batch":
            y = lib.batch_norm(leaves[0], *stats, leaves[1], leaves[2], training=training)
        elif norm == "group":
            y = lib.group_norm(leaves[0], G, leaves[1], leaves[2])
        else:
            y = lib.instance_norm(leaves[0], *(stats if not training else (None, None)),
                                  leaves[1], leaves[2], use_input_stats=training)
        wanted = [t for t in leaves if t is not None]
        grads = torch.autograd.grad(y, wanted, dy)
        results.append((y, grads, stats))
    (y, grads, stats), (ty, tgrads, tstats) = results
    assert y.dtype == tdtype and grads[0].dtype == tdtype
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)
    eps16 = 2.0**-8 if storage == "bfloat16" else 2.0**-11

    def to64(t):
        return t.detach().to(torch.float64).numpy()

    def h(t):  # a 16-bit tensor as fastnorm's storage (its NCHW values)
        t = t.detach().contiguous()
        return t.view(torch.int16).numpy().view(np.uint16) if storage == "bfloat16" \
            else t.numpy()

    # torch rounds some intermediates (the mean) to 16 bits: two units apart
    # plus a unit of the terms (|x| + |mean|) * rstd * |w| + |b|
    x64, groups = to64(x), G if norm == "group" else C
    eval_stats = (None, None) if training else (rm.double().numpy(), rv.double().numpy())
    _, mu, rstd, _, _ = ref_channel_forward(x64, norm, groups, None, None, 1e-5, *eval_stats)
    v, _ = _group_axes(x64, norm, groups)
    pshape = (1, C) + (1,) * (len(shape) - 2)
    terms = ((np.abs(v) + np.abs(mu)) * rstd).reshape(shape) * \
        (np.abs(to64(w)).reshape(pshape) if affine else 1.0) + \
        (np.abs(to64(b)).reshape(pshape) if affine else 0.0)
    assert_16_close(h(y), to64(ty), terms, storage, ulps=2.0, rel=2 * eps16,
                    what="y vs torch")
    # torch's backward rounds some intermediates to 16 bits: a few units of
    # the terms' magnitude where dx cancels
    dxscale = np.abs(to64(tgrads[0])).max(axis=None) + np.abs(to64(dy)).max() * \
        float(np.abs(to64(ty)).max() + 1)
    assert_16_close(h(grads[0]), to64(tgrads[0]), np.full(shape, dxscale), storage, ulps=2.0,
                    rel=4 * eps16, what="dx vs torch")
    for ours, theirs in zip(grads[1:], tgrads[1:]):
        ours, theirs = to64(ours), to64(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=0,
                                   atol=4 * eps16 * (np.abs(theirs).max() + 1))
    if training and norm == "batch":
        for ours, theirs in zip(stats, tstats):
            np.testing.assert_allclose(to64(ours), to64(theirs), rtol=2 * eps16,
                                       atol=2 * eps16)


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
@pytest.mark.parametrize("channels_last", [False, True], ids=["contiguous", "channels_last"])
def test_16_bit_tensors_reach_the_channel_kernels_without_copies(monkeypatch, dtype,
                                                                 channels_last):
    """No float32 copy of the input, grad_output or outputs: the kernels see
    the tensors' own memory, and write the results the ops return."""
    import fastnorm.torch as ft
    tdtype = getattr(torch, dtype)
    seen = []
    for name in ("fused_forward_nchw", "fused_backward_nchw", "fused_forward_nhwc",
                 "fused_backward_nhwc", "channel_moments", "channel_affine",
                 "channel_dot_sums", "channel_backward"):
        real = getattr(_cpu, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            seen.append((_name, [a for a in args if isinstance(a, np.ndarray) and a.ndim == 3],
                         kwargs))
            out = _real(*args, **kwargs)
            out0 = out[0] if isinstance(out, tuple) else out
            if out0.ndim == 3:  # (not the statistics)
                seen[-1][1].append(out0)
            return out
        monkeypatch.setattr(_cpu, name, spy)
    x = torch.randn(4, 8, 6, 6).to(tdtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    dy = torch.randn_like(x)
    y = ft.batch_norm(x, None, None, torch.ones(8), torch.zeros(8), training=True)
    (dx,) = torch.autograd.grad(y, [x], dy)
    assert seen, "no channel kernel ran"
    np_dtype = np.uint16 if dtype == "bfloat16" else np.float16
    ptrs = {x.data_ptr(), dy.data_ptr(), y.data_ptr(), dx.data_ptr()}
    for name, arrays, kwargs in seen:
        assert kwargs.get("bfloat16", False) == (dtype == "bfloat16"), name
        for a in arrays:
            assert a.dtype == np_dtype, (name, a.dtype)
            assert a.__array_interface__["data"][0] in ptrs, name
    torch.testing.assert_close(y, torch.nn.functional.batch_norm(
        x.detach(), None, None, torch.ones(8), torch.zeros(8), training=True),
        rtol=2**-7, atol=2**-7)

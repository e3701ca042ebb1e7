"""out= on fastnorm.functional's forwards and gradient buffers on their
backwards: the result is the allocating call's, bit for bit, written into
the caller's buffer, which is what comes back; the inputs are untouched;
a buffer of the wrong shape, dtype, order or library, read-only, or sharing
memory with an input is refused with an error naming it."""
import numpy as np
import pytest

import fastnorm.functional as F


class Case:
    """One function pair: fwd(x, out=None) and bwd(dy, x, out=None) over
    fresh copies of the state (running statistics are updated in place)."""

    def __init__(self, shape, fwd, bwd, grads, n_out=None, input_name="input",
                 grad_name="grad_input"):
        self.shape, self.fwd, self.bwd = shape, fwd, bwd
        self.input_name, self.grad_name = input_name, grad_name
        self.grads = grads  # per returned gradient: "x" (input-shaped), a shape, or None
        self.n_out = n_out  # forward returns a tuple: the buffer is element 0


def _p(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def make_cases(rng, dtype):
    C = 4
    w, b = _p(rng, C, dtype), _p(rng, C, dtype)
    n = 8
    wn, bn = _p(rng, n, dtype), _p(rng, n, dtype)
    mw, vw = _p(rng, 3, dtype), _p(rng, 3, dtype)

    def running():
        return np.zeros(C, dtype), np.ones(C, dtype)

    def bn_fwd(training, layout):
        def fwd(x, **kw):
            return F.batch_norm(x, *running(), w, b, training, layout=layout, **kw)
        return fwd

    def bn_bwd(training, layout):
        def bwd(dy, x, **kw):
            return F.batch_norm_backward(dy, x, *running(), w, b, training, layout=layout, **kw)
        return bwd

    v, g = _p(rng, (5, 3, 2), dtype), _p(rng, (5, 1, 1), dtype)
    u = _p(rng, 5, dtype)
    cases = {
        "layer_norm": Case((6, n), lambda x, **kw: F.layer_norm(x, n, wn, bn, **kw),
                           lambda dy, x, **kw: F.layer_norm_backward(dy, x, n, wn, bn, **kw),
                           ["x", (n,), (n,)]),
        "layer_norm[no bias]": Case(
            (6, n), lambda x, **kw: F.layer_norm(x, n, wn, None, **kw),
            lambda dy, x, **kw: F.layer_norm_backward(dy, x, n, wn, None, **kw),
            ["x", (n,), None]),
        "layer_norm[2 dims]": Case(
            (3, 2, n), lambda x, **kw: F.layer_norm(x, (2, n), None, None, **kw),
            lambda dy, x, **kw: F.layer_norm_backward(dy, x, (2, n), **kw), ["x", None, None]),
        "rms_norm": Case((2, 3, n), lambda x, **kw: F.rms_norm(x, n, wn, **kw),
                         lambda dy, x, **kw: F.rms_norm_backward(dy, x, n, wn, **kw),
                         ["x", (n,)]),
        "batch_norm[train]": Case((3, C, 5, 7), bn_fwd(True, "NCHW"), bn_bwd(True, "NCHW"),
                                  ["x", (C,), (C,)]),
        "batch_norm[train,fused]": Case((3, C, 40), bn_fwd(True, "NCHW"),
                                        bn_bwd(True, "NCHW"), ["x", (C,), (C,)]),
        "batch_norm[eval,NHWC]": Case((3, 5, 7, C), bn_fwd(False, "NHWC"),
                                      bn_bwd(False, "NHWC"), ["x", (C,), (C,)]),
        "group_norm": Case((3, C, 5), lambda x, **kw: F.group_norm(x, 2, w, b, **kw),
                           lambda dy, x, **kw: F.group_norm_backward(dy, x, 2, w, b, **kw),
                           ["x", (C,), (C,)]),
        "group_norm[fused]": Case(
            (3, C, 6, 6), lambda x, **kw: F.group_norm(x, 2, w, b, **kw),
            lambda dy, x, **kw: F.group_norm_backward(dy, x, 2, w, b, **kw),
            ["x", (C,), (C,)]),
        "group_norm[NHWC]": Case(
            (3, 6, 6, C), lambda x, **kw: F.group_norm(x, 2, w, None, layout="NHWC", **kw),
            lambda dy, x, **kw: F.group_norm_backward(dy, x, 2, w, None, layout="NHWC", **kw),
            ["x", (C,), None]),
        "instance_norm": Case(
            (3, C, 9), lambda x, **kw: F.instance_norm(x, *running(), w, b, **kw),
            lambda dy, x, **kw: F.instance_norm_backward(dy, x, *running(), w, b, **kw),
            ["x", (C,), (C,)]),
        "instance_norm[eval]": Case(
            (3, C, 9),
            lambda x, **kw: F.instance_norm(x, *running(), w, b, use_input_stats=False, **kw),
            lambda dy, x, **kw: F.instance_norm_backward(dy, x, *running(), w, b,
                                                         use_input_stats=False, **kw),
            ["x", (C,), (C,)]),
        "switchable_norm": Case(
            (3, C, 5, 2),
            lambda x, **kw: F.switchable_norm(x, w, b, mw, vw, *running(), True, **kw),
            lambda dy, x, **kw: F.switchable_norm_backward(dy, x, w, b, mw, vw, *running(),
                                                           True, **kw),
            ["x", (C,), (C,), (3,), (3,)]),
        "local_response_norm": Case(
            (3, C, 5), lambda x, **kw: F.local_response_norm(x, 3, **kw),
            lambda dy, x, **kw: F.local_response_norm_backward(dy, x, 3, **kw), ["x"]),
        "normalize": Case((3, C, 5), lambda x, **kw: F.normalize(x, **kw),
                          lambda dy, x, **kw: F.normalize_backward(dy, x, **kw), ["x"]),
        "normalize[dims 1,3]": Case(
            (3, C, 5, 2), lambda x, **kw: F.normalize(x, dim=(1, 3), **kw),
            lambda dy, x, **kw: F.normalize_backward(dy, x, dim=(1, 3), **kw), ["x"]),
        "normalize[p=3]": Case((3, C, 5), lambda x, **kw: F.normalize(x, p=3, **kw),
                               lambda dy, x, **kw: F.normalize_backward(dy, x, p=3, **kw),
                               ["x"]),
        "weight_norm": Case(v.shape, lambda x, **kw: F.weight_norm(x, g, **kw),
                            lambda dy, x, **kw: F.weight_norm_backward(dy, x, g, **kw),
                            ["x", g.shape], input_name="v", grad_name="grad_v"),
        "spectral_norm": Case(v.shape, lambda x, **kw: F.spectral_norm(x, u, **kw),
                              lambda dy, x, **kw: F.spectral_norm_backward(dy, x, u, **kw),
                              ["x"], n_out=3, input_name="weight",
                              grad_name="grad_weight"),
    }
    return cases


NAMES = list(make_cases(np.random.default_rng(0), np.float32))


def _setup(name, dtype, rng):
    case = make_cases(rng, dtype)[name]
    x = (rng.standard_normal(case.shape) * 2 + 1).astype(dtype)
    dy = rng.standard_normal(case.shape).astype(dtype)
    return case, x, dy


def _first(result, case):
    return result[0] if case.n_out else result


def _buffers(case, x, fill=np.nan):
    """A buffer per existing gradient (poisoned: every value must be written)."""
    return tuple(None if g is None else np.full(x.shape if g == "x" else g, fill, x.dtype)
                 for g in case.grads)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_forward_out_is_the_allocating_result(name, dtype, rng):
    case, x, _ = _setup(name, dtype, rng)
    x_before = x.copy()
    expected = _first(case.fwd(x), case)
    out = np.full(x.shape, np.nan, dtype)
    result = case.fwd(x, out=out)
    got = _first(result, case)
    assert got is out
    _same(out, expected)
    _same(x, x_before)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm", "batch_norm[train]",
                                  "group_norm[fused]", "instance_norm"])
def test_forward_out_with_return_saved(name, rng):
    case, x, _ = _setup(name, np.float32, rng)
    y, saved = case.fwd(x, return_saved=True)
    out = np.empty_like(x)
    got, saved_out = case.fwd(x, out=out, return_saved=True)
    assert got is out
    _same(out, y)
    _same(np.asarray(saved_out.mean), np.asarray(saved.mean))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_backward_buffers_are_the_allocating_result(name, dtype, rng):
    case, x, dy = _setup(name, dtype, rng)
    x_before, dy_before = x.copy(), dy.copy()
    expected = case.bwd(dy, x)
    assert len(expected) == len(case.grads)
    bufs = _buffers(case, x)
    got = case.bwd(dy, x, out=bufs)
    for g, buf, e in zip(got, bufs, expected):
        assert (e is None) == (buf is None)
        if buf is not None:
            assert g is buf
            _same(g, e)
    _same(x, x_before)
    _same(dy, dy_before)
    # None entries: those gradients are allocated; a list works as a tuple
    partial = [bufs[0]] + [None] * (len(bufs) - 1)
    got = case.bwd(dy, x, out=partial)
    assert got[0] is bufs[0]
    for g, e in zip(got, expected):
        assert (g is None) == (e is None)
        if e is not None:
            _same(g, e)


@pytest.mark.parametrize("name", NAMES)
def test_noncontiguous_input_contiguous_out(name, rng):
    case, x, dy = _setup(name, np.float64, rng)
    wide = np.repeat(x, 2, axis=-1)[..., ::2]  # x's values, strided
    assert not wide.flags.c_contiguous
    np.testing.assert_array_equal(wide, x)
    out = np.empty_like(x)
    assert _first(case.fwd(wide, out=out), case) is out
    _same(out, _first(case.fwd(x), case))
    bufs = _buffers(case, x)
    got = case.bwd(np.asfortranarray(dy), wide, out=bufs)
    assert got[0] is bufs[0]
    _same(got[0], case.bwd(dy, x)[0])


@pytest.mark.parametrize("name", NAMES)
def test_forward_out_refusals_name_out(name, rng):
    case, x, _ = _setup(name, np.float32, rng)
    bad_shape = np.empty(x.shape[:-1] + (x.shape[-1] + 1,), np.float32)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    strided = np.empty(x.shape[:-1] + (2 * x.shape[-1],), np.float32)[..., ::2]
    for bad, error in [(bad_shape, ValueError), (np.empty(x.shape), ValueError),
                       (strided, ValueError), (readonly, ValueError), (x, ValueError),
                       (x.tolist(), TypeError)]:
        with pytest.raises(error, match="out"):
            case.fwd(x, out=bad)
    # a view of the input's memory is refused too
    base = np.empty((2,) + x.shape, np.float32)
    base[0] = x
    with pytest.raises(ValueError, match=f"out shares memory with {case.input_name}"):
        case.fwd(base[0], out=base[0])


@pytest.mark.parametrize("name", NAMES)
def test_backward_buffer_refusals_name_the_buffer(name, rng):
    case, x, dy = _setup(name, np.float32, rng)
    k = len(case.grads)
    g0, x_name = rf"out\[0\] \({case.grad_name}\)", case.input_name
    with pytest.raises(TypeError, match="out must be None or a tuple"):
        case.bwd(dy, x, out=np.empty_like(x))
    with pytest.raises(TypeError, match=f"tuple of {k} "):
        case.bwd(dy, x, out=(None,) * (k + 1))
    with pytest.raises(ValueError, match=g0 + " has dtype"):
        case.bwd(dy, x, out=(np.empty(x.shape),) + (None,) * (k - 1))
    with pytest.raises(ValueError, match=g0 + " has shape"):
        case.bwd(dy, x, out=(np.empty(x.size + 1, np.float32),) + (None,) * (k - 1))
    with pytest.raises(ValueError, match=g0 + " shares memory with grad_output"):
        case.bwd(dy, x, out=(dy,) + (None,) * (k - 1))
    with pytest.raises(ValueError, match=f"{g0} shares memory with {x_name}"):
        case.bwd(dy, x, out=(x,) + (None,) * (k - 1))
    with pytest.raises(TypeError, match=g0 + " must be a NumPy array"):
        case.bwd(dy, x, out=(x.tolist(),) + (None,) * (k - 1))
    for i, g in enumerate(case.grads):
        if g is None:
            with pytest.raises(ValueError, match=rf"out\[{i}\] must be None"):
                bufs = [None] * k
                bufs[i] = np.empty(3, np.float32)
                case.bwd(dy, x, out=tuple(bufs))
        elif i > 0:
            bufs = [None] * k
            bufs[i] = np.empty(g, np.float32)[::-1] if len(g) == 1 and g[0] > 1 else None
            if bufs[i] is not None:
                with pytest.raises(ValueError, match=rf"out\[{i}\] \(grad_\w+\) must be "
                                                     "C-contiguous"):
                    case.bwd(dy, x, out=tuple(bufs))
    # two gradients in one buffer
    shapes = [g for g in case.grads[1:] if g is not None]
    if len(shapes) >= 2 and shapes[0] == shapes[1]:
        shared = np.empty(shapes[0], np.float32)
        bufs = [None] + [shared if g is not None else None for g in case.grads[1:]]
        with pytest.raises(ValueError, match="shares memory with out"):
            case.bwd(dy, x, out=tuple(bufs))


def test_a_failed_check_changes_no_state(rng):
    x = rng.standard_normal((4, 3, 5))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="out"):
        F.batch_norm(x, rm, rv, training=True, out=np.empty((4, 3, 4)))
    _same(rm, np.zeros(3))
    _same(rv, np.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,call", [
    ((0, 8), lambda x, **kw: F.layer_norm(x, 8, **kw)),
    ((0, 8), lambda x, **kw: F.rms_norm(x, 8, **kw)),
    ((0, 3, 4), lambda x, **kw: F.group_norm(x, 3, **kw)),
    ((0, 3, 4), lambda x, **kw: F.instance_norm(x, **kw)),
    ((0, 3, 4), lambda x, **kw: F.batch_norm(x, None, None, training=True, **kw)),
    ((0,), lambda x, **kw: F.batch_norm(x, None, None, training=True, **kw)),
    ((0, 3, 4), lambda x, **kw: F.local_response_norm(x, 2, **kw)),
    ((2, 0), lambda x, **kw: F.normalize(x, **kw)),
])
def test_empty_input_out(shape, call, dtype):
    x = np.empty(shape, dtype)
    out = np.empty(shape, dtype)
    assert call(x, out=out) is out
    with pytest.raises(ValueError, match="out has dtype"):
        call(x, out=np.empty(shape, np.float16))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_empty_backward_buffers(dtype):
    x = np.empty((0, 8), dtype)
    w, b = np.ones(8, dtype), np.zeros(8, dtype)
    bufs = (np.empty_like(x), np.full(8, np.nan, dtype), np.full(8, np.nan, dtype))
    dx, dw, db = F.layer_norm_backward(x.copy(), x, 8, w, b, out=bufs)
    assert dx is bufs[0] and dw is bufs[1] and db is bufs[2]
    _same(dw, np.zeros(8, dtype))
    _same(db, np.zeros(8, dtype))
    x4 = np.empty((0, 4, 5), dtype)
    bufs = (np.empty_like(x4), np.full(4, np.nan, dtype), None)
    got = F.batch_norm_backward(x4.copy(), x4, None, None, np.ones(4, dtype), None, True,
                                out=bufs)
    assert got[0] is bufs[0] and got[1] is bufs[1] and got[2] is None
    _same(got[1], np.zeros(4, dtype))


def test_float16_row_norm_out(rng):
    x = rng.standard_normal((5, 16)).astype(np.float16)
    w = rng.standard_normal(16).astype(np.float32)
    out = np.empty_like(x)
    assert F.layer_norm(x, 16, w, None, out=out) is out
    _same(out, F.layer_norm(x, 16, w, None))
    with pytest.raises(ValueError, match="out has dtype"):
        F.layer_norm(x, 16, w, None, out=np.empty(x.shape, np.float32))
    dy = rng.standard_normal(x.shape).astype(np.float16)
    bufs = (np.empty_like(x), np.empty(16, np.float32), None)
    got = F.layer_norm_backward(dy, x, 16, w, None, out=bufs)
    ref = F.layer_norm_backward(dy, x, 16, w, None)
    assert got[0] is bufs[0] and got[1] is bufs[1]
    _same(got[0], ref[0])
    _same(got[1], ref[1])


def test_reused_buffers_across_steps(rng):
    """A training loop's use: the same buffers every step, each result right."""
    n = 32
    w, b = rng.standard_normal(n), rng.standard_normal(n)
    out = np.empty((16, n))
    bufs = (np.empty((16, n)), np.empty(n), np.empty(n))
    for _ in range(3):
        x, dy = rng.standard_normal((16, n)), rng.standard_normal((16, n))
        y, saved = F.layer_norm(x, n, w, b, out=out, return_saved=True)
        assert y is out
        _same(y, F.layer_norm(x, n, w, b))
        grads = F.layer_norm_backward(dy, x, n, w, b, saved=saved, out=bufs)
        for g, e in zip(grads, F.layer_norm_backward(dy, x, n, w, b)):
            _same(g, e)

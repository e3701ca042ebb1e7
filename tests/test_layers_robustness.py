"""fastnorm.layers and fastnorm.functional on the wrong foot (issue 12): a
forward that raises changes no state; an input modified in place after the
forward does not change the backward's gradients; a pickled layer carries
no input batch; bad arguments give errors that name them, with torch's
exception type where torch raises."""
import pickle
import warnings

import numpy as np
import pytest
import torch

import fastnorm.functional as F
import fastnorm.layers as L


def tt(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def state(layer):
    return {k: v.copy() for k, v in layer.state_dict().items()}


def assert_same_state(a, b):
    assert list(a) == list(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def assert_state_like_torch(layer, module):
    ref = module.state_dict()
    assert list(layer.state_dict()) == list(ref)
    for k, v in layer.state_dict().items():
        np.testing.assert_allclose(v, ref[k].numpy(), rtol=1e-5, atol=1e-6, err_msg=k)


# (name, fastnorm layer, torch module or None, shape of a good float32 input,
#  inputs that must raise)
f32 = np.float32
CASES = [
    ("batch1d_cma", lambda: L.BatchNorm(3, momentum=None),
     lambda: torch.nn.BatchNorm1d(3, momentum=None), (6, 3),
     [np.ones((6, 5), f32), np.ones((2, 3, 2, 2, 2, 2), f32), np.ones((6, 3)),
      np.ones((6, 3), np.complex64), np.ones((1, 3), f32), None, [["a"] * 3] * 6]),
    ("batch2d", lambda: L.BatchNorm(3), lambda: torch.nn.BatchNorm2d(3), (4, 3, 2, 2),
     [np.ones((4, 2, 2, 2), f32), np.ones((4, 3, 2, 2), np.int64),
      np.ones((4, 3, 2, 2), f32).astype(np.float16)]),
    ("instance_tracked",
     lambda: L.InstanceNorm(3, affine=True, track_running_stats=True),
     lambda: torch.nn.InstanceNorm1d(3, affine=True, track_running_stats=True), (4, 3, 5),
     [np.ones((4, 5, 5), f32), np.ones((4, 3), f32), np.ones((4, 3, 1), f32),
      np.ones((4, 3, 5))]),
    ("group", lambda: L.GroupNorm(1, 3), lambda: torch.nn.GroupNorm(1, 3), (4, 3, 5),
     [np.ones((4, 2, 5), f32), np.ones((4, 3, 5)), np.ones((4, 3, 5), np.complex64)]),
    ("layer", lambda: L.LayerNorm(3), lambda: torch.nn.LayerNorm(3), (4, 2, 3),
     [np.ones((4, 2), f32), np.ones(3), np.ones((2, 3), np.int32)]),
    ("rms", lambda: L.RMSNorm(3), lambda: torch.nn.RMSNorm(3), (4, 2, 3),
     [np.ones((4, 2), f32), np.ones((2, 3), np.complex128)]),
    ("lrn", lambda: L.LocalResponseNorm(2), lambda: torch.nn.LocalResponseNorm(2), (2, 3, 4),
     [np.ones((2, 3), f32), np.ones((2, 3, 4), np.int64), "abc"]),
    ("switchable", lambda: L.SwitchableNorm(3), None, (4, 3, 5),
     [np.ones((4, 2, 5), f32), np.ones((4, 3, 5)), np.ones((4, 3, 1), f32),
      np.ones((4, 3, 5), np.complex64)]),
]
IDS = [c[0] for c in CASES]


def good_input(shape, rng, dtype=f32):
    return (rng.standard_normal(shape) * 2 + 5).astype(dtype)


@pytest.mark.parametrize("name,make,make_torch,shape,bad", CASES, ids=IDS)
def test_a_failed_forward_changes_no_state(name, make, make_torch, shape, bad, rng):
    layer = make()
    x0, dy = good_input(shape, rng), rng.standard_normal(shape).astype(f32)
    layer(x0)
    dx = layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    before = state(layer)
    for x in bad:
        with pytest.raises((TypeError, ValueError)):
            layer(x)
        assert_same_state(state(layer), before)
    # the backward still belongs to the last good forward
    np.testing.assert_array_equal(layer.backward(dy), dx)
    assert sorted(layer.grads) == sorted(grads)
    for k in grads:
        np.testing.assert_array_equal(layer.grads[k], grads[k])


@pytest.mark.parametrize("name,make,make_torch,shape,bad", CASES, ids=IDS)
def test_bad_inputs_then_a_good_batch_end_as_torch(name, make, make_torch, shape, bad, rng):
    """The sequence of issue 12: bad inputs, then one good batch; the state
    is torch's after the good batch alone."""
    layer = make()
    for x in bad:
        with pytest.raises((TypeError, ValueError)):
            layer(x)
    x = good_input(shape, rng)
    if make_torch is None:  # no torch module: as a fresh layer given the good batch alone
        fresh = make()
        np.testing.assert_array_equal(layer(x), fresh(x))
        for (k, v), (k_ref, v_ref) in zip(layer.state_dict().items(),
                                          fresh.state_dict().items(), strict=True):
            assert k == k_ref
            np.testing.assert_array_equal(v, v_ref, err_msg=k)
        return
    module = make_torch()
    np.testing.assert_allclose(layer(x), module(tt(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)
    assert_state_like_torch(layer, module)


def test_batch_norm_cumulative_average_after_failed_forwards(rng):
    """Issue 12's numbers: three raising inputs, one good batch. torch's
    BatchNorm1d rejects the wrong rank before counting a batch (a wrong
    channel count or dtype it counts, then raises; fastnorm counts none)."""
    ours, module = L.BatchNorm(3, momentum=None), torch.nn.BatchNorm1d(3, momentum=None)
    for _ in range(3):
        with pytest.raises(ValueError):
            ours(np.ones((2, 3, 2, 2, 2, 2), f32))
        with pytest.raises(ValueError):
            module(torch.ones(2, 3, 2, 2, 2, 2))
    x = good_input((8, 3), rng)
    ours(x)
    module(tt(x))
    assert int(ours.num_batches_tracked) == int(module.num_batches_tracked) == 1
    np.testing.assert_allclose(ours.running_mean, x.mean(axis=0), rtol=1e-6)
    assert_state_like_torch(ours, module)


def test_a_failed_load_state_dict_changes_nothing():
    layer = L.BatchNorm(3)
    before = state(layer)
    bad = dict(before, weight=np.full(3, 2.0), running_mean=np.ones(4))
    with pytest.raises(ValueError, match="running_mean"):
        layer.load_state_dict(bad)
    assert_same_state(state(layer), before)


# ------------------------------------------------- inputs modified in place ---

def torch_grads(module, x, dy):
    xt = tt(x).requires_grad_(True)
    y = module(xt)
    params = [p for _, p in module.named_parameters()]
    g = torch.autograd.grad(y, [xt] + params, tt(dy))
    return g[0].numpy(), {n: gi.numpy() for (n, _), gi in zip(module.named_parameters(),
                                                              g[1:])}


@pytest.mark.parametrize("modify", ["scale", "sort", "zero_row"])
@pytest.mark.parametrize("name,make,make_torch,shape,bad", CASES, ids=IDS)
def test_input_modified_after_forward(name, make, make_torch, shape, bad, modify, rng):
    layer = make()
    x = good_input(shape, rng)
    x0 = x.copy()
    dy = rng.standard_normal(shape).astype(f32)
    ref = make()
    y_ref = ref(x0)
    dx_ref = ref.backward(dy)
    layer(x)
    if modify == "scale":
        x *= 3
    elif modify == "sort":
        x.reshape(-1).sort()
    else:
        x[0] = 0
    dx = layer.backward(dy)
    # the gradient of the forward that ran, on the values it saw
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)
    for k in ref.grads:
        np.testing.assert_allclose(layer.grads[k], ref.grads[k], rtol=1e-6, atol=1e-6)
    if make_torch is not None:
        dx_t, g_t = torch_grads(make_torch(), x0, dy)
        np.testing.assert_allclose(dx, dx_t, rtol=1e-4, atol=1e-4)
        for k, g in g_t.items():
            np.testing.assert_allclose(layer.grads[k], g, rtol=1e-4, atol=1e-4)
    assert y_ref.shape == x.shape


def test_view_of_a_modified_base(rng):
    base = good_input((6, 8), rng)
    x = base[:, ::2]  # a non-contiguous view
    x0 = x.copy()
    dy = rng.standard_normal(x.shape).astype(f32)
    layer, ref = L.LayerNorm(4), L.LayerNorm(4)
    layer(x)
    base[...] = 0
    ref(x0)
    np.testing.assert_allclose(layer.backward(dy), ref.backward(dy), rtol=1e-6, atol=1e-6)


def test_parameters_modified_between_forward_and_backward(rng):
    """The backward is that of the forward's parameters (an optimizer step or
    load_state_dict in between does not leak into it)."""
    x = good_input((4, 3, 5), rng)
    dy = rng.standard_normal(x.shape).astype(f32)
    for make in (lambda: L.BatchNorm(3), lambda: L.GroupNorm(3, 3), lambda: L.LayerNorm(5),
                 lambda: L.RMSNorm(5), lambda: L.InstanceNorm(3, affine=True),
                 lambda: L.SwitchableNorm(3)):
        layer, ref = make(), make()
        layer(x)
        ref(x)
        for k, v in layer.state_dict().items():
            if v.dtype.kind == "f":
                v += 1.5
                layer.load_state_dict({**layer.state_dict(), k: v})
        np.testing.assert_allclose(layer.backward(dy), ref.backward(dy), rtol=1e-6)
        for k in ref.grads:
            np.testing.assert_allclose(layer.grads[k], ref.grads[k], rtol=1e-6)


@pytest.mark.parametrize("name,make,make_torch,shape,bad", CASES, ids=IDS)
def test_pickle_carries_no_input_batch(name, make, make_torch, shape, bad, rng):
    layer = make()
    big = tuple(s * 100 if i == 0 else s for i, s in enumerate(shape))
    x = good_input(big, rng)
    layer(x)
    blob = pickle.dumps(layer)
    assert len(blob) < len(pickle.dumps(make())) + 100 < x.nbytes
    copy = pickle.loads(blob)
    assert_same_state(state(copy), state(layer))
    with pytest.raises(RuntimeError, match="forward"):
        copy.backward(np.ones(big, f32))
    # the original keeps its input; the copy works after a forward of its own
    dy = rng.standard_normal(big).astype(f32)
    copy(x)
    np.testing.assert_allclose(copy.backward(dy), layer.backward(dy), rtol=1e-6)


# ------------------------------------------------------ errors naming things ---

def row_saved_cases(rng):
    x = rng.standard_normal((5, 4))
    dy = rng.standard_normal(x.shape)
    return x, dy


@pytest.mark.parametrize("fn", ["layer_norm", "rms_norm"])
def test_saved_statistics_in_any_float_layout(fn, rng):
    x, dy = row_saved_cases(rng)
    fwd, bwd = getattr(F, fn), getattr(F, fn + "_backward")
    _, saved = fwd(x, 4, return_saved=True)
    ref = bwd(dy, x, 4)
    variants = {
        "float32": F.SavedStats(saved.mean.astype(np.float32),
                                saved.rstd.astype(np.float32)),
        "strided": F.SavedStats(np.repeat(saved.mean, 2)[::2], np.repeat(saved.rstd, 2)[::2]),
        "list": F.SavedStats(list(saved.mean), list(saved.rstd)),
        "big-endian": F.SavedStats(saved.mean.astype(">f8"), saved.rstd.astype(">f8")),
    }
    for what, s in variants.items():
        got = bwd(dy, x, 4, saved=s)
        tol = 1e-6 if what == "float32" else 1e-12
        for a, b in zip(got, ref):
            if b is not None:
                np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg=what)


def test_bad_saved_statistics_are_named(rng):
    x, dy = row_saved_cases(rng)
    _, saved = F.layer_norm(x, 4, return_saved=True)
    for bad in (F.SavedStats(saved.mean.astype(np.int64), saved.rstd),
                F.SavedStats(saved.mean.astype(np.complex128), saved.rstd),
                F.SavedStats(None, saved.rstd), F.SavedStats(["a"] * 5, saved.rstd)):
        with pytest.raises(TypeError, match=r"saved\.mean"):
            F.layer_norm_backward(dy, x, 4, saved=bad)
    with pytest.raises(TypeError, match=r"saved\.rstd"):
        F.layer_norm_backward(dy, x, 4, saved=F.SavedStats(saved.mean, "x"))
    with pytest.raises(ValueError, match="saved"):
        F.layer_norm_backward(dy, x, 4, saved=F.SavedStats(saved.mean[:3], saved.rstd[:3]))
    # the channel norms' saved statistics too
    xc = rng.standard_normal((4, 3, 5))
    _, s = F.group_norm(xc, 3, return_saved=True)
    g = F.group_norm_backward(xc, xc, 3, saved=F.SavedStats(s.mean.astype(np.float32).T.copy().T,
                                                               s.rstd))[0]
    np.testing.assert_allclose(g, F.group_norm_backward(xc, xc, 3)[0], rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match=r"saved\.rstd"):
        F.batch_norm_backward(xc, xc, None, None, training=True,
                              saved=F.SavedStats(np.zeros(3), np.zeros(3, bool)))


@pytest.mark.parametrize("cls", [L.LayerNorm, L.RMSNorm])
def test_normalized_shape_is_checked_as_torch(cls):
    tcls = getattr(torch.nn, cls.__name__)
    with pytest.raises(ValueError, match="normalized_shape"):
        cls(-3)
    with pytest.raises(ValueError, match="normalized_shape"):
        cls((4, -1))
    for bad in ([5.7], 5.0, (2, "3"), (True,), "5", None):
        with pytest.raises(TypeError, match="normalized_shape"):
            cls(bad)
        with pytest.raises(TypeError):
            tcls(bad)
    assert cls(np.int64(3)).normalized_shape == (3,)
    assert cls([np.int32(2), 3]).normalized_shape == (2, 3)


def test_layer_sizes_refuse_non_integers_as_torch():
    for make, tmake in ((lambda: L.BatchNorm(3.5), lambda: torch.nn.BatchNorm1d(3.5)),
                        (lambda: L.InstanceNorm(2.0), lambda: torch.nn.InstanceNorm1d(2.0,
                                                                                      affine=True)),
                        (lambda: L.GroupNorm(1, 3.0), lambda: torch.nn.GroupNorm(1, 3.0))):
        with pytest.raises(TypeError):
            tmake()
        with pytest.raises(TypeError, match="num_"):
            make()
    with pytest.raises(ValueError, match="num_features"):
        L.BatchNorm(0)


def big_endian(a):
    return a.astype(a.dtype.newbyteorder(">" if np.little_endian else "<"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_byte_swapped_input_is_float_input(dtype, rng):
    x = rng.standard_normal((4, 6, 5)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    w = rng.standard_normal(6).astype(dtype)
    xs, dys, ws = big_endian(x), big_endian(dy), big_endian(w)
    assert not xs.dtype.isnative
    calls = [
        lambda x, w: F.layer_norm(x, 5),
        lambda x, w: F.rms_norm(x, (6, 5)),
        lambda x, w: F.group_norm(x, 3, w, w),
        lambda x, w: F.instance_norm(x, weight=w),
        lambda x, w: F.batch_norm(x, None, None, w, w, training=True),
        lambda x, w: F.local_response_norm(x, 3),
        lambda x, w: F.normalize(x, dim=2),
        lambda x, w: F.layer_norm_backward(dys, x, 5)[0],
        lambda x, w: F.group_norm_backward(dys, x, 2, w)[1],
    ]
    for call in calls:
        ref, got = call(x, w), call(xs, ws)
        assert got.dtype == np.dtype(dtype) and got.dtype.isnative
        np.testing.assert_array_equal(got, ref)
    # running statistics are updated in place, whatever their byte order
    rm, rv = big_endian(np.zeros(6, dtype)), big_endian(np.ones(6, dtype))
    rm_ref, rv_ref = np.zeros(6, dtype), np.ones(6, dtype)
    F.batch_norm(xs, rm, rv, training=True)
    F.batch_norm(x, rm_ref, rv_ref, training=True)
    np.testing.assert_array_equal(rm, rm_ref)
    np.testing.assert_array_equal(rv, rv_ref)
    # and a layer takes it
    layer, ref_layer = L.BatchNorm(6, dtype=dtype), L.BatchNorm(6, dtype=dtype)
    np.testing.assert_array_equal(layer(xs), ref_layer(x))
    np.testing.assert_array_equal(layer.backward(dys), ref_layer.backward(dy))


def test_complex_input_is_refused_naming_the_argument(rng):
    x = rng.standard_normal((4, 6, 5)) + 0j
    with pytest.raises(NotImplementedError):  # torch refuses it too
        torch.nn.functional.layer_norm(torch.ones(2, 3, dtype=torch.complex64), (3,))
    for call, name in [
        (lambda: F.layer_norm(x, 5), "input"),
        (lambda: F.batch_norm(x, None, None, training=True), "input"),
        (lambda: F.group_norm(x.real, 3, x.real[0, :, 0] + 0j), "weight"),
        (lambda: F.layer_norm_backward(x, x.real, 5), "grad_output"),
        (lambda: L.LayerNorm(5, dtype=np.float64)(x), "input"),
    ]:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(TypeError, match=name):
                call()


def test_load_state_dict_refuses_silent_coercions_and_names_the_key():
    layer = L.BatchNorm(3)
    good = state(layer)
    module = torch.nn.BatchNorm1d(3)
    module.load_state_dict({**{k: tt(v) for k, v in good.items()},
                            "num_batches_tracked": torch.tensor(3.7)})
    assert int(module.num_batches_tracked) == 3  # torch truncates silently; fastnorm refuses
    cases = [
        ("num_batches_tracked", 3.7, TypeError),
        ("num_batches_tracked", np.float64(3.0), TypeError),
        ("num_batches_tracked", True, TypeError),
        ("num_batches_tracked", -1, ValueError),
        ("weight", np.ones(3, np.complex128), TypeError),
        ("weight", ["a", "b", "c"], TypeError),
        ("bias", None, TypeError),
        ("running_var", "abc", TypeError),
        ("running_mean", np.ones(3, object), TypeError),
        ("weight", np.ones(4), ValueError),
    ]
    for key, value, exc in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no ComplexWarning: an error instead
            with pytest.raises(exc, match=key):
                layer.load_state_dict({**good, key: value})
        assert_same_state(state(layer), good)
    with pytest.raises(TypeError, match="state_dict"):
        layer.load_state_dict(None)
    # what is fine stays fine: numbers of another width, torch tensors, 0-d ints
    layer.load_state_dict({**good, "num_batches_tracked": np.int32(7),
                           "weight": np.full(3, 2.0), "bias": torch.zeros(3)})
    assert int(layer.num_batches_tracked) == 7 and layer.weight.dtype == np.float32
    assert layer.num_batches_tracked.dtype == np.int64

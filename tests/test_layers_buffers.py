"""fastnorm.layers reuse their output and gradient buffers across steps, only
when no one else can see them: a result the caller still holds (a variable,
a container, a view) is never overwritten; one it dropped is written again
(the same memory)."""
import copy
import pickle

import numpy as np
import pytest

import fastnorm.functional as F
import fastnorm.layers as L

LAYERS = {
    "LayerNorm": (lambda dt: L.LayerNorm(8, dtype=dt), (4, 8)),
    "RMSNorm": (lambda dt: L.RMSNorm(8, dtype=dt), (2, 3, 8)),
    "BatchNorm": (lambda dt: L.BatchNorm(3, dtype=dt), (4, 3, 5)),
    "GroupNorm": (lambda dt: L.GroupNorm(1, 3, dtype=dt), (2, 3, 40)),
    "InstanceNorm": (lambda dt: L.InstanceNorm(3, affine=True, dtype=dt), (2, 3, 6)),
    "LocalResponseNorm": (lambda dt: L.LocalResponseNorm(2), (2, 3, 4)),
    "SwitchableNorm": (lambda dt: L.SwitchableNorm(3, dtype=dt), (2, 3, 4)),
}


def ptr(a):
    return a.__array_interface__["data"][0]


def _data(rng, shape, dtype, n):
    return [(rng.standard_normal(shape) * 2 + 1).astype(dtype) for _ in range(n)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", LAYERS)
def test_an_unheld_output_is_reused_and_right(name, dtype, rng):
    make, shape = LAYERS[name]
    layer, fresh = make(dtype), make(dtype)
    xs = _data(rng, shape, dtype, 3)
    y = layer(xs[0])
    p = ptr(y)
    del y  # dropped: its memory is free for the next step
    for x in xs[1:]:
        y = layer(x)
        assert ptr(y) == p
        np.testing.assert_array_equal(y, fresh(x))  # a layer without reuse, same steps
        del y


@pytest.mark.parametrize("name", LAYERS)
def test_a_held_output_is_never_overwritten(name, rng):
    make, shape = LAYERS[name]
    layer = make(np.float32)
    xs = _data(rng, shape, np.float32, 5)
    kept_var = layer(xs[0])
    kept_list = [layer(xs[1])]
    view_base = layer(xs[2])
    view = view_base.reshape(-1)[1:]
    del view_base  # only the view holds it now
    snapshot = [kept_var.copy(), kept_list[0].copy(), view.copy()]
    for x in xs[3:]:
        y = layer(x)
        assert not any(np.may_share_memory(y, a) for a in (kept_var, kept_list[0], view))
    for a, b in zip((kept_var, kept_list[0], view), snapshot):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", LAYERS)
def test_gradient_buffers_reused_only_when_unheld(name, rng):
    make, shape = LAYERS[name]
    layer, fresh = make(np.float64), make(np.float64)
    x, dy, dy2 = _data(rng, shape, np.float64, 3)
    layer(x), fresh(x)
    dx = layer.backward(dy)
    p_dx, p_grads = ptr(dx), {k: ptr(g) for k, g in layer.grads.items()}
    del dx
    dx = layer.backward(dy2)  # nothing held: the same memory
    assert ptr(dx) == p_dx
    assert {k: ptr(g) for k, g in layer.grads.items()} == p_grads
    np.testing.assert_array_equal(dx, fresh.backward(dy2))
    for k, g in fresh.grads.items():
        np.testing.assert_array_equal(layer.grads[k], g)
    # held: the input gradient, one parameter gradient, the grads dict
    kept_dx, kept_dx_copy = dx, dx.copy()
    kept_grads = dict(layer.grads)
    kept_copies = {k: g.copy() for k, g in kept_grads.items()}
    dx2 = layer.backward(dy)
    assert not np.may_share_memory(dx2, kept_dx)
    np.testing.assert_array_equal(kept_dx, kept_dx_copy)
    for k, g in kept_grads.items():
        np.testing.assert_array_equal(g, kept_copies[k])
        assert not np.may_share_memory(layer.grads[k], g)
    del kept_grads
    the_dict = layer.grads
    dict_copies = {k: g.copy() for k, g in the_dict.items()}
    layer.backward(dy2)
    for k, g in the_dict.items():  # the caller's dict keeps its values
        np.testing.assert_array_equal(g, dict_copies[k])


def test_the_output_fed_back_as_input(rng):
    """layer(layer(x)): the first output is the second call's input (held),
    so the second output goes elsewhere and is right."""
    layer = L.LayerNorm(8, dtype=np.float64)
    x = rng.standard_normal((4, 8))
    y = layer(x)
    z = layer(y)
    assert not np.may_share_memory(y, z)
    np.testing.assert_array_equal(z, F.layer_norm(F.layer_norm(x, 8, layer.weight, layer.bias),
                                                  8, layer.weight, layer.bias))
    np.testing.assert_array_equal(y, F.layer_norm(x, 8, layer.weight, layer.bias))
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)),
                                  F.layer_norm_backward(np.ones_like(x), y, 8, layer.weight,
                                                        layer.bias)[0])


def test_a_new_shape_gets_a_new_buffer(rng):
    layer = L.LayerNorm(8, dtype=np.float64)
    y = layer(rng.standard_normal((4, 8)))
    del y
    x = rng.standard_normal((5, 8))
    np.testing.assert_array_equal(layer(x), F.layer_norm(x, 8, layer.weight, layer.bias))


def test_the_private_input_copy_is_reused(rng):
    layer = L.LayerNorm(8, dtype=np.float64)
    x1, x2, dy = rng.standard_normal((3, 4, 8))
    layer(x1)
    p = ptr(layer._ctx[0])
    layer(x2)
    assert ptr(layer._ctx[0]) == p
    x2_before = x2.copy()
    x2[...] = 0  # the caller's array changes: the backward is still that of x2's values
    np.testing.assert_array_equal(layer.backward(dy),
                                  F.layer_norm_backward(dy, x2_before, 8, layer.weight,
                                                        layer.bias)[0])


def test_a_failed_forward_keeps_the_buffers_and_the_backward(rng):
    layer = L.LayerNorm(8, dtype=np.float64)
    x, dy = rng.standard_normal((2, 4, 8))
    y = layer(x)
    y_copy = y.copy()
    with pytest.raises(ValueError):
        layer(rng.standard_normal((4, 7)))
    np.testing.assert_array_equal(y, y_copy)
    np.testing.assert_array_equal(layer.backward(dy),
                                  F.layer_norm_backward(dy, x, 8, layer.weight, layer.bias)[0])


def test_copies_carry_no_buffers(rng):
    layer = L.LayerNorm(8)
    layer(rng.standard_normal((4, 8)).astype(np.float32))
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer), copy.copy(layer)):
        assert other._results == {}
        assert other._results is not layer._results


def test_a_failed_backward_keeps_the_gradients(rng):
    layer = L.LayerNorm(8, dtype=np.float64)
    x, dy = rng.standard_normal((2, 4, 8))
    layer(x)
    layer.backward(dy)
    grads = {k: g.copy() for k, g in layer.grads.items()}
    with pytest.raises(ValueError):
        layer.backward(np.ones((4, 7)))
    assert set(layer.grads) == set(grads)
    for k, g in grads.items():
        np.testing.assert_array_equal(layer.grads[k], g)

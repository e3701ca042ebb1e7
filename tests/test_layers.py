"""fastnorm.layers against the torch.nn modules of the same name: outputs,
gradients, running statistics over several steps, train/eval, state_dict."""
import numpy as np
import pytest
import torch

import fastnorm.layers as L

TOL = {np.float32: 1e-5, np.float64: 1e-10}


def close(ours, ref, dtype):
    ref = np.asarray(ref.detach() if torch.is_tensor(ref) else ref, dtype=np.float64)
    err = np.abs(np.asarray(ours, dtype=np.float64) - ref).max() / max(np.abs(ref).max(), 1.0)
    assert err <= TOL[dtype], f"relative error {err:.3g}"


def torch_dtype(dtype):
    return torch.float64 if dtype == np.float64 else torch.float32


def randomize(layer, rng):
    """Random parameters and running statistics (keeping var > 0)."""
    state = layer.state_dict()
    for k, v in state.items():
        if v.dtype.kind == "f":
            state[k] = (np.abs(rng.standard_normal(v.shape)) + 0.5 if k == "running_var"
                        else rng.standard_normal(v.shape)).astype(v.dtype)
    layer.load_state_dict(state)


def load_into_torch(layer, module):
    module.load_state_dict({k: torch.from_numpy(np.asarray(v))
                            for k, v in layer.state_dict().items()})


def run_and_compare(ours, module, shape, dtype, rng, steps=3):
    for _ in range(steps):
        x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        xt = torch.tensor(x, requires_grad=True)
        y = module(xt)
        params = [p for _, p in module.named_parameters()]
        grads = torch.autograd.grad(y, [xt] + params, torch.tensor(dy))
        close(ours(x), y, dtype)
        close(ours.backward(dy), grads[0], dtype)
        assert sorted(ours.grads) == sorted(n for n, _ in module.named_parameters())
        for (name, _), g in zip(module.named_parameters(), grads[1:]):
            close(ours.grads[name], g, dtype)
        ref_state = module.state_dict()
        assert list(ours.state_dict()) == list(ref_state)
        for k, v in ours.state_dict().items():
            close(v, ref_state[k], dtype)


BATCH_SHAPES = [((8, 5), torch.nn.BatchNorm1d), ((4, 5, 7), torch.nn.BatchNorm1d),
                ((2, 5, 3, 4), torch.nn.BatchNorm2d), ((2, 5, 2, 3, 2), torch.nn.BatchNorm3d)]


@pytest.mark.parametrize("momentum", [0.1, None])
@pytest.mark.parametrize("affine,track", [(True, True), (False, True), (True, False)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,module_cls", BATCH_SHAPES)
def test_batch_norm_layer_matches_torch(shape, module_cls, dtype, affine, track, momentum,
                                        rng):
    ours = L.BatchNorm(5, momentum=momentum, affine=affine, track_running_stats=track,
                       dtype=dtype)
    module = module_cls(5, momentum=momentum, affine=affine, track_running_stats=track,
                        dtype=torch_dtype(dtype))
    randomize(ours, rng)
    load_into_torch(ours, module)
    run_and_compare(ours, module, shape, dtype, rng)
    ours.eval()
    module.eval()
    run_and_compare(ours, module, shape, dtype, rng, steps=1)


def test_batch_norm_eval_with_one_sample(rng):
    ours, module = L.BatchNorm(4, dtype=np.float64), torch.nn.BatchNorm2d(4).double()
    randomize(ours, rng)
    load_into_torch(ours, module)
    ours.eval()
    module.eval()
    run_and_compare(ours, module, (1, 4, 3, 3), np.float64, rng, steps=1)
    ours.train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        ours(np.ones((1, 4), np.float64))


@pytest.mark.parametrize("affine,track", [(False, False), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_instance_norm_layer_matches_torch(affine, track, dtype, rng):
    ours = L.InstanceNorm(6, affine=affine, track_running_stats=track, dtype=dtype)
    module = torch.nn.InstanceNorm2d(6, affine=affine, track_running_stats=track,
                                     dtype=torch_dtype(dtype))
    randomize(ours, rng)
    load_into_torch(ours, module)
    run_and_compare(ours, module, (3, 6, 5, 3), dtype, rng)
    ours.eval()
    module.eval()
    run_and_compare(ours, module, (3, 6, 5, 3), dtype, rng, steps=1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda dt: (L.GroupNorm(3, 6, dtype=dt), torch.nn.GroupNorm(3, 6, dtype=torch_dtype(dt))),
    lambda dt: (L.GroupNorm(6, 6, affine=False, dtype=dt),
                torch.nn.GroupNorm(6, 6, affine=False, dtype=torch_dtype(dt))),
    lambda dt: (L.LayerNorm((5, 3), dtype=dt),
                torch.nn.LayerNorm((5, 3), dtype=torch_dtype(dt))),
    lambda dt: (L.LayerNorm(3, bias=False, dtype=dt),
                torch.nn.LayerNorm(3, bias=False, dtype=torch_dtype(dt))),
    lambda dt: (L.RMSNorm((5, 3), dtype=dt), torch.nn.RMSNorm((5, 3), dtype=torch_dtype(dt))),
    lambda dt: (L.RMSNorm(3, eps=1e-6, elementwise_affine=False, dtype=dt),
                torch.nn.RMSNorm(3, eps=1e-6, elementwise_affine=False)),
    lambda dt: (L.LocalResponseNorm(3, alpha=1e-2, k=2.0), torch.nn.LocalResponseNorm(3, 1e-2, k=2.0)),
], ids=["group", "group1", "layer", "layer_nobias", "rms", "rms_plain", "lrn"])
def test_stateless_layers_match_torch(make, dtype, rng):
    ours, module = make(dtype)
    randomize(ours, rng)
    load_into_torch(ours, module)
    run_and_compare(ours, module, (2, 6, 5, 3), dtype, rng, steps=1)


def test_channels_last_layers_equal_nchw(rng):
    x = rng.standard_normal((4, 6, 5, 3))
    dy = rng.standard_normal(x.shape)
    to_last = (lambda a: np.moveaxis(a, 1, -1).copy())
    for make in (lambda lay: L.BatchNorm(6, dtype=np.float64, layout=lay),
                 lambda lay: L.GroupNorm(2, 6, dtype=np.float64, layout=lay),
                 lambda lay: L.InstanceNorm(6, affine=True, dtype=np.float64, layout=lay),
                 lambda lay: L.SwitchableNorm(6, dtype=np.float64, layout=lay)):
        a, b = make("NCHW"), make("NHWC")
        y_a, y_b = a(x), b(to_last(x))
        np.testing.assert_allclose(to_last(y_a), y_b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(to_last(a.backward(dy)), b.backward(to_last(dy)),
                                   rtol=1e-12, atol=1e-12)
        for k in a.grads:
            np.testing.assert_allclose(a.grads[k], b.grads[k], rtol=1e-12, atol=1e-12)


def test_state_dict_round_trip_gives_torchs_outputs(rng):
    module = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        module.weight.normal_()
        module.running_var.uniform_(0.5, 2)
    module(torch.randn(8, 4, 3, 3))  # moves the running statistics
    ours = L.BatchNorm(4).load_state_dict(module.state_dict())
    assert int(ours.num_batches_tracked) == 1
    ours.eval()
    module.eval()
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    close(ours(x), module(torch.tensor(x)), np.float32)
    back = torch.nn.BatchNorm2d(4)
    load_into_torch(ours, back)
    for k, v in module.state_dict().items():
        assert torch.equal(back.state_dict()[k], v)


def test_switchable_layer_trains_its_mix(rng):
    layer = L.SwitchableNorm(4, dtype=np.float64)
    x = rng.standard_normal((3, 4, 5, 5)) * 3 + 1
    layer(x)
    layer.backward(rng.standard_normal(x.shape))
    assert set(layer.grads) == {"weight", "bias", "mean_weight", "var_weight"}
    assert layer.grads["mean_weight"].shape == (3,)
    # running statistics moved toward the batch's
    assert not np.allclose(layer.running_mean, 0)
    layer.eval()
    y = layer(x)
    assert y.shape == x.shape and np.isfinite(y).all()


def test_layer_errors():
    with pytest.raises(RuntimeError, match="forward"):
        L.LayerNorm(3).backward(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="num_features"):
        L.BatchNorm(0)
    with pytest.raises(ValueError, match="num_groups"):
        L.GroupNorm(4, 6)
    with pytest.raises(TypeError, match="dtype"):
        L.LayerNorm(3, dtype=np.int32)
    with pytest.raises(KeyError, match="missing"):
        L.BatchNorm(3).load_state_dict({"weight": np.ones(3)})
    with pytest.raises(ValueError, match="shape"):
        L.LayerNorm(3).load_state_dict({"weight": np.ones(4), "bias": np.zeros(3)})
    with pytest.raises(TypeError, match="dtype"):
        L.BatchNorm(3)(np.ones((4, 3)))  # float64 input, float32 layer

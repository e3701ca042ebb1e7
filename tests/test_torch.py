"""fastnorm.torch against torch itself: gradcheck of every operator, outputs
and gradients against torch.nn.functional in four dtypes, the modules against
torch's over training steps of two small models, patch/unpatch, state_dict,
torch.compile and torch.export, and bad input."""
import copy
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as TF

import fastnorm.torch as ft

DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]


def _tol(dtype):
    """Tolerances that scale with the dtype: a few units in the last place."""
    return {torch.float64: dict(rtol=1e-10, atol=1e-10),
            torch.float32: dict(rtol=2e-5, atol=2e-5),
            torch.bfloat16: dict(rtol=3e-2, atol=3e-2),
            torch.float16: dict(rtol=4e-3, atol=4e-3)}[dtype]


def _randn(*shape, dtype=torch.float64, grad=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype).requires_grad_(grad)


# Each case: (name, fastnorm call, torch call, input shape, parameter shapes).
# A call takes (x, *params) and returns the output.
def _rm(C):
    return torch.linspace(-1, 1, C, dtype=torch.float64)


def _rv(C):
    return torch.linspace(0.5, 2, C, dtype=torch.float64)


CASES = {
    "layer_norm": (lambda f, x, w, b: f.layer_norm(x, x.shape[-2:], w, b),
                   (3, 4, 5), [(4, 5), (4, 5)]),
    "layer_norm_no_affine": (lambda f, x: f.layer_norm(x, (5,)), (6, 5), []),
    "rms_norm": (lambda f, x, w: f.rms_norm(x, (5,), w, 1e-6), (3, 4, 5), [(5,)]),
    "batch_norm_train": (lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
                         (4, 3, 5, 2), [(3,), (3,)]),
    "batch_norm_train_2d": (lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
                            (6, 3), [(3,), (3,)]),
    "batch_norm_eval": (lambda f, x, w, b: f.batch_norm(x, _rm(3).to(x.dtype),
                                                        _rv(3).to(x.dtype), w, b, False),
                        (4, 3, 5), [(3,), (3,)]),
    "group_norm": (lambda f, x, w, b: f.group_norm(x, 2, w, b), (3, 4, 3, 2), [(4,), (4,)]),
    "group_norm_no_affine": (lambda f, x: f.group_norm(x, 1, eps=1e-3), (2, 6, 4), []),
    "instance_norm": (lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b),
                      (2, 3, 4, 5), [(3,), (3,)]),
    "instance_norm_eval": (lambda f, x: f.instance_norm(x, _rm(3).to(x.dtype),
                                                        _rv(3).to(x.dtype),
                                                        use_input_stats=False),
                           (2, 3, 4), []),
    "local_response_norm": (lambda f, x: f.local_response_norm(x, 3, 1e-2, 0.75, 2.0),
                            (2, 5, 4, 3), []),
    "normalize": (lambda f, x: f.normalize(x, 2.0, 1), (4, 6, 3), []),
    "normalize_l1_last": (lambda f, x: f.normalize(x, 1.0, -1), (4, 6), []),
}


def _inputs(shape, param_shapes, dtype=torch.float64, channels_last=False):
    x = _randn(*shape, dtype=dtype, seed=1)
    if channels_last:
        x = x.detach().contiguous(memory_format=torch.channels_last).requires_grad_()
    params = [_randn(*s, dtype=dtype, seed=2 + i) for i, s in enumerate(param_shapes)]
    return [x, *params]


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(name):
    call, shape, param_shapes = CASES[name]
    args = _inputs(shape, param_shapes)
    assert torch.autograd.gradcheck(lambda *a: call(ft, *a), args)


@pytest.mark.parametrize("name", [n for n in CASES if len(CASES[n][1]) == 4])
def test_gradcheck_channels_last(name):
    call, shape, param_shapes = CASES[name]
    args = _inputs(shape, param_shapes, channels_last=True)
    assert torch.autograd.gradcheck(lambda *a: call(ft, *a), args)


def test_gradcheck_switchable_norm():
    x, w, b = _inputs((3, 4, 2, 3), [(4,), (4,)])
    mw, vw = _randn(3, seed=7), _randn(3, seed=8)
    rm, rv = torch.zeros(4, dtype=torch.float64), torch.ones(4, dtype=torch.float64)
    for training in (True, False):
        assert torch.autograd.gradcheck(
            lambda *a: ft.switchable_norm(*a, rm.clone(), rv.clone(), training), (x, w, b, mw, vw))


@pytest.mark.parametrize("through_dispatcher", [False, True])
def test_double_backward_is_a_clear_error(through_dispatcher):
    x = _randn(4, 8)
    if through_dispatcher:
        y = torch.ops.fastnorm.row_norm(x, [8], None, None, 1e-5, False)[0]
    else:
        y = ft.layer_norm(x, (8,))
    g, = torch.autograd.grad(y.pow(2).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="no autograd formula|differentiate twice"):
        g.sum().backward()


def test_eager_calls_and_dispatcher_calls_agree():
    """The eager shortcut runs what torch.ops.fastnorm.* runs."""
    x, w, b = _inputs((3, 8), [(8,), (8,)])
    y = ft.layer_norm(x, (8,), w, b)
    y_op = torch.ops.fastnorm.row_norm(x, [8], w, b, 1e-5, False)[0]
    assert torch.equal(y, y_op)
    grads = torch.autograd.grad(y.sum(), (x, w, b))
    grads_op = torch.autograd.grad(y_op.sum(), (x, w, b))
    for g, g_op in zip(grads, grads_op):
        assert torch.equal(g, g_op)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", CASES)
def test_output_and_gradients_match_torch(name, dtype):
    call, shape, param_shapes = CASES[name]
    ours = _inputs(shape, param_shapes, dtype)
    y = call(ft, *ours)
    grad = _randn(*y.shape, dtype=dtype, grad=False, seed=9)
    try:
        theirs = [a.detach().clone().requires_grad_() for a in ours]
        y_ref = call(TF, *theirs)
        y_ref.backward(grad)
    except NotImplementedError:  # torch has no 16-bit CPU kernel (LRN): its float32, rounded
        theirs = [a.detach().float().requires_grad_() for a in ours]
        y_ref = call(TF, *theirs)
        y_ref.backward(grad.float())
    assert y.dtype == dtype
    torch.testing.assert_close(y, y_ref.to(dtype), **_tol(dtype))
    y.backward(grad)
    for a, a_ref in zip(ours, theirs):
        assert a.grad.dtype == dtype
        torch.testing.assert_close(a.grad, a_ref.grad.to(dtype), **_tol(dtype))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_16_bit_input_with_float32_parameters_as_under_autocast(dtype):
    x = _randn(4, 3, 8, dtype=dtype, seed=3)
    w, b = _randn(8, dtype=torch.float32, seed=4), _randn(8, dtype=torch.float32, seed=5)
    x_ref, w_ref, b_ref = (a.detach().clone().requires_grad_() for a in (x, w, b))
    y, y_ref = ft.layer_norm(x, (8,), w, b), TF.layer_norm(x_ref, (8,), w_ref, b_ref)
    assert y.dtype == dtype
    torch.testing.assert_close(y, y_ref, **_tol(dtype))
    y.sum().backward()
    y_ref.sum().backward()
    assert w.grad.dtype == torch.float32
    torch.testing.assert_close(x.grad, x_ref.grad, **_tol(dtype))
    torch.testing.assert_close(w.grad, w_ref.grad, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("momentum", [0.1, 0.0, 1.0])
@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_norm_updates_running_statistics_as_torch(momentum, channels_last):
    x = _randn(4, 3, 5, 2, dtype=torch.float32, grad=False)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ours = [_rm(3).float(), _rv(3).float()]
    theirs = [t.clone() for t in ours]
    y = ft.batch_norm(x, *ours, training=True, momentum=momentum)
    TF.batch_norm(x, *theirs, training=True, momentum=momentum)
    torch.testing.assert_close(ours, theirs)
    assert y.is_contiguous(memory_format=torch.channels_last) == channels_last


def test_instance_norm_updates_running_statistics_as_torch():
    x = _randn(4, 3, 6, dtype=torch.float32, grad=False)
    ours = [_rm(3).float(), _rv(3).float()]
    theirs = [t.clone() for t in ours]
    ft.instance_norm(x, *ours, use_input_stats=True, momentum=0.3)
    TF.instance_norm(x, *theirs, use_input_stats=True, momentum=0.3)
    torch.testing.assert_close(ours, theirs)


def test_bfloat16_running_statistics_are_written_back():
    x = _randn(8, 3, dtype=torch.bfloat16, grad=False)
    ours = [torch.zeros(3, dtype=torch.bfloat16), torch.ones(3, dtype=torch.bfloat16)]
    theirs = [t.clone() for t in ours]
    ft.batch_norm(x, *ours, training=True)
    TF.batch_norm(x, *theirs, training=True)
    torch.testing.assert_close(ours, theirs)


def test_inputs_are_not_modified_and_odd_strides_work():
    base = _randn(6, 8, 5, dtype=torch.float32, grad=False)
    x = base.transpose(0, 2)  # (5, 8, 6), neither contiguous nor channels_last
    before = x.clone()
    torch.testing.assert_close(ft.layer_norm(x, (6,)), TF.layer_norm(x, (6,)))
    torch.testing.assert_close(ft.batch_norm(x, None, None, training=True),
                               TF.batch_norm(x, None, None, training=True))
    assert torch.equal(x, before)


# ---------------------------------------------------------------- modules ---

MODULES = [
    (ft.LayerNorm, nn.LayerNorm, (8,), (4, 5, 8)),
    (ft.RMSNorm, nn.RMSNorm, (8,), (4, 8)),
    (ft.BatchNorm1d, nn.BatchNorm1d, (3,), (4, 3, 5)),
    (ft.BatchNorm2d, nn.BatchNorm2d, (3,), (4, 3, 5, 2)),
    (ft.BatchNorm3d, nn.BatchNorm3d, (3,), (2, 3, 2, 3, 2)),
    (ft.GroupNorm, nn.GroupNorm, (2, 4), (3, 4, 5)),
    (ft.InstanceNorm1d, nn.InstanceNorm1d, (3,), (2, 3, 6)),
    (ft.InstanceNorm2d, nn.InstanceNorm2d, (3,), (3, 4, 5)),  # unbatched input
    (ft.InstanceNorm3d, nn.InstanceNorm3d, (3,), (2, 3, 2, 3, 2)),
    (ft.LocalResponseNorm, nn.LocalResponseNorm, (2,), (2, 5, 3)),
]

MODULE_KWARGS = [{}, {"momentum": None}, {"track_running_stats": False}, {"affine": False},
                 {"affine": True, "track_running_stats": True}]


def _kwargs_for(torch_class, kwargs):
    import inspect
    names = inspect.signature(torch_class).parameters
    return {k: v for k, v in kwargs.items() if k in names}


@pytest.mark.parametrize("kwargs", MODULE_KWARGS, ids=str)
@pytest.mark.parametrize("ours_class, torch_class, args, shape", MODULES,
                         ids=[m[1].__name__ for m in MODULES])
def test_module_matches_torch_over_steps(ours_class, torch_class, args, shape, kwargs):
    kwargs = _kwargs_for(torch_class, kwargs)
    ours, theirs = ours_class(*args, **kwargs), torch_class(*args, **kwargs)
    assert isinstance(ours, torch_class)
    ours.load_state_dict(theirs.state_dict())
    for step in range(3):
        for module in (ours, theirs):
            module.train(step < 2)
        x = _randn(*shape, dtype=torch.float32, seed=step)
        x_ref = x.detach().clone().requires_grad_()
        y, y_ref = ours(x), theirs(x_ref)
        torch.testing.assert_close(y, y_ref, rtol=2e-5, atol=2e-5)
        y.pow(2).sum().backward()
        y_ref.pow(2).sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-4, atol=1e-4)
        for (name, p), (_, p_ref) in zip(ours.named_parameters(), theirs.named_parameters()):
            torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-4, msg=name)
    torch.testing.assert_close(ours.state_dict(), theirs.state_dict(), rtol=1e-5, atol=1e-6)


def test_switchable_norm_modules_match_fastnorm_layers():
    import numpy as np

    from fastnorm.layers import SwitchableNorm
    ours, reference = ft.SwitchableNorm2d(3), SwitchableNorm(3)
    assert list(ours.state_dict()) == list(reference.state_dict())
    for step in range(3):
        ours.train(step < 2)
        reference.train(step < 2)
        x = _randn(2, 3, 4, 5, dtype=torch.float32, seed=step)
        y = ours(x)
        np.testing.assert_allclose(y.detach().numpy(), reference(x.detach().numpy()),
                                   rtol=1e-5, atol=1e-6)
        grad = _randn(*y.shape, dtype=torch.float32, grad=False, seed=10 + step)
        y.backward(grad)
        dx = reference.backward(grad.numpy())
        np.testing.assert_allclose(x.grad.numpy(), dx, rtol=1e-4, atol=1e-5)
        for name, p in ours.named_parameters():
            np.testing.assert_allclose(p.grad.numpy(), reference.grads[name], rtol=1e-4,
                                       atol=1e-5)
            p.grad = None
    for name, value in ours.state_dict().items():
        np.testing.assert_allclose(value.numpy(), reference.state_dict()[name], rtol=1e-5)
    with pytest.raises(ValueError, match="expected 4D input"):
        ours(torch.zeros(2, 3, 4))
    assert ft.SwitchableNorm1d(3, using_bn=False).running_mean is None


# ------------------------------------------------------ models and patch ---

class TransformerBlock(nn.Module):
    def __init__(self, d=32, heads=4):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.RMSNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.head = nn.Linear(d, 1)

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.mlp(self.norm2(x))
        return self.head(x).mean(dim=(1, 2))


class ResidualCNN(nn.Module):
    def __init__(self, c=8):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.bn1, self.gn = nn.BatchNorm2d(c), nn.GroupNorm(2, c)
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(c)
        self.head = nn.Linear(c, 1)

    def forward(self, x):
        h = torch.relu(self.bn1(self.stem(x)))
        h = h + self.gn(self.conv(h))
        return self.head(torch.relu(self.bn2(h)).mean(dim=(2, 3))).squeeze(1)


def _model_and_data(kind, channels_last=False):
    torch.manual_seed(0)
    if kind == "transformer":
        model, x = TransformerBlock(), torch.randn(8, 6, 32)
    else:
        model, x = ResidualCNN(), torch.randn(8, 3, 8, 8)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
    return model, x, torch.randn(8)


def _train(model, x, target, steps, autocast_dtype=None):
    """Parameter values after each of `steps` SGD-with-momentum steps."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16,
                            enabled=autocast_dtype is not None):
            loss = (model(x).float() - target).pow(2).mean()
        loss.backward()
        optimizer.step()
        trajectory.append([p.detach().clone() for p in model.parameters()])
    return trajectory


@pytest.mark.parametrize("kind, channels_last", [("transformer", False), ("cnn", False),
                                                 ("cnn", True)])
def test_patched_model_trains_as_torch(kind, channels_last):
    model, x, target = _model_and_data(kind, channels_last)
    patched = copy.deepcopy(model)
    replaced = ft.patch(patched)
    assert replaced == (["norm1", "norm2"] if kind == "transformer" else ["bn1", "gn", "bn2"])
    expected, got = _train(model, x, target, 10), _train(patched, x, target, 10)
    for step, (ps, ps_ref) in enumerate(zip(got, expected)):
        for p, p_ref in zip(ps, ps_ref):
            torch.testing.assert_close(p, p_ref, rtol=1e-4, atol=1e-5, msg=f"step {step}")
    torch.testing.assert_close(patched.state_dict(), model.state_dict(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["transformer", "cnn"])
def test_patched_model_trains_under_bfloat16_autocast(kind):
    model, x, target = _model_and_data(kind)
    patched = copy.deepcopy(model)
    ft.patch(patched)
    expected = _train(model, x, target, 3, torch.bfloat16)
    got = _train(patched, x, target, 3, torch.bfloat16)
    for ps, ps_ref in zip(got, expected):
        for p, p_ref in zip(ps, ps_ref):  # bfloat16 activations: a few ulps, amplified by lr
            torch.testing.assert_close(p, p_ref, rtol=5e-2, atol=5e-3)


def test_patch_swaps_classes_in_place_and_unpatch_restores():
    model, _, _ = _model_and_data("cnn")
    tensors = {k: v.data_ptr() for k, v in model.state_dict().items()}

    class MyNorm(nn.BatchNorm2d):
        pass
    model.extra = MyNorm(8)
    assert ft.patch(model) == ["bn1", "gn", "bn2"]
    assert type(model.bn1) is ft.BatchNorm2d and type(model.gn) is ft.GroupNorm
    assert type(model.extra) is MyNorm  # a user's subclass is left alone
    assert {k: v.data_ptr() for k, v in model.state_dict().items()
            if not k.startswith("extra")} == tensors  # nothing copied
    assert ft.patch(model) == []  # idempotent
    assert ft.unpatch(model) == ["bn1", "gn", "bn2"]
    assert type(model.bn1) is nn.BatchNorm2d and type(model.gn) is nn.GroupNorm
    layer = nn.LayerNorm(4)
    assert ft.patch(layer) == [""] and type(layer) is ft.LayerNorm
    with pytest.raises(TypeError, match="patch takes a torch.nn.Module"):
        ft.patch([layer])


def test_state_dict_round_trips_both_ways():
    for ours, theirs in [(ft.BatchNorm2d(4), nn.BatchNorm2d(4)),
                         (ft.LayerNorm((2, 3)), nn.LayerNorm((2, 3))),
                         (ft.GroupNorm(2, 4), nn.GroupNorm(2, 4))]:
        with torch.no_grad():
            for i, t in enumerate(theirs.state_dict().values()):
                t.copy_(torch.arange(t.numel()).reshape(t.shape) + i)
        ours.load_state_dict(theirs.state_dict())
        fresh = type(theirs)(*([4] if isinstance(theirs, nn.BatchNorm2d) else
                               [(2, 3)] if isinstance(theirs, nn.LayerNorm) else [2, 4]))
        fresh.load_state_dict(ours.state_dict())
        torch.testing.assert_close(fresh.state_dict(), theirs.state_dict())


@pytest.mark.parametrize("kind", ["transformer", "cnn"])
def test_compiled_patched_model_has_no_graph_break_and_matches_eager(kind):
    model, x, target = _model_and_data(kind, channels_last=kind == "cnn")
    ft.patch(model)
    eager = copy.deepcopy(model)
    compiled = torch.compile(model, fullgraph=True)  # fullgraph: a graph break is an error
    for step in range(2):
        y, y_ref = compiled(x), eager(x)
        torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
        (y - target).pow(2).mean().backward()
        (y_ref - target).pow(2).mean().backward()
        for (n, p), (_, p_ref) in zip(model.named_parameters(), eager.named_parameters()):
            torch.testing.assert_close(p.grad, p_ref.grad, rtol=1e-4, atol=1e-5, msg=n)
    # the running statistics were updated in the compiled graph too
    torch.testing.assert_close(model.state_dict(), eager.state_dict(), rtol=1e-5, atol=1e-6)


def test_export_of_a_patched_model():
    model, x, _ = _model_and_data("cnn")
    ft.patch(model)
    model.eval()
    program = torch.export.export(model, (x,))
    ops = {str(n.target) for n in program.graph.nodes if n.op == "call_function"}
    assert {"fastnorm.batch_norm.default", "fastnorm.group_norm.default"} <= ops
    torch.testing.assert_close(program.module()(x), model(x))


@pytest.mark.parametrize("op", ["fastnorm::row_norm", "fastnorm::batch_norm",
                                "fastnorm::group_norm", "fastnorm::instance_norm",
                                "fastnorm::local_response_norm", "fastnorm::normalize",
                                "fastnorm::switchable_norm"])
def test_operators_pass_torch_opcheck(op):
    """torch.library.opcheck: schema, fake implementation and autograd
    registration agree with what the operator really does."""
    x = _randn(3, 4, 5, 2, dtype=torch.float32, seed=1)
    w, b = _randn(4, dtype=torch.float32, seed=2), _randn(4, dtype=torch.float32, seed=3)
    args = {
        "fastnorm::row_norm": (x, [5, 2], None, None, 1e-5, False),
        "fastnorm::batch_norm": (x, torch.zeros(4), torch.ones(4), w, b, True, 0.1, 1e-5),
        "fastnorm::group_norm": (x, 2, w, b, 1e-5),
        "fastnorm::instance_norm": (x, None, None, w, b, True, 0.1, 1e-5),
        "fastnorm::local_response_norm": (x, 3, 1e-4, 0.75, 1.0),
        "fastnorm::normalize": (x, 2.0, [1], 1e-12),
        "fastnorm::switchable_norm": (x, w, b, _randn(3, dtype=torch.float32),
                                      _randn(3, dtype=torch.float32), torch.zeros(4),
                                      torch.ones(4), True, 0.1, 1e-5, True),
    }[op]
    namespace, name = op.split("::")
    torch.library.opcheck(getattr(getattr(torch.ops, namespace), name).default, args)


# -------------------------------------------------------------- bad input ---

def test_bad_input_is_a_torch_style_error_naming_the_argument():
    x = torch.randn(4, 8)
    with pytest.raises(TypeError, match="input must be a floating-point tensor"):
        ft.layer_norm(torch.ones(4, 8, dtype=torch.int64), (8,))
    with pytest.raises(TypeError, match="weight must be a floating-point tensor"):
        ft.layer_norm(x, (8,), torch.ones(8, dtype=torch.int64))
    with pytest.raises(RuntimeError, match="weight is on meta"):
        ft.layer_norm(x, (8,), torch.ones(8, device="meta"))
    with pytest.raises(ValueError, match="normalized_shape"):
        ft.layer_norm(x, (7,))
    with pytest.raises(ValueError, match="weight"):
        ft.group_norm(torch.randn(2, 4, 3), 2, torch.ones(3))
    with pytest.raises(TypeError, match="weight has dtype torch.float64 but input has "
                                        "torch.float32"):
        ft.layer_norm(x, (8,), torch.ones(8, dtype=torch.float64))


def test_import_fastnorm_does_not_import_torch():
    code = ("import sys, fastnorm, fastnorm.functional, fastnorm.layers, "
            "fastnorm.preprocessing, fastnorm.stats; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_parameter_dtypes_follow_torchs_rule():
    x = torch.randn(4, 8, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="bias has dtype torch.float64"):
        ft.layer_norm(x, (8,), torch.ones(8), torch.zeros(8, dtype=torch.float64))
    with pytest.raises(TypeError, match="running_mean has dtype torch.float16"):
        ft.batch_norm(x, torch.zeros(8, dtype=torch.float16), torch.ones(8), training=True)
    # rms_norm takes a weight of any float dtype, as torch's
    w = torch.rand(8, dtype=torch.float64)
    torch.testing.assert_close(ft.rms_norm(x, (8,), w), TF.rms_norm(x, (8,), w),
                               **_tol(torch.bfloat16))


def test_fx_tracing_and_dispatch_modes_go_through_the_operator():
    from torch.utils.flop_counter import FlopCounterMode
    module = ft.LayerNorm(8)
    graph = torch.fx.symbolic_trace(module)
    assert torch.ops.fastnorm.row_norm.default in [n.target for n in graph.graph.nodes]
    x = torch.randn(4, 8)
    torch.testing.assert_close(graph(x), module(x))
    with FlopCounterMode(display=False):  # a dispatch mode: sees the operator
        torch.testing.assert_close(ft.layer_norm(x, (8,)), TF.layer_norm(x, (8,)))


@pytest.mark.parametrize("channels_last", [False, True])
def test_cpu_tensors_reach_the_kernels_without_copies(monkeypatch, channels_last):
    import numpy as np

    import fastnorm.functional as F
    seen = {}
    real = F.group_norm

    def spy(x, *args, **kwargs):
        seen["x"], seen["layout"] = x, kwargs["layout"]
        return real(x, *args, **kwargs)
    monkeypatch.setattr(F, "group_norm", spy)
    x = torch.randn(2, 4, 3, 5)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = ft.group_norm(x, 2)
    assert seen["layout"] == ("NHWC" if channels_last else "NCHW")
    assert np.shares_memory(seen["x"], x.numpy())
    assert y.is_contiguous(memory_format=torch.channels_last if channels_last
                           else torch.contiguous_format)


@pytest.mark.parametrize("call", [
    lambda f, x: f.layer_norm(x, (6,), eps=-1e-3),
    lambda f, x: f.rms_norm(x, (6,), eps=0.0),
    lambda f, x: f.group_norm(x, 2, eps=-1e-4),
    lambda f, x: f.batch_norm(x, torch.zeros(4, dtype=x.dtype), torch.ones(4, dtype=x.dtype),
                              training=True, momentum=1.5),
    lambda f, x: f.instance_norm(x, torch.zeros(4, dtype=x.dtype),
                                 torch.ones(4, dtype=x.dtype), momentum=-0.5),
    lambda f, x: f.normalize(x, p=0.0),
    lambda f, x: f.normalize(x, p=-1.0, dim=(1, 2)),
    lambda f, x: f.normalize(x, p="fro", dim=None),
], ids=["ln-neg-eps", "rms-eps0", "gn-neg-eps", "bn-momentum-1.5", "in-momentum-neg",
        "normalize-p0", "normalize-p-1-dims", "normalize-fro-all"])
def test_unusual_inputs_torch_takes_give_torchs_results(call):
    x = _randn(3, 4, 6, seed=4)
    x_ref = x.detach().clone().requires_grad_()
    y, y_ref = call(ft, x), call(TF, x_ref)
    torch.testing.assert_close(y, y_ref, equal_nan=True)
    if torch.isfinite(y_ref).all():
        y.sum().backward()
        y_ref.sum().backward()
        torch.testing.assert_close(x.grad, x_ref.grad, equal_nan=True)


def test_float_arguments_are_checked():
    with pytest.raises(TypeError, match="momentum must be a float, got None"):
        ft.batch_norm(torch.randn(4, 3), None, None, training=True, momentum=None)
    with pytest.raises(TypeError, match="eps must be a float"):
        ft.layer_norm(torch.randn(4, 3), (3,), eps="small")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_16_bit_cpu_tensors_reach_the_16_bit_kernels_without_copies(monkeypatch, dtype):
    import numpy as np

    import fastnorm.functional as F
    seen = {}
    real = F._row_norm

    def spy(x, *args, **kwargs):
        seen["x"], seen["bfloat16"] = x, kwargs["bfloat16"]
        return real(x, *args, **kwargs)
    monkeypatch.setattr(F, "_row_norm", spy)
    # (over two dimensions: the general path; one is the pointer path, with no copy by
    # construction: test_16_bit_pointer_paths_give_the_general_paths_bits)
    x = torch.randn(2, 4, 16).to(dtype)
    y = ft.layer_norm(x, (4, 16), torch.ones(4, 16), torch.zeros(4, 16))
    assert seen["bfloat16"] == (dtype == torch.bfloat16)
    assert seen["x"].dtype == (np.uint16 if dtype == torch.bfloat16 else np.float16)
    assert seen["x"].__array_interface__["data"][0] == x.data_ptr()  # x itself, no copy
    torch.testing.assert_close(y, TF.layer_norm(x, (4, 16)), **_tol(dtype))


@pytest.mark.parametrize("param_dtype", ["float32", "input's"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_16_bit_pointer_paths_give_the_general_paths_bits(monkeypatch, dtype, param_dtype):
    x = (torch.randn(5, 3, 33) * 2 + 1).to(dtype)
    p_dtype = torch.float32 if param_dtype == "float32" else dtype
    w, b = torch.randn(33).to(p_dtype), torch.randn(33).to(p_dtype)
    dy = torch.randn(5, 3, 33).to(dtype)
    assert ft._fast_row_norm(x, [33], w, b, 1e-5, False) is not None
    assert ft._row_norm_inference(x, (33,), w, b, 1e-5, False, None) is not None
    assert ft._fast_row_norm(x, [33], w.double(), b, 1e-5, False) is None

    def run():
        results = []
        for rms in (False, True):
            leaves = [t.clone().requires_grad_() for t in ((x, w) if rms else (x, w, b))]
            fn = (lambda x, w: ft.rms_norm(x, (33,), w)) if rms else \
                (lambda x, w, b: ft.layer_norm(x, (33,), w, b))
            y = fn(*leaves)
            results += [y, *torch.autograd.grad(y, leaves, dy)]
            with torch.no_grad():
                results.append(fn(*leaves))
        return results
    fast = run()
    for name in ("_fast_row_norm", "_fast_row_norm_backward", "_row_norm_tensor_forward"):
        monkeypatch.setattr(ft, name, lambda *a, **k: None)
    general = run()
    for a, b in zip(fast, general):
        assert a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_the_small_call_path_gives_the_general_paths_bits(dtype):
    import numpy as np

    import fastnorm.functional as F
    x, w, b = (torch.randn(*s, dtype=dtype) for s in ((5, 3, 33), (33,), (33,)))
    for rms in (False, True):
        fast = ft._fast_row_norm(x, [33], w, None if rms else b, 1e-5, rms)
        general = F._row_norm(x.numpy(), (33,), w.numpy(), None if rms else b.numpy(), 1e-5,
                              rms, return_saved=True)
        np.testing.assert_array_equal(fast[0].numpy(), general[0])
        np.testing.assert_array_equal(fast[1].numpy(), general[1].mean)
        np.testing.assert_array_equal(fast[2].numpy(), general[1].rstd)
    assert ft._fast_row_norm(x.transpose(0, 1), [33], w, b, 1e-5, False) is None
    assert ft._fast_row_norm(x, [33], w.to(torch.float16), b, 1e-5, False) is None


def _vm_flags(address):
    """The VmFlags of this process's mapping that holds address (Linux), or None."""
    try:
        lines = open("/proc/self/smaps").read().splitlines()
    except OSError:
        return None
    inside = False
    for line in lines:
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(v, 16) for v in head.split("-"))
            inside = lo <= address < hi
        elif inside and line.startswith("VmFlags:"):
            return line.split()[1:]
    return None


def test_large_new_outputs_ask_for_huge_pages():
    # torch's CPU allocator does not ask for transparent huge pages; first
    # writes into 4 KiB pages ran 4x slower, so large outputs ask (as NumPy does)
    if sys.platform != "linux":
        pytest.skip("madvise(MADV_HUGEPAGE) and /proc/self/smaps are Linux's")
    x = torch.randn(1200, 1024)  # 4.7 MiB
    with torch.no_grad():
        y = ft.layer_norm(x, (1024,))
    torch.testing.assert_close(y, TF.layer_norm(x, (1024,)))
    xg = x.clone().requires_grad_()
    y = ft.rms_norm(xg, (1024,))
    (dx,) = torch.autograd.grad(y, xg, torch.ones_like(y))
    flags = [_vm_flags(t.data_ptr() + t.numel() * 2) for t in (ft.layer_norm(x, (1024,)), y, dx)]
    assert all(f is not None and "hg" in f for f in flags)  # (hg: MADV_HUGEPAGE)
    # the advice changes nothing in the data, at any address or size
    t = torch.arange(3_000_000, dtype=torch.float32)
    from fastnorm import _cpu
    for start, nbytes in [(4, 11_999_000), (0, 12_000_000), (4096, 5_000_001), (0, 100)]:
        _cpu.advise_huge_pages(t.data_ptr() + start, nbytes)
    assert torch.equal(t, torch.arange(3_000_000, dtype=torch.float32))


def test_inference_calls_take_the_lean_path_with_the_general_paths_bits():
    """Calls autograd need not record (no_grad, or nothing requiring grad)
    skip saving statistics; they give the bits of the recorded call, and
    anything traced, sub-classed or unusual still goes the general way."""
    from torch.utils._python_dispatch import TorchDispatchMode

    x = torch.randn(5, 3, 33)
    w, b = torch.nn.Parameter(torch.randn(33)), torch.nn.Parameter(torch.randn(33))
    recorded = ft.layer_norm(x, (33,), w, b)  # w, b require grad: the general path
    assert recorded.grad_fn is not None
    with torch.no_grad():
        lean = ft.layer_norm(x, (33,), w, b)
    assert lean.grad_fn is None
    torch.testing.assert_close(lean, recorded, rtol=0, atol=0)
    plain = ft.layer_norm(x, (33,), w.detach(), b.detach())  # grad on, nothing needs it
    torch.testing.assert_close(plain, recorded, rtol=0, atol=0)

    def lean_call(*args):
        return ft._row_norm_inference(*args, None)
    assert lean_call(x, (33,), w.detach(), None, 1e-5, False) is not None
    assert lean_call(x, 33, None, None, 1e-5, True) is not None
    assert lean_call(x, (3, 33), None, None, 1e-5, False) is None      # over two dims
    assert lean_call(x.transpose(0, 1), (33,), None, None, 1e-5, False) is None
    assert lean_call(x.half(), (33,), None, None, 1e-5, False) is not None  # 16-bit too
    assert lean_call(x.half(), (33,), w.detach().double(), None, 1e-5, False) is None
    assert lean_call(x, (33,), w, None, 1e-5, False) is None            # w needs grad
    assert lean_call(x, (33,), w.detach()[::1].double(), None, 1e-5, False) is None

    class Seen(TorchDispatchMode):
        ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            Seen.ops.append(str(func))
            return func(*args, **(kwargs or {}))

    with torch.no_grad(), Seen():
        torch.testing.assert_close(ft.layer_norm(x, (33,)), TF.layer_norm(x, (33,)))
    assert "fastnorm.row_norm.default" in Seen.ops


def test_functorch_transforms_go_through_the_operator():
    """Under vmap the tensors are functorch wrappers without storage: the
    call must go through the dispatcher (torch's batching fallback), never
    to the kernels' pointers."""
    x = torch.randn(3, 4, 8)
    batched = torch.func.vmap(lambda t: ft.layer_norm(t, (8,)))(x)
    torch.testing.assert_close(batched, TF.layer_norm(x, (8,)))

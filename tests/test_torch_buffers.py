"""fastnorm.torch's LayerNorm and RMSNorm modules reuse the memory of their
last output (and input gradient) once nothing refers to it any more, which
the storage's use count tells: tensors autograd saved, views, .grad, NumPy
arrays of it all hold the storage. Anything still held is never written."""
import numpy as np
import pytest
import torch

import fastnorm.torch as ft

N = 512  # rows: 512 x 1024 float64 is 4 MB, above fastnorm.torch.REUSE_MIN_BYTES
MODULES = {"LayerNorm": (ft.LayerNorm, torch.nn.LayerNorm),
           "RMSNorm": (ft.RMSNorm, torch.nn.RMSNorm)}


def _pair(name):
    ours_cls, theirs_cls = MODULES[name]
    ours, theirs = ours_cls(1024).double(), theirs_cls(1024).double()
    with torch.no_grad():
        ours.weight.normal_()
        if getattr(ours, "bias", None) is not None:
            ours.bias.normal_()
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


def _x(requires_grad=False):
    return torch.randn(N, 1024, dtype=torch.float64, requires_grad=requires_grad)


@pytest.mark.parametrize("name", MODULES)
def test_an_unheld_output_is_reused(name):
    m, ref = _pair(name)
    assert N * 1024 * 8 >= ft.REUSE_MIN_BYTES
    ptrs = []
    for grad in (False, True, True):
        with torch.set_grad_enabled(grad):
            x = _x()
            y = m(x)
            torch.testing.assert_close(y, ref(x), rtol=0, atol=1e-12)
            ptrs.append(y.data_ptr())
            del y
    assert len(set(ptrs)) == 1


@pytest.mark.parametrize("name", MODULES)
def test_a_held_output_is_never_overwritten(name):
    m, _ = _pair(name)
    kept = {"var": m(_x()), "list": [m(_x())], "view": m(_x())[3:],
            "numpy": m(_x()).detach().numpy(), "detached": m(_x()).detach()}
    copies = {k: (v[0] if k == "list" else v).clone() if k != "numpy" else v.copy()
              for k, v in kept.items()}
    for _ in range(3):
        y = m(_x())
        del y
    for k, v in kept.items():
        v = v[0] if k == "list" else v
        if k == "numpy":
            np.testing.assert_array_equal(v, copies[k])
        else:
            torch.testing.assert_close(v, copies[k], rtol=0, atol=0)


@pytest.mark.parametrize("name", MODULES)
def test_outputs_saved_by_autograd_are_never_overwritten(name):
    """Several forwards before any backward: each graph's saved output (the
    Linear saves its input) stays that step's, so the gradients are torch's."""
    m, ref = _pair(name)
    lin = torch.nn.Linear(1024, 3).double()
    xs = [_x(requires_grad=True) for _ in range(3)]
    losses = [lin(m(x)).sin().sum() for x in xs]
    for x, loss in zip(xs, losses):
        got = torch.autograd.grad(loss, [x, lin.weight])
        want = torch.autograd.grad(lin(ref(x)).sin().sum(), [x, lin.weight])
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("name", MODULES)
def test_a_training_loop_reuses_output_and_input_gradient(name):
    """x -> Linear -> norm -> Linear: the norm's output and its input gradient
    live for one step only; from the second step on, the same memory."""
    m, ref = _pair(name)
    torch.manual_seed(0)
    first, last = torch.nn.Linear(64, 1024).double(), torch.nn.Linear(1024, 3).double()
    out_ptrs, grad_ptrs = [], []
    m.register_forward_hook(lambda mod, inp, out: out_ptrs.append(out.data_ptr()))
    for step in range(4):
        x = torch.randn(N, 64, dtype=torch.float64)
        h = first(x)
        h.register_hook(lambda g: grad_ptrs.append(g.data_ptr()))
        loss = last(m(h)).sin().sum()
        grads = torch.autograd.grad(loss, [first.weight, m.weight])
        want = torch.autograd.grad(last(ref(first(x))).sin().sum(), [first.weight, ref.weight])
        for a, b in zip(grads, want):
            torch.testing.assert_close(a, b)
        del h, loss
    assert len(set(out_ptrs[1:])) == 1 and len(set(grad_ptrs[1:])) == 1


def test_a_kept_leaf_gradient_is_never_overwritten():
    m, ref = _pair("LayerNorm")
    xs = [_x(requires_grad=True) for _ in range(3)]
    for x in xs:
        m(x).square().sum().backward()  # x.grad: the module's input gradient, kept
    for x in xs:
        want, = torch.autograd.grad(ref(x).square().sum(), [x])
        torch.testing.assert_close(x.grad, want)


def test_small_outputs_and_other_calls_are_not_cached():
    m = ft.LayerNorm(8).double()
    m(torch.randn(4, 8, dtype=torch.float64))
    buffers = ft._MODULE_BUFFERS.get(m)
    assert buffers is None or not buffers.slots
    x = _x()
    ft.layer_norm(x, (1024,))  # a function call: no module, no cache
    y = ft.layer_norm(x, (1024,))
    assert y.data_ptr() not in {h.data_ptr() for b in list(ft._MODULE_BUFFERS.values())
                                for h, _ in b.slots.values()}


def test_threads_sharing_a_module_get_their_own_results():
    """The test and the taking of a free storage are one step: two threads
    running one module never write into one buffer."""
    import threading
    m, ref = _pair("LayerNorm")
    xs = [_x() for _ in range(4)]
    want = [ref(x).detach() for x in xs]
    errors = []

    def work(i):
        for _ in range(10):
            with torch.no_grad():
                y = m(xs[i])
                if not torch.equal(y, m(xs[i])) or not torch.allclose(y, want[i]):
                    errors.append(i)
                del y

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors

"""fastnorm.torch on CUDA tensors (through DLPack to fastnorm's CuPy path)
against torch's CUDA functions. Needs a GPU, CuPy and a CUDA build of torch:
skipped elsewhere (benches/gpu/check.sh runs it on the device)."""
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("no CUDA device for torch", allow_module_level=True)
cupy = pytest.importorskip("cupy")

import torch.nn.functional as TF  # noqa: E402

import fastnorm.torch as ft  # noqa: E402

CASES = {
    "layer_norm": lambda f, x, w, b: f.layer_norm(x, (x.shape[-1],), w, b),
    "rms_norm": lambda f, x, w, b: f.rms_norm(x, (x.shape[-1],), w, 1e-6),
    "batch_norm": lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
    "group_norm": lambda f, x, w, b: f.group_norm(x, 2, w, b),
    "instance_norm": lambda f, x, w, b: f.instance_norm(x, weight=w, bias=b),
}
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float64: dict(rtol=1e-9, atol=1e-9),
       torch.bfloat16: dict(rtol=3e-2, atol=3e-2)}


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("name", CASES)
def test_cuda_tensors_match_torch(name, dtype, channels_last):
    g = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(4, 8, 5, 6, device="cuda", generator=g).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    C = x.shape[-1] if name in ("layer_norm", "rms_norm") else x.shape[1]
    w = torch.randn(C, device="cuda", generator=g).to(dtype)
    b = torch.randn(C, device="cuda", generator=g).to(dtype)
    ours = [t.clone().requires_grad_() for t in (x, w, b)]
    theirs = [t.clone().requires_grad_() for t in (x, w, b)]
    y, y_ref = CASES[name](ft, *ours), CASES[name](TF, *theirs)
    assert y.device == x.device and y.dtype == dtype
    torch.testing.assert_close(y, y_ref, **TOL[dtype])
    dy = torch.randn(y.shape, device="cuda", generator=g).to(dtype)
    y.backward(dy)
    y_ref.backward(dy)
    for a, a_ref in zip(ours, theirs):
        torch.testing.assert_close(a.grad, a_ref.grad, **TOL[dtype])


def test_cuda_tensors_reach_cupy_without_copies(monkeypatch):
    import fastnorm.functional as F
    seen = {}
    real = F.layer_norm

    def spy(x, *args, **kwargs):
        seen["ptr"] = x.data.ptr
        return real(x, *args, **kwargs)
    monkeypatch.setattr(F, "layer_norm", spy)
    x = torch.randn(64, 128, device="cuda")
    ft.layer_norm(x, (128,))
    assert seen["ptr"] == x.data_ptr()


def test_patched_model_trains_on_cuda_as_torch():
    import copy
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8),
                                torch.nn.ReLU(), torch.nn.GroupNorm(2, 8)).cuda()
    patched = copy.deepcopy(model)
    assert ft.patch(patched) == ["1", "3"]
    x = torch.randn(4, 3, 16, 16, device="cuda")
    for m in (model, patched):
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        for _ in range(3):
            opt.zero_grad()
            m(x).pow(2).mean().backward()
            opt.step()
    torch.testing.assert_close(patched.state_dict(), model.state_dict(), rtol=1e-4, atol=1e-5)

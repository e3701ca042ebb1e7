"""16-bit storage row norms (fastnorm._cpu, bfloat16 and float16) against
torch's bf16/fp16 CPU layer_norm and rms_norm, same run, same threads; and
bfloat16 batch_norm / group_norm through fastnorm.torch (the adapter's cost
counts) against torch's, NCHW and channels_last, interleaved round by round.

Minimal bytes at 2 bytes an element: forward reads x and writes y (2
passes), backward reads x and dy and writes dx (3 passes; torch's backward
also gives the weight and bias gradients, as ours does). Weight and bias:
float32 for fastnorm (the 16-bit kernels' contract), 16-bit for torch.
"""
import numpy as np
import pytest
from conftest import (IMAGE_OPS, IMAGE_SHAPE, SIZE, forward, forward_backward,
                      interleaved_against_torch, time_against_torch)

from fastnorm import _cpu

torch = pytest.importorskip("torch")

SHAPE = (8192, 4096) if SIZE == "full" else (512, 1024)
TORCH_DTYPE = {"bfloat16": torch.bfloat16, "float16": torch.float16}


def _cases(storage):
    bf = storage == "bfloat16"
    tdtype = TORCH_DTYPE[storage]
    g = torch.Generator().manual_seed(0)
    n = SHAPE[1]
    tx = torch.randn(SHAPE, generator=g).to(tdtype)
    tdy = torch.randn(SHAPE, generator=g).to(tdtype)
    tw, tb = torch.randn(n, generator=g).to(tdtype), torch.randn(n, generator=g).to(tdtype)

    def np16(t):  # the tensor's memory as fastnorm's 16-bit storage (no copy)
        a = t.view(torch.int16).numpy().view(np.uint16)
        return a if bf else a.view(np.float16)

    x, dy = np16(tx), np16(tdy)
    w, b = tw.float().numpy(), tb.float().numpy()
    _, mean_ln, rstd_ln = _cpu.row_norm_forward(x, w, b, 1e-5, False, bfloat16=bf)
    _, mean_rms, rstd_rms = _cpu.row_norm_forward(x, w, None, 1e-5, True, bfloat16=bf)
    gx = tx.clone().requires_grad_(True)
    gw, gb = tw.clone().requires_grad_(True), tb.clone().requires_grad_(True)
    ty_ln = torch.nn.functional.layer_norm(gx, (n,), gw, gb)
    ty_rms = torch.nn.functional.rms_norm(gx, (n,), gw)
    return x, {
        "layer_norm": (lambda: _cpu.row_norm_forward(x, w, b, 1e-5, False, bfloat16=bf),
                       lambda: torch.nn.functional.layer_norm(tx, (n,), tw, tb), 2),
        "layer_norm.backward": (
            lambda: _cpu.row_norm_backward(dy, x, w, mean_ln, rstd_ln, False, True, True,
                                           bfloat16=bf),
            lambda: torch.autograd.grad(ty_ln, [gx, gw, gb], tdy, retain_graph=True), 3),
        "rms_norm": (lambda: _cpu.row_norm_forward(x, w, None, 1e-5, True, bfloat16=bf),
                     lambda: torch.nn.functional.rms_norm(tx, (n,), tw), 2),
        "rms_norm.backward": (
            lambda: _cpu.row_norm_backward(dy, x, w, mean_rms, rstd_rms, True, True, False,
                                           bfloat16=bf),
            lambda: torch.autograd.grad(ty_rms, [gx, gw], tdy, retain_graph=True), 3),
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("storage", ["bfloat16", "float16"])
@pytest.mark.parametrize("name", ["layer_norm", "layer_norm.backward", "rms_norm",
                                  "rms_norm.backward"])
def test_row_norm_16(benchmark, name, storage, threads):
    x, cases = _cases(storage)
    ours, theirs, passes = cases[name]
    # x is the uint16 storage for bfloat16: report the dtype it holds
    time_against_torch(benchmark, name, ours, theirs, passes, x, threads, dtype=storage)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("direction", ["forward", "forward+backward"])
@pytest.mark.parametrize("layout", ["NCHW", "channels_last"])
@pytest.mark.parametrize("name", IMAGE_OPS)
def test_channel_norm_bf16(benchmark, name, layout, direction, threads):
    """Training-mode batch_norm and group_norm (32 groups) of a bfloat16
    image batch with float32 parameters (as under autocast), fastnorm.torch
    against torch. Minimal bytes: forward 2 passes, forward + backward 5."""
    ft = pytest.importorskip("fastnorm.torch")
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(IMAGE_SHAPE, generator=g) + 3).to(torch.bfloat16)
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(IMAGE_SHAPE[1], generator=g), torch.randn(IMAGE_SHAPE[1], generator=g)
    wrap = forward if direction == "forward" else forward_backward
    ours = wrap(lambda *a: IMAGE_OPS[name](ft, *a), x, w, b)
    theirs = wrap(lambda *a: IMAGE_OPS[name](torch.nn.functional, *a), x, w, b)
    suffix = "" if direction == "forward" else ".fwd+bwd"
    interleaved_against_torch(benchmark, f"torch_op.{name}[{layout}]{suffix}", x,
                              2 if direction == "forward" else 5, ours, theirs, threads,
                              7 if SIZE == "full" else 5)

"""16-bit storage row norms (fastnorm._cpu, bfloat16 and float16) against
torch's bf16/fp16 CPU layer_norm and rms_norm, same run, same threads.

Minimal bytes at 2 bytes an element: forward reads x and writes y (2
passes), backward reads x and dy and writes dx (3 passes; torch's backward
also gives the weight and bias gradients, as ours does). Weight and bias:
float32 for fastnorm (the 16-bit kernels' contract), 16-bit for torch.
"""
import numpy as np
import pytest
from conftest import SIZE, time_against_torch

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

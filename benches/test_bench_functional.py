"""fastnorm.functional vs torch.nn.functional (CPU), same run, same threads.

Forward: one read and one write of the input are the minimal bytes;
backward (input, weight and bias gradients together): read x and dy, write
dx. torch's backward is torch.autograd.grad on a graph built beforehand.

The "[out]" cases write into buffers given with out= (the output, or the
gradients), as a training loop that reuses its memory does: judged by the
read+write ("copy") bandwidth, where the others allocate their results and
are judged by the read+fresh-write one. torch's side allocates in both (its
functions take no out=).
"""
import numpy as np
import pytest
from conftest import SIZE, time_against_torch

import fastnorm
import fastnorm.functional as F
from fastnorm import _benchmarks

torch = pytest.importorskip("torch")  # the test extra pins it; the bench extra does not

SHAPE = (8192, 4096) if SIZE == "full" else (512, 1024)


def _cases(x, dy, w, b):
    n = x.shape[-1]
    out, dx = np.empty_like(x), np.empty_like(x)
    dw, db = np.empty_like(w), np.empty_like(b)
    tx = torch.from_numpy(x).requires_grad_(True)
    tw, tb = torch.from_numpy(w).requires_grad_(True), torch.from_numpy(b).requires_grad_(True)
    tdy = torch.from_numpy(dy)
    ty_ln = torch.nn.functional.layer_norm(tx, (n,), tw, tb)
    ty_rms = torch.nn.functional.rms_norm(tx, (n,), tw)
    _, saved_ln = F.layer_norm(x, n, w, b, return_saved=True)
    _, saved_rms = F.rms_norm(x, n, w, return_saved=True)
    return {
        "layer_norm": (lambda: F.layer_norm(x, n, w, b),
                       lambda: torch.nn.functional.layer_norm(tx, (n,), tw, tb), 2),
        "layer_norm.backward": (
            lambda: F.layer_norm_backward(dy, x, n, w, b, saved=saved_ln),
            lambda: torch.autograd.grad(ty_ln, [tx, tw, tb], tdy, retain_graph=True), 3),
        "rms_norm": (lambda: F.rms_norm(x, n, w),
                     lambda: torch.nn.functional.rms_norm(tx, (n,), tw), 2),
        "rms_norm.backward": (
            lambda: F.rms_norm_backward(dy, x, n, w, saved=saved_rms),
            lambda: torch.autograd.grad(ty_rms, [tx, tw], tdy, retain_graph=True), 3),
        "layer_norm[out]": (lambda: F.layer_norm(x, n, w, b, out=out),
                            lambda: torch.nn.functional.layer_norm(tx, (n,), tw, tb), 2),
        "layer_norm[out].backward": (
            lambda: F.layer_norm_backward(dy, x, n, w, b, saved=saved_ln, out=(dx, dw, db)),
            lambda: torch.autograd.grad(ty_ln, [tx, tw, tb], tdy, retain_graph=True), 3),
        "rms_norm[out]": (lambda: F.rms_norm(x, n, w, out=out),
                          lambda: torch.nn.functional.rms_norm(tx, (n,), tw), 2),
        "rms_norm[out].backward": (
            lambda: F.rms_norm_backward(dy, x, n, w, saved=saved_rms, out=(dx, dw)),
            lambda: torch.autograd.grad(ty_rms, [tx, tw], tdy, retain_graph=True), 3),
    }


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", ["layer_norm", "layer_norm.backward", "rms_norm",
                                  "rms_norm.backward", "layer_norm[out]",
                                  "layer_norm[out].backward", "rms_norm[out]",
                                  "rms_norm[out].backward"])
def test_row_norm(benchmark, name, dtype, threads):
    rng = np.random.default_rng(0)
    x = _benchmarks.make_data(SHAPE, dtype)
    dy = rng.standard_normal(SHAPE).astype(dtype)
    w, b = rng.standard_normal(SHAPE[1]).astype(dtype), rng.standard_normal(SHAPE[1]).astype(dtype)
    ours, theirs, passes = _cases(x, dy, w, b)[name]
    time_against_torch(benchmark, name, ours, theirs, passes, x, threads,
                       stream="copy" if "[out]" in name else "fresh")


# Small tensors: the per-call cost (argument checks, dispatch, allocation)
# is most of the time. Timed interleaved with torch's eager op, round by
# round (medians), as the scalers' [latency] cases: the same shapes at both
# bench sizes.
LATENCY_SHAPES = [(32, 64), (1, 768)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("shape", LATENCY_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_row_norm_latency(benchmark, name, shape, threads):
    rng = np.random.default_rng(0)
    x = _benchmarks.make_data(shape, "float32")
    n = shape[-1]
    w = rng.standard_normal(n).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    tx, tw, tb = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    tf = torch.nn.functional
    ours, theirs = {
        "layer_norm": (lambda: F.layer_norm(x, (n,), w, b),
                       lambda: tf.layer_norm(tx, (n,), tw, tb)),
        "rms_norm": (lambda: F.rms_norm(x, (n,), w), lambda: tf.rms_norm(tx, (n,), tw)),
    }[name]
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad(), fastnorm.config_context(n_threads=threads):
            seconds = _benchmarks.interleaved_medians({"fastnorm": ours, "torch": theirs},
                                                      rounds=31, number=200)
            benchmark.pedantic(ours, rounds=31, iterations=200, warmup_rounds=1)
    finally:
        torch.set_num_threads(previous)
    case = _benchmarks.Case(f"{name}[latency]", None, {}, 2, "copy")
    benchmark.extra_info.update(_benchmarks.result_info(
        case, x, threads, seconds["fastnorm"], {"torch": seconds["torch"]}))


# Channel norms on images: batch_norm (training), group_norm(32) and
# instance_norm, NCHW and channels-last. torch gets the same memory: for NHWC
# a channels_last tensor over the same (N, H, W, C) buffer.
IMAGE_SHAPE = (32, 256, 56, 56) if SIZE == "full" else (4, 64, 28, 28)


def _image_cases(x, dy, w, b, layout):
    C = w.shape[0]
    to_torch = ((lambda a: torch.from_numpy(a)) if layout == "NCHW"
                else (lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)))
    tx = to_torch(x).requires_grad_(True)
    tdy = to_torch(dy)
    tw, tb = torch.from_numpy(w).requires_grad_(True), torch.from_numpy(b).requires_grad_(True)
    rm, rv = np.zeros(C, x.dtype), np.ones(C, x.dtype)
    trm, trv = torch.zeros(C, dtype=tw.dtype), torch.ones(C, dtype=tw.dtype)
    tf = torch.nn.functional
    torch_fwd = {
        "batch_norm": lambda: tf.batch_norm(tx, trm, trv, tw, tb, True),
        "group_norm": lambda: tf.group_norm(tx, 32, tw, tb),
        "instance_norm": lambda: tf.instance_norm(tx, None, None, tw, tb),
    }
    ours_fwd = {
        "batch_norm": lambda **kw: F.batch_norm(x, rm, rv, w, b, True, layout=layout, **kw),
        "group_norm": lambda **kw: F.group_norm(x, 32, w, b, layout=layout, **kw),
        "instance_norm": lambda **kw: F.instance_norm(x, None, None, w, b, layout=layout,
                                                      **kw),
    }
    ours_bwd = {
        "batch_norm": lambda s: F.batch_norm_backward(dy, x, rm, rv, w, b, True,
                                                      layout=layout, saved=s),
        "group_norm": lambda s: F.group_norm_backward(dy, x, 32, w, b, layout=layout,
                                                      saved=s),
        "instance_norm": lambda s: F.instance_norm_backward(dy, x, None, None, w, b,
                                                            layout=layout, saved=s),
    }
    cases = {}
    for op in torch_fwd:
        cases[op] = (ours_fwd[op], torch_fwd[op], 2)
        _, saved = ours_fwd[op](return_saved=True)
        ty = torch_fwd[op]()
        cases[op + ".backward"] = (
            (lambda op=op, saved=saved: ours_bwd[op](saved)),
            (lambda ty=ty: torch.autograd.grad(ty, [tx, tw, tb], tdy, retain_graph=True)), 3)
    return cases


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("name", ["batch_norm", "batch_norm.backward", "group_norm",
                                  "group_norm.backward", "instance_norm",
                                  "instance_norm.backward"])
def test_channel_norm(benchmark, name, layout, dtype, threads):
    rng = np.random.default_rng(0)
    N, C, H, W = IMAGE_SHAPE
    shape = IMAGE_SHAPE if layout == "NCHW" else (N, H, W, C)
    x = _benchmarks.make_data(shape, dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w, b = rng.standard_normal(C).astype(dtype), rng.standard_normal(C).astype(dtype)
    ours, theirs, passes = _image_cases(x, dy, w, b, layout)[name]
    op, _, direction = name.partition(".")
    case_name = f"{op}[{layout}]{'.' + direction if direction else ''}"
    time_against_torch(benchmark, case_name, ours, theirs, passes, x, threads)

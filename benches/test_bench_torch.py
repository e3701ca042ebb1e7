"""fastnorm.torch vs torch (CPU): each norm through fastnorm's torch op (the
adapter's cost counts) against torch's function, forward and forward +
backward, and one training step of two small models with torch's norm
modules and with `fastnorm.torch.patch`ed ones. The two contenders alternate
round by round (interleaved medians), with the same thread count.

Minimal bytes: forward reads x and writes y (2 passes); forward + backward
adds reading x and dy and writing dx (5 passes).
"""
import copy

import pytest
from conftest import (IMAGE_OPS, IMAGE_SHAPE, SIZE, forward, forward_backward,
                      interleaved_against_torch)

torch = pytest.importorskip("torch")  # the test extra pins it; the bench extra does not
ft = pytest.importorskip("fastnorm.torch")

THREADS = 2
ROUNDS = 7 if SIZE == "full" else 5
ROW_SHAPES = [(8192, 4096) if SIZE == "full" else (512, 1024), (32, 64), (1, 768)]
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def _record(benchmark, case, x, passes, ours, theirs):
    interleaved_against_torch(benchmark, case, x, passes, ours, theirs, THREADS, ROUNDS)


ROW_OPS = {
    "layer_norm": (lambda f, x, w, b: f.layer_norm(x, (x.shape[-1],), w, b), 2),
    "rms_norm": (lambda f, x, w: f.rms_norm(x, (x.shape[-1],), w), 1),
}


@pytest.mark.parametrize("direction", ["forward", "forward+backward"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", ROW_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", ROW_OPS)
def test_row_norm_op(benchmark, name, shape, dtype, direction):
    call, n_params = ROW_OPS[name]
    x = (torch.randn(shape) + 3).to(DTYPES[dtype])
    params = [torch.randn(shape[-1], dtype=x.dtype) for _ in range(n_params)]
    wrap = forward if direction == "forward" else forward_backward
    ours = wrap(lambda *a: call(ft, *a), x, *params)
    theirs = wrap(lambda *a: call(torch.nn.functional, *a), x, *params)
    suffix = "" if direction == "forward" else ".fwd+bwd"
    _record(benchmark, f"torch_op.{name}{suffix}", x, 2 if direction == "forward" else 5,
            ours, theirs)


@pytest.mark.parametrize("direction", ["forward", "forward+backward"])
@pytest.mark.parametrize("layout", ["NCHW", "channels_last"])
@pytest.mark.parametrize("name", IMAGE_OPS)
def test_channel_norm_op(benchmark, name, layout, direction):
    x = torch.randn(IMAGE_SHAPE) + 3
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(IMAGE_SHAPE[1]), torch.randn(IMAGE_SHAPE[1])
    wrap = forward if direction == "forward" else forward_backward
    ours = wrap(lambda *a: IMAGE_OPS[name](ft, *a), x, w, b)
    theirs = wrap(lambda *a: IMAGE_OPS[name](torch.nn.functional, *a), x, w, b)
    suffix = "" if direction == "forward" else ".fwd+bwd"
    _record(benchmark, f"torch_op.{name}[{layout}]{suffix}", x,
            2 if direction == "forward" else 5, ours, theirs)


# ------------------------------------------------------- training steps ---

class TransformerBlock(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm1, self.norm2 = torch.nn.LayerNorm(d), torch.nn.RMSNorm(d)
        self.attn = torch.nn.MultiheadAttention(d, 8, batch_first=True)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 4 * d), torch.nn.GELU(),
                                       torch.nn.Linear(4 * d, d))

    def forward(self, x):
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class ResidualCNN(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.stem = torch.nn.Conv2d(3, c, 3, padding=1)
        self.bn1, self.gn = torch.nn.BatchNorm2d(c), torch.nn.GroupNorm(8, c)
        self.conv = torch.nn.Conv2d(c, c, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        h = torch.relu(self.bn1(self.stem(x)))
        return torch.relu(self.bn2(h + self.gn(self.conv(h))))


def _model(kind):
    torch.manual_seed(0)
    if kind == "transformer":
        tokens = (16, 128) if SIZE == "full" else (4, 32)
        return TransformerBlock(256), torch.randn(*tokens, 256)
    images = (16, 3, 64, 64) if SIZE == "full" else (4, 3, 16, 16)
    model = ResidualCNN(64).to(memory_format=torch.channels_last)
    return model, torch.randn(images).contiguous(memory_format=torch.channels_last)


def _train_step(model, x, autocast_dtype):
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)

    def step():
        optimizer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_dtype == "bfloat16"):
            loss = model(x).float().pow(2).mean()
        loss.backward()
        optimizer.step()
    return step


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["transformer", "cnn"])
def test_training_step(benchmark, kind, dtype):
    model, x = _model(kind)
    patched = copy.deepcopy(model)
    ft.patch(patched)
    # minimal bytes have no meaning for a whole step: bw_fraction is not a target here
    _record(benchmark, f"train_step.{kind}", x.to(DTYPES[dtype]), 1,
            _train_step(patched, x, dtype), _train_step(model, x, dtype))

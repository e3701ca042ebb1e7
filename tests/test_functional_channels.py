"""fastnorm.functional's channel norms (batch, group, instance, switchable,
local response), normalize, weight_norm and spectral_norm against torch (CPU)
as the oracle: forward through torch.nn.functional, gradients through
torch.autograd.grad.

float32 inputs are compared with torch run in float64 on the same float32
values (ours stays float32). layout="NHWC" gets the channels-last copy of the
input, (N, *spatial, C), and its results are moved back before the comparison
with torch's NCHW ones.
"""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as tF
from torch.nn.utils.spectral_norm import SpectralNorm

import fastnorm
import fastnorm.functional as F
from test_functional import assert_close_rel, torch_reference

DTYPES = [np.float32, np.float64]
LAYOUTS = ["NCHW", "NHWC"]


# ---------------------------------------------------------------- helpers ---

def to_layout(a, layout):
    """An NCHW array as the given layout's input (a fresh contiguous copy)."""
    return np.moveaxis(a, 1, -1).copy() if layout == "NHWC" else a


def from_layout(a, layout):
    """A result in the given layout back as NCHW."""
    return np.moveaxis(a, -1, 1) if layout == "NHWC" else a


def data(rng, shape, dtype, loc=1.0, scale=2.0):
    return (loc + scale * rng.standard_normal(shape)).astype(dtype)


def affine_params(rng, C, dtype, affine):
    w = data(rng, C, dtype, 1.0, 0.5) if affine in ("both", "weight") else None
    b = data(rng, C, dtype, 0.0, 1.0) if affine in ("both", "bias") else None
    return w, b


def running_stats(rng, C, dtype):
    return (data(rng, C, dtype, 0.5, 1.0),
            rng.uniform(0.5, 2.0, C).astype(dtype))


def t64(a):
    """A float64 torch copy (no grad) of a NumPy array."""
    return torch.tensor(np.asarray(a, dtype=np.float64))


def check_grads(got, ref, dtype, cond=1.0, layout="NCHW"):
    """got: our backward's tuple (input gradient first, in `layout`); ref:
    (dx_ref, [param grads or None]). None must match None."""
    dx_ref, p_refs = ref
    assert len(got) == 1 + len(p_refs)
    assert got[0].shape == (to_layout(dx_ref, layout).shape)
    assert_close_rel(from_layout(got[0], layout), dx_ref, dtype, cond)
    for g, r in zip(got[1:], p_refs):
        assert (g is None) == (r is None)
        if r is not None:
            assert g.shape == r.shape
            assert_close_rel(g, r, dtype, cond)


# ------------------------------------------------------------- batch_norm ---

# spatial sizes >= 32 take the fused NCHW kernels, smaller ones the unfused ones
BN_SHAPES = [(6, 3), (4, 3, 7), (3, 4, 5, 3), (2, 3, 3, 2, 2), (3, 4, 6, 7)]


@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", BN_SHAPES, ids=str)
def test_batch_norm_matches_torch(shape, dtype, training, layout, affine, rng):
    C = shape[1]
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, C, dtype, affine)
    rm, rv = running_stats(rng, C, dtype)
    momentum, eps = 0.3, 1e-4
    trm, trv = t64(rm), t64(rv)
    y_ref, dx_ref, p_refs = torch_reference(
        lambda t, w_, b_: tF.batch_norm(t, trm, trv, w_, b_, training, momentum, eps),
        x, dy, [w, b])

    xl, dyl = to_layout(x, layout), to_layout(dy, layout)
    rm_ours, rv_ours = rm.copy(), rv.copy()
    y, saved = F.batch_norm(xl, rm_ours, rv_ours, w, b, training, momentum, eps,
                            layout=layout, return_saved=True)
    assert y.shape == xl.shape
    assert_close_rel(from_layout(y, layout), y_ref, dtype)
    # running statistics, updated in place (or left alone in eval)
    assert_close_rel(rm_ours, trm.numpy(), dtype)
    assert_close_rel(rv_ours, trv.numpy(), dtype)
    if not training:
        np.testing.assert_array_equal(rm_ours, rm)
        np.testing.assert_array_equal(rv_ours, rv)
    else:  # without running statistics: the same output
        y_none = F.batch_norm(xl, None, None, w, b, True, momentum, eps, layout=layout)
        np.testing.assert_array_equal(y_none, y)
    rm_keep, rv_keep = rm.copy(), rv.copy()
    for s in (saved, None):
        got = F.batch_norm_backward(dyl, xl, rm, rv, w, b, training, momentum, eps,
                                    layout=layout, saved=s)
        check_grads(got, (dx_ref, p_refs), dtype, layout=layout)
        if training:  # the (updated) running statistics do not enter the backward
            got2 = F.batch_norm_backward(dyl, xl, rm_ours, rv_ours, w, b, training, momentum,
                                         eps, layout=layout, saved=s)
            for g1, g2 in zip(got, got2):
                assert (g1 is None) == (g2 is None)
                if g1 is not None:
                    np.testing.assert_array_equal(g1, g2)
    # the backward leaves the running statistics alone
    np.testing.assert_array_equal(rm, rm_keep)
    np.testing.assert_array_equal(rv, rv_keep)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3), (4, 3, 6)], ids=str)
def test_batch_norm_momentum_none_is_cumulative_average(shape, dtype, layout, rng):
    C = shape[1]
    module = torch.nn.BatchNorm1d(C, momentum=None, affine=False, dtype=torch.float64)
    module.train()
    rm, rv = np.zeros(C, dtype), np.ones(C, dtype)
    for k in (1, 2, 3):
        x = data(rng, shape, dtype, loc=k, scale=k)
        y_ref = module(t64(x)).detach().numpy()
        assert int(module.num_batches_tracked) == k
        y = F.batch_norm(to_layout(x, layout), rm, rv, None, None, True, None, 1e-5,
                         layout=layout, num_batches_tracked=k)
        assert_close_rel(from_layout(y, layout), y_ref, dtype)
        assert_close_rel(rm, module.running_mean.numpy(), dtype)
        assert_close_rel(rv, module.running_var.numpy(), dtype)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1, 1), (1, 3, 4)], ids=str)
def test_batch_norm_eval_single_sample(shape, layout, rng):
    dtype = np.float64
    C = shape[1]
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, C, dtype, "both")
    rm, rv = running_stats(rng, C, dtype)
    y_ref, dx_ref, p_refs = torch_reference(
        lambda t, w_, b_: tF.batch_norm(t, t64(rm), t64(rv), w_, b_, False), x, dy, [w, b])
    xl = to_layout(x, layout)
    assert_close_rel(from_layout(F.batch_norm(xl, rm, rv, w, b, False, layout=layout), layout),
                     y_ref, dtype)
    got = F.batch_norm_backward(to_layout(dy, layout), xl, rm, rv, w, b, False, layout=layout)
    check_grads(got, (dx_ref, p_refs), dtype, layout=layout)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 3, 1, 1)], ids=str)
def test_batch_norm_training_single_value_raises_like_torch(shape):
    x = np.ones(shape)
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="more than 1 value"):
        tF.batch_norm(torch.tensor(x), t64(rm), t64(rv), training=True)
    for layout in LAYOUTS:
        with pytest.raises(ValueError, match="more than 1 value"):
            F.batch_norm(to_layout(x, layout), rm.copy(), rv.copy(), training=True,
                         layout=layout)
        with pytest.raises(ValueError, match="more than 1 value"):
            F.batch_norm(to_layout(x, layout), None, None, training=True, layout=layout)
        with pytest.raises(ValueError, match="more than 1 value"):
            F.batch_norm_backward(to_layout(x, layout), to_layout(x, layout), None, None,
                                  training=True, layout=layout)
    # the running statistics are untouched by the failed call
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)


# ------------------------------------------------------------- group_norm ---

GN_CASES = [
    ((2, 6, 7), 1), ((2, 6, 7), 2), ((2, 6, 7), 3), ((2, 6, 7), 6),
    ((3, 6, 5, 3), 2), ((3, 6, 5, 3), 6), ((2, 4, 2, 3, 2), 2),
    ((2, 6, 6, 7), 3), ((2, 6, 33), 6), ((2, 6, 2, 4, 5), 2),  # fused NCHW
    # 1-element groups (C == G, one spatial position): torch gives the bias
    ((2, 4), 4), ((3, 4, 1), 4), ((2, 4, 1, 1), 4),
]


@pytest.mark.parametrize("affine", ["both", "none", "weight"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,G", GN_CASES, ids=str)
def test_group_norm_matches_torch(shape, G, dtype, layout, affine, rng):
    C = shape[1]
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, C, dtype, affine)
    eps = 1e-5
    y_ref, dx_ref, p_refs = torch_reference(
        lambda t, w_, b_: tF.group_norm(t, G, w_, b_, eps), x, dy, [w, b])
    xl, dyl = to_layout(x, layout), to_layout(dy, layout)
    y, saved = F.group_norm(xl, G, w, b, eps, layout=layout, return_saved=True)
    assert y.shape == xl.shape
    assert saved.mean.shape == (shape[0], G)
    assert_close_rel(from_layout(y, layout), y_ref, dtype)
    for s in (saved, None):
        got = F.group_norm_backward(dyl, xl, G, w, b, eps, layout=layout, saved=s)
        check_grads(got, (dx_ref, p_refs), dtype, layout=layout)


@pytest.mark.parametrize("dtype", DTYPES)
def test_channels_last_statistics_with_outliers_steps_and_large_means(dtype, rng):
    # Channels-last statistics are summed in blocks of 32768 values (6553
    # rows of 5 channels here), then merged. Channels: an outlier (1e6 over
    # noise of 1) first in every block, mean 1e8 with std 1, constant, a
    # step of 1e8 inside each sample, a ramp. Batch statistics span the
    # blocks of all samples; group_norm's (2 groups of 2 channels) those of
    # each sample.
    N, H, W, C = 8, 40, 40, 5
    n = N * H * W
    rows = np.arange(n)
    X = np.stack([
        np.where(rows % 6553 == 0, 1e6, 0.0) + rng.standard_normal(n),
        1e8 + rng.standard_normal(n),
        np.full(n, 3.0),
        np.where(rows % 1600 < 700, 0.0, 1e8) + rng.standard_normal(n),
        np.linspace(-1e6, 1e6, n),
    ], axis=-1).astype(dtype).reshape(N, H, W, C)

    def reference(parts):
        """(mean, variance) of each part (float64 values), exactly rounded sums"""
        mean = np.array([math.fsum(p) / p.size for p in parts])
        return mean, np.array([math.fsum((p - m) ** 2) / p.size for p, m in zip(parts, mean)])

    def variance(saved):
        return 1.0 / saved.rstd ** 2  # (eps 1e-300: nothing next to these variances)

    flat = X.reshape(n, C).astype(np.float64)
    ref_mean, ref_var = reference(list(flat.T))
    _, saved = F.batch_norm(X, None, None, training=True, eps=1e-300, layout="NHWC",
                            return_saved=True)
    # means to 1e-13 of each channel's largest value (the ramp's is ~0);
    # variances to 1e-13, but the 1e8 channel's to 1e-9: its block means,
    # held to an ulp of 1e8 (1.5e-8 against a std of 1), lose 1e-10 in their
    # merge. The first channel's, summed in one pass about each block's
    # first value (the outlier), was 1e-11 to 2e-11 off.
    for c, (largest, var_rtol) in enumerate(zip(np.abs(flat).max(axis=0),
                                                [1e-13, 1e-9, 1e-13, 1e-13, 1e-13])):
        np.testing.assert_allclose(saved.mean[c], ref_mean[c], rtol=0, atol=1e-13 * largest,
                                   err_msg=f"channel {c}")
        np.testing.assert_allclose(variance(saved)[c], ref_var[c], rtol=var_rtol, atol=1e-290,
                                   err_msg=f"channel {c}")
    assert variance(saved)[2] == 1e-300  # the constant channel: exactly 0 (+ eps)

    samples = X.reshape(N, H * W, C).astype(np.float64)
    ref_mean, ref_var = reference([s[:, g].ravel() for s in samples
                                   for g in (slice(0, 2), slice(2, 4))])
    _, saved = F.group_norm(X[..., :4], 2, eps=1e-300, layout="NHWC", return_saved=True)
    np.testing.assert_allclose(saved.mean.ravel(), ref_mean, rtol=1e-14, atol=0)
    np.testing.assert_allclose(variance(saved).ravel(), ref_var, rtol=1e-13, atol=1e-290)


# ---------------------------------------------------------- instance_norm ---

@pytest.mark.parametrize("affine", ["both", "none"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stats", ["input", "input+running", "running"])
@pytest.mark.parametrize("shape", [(2, 3, 7), (2, 3, 5, 3), (2, 3, 2, 2, 3), (2, 3, 5, 8)],
                         ids=str)
def test_instance_norm_matches_torch(shape, stats, dtype, layout, affine, rng):
    C = shape[1]
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, C, dtype, affine)
    use_input_stats = stats != "running"
    rm, rv = running_stats(rng, C, dtype) if stats != "input" else (None, None)
    trm, trv = (t64(rm), t64(rv)) if rm is not None else (None, None)
    momentum, eps = 0.2, 1e-5
    y_ref, dx_ref, p_refs = torch_reference(
        lambda t, w_, b_: tF.instance_norm(t, trm, trv, w_, b_, use_input_stats, momentum,
                                           eps), x, dy, [w, b])
    xl, dyl = to_layout(x, layout), to_layout(dy, layout)
    rm_ours = None if rm is None else rm.copy()
    rv_ours = None if rv is None else rv.copy()
    y, saved = F.instance_norm(xl, rm_ours, rv_ours, w, b, use_input_stats, momentum, eps,
                               layout=layout, return_saved=True)
    assert_close_rel(from_layout(y, layout), y_ref, dtype)
    if rm is not None:
        assert_close_rel(rm_ours, trm.numpy(), dtype)
        assert_close_rel(rv_ours, trv.numpy(), dtype)
    for s in (saved, None):
        got = F.instance_norm_backward(dyl, xl, rm, rv, w, b, use_input_stats, momentum, eps,
                                       layout=layout, saved=s)
        check_grads(got, (dx_ref, p_refs), dtype, layout=layout)


# -------------------------------------------------------- switchable_norm ---

def torch_switchable_norm(x, w, b, mean_weight, var_weight, running_mean, running_var,
                          training, momentum, eps, using_bn):
    """Reference switchable norm in torch (autograd through everything but the
    running statistics): softmax-mixed IN, LN (, BN) means and biased
    variances; the BN running statistics updated with the unbiased variance."""
    N, C = x.shape[:2]
    spatial = tuple(range(2, x.dim()))
    S = int(np.prod(x.shape[2:]))
    pshape = (1, C) + (1,) * len(spatial)
    means = [x.mean(spatial, keepdim=True), x.mean((1,) + spatial, keepdim=True)]
    vars_ = [x.var(spatial, unbiased=False, keepdim=True),
             x.var((1,) + spatial, unbiased=False, keepdim=True)]
    if using_bn:
        if training:
            mean_bn = x.mean((0,) + spatial, keepdim=True)
            var_bn = x.var((0,) + spatial, unbiased=False, keepdim=True)
            if running_mean is not None:
                with torch.no_grad():
                    n = N * S
                    running_mean.mul_(1 - momentum).add_(momentum * mean_bn.reshape(C))
                    running_var.mul_(1 - momentum).add_(
                        momentum * var_bn.reshape(C) * n / (n - 1))
        else:
            mean_bn, var_bn = running_mean.reshape(pshape), running_var.reshape(pshape)
        means.append(mean_bn)
        vars_.append(var_bn)
    a = torch.softmax(mean_weight, 0)
    bw = torch.softmax(var_weight, 0)
    mean = sum(a[k] * m for k, m in enumerate(means))
    var = sum(bw[k] * v for k, v in enumerate(vars_))
    y = (x - mean) / torch.sqrt(var + eps)
    if w is not None:
        y = y * w.reshape(pshape)
    if b is not None:
        y = y + b.reshape(pshape)
    return y


@pytest.mark.parametrize("affine", ["both", "none"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("using_bn", [True, False])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 4, 3, 2)], ids=str)
def test_switchable_norm_matches_torch_reference(shape, training, using_bn, dtype, layout,
                                                 affine, rng):
    C = shape[1]
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, C, dtype, affine)
    n_stats = 3 if using_bn else 2
    mw, vw = data(rng, n_stats, dtype, 0.0, 1.0), data(rng, n_stats, dtype, 0.0, 1.0)
    rm, rv = running_stats(rng, C, dtype) if using_bn else (None, None)
    trm, trv = (t64(rm), t64(rv)) if using_bn else (None, None)
    momentum, eps = 0.3, 1e-5
    y_ref, dx_ref, p_refs = torch_reference(
        lambda t, w_, b_, mw_, vw_: torch_switchable_norm(
            t, w_, b_, mw_, vw_, trm, trv, training, momentum, eps, using_bn),
        x, dy, [w, b, mw, vw])
    xl, dyl = to_layout(x, layout), to_layout(dy, layout)
    rm_ours = None if rm is None else rm.copy()
    rv_ours = None if rv is None else rv.copy()
    y, saved = F.switchable_norm(xl, w, b, mw, vw, rm_ours, rv_ours, training, momentum, eps,
                                 using_bn, layout=layout, return_saved=True)
    assert_close_rel(from_layout(y, layout), y_ref, dtype)
    if using_bn:
        assert_close_rel(rm_ours, trm.numpy(), dtype)
        assert_close_rel(rv_ours, trv.numpy(), dtype)
        if not training:
            np.testing.assert_array_equal(rm_ours, rm)
    for s in (saved, None):
        got = F.switchable_norm_backward(dyl, xl, w, b, mw, vw, rm, rv, training, momentum,
                                         eps, using_bn, layout=layout, saved=s)
        assert len(got) == 5
        check_grads(got, (dx_ref, p_refs), dtype, layout=layout)


# ---------------------------------------------------- local_response_norm ---

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("params", [(1e-4, 0.75, 1.0), (0.4, 0.6, 1.5)], ids=str)
@pytest.mark.parametrize("size", [1, 2, 3, 5, 8])
@pytest.mark.parametrize("shape", [(2, 5, 6), (2, 5, 3, 4)], ids=str)
def test_local_response_norm_matches_torch(shape, size, params, dtype, rng):
    alpha, beta, k = params  # size 8 > C = 5
    x = data(rng, shape, dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    y_ref, dx_ref, _ = torch_reference(
        lambda t: tF.local_response_norm(t, size, alpha, beta, k), x, dy, [])
    y = F.local_response_norm(x, size, alpha, beta, k)
    assert_close_rel(y, y_ref, dtype)
    got = F.local_response_norm_backward(dy, x, size, alpha, beta, k)
    assert isinstance(got, tuple) and len(got) == 1
    assert_close_rel(got[0], dx_ref, dtype)


# -------------------------------------------------------------- normalize ---

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("p", [1, 2, 3, np.inf, 0.5], ids=str)
def test_normalize_matches_torch(p, dim, dtype, rng):
    x = data(rng, (4, 5, 6), dtype)
    fibers = np.moveaxis(x, dim, -1)  # a view: fibers[i, j] is one normalized slice
    fibers[0, 0] = 0  # an all-zero slice: the clamp to eps is active there
    fibers[1, 2] = 0.5
    fibers[1, 2, :2] = [3.0, -3.0]  # a tie for the max (p=inf shares its gradient)
    dy = data(rng, x.shape, dtype, 0.0, 1.0)
    y_ref, dx_ref, _ = torch_reference(lambda t: tF.normalize(t, p, dim), x, dy, [])
    y = F.normalize(x, p, dim)
    assert_close_rel(y, y_ref, dtype)
    assert not np.isnan(y).any()
    (dx,) = F.normalize_backward(dy, x, p, dim)
    assert not np.isnan(dx_ref).any()
    assert_close_rel(dx, dx_ref, dtype)
    # on the all-zero slice the output is 0 and the gradient dy / eps
    np.testing.assert_array_equal(np.moveaxis(y, dim, -1)[0, 0], 0)


# ------------------------------------------------------------ weight_norm ---

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1, None])
def test_weight_norm_matches_torch(dim, dtype, rng):
    v = data(rng, (4, 3, 5), dtype)
    tdim = -1 if dim is None else dim
    g_shape = (1, 1, 1) if tdim == -1 else tuple(
        s if i == tdim else 1 for i, s in enumerate(v.shape))
    g = data(rng, g_shape, dtype, 1.0, 0.5)
    dw = data(rng, v.shape, dtype, 0.0, 1.0)
    tv = torch.tensor(v.astype(np.float64), requires_grad=True)
    tg = torch.tensor(g.astype(np.float64), requires_grad=True)
    w_ref = torch._weight_norm(tv, tg, tdim)
    dv_ref, dg_ref = torch.autograd.grad(w_ref, [tv, tg], t64(dw))
    w = F.weight_norm(v, g, dim)
    assert_close_rel(w, w_ref.detach().numpy(), dtype)
    dv, dg = F.weight_norm_backward(dw, v, g, dim)
    assert dg.shape == g.shape
    assert_close_rel(dv, dv_ref.numpy(), dtype)
    assert_close_rel(dg, dg_ref.numpy(), dtype)
    if tdim >= 0:  # g given 1-D (length v.shape[dim]): the same, grad_g 1-D
        g1 = g.reshape(-1)
        assert_close_rel(F.weight_norm(v, g1, dim), w_ref.detach().numpy(), dtype)
        dv1, dg1 = F.weight_norm_backward(dw, v, g1, dim)
        assert dg1.shape == g1.shape
        assert_close_rel(dv1, dv_ref.numpy(), dtype)
        assert_close_rel(dg1, dg_ref.numpy().reshape(-1), dtype)
    else:  # a 0-d g, torch's own for the whole tensor
        g0 = g.reshape(())
        assert_close_rel(F.weight_norm(v, g0, dim), w_ref.detach().numpy(), dtype)
        assert F.weight_norm_backward(dw, v, g0, dim)[1].shape == ()


# ---------------------------------------------------------- spectral_norm ---

SPECTRAL_MODULES = {
    "linear": (lambda: torch.nn.Linear(5, 7, dtype=torch.float64), 0),
    "conv2d": (lambda: torch.nn.Conv2d(3, 4, (2, 3), dtype=torch.float64), 0),
    "convT_dim1": (lambda: torch.nn.ConvTranspose2d(3, 4, 2, dtype=torch.float64), 1),
    "conv1d_dim2": (lambda: torch.nn.Conv1d(3, 6, 4, dtype=torch.float64), 2),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n_iter", [0, 1, 3])
@pytest.mark.parametrize("which", list(SPECTRAL_MODULES))
def test_spectral_norm_matches_torch_module(which, n_iter, dtype, rng):
    make, dim = SPECTRAL_MODULES[which]
    # torch refuses n_power_iterations=0; its eval mode (no power iteration,
    # the stored u and v) is our n_power_iterations=0 with v given
    module = torch.nn.utils.spectral_norm(make(), n_power_iterations=max(n_iter, 1), dim=dim)
    shape = tuple(module.weight_orig.shape)
    weight = data(rng, shape, dtype, 0.0, 1.0)
    u = data(rng, module.weight_u.shape, dtype, 0.0, 1.0)
    u /= np.linalg.norm(u)
    v = data(rng, module.weight_v.shape, dtype, 0.0, 1.0)
    v /= np.linalg.norm(v)
    with torch.no_grad():
        module.weight_orig.copy_(t64(weight))
        module.weight_u.copy_(t64(u))
        module.weight_v.copy_(t64(v))
    module.train(n_iter > 0)
    hook = next(h for h in module._forward_pre_hooks.values() if isinstance(h, SpectralNorm))
    hook(module, None)
    gw = data(rng, shape, dtype, 0.0, 1.0)
    (g_ref,) = torch.autograd.grad(module.weight, module.weight_orig, t64(gw))

    kw = {"v": v} if n_iter == 0 else {}
    u_in, v_in = u.copy(), v.copy()
    w_ours, u_ours, v_ours = F.spectral_norm(weight, u, n_iter, 1e-12, dim, **kw)
    np.testing.assert_array_equal(u, u_in)  # u (and v) are returned, not updated
    np.testing.assert_array_equal(v, v_in)
    assert_close_rel(w_ours, module.weight.detach().numpy(), dtype)
    assert_close_rel(u_ours, module.weight_u.numpy(), dtype)
    assert_close_rel(v_ours, module.weight_v.numpy(), dtype)
    (g_ours,) = F.spectral_norm_backward(gw, weight, u, n_iter, 1e-12, dim, **kw)
    assert g_ours.shape == shape
    assert_close_rel(g_ours, g_ref.numpy(), dtype)


# ------------------------------------------------------- adversarial data ---

def _channel_call(kind, x, layout):
    """(forward(x), backward(dy, x)) of one channel norm in a fixed
    configuration, and the torch function on NCHW data."""
    C = x.shape[-1] if layout == "NHWC" else x.shape[1]
    dtype = x.dtype
    w = np.linspace(0.5, 1.5, C).astype(dtype)
    b = np.linspace(-1, 1, C).astype(dtype)
    if kind == "batch":
        return (lambda x_: F.batch_norm(x_, None, None, w, b, True, layout=layout),
                lambda dy, x_: F.batch_norm_backward(dy, x_, None, None, w, b, True,
                                                     layout=layout),
                lambda t, w_, b_: tF.batch_norm(t, None, None, w_, b_, True), [w, b])
    if kind == "group":
        return (lambda x_: F.group_norm(x_, 2, w, b, layout=layout),
                lambda dy, x_: F.group_norm_backward(dy, x_, 2, w, b, layout=layout),
                lambda t, w_, b_: tF.group_norm(t, 2, w_, b_), [w, b])
    if kind == "instance":
        return (lambda x_: F.instance_norm(x_, None, None, w, b, layout=layout),
                lambda dy, x_: F.instance_norm_backward(dy, x_, None, None, w, b,
                                                        layout=layout),
                lambda t, w_, b_: tF.instance_norm(t, None, None, w_, b_), [w, b])
    raise ValueError(kind)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["batch", "group", "instance"])
@pytest.mark.parametrize("dtype,offset", [(np.float32, 1e4), (np.float64, 1e8)], ids=str)
@pytest.mark.parametrize("shape", [(4, 6, 5, 3), (3, 6, 8, 5)], ids=str)
def test_channel_norms_far_from_zero(shape, dtype, offset, kind, layout, rng):
    x = (offset + rng.standard_normal(shape)).astype(dtype)
    dy = data(rng, shape, dtype, 0.0, 1.0)
    shifted = x.astype(np.float64) - offset  # exact (Sterbenz)
    fwd, bwd, tfn, params = _channel_call(kind, to_layout(x, layout), layout)
    y_ref, dx_ref, p_refs = torch_reference(tfn, shifted, dy, params)
    assert_close_rel(from_layout(fwd(to_layout(x, layout)), layout), y_ref, dtype,
                     cond=offset)
    got = bwd(to_layout(dy, layout), to_layout(x, layout))
    check_grads(got, (dx_ref, p_refs), dtype, cond=offset, layout=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_instance_norm_nan_poisons_only_its_instance(dtype, layout, rng):
    shape = (3, 4, 5, 2)
    x = data(rng, shape, dtype)
    x[1, 2, 3, 1] = np.nan
    dy = data(rng, shape, dtype, 0.0, 1.0)
    w, b = affine_params(rng, 4, dtype, "both")
    y_ref, dx_ref, (dw_ref, db_ref) = torch_reference(
        lambda t, w_, b_: tF.instance_norm(t, None, None, w_, b_), x, dy, [w, b])
    y = from_layout(F.instance_norm(to_layout(x, layout), None, None, w, b, layout=layout),
                    layout)
    dx, dw, db = F.instance_norm_backward(to_layout(dy, layout), to_layout(x, layout), None,
                                          None, w, b, layout=layout)
    dx = from_layout(dx, layout)
    poisoned = np.zeros(shape, bool)
    poisoned[1, 2] = True
    for ours, ref in ((y, y_ref), (dx, dx_ref)):
        assert np.isnan(ours[poisoned]).all()
        assert np.isfinite(ours[~poisoned]).all()
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        assert_close_rel(ours[~poisoned], ref[~poisoned], dtype)
    # grad_weight sums dy * x_hat over the samples: NaN in channel 2 only;
    # grad_bias sums dy alone: finite
    for ours, ref, nan in ((dw, dw_ref, [False, False, True, False]),
                           (db, db_ref, [False] * 4)):
        np.testing.assert_array_equal(np.isnan(ours), nan)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        assert_close_rel(ours[[0, 1, 3]], ref[[0, 1, 3]], dtype)


def _all_channel_calls(x, dy, layout):
    """Forward and backward results of every channel norm (and LRN,
    normalize) on x, dy; running statistics are fresh per call and returned."""
    C = x.shape[-1] if layout == "NHWC" else x.shape[1]
    dt = x.dtype
    w = np.linspace(0.5, 1.5, C).astype(dt)
    b = np.linspace(-1, 1, C).astype(dt)
    lg = np.array([0.2, -0.1, 0.4], dt)
    out = []
    rm, rv = np.zeros(C, dt), np.ones(C, dt)
    out += [F.batch_norm(x, rm, rv, w, b, True, layout=layout), rm, rv]
    out += list(F.batch_norm_backward(dy, x, rm, rv, w, b, True, layout=layout))
    out += [F.group_norm(x, 2, w, b, layout=layout)]
    out += list(F.group_norm_backward(dy, x, 2, w, b, layout=layout))
    rm, rv = np.zeros(C, dt), np.ones(C, dt)
    out += [F.instance_norm(x, rm, rv, w, b, layout=layout), rm, rv]
    out += list(F.instance_norm_backward(dy, x, rm, rv, w, b, layout=layout))
    rm, rv = np.zeros(C, dt), np.ones(C, dt)
    out += [F.switchable_norm(x, w, b, lg, -lg, rm, rv, True, layout=layout), rm, rv]
    out += list(F.switchable_norm_backward(dy, x, w, b, lg, -lg, rm, rv, True,
                                           layout=layout))
    if layout == "NCHW":
        out += [F.local_response_norm(x, 3, 0.3, 0.75, 1.0)]
        out += list(F.local_response_norm_backward(dy, x, 3, 0.3, 0.75, 1.0))
        for p in (2, 3):
            out += [F.normalize(x, p, 1)] + list(F.normalize_backward(dy, x, p, 1))
    return out


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("order", ["strided", "F"])
def test_noncontiguous_and_fortran_inputs(order, dtype, layout, rng):
    shape = (3, 4, 5, 6) if layout == "NCHW" else (3, 5, 6, 4)
    big = data(rng, tuple(2 * s for s in shape), dtype)
    big_dy = data(rng, big.shape, dtype, 0.0, 1.0)
    if order == "strided":
        x, dy = big[::2, 1::2, :, ::2][:, :, ::2], big_dy[1::2, ::2, ::2, 1::2]
        assert x.shape == shape and not x.flags.c_contiguous and not x.flags.f_contiguous
    else:
        x = np.asfortranarray(big[:3, :shape[1], :shape[2], :shape[3]])
        dy = np.asfortranarray(big_dy[:3, :shape[1], :shape[2], :shape[3]])
        assert x.flags.f_contiguous and not x.flags.c_contiguous
    x_keep, dy_keep, big_keep = x.copy(), dy.copy(), big.copy()
    got = _all_channel_calls(x, dy, layout)
    ref = _all_channel_calls(np.ascontiguousarray(x), np.ascontiguousarray(dy), layout)
    assert len(got) == len(ref)
    for i, (a, c) in enumerate(zip(got, ref)):
        assert a.dtype == dtype, i
        np.testing.assert_array_equal(a, c, err_msg=f"result {i}")
    np.testing.assert_array_equal(x, x_keep)
    np.testing.assert_array_equal(dy, dy_keep)
    np.testing.assert_array_equal(big, big_keep)
    # and the contiguous results are torch's (batch norm, as a spot check)
    xn = from_layout(np.ascontiguousarray(x), layout)
    w = np.linspace(0.5, 1.5, xn.shape[1])
    b = np.linspace(-1, 1, xn.shape[1])
    y_ref = tF.batch_norm(t64(xn), None, None, t64(w), t64(b), True).numpy()
    assert_close_rel(from_layout(got[0], layout), y_ref, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved(dtype, rng):
    x = data(rng, (2, 4, 3, 3), dtype)
    dy = data(rng, x.shape, dtype, 0.0, 1.0)
    for layout in LAYOUTS:
        xl, dyl = to_layout(x, layout), to_layout(dy, layout)
        for a in _all_channel_calls(xl, dyl, layout):
            assert a.dtype == dtype
    v, g = data(rng, (4, 3), dtype), data(rng, (4, 1), dtype)
    for a in (F.weight_norm(v, g, 0),) + F.weight_norm_backward(v, v, g, 0):
        assert a.dtype == dtype
    u = data(rng, 4, dtype)
    for a in F.spectral_norm(v, u) + F.spectral_norm_backward(v, v, u):
        assert a.dtype == dtype


@pytest.mark.parametrize("layout", LAYOUTS)
def test_thread_count_determinism_batch_norm(layout, rng):
    shape = (16, 8, 40, 40)
    x = to_layout(data(rng, shape, np.float32), layout)
    dy = to_layout(data(rng, shape, np.float32, 0.0, 1.0), layout)
    w, b = affine_params(rng, 8, np.float32, "both")
    res = []
    for n in (1, 2):
        rm, rv = np.zeros(8, np.float32), np.ones(8, np.float32)
        with fastnorm.config_context(n_threads=n):
            y, saved = F.batch_norm(x, rm, rv, w, b, True, layout=layout, return_saved=True)
            grads = F.batch_norm_backward(dy, x, rm, rv, w, b, True, layout=layout)
            grads_saved = F.batch_norm_backward(dy, x, rm, rv, w, b, True, layout=layout,
                                                saved=saved)
        res.append((y, rm, rv, saved.mean, saved.rstd) + grads + grads_saved)
    for i, (a, c) in enumerate(zip(*res)):
        np.testing.assert_array_equal(a, c, err_msg=f"result {i}")


# -------------------------------------------------------------- bad input ---

def test_bad_input_names_the_argument(rng):
    x = data(rng, (4, 6, 3, 2), np.float64)
    dy = np.ones_like(x)
    C = 6
    rm, rv = np.zeros(C), np.ones(C)
    # batch_norm: rank
    with pytest.raises(ValueError, match="input"):
        F.batch_norm(np.ones(6), rm, rv, training=True)
    with pytest.raises(ValueError, match="input"):
        F.batch_norm(np.ones((2, 6, 2, 2, 2, 2)), rm, rv, training=True)
    # running statistics: length, dtype, absent in eval
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, np.zeros(5), rv, training=True)
    with pytest.raises(TypeError, match="running_mean"):
        F.batch_norm(x, np.zeros(C, np.float32), rv, training=True)
    with pytest.raises(ValueError, match="running_var"):
        F.batch_norm(x, rm, np.ones(7), training=False)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(x, None, None, training=False)
    with pytest.raises(ValueError, match="running_mean"):
        F.instance_norm(x, None, None, use_input_stats=False)
    with pytest.raises(ValueError, match="running_mean"):
        F.instance_norm(x, np.zeros(5), np.ones(5))
    # weight / bias length
    with pytest.raises(ValueError, match="weight"):
        F.batch_norm(x, rm, rv, np.ones(5), training=True)
    with pytest.raises(ValueError, match="bias"):
        F.batch_norm(x, rm, rv, None, np.ones(7), training=True)
    with pytest.raises(ValueError, match="weight"):
        F.group_norm(x, 2, np.ones(3))
    with pytest.raises(ValueError, match="weight"):
        F.instance_norm(x, weight=np.ones(12))
    # num_groups
    with pytest.raises(ValueError, match="num_groups"):
        F.group_norm(x, 4)
    with pytest.raises(ValueError, match="num_groups"):
        F.group_norm(x, 0)
    # layout
    for call in (lambda: F.batch_norm(x, rm, rv, training=True, layout="NCWH"),
                 lambda: F.group_norm(x, 2, layout="NCWH"),
                 lambda: F.instance_norm(x, layout="NCWH"),
                 lambda: F.switchable_norm(x, None, None, np.zeros(3), np.zeros(3), None,
                                           None, True, layout="NCWH")):
        with pytest.raises(ValueError, match="layout"):
            call()
    # eps: torch's batch_norm refuses eps <= 0 in training and eps < 0 in eval
    # (group_norm, instance_norm and normalize compute a negative eps: see
    # tests/test_torch_semantics.py)
    for call in (lambda: F.batch_norm(x, rm, rv, training=True, eps=-1e-5),
                 lambda: F.batch_norm(x, rm, rv, training=True, eps=0.0),
                 lambda: F.batch_norm(x, rm, rv, training=False, eps=-1e-5)):
        with pytest.raises(ValueError, match="eps"):
            call()
    with pytest.raises(TypeError, match="eps"):
        F.group_norm(x, 2, eps="1e-5")
    # local_response_norm
    with pytest.raises(ValueError, match="size"):
        F.local_response_norm(x, 0)
    with pytest.raises(ValueError, match="input"):
        F.local_response_norm(np.ones((4, 6)), 2)
    # normalize dim
    with pytest.raises(ValueError, match="dim"):
        F.normalize(x, 2, 4)
    with pytest.raises(ValueError, match="dim"):
        F.normalize(x, 2, -5)
    # switchable logits
    with pytest.raises(ValueError, match="mean_weight"):
        F.switchable_norm(x, None, None, np.zeros(2), np.zeros(3), rm, rv, True)
    with pytest.raises(ValueError, match="var_weight"):
        F.switchable_norm(x, None, None, np.zeros(2), np.zeros(3), None, None, True,
                          using_bn=False)
    # grad_output of the wrong shape (and dtype)
    bad = np.ones((4, 6, 3, 3))
    for call in (lambda g: F.batch_norm_backward(g, x, rm, rv, training=True),
                 lambda g: F.group_norm_backward(g, x, 2),
                 lambda g: F.instance_norm_backward(g, x),
                 lambda g: F.switchable_norm_backward(g, x, None, None, np.zeros(3),
                                                      np.zeros(3), rm, rv, True),
                 lambda g: F.local_response_norm_backward(g, x, 3),
                 lambda g: F.normalize_backward(g, x)):
        with pytest.raises(ValueError, match="grad_output"):
            call(bad)
        with pytest.raises(ValueError, match="grad_output"):
            call(dy.astype(np.float32))
    # weight_norm g, spectral_norm u
    v = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"\bg must"):
        F.weight_norm(v, np.ones((3, 1)), 0)
    with pytest.raises(ValueError, match=r"\bg must"):
        F.weight_norm_backward(v, v, np.ones((1, 4)), 1)
    with pytest.raises(ValueError, match="grad_output"):
        F.weight_norm_backward(np.ones((3, 4)), v, np.ones((4, 1)), 0)
    with pytest.raises(ValueError, match=r"\bu must"):
        F.spectral_norm(v, np.ones(3))
    with pytest.raises(ValueError, match=r"\bu must"):
        F.spectral_norm_backward(v, v, np.ones(3), dim=1 - 1)
    with pytest.raises(ValueError, match=r"\bu must"):
        F.spectral_norm(v, np.ones(4), dim=1)
    with pytest.raises(ValueError, match="grad_output"):
        F.spectral_norm_backward(np.ones((3, 4)), v, np.ones(4))

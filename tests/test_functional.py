"""fastnorm.functional against torch (CPU) forward and autograd, the oracle."""
import math

import numpy as np
import pytest
import torch

import fastnorm.functional as F

TOL = {np.float32: 1e-5, np.float64: 1e-10}


def assert_close_rel(ours, ref, dtype, cond=1.0):
    """Relative to the reference's magnitude; cond widens it for data whose
    mean is far from its spread (the mean itself is rounded in dtype)."""
    ref = np.asarray(ref)
    # relative to the magnitude, at least that of the O(1) test data: where
    # the exact answer is 0 (one-element groups) torch returns rounding noise
    scale = max(np.abs(ref).max(), 1.0)
    tol = TOL[dtype] + 4 * np.finfo(dtype).eps * cond
    err = np.abs(ours - ref).max() / scale
    assert err <= tol, f"relative error {err:.3g} > {tol:.3g}"
    assert ours.dtype == dtype


def torch_reference(fn, x, dy, params, **kw):
    """Forward in float64 and the gradients torch.autograd gives."""
    tx = torch.tensor(x.astype(np.float64), requires_grad=True)
    tp = [None if p is None else torch.tensor(p.astype(np.float64), requires_grad=True)
          for p in params]
    y = fn(tx, *tp, **kw)
    grads = torch.autograd.grad(y, [tx] + [p for p in tp if p is not None],
                                torch.tensor(dy.astype(np.float64)))
    it = iter(grads[1:])
    return (y.detach().numpy(), grads[0].numpy(),
            [None if p is None else next(it).numpy() for p in tp])


SHAPES = [((7, 13), (13,)), ((3, 5, 9), (9,)), ((2, 3, 4, 5), (4, 5)), ((1, 33), (33,)),
          ((6, 1), (1,))]


@pytest.mark.parametrize("affine", ["both", "weight", "bias", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,normalized", SHAPES)
def test_layer_norm_matches_torch(shape, normalized, dtype, affine, rng):
    x = (rng.standard_normal(shape) * 3 + 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(normalized).astype(dtype) if affine in ("both", "weight") else None
    b = rng.standard_normal(normalized).astype(dtype) if affine in ("both", "bias") else None
    y_ref, dx_ref, (dw_ref, db_ref) = torch_reference(
        lambda t, w_, b_: torch.nn.functional.layer_norm(t, normalized, w_, b_, 1e-5),
        x, dy, [w, b])
    y, saved = F.layer_norm(x, normalized, w, b, return_saved=True)
    assert_close_rel(y, y_ref, dtype)
    for s in (saved, None):
        dx, dw, db = F.layer_norm_backward(dy, x, normalized, w, b, saved=s)
        assert_close_rel(dx, dx_ref, dtype)
        for got, ref in ((dw, dw_ref), (db, db_ref)):
            assert (got is None) == (ref is None)
            if ref is not None:
                assert got.shape == tuple(normalized)
                assert_close_rel(got, ref, dtype)


@pytest.mark.parametrize("eps", [None, 1e-6])
@pytest.mark.parametrize("with_weight", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,normalized", SHAPES)
def test_rms_norm_matches_torch(shape, normalized, dtype, with_weight, eps, rng):
    x = rng.standard_normal(shape).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal(normalized).astype(dtype) if with_weight else None
    # torch's eps=None is the machine epsilon of the input's dtype
    torch_eps = float(np.finfo(dtype).eps) if eps is None else eps
    y_ref, dx_ref, (dw_ref,) = torch_reference(
        lambda t, w_: torch.nn.functional.rms_norm(t, normalized, w_, torch_eps), x, dy, [w])
    y, saved = F.rms_norm(x, normalized, w, eps, return_saved=True)
    assert_close_rel(y, y_ref, dtype)
    dx, dw = F.rms_norm_backward(dy, x, normalized, w, eps, saved=saved)
    assert_close_rel(dx, dx_ref, dtype)
    assert (dw is None) == (dw_ref is None)
    if dw_ref is not None:
        assert_close_rel(dw, dw_ref, dtype)


def test_rms_norm_default_eps_is_torchs(rng):
    x = rng.standard_normal((4, 8)).astype(np.float32) * 1e-4
    ref = torch.nn.functional.rms_norm(torch.tensor(x), (8,)).numpy()
    assert_close_rel(F.rms_norm(x, 8), ref, np.float32)


@pytest.mark.parametrize("dtype,offset", [(np.float32, 1e4), (np.float64, 1e8)])
def test_layer_norm_far_from_zero(dtype, offset, rng):
    x = (offset + rng.standard_normal((20, 31))).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y_ref, dx_ref, _ = torch_reference(
        lambda t: torch.nn.functional.layer_norm(t, (31,)), x, dy, [])
    cond = offset  # |mean| / std: the mean is only known to eps * offset
    assert_close_rel(F.layer_norm(x, 31), y_ref, dtype, cond=cond)
    assert_close_rel(F.layer_norm_backward(dy, x, 31)[0], dx_ref, dtype, cond=cond)


@pytest.mark.parametrize("offset,std", [(1e4, 1.0), (1e8, 1.0), (1e4, 1e-2), (3.0, 1e-30)])
def test_float32_row_norms_are_exact_to_a_few_ulps_far_from_zero(offset, std, rng):
    """fastnorm's float32 row norms keep their statistics in float64 and
    subtract the mean in two float parts, so even far from zero (where the
    float32 mean alone is off by many stds) every output is within a few
    float32 ulps of the float64 answer for the same float32 input."""
    x = (offset + std * rng.standard_normal((40, 67))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    w, b = (rng.standard_normal(67).astype(np.float32) for _ in range(2))
    for rms in (False, True):
        fn = (lambda t, tw: torch.nn.functional.rms_norm(t, (67,), tw, 1e-6)) if rms else \
            (lambda t, tw, tb: torch.nn.functional.layer_norm(t, (67,), tw, tb, 1e-6))
        y_ref, dx_ref, _ = torch_reference(fn, x, dy, [w] if rms else [w, b])
        if rms:
            y, (dx, *_) = F.rms_norm(x, 67, w, 1e-6), F.rms_norm_backward(dy, x, 67, w, 1e-6)
        else:
            y = F.layer_norm(x, 67, w, b, 1e-6)
            dx = F.layer_norm_backward(dy, x, 67, w, b, 1e-6)[0]
        for ours, ref in ((y, y_ref), (dx, dx_ref)):
            scale = np.abs(ref).max()
            err = np.abs(ours - ref).max() / np.spacing(np.float32(scale))
            assert err <= 4, f"rms={rms}: {err:.1f} float32 ulps of max|ref| {scale:.3g}"


def test_layer_norm_row_starting_with_an_outlier(rng):
    # The kernel sums a row's deviations and their squares about its first
    # value in one pass; where the mean lies far from that for the spread
    # (here ~500 standard deviations: the correction would cancel ~18 bits
    # of the sum of squares) it takes a second pass about the mean instead.
    n = 2**18
    x = rng.standard_normal((2, n))
    x[:, 0] = 1e5
    mean = np.array([math.fsum(row) / n for row in x])
    var = np.array([math.fsum((row - mu) ** 2) / n for row, mu in zip(x, mean)])
    ref = (x - mean[:, None]) / np.sqrt(var[:, None] + 1e-5)
    np.testing.assert_allclose(F.layer_norm(x, n), ref, rtol=1e-13, atol=1e-13)


def test_layouts_and_no_mutation(rng):
    base = rng.standard_normal((10, 24))
    x = base[:, ::2]  # non-contiguous
    xf = np.asfortranarray(base[:, :12])
    for arr in (x, xf):
        keep = arr.copy()
        ref = torch.nn.functional.layer_norm(torch.tensor(np.ascontiguousarray(arr)), (12,))
        assert_close_rel(F.layer_norm(arr, 12), ref.numpy(), np.float64)
        np.testing.assert_array_equal(arr, keep)


def test_thread_count_does_not_change_results(rng):
    import fastnorm
    x = rng.standard_normal((3000, 40)).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    w, b = rng.standard_normal(40).astype(np.float32), rng.standard_normal(40).astype(np.float32)
    res = []
    for n in (1, 2):
        with fastnorm.config_context(n_threads=n):
            res.append((F.layer_norm(x, 40, w, b),) + F.layer_norm_backward(dy, x, 40, w, b))
    for a, c in zip(*res):
        np.testing.assert_array_equal(a, c)


def test_nan_propagates_to_its_row_only(rng):
    x = rng.standard_normal((4, 6))
    x[1, 2] = np.nan
    y = F.layer_norm(x, 6)
    assert np.isnan(y[1]).all() and not np.isnan(np.delete(y, 1, axis=0)).any()


def test_bad_input_names_the_argument(rng):
    x = rng.standard_normal((4, 6))
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (5,))
    with pytest.raises(ValueError, match="normalized_shape"):
        F.layer_norm(x, (4, 6, 1))
    with pytest.raises(TypeError, match="normalized_shape"):
        F.layer_norm(x, "6")
    with pytest.raises(ValueError, match="weight"):
        F.layer_norm(x, 6, np.ones(5))
    with pytest.raises(TypeError, match="bias"):
        F.layer_norm(x, 6, None, np.ones(6, np.float32))
    with pytest.raises(TypeError, match="eps"):  # (a negative eps is computed, as torch's)
        F.layer_norm(x, 6, eps="1e-5")
    with pytest.raises(TypeError, match="eps"):  # torch: eps must be a float; rms_norm's may be None
        F.layer_norm(x, 6, eps=None)
    with pytest.raises(TypeError, match="input"):
        F.layer_norm(np.ones((4, 6), dtype=np.int64), 6)
    with pytest.raises(TypeError, match="input"):
        F.rms_norm(None, 6)
    with pytest.raises(ValueError, match="grad_output"):
        F.layer_norm_backward(np.ones((4, 5)), x, 6)
    _, saved = F.layer_norm(x[:2], 6, return_saved=True)
    with pytest.raises(ValueError, match="saved"):
        F.layer_norm_backward(np.ones_like(x), x, 6, saved=saved)
    with pytest.raises(TypeError, match="saved"):
        F.layer_norm_backward(np.ones_like(x), x, 6, saved=(1, 2))


@pytest.mark.parametrize("rms", [False, True])
def test_row_norms_take_numpy_float16(rms):
    """float16 arrays run on the 16-bit kernels (float32 arithmetic), with
    float16 or float32 parameters, as torch's float16 layer_norm/rms_norm."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 40)).astype(np.float16)
    w = rng.standard_normal(40).astype(np.float32)
    dy = rng.standard_normal((6, 40)).astype(np.float16)
    tx, tw = torch.from_numpy(x).requires_grad_(), torch.from_numpy(w).requires_grad_()
    if rms:
        y, saved = F.rms_norm(x, 40, w, eps=1e-5, return_saved=True)
        dx, dw = F.rms_norm_backward(dy, x, 40, w, eps=1e-5, saved=saved)
        ty = torch.nn.functional.rms_norm(tx, (40,), tw, 1e-5)
    else:
        y, saved = F.layer_norm(x, 40, w, return_saved=True)
        dx, dw, _ = F.layer_norm_backward(dy, x, 40, w, saved=saved)
        ty = torch.nn.functional.layer_norm(tx, (40,), tw)
    ty.backward(torch.from_numpy(dy))
    assert y.dtype == dx.dtype == np.float16 and dw.dtype == np.float32
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=4e-3, atol=4e-3)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=2e-2, atol=2e-2)
    np.testing.assert_allclose(dw, tw.grad.numpy(), rtol=1e-2, atol=1e-2)
    with pytest.raises(TypeError, match="weight has dtype float64"):
        F.layer_norm(x, 40, w.astype(np.float64))

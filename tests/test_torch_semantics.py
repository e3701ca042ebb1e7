"""fastnorm.functional takes every input torch.nn.functional takes, and gives
what torch gives: unusual eps and momentum, normalize's every vector norm
order and dims, 0-d, 1-D and empty inputs. Where torch raises, fastnorm
raises too (an error naming the argument). torch (CPU, float64) is the
oracle, forward and autograd."""
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import fastnorm.functional as F


def t(a, grad=False):
    return None if a is None else torch.tensor(a, requires_grad=grad)


def assert_same(ours, theirs, rtol=1e-10, atol=1e-12):
    """Equal to torch's to float64 rounding, NaN where torch has NaN."""
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else theirs
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape
    assert ours.dtype == theirs.dtype
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol, equal_nan=True)


def autograd(fn, arrays, seed=1):
    """(output, dy, gradients of each array, None for None) of torch's fn."""
    ts = [t(a, grad=True) for a in arrays]
    y = fn(*ts)
    dy = torch.tensor(np.random.default_rng(seed).standard_normal(tuple(y.shape)))
    live = [x for x in ts if x is not None]
    grads = iter(torch.autograd.grad(y, live, dy, allow_unused=True))
    out = []
    for x in ts:
        g = None if x is None else next(grads)
        out.append(None if x is None else (torch.zeros_like(x) if g is None else g))
    return y, dy.numpy(), out


def quiet(fn, *args, **kwargs):
    """fn(...) without NumPy's warnings: none may escape where torch has none."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@pytest.fixture
def data():
    return np.random.default_rng(20240611)


# -------------------------------------------------- eps: any real number ---

EPS = [0.0, -1e-3, -0.5, 1e6, math.nan, math.inf]


@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("shape,normalized", [((4, 6), (6,)), ((2, 3, 4), (3, 4))])
def test_layer_norm_any_eps(shape, normalized, eps, data):
    x, w, b = (data.standard_normal(s) for s in (shape, normalized, normalized))
    y, dy, (dx_t, dw_t, db_t) = autograd(
        lambda x_, w_, b_: TF.layer_norm(x_, normalized, w_, b_, eps), [x, w, b])
    assert_same(quiet(F.layer_norm, x, normalized, w, b, eps), y)
    dx, dw, db = quiet(F.layer_norm_backward, dy, x, normalized, w, b, eps)
    for ours, theirs in ((dx, dx_t), (dw, dw_t), (db, db_t)):
        assert_same(ours, theirs)


@pytest.mark.parametrize("eps", EPS)
def test_rms_norm_any_eps(eps, data):
    x, w = data.standard_normal((4, 6)), data.standard_normal(6)
    y, dy, (dx_t, dw_t) = autograd(lambda x_, w_: TF.rms_norm(x_, (6,), w_, eps), [x, w])
    assert_same(quiet(F.rms_norm, x, (6,), w, eps), y)
    dx, dw = quiet(F.rms_norm_backward, dy, x, (6,), w, eps)
    assert_same(dx, dx_t)
    assert_same(dw, dw_t)


@pytest.mark.parametrize("eps", EPS)
def test_group_norm_any_eps(eps, data):
    x, w, b = data.standard_normal((2, 4, 3)), data.standard_normal(4), data.standard_normal(4)
    y, dy, grads = autograd(lambda x_, w_, b_: TF.group_norm(x_, 2, w_, b_, eps), [x, w, b])
    assert_same(quiet(F.group_norm, x, 2, w, b, eps), y)
    for ours, theirs in zip(quiet(F.group_norm_backward, dy, x, 2, w, b, eps), grads):
        assert_same(ours, theirs)


@pytest.mark.parametrize("eps", EPS)
@pytest.mark.parametrize("use_input_stats", [True, False])
def test_instance_norm_any_eps(eps, use_input_stats, data):
    x, w, b = data.standard_normal((2, 3, 4)), data.standard_normal(3), data.standard_normal(3)
    rm, rv = data.standard_normal(3), data.random(3) + 0.5
    y, dy, grads = autograd(lambda x_, w_, b_: TF.instance_norm(
        x_, t(rm), t(rv), w_, b_, use_input_stats, 0.1, eps), [x, w, b])
    assert_same(quiet(F.instance_norm, x, rm.copy(), rv.copy(), w, b, use_input_stats, 0.1,
                      eps), y)
    for ours, theirs in zip(quiet(F.instance_norm_backward, dy, x, rm.copy(), rv.copy(), w, b,
                                  use_input_stats, 0.1, eps), grads):
        assert_same(ours, theirs)


@pytest.mark.parametrize("eps", [0.0, 1e6, math.nan, math.inf])
def test_batch_norm_eval_takes_eps_torch_takes(eps, data):
    x, w, b = data.standard_normal((4, 3)), data.standard_normal(3), data.standard_normal(3)
    rm, rv = data.standard_normal(3), data.random(3) + 0.5
    y, dy, grads = autograd(lambda x_, w_, b_: TF.batch_norm(
        x_, t(rm), t(rv), w_, b_, False, 0.1, eps), [x, w, b])
    assert_same(quiet(F.batch_norm, x, rm, rv, w, b, False, 0.1, eps), y)
    for ours, theirs in zip(quiet(F.batch_norm_backward, dy, x, rm, rv, w, b, False, 0.1, eps),
                            grads):
        assert_same(ours, theirs)


@pytest.mark.parametrize("training,eps", [(True, 0.0), (True, -1e-3), (False, -1e-3)])
def test_batch_norm_refuses_eps_as_torch(training, eps, data):
    x = data.standard_normal((4, 3))
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError, match="eps") as theirs:
        TF.batch_norm(t(x), t(rm), t(rv), None, None, training, 0.1, eps)
    with pytest.raises(ValueError, match="eps") as ours:
        F.batch_norm(x, rm, rv, None, None, training, 0.1, eps)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="eps"):
        F.batch_norm_backward(x, x, rm, rv, None, None, training, 0.1, eps)


def test_batch_norm_training_nan_eps_is_computed(data):
    x = data.standard_normal((4, 3))
    theirs = TF.batch_norm(t(x), None, None, None, None, True, 0.1, math.nan)
    assert_same(quiet(F.batch_norm, x, None, None, None, None, True, 0.1, math.nan), theirs)


def test_eps_of_another_type_is_a_type_error(data):
    x = data.standard_normal((4, 6))
    with pytest.raises(TypeError):
        TF.layer_norm(t(x), (6,), eps="0.1")
    with pytest.raises(TypeError, match="eps"):
        F.layer_norm(x, (6,), eps="0.1")
    with pytest.raises(TypeError):
        TF.layer_norm(t(x), (6,), eps=None)
    with pytest.raises(TypeError, match="eps"):
        F.layer_norm(x, (6,), eps=None)
    # bool is a number to torch
    assert_same(F.layer_norm(x, (6,), eps=True), TF.layer_norm(t(x), (6,), eps=True))


# ------------------------------------------- momentum: any real number ---

MOMENTA = [0.0, 1.0, -0.5, 1.5, 3]


@pytest.mark.parametrize("momentum", MOMENTA)
@pytest.mark.parametrize("shape", [(4, 3), (2, 3, 5)])
def test_batch_norm_momentum_extrapolates(momentum, shape, data):
    x = data.standard_normal(shape)
    rm, rv = data.standard_normal(3), data.random(3) + 0.5
    trm, trv = t(rm), t(rv)
    theirs = TF.batch_norm(t(x), trm, trv, None, None, True, momentum)
    ours = F.batch_norm(x, rm, rv, None, None, True, momentum)
    assert_same(ours, theirs)
    assert_same(rm, trm)
    assert_same(rv, trv)


@pytest.mark.parametrize("momentum", MOMENTA)
def test_instance_norm_momentum_extrapolates(momentum, data):
    x = data.standard_normal((2, 3, 5))
    rm, rv = data.standard_normal(3), data.random(3) + 0.5
    trm, trv = t(rm), t(rv)
    theirs = TF.instance_norm(t(x), trm, trv, None, None, True, momentum)
    ours = F.instance_norm(x, rm, rv, None, None, True, momentum)
    assert_same(ours, theirs)
    assert_same(rm, trm)
    assert_same(rv, trv)


@pytest.mark.parametrize("momentum", [-0.5, 1.5])
def test_layers_momentum_extrapolates(momentum, data):
    from fastnorm.layers import BatchNorm
    x = data.standard_normal((8, 3))
    ours, theirs = BatchNorm(3, momentum=momentum, dtype=np.float64), \
        torch.nn.BatchNorm1d(3, momentum=momentum, dtype=torch.float64)
    for _ in range(3):
        ours(x)
        theirs(t(x))
    assert_same(ours.running_mean, theirs.running_mean)
    assert_same(ours.running_var, theirs.running_var)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("stats", [True, False])
def test_momentum_none_is_torchs_type_error(training, stats, data):
    """torch's functions take no momentum=None (its modules' cumulative
    average); fastnorm's take it only with num_batches_tracked."""
    x = data.standard_normal((4, 3, 2))
    rm, rv = (np.zeros(3), np.ones(3)) if stats else (None, None)
    with pytest.raises(TypeError, match="momentum"):
        TF.batch_norm(t(x), t(rm), t(rv), None, None, training, None)
    with pytest.raises(TypeError, match="momentum"):
        F.batch_norm(x, rm, rv, None, None, training, None)
    with pytest.raises(TypeError, match="momentum"):
        TF.instance_norm(t(x), t(rm), t(rv), None, None, training or not stats, None)
    with pytest.raises(TypeError, match="momentum"):
        F.instance_norm(x, rm, rv, None, None, training or not stats, None)
    if stats and training:  # fastnorm's addition: the cumulative average
        F.batch_norm(x, rm, rv, None, None, True, None, num_batches_tracked=2)
        np.testing.assert_allclose(rm, 0.5 * x.mean(axis=(0, 2)))


# ------------------------------------------------------------ normalize ---

ORDERS = [2.0, 1.0, 3.0, 0.5, 0.0, -1.0, -2.5, math.inf, -math.inf, 2, None, "fro"]
DIMS = [1, 0, -1, (0, 1), (0, 2), [2, 0], None, ()]


def _normalize_input(data, shape):
    x = data.standard_normal(shape)
    if x.ndim == 3:
        x[0, 1, 2] = 0.0  # an exact zero: the gradients of p < 1 and -inf treat it apart
        x[1, 0, :] = 0.5  # a tie for the inf norms' maximum and minimum
    return x


@pytest.mark.parametrize("dim", DIMS, ids=str)
@pytest.mark.parametrize("p", ORDERS, ids=str)
def test_normalize_every_order_and_dims(p, dim, data):
    x = _normalize_input(data, (2, 3, 4))
    y, dy, (dx_t,) = autograd(lambda x_: TF.normalize(x_, p, dim), [x])
    assert_same(quiet(F.normalize, x, p, dim), y)
    (dx,) = quiet(F.normalize_backward, dy, x, p, dim)
    # torch's p < 0 gradient divides by a tiny norm: relative to its size
    assert_same(dx, dx_t, rtol=1e-9, atol=1e-12 * max(1.0, np.abs(dx_t.numpy()).max()))


@pytest.mark.parametrize("eps", [0.0, -1.0, 10.0, 1e-12])
@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, -1.0, math.inf])
def test_normalize_any_eps(p, eps, data):
    x = _normalize_input(data, (2, 3, 4))
    x[0, :, 1] = 0.0  # a zero norm: 0 / max(0, eps)
    y, dy, (dx_t,) = autograd(lambda x_: TF.normalize(x_, p, 1, eps), [x])
    assert_same(quiet(F.normalize, x, p, 1, eps), y)
    assert_same(quiet(F.normalize_backward, dy, x, p, 1, eps)[0], dx_t)


@pytest.mark.parametrize("dim", [0, -1, None, ()], ids=str)
@pytest.mark.parametrize("p", [2.0, 1.0, 0.0, -1.0, math.inf, -math.inf])
@pytest.mark.parametrize("value", [-1.5, 0.0])
def test_normalize_zero_dim_input(value, p, dim):
    """A 0-d input is a vector of one value to torch (dims 0 and -1)."""
    x = np.array(value)
    y, dy, (dx_t,) = autograd(lambda x_: TF.normalize(x_, p, dim), [x])
    assert_same(quiet(F.normalize, x, p, dim), y)
    assert_same(quiet(F.normalize_backward, dy, x, p, dim)[0], dx_t)


@pytest.mark.parametrize("shape,dim", [((), 1), ((), -2), ((3, 4), 2), ((3, 4), -3),
                                       ((3, 4), (0, 2))])
def test_normalize_dim_out_of_range_is_torchs_index_error(shape, dim):
    x = np.ones(shape)
    with pytest.raises(IndexError, match="Dimension out of range") as theirs:
        TF.normalize(t(x), 2, dim)
    with pytest.raises(IndexError, match="dim") as ours:
        F.normalize(x, 2, dim)
    assert str(theirs.value) in str(ours.value)
    assert isinstance(ours.value, ValueError)  # as fastnorm's other refusals


@pytest.mark.parametrize("dim", [(0, 0), (1, -1)])
def test_normalize_repeated_dim(dim):
    x = np.ones((3, 4))
    with pytest.raises(RuntimeError, match="multiple times"):
        TF.normalize(t(x), 2, dim)
    with pytest.raises(ValueError, match="dim"):
        F.normalize(x, 2, dim)


@pytest.mark.parametrize("p", [-1.0, math.inf, -math.inf])
@pytest.mark.parametrize("shape,dim", [((0, 4), 0), ((3, 0), 1), ((0, 3), None)])
def test_normalize_empty_dim_without_identity(p, shape, dim):
    """The inf and negative-order norms of no values have no identity: torch
    refuses them; over non-empty dims an empty input is fine."""
    x = np.ones(shape)
    with pytest.raises(RuntimeError, match="identity"):
        TF.normalize(t(x), p, dim)
    with pytest.raises(ValueError, match="input"):
        F.normalize(x, p, dim)
    other = 1 if dim == 0 else 0
    if dim is not None:
        assert_same(F.normalize(x, p, other), TF.normalize(t(x), p, other))


# ------------------------------------------- 1-D, 2-D and empty batches ---

@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_empty_1d_input(training):
    """torch returns an empty batch before it looks for channels (a 1-D
    input has none); any other 1-D input it refuses, and so do we."""
    x = np.ones(0)
    rm, rv = np.zeros(0), np.ones(0)
    theirs = TF.batch_norm(t(x), t(rm), t(rv), None, None, training)
    assert_same(F.batch_norm(x, rm, rv, None, None, training), theirs)
    dx, dw, db = F.batch_norm_backward(x, x, rm, rv, np.ones(0), np.zeros(0), training)
    assert dx.shape == (0,) and dw.shape == db.shape == (0,)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("stats", [True, False])
def test_batch_norm_refuses_1d_input_as_torch(training, stats):
    x = np.arange(3.0)
    rm, rv = (np.zeros(3), np.ones(3)) if stats else (None, None)
    with pytest.raises((RuntimeError, IndexError)):
        TF.batch_norm(t(x), t(rm), t(rv), None, None, training)
    with pytest.raises(ValueError, match="input"):
        F.batch_norm(x, rm, rv, None, None, training)


@pytest.mark.parametrize("shape", [(0, 3), (0, 3, 4), (0, 3, 2, 2)])
def test_batch_norm_eval_empty_batch_without_running_stats(shape):
    x = np.ones(shape)
    theirs = TF.batch_norm(t(x), None, None, None, None, False)
    assert_same(F.batch_norm(x, None, None, None, None, False), theirs)
    w = np.ones(3)
    y, dy, (dx_t, dw_t) = autograd(lambda x_, w_: TF.batch_norm(x_, None, None, w_, None, False),
                                   [x, w])
    dx, dw, _ = F.batch_norm_backward(dy, x, None, None, w, None, False)
    assert_same(dx, dx_t)
    assert_same(dw, dw_t)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1)])
def test_batch_norm_one_value_per_channel_training(shape):
    x = np.ones(shape)
    with pytest.raises(ValueError, match="more than 1 value") as theirs:
        TF.batch_norm(t(x), None, None, None, None, True)
    with pytest.raises(ValueError, match="more than 1 value"):
        F.batch_norm(x, None, None, None, None, True)
    assert "input" in str(theirs.value)  # torch's message names the input's size


def test_instance_norm_2d_input_in_eval(data):
    """A 2-D (N, C) input: torch normalizes it by the running statistics
    (and, with use_input_stats, refuses it: one value per channel)."""
    x, w, b = data.standard_normal((5, 3)), data.standard_normal(3), data.standard_normal(3)
    rm, rv = data.standard_normal(3), data.random(3) + 0.5
    y, dy, grads = autograd(lambda x_, w_, b_: TF.instance_norm(
        x_, t(rm), t(rv), w_, b_, False), [x, w, b])
    assert_same(F.instance_norm(x, rm, rv, w, b, False), y)
    for ours, theirs in zip(F.instance_norm_backward(dy, x, rm, rv, w, b, False), grads):
        assert_same(ours, theirs)
    with pytest.raises(ValueError, match="spatial"):
        TF.instance_norm(t(x), t(rm), t(rv), None, None, True)
    with pytest.raises(ValueError, match="spatial"):
        F.instance_norm(x, rm, rv, None, None, True)


@pytest.mark.parametrize("shape", [(2, 4, 3), (1, 1, 1), (2, 4, 2, 2)])
@pytest.mark.parametrize("k", [0.0, 1.0])
def test_local_response_norm_beta_zero_backward(shape, k, data):
    """beta=0: the output is the input (base ** 0 is 1, also for a base of
    0), and torch's pow gives no gradient through the base."""
    x = data.standard_normal(shape)
    y, dy, (dx_t,) = autograd(lambda x_: TF.local_response_norm(x_, 2, 0.0, 0.0, k), [x])
    assert_same(F.local_response_norm(x, 2, 0.0, 0.0, k), y)
    assert_same(quiet(F.local_response_norm_backward, dy, x, 2, 0.0, 0.0, k)[0], dx_t)


@pytest.mark.parametrize("shape", [(0, 4, 3), (2, 0, 3), (2, 4, 0), (0, 0, 0)])
def test_empty_inputs_local_response_norm_and_batch_norm_backward(shape):
    """Fixed earlier (zero batch or channels in LRN; batch_norm's backward on
    an empty batch): the same as torch's, and quiet."""
    x = np.zeros(shape)
    assert_same(quiet(F.local_response_norm, x, 2), TF.local_response_norm(t(x), 2))
    assert quiet(F.local_response_norm_backward, x, x, 2)[0].shape == shape
    if shape[1]:  # torch's batch_norm indexes weight[0] on an empty batch (its bug at C=0)
        w, b = np.ones(shape[1]), np.zeros(shape[1])
        y, dy, grads = autograd(lambda x_, w_, b_: TF.batch_norm(x_, None, None, w_, b_, True),
                                [x, w, b])
        for ours, theirs in zip(quiet(F.batch_norm_backward, dy, x, None, None, w, b, True),
                                grads):
            assert_same(ours, theirs)

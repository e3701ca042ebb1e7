"""The public API on CuPy input: fastnorm.stats (moments, min_max, max_abs)
and fastnorm.functional's layer_norm/rms_norm (forward and backward) run on
the GPU kernels, results on the device, equal to the CPU path's.

On a machine with a CUDA GPU through CuPy; elsewhere (CI) through cudasim
(tests/cudasim), which runs the same CUDA sources on the CPU. The stand-in
refuses implicit device-to-host conversion as CuPy does, so a GPU path that
copied to the host behind the caller's back would fail here.
"""
import numpy as np
import pytest

import fastnorm.functional as F
from fastnorm import stats

from conftest import make_layout
from cudasim import cupy_for_tests

pytestmark = [pytest.mark.gpu, pytest.mark.usefixtures("cupy_installed")]

cp, _ = cupy_for_tests()  # the module the cupy_installed fixture installs
DTYPES = [np.float16, np.float32, np.float64]
RTOL = {np.float16: 2e-3, np.float32: 2e-5, np.float64: 1e-11}


def on_device(a):
    assert isinstance(a, cp.ndarray), type(a)
    return cp.asnumpy(a)


def cpu_dtype(dtype):
    """The CPU path's input for a GPU dtype: float16 is computed from float32 there."""
    return np.float32 if dtype == np.float16 else dtype


def device_layout(x, layout):
    """x on the device in a memory layout: C, F, or a strided view."""
    g = cp.asarray(make_layout(x, "C"))
    if layout == "F":
        return cp.asfortranarray(g)
    if layout == "strided":
        big = cp.zeros(tuple(2 * s for s in x.shape), x.dtype)
        big[::2, ::2] = g
        return big[::2, ::2]
    return g


# ------------------------------------------------------------------ stats ---

@pytest.mark.parametrize("layout", ["C", "F", "strided"])
@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_moments_match_the_cpu(rng, dtype, axis, layout):
    x = (rng.standard_normal((33, 7)) * 3 + 5).astype(dtype)
    x[4, 2] = np.nan
    g = device_layout(x, layout)
    for ignore_nan in (False, True):
        ours = stats.moments(g, axis=axis, ignore_nan=ignore_nan)
        ref = stats.moments(x.astype(cpu_dtype(dtype)), axis=axis, ignore_nan=ignore_nan)
        for field in ("count", "mean", "m2"):
            np.testing.assert_allclose(on_device(getattr(ours, field)), getattr(ref, field),
                                       rtol=RTOL[dtype] * 10, atol=1e-6, equal_nan=True,
                                       err_msg=field)
    # the device's Moments merge on the device
    half = stats.moments(g[:16], axis=0).merge(stats.moments(g[16:], axis=0))
    whole = stats.moments(g, axis=0)
    np.testing.assert_allclose(on_device(half.mean), on_device(whole.mean), rtol=1e-5,
                               equal_nan=True)
    assert isinstance(whole.var(), cp.ndarray)


def test_moments_weights_must_be_on_the_device(rng):
    x = rng.standard_normal((20, 3))
    w = rng.random(20)
    ours = stats.moments(cp.asarray(x), sample_weight=cp.asarray(w))
    ref = stats.moments(x, sample_weight=w)
    np.testing.assert_allclose(on_device(ours.mean), ref.mean, rtol=1e-12)
    np.testing.assert_allclose(on_device(ours.m2), ref.m2, rtol=1e-10)
    with pytest.raises(TypeError, match="sample_weight is a numpy array but X is a cupy"):
        stats.moments(cp.asarray(x), sample_weight=w)


@pytest.mark.parametrize("axis", [0, 1])
@pytest.mark.parametrize("dtype", DTYPES)
def test_min_max_and_max_abs_match_the_cpu(rng, dtype, axis):
    x = rng.standard_normal((25, 6)).astype(dtype)
    x[3, 1] = np.nan
    g = cp.asarray(x)
    for ignore_nan in (False, True):
        mn, mx = stats.min_max(g, axis=axis, ignore_nan=ignore_nan)
        ref = stats.min_max(x, axis=axis, ignore_nan=ignore_nan)
        assert mn.dtype == mx.dtype == dtype
        np.testing.assert_array_equal(on_device(mn), ref.min)
        np.testing.assert_array_equal(on_device(mx), ref.max)
        np.testing.assert_array_equal(on_device(stats.max_abs(g, axis, ignore_nan)),
                                      stats.max_abs(x, axis, ignore_nan))


# -------------------------------------------------------- layer / rms norm ---

@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("rms", [False, True])
@pytest.mark.parametrize("shape", [(4, 6, 10), (3, 2000), (5, 1)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_row_norms_match_the_cpu(rng, dtype, shape, rms, affine):
    ref_dtype = cpu_dtype(dtype)
    norm = shape[-1:]
    x = (rng.standard_normal(shape) + 2).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    w = (rng.standard_normal(norm) * 0.5 + 1).astype(dtype) if affine else None
    b = (rng.standard_normal(norm) * 0.5).astype(dtype) if affine and not rms else None
    arrays = dict(x=x, dy=dy, w=w, b=b)
    dev = {k: None if v is None else cp.asarray(v) for k, v in arrays.items()}
    cpu = {k: None if v is None else v.astype(ref_dtype) for k, v in arrays.items()}

    def forward(a):
        if rms:
            return F.rms_norm(a["x"], norm, a["w"], 1e-5, return_saved=True)
        return F.layer_norm(a["x"], norm, a["w"], a["b"], 1e-5, return_saved=True)

    def backward(a, saved):
        if rms:
            return F.rms_norm_backward(a["dy"], a["x"], norm, a["w"], 1e-5, saved=saved)
        return F.layer_norm_backward(a["dy"], a["x"], norm, a["w"], a["b"], 1e-5, saved=saved)

    (y, saved), (y_ref, saved_ref) = forward(dev), forward(cpu)
    assert y.dtype == dtype
    tol = RTOL[dtype] * (50 if dtype == np.float16 else 10)
    np.testing.assert_allclose(on_device(y).astype(np.float64), y_ref, rtol=tol, atol=tol)
    for grads in (backward(dev, saved), backward(dev, None)):  # saved, or recomputed
        for g, r in zip(grads, backward(cpu, saved_ref)):
            assert (g is None) == (r is None)
            if g is not None:
                assert g.dtype == dtype
                np.testing.assert_allclose(on_device(g).astype(np.float64), r,
                                           rtol=tol, atol=tol * max(1.0, np.abs(r).max()))


def test_row_norm_refuses_mixed_libraries(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    with pytest.raises(TypeError, match="mixed"):
        F.layer_norm(cp.asarray(x), (4,), np.ones(4, np.float32))
    _, saved = F.layer_norm(x, (4,), return_saved=True)
    with pytest.raises(TypeError, match="mixed"):
        F.layer_norm_backward(cp.asarray(x), cp.asarray(x), (4,), saved=saved)


# ------------------------------------------------ preprocessing functions ---

FUNCTIONS = [("scale", {}), ("scale", {"axis": 1, "with_std": False}), ("minmax_scale", {}),
             ("maxabs_scale", {"axis": 1}), ("robust_scale", {}),
             ("robust_scale", {"quantile_range": (10.0, 60.0), "axis": 1}),
             ("normalize", {}), ("normalize", {"norm": "l1", "axis": 0}),
             ("normalize", {"norm": "max"})]


@pytest.mark.parametrize("name, kw", FUNCTIONS, ids=[f"{n}-{k}" for n, k in FUNCTIONS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_preprocessing_functions_match_the_cpu(rng, dtype, name, kw):
    import fastnorm.preprocessing as fp
    x = (rng.standard_normal((40, 6)) * 3 + 2).astype(dtype)
    if name != "normalize":  # NaN is ignored by the statistics, kept in the output
        x[5, 1] = np.nan
    ref = getattr(fp, name)(x.astype(cpu_dtype(dtype)), **kw)
    g = cp.asarray(x)
    got = getattr(fp, name)(g, **kw)
    assert got.dtype == dtype and got is not g
    tol = 4e-3 if dtype == np.float16 else RTOL[dtype] * 10
    np.testing.assert_allclose(on_device(got).astype(np.float64), ref, rtol=tol, atol=tol,
                               equal_nan=True)
    np.testing.assert_array_equal(on_device(g), x)  # the input untouched
    out = cp.empty_like(g)
    assert getattr(fp, name)(g, **kw, out=out) is out
    np.testing.assert_array_equal(on_device(out), on_device(got))
    in_place = getattr(fp, name)(g, **kw, copy=False)
    assert in_place is g
    np.testing.assert_allclose(on_device(g).astype(np.float64), ref, rtol=tol, atol=tol,
                               equal_nan=True)


def test_preprocessing_refuses_a_host_out_for_device_input(rng):
    import fastnorm.preprocessing as fp
    g = cp.asarray(rng.standard_normal((5, 3)))
    with pytest.raises(TypeError, match="out must be a CuPy array"):
        fp.scale(g, out=np.empty((5, 3)))
    with pytest.raises(ValueError, match="infinity"):
        fp.minmax_scale(cp.asarray(np.array([[1.0], [np.inf]])))


TRANSFORMERS = [("StandardScaler", {}), ("StandardScaler", {"with_mean": False}),
                ("MinMaxScaler", {"feature_range": (-2, 3), "clip": True}),
                ("MaxAbsScaler", {}), ("RobustScaler", {"quantile_range": (10.0, 80.0)}),
                ("Normalizer", {"norm": "l1"})]


@pytest.mark.parametrize("name, params", TRANSFORMERS,
                         ids=[f"{n}-{p}" for n, p in TRANSFORMERS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_transformers_fit_and_transform_on_the_device(rng, dtype, name, params):
    import pickle

    import fastnorm.preprocessing as fp
    x = (rng.standard_normal((60, 5)) * 3 + 2).astype(dtype)
    if name != "Normalizer":
        x[7, 2] = np.nan
    g = cp.asarray(x)
    ours = getattr(fp, name)(**params).fit(g)
    ref = getattr(fp, name)(**params).fit(x.astype(cpu_dtype(dtype)))
    tol = 4e-3 if dtype == np.float16 else RTOL[dtype] * 10
    for attr in ("mean_", "var_", "scale_", "data_min_", "data_max_", "max_abs_", "center_"):
        value = getattr(ours, attr, None)
        if value is not None:  # fitted attributes live on the device
            np.testing.assert_allclose(on_device(value).astype(np.float64),
                                       getattr(ref, attr), rtol=tol, atol=tol, err_msg=attr)
    assert ours.n_features_in_ == 5
    y = ours.transform(g)
    assert y.dtype == dtype and y is not g
    np.testing.assert_allclose(on_device(y).astype(np.float64),
                               ref.transform(x.astype(cpu_dtype(dtype))), rtol=tol * 10,
                               atol=tol * 10, equal_nan=True)
    np.testing.assert_array_equal(on_device(g), x)
    if hasattr(ours, "inverse_transform"):
        back = ours.inverse_transform(y)
        np.testing.assert_allclose(on_device(back).astype(np.float64), x, rtol=tol * 100,
                                   atol=tol * 100, equal_nan=True)
    again = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(on_device(again.transform(g)), on_device(y))
    # fitted on the device, a host array is refused (and the reverse)
    if name != "Normalizer":  # (stateless)
        with pytest.raises(TypeError, match="fitted on cupy arrays"):
            ours.transform(x)
        with pytest.raises(TypeError, match="fitted on numpy arrays"):
            ref.transform(cp.asarray(x.astype(cpu_dtype(dtype))))


def test_standard_scaler_partial_fit_merges_on_the_device(rng):
    import fastnorm.preprocessing as fp
    x = rng.standard_normal((90, 4)) * 2 + 7
    w = rng.random(90)
    scaler = fp.StandardScaler()
    for part in (slice(0, 30), slice(30, 90)):
        scaler.partial_fit(cp.asarray(x[part]), sample_weight=cp.asarray(w[part]))
    ref = fp.StandardScaler().fit(x, sample_weight=w)
    np.testing.assert_allclose(on_device(scaler.mean_), ref.mean_, rtol=1e-12)
    np.testing.assert_allclose(on_device(scaler.var_), ref.var_, rtol=1e-10)
    assert scaler.n_samples_seen_ == pytest.approx(ref.n_samples_seen_)
    with pytest.raises(ValueError, match="features"):
        scaler.partial_fit(cp.asarray(x[:, :3]))


# ---------------------------------------------------------- channel norms ---

CHANNEL_SHAPES = [(4, 6, 5, 3), (3, 4, 40), (5, 6)]


def _channel_case(rng, op, shape, dtype, layout):
    """(forward, backward) of `op` as functions of a dict of arrays, and that
    dict's NumPy values (C channels, weights, running statistics)."""
    C = shape[-1] if layout == "NHWC" and len(shape) > 2 else shape[1]
    arrays = dict(x=(rng.standard_normal(shape) * 2 + 1).astype(dtype),
                  dy=rng.standard_normal(shape).astype(dtype),
                  w=(rng.standard_normal(C) * 0.5 + 1).astype(dtype),
                  b=(rng.standard_normal(C) * 0.5).astype(dtype),
                  rm=np.zeros(C, dtype), rv=np.ones(C, dtype))
    G = 2 if C % 2 == 0 else 1
    if op == "batch_norm":
        def fwd(a):
            return F.batch_norm(a["x"], a["rm"], a["rv"], a["w"], a["b"], training=True,
                                layout=layout, return_saved=True)

        def bwd(a, saved):
            return F.batch_norm_backward(a["dy"], a["x"], a["rm"], a["rv"], a["w"], a["b"],
                                         training=True, layout=layout, saved=saved)
    elif op == "group_norm":
        def fwd(a):
            return F.group_norm(a["x"], G, a["w"], a["b"], layout=layout, return_saved=True)

        def bwd(a, saved):
            return F.group_norm_backward(a["dy"], a["x"], G, a["w"], a["b"], layout=layout,
                                         saved=saved)
    else:  # instance_norm
        def fwd(a):
            return F.instance_norm(a["x"], a["rm"], a["rv"], a["w"], a["b"], layout=layout,
                                   return_saved=True)

        def bwd(a, saved):
            return F.instance_norm_backward(a["dy"], a["x"], a["rm"], a["rv"], a["w"], a["b"],
                                            layout=layout, saved=saved)
    return fwd, bwd, arrays


# instance_norm takes 3-D to 5-D input only
CHANNEL_CASES = [(op, shape) for op in ("batch_norm", "group_norm", "instance_norm")
                 for shape in CHANNEL_SHAPES if op != "instance_norm" or len(shape) > 2]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("op, shape", CHANNEL_CASES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_channel_norms_match_the_cpu(rng, dtype, op, shape, layout):
    fwd, bwd, arrays = _channel_case(rng, op, shape, dtype, layout)
    dev = {k: cp.asarray(v) for k, v in arrays.items()}
    cpu = {k: v.astype(cpu_dtype(dtype)) for k, v in arrays.items()}
    (y, saved), (y_ref, saved_ref) = fwd(dev), fwd(cpu)
    assert y.dtype == dtype
    tol = 1e-2 if dtype == np.float16 else RTOL[dtype] * 10
    np.testing.assert_allclose(on_device(y).astype(np.float64), y_ref, rtol=tol, atol=tol)
    for name in ("rm", "rv"):  # the running statistics, updated in place on the device
        np.testing.assert_allclose(on_device(dev[name]).astype(np.float64), cpu[name],
                                   rtol=tol, atol=tol)
    for grads in (bwd(dev, saved), bwd(dev, None)):
        for g, r in zip(grads, bwd(cpu, saved_ref)):
            np.testing.assert_allclose(on_device(g).astype(np.float64), r, rtol=tol * 10,
                                       atol=tol * 10 * max(1.0, np.abs(r).max()))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_local_response_norm_and_channel_moments_match_the_cpu(rng, dtype):
    x = rng.standard_normal((3, 7, 5)).astype(dtype)
    dy = rng.standard_normal((3, 7, 5)).astype(dtype)
    tol = RTOL[dtype] * 10
    np.testing.assert_allclose(on_device(F.local_response_norm(cp.asarray(x), 3)),
                               F.local_response_norm(x, 3), rtol=tol, atol=tol)
    (g,), (r,) = (F.local_response_norm_backward(cp.asarray(dy), cp.asarray(x), 3),
                  F.local_response_norm_backward(dy, x, 3))
    np.testing.assert_allclose(on_device(g), r, rtol=tol, atol=tol)
    ours, ref = stats.channel_moments(cp.asarray(x)), stats.channel_moments(x)
    np.testing.assert_allclose(on_device(ours.mean), ref.mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(on_device(ours.m2), ref.m2, rtol=tol, atol=tol)


def test_channel_norm_parameters_must_share_the_input_library(rng):
    x = cp.asarray(rng.standard_normal((4, 3, 5)))
    with pytest.raises(TypeError, match="mixed"):
        F.batch_norm(x, np.zeros(3), np.ones(3), training=True)
    with pytest.raises(TypeError, match="mixed"):
        F.group_norm(x, 3, weight=np.ones(3))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_switchable_norm_matches_the_cpu(rng, layout, training):
    shape = (4, 5, 6) if layout == "NCHW" else (4, 6, 5)
    arrays = dict(x=rng.standard_normal(shape) + 1, dy=rng.standard_normal(shape),
                  w=rng.random(5) + 0.5, b=rng.standard_normal(5), mw=rng.standard_normal(3),
                  vw=rng.standard_normal(3), rm=rng.standard_normal(5), rv=rng.random(5) + 0.5)
    dev = {k: cp.asarray(v) for k, v in arrays.items()}
    cpu = {k: v.copy() for k, v in arrays.items()}

    def both(a):
        args = (a["x"], a["w"], a["b"], a["mw"], a["vw"], a["rm"], a["rv"], training)
        y = F.switchable_norm(*args, layout=layout)
        grads = F.switchable_norm_backward(a["dy"], *args, layout=layout)
        return (y,) + grads

    for g, r in zip(both(dev), both(cpu)):
        np.testing.assert_allclose(on_device(g), r, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(on_device(dev["rm"]), cpu["rm"], rtol=1e-12)


@pytest.mark.parametrize("p", [2.0, 1.0, 3.0, 0.5, float("inf")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_normalize_matches_the_cpu(rng, dtype, p):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    if dtype != np.float16:  # (its gradient, dy / eps, overflows float16)
        x[0, :, 0] = 0.0  # a zero norm: the eps clamp
    dy = rng.standard_normal((3, 4, 5)).astype(dtype)
    c = cpu_dtype(dtype)
    tol = 4e-3 if dtype == np.float16 else RTOL[dtype] * 100
    y = F.normalize(cp.asarray(x), p, 1)
    assert y.dtype == dtype
    np.testing.assert_allclose(on_device(y).astype(np.float64), F.normalize(x.astype(c), p, 1),
                               rtol=tol, atol=tol)
    (g,), (r,) = (F.normalize_backward(cp.asarray(dy), cp.asarray(x), p, 1),
                  F.normalize_backward(dy.astype(c), x.astype(c), p, 1))
    np.testing.assert_allclose(on_device(g).astype(np.float64), r, rtol=tol * 10,
                               atol=tol * 10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_weight_and_spectral_norm_match_the_cpu(rng, dtype):
    v = rng.standard_normal((4, 3, 2)).astype(dtype)
    g = (rng.random((4, 1, 1)) + 0.5).astype(dtype)
    u = rng.standard_normal(4).astype(dtype)
    dy = rng.standard_normal((4, 3, 2)).astype(dtype)
    tol = RTOL[dtype] * 10
    pairs = [(F.weight_norm(cp.asarray(v), cp.asarray(g)), F.weight_norm(v, g)),
             (F.weight_norm_backward(cp.asarray(dy), cp.asarray(v), cp.asarray(g)),
              F.weight_norm_backward(dy, v, g)),
             (F.spectral_norm(cp.asarray(v), cp.asarray(u), 2), F.spectral_norm(v, u, 2)),
             (F.spectral_norm_backward(cp.asarray(dy), cp.asarray(v), cp.asarray(u), 2),
              F.spectral_norm_backward(dy, v, u, 2))]
    for ours, ref in pairs:
        ours, ref = (ours, ref) if isinstance(ref, tuple) else ((ours,), (ref,))
        for a, b in zip(ours, ref, strict=True):
            np.testing.assert_allclose(on_device(a), b, rtol=tol, atol=tol)
    with pytest.raises(TypeError, match="mixed"):
        F.weight_norm(cp.asarray(v), g)


# ---------------------------------------------------------------- layers ---

@pytest.mark.parametrize("make, shape", [
    (lambda L: L.BatchNorm(3, momentum=None), (6, 3, 4)),
    (lambda L: L.BatchNorm(3, layout="NHWC"), (2, 4, 4, 3)),
    (lambda L: L.InstanceNorm(3, affine=True, track_running_stats=True), (2, 3, 5)),
    (lambda L: L.GroupNorm(2, 4), (3, 4, 5)), (lambda L: L.LayerNorm([4, 5]), (3, 4, 5)),
    (lambda L: L.RMSNorm(5), (3, 4, 5)), (lambda L: L.LocalResponseNorm(3), (2, 5, 4)),
    (lambda L: L.SwitchableNorm(3), (4, 3, 5))],
    ids=["batch_cma", "batch_nhwc", "instance", "group", "layer", "rms", "lrn", "switchable"])
def test_layers_moved_to_the_gpu_train_as_on_the_cpu(rng, make, shape):
    import fastnorm.layers as L
    ours, ref = make(L).to("cuda"), make(L)
    assert all(isinstance(v, cp.ndarray) for _, v in ours.named_parameters())
    for step in range(2):
        x = rng.standard_normal(shape).astype(np.float32) + step
        dy = rng.standard_normal(shape).astype(np.float32)
        np.testing.assert_allclose(on_device(ours(cp.asarray(x))), ref(x), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(on_device(ours.backward(cp.asarray(dy))), ref.backward(dy),
                                   rtol=1e-3, atol=1e-3)
        for name, g in ref.grads.items():
            np.testing.assert_allclose(on_device(ours.grads[name]), g, rtol=1e-3, atol=1e-3)
    state, ref_state = ours.state_dict(), ref.state_dict()
    assert list(state) == list(ref_state)
    for k in state:
        got = state[k] if isinstance(state[k], np.ndarray) else on_device(state[k])
        np.testing.assert_allclose(got, ref_state[k], rtol=1e-4, atol=1e-5, err_msg=k)
    if ref.state_dict():  # (a layer without state takes either side)
        with pytest.raises(TypeError, match=r"move the layer with .to\('cpu'\)"):
            ours(rng.standard_normal(shape).astype(np.float32))
        with pytest.raises(TypeError, match=r"move the layer with .to\('cuda'\)"):
            ref(cp.asarray(rng.standard_normal(shape).astype(np.float32)))
    back = ours.to("cpu")  # and back: NumPy again, loads the CPU layer's state
    assert all(isinstance(v, np.ndarray) for _, v in back.named_parameters())
    back.load_state_dict(ref_state)


def test_a_transformer_fitted_on_one_gpu_refuses_another(rng, monkeypatch):
    import fastnorm.preprocessing as fp
    scaler = fp.StandardScaler().fit(cp.asarray(rng.standard_normal((6, 2))))
    if getattr(cp, "SIMULATED", False):  # one device: X claims to live on a second
        X = cp.asarray(rng.standard_normal((3, 2)))
        second = type("Device", (), {"id": 1})()
        monkeypatch.setattr(cp.ndarray, "device", property(
            lambda self: second if self is X else cp.cuda.Device(0)))
    elif cp.cuda.runtime.getDeviceCount() > 1:
        with cp.cuda.Device(1):
            X = cp.asarray(rng.standard_normal((3, 2)))
    else:
        pytest.skip("needs a second GPU")
    with pytest.raises(TypeError, match="fitted on GPU 0 but X is on GPU 1"):
        scaler.transform(X)


def test_arrays_of_one_call_on_different_gpus_are_refused(rng, monkeypatch):
    x = cp.asarray(rng.standard_normal((3, 4)).astype(np.float32))
    w = cp.ones(4, np.float32)
    if getattr(cp, "SIMULATED", False):  # one device: w claims to live on a second
        second = type("Device", (), {"id": 1})()
        monkeypatch.setattr(cp.ndarray, "device", property(
            lambda self: second if self is w else cp.cuda.Device(0)))
    elif cp.cuda.runtime.getDeviceCount() > 1:
        with cp.cuda.Device(1):
            w = cp.ones(4, np.float32)
    else:
        pytest.skip("needs a second GPU")
    with pytest.raises(TypeError, match="different GPUs"):
        F.layer_norm(x, (4,), w)


# ------------------------------------------------------------- out= buffers ---

@pytest.mark.parametrize("dtype", [np.float16, np.float32])
@pytest.mark.parametrize("op", ["layer_norm", "rms_norm", "batch_norm", "group_norm",
                                "local_response_norm", "normalize"])
def test_out_buffers_on_the_device(rng, dtype, op):
    """out= takes a CuPy array of the result's shape and dtype, written on the
    device (the allocating call's result) and returned; host buffers are
    refused. Gradient buffers likewise."""
    shape = (3, 4, 6)
    x = cp.asarray(rng.standard_normal(shape).astype(dtype))
    dy = cp.asarray(rng.standard_normal(shape).astype(dtype))
    w = cp.asarray(rng.standard_normal(6 if op in ("layer_norm", "rms_norm") else 4)
                   .astype(dtype))
    fwd, bwd, n_grads = {
        "layer_norm": (lambda **kw: F.layer_norm(x, 6, w, **kw),
                       lambda **kw: F.layer_norm_backward(dy, x, 6, w, **kw), 3),
        "rms_norm": (lambda **kw: F.rms_norm(x, 6, w, **kw),
                     lambda **kw: F.rms_norm_backward(dy, x, 6, w, **kw), 2),
        "batch_norm": (lambda **kw: F.batch_norm(x, None, None, w, None, True, **kw),
                       lambda **kw: F.batch_norm_backward(dy, x, None, None, w, None, True,
                                                          **kw), 3),
        "group_norm": (lambda **kw: F.group_norm(x, 2, w, **kw),
                       lambda **kw: F.group_norm_backward(dy, x, 2, w, **kw), 3),
        "local_response_norm": (lambda **kw: F.local_response_norm(x, 3, **kw),
                                lambda **kw: F.local_response_norm_backward(dy, x, 3, **kw), 1),
        "normalize": (lambda **kw: F.normalize(x, **kw),
                      lambda **kw: F.normalize_backward(dy, x, **kw), 1),
    }[op]
    out = cp.full(shape, np.nan, dtype)
    assert fwd(out=out) is out
    np.testing.assert_array_equal(on_device(out), on_device(fwd()))
    with pytest.raises(TypeError, match="out must be a CuPy array"):
        fwd(out=np.empty(shape, dtype))
    with pytest.raises(ValueError, match="out shares memory with input"):
        fwd(out=x)
    bufs = (cp.full(shape, np.nan, dtype),) + (None,) * (n_grads - 1)
    got, ref = bwd(out=bufs), bwd()
    assert got[0] is bufs[0]
    np.testing.assert_array_equal(on_device(got[0]), on_device(ref[0]))
    with pytest.raises(TypeError, match=r"out\[0\] \(grad_input\) must be a CuPy array"):
        bwd(out=(np.empty(shape, dtype),) + (None,) * (n_grads - 1))

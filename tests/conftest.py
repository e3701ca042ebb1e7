"""Shared fixtures and helpers for fastnorm's tests.

Random data: every test that takes the `rng` fixture gets a generator seeded
from a base seed (FASTNORM_TEST_SEED, default 20240611) and the test's node
id, so a run is reproducible and the seed is printed with a failure.
"""
import os
import subprocess
import sys
import tempfile
import warnings
import zlib
from pathlib import Path

# scikit-learn's estimator checks run their array-API check (with NumPy) only
# when SciPy was imported with this set
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np
import pytest
from hypothesis import configuration as _hypothesis_configuration

# Keep Hypothesis' cache out of the source tree.
_hypothesis_configuration.set_hypothesis_home_dir(
    Path(tempfile.gettempdir()) / "fastnorm-tests-hypothesis")

BASE_SEED = int(os.environ.get("FASTNORM_TEST_SEED", "20240611"))

LAYOUTS = ("C", "F", "strided")

# Tolerances (see `assert_close`).
RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-6}
ATOL_REL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 4 * np.finfo(np.float32).eps}
# Multiple of eps(dtype) * magnitude * condition number allowed (see below).
COND_ULPS = 4


def pytest_report_header(config):
    return f"fastnorm test seed: FASTNORM_TEST_SEED={BASE_SEED}"


@pytest.fixture
def rng(request):
    seed = (BASE_SEED + zlib.crc32(request.node.nodeid.encode())) % 2**32
    print(f"rng seed for {request.node.nodeid}: {seed} (FASTNORM_TEST_SEED={BASE_SEED})")
    return np.random.default_rng(seed)


def assert_close(ours, ref, dtype=None, cond=1.0, err_msg=""):
    """Assert `ours` equals the reference `ref` to the precision of `dtype`.

    float64: rtol 1e-12 and atol 1e-12 * max(1, max|ref|).
    float32: rtol 1e-6 and atol 4 float32 ulps (4 * eps32) of max(1, max|ref|).
        fastnorm accumulates float32 statistics in float64 while the
        references (scikit-learn on float32 data) compute them in float32, so
        the two legitimately differ by a few float32 ulps of the output's
        magnitude; an element near zero cannot meet a pure relative bound.

    cond: the condition number of the statistics the output depends on (e.g.
        |mean| / std for standardization, |min| / (max - min) for min-max
        scaling). Rounding a statistic to the working dtype (which both
        scikit-learn and fastnorm do, in different ways) perturbs the output
        by about eps * magnitude * cond, so the absolute tolerance is raised
        to COND_ULPS * eps * magnitude * cond where that is larger. With
        well-conditioned data (cond ~ 1) this changes nothing. A scalar, or
        an array that broadcasts against `ref` (one value per feature), so an
        ill-conditioned feature does not loosen the check of the others.

    NaN and infinities must sit at the same positions in both.
    """
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    dtype = np.dtype(dtype if dtype is not None else ref.dtype)
    if dtype.kind != "f" or dtype not in RTOL:
        dtype = np.dtype(np.float64)
    assert ours.shape == ref.shape, f"shape {ours.shape} != {ref.shape}. {err_msg}"
    finite = ref[np.isfinite(ref)]
    mag = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    eps = float(np.finfo(dtype).eps)
    cond = np.maximum(1.0, np.nan_to_num(np.asarray(cond, dtype=np.float64), nan=1.0))
    atol = np.maximum(ATOL_REL[dtype] * mag, COND_ULPS * eps * mag * cond)
    atol = np.broadcast_to(atol, ref.shape)
    a, b = ours.astype(np.float64), ref.astype(np.float64)
    ok = np.isclose(a, b, rtol=RTOL[dtype], atol=atol, equal_nan=True)
    ok &= np.isnan(a) == np.isnan(b)
    if not ok.all():
        bad = np.argwhere(~ok) if ok.ndim else np.zeros((1, 0), int)
        idx = tuple(bad[0])
        with np.errstate(all="ignore"):
            err = np.where(ok, 0.0, np.abs(a - b))
        raise AssertionError(
            f"{err_msg}: {np.count_nonzero(~ok)} / {ok.size} elements differ "
            f"(dtype={dtype}, rtol={RTOL[dtype]:g}); first at {idx}: "
            f"ours={a[idx]!r}, ref={b[idx]!r}, atol there={atol[idx]:.3g}; "
            f"max abs difference {np.nanmax(err):.3g}\nours={a!r}\nref={b!r}")


def make_layout(X, layout):
    """A fresh array with X's values (and dtype) in the given memory layout.

    'C' and 'F' are contiguous copies; 'strided' is a non-contiguous view
    X_big[::2, ::3] into a larger buffer whose other elements hold junk
    (so a kernel that ignored the strides would read wrong values).
    """
    X = np.asarray(X)
    if layout == "C":
        return np.array(X, order="C", copy=True)
    if layout == "F":
        return np.array(X, order="F", copy=True)
    if layout == "strided":
        steps = (2, 3)[: X.ndim] if X.ndim == 2 else (2,)
        big_shape = tuple(s * k for s, k in zip(X.shape, steps))
        big = np.full(big_shape, 777, dtype=X.dtype)
        view = big[tuple(slice(None, None, k) for k in steps)]
        view[...] = X
        assert view.shape == X.shape
        if view.size > 1:
            assert not view.flags.c_contiguous and not view.flags.f_contiguous
        return view
    raise ValueError(layout)


def random_data(rng, shape, dtype, loc=1.0, scale=3.0):
    """Random test data: N(loc, scale) for float dtypes, small integers otherwise."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (loc + scale * rng.standard_normal(shape)).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    return rng.integers(-20, 21, size=shape).astype(dtype)


def condition(name, kw, X, axis, work_dtype):
    """Condition number, per feature (axis=0) or sample (axis=1), of the
    statistics the scaling function `name` computes on X (see assert_close):
    how much rounding a statistic to `work_dtype` (the dtype the result is
    computed in) is amplified in the output. Shaped to broadcast against the
    2-D output (a scalar for a 1-D X scaled along axis 0)."""
    X = np.asarray(X, dtype=np.float64)
    ndim = X.ndim
    if ndim == 1:
        X, axis = X[:, None], 0 if axis == 0 else 1
    if X.size == 0 or name not in ("scale", "minmax_scale", "robust_scale"):
        return 1.0  # normalize, maxabs_scale: no shift, no cancellation
    thresh = 10 * np.finfo(work_dtype).eps
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if name == "scale":
            if not kw.get("with_mean", True):
                return 1.0
            mean = np.abs(np.nanmean(X, axis=axis))
            std = np.nanstd(X, axis=axis) if kw.get("with_std", True) else np.ones_like(mean)
            c = mean / np.where(std < thresh, 1.0, std)
        elif name == "minmax_scale":
            mn, mx = np.nanmin(X, axis=axis), np.nanmax(X, axis=axis)
            c = np.maximum(np.abs(mn), np.abs(mx)) / np.where(mx - mn < thresh, 1.0, mx - mn)
        else:  # robust_scale
            lo, hi = kw.get("quantile_range", (25.0, 75.0))
            q = np.nanpercentile(X, [lo, 50, hi], axis=axis)
            iqr = q[2] - q[0] if kw.get("with_scaling", True) else np.ones_like(q[0])
            # scikit-learn's quantiles are float64, so is its zero-scale rule
            c = np.abs(q).max(axis=0) / np.where(iqr < 10 * np.finfo(np.float64).eps, 1.0, iqr)
    c = np.where(np.isfinite(c), np.maximum(c, 1.0), 1.0)
    if ndim == 1:
        return float(c[0]) if axis == 0 else c
    return c[None, :] if axis == 0 else c[:, None]


def run_with_baseline_kernels(code):
    """Run `code` in a fresh interpreter on the portable (baseline) kernel
    build; it must print "ok" (and nothing else)."""
    env = dict(os.environ, FASTNORM_KERNELS="baseline")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


@pytest.fixture(scope="module")
def cupy_installed():
    """The GPU tests' `cupy`: CuPy where it finds a GPU, else cudasim's
    stand-in, installed as sys.modules["cupy"] for the module's tests (the
    GPU path imports cupy lazily). Yields the module."""
    import contextlib

    from cudasim import cupy_for_tests, installed
    cp, simulated = cupy_for_tests()
    with installed(cp) if simulated else contextlib.nullcontext():
        yield cp

"""Thread count, determinism across thread counts, configuration, kernel builds."""
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import sklearn.preprocessing as skp
from threadpoolctl import threadpool_limits

import fastnorm
from conftest import assert_close, random_data
from fastnorm import _config, _cpu, preprocessing as fnp, stats
from fastnorm._config import SMALL_INPUT_BYTES, effective_n_threads

# scikit-learn's scale warns about its own float32 precision on some data
pytestmark = pytest.mark.filterwarnings("ignore:Numerical issues:UserWarning")

BIG = 1 << 30  # bytes: far above the small-input threshold


@pytest.fixture(autouse=True)
def _default_config():
    """Every test starts and ends with the default configuration."""
    fastnorm.set_config(backend="auto")
    _config._config()["n_threads"] = None
    yield
    fastnorm.set_config(backend="auto")
    _config._config()["n_threads"] = None


needs_2_cpus = pytest.mark.skipif(_config.available_cpus() < 2,
                                  reason="needs at least 2 CPUs to compare thread counts")


# -------------------------------------------------- bitwise determinism ---

def _results(X, axis, w):
    """Every statistic and transform of X along axis, as a dict of arrays."""
    out = {}
    for ignore_nan in (False, True):
        m = stats.moments(X, axis=axis, ignore_nan=ignore_nan)
        out[f"moments{ignore_nan}"] = np.stack([m.count, m.mean, m.m2])
        out[f"min_max{ignore_nan}"] = np.stack(stats.min_max(X, axis=axis, ignore_nan=ignore_nan))
        out[f"quantiles{ignore_nan}"] = stats.quantiles(X, [0.1, 0.5, 0.9], axis=axis,
                                                        ignore_nan=ignore_nan)
    m = stats.moments(X, axis=axis, sample_weight=w, ignore_nan=True)
    out["moments_w"] = np.stack([m.count, m.mean, m.m2])
    out["max_abs"] = stats.max_abs(X, axis=axis, ignore_nan=True)
    out["scale"] = fnp.scale(X, axis=axis)
    out["minmax_scale"] = fnp.minmax_scale(X, axis=axis, feature_range=(-1, 2))
    out["maxabs_scale"] = fnp.maxabs_scale(X, axis=axis)
    out["robust_scale"] = fnp.robust_scale(X, axis=axis)
    if not np.isnan(X).any():
        for norm in ("l1", "l2", "max"):
            out[f"normalize_{norm}"] = np.concatenate(
                [a.ravel() for a in fnp.normalize(X, norm=norm, axis=axis, return_norm=True)])
    return out


CASES = [
    # (shape, dtype, axis, order, with NaN): many rows -> many row blocks in
    # the column reductions; axis=1 with many rows -> the row kernels
    ((100_000, 7), np.float64, 0, "C", False),
    ((100_000, 7), np.float32, 0, "C", False),
    ((50_000, 7), np.float64, 0, "C", True),
    ((50_000, 7), np.float32, 0, "F", False),   # F: reduced by the row kernel
    ((50_000, 7), np.float64, 1, "C", False),   # row reduction, 50k rows
    ((50_000, 7), np.float32, 1, "C", True),
    ((7, 50_000), np.float64, 1, "C", False),   # few long rows
    ((7, 50_000), np.float64, 0, "F", False),   # F: reduced by the column kernel
]


@needs_2_cpus
@pytest.mark.parametrize("shape,dtype,axis,order,nan", CASES,
                         ids=[f"{s[0]}x{s[1]}-{np.dtype(d).name}-axis{a}-{o}{'-nan' if n else ''}"
                              for s, d, a, o, n in CASES])
def test_bitwise_identical_across_thread_counts(shape, dtype, axis, order, nan, rng):
    X = random_data(rng, shape, dtype, loc=5.0)
    if nan:
        X[rng.random(shape) < 0.01] = np.nan
    X = np.asarray(X, order=order)
    assert X.nbytes > SMALL_INPUT_BYTES
    w = rng.random(shape[axis])
    with fastnorm.config_context(n_threads=1):
        assert effective_n_threads(X.nbytes) == 1
        ref = _results(X, axis, w)
    for n in (2, 3):
        with fastnorm.config_context(n_threads=n):
            assert effective_n_threads(X.nbytes) == n
            got = _results(X, axis, w)
        for key in ref:
            assert got[key].dtype == ref[key].dtype, key
            assert np.array_equal(got[key], ref[key], equal_nan=True), \
                f"{key} differs between n_threads=1 and n_threads={n}"
    # and the single-threaded results are right
    X64 = X.astype(np.float64)
    assert_close(ref["momentsTrue"][1], np.nanmean(X64, axis=axis))
    np.testing.assert_array_equal(ref["min_maxTrue"][0],
                                  np.nanmin(X, axis=axis).astype(ref["min_maxTrue"].dtype))
    np.testing.assert_array_equal(ref["min_maxTrue"][1],
                                  np.nanmax(X, axis=axis).astype(ref["min_maxTrue"].dtype))


@needs_2_cpus
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_multithreaded_results_match_references(dtype, rng):
    # The determinism test above would pass if every thread count were
    # equally wrong; check the 2-thread results against the references too.
    X = random_data(rng, (60_000, 5), dtype, loc=2.0)
    with fastnorm.config_context(n_threads=2):
        for axis in (0, 1):
            r = stats.min_max(X, axis=axis)
            np.testing.assert_array_equal(r.min, X.min(axis=axis))
            np.testing.assert_array_equal(r.max, X.max(axis=axis))
            m = stats.moments(X, axis=axis)
            assert_close(m.mean, X.astype(np.float64).mean(axis=axis))
            assert_close(m.var(), X.astype(np.float64).var(axis=axis))
            for name in ("scale", "minmax_scale", "maxabs_scale", "normalize"):
                got = getattr(fnp, name)(X, axis=axis)
                expected = getattr(skp, name)(X.astype(np.float64), axis=axis)
                assert_close(got, expected, dtype, cond=10.0, err_msg=name)


# ------------------------------------------------- effective_n_threads ---

def test_small_inputs_run_on_one_thread():
    with fastnorm.config_context(n_threads=2):
        assert effective_n_threads(0) == 1
        assert effective_n_threads(SMALL_INPUT_BYTES - 1) == 1
        assert effective_n_threads(SMALL_INPUT_BYTES) == 2
        assert effective_n_threads(BIG) == 2
        assert effective_n_threads(None) == 2
    assert effective_n_threads(SMALL_INPUT_BYTES - 1) == 1


def test_default_follows_openmp_capped_by_cpus():
    from fastnorm._ext import _openmp
    assert effective_n_threads(BIG) == max(1, min(_openmp.max_threads(),
                                                  _config.available_cpus()))


@needs_2_cpus
def test_threadpool_limits_applies_to_fastnorm():
    # raise to 2 first so the test does not depend on the environment's
    # OMP_NUM_THREADS, then limit to 1 inside
    with threadpool_limits(limits=2, user_api="openmp"):
        assert effective_n_threads(BIG) == 2
        with threadpool_limits(limits=1):
            assert effective_n_threads(BIG) == 1
            # an explicit n_threads still wins
            with fastnorm.config_context(n_threads=2):
                assert effective_n_threads(BIG) == 2
        assert effective_n_threads(BIG) == 2
        with threadpool_limits(limits=1, user_api="openmp"):
            assert effective_n_threads(BIG) == 1
        assert effective_n_threads(BIG) == 2


def _run_python(code, **env):
    full_env = dict(os.environ)
    full_env.update(env)
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


THREADS_CODE = """
    import fastnorm
    from fastnorm._config import effective_n_threads
    print(effective_n_threads(1 << 30))
    with fastnorm.config_context(n_threads=2):
        print(effective_n_threads(1 << 30))
"""


@needs_2_cpus
def test_omp_num_threads_environment_variable():
    assert _run_python(THREADS_CODE, OMP_NUM_THREADS="1").split() == ["1", "2"]
    assert _run_python(THREADS_CODE, OMP_NUM_THREADS="2").split() == ["2", "2"]
    # more than the CPUs this process may use: capped
    cpus = _config.available_cpus()
    out = _run_python(THREADS_CODE, OMP_NUM_THREADS=str(cpus + 5)).split()
    assert out == [str(cpus), "2"]


# ----------------------------------------------------------- configuration ---

def test_get_config_defaults_and_copy():
    cfg = fastnorm.get_config()
    assert cfg == {"backend": "auto", "n_threads": None}
    cfg["n_threads"] = 5
    assert fastnorm.get_config()["n_threads"] is None


def test_set_config():
    fastnorm.set_config(n_threads=3)
    assert fastnorm.get_config() == {"backend": "auto", "n_threads": 3}
    assert effective_n_threads(BIG) == 3
    fastnorm.set_config(backend="cpu")  # None leaves n_threads as it is
    assert fastnorm.get_config() == {"backend": "cpu", "n_threads": 3}
    fastnorm.set_config(n_threads=np.int64(2))
    assert fastnorm.get_config()["n_threads"] == 2
    assert type(fastnorm.get_config()["n_threads"]) is int


def test_config_context_nesting_and_restoring():
    with fastnorm.config_context(n_threads=1):
        assert fastnorm.get_config() == {"backend": "auto", "n_threads": 1}
        with fastnorm.config_context(n_threads=2, backend="cpu"):
            assert fastnorm.get_config() == {"backend": "cpu", "n_threads": 2}
            with fastnorm.config_context(backend="auto"):
                assert fastnorm.get_config() == {"backend": "auto", "n_threads": 2}
            assert fastnorm.get_config() == {"backend": "cpu", "n_threads": 2}
        assert fastnorm.get_config() == {"backend": "auto", "n_threads": 1}
        fastnorm.set_config(n_threads=4)  # undone when the context exits
    assert fastnorm.get_config() == {"backend": "auto", "n_threads": None}


def test_config_context_restores_after_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with fastnorm.config_context(n_threads=2, backend="cpu"):
            raise RuntimeError("boom")
    assert fastnorm.get_config() == {"backend": "auto", "n_threads": None}


def test_config_context_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        with fastnorm.config_context("cpu"):
            pass


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, False, "2", 2.0, np.float64(2)])
def test_bad_n_threads(bad):
    with pytest.raises(ValueError, match="n_threads"):
        fastnorm.set_config(n_threads=bad)
    with pytest.raises(ValueError, match="n_threads"):
        with fastnorm.config_context(n_threads=bad):
            pass
    assert fastnorm.get_config() == {"backend": "auto", "n_threads": None}


@pytest.mark.parametrize("bad", ["tpu", "GPU", "", 1])
def test_bad_backend(bad):
    with pytest.raises(ValueError, match="backend"):
        fastnorm.set_config(backend=bad)
    with pytest.raises(ValueError, match="backend"):
        with fastnorm.config_context(backend=bad):
            pass
    # a bad value together with a good one changes nothing
    with pytest.raises(ValueError, match="backend"):
        fastnorm.set_config(n_threads=2, backend=bad)
    assert fastnorm.get_config() == {"backend": "auto", "n_threads": None}


def test_config_is_per_thread():
    seen = {}

    def worker():
        seen["initial"] = fastnorm.get_config()
        fastnorm.set_config(n_threads=3)
        seen["after"] = fastnorm.get_config()

    with fastnorm.config_context(n_threads=2):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        assert fastnorm.get_config()["n_threads"] == 2
    assert seen["initial"] == {"backend": "auto", "n_threads": None}
    assert seen["after"]["n_threads"] == 3
    assert fastnorm.get_config()["n_threads"] is None


# ------------------------------------------------------------ kernel builds ---

BUILD_CODE = """
    import json, sys
    import numpy as np
    import fastnorm
    from fastnorm import _cpu, preprocessing as fnp, stats
    from fastnorm._ext import _openmp
    rng = np.random.default_rng(7)
    res = {"build": _cpu.KERNEL_BUILD, "v3_cpu": _openmp.cpu_is_x86_64_v3()}
    arrays = {}
    for dtype in ("float64", "float32"):
        X = (1.0 + 3.0 * rng.standard_normal((20_000, 7))).astype(dtype)
        Xn = X.copy()
        Xn[rng.random(X.shape) < 0.05] = np.nan
        arrays["X_" + dtype] = X
        arrays["Xn_" + dtype] = Xn
        for axis in (0, 1):
            for n_threads in (1, 2):
                with fastnorm.config_context(n_threads=n_threads):
                    k = f"{dtype}_{axis}_{n_threads}"
                    arrays["scale_" + k] = fnp.scale(X, axis=axis)
                    arrays["scalenan_" + k] = fnp.scale(Xn, axis=axis)
                    arrays["minmax_" + k] = fnp.minmax_scale(X, axis=axis)
                    arrays["normalize_" + k] = fnp.normalize(X, axis=axis)
                    m = stats.moments(X, axis=axis)
                    arrays["var_" + k] = m.var()
    np.savez(sys.argv[1], **arrays)
    print(json.dumps(res))
"""


def _run_build(tmp_path, tag, **env):
    path = tmp_path / f"{tag}.npz"
    script = tmp_path / "build_check.py"
    script.write_text(textwrap.dedent(BUILD_CODE))
    full_env = {k: v for k, v in os.environ.items() if k != "FASTNORM_KERNELS"}
    full_env.update(env)
    res = subprocess.run([sys.executable, str(script), str(path)], env=full_env,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    with np.load(path) as data:
        return info, dict(data)


def test_both_kernel_builds_agree_with_sklearn(tmp_path):
    default_info, default = _run_build(tmp_path, "default")
    base_info, baseline = _run_build(tmp_path, "baseline", FASTNORM_KERNELS="baseline")
    assert base_info["build"] == "baseline"
    assert default_info["build"] == ("x86-64-v3" if default_info["v3_cpu"] else "baseline")
    assert _cpu.KERNEL_BUILD in ("x86-64-v3", "baseline")
    if os.environ.get("FASTNORM_KERNELS") != "baseline":
        assert _cpu.KERNEL_BUILD == default_info["build"]
    for info, res in ((default_info, default), (base_info, baseline)):
        for dtype in ("float64", "float32"):
            X = res["X_" + dtype]
            Xn = res["Xn_" + dtype]
            for axis in (0, 1):
                for n_threads in (1, 2):
                    k = f"{dtype}_{axis}_{n_threads}"
                    msg = f"{info['build']} {k}"
                    # float32: scikit-learn's float32 statistics round the
                    # mean 1 at 3 sigma, cond ~ |mean|/std < 10
                    assert_close(res["scale_" + k], skp.scale(X, axis=axis), dtype,
                                 cond=10.0, err_msg="scale " + msg)
                    with np.errstate(all="ignore"):
                        expected = skp.scale(Xn, axis=axis)
                    assert_close(res["scalenan_" + k], expected, dtype, cond=10.0,
                                 err_msg="scale nan " + msg)
                    assert_close(res["minmax_" + k], skp.minmax_scale(X, axis=axis), dtype,
                                 cond=10.0, err_msg="minmax " + msg)
                    assert_close(res["normalize_" + k], skp.normalize(X, axis=axis), dtype,
                                 err_msg="normalize " + msg)
                    assert_close(res["var_" + k], X.astype(np.float64).var(axis=axis),
                                 np.float64, err_msg="var " + msg)
                    # each build is deterministic across thread counts
                    k1 = f"{dtype}_{axis}_1"
                    for name in ("scale_", "scalenan_", "minmax_", "normalize_", "var_"):
                        assert np.array_equal(res[name + k], res[name + k1], equal_nan=True), \
                            name + msg

"""Backend dispatch: the array's library picks the implementation."""
import numpy as np
import pytest

import fastnorm
from fastnorm import _backend, _cpu, preprocessing as fnp, stats


class _FakeCupyArray:
    """Stands in for a cupy.ndarray: fastnorm reads the library off the
    array's type (its module), never importing CuPy, so this is what the
    dispatcher sees for a CuPy array."""

    shape = (4, 3)
    ndim = 2
    size = 12
    dtype = np.dtype(np.float64)
    device = type("Device", (), {"id": 0})()

    def __array__(self, *args, **kwargs):  # an implicit device->host copy
        raise AssertionError("fastnorm must not convert a CuPy array to NumPy")


_FakeCupyArray.__module__ = "cupy._core.core"
_FakeCupyArray.__name__ = _FakeCupyArray.__qualname__ = "ndarray"


@pytest.fixture(autouse=True)
def _default_config():
    yield
    fastnorm.set_config(backend="auto")


def test_array_library():
    assert _backend.array_library(np.ones(3)) == "numpy"
    assert _backend.array_library(np.float32(1)) == "numpy"
    assert _backend.array_library([1.0, 2.0]) == "numpy"
    assert _backend.array_library(_FakeCupyArray()) == "cupy"


def test_ops_for_numpy_is_the_cpu_module():
    X = np.ones((3, 2))
    assert _backend.ops_for(X) is _cpu
    assert _backend.ops_for(X, None, X) is _cpu
    assert _backend.ops_for() is _cpu
    with fastnorm.config_context(backend="cpu"):
        assert _backend.ops_for(X) is _cpu


def test_backend_cpu_gives_the_same_results(rng):
    X = rng.standard_normal((200, 4))
    with fastnorm.config_context(backend="cpu"):
        got = (fnp.scale(X), fnp.normalize(X), stats.moments(X).m2)
    np.testing.assert_array_equal(got[0], fnp.scale(X))
    np.testing.assert_array_equal(got[1], fnp.normalize(X))
    np.testing.assert_array_equal(got[2], stats.moments(X).m2)


def test_backend_gpu_with_numpy_input_is_a_clear_error(rng):
    X = rng.standard_normal((20, 3))
    X0 = X.copy()
    with fastnorm.config_context(backend="gpu"):
        with pytest.raises(NotImplementedError, match="backend='gpu'"):
            _backend.ops_for(X)
        for call in (lambda: fnp.scale(X), lambda: fnp.minmax_scale(X),
                     lambda: fnp.maxabs_scale(X), lambda: fnp.robust_scale(X),
                     lambda: fnp.normalize(X), lambda: fnp.scale(X, copy=False),
                     lambda: stats.moments(X), lambda: stats.min_max(X),
                     lambda: stats.max_abs(X), lambda: stats.quantiles(X, 0.5)):
            with pytest.raises(NotImplementedError, match="GPU"):
                call()
    np.testing.assert_array_equal(X, X0)
    # the context left, the CPU path works again
    np.testing.assert_array_equal(fnp.scale(X), fnp.scale(X0))


def test_cupy_input_reaches_no_host_kernel():
    """CuPy input goes to the GPU ops, never to fastnorm._cpu (whose kernels
    would read the device pointer as host memory)."""
    assert _backend.ops_for(_FakeCupyArray()) is not _cpu
    with pytest.raises(NotImplementedError, match="no 'no_such_kernel' kernel"):
        _backend.ops_for(_FakeCupyArray()).no_such_kernel


def test_mixed_numpy_and_cupy_is_an_error():
    with pytest.raises(TypeError, match="mixed"):
        _backend.ops_for(np.ones(3), _FakeCupyArray())


@pytest.mark.gpu
def test_gpu_ops_name_a_missing_kernel_and_backend_cpu_refuses_cupy(cupy_installed):
    X = cupy_installed.ones((4, 3))
    assert _backend.array_library(X) == "cupy"
    with pytest.raises(NotImplementedError, match="no 'no_such_kernel' kernel"):
        _backend.ops_for(X).no_such_kernel
    with fastnorm.config_context(backend="cpu"):
        with pytest.raises(TypeError, match="backend='cpu'"):
            stats.moments(X)

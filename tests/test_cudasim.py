"""cudasim itself (tests/cudasim): the CPU execution of CUDA sources that
lets the GPU tests run in CI. It must honour barriers, shared memory and
shuffles, refuse what CUDA would not run, and let a broken kernel fail."""
import numpy as np
import pytest

from cudasim import cupy_stub as cp
from cudasim import installed
from cudasim._compile import LaunchError

REDUCE = r"""
extern "C" __global__ void __launch_bounds__(128)
block_sum(const float* x, int n, float* out)
{
    __shared__ float part[4];
    float v = 0.f;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += x[blockIdx.x * n + i];
    for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
    if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float s = 0.f;
        for (int w = 0; w < (int)blockDim.x / 32; ++w) s += part[w];
        out[blockIdx.x] = s;
    }
}

extern "C" __global__ void divergent_barrier(float* out)
{
    float v = 1.f;
    if (threadIdx.x < 16) __syncthreads();  // half a warp at the block barrier,
    else v = __shfl_down_sync(0xffffffffu, v, 1);  // half at a shuffle: never met
    out[threadIdx.x] = v;
}

extern "C" __global__ void shuffle_after_exit(float* out)
{
    if (threadIdx.x >= 16) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, 1.f, 1);
}
"""


def kernel(name):
    return cp.RawModule(code=REDUCE, name_expressions=[name]).get_function(name)


def test_shared_memory_shuffles_and_barriers_give_block_sums(rng):
    x = rng.standard_normal((5, 1000)).astype(np.float32)
    out = cp.zeros(5, np.float32)
    kernel("block_sum")((5,), (128,), (cp.asarray(x), np.int32(1000), out))
    np.testing.assert_allclose(out.get(), x.sum(axis=1, dtype=np.float64), rtol=1e-5)


def test_refuses_what_cuda_would_not_run():
    k = kernel("block_sum")
    x, out = cp.zeros(256, np.float32), cp.zeros(2, np.float32)
    with pytest.raises(LaunchError, match="too many resources"):
        k((2,), (256,), (x, np.int32(128), out))  # over __launch_bounds__(128)
    with pytest.raises(LaunchError, match="argument 1 has 8 bytes"):
        k((2,), (128,), (x, 128, out))  # a Python int is an int64, the parameter an int
    with pytest.raises(LaunchError, match="takes 3 arguments"):
        k((2,), (128,), (x, np.int32(128)))
    with pytest.raises(LaunchError, match="deadlock"):
        kernel("divergent_barrier")((1,), (32,), (cp.zeros(32, np.float32),))
    with pytest.raises(LaunchError, match="lanes exited"):
        kernel("shuffle_after_exit")((1,), (32,), (cp.zeros(32, np.float32),))


def test_arrays_refuse_implicit_host_copies_as_cupy_does():
    a = cp.ones(3)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    with pytest.raises(TypeError, match="numpy.ndarray"):
        a + np.ones(3)
    assert isinstance(np.sqrt(a), cp.ndarray) and type(a).__module__ == "cupy"
    assert cp.asnumpy(a * 2).tolist() == [2.0, 2.0, 2.0]


def test_a_broken_kernel_fails_its_test():
    """The elementwise kernels' scalar tail removed: the GPU tests' own check
    (poisoned outputs, compared with NumPy) must see the unwritten elements."""
    from fastnorm._cuda import _launch, _loader
    tail = "for (long long i = nv * V + tid; i < n; i += stride)"
    source = _loader.source("apply")
    assert tail in source
    broken = source.replace(tail, "for (long long i = n; i < n; i += stride)")
    with installed(cp):
        module = cp.RawModule(code=broken, options=_loader.OPTIONS,
                              name_expressions=_loader.FAMILIES["apply"])
        _loader._module.cache_clear()
        _loader._kernel.cache_clear()
        real = _loader._module
        _loader._module = lambda device_id, family: module if family == "apply" else real(
            device_id, family)
        try:
            _launch.POISON = True
            X = cp.asarray(np.arange(7 * 9, dtype=np.float32).reshape(7, 9))  # 63: a tail
            out, _ = _launch.affine(X, 0, 0.0, 2.0, 0.0)
            assert np.isnan(out.get()).any()  # the elements past the last vector
        finally:
            _launch.POISON = False
            _loader._module = real
            _loader._kernel.cache_clear()

"""Benchmark configuration.

FASTNORM_BENCH_SIZE=full (default) times the issue's target shapes;
FASTNORM_BENCH_SIZE=small times small ones (CI: the benches must keep
running, their floors are sanity floors).
"""
import os

import pytest

from fastnorm import _benchmarks

SIZE = os.environ.get("FASTNORM_BENCH_SIZE", "full")
if SIZE not in ("full", "small"):
    raise ValueError(f"FASTNORM_BENCH_SIZE must be 'full' or 'small', got {SIZE!r}")

SHAPES = _benchmarks.FULL_SHAPES if SIZE == "full" else _benchmarks.SMALL_SHAPES
# the image batch of the channel norms' torch benches (N, C, H, W), and the
# norms timed on it: (functional module, x, weight, bias) -> output
IMAGE_SHAPE = (32, 256, 56, 56) if SIZE == "full" else (4, 64, 28, 28)
IMAGE_OPS = {
    "batch_norm": lambda f, x, w, b: f.batch_norm(x, None, None, w, b, True),
    "group_norm": lambda f, x, w, b: f.group_norm(x, 32, w, b),
}
FASTNORM_ROUNDS = 7 if SIZE == "full" else 5
PEER_ROUNDS = 3


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["fastnorm_bench_size"] = SIZE


@pytest.fixture(scope="session")
def data_cache():
    """One input array per (shape, dtype), shared by all cases."""
    cache = {}

    def get(shape, dtype):
        key = (shape, dtype)
        if key not in cache:
            cache.clear()  # keep one at a time: the full shapes are 1 GB in float64
            cache[key] = _benchmarks.make_data(shape, dtype)
        return cache[key]

    return get


def time_against_torch(benchmark, case_name, ours, theirs, passes, x, threads,
                       stream="fresh", dtype=None):
    """Time fastnorm, torch and the bandwidth probe of `stream` in turn, round
    by round (interleaved medians), with the same thread count; record the
    result for benches/check.py. stream: the bandwidth to judge by ("fresh":
    the call allocates its output); dtype: the dtype to report when x's is
    only its storage."""
    import torch

    import fastnorm
    probe, probe_bytes = _benchmarks.stream_probe(stream, threads)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with (torch.no_grad() if "backward" not in case_name else torch.enable_grad(),
              fastnorm.config_context(n_threads=threads)):
            medians = _benchmarks.interleaved_medians(
                {"fastnorm": ours, "torch": theirs, "probe": probe}, FASTNORM_ROUNDS, 1)
            benchmark.pedantic(ours, rounds=3, iterations=1)  # pytest-benchmark's own record
    finally:
        torch.set_num_threads(previous)
    case = _benchmarks.Case(case_name, None, {}, passes, stream)
    info = _benchmarks.result_info(case, x, threads, medians["fastnorm"],
                                   {"torch": medians["torch"]},
                                   machine_gbps=probe_bytes / medians["probe"] / 1e9)
    if dtype is not None:
        info["dtype"] = dtype
    benchmark.extra_info.update(info)


def _calls_per_timing(fn):
    """Enough calls that one timing lasts about 20 ms (small tensors take
    microseconds, where the clock's resolution and jitter would dominate)."""
    t = _benchmarks.median_time(fn, 3)
    return max(1, int(0.02 / max(t, 1e-7)))


def interleaved_against_torch(benchmark, case_name, x, passes, ours, theirs, threads, rounds):
    """Time ours against theirs (torch), alternating round by round
    (interleaved medians) with the same thread count, and record the result
    for benches/check.py. x: the input tensor (its bytes, shape, dtype)."""
    import types

    import torch

    import fastnorm
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with fastnorm.config_context(n_threads=threads):
            number = _calls_per_timing(ours)
            medians = _benchmarks.interleaved_medians({"fastnorm": ours, "torch": theirs},
                                                      rounds, number)
            benchmark.pedantic(ours, rounds=3, iterations=number)  # pytest-benchmark's own record
    finally:
        torch.set_num_threads(previous)
    shape = types.SimpleNamespace(nbytes=x.nbytes, shape=tuple(x.shape),
                                  dtype=str(x.dtype).removeprefix("torch."))
    info = _benchmarks.result_info(_benchmarks.Case(case_name, None, {}, passes, "fresh"),
                                   shape, threads, medians["fastnorm"],
                                   {"torch": medians["torch"]})
    benchmark.extra_info.update(info)


def forward(fn, x, *params):
    """A call of fn(x, *params) without autograd (torch tensors)."""
    import torch

    def run():
        with torch.no_grad():
            return fn(x, *params)
    return run


def forward_backward(fn, x, *params):
    """A call of fn(x, *params) and of its gradients for a fixed random dy."""
    import torch
    leaves = [t.detach().requires_grad_() for t in (x, *params)]
    dy = torch.randn_like(x)

    def run():
        return torch.autograd.grad(fn(*leaves), leaves, dy)
    return run

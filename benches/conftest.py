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
    """Time torch (median of a few calls) and fastnorm (pytest-benchmark)
    with the same thread count; record the result for benches/check.py.
    stream: the bandwidth to judge by ("fresh": the call allocates its
    output); dtype: the dtype to report when x's is only its storage."""
    import torch

    import fastnorm
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.no_grad() if "backward" not in case_name else torch.enable_grad():
            torch_s = _benchmarks.median_time(theirs, PEER_ROUNDS + 2)
    finally:
        torch.set_num_threads(previous)
    with fastnorm.config_context(n_threads=threads):
        benchmark.pedantic(ours, rounds=FASTNORM_ROUNDS, iterations=1, warmup_rounds=1)
    case = _benchmarks.Case(case_name, None, {}, passes, stream)
    info = _benchmarks.result_info(case, x, threads, benchmark.stats.stats.median,
                                   {"torch": torch_s})
    if dtype is not None:
        info["dtype"] = dtype
    benchmark.extra_info.update(info)

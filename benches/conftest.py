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

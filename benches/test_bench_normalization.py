"""fastnorm vs scikit-learn and NumPy, timed in the same run.

Each case times fastnorm, its peers and this machine's stream bandwidth
probe in turn, round by round, with the same thread count, and records
speed-ups and achieved bandwidth (minimal bytes / time, and that as a
fraction of the probe's) in extra_info. `python benches/check.py
RESULT.json` turns a saved run into the table and checks benches/floors.json.
"""
import pytest
from conftest import PEER_ROUNDS, SHAPES

import fastnorm
from fastnorm import _benchmarks

CASES = _benchmarks.cases()


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", list(CASES))
def test_case(benchmark, data_cache, name, shape, dtype, threads):
    case = CASES[name]
    X = data_cache(shape, dtype)
    # fastnorm, its peers and the bandwidth probe that judges it, in turn
    # (the machine's load moves them all)
    fastnorm_s, peer_s, limit = _benchmarks.time_case(case, X, threads, PEER_ROUNDS + 2)
    benchmark.group = f"{name} {benchmark.name.split('[')[1][:-1]}"
    with fastnorm.config_context(n_threads=threads):
        benchmark.pedantic(case.fastnorm, args=(X,), rounds=3, iterations=1)  # its own record
    benchmark.extra_info.update(_benchmarks.result_info(case, X, threads, fastnorm_s, peer_s,
                                                        machine_gbps=limit))

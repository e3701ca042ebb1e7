"""fastnorm vs scikit-learn and NumPy, timed in the same run.

Each case times fastnorm and its peers with the same clock and thread
count, and records speed-ups and achieved bandwidth (minimal bytes / time,
and that as a fraction of this machine's stream bandwidth, its probe timed
in turn with fastnorm) in extra_info. `python benches/check.py
RESULT.json` turns a saved run into the table and checks benches/floors.json.
"""
import pytest
from conftest import FASTNORM_ROUNDS, PEER_ROUNDS, SHAPES

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
    peer_s = _benchmarks.measure_peers(case, X, threads, PEER_ROUNDS)
    benchmark.group = f"{name} {benchmark.name.split('[')[1][:-1]}"
    # fastnorm in turn with the bandwidth probe that judges it (the machine's
    # load moves both); the peers take seconds, so they are timed apart
    probe, probe_bytes = _benchmarks.stream_probe(case.stream, threads)
    with fastnorm.config_context(n_threads=threads):
        medians = _benchmarks.interleaved_medians(
            {"fastnorm": lambda: case.fastnorm(X), "probe": probe}, FASTNORM_ROUNDS, 1)
        benchmark.pedantic(case.fastnorm, args=(X,), rounds=3, iterations=1)
    benchmark.extra_info.update(_benchmarks.result_info(
        case, X, threads, medians["fastnorm"], peer_s,
        machine_gbps=probe_bytes / medians["probe"] / 1e9))

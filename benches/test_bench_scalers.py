"""The transformer classes vs scikit-learn's, timed in the same run (issue 3).

fit_transform and transform on the big shape (all threads), per-call time on
a small input (200 x 10) where Python overhead dominates, and the peak extra
memory of `fit` for both libraries.

RobustScaler.fit (issue 15, exact per-feature quantiles) on 1M and 2M rows of
64 features, float32 and float64, timed interleaved with scikit-learn's
(round by round, medians), with both libraries' fit peak memory beside.

Latency (issue 11, online inference): a fitted transformer's `transform` of
1 x 10 and 200 x 10 float64, and `StandardScaler().fit_transform` of
200 x 10, timed interleaved with scikit-learn's (round by round, medians).
"""
import warnings

import pytest
import sklearn.preprocessing
from conftest import FASTNORM_ROUNDS, PEER_ROUNDS, SHAPES, SIZE

import fastnorm
from fastnorm import _benchmarks
from fastnorm._config import available_cpus

CASES = _benchmarks.transformer_cases()
THREADS = available_cpus()
SMALL = (200, 10)


def _run(benchmark, case, X, threads, rounds, probe):
    """fastnorm, scikit-learn and (probe) the bandwidth probe timed in turn."""
    fastnorm_s, peer_s, limit = _benchmarks.time_case(case, X, threads, rounds, probe)
    with fastnorm.config_context(n_threads=threads):
        benchmark.pedantic(case.fastnorm, args=(X,), rounds=3, iterations=1)  # its own record
    info = _benchmarks.result_info(case, X, threads, fastnorm_s, peer_s, machine_gbps=limit)
    benchmark.extra_info.update(info)
    return info


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(CASES))
def test_scaler_big(benchmark, data_cache, name, dtype):
    X = data_cache(SHAPES[0], dtype)
    _run(benchmark, CASES[name], X, THREADS, PEER_ROUNDS + 2, probe=True)


@pytest.mark.parametrize("name", list(CASES))
def test_scaler_small_input(benchmark, name):
    X = _benchmarks.make_data(SMALL, "float64")
    # many rounds: a call takes microseconds (its bandwidth means nothing: no probe)
    _run(benchmark, CASES[name], X, THREADS, 200, probe=False)


@pytest.mark.parametrize("dtype", ["float32"])
@pytest.mark.parametrize("name", _benchmarks.SCALERS)
def test_fit_peak_memory(benchmark, data_cache, name, dtype):
    X = data_cache(SHAPES[0], dtype)
    case = _benchmarks.Case(f"{name}.fit", None, {}, 1, "read")
    ours = _benchmarks.peak_fit_memory("fastnorm.preprocessing", name, X)
    theirs = _benchmarks.peak_fit_memory("sklearn.preprocessing", name, X)
    est = getattr(fastnorm.preprocessing, name)()
    benchmark.pedantic(est.fit, args=(X,), rounds=3, iterations=1, warmup_rounds=0)
    info = _benchmarks.result_info(case, X, THREADS, benchmark.stats.stats.median, {})
    info.update(fastnorm_fit_peak_mb=ours / 2**20, sklearn_fit_peak_mb=theirs / 2**20,
                input_mb=X.nbytes / 2**20)
    benchmark.extra_info.update(info)


ROBUST_FIT_SHAPES = ([(1_000_000, 64), (2_000_000, 64)] if SIZE == "full"
                     else [(100_000, 64), (200_000, 64)])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", ROBUST_FIT_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_robust_fit(benchmark, data_cache, shape, dtype):
    """RobustScaler.fit vs scikit-learn's: quantiles of every column, read in
    place (one pass to count, one to copy out a few buckets)."""
    X = data_cache(shape, dtype)
    ours = lambda: fastnorm.preprocessing.RobustScaler().fit(X)  # noqa: E731
    theirs = lambda: sklearn.preprocessing.RobustScaler().fit(X)  # noqa: E731
    with fastnorm.config_context(n_threads=THREADS), _benchmarks.peer_context(THREADS):
        # scikit-learn takes seconds a call: few rounds, interleaved
        seconds = _benchmarks.interleaved_medians({"fastnorm": ours, "sklearn": theirs},
                                                  rounds=PEER_ROUNDS, number=1)
        benchmark.pedantic(ours, rounds=FASTNORM_ROUNDS, iterations=1, warmup_rounds=0)
    case = _benchmarks.Case("RobustScaler.fit[timed]", None, {}, 1, "read")
    info = _benchmarks.result_info(case, X, THREADS, seconds["fastnorm"],
                                   {"sklearn": seconds["sklearn"]})
    with fastnorm.config_context(n_threads=THREADS):
        ours_peak = _benchmarks.peak_fit_memory("fastnorm.preprocessing", "RobustScaler", X)
    theirs_peak = _benchmarks.peak_fit_memory("sklearn.preprocessing", "RobustScaler", X)
    info.update(fastnorm_fit_peak_mb=ours_peak / 2**20, sklearn_fit_peak_mb=theirs_peak / 2**20,
                input_mb=X.nbytes / 2**20)
    benchmark.extra_info.update(info)


LATENCY_SHAPES = [(1, 10), (200, 10)]


def _latency(benchmark, case_name, ours, theirs, X):
    seconds = _benchmarks.interleaved_medians({"fastnorm": ours, "sklearn": theirs},
                                              rounds=31, number=50)
    benchmark.pedantic(ours, rounds=31, iterations=50, warmup_rounds=1)
    case = _benchmarks.Case(case_name, None, {}, 2, "copy")
    benchmark.extra_info.update(_benchmarks.result_info(
        case, X, THREADS, seconds["fastnorm"], {"sklearn": seconds["sklearn"]}))


@pytest.mark.parametrize("shape", LATENCY_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", _benchmarks.SCALERS + ["Normalizer"])
def test_transform_latency(benchmark, name, shape):
    X = _benchmarks.make_data(shape, "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours = getattr(fastnorm.preprocessing, name)().fit(X)
        theirs = getattr(sklearn.preprocessing, name)().fit(X)
    _latency(benchmark, f"{name}.transform[latency]", lambda: ours.transform(X),
             lambda: theirs.transform(X), X)


def test_fit_transform_latency(benchmark):
    X = _benchmarks.make_data((200, 10), "float64")
    _latency(benchmark, "StandardScaler.fit_transform[latency]",
             lambda: fastnorm.preprocessing.StandardScaler().fit_transform(X),
             lambda: sklearn.preprocessing.StandardScaler().fit_transform(X), X)

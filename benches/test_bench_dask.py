"""Beyond one machine: StandardScaler.fit of a Dask array on a LocalCluster
(2 worker processes, 127.0.0.1) against the single-process fit of the same
data and against dask-ml's StandardScaler (or, without dask-ml, a plain
dask.array mean/var); and out-of-core partial_fit over a memmap whose file
is in the page cache, against the machine's read bandwidth.
"""
import numpy as np
import pytest
from conftest import FASTNORM_ROUNDS, PEER_ROUNDS, SIZE

import fastnorm
import fastnorm.preprocessing as fp
from fastnorm import _benchmarks

da = pytest.importorskip("dask.array")  # the dask extra
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use")

CLUSTER_SHAPE = (2_000_000, 64) if SIZE == "full" else (100_000, 64)
MEMMAP_SHAPE = (4_000_000, 64) if SIZE == "full" else (200_000, 64)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def _dask_peer(Xd):
    try:
        import dask_ml.preprocessing as dml
    except ImportError:
        import dask
        return "dask", lambda: dask.compute(Xd.mean(axis=0), Xd.var(axis=0))
    return "dask_ml", lambda: dml.StandardScaler().fit(Xd)


def test_standard_scaler_fit_on_cluster(benchmark, client):
    n, d = CLUSTER_SHAPE
    # 2 chunks per worker, made and kept on the workers
    rng = da.random.default_rng(0)
    Xd = (rng.standard_normal((n, d), chunks=(n // 4, d)) + 3.0).persist()
    distributed.wait(Xd)
    X = Xd.compute()  # the same data in this process, for the single-process fit
    with fastnorm.config_context(n_threads=2):
        single_s = _benchmarks.median_time(lambda: fp.StandardScaler().fit(X), PEER_ROUNDS + 2)
    peer, peer_fn = _dask_peer(Xd)
    peer_s = _benchmarks.median_time(peer_fn, PEER_ROUNDS)
    benchmark.pedantic(lambda: fp.StandardScaler().fit(Xd), rounds=FASTNORM_ROUNDS,
                       iterations=1, warmup_rounds=1)
    case = _benchmarks.Case("StandardScaler.fit[dask]", None, {}, 1, "read")
    info = _benchmarks.result_info(case, X, 2, benchmark.stats.stats.median,
                                   {"single": single_s, peer: peer_s})
    benchmark.extra_info.update(info)


def test_partial_fit_chunks_from_page_cache(benchmark, tmp_path):
    X = _benchmarks.make_data(MEMMAP_SHAPE, "float64")
    path = tmp_path / "x.bin"
    X.tofile(path)
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    fit = (lambda: fp.partial_fit_chunks(fp.StandardScaler(), mm, verbose=False))
    fit()  # the file is in the page cache from here on
    numpy_s = _benchmarks.median_time(lambda: (mm.mean(axis=0), mm.var(axis=0)), PEER_ROUNDS)
    from fastnorm._config import effective_n_threads
    threads = effective_n_threads()
    benchmark.pedantic(fit, rounds=FASTNORM_ROUNDS, iterations=1, warmup_rounds=1)
    case = _benchmarks.Case("partial_fit_chunks[memmap]", None, {}, 1, "read")
    info = _benchmarks.result_info(case, X, threads, benchmark.stats.stats.median,
                                   {"numpy": numpy_s})
    benchmark.extra_info.update(info)

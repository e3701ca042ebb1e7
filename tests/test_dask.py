"""Dask input on a real engine: a distributed.LocalCluster of 2 worker
processes on the loopback, fits compared with the in-memory fit; and
out-of-core partial_fit over a memmap."""
import copy
import functools
import os
import subprocess
import sys
import textwrap
import threading
import time

import dask
import dask.array as da
import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
import sklearn
from distributed import Client, LocalCluster

import fastnorm.functional as F
import fastnorm.preprocessing as fp
import fastnorm.stats as fs


# The scheduler's small HTTP server (no dashboard) takes port 8787 or, for a
# second cluster, another one: say so quietly. Everything binds to 127.0.0.1.
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use")


def _cluster(n_workers):
    return LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None)


@pytest.fixture(scope="module")
def client():
    with _cluster(2) as cluster, Client(cluster) as c:
        yield c


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = np.maximum(np.abs(b), np.finfo(np.float64).tiny)
    return np.nanmax(np.abs(a - b) / scale)


def fitted_arrays(est):
    return {k: v for k, v in vars(est).items()
            if k.endswith("_") and not k.startswith("_") and isinstance(v, np.ndarray)}


def data(rng, shape, dtype, offset=3.0):
    X = rng.standard_normal(shape) * 2 + offset
    X[rng.random(shape) < 0.01] = np.nan
    return X.astype(dtype)


SCALERS = ["StandardScaler", "MinMaxScaler", "MaxAbsScaler"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", SCALERS)
def test_fit_on_the_cluster_equals_in_memory_fit(client, name, dtype, rng):
    X = data(rng, (20_011, 7), dtype, offset=1e4 if dtype == np.float64 else 3.0)
    Xd = da.from_array(X, chunks=(3_000, 7))  # 7 chunks, a ragged last one
    ours = getattr(fp, name)().fit(Xd)
    ref = getattr(fp, name)().fit(X)
    got, want = fitted_arrays(ours), fitted_arrays(ref)
    assert got.keys() == want.keys() and got
    for key in want:
        assert isinstance(got[key], np.ndarray) and got[key].dtype == want[key].dtype, key
        assert rel_err(got[key], want[key]) <= 1e-12, key
    assert ours.n_samples_seen_ == pytest.approx(ref.n_samples_seen_)
    Z = ours.transform(Xd)
    assert isinstance(Z, da.Array) and Z.dtype == dtype  # lazy
    np.testing.assert_allclose(Z.compute(), ref.transform(X), rtol=1e-6, atol=1e-6)
    back = ours.inverse_transform(Z)
    assert isinstance(back, da.Array)
    np.testing.assert_allclose(back.compute(), X, rtol=1e-5, atol=1e-3)


def _uneven(X, sizes):
    """X as a Dask array with the given row chunk sizes (zeros allowed)."""
    assert sum(sizes) == X.shape[0]
    return da.from_array(X, chunks=(tuple(sizes), X.shape[1]))


def _check_fits_match(Xd, X, names=SCALERS, tol=1e-12):
    for name in names:
        ours, ref = getattr(fp, name)().fit(Xd), getattr(fp, name)().fit(X)
        got, want = fitted_arrays(ours), fitted_arrays(ref)
        assert got.keys() == want.keys() and got
        for key in want:
            assert got[key].dtype == want[key].dtype, (name, key)
            assert rel_err(got[key], want[key]) <= tol, (name, key)
        assert ours.n_samples_seen_ == pytest.approx(ref.n_samples_seen_)


@pytest.mark.parametrize("fan_in", [2, 3, 32])
def test_many_uneven_chunks_merge_in_wide_tasks(client, rng, monkeypatch, fan_in):
    """More chunks than one merge task takes (merge tasks of fan_in results,
    then the last ones folded here), uneven and empty chunks, an all-NaN
    column, chunks with different means far from zero."""
    from fastnorm import _dask
    monkeypatch.setattr(_dask, "FAN_IN", fan_in)
    sizes = [0, 1, 7, 300, 0, 2, 1_000, 13] * 9 + [5]
    X = data(rng, (sum(sizes), 5), np.float64, offset=1e8)
    X[:, 2] = np.nan
    X[: X.shape[0] // 2, 3] += 50.0  # the chunks' means differ
    _check_fits_match(_uneven(X, sizes), X)
    m, ref = fs.moments(_uneven(X, sizes), ignore_nan=True), fs.moments(X, ignore_nan=True)
    np.testing.assert_array_equal(m.count, ref.count)
    assert np.isnan(m.mean[2]) and np.isnan(ref.mean[2])
    for a, b in ((m.mean, ref.mean), (m.m2, ref.m2)):
        assert rel_err(a, b) <= 1e-12


def test_a_single_chunk_and_a_single_row(client, rng):
    X = data(rng, (5_000, 4), np.float32)
    _check_fits_match(da.from_array(X, chunks=(-1, 4)), X, tol=1e-6)
    one = X[:1].astype(np.float64)
    _check_fits_match(da.from_array(one, chunks=(1, 4)), one)


def test_moments_keep_nan_when_not_ignored(client, rng):
    X = data(rng, (3_000, 3), np.float64)  # NaNs in every column
    X[:, 1] = rng.standard_normal(3_000)    # but this one
    m = fs.moments(_uneven(X, [1_000, 0, 1_500, 500]), ignore_nan=False)
    ref = fs.moments(X, ignore_nan=False)
    np.testing.assert_array_equal(m.count, ref.count)
    assert np.isnan(m.mean[[0, 2]]).all() and np.isnan(m.m2[[0, 2]]).all()
    assert rel_err(m.mean[1], ref.mean[1]) <= 1e-12 and rel_err(m.m2[1], ref.m2[1]) <= 1e-12


def test_a_dask_fit_keeps_the_mean_low_part_as_in_memory(client, rng):
    """1e8 + N(0, 1) in chunks: the chunks' means merge as double-doubles,
    and the fit keeps what rounding mean_ drops, as a first in-memory fit
    does, so float64 z-scores are as exact as in memory."""
    X = rng.standard_normal((40_000, 3)) + 1e8
    ours = fp.StandardScaler().fit(_uneven(X, [10_000, 7, 19_993, 10_000]))
    ref = fp.StandardScaler().fit(X)
    np.testing.assert_array_equal(ours.mean_, ref.mean_)
    assert rel_err(ours.var_, ref.var_) <= 1e-12
    assert "_mean_lo" in vars(ours)
    np.testing.assert_allclose(ours._mean_lo[1], ref._mean_lo[1], rtol=0, atol=1e-12)
    z, z_ref = ours.transform(X), ref.transform(X)
    np.testing.assert_allclose(z, z_ref, rtol=0, atol=1e-12)
    Y = X - 1e8  # exact: the z-scores to a few ulps
    exact = (Y - Y.mean(axis=0)) / ref.scale_
    assert np.abs(z - exact).max() < 1e-12  # centred on mean_ alone: up to 7e-9 off


def test_a_fit_is_one_compute_of_one_graph(rng):
    """On Dask's local threads (no cluster): one compute per fit, whatever
    the number of chunks, and the same result as on the cluster."""
    from dask.callbacks import Callback
    X = data(rng, (6_000, 4), np.float64)
    Xd = da.from_array(X, chunks=(100, 4))  # 60 chunks: merge tasks too
    starts = []
    with dask.config.set(scheduler="threads"), Callback(start=lambda dsk: starts.append(1)):
        for name in SCALERS:
            starts.clear()
            est = getattr(fp, name)().fit(Xd)
            assert len(starts) == 1, name
            ref = getattr(fp, name)().fit(X)
            for key, want in fitted_arrays(ref).items():
                assert rel_err(getattr(est, key), want) <= 1e-12, (name, key)


def test_chunk_tasks_share_the_worker_threads(client, monkeypatch):
    """A task gets the worker's threads divided by the tasks running on it:
    idle threads are lent, a full worker runs one per task."""
    import fastnorm
    from fastnorm import _dask

    def threads_in_task():
        with _dask._task_threads():
            return fastnorm.get_config()["n_threads"], _dask._worker_load()

    n_threads, load = client.submit(threads_in_task, pure=False).result()
    assert n_threads == 1 and load == (1, 1)  # 1 thread per worker, this task running
    monkeypatch.setattr(_dask, "_worker_load", lambda: (4, 1))
    with _dask._task_threads():
        assert fastnorm.get_config()["n_threads"] == 4
        with _dask._task_threads():  # a second chunk task in the same process
            assert fastnorm.get_config()["n_threads"] == 2
        assert fastnorm.get_config()["n_threads"] == 4
    monkeypatch.setattr(_dask, "_worker_load", lambda: (4, 3))  # 3 tasks executing there
    with _dask._task_threads():
        assert fastnorm.get_config()["n_threads"] == 1
    assert _dask._running == 0
    monkeypatch.setattr(_dask, "_worker_load", lambda: None)  # Dask's local threads
    with fastnorm.config_context(n_threads=3), _dask._task_threads():
        assert fastnorm.get_config()["n_threads"] == 3


def test_partial_fit_over_dask_batches_equals_one_fit(client, rng):
    X = data(rng, (9_000, 5), np.float64)
    est = fp.StandardScaler()
    for part in np.array_split(X, 3):
        est.partial_fit(da.from_array(part, chunks=(1_000, 5)))
    ref = fp.StandardScaler().fit(X)
    for key, want in fitted_arrays(ref).items():
        assert rel_err(getattr(est, key), want) <= 1e-12, key


def test_integer_dask_input_becomes_float64(client, rng):
    X = rng.integers(-50, 50, size=(4_000, 3))
    est = fp.StandardScaler().fit(da.from_array(X, chunks=(1_000, 3)))
    ref = fp.StandardScaler().fit(X)
    assert rel_err(est.mean_, ref.mean_) <= 1e-12
    assert est.transform(da.from_array(X, chunks=(1_000, 3))).dtype == np.float64


def test_dask_dataframe_carries_the_column_names(client, rng):
    frame = pd.DataFrame(rng.standard_normal((3_000, 4)), columns=["a", "b", "c", "d"])
    ddf = dd.from_pandas(frame, npartitions=3)
    est = fp.StandardScaler().fit(ddf)
    ref = fp.StandardScaler().fit(frame)
    assert list(est.feature_names_in_) == ["a", "b", "c", "d"]
    assert list(est.get_feature_names_out()) == list(ref.get_feature_names_out())
    assert rel_err(est.scale_, ref.scale_) <= 1e-12
    np.testing.assert_allclose(est.transform(ddf).compute(), ref.transform(frame), rtol=1e-12,
                               atol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        est.partial_fit(dd.from_pandas(frame.rename(columns={"a": "z"}), npartitions=2))


def test_normalizer_and_fitted_robust_scaler_transform_lazily(client, rng):
    X = rng.standard_normal((2_000, 6))
    Xd = da.from_array(X, chunks=(500, 6))
    Z = fp.Normalizer().fit(Xd).transform(Xd)
    assert isinstance(Z, da.Array)
    np.testing.assert_allclose(Z.compute(), fp.Normalizer().fit(X).transform(X), rtol=1e-12)
    robust = fp.RobustScaler().fit(X)
    np.testing.assert_allclose(robust.transform(Xd).compute(), robust.transform(X),
                               rtol=1e-12)
    with pytest.raises(NotImplementedError, match="X.compute"):
        fp.RobustScaler().fit(Xd)


TRANSFORMERS = SCALERS + ["RobustScaler", "Normalizer"]


def _fitted(name, X, Xd):
    # RobustScaler cannot fit Dask input: fitted in memory, it transforms it
    return getattr(fp, name)().fit(X if name == "RobustScaler" else Xd)


def _never(chunk):
    raise AssertionError("a lazy transform read its input")


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_pandas_output_config_gives_a_lazy_dask_dataframe(client, name, rng):
    """set_output's pandas wrapper would gather a Dask result into memory:
    Dask input gives a lazy Dask DataFrame instead, named as in memory."""
    X = rng.standard_normal((1_000, 4)).astype(np.float32)
    Xd = da.from_array(X, chunks=(300, 4))
    poisoned = Xd.map_blocks(_never, dtype=X.dtype)  # any compute of it fails
    ref = getattr(fp, name)().fit(X).set_output(transform="pandas").transform(X)
    assert isinstance(ref, pd.DataFrame)  # in memory: scikit-learn's wrapper, unchanged
    est = _fitted(name, X, Xd)
    results = [copy.deepcopy(est).set_output(transform="pandas").transform(poisoned)]
    with sklearn.config_context(transform_output="pandas"):
        results.append(est.transform(poisoned))
        if name != "RobustScaler":
            results.append(getattr(fp, name)().fit_transform(Xd))
    previous = sklearn.get_config()["transform_output"]
    sklearn.set_config(transform_output="pandas")
    try:
        results.append(est.transform(Xd))
    finally:
        sklearn.set_config(transform_output=previous)
    for Z in results:
        assert isinstance(Z, dd.DataFrame), type(Z)
        assert list(Z.columns) == list(ref.columns) and (Z.dtypes == np.float32).all()
    for got in dask.compute(*results[2:]):
        np.testing.assert_array_equal(got.index, ref.index)
        np.testing.assert_allclose(got.to_numpy(), ref.to_numpy(), rtol=1e-5, atol=1e-6)
    # polars has no lazy form: refused, and by fit_transform before it fits
    est.set_output(transform="polars")
    with pytest.raises(ValueError, match="transform_output='polars'"):
        est.transform(poisoned)
    with pytest.raises(ValueError, match="transform_output='polars'"):
        est.fit_transform(poisoned)
    with sklearn.config_context(transform_output="polars"), \
            pytest.raises(ValueError, match="transform_output='polars'"):
        getattr(fp, name)().fit_transform(poisoned)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_dask_dataframe_in_gives_a_lazy_dask_dataframe_out(client, name, rng):
    frame = pd.DataFrame(rng.standard_normal((1_000, 3)).astype(np.float32),
                         columns=["a", "b", "c"],
                         index=pd.RangeIndex(5_000, 7_000, 2, name="id"))
    ddf = dd.from_pandas(frame, npartitions=3)
    poisoned = ddf.map_partitions(_never, meta=ddf._meta)  # any compute of it fails
    est = _fitted(name, frame, ddf)
    ref = getattr(fp, name)().fit(frame)
    methods = ["transform"] + (["inverse_transform"] if name != "Normalizer" else [])
    for method in methods:
        Z = getattr(est, method)(poisoned)
        assert isinstance(Z, dd.DataFrame), (method, type(Z))
        assert Z.divisions == ddf.divisions and list(Z.columns) == ["a", "b", "c"]
    results = [getattr(est, method)(ddf) for method in methods]
    wants = [getattr(ref, method)(frame) for method in methods]
    if name != "RobustScaler":
        results.append(getattr(fp, name)().fit_transform(ddf))
        wants.append(ref.transform(frame))
        assert isinstance(results[-1], dd.DataFrame)
        assert results[-1].divisions == ddf.divisions
    for got, want in zip(dask.compute(*results), wants):
        pd.testing.assert_index_equal(got.index, frame.index)
        assert list(got.columns) == ["a", "b", "c"] and (got.dtypes == np.float32).all()
        np.testing.assert_allclose(got.to_numpy(), want, rtol=1e-5, atol=1e-6)
    # transform checks the names against fit, as in memory (inverse_transform does not)
    with pytest.raises(ValueError, match="feature names"):
        est.transform(poisoned.rename(columns={"a": "z"}))


def test_stats_moments_of_a_dask_array(client, rng):
    X = data(rng, (10_000, 4), np.float64, offset=1e8)
    m = fs.moments(da.from_array(X, chunks=(2_500, 4)), axis=0, ignore_nan=True)
    ref = fs.moments(X, axis=0, ignore_nan=True)
    for a, b in ((m.count, ref.count), (m.mean, ref.mean), (m.m2, ref.m2)):
        assert rel_err(a, b) <= 1e-12
    with pytest.raises(NotImplementedError, match="axis=0"):
        fs.moments(da.from_array(X, chunks=(2_500, 4)), axis=1)


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_batch_statistics_across_workers_equal_one_big_batch(client, layout, rng):
    """SyncBatchNorm's idea: each worker's shard gives per-channel Moments,
    merged they are the whole batch's, and every shard normalized with them
    is the big batch normalized at once."""
    x = rng.standard_normal((12, 5, 6, 7)) * 3 + 1
    if layout == "NHWC":
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    shards = np.array_split(x, 3)
    parts = client.gather(client.map(fs.channel_moments, shards, layout=layout))
    total = functools.reduce(fs.Moments.merge, parts)
    whole = fs.channel_moments(x, layout=layout)
    for a, b in ((total.count, whole.count), (total.mean, whole.mean), (total.m2, whole.m2)):
        assert rel_err(a, b) <= 1e-12
    w, b = rng.standard_normal(5), rng.standard_normal(5)
    y = np.concatenate([F.batch_norm(s, total.mean, total.var(), w, b, training=False,
                                     layout=layout) for s in shards])
    rm, rv = np.zeros(5), np.ones(5)
    ref = F.batch_norm(x, rm, rv, w, b, training=True, momentum=1.0, layout=layout)
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(rv, total.var(ddof=1), rtol=1e-12)  # the running update


def _slow_identity(block):
    time.sleep(0.25)  # long enough for a worker to die while holding chunks
    return block


def test_a_worker_killed_mid_fit_still_gives_the_right_fit(client, rng):
    X = data(rng, (8_000, 4), np.float64)
    Xd = da.from_array(X, chunks=(1_000, 4)).map_blocks(_slow_identity, dtype=X.dtype)
    victim = list(client.scheduler_info()["workers"])[0]

    def kill_one():
        time.sleep(0.6)
        try:  # the worker exits at once: the call itself loses its connection
            client.run(os._exit, 1, workers=[victim], nanny=False)
        except Exception:
            pass

    killer = threading.Thread(target=kill_one)
    killer.start()
    est = fp.StandardScaler().fit(Xd)
    killer.join()
    ref = fp.StandardScaler().fit(X)
    for key, want in fitted_arrays(ref).items():
        assert rel_err(getattr(est, key), want) <= 1e-12, key
    client.wait_for_workers(2, timeout=60)  # the nanny restarts it for the next tests


def test_a_cluster_that_goes_away_is_a_clear_error(rng):
    X = rng.standard_normal((6_000, 3))
    with _cluster(1) as cluster, Client(cluster, set_as_default=False) as c:
        Xd = da.from_array(X, chunks=(1_000, 3)).map_blocks(_slow_identity, dtype=X.dtype)
        closer = threading.Timer(0.5, cluster.close)
        closer.start()
        with dask.config.set(scheduler=c), pytest.raises(RuntimeError, match="cluster"):
            fp.StandardScaler().fit(Xd)
        closer.join()


def test_bad_dask_input_is_named(client, rng):
    X = rng.standard_normal((1_000, 4))
    Xd = da.from_array(X, chunks=(250, 4))
    with pytest.raises(ValueError, match="chunked along the features"):
        fp.StandardScaler().fit(Xd.rechunk((250, 2)))
    unknown = Xd[Xd[:, 0] > 0]  # boolean indexing: NaN chunk sizes
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        fp.MinMaxScaler().fit(unknown)
    mixed = da.concatenate([
        da.from_delayed(dask.delayed(np.ones)((10, 4), dtype=np.float64), (10, 4), np.float64),
        da.from_delayed(dask.delayed(np.ones)((10, 4), dtype=np.float32), (10, 4), np.float64),
    ])
    with pytest.raises(TypeError, match="mixed dtypes"):
        fp.StandardScaler().fit(mixed)
    with pytest.raises(ValueError, match="2-D"):
        fp.StandardScaler().fit(da.ones(10, chunks=5))
    with pytest.raises(NotImplementedError, match="sample_weight"):
        fp.StandardScaler().fit(Xd, sample_weight=np.ones(1_000))
    inf = X.copy()
    inf[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        fp.StandardScaler().fit(da.from_array(inf, chunks=(250, 4)))
    fitted = fp.StandardScaler().fit(Xd)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(da.ones((10, 3), chunks=(5, 3)))
    # functions that take in-memory arrays refuse a collection rather than gather it
    for call in (lambda: fp.scale(Xd), lambda: fs.min_max(Xd), lambda: F.layer_norm(Xd, 4)):
        with pytest.raises(TypeError, match="Dask collection"):
            call()


# out-of-core on one machine ----------------------------------------------------

def test_partial_fit_chunks_equals_fit(rng, tmp_path):
    X = data(rng, (50_000, 6), np.float64)
    path = tmp_path / "x.bin"
    X.tofile(path)
    mm = np.memmap(path, dtype=np.float64, mode="r", shape=X.shape)
    for name in SCALERS:
        est = fp.partial_fit_chunks(getattr(fp, name)(), mm, chunk_rows=7_000, verbose=False)
        ref = getattr(fp, name)().fit(X)
        for key, want in fitted_arrays(ref).items():
            assert rel_err(getattr(est, key), want) <= 1e-12, (name, key)
    # a chunked reader: any iterable of 2-D chunks
    est = fp.partial_fit_chunks(fp.StandardScaler(), (X[i:i + 9_999] for i in range(0, 50_000, 9_999)),
                                verbose=False)
    assert rel_err(est.var_, fp.StandardScaler().fit(X).var_) <= 1e-12
    with pytest.raises(ValueError, match="chunk_rows"):
        fp.partial_fit_chunks(fp.StandardScaler(), mm, chunk_rows=0)
    with pytest.raises(TypeError, match="partial_fit"):
        fp.partial_fit_chunks(fp.RobustScaler(), mm)


def test_partial_fit_chunks_shows_progress(rng, capsys):
    X = rng.standard_normal((1_000, 3))
    fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=100, verbose=True)
    assert "partial_fit" in capsys.readouterr().err
    fp.partial_fit_chunks(fp.StandardScaler(), X, chunk_rows=100)  # small: no bar
    assert capsys.readouterr().err == ""


def test_a_4_gb_memmap_fits_in_bounded_memory(tmp_path):
    """Peak resident memory stays under 1 GB for a 4 GiB file (measured in a
    fresh process). The file is sparse, so no 4 GB are written to disk: its
    holes read as zeros, with random rows at both ends."""
    n_cols = 16
    n_rows = 4 * 2**30 // (8 * n_cols)
    path = tmp_path / "big.bin"
    with open(path, "wb") as f:
        f.truncate(n_rows * n_cols * 8)
    rng = np.random.default_rng(7)
    head, tail = rng.standard_normal((1_000, n_cols)), rng.standard_normal((1_000, n_cols)) + 5
    mm = np.memmap(path, dtype=np.float64, mode="r+", shape=(n_rows, n_cols))
    mm[:1_000], mm[-1_000:] = head, tail
    mm.flush()
    del mm
    script = textwrap.dedent(f"""
        import resource, numpy as np, fastnorm.preprocessing as fp
        X = np.memmap({str(path)!r}, dtype=np.float64, mode="r", shape=({n_rows}, {n_cols}))
        est = fp.partial_fit_chunks(fp.StandardScaler(), X, verbose=False)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(peak_mb, *est.mean_, *est.var_)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True).stdout.split()
    peak_mb = float(out[0])
    mean, var = np.array(out[1:1 + n_cols], float), np.array(out[1 + n_cols:], float)
    total = np.concatenate([head, tail])
    want_mean = total.sum(axis=0) / n_rows
    want_var = (((total - want_mean) ** 2).sum(axis=0)
                + (n_rows - total.shape[0]) * want_mean ** 2) / n_rows
    assert rel_err(mean, want_mean) <= 1e-9 and rel_err(var, want_var) <= 1e-9
    assert peak_mb < 1024, f"peak resident memory {peak_mb:.0f} MB for a 4 GiB file"

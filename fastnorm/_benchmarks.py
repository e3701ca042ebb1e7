"""Benchmark cases shared by benches/ (pytest-benchmark), benches/check.py and
``python -m fastnorm bench``: what is timed, against which peers, and how
many bytes a perfect implementation must move.

Speed is reported two ways, both measured in the same run:
- speed-up: the peer's median time / fastnorm's median time;
- achieved bandwidth: minimal bytes moved / fastnorm's median time, and that
  as a fraction of this machine's own stream bandwidth (`stream_probe`, with
  the same thread count, timed in turn with fastnorm and its peers:
  `time_case`): read+write streams for the transforms, the read-only stream
  for the statistics.
"""
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import numpy as np

# Shapes of the targets, and small ones (CI, quick look).
FULL_SHAPES = [(2_000_000, 64), (20_000, 4_096)]
SMALL_SHAPES = [(100_000, 64), (1_000, 4_096)]
QUICK_SHAPES = [(1_000_000, 64)]

PROBE_BYTES = 512 * 2**20  # the issue asks for >= 512 MB streams


@dataclass(frozen=True)
class Case:
    """One operation: fastnorm's call, its peers, and its minimal traffic."""

    name: str
    fastnorm: Callable
    peers: dict            # peer name -> callable(X)
    passes: int            # minimal bytes = passes * X.nbytes
    stream: str            # the bandwidth to compare with: "read", "copy" (read+write
    #                        into a given buffer) or "fresh" (read+write into a new one)


def _sklearn(name):
    def run(X):
        import sklearn.preprocessing as skp
        with warnings.catch_warnings():
            # sklearn's float32 "numerical issues" warnings: noise here
            warnings.simplefilter("ignore", UserWarning)
            return getattr(skp, name)(X)
    run.__name__ = f"sklearn.preprocessing.{name}"
    return run


def _np_scale(X):
    return (X - X.mean(axis=0)) / X.std(axis=0)


def _np_minmax(X):
    mn = X.min(axis=0)
    return (X - mn) / (X.max(axis=0) - mn)


def _np_maxabs(X):
    return X / np.abs(X).max(axis=0)


def _np_normalize(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def _np_moments(X):
    return X.mean(axis=0), X.var(axis=0)


def _np_min_max(X):
    return X.min(axis=0), X.max(axis=0)


def cases():
    """All benchmark cases by name."""
    import fastnorm.preprocessing as fp
    import fastnorm.stats as fs

    def transform(name, numpy_fn, passes):
        return Case(name, getattr(fp, name),
                    {"sklearn": _sklearn(name), "numpy": numpy_fn}, passes, "copy")

    found = [
        # scale & co.: statistics pass + apply (read + write), as the issue counts them
        transform("scale", _np_scale, 3),
        transform("minmax_scale", _np_minmax, 3),
        transform("maxabs_scale", _np_maxabs, 3),
        # a row of normalize fits in cache: one read and one write are enough
        transform("normalize", _np_normalize, 2),
        Case("moments", lambda X: fs.moments(X, axis=0), {"numpy": _np_moments}, 1, "read"),
        Case("min_max", lambda X: fs.min_max(X, axis=0), {"numpy": _np_min_max}, 1, "read"),
    ]
    return {c.name: c for c in found}


_FITTED = {}


def _fitted(module, name, X):
    """A scaler of `module` fitted on X (cached: `transform` cases time only
    the transform)."""
    key = (module, name, id(X), X.shape, str(X.dtype))
    if key not in _FITTED:
        import importlib
        for old in [k for k in _FITTED if k[2:] != key[2:]]:  # fitted on another X
            del _FITTED[old]
        _FITTED[key] = getattr(importlib.import_module(module), name)().fit(X)
    return _FITTED[key]


def _fit_transform(module, name):
    def run(X):
        import importlib
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return getattr(importlib.import_module(module), name)().fit_transform(X)
    return run


def _transform(module, name):
    def run(X):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return _fitted(module, name, X).transform(X)
    return run


SCALERS = ["StandardScaler", "MinMaxScaler", "MaxAbsScaler", "RobustScaler"]


def transformer_cases():
    """fit_transform and transform of each scaler vs scikit-learn's."""
    found = []
    for name in SCALERS:
        found.append(Case(f"{name}.fit_transform", _fit_transform("fastnorm.preprocessing", name),
                          {"sklearn": _fit_transform("sklearn.preprocessing", name)}, 3, "copy"))
        found.append(Case(f"{name}.transform", _transform("fastnorm.preprocessing", name),
                          {"sklearn": _transform("sklearn.preprocessing", name)}, 2, "copy"))
    return {c.name: c for c in found}


def peak_fit_memory(module, name, X):
    """Peak bytes allocated while fitting a scaler of `module` on X (tracemalloc
    sees NumPy's buffers)."""
    import importlib
    import tracemalloc
    est = getattr(importlib.import_module(module), name)()
    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            est.fit(X)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def make_data(shape, dtype, seed=0):
    """Standard-normal data shifted away from zero (as real features are)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(shape, dtype=np.float32 if dtype == "float32" else np.float64)
    X += 3.0
    return X


def median_time(fn, rounds, warmup=1):
    """Median wall time of `rounds` calls, after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def interleaved_medians(fns, rounds, number, warmup=True):
    """{name: median seconds per call} of the callables `fns`, timed in turn
    round by round (`number` calls per timing), so a machine's drifting load
    touches every contender alike. warmup: one untimed call of each first
    (caches, lazy imports)."""
    times = {name: [] for name in fns}
    for fn in fns.values() if warmup else ():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(number):
                fn()
            times[name].append((time.perf_counter() - t0) / number)
    return {name: float(np.median(t)) for name, t in times.items()}


@lru_cache(maxsize=1)
def _probe_source(nbytes):
    return np.ones(nbytes // 8)


def stream_probe(stream, n_threads):
    """(callable, bytes) of one pass of the probe's `stream` ('read', 'copy'
    or 'fresh'; see machine_bandwidth), so that a bench can time it in turn
    with the kernels it judges: on a shared machine the bandwidth moves with
    the load, and a limit measured minutes apart flatters or wrongs them."""
    from ._cpu import bandwidth_probe as probe
    src = _probe_source(PROBE_BYTES)
    if stream == "read":
        return (lambda: probe.read_stream(src, n_threads)), src.nbytes
    if stream == "copy":
        dst = np.full_like(src, 0.0)  # written now: its pages are mapped before any timing
        return (lambda: probe.copy_stream(src, dst, n_threads)), 2 * src.nbytes
    if stream == "fresh":
        return (lambda: probe.copy_stream(src, np.empty_like(src), n_threads)), 2 * src.nbytes
    raise ValueError(f"stream must be 'read', 'copy' or 'fresh', got {stream!r}")


@lru_cache(maxsize=None)
def machine_bandwidth(n_threads):
    """{'read': GB/s, 'copy': GB/s, 'fresh': GB/s} of this machine's streams
    over 512 MiB arrays with `n_threads` threads (median of 5). 'copy' counts
    the bytes read and written into memory written before; 'fresh' the same
    into a newly allocated array, whose pages the OS zeroes on first touch:
    the limit of an operation that allocates its output."""
    result = {}
    for stream in ("read", "copy", "fresh"):  # (the probe is built like the kernels it judges)
        run, nbytes = stream_probe(stream, n_threads)
        result[stream] = nbytes / median_time(run, 5) / 1e9
    return result


def peer_context(n_threads):
    """Limit the peers' (BLAS/OpenMP) threads to the count fastnorm gets."""
    from threadpoolctl import threadpool_limits
    return threadpool_limits(limits=n_threads)


def time_case(case, X, n_threads, rounds, probe=True):
    """(fastnorm seconds, {peer: seconds}, limit GB/s or None) of `case` on X:
    fastnorm, its peers and (probe=True) the bandwidth probe of the case's
    stream timed in turn, round by round (medians; the peers take seconds on
    the full shapes, so nothing is warmed up but fastnorm)."""
    fns = {"fastnorm": lambda: case.fastnorm(X)}
    fns.update({name: (lambda fn=fn: fn(X)) for name, fn in case.peers.items()})
    if probe:
        run, probe_bytes = stream_probe(case.stream, n_threads)
        fns["probe"] = run
    from . import config_context
    with config_context(n_threads=n_threads), peer_context(n_threads):
        case.fastnorm(X)
        medians = interleaved_medians(fns, rounds, 1, warmup=False)
    limit = probe_bytes / medians["probe"] / 1e9 if probe else None
    return medians["fastnorm"], {name: medians[name] for name in case.peers}, limit


def result_info(case, X, n_threads, fastnorm_s, peer_s, machine_gbps=None):
    """The record of one measured case (pytest-benchmark's extra_info).
    machine_gbps: the limit of the case's stream measured in turn with it
    (stream_probe); by default the run's probe (machine_bandwidth)."""
    from ._cpu import KERNEL_BUILD
    limit = machine_bandwidth(n_threads)[case.stream] if machine_gbps is None else machine_gbps
    nbytes = case.passes * X.nbytes
    info = {
        "case": case.name,
        "shape": "x".join(map(str, X.shape)),
        "dtype": str(X.dtype),
        "threads": n_threads,
        "kernels": KERNEL_BUILD,
        "fastnorm_s": fastnorm_s,
        "minimal_bytes": nbytes,
        "gbps": nbytes / fastnorm_s / 1e9,
        "stream": case.stream,
        "machine_gbps": limit,
        "bw_fraction": nbytes / fastnorm_s / 1e9 / limit,
    }
    for peer, seconds in peer_s.items():
        info[f"{peer}_s"] = seconds
        info[f"speedup_vs_{peer}"] = seconds / fastnorm_s
    return info


COLUMNS = [  # (header, extra_info key, format)
    ("case", "case", "{}"), ("shape", "shape", "{}"), ("dtype", "dtype", "{}"),
    ("thr", "threads", "{}"), ("fastnorm ms", "fastnorm_s", "ms"),
    ("sklearn ms", "sklearn_s", "ms"), ("x sklearn", "speedup_vs_sklearn", "{:.1f}"),
    ("numpy ms", "numpy_s", "ms"), ("x numpy", "speedup_vs_numpy", "{:.1f}"),
    ("torch ms", "torch_s", "ms"), ("x torch", "speedup_vs_torch", "{:.1f}"),
    ("1-process ms", "single_s", "ms"), ("x 1-process", "speedup_vs_single", "{:.2f}"),
    ("dask-ml ms", "dask_ml_s", "ms"), ("x dask-ml", "speedup_vs_dask_ml", "{:.1f}"),
    ("dask ms", "dask_s", "ms"), ("x dask", "speedup_vs_dask", "{:.1f}"),
    ("GB/s", "gbps", "{:.1f}"), ("% of bw", "bw_fraction", "pct"), ("stream", "stream", "{}"),
    ("limit GB/s", "machine_gbps", "{:.1f}"),
    ("fit peak MB", "fastnorm_fit_peak_mb", "{:.1f}"),
    ("sklearn fit peak MB", "sklearn_fit_peak_mb", "{:.1f}"),
]


def _cell(value, fmt):
    if value is None:
        return "-"
    if fmt == "ms":
        return f"{value * 1e3:.1f}"
    if fmt == "pct":
        return f"{value * 100:.0f}%"
    return fmt.format(value)


def _span(values):
    lo, hi = min(values), max(values)
    return f"{lo:.1f}" if f"{lo:.1f}" == f"{hi:.1f}" else f"{lo:.1f}-{hi:.1f}"


def format_table(infos):
    """A Markdown table of result records (`result_info`), with the machine's
    stream bandwidths and the kernel build underneath. Columns no record
    fills are left out."""
    columns = [c for c in COLUMNS if any(info.get(c[1]) is not None for info in infos)]
    rows = [[_cell(info.get(key), fmt) for _, key, fmt in columns] for info in infos]
    header = [h for h, _, _ in columns]
    widths = [max(len(r[i]) for r in rows + [header]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.rjust(w) for c, w in zip(cells, widths)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    limits = {}  # (threads, stream) -> the probe's measurements (one per case when timed in turn)
    for i in infos:
        limits.setdefault((i["threads"], i["stream"]), []).append(i["machine_gbps"])
    if limits:
        out.append("")
        out.append("machine stream bandwidth (same run): " + ", ".join(
            f"{s} {_span(limits[t, s])} GB/s ({t} thr)" for t, s in sorted(limits)))
        out.append(f"kernels: {infos[0]['kernels']}")
    return "\n".join(out)


STREAM_LABELS = {"read": "read", "copy": "read + write", "fresh": "read + fresh write"}


def plot(infos, path):
    """Draw achieved bandwidth per case, fastnorm's and each peer's, as bars
    against the machine's measured stream limits as lines; save to `path`
    (any format matplotlib writes, by its extension). Needs matplotlib."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("--plot needs matplotlib: pip install -e '.[bench]'") from None
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    peers = sorted({k[:-2] for info in infos for k in info
                    if k.endswith("_s") and k != "fastnorm_s"})
    contenders = ["fastnorm"] + peers
    labels = [f"{i['case']}\n{i['shape']} {i['dtype']} {i['threads']}thr" for i in infos]
    width = 0.8 / len(contenders)
    fig, ax = plt.subplots(figsize=(max(8.0, 0.9 * len(infos) + 3), 5.5))
    for k, who in enumerate(contenders):
        gbps = [i["minimal_bytes"] / i[f"{who}_s"] / 1e9 if i.get(f"{who}_s") else 0.0
                for i in infos]
        ax.bar([x + (k - (len(contenders) - 1) / 2) * width for x in range(len(infos))],
               gbps, width, label=who)
    for threads in sorted({i["threads"] for i in infos}):
        limits = machine_bandwidth(threads)
        for style, (stream, label) in zip(("-", "--", ":"), STREAM_LABELS.items()):
            ax.axhline(limits[stream], color="black", linestyle=style, linewidth=1,
                       label=f"machine {label}, {threads} thr ({limits[stream]:.1f} GB/s)")
    ax.set_xticks(range(len(infos)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("achieved GB/s (minimal bytes / median time)")
    ax.set_title("fastnorm and its peers against this machine's memory bandwidth")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the plot
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

"""python -m fastnorm: see that fastnorm gives scikit-learn's numbers, faster.

    python -m fastnorm          the demonstration, then the quick speed table
    python -m fastnorm demo     fastnorm next to scikit-learn on a bundled data set
    python -m fastnorm bench    speed table: fastnorm vs scikit-learn and NumPy
                                (--plot FILE.png: achieved bandwidth against the machine's)
    python -m fastnorm --version

(``fastnorm`` on the command line is the same as ``python -m fastnorm``.)
"""
import argparse
import sys
import time

import numpy as np

# name -> keyword arguments shown in the demonstration
DEMO_CALLS = [
    ("scale", {}),
    ("minmax_scale", {"feature_range": (-1, 1)}),
    ("maxabs_scale", {}),
    ("robust_scale", {"quantile_range": (10.0, 90.0)}),
    ("normalize", {"norm": "l2"}),
]


def demo(out=None):
    """Scale a data set that ships with scikit-learn both ways; compare."""
    out = out or sys.stdout
    import sklearn
    import sklearn.preprocessing as skp
    from sklearn.datasets import load_wine

    import fastnorm.preprocessing as fp

    data = load_wine()
    X = data.data
    print(f"fastnorm demo: scikit-learn's wine data set, {X.shape[0]} samples x "
          f"{X.shape[1]} features (float64), scikit-learn {sklearn.__version__}\n", file=out)
    print(f"{'function':<42} {'max |fastnorm - sklearn|':>25} {'relative':>9}  same?",
          file=out)
    all_same = True
    for name, kwargs in DEMO_CALLS:
        ours = getattr(fp, name)(X, **kwargs)
        theirs = getattr(skp, name)(X, **kwargs)
        diff = np.abs(ours - theirs)
        # relative to the output's magnitude: elements near 0 do not inflate it
        rel = float(diff.max() / max(np.abs(theirs).max(), np.finfo(X.dtype).tiny))
        same = ours.dtype == theirs.dtype and ours.shape == theirs.shape and rel <= 1e-12
        all_same &= same
        call = f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"
        print(f"{call:<42} {diff.max():>25.2e} {rel:>9.1e}  {'yes' if same else 'NO'}",
              file=out)
    i = 0
    print(f"\nfirst sample, first 5 features ({data.feature_names[0]}, ...):", file=out)
    print(f"  raw                 {np.array2string(X[i, :5], precision=4)}", file=out)
    print(f"  fastnorm scale      {np.array2string(fp.scale(X)[i, :5], precision=4)}", file=out)
    print(f"  sklearn  scale      {np.array2string(skp.scale(X)[i, :5], precision=4)}", file=out)
    print("\nAll results equal scikit-learn's (to 1e-12 of the output's magnitude)."
          if all_same
          else "\nSOME RESULTS DIFFER from scikit-learn's.", file=out)
    return pipeline_demo(data, out) and all_same


def pipeline_demo(data, out=None):
    """The same Pipeline twice, with fastnorm's and with sklearn's StandardScaler."""
    out = out or sys.stdout
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler as SkStandardScaler

    from fastnorm.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = train_test_split(
        data.data, data.target, test_size=0.3, random_state=0, stratify=data.target)
    ours = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    theirs = make_pipeline(SkStandardScaler(), LogisticRegression(max_iter=1000))
    p_ours = ours.fit(X_train, y_train).predict(X_test)
    p_theirs = theirs.fit(X_train, y_train).predict(X_test)
    proba_diff = np.abs(ours.predict_proba(X_test) - theirs.predict_proba(X_test)).max()
    same = bool(np.array_equal(p_ours, p_theirs))
    print("\nPipeline(StandardScaler, LogisticRegression) on a 70/30 split of the same data:",
          file=out)
    print(f"  fastnorm.preprocessing.StandardScaler: test accuracy "
          f"{(p_ours == y_test).mean():.3f}", file=out)
    print(f"  sklearn.preprocessing.StandardScaler:  test accuracy "
          f"{(p_theirs == y_test).mean():.3f}", file=out)
    print(f"  identical predictions: {'yes' if same else 'NO'} "
          f"(max probability difference {proba_diff:.1e})", file=out)
    return same


def _progress(i, total, label):
    """One status line on stderr, rewritten in place."""
    sys.stderr.write(f"\r[{i}/{total}] {label:<60}")
    sys.stderr.flush()


def bench(full=False, threads=None, out=None, plot=None):
    """Time every benchmark case against its peers and print the table (and
    draw it to the file `plot`)."""
    out = out or sys.stdout
    from fastnorm import _benchmarks
    from fastnorm._config import available_cpus

    all_threads = available_cpus()
    thread_counts = [threads] if threads else ([1, all_threads] if full and all_threads > 1
                                               else [all_threads])
    shapes = _benchmarks.FULL_SHAPES if full else _benchmarks.QUICK_SHAPES
    dtypes = ["float32", "float64"] if full else ["float32"]
    cases = _benchmarks.cases()
    runs = [(s, d, t, c) for s in shapes for d in dtypes for t in thread_counts for c in cases]
    rounds = 7 if full else 5

    print(f"fastnorm bench ({'full' if full else 'quick'}): medians of {rounds} rounds, "
          "each timing fastnorm, its peers and this machine's own stream bandwidth in "
          "turn; '% of bw' compares with that bandwidth\n", file=out)
    infos = []
    X, X_key = None, None
    start = time.perf_counter()
    for i, (shape, dtype, n_threads, name) in enumerate(runs, 1):
        if (shape, dtype) != X_key:
            X, X_key = None, (shape, dtype)  # free the previous one first
            _progress(i - 1, len(runs), f"making {dtype} data {shape}")
            X = _benchmarks.make_data(shape, dtype)
        case = cases[name]
        _progress(i - 1, len(runs), f"{name} {shape} {dtype}, {n_threads} threads")
        fastnorm_s, peer_s, limit = _benchmarks.time_case(case, X, n_threads, rounds)
        infos.append(_benchmarks.result_info(case, X, n_threads, fastnorm_s, peer_s,
                                             machine_gbps=limit))
    _progress(len(runs), len(runs), f"done in {time.perf_counter() - start:.0f} s")
    sys.stderr.write("\n")
    print(_benchmarks.format_table(infos), file=out)
    if plot:
        print(f"\nplot: {_benchmarks.plot(infos, plot)}", file=out)
    if not full:
        print("\n(python -m fastnorm bench --full times the target shapes "
              f"{', '.join('x'.join(map(str, s)) for s in _benchmarks.FULL_SHAPES)}, "
              "float32 and float64, 1 and all threads: several minutes)", file=out)
    return infos


def version():
    """fastnorm's version: the installed distribution's, else fastnorm.__version__."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as distribution_version
    try:
        return distribution_version("fastnorm")
    except PackageNotFoundError:
        import fastnorm
        return getattr(fastnorm, "__version__", "unknown")


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastnorm",
        description="fastnorm: fast, trustworthy normalization. With no command: "
                    "the demonstration, then the quick speed table.")
    parser.add_argument("--version", action="version", version=f"fastnorm {version()}")
    sub = parser.add_subparsers(dest="command", metavar="{demo,bench}")
    sub.add_parser("demo", help="fastnorm's scaling next to scikit-learn's on a data "
                                "set that ships with scikit-learn: identical results")
    p_bench = sub.add_parser("bench", help="speed table: fastnorm vs scikit-learn and "
                                           "NumPy, speed-up and achieved GB/s")
    p_bench.add_argument("--full", action="store_true",
                         help="the target shapes (2,000,000 x 64 and 20,000 x 4,096), "
                              "float32 and float64, 1 and all threads (several minutes)")
    p_bench.add_argument("--threads", type=int, default=None,
                         help="threads for fastnorm and its peers (default: all CPUs "
                              "this process may use)")
    p_bench.add_argument("--plot", metavar="FILE", default=None,
                         help="also draw achieved bandwidth per case (fastnorm and its "
                              "peers) against the machine's measured limits to FILE "
                              "(.png, .svg, ...; needs matplotlib)")
    args = parser.parse_args(argv)
    if args.command == "bench" and args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")

    same = True
    if args.command in (None, "demo"):
        same = demo()
    if args.command is None:
        print()
    if args.command in (None, "bench"):
        bench(full=getattr(args, "full", False), threads=getattr(args, "threads", None),
              plot=getattr(args, "plot", None))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

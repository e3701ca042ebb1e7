"""Launch every GPU kernel of fastnorm once, at small sizes, for the sanitizers.

    python benches/gpu/launch_all.py [--poison] [--no-pool] [--dtypes float32,...]

Runs each case of CASES for float16, float32 and float64, on aligned inputs
and on misaligned ones (views one element past a buffer's start, so the
kernels take their scalar paths), through the launch helpers of
fastnorm._cuda._launch: row norms on rows of at most 1024 elements (a warp
per row) and longer (a block per row), moments over both axes with and
without weights and NaN skipping, min/max and max |x| per column, the affine
apply on both axes, the channel reductions and element-wise kernels, LRN.
Sizes are tiny: under compute-sanitizer (memcheck, racecheck, initcheck) the
whole run takes seconds.

It records the name expression of every kernel the helpers ask
`_loader.get_kernel` for, and exits with status 1 when a name expression of
`_loader.FAMILIES` was not launched, when a case launched other kernels than
it declares, when a case raised, or when a result holds a non-finite value
(with --poison, outputs start as NaN, so an element a kernel fails to write
shows). CASES (and `planned()`) are plain data: a test compares them with
FAMILIES without a GPU.

It uses CuPy only through `import cupy` and cupy.asarray / asnumpy, array
slicing and reshape, cupy.cuda.runtime.getDevice and
cupy.cuda.Device(i).synchronize (plus cupy.cuda.set_allocator with
--no-pool), so that tests/cudasim's CPU stand-in for CuPy can run it too:
`run(cupy_module)` takes the module to use.

--no-pool turns CuPy's memory pool off, so that each array is its own
allocation and memcheck sees accesses past its end.
"""
import argparse
import contextlib
import importlib.util
import pathlib
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

if importlib.util.find_spec("fastnorm") is None:  # not installed: the checkout's
    sys.path.append(str(pathlib.Path(__file__).resolve().parents[2]))

from fastnorm._cuda import _launch, _loader  # noqa: E402

DTYPES = ("float16", "float32", "float64")
ALIGNMENTS = (False, True)  # misaligned?

# Row shapes: rows of at most _launch.WARP_ROW_MAX elements take the
# warp-per-row path, longer ones the block-per-row path.
ROWS_WARP = (37, 100)
ROWS_BLOCK = (5, 1500)
COLS = [(300, 7), (1000, 40)]  # 40 columns: a 32-wide tile and a partial one
CHANNELS = [(6, 50, 1), (1, 200, 16), (3, 20, 7)]  # NCHW (K=1), pooled NHWC, (N, S, C)
LRN_SHAPE = (2, 7, 20)  # (N, C, S)
LRN_ARGS = (5, 1e-3, 0.75, 2.0)  # size, alpha, beta, k
EPS = 1e-5


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    kernels: tuple  # the kernels of `family` it launches, for every dtype
    run: object  # run(cp, inputs) -> list of result arrays


CASES = []


def case(name, family, *kernels):
    def register(fn):
        CASES.append(Case(name, family, kernels, fn))
        return fn
    return register


def planned():
    """The (family, name expression) pairs that CASES launch over DTYPES."""
    return {(c.family, _loader.name_expression(k, d)) for c in CASES for k in c.kernels
            for d in DTYPES}


def all_expressions():
    """Every (family, name expression) of _loader.FAMILIES."""
    return {(family, e) for family, exprs in _loader.FAMILIES.items() for e in exprs}


def missing(launched):
    """The (family, name expression) pairs of FAMILIES not in `launched`."""
    return sorted(all_expressions() - set(launched))


# ----------------------------------------------------------------- inputs ---

class Inputs:
    """Random inputs of one dtype on the device, misaligned on request."""

    def __init__(self, cp, dtype, misaligned, seed=0):
        self.cp, self.dtype, self.misaligned = cp, np.dtype(dtype), misaligned
        self.rng = np.random.default_rng(seed)

    def host(self, shape, loc=0.5, scale=2.0, dtype=None):
        return (self.rng.standard_normal(shape) * scale + loc).astype(dtype or self.dtype)

    def device(self, a):
        a = np.ascontiguousarray(a)
        if not self.misaligned:
            return self.cp.asarray(a)
        buf = np.zeros(a.size + 1, a.dtype)
        buf[1:] = a.reshape(-1)
        return self.cp.asarray(buf)[1:].reshape(a.shape)

    def array(self, shape, loc=0.5, scale=2.0):
        return self.device(self.host(shape, loc, scale))

    def with_nans(self, shape, fraction=0.1):
        a = self.host(shape)
        a[self.rng.random(shape) < fraction] = np.nan
        return self.device(a)

    def coef(self, shape, loc=0.0, scale=1.0):
        """Host coefficients in the accumulation dtype (the helpers copy them)."""
        return self.host(shape, loc, scale, _launch._acc(self.dtype))


# ------------------------------------------------------------------ cases ---

ROW_KERNELS = ("layer_norm_fwd", "layer_norm_bwd", "layer_norm_param_grads_partial",
               "layer_norm_param_grads_merge")


def _row_norm(inp, shape, affine, bias, rms, want):
    n = shape[1]
    x, dy = inp.array(shape), inp.array(shape, 0.0, 1.0)
    w = inp.array(n, 1.0, 0.5) if affine else None
    b = inp.array(n, 0.0, 0.5) if bias else None
    y, mean, rstd = _launch.row_norm_forward(x, w, b, EPS, rms)
    dx, dw, db = _launch.row_norm_backward(dy, x, w, mean, rstd, rms, *want)
    return [y, mean, rstd, dx] + [a for a in (dw, db) if a is not None]


@case("layer_norm, warp rows, weight and bias, dw and db", "row_norms", *ROW_KERNELS)
def _(cp, inp):
    return _row_norm(inp, ROWS_WARP, True, True, False, (True, True))


@case("layer_norm, block rows, weight and bias, dw and db", "row_norms", *ROW_KERNELS)
def _(cp, inp):
    return _row_norm(inp, ROWS_BLOCK, True, True, False, (True, True))


@case("rms_norm, warp rows, weight, dw", "row_norms", *ROW_KERNELS)
def _(cp, inp):
    return _row_norm(inp, ROWS_WARP, True, False, True, (True, False))


@case("rms_norm, block rows, no weight, db", "row_norms", *ROW_KERNELS)
def _(cp, inp):
    return _row_norm(inp, ROWS_BLOCK, False, False, True, (False, True))


@case("layer_norm, both row paths, no weight, no parameter gradients", "row_norms",
      "layer_norm_fwd", "layer_norm_bwd")
def _(cp, inp):
    return (_row_norm(inp, ROWS_WARP, False, False, False, (False, False))
            + _row_norm(inp, ROWS_BLOCK, False, False, False, (False, False)))


@case("moments over columns: plain, weighted, ignore_nan", "column_stats",
      "col_moments_partial", "col_moments_merge")
def _(cp, inp):
    out = []
    for shape in COLS:
        out += _launch.moments(inp.array(shape), 0)
        w = np.abs(inp.coef(shape[0], 1.0, 0.2))
        out += _launch.moments(inp.array(shape), 0, weights=w)
        out += _launch.moments(inp.with_nans(shape), 0, ignore_nan=True)
    return out


@case("moments over rows: both row paths, weighted, ignore_nan", "column_stats",
      "row_moments")
def _(cp, inp):
    out = []
    for shape in (ROWS_WARP, ROWS_BLOCK):
        out += _launch.moments(inp.array(shape), 1)
        w = np.abs(inp.coef(shape[1], 1.0, 0.2))
        out += _launch.moments(inp.with_nans(shape), 1, weights=w, ignore_nan=True)
    return out


@case("min and max per column", "column_stats", "col_min_max_partial", "col_min_max_merge")
def _(cp, inp):
    return [a for shape in COLS for a in _launch.col_min_max(inp.with_nans(shape))]


@case("max |x| per column", "column_stats", "col_max_abs_partial", "col_max_abs_merge")
def _(cp, inp):
    return [_launch.col_max_abs(inp.with_nans(shape)) for shape in COLS]


@case("affine per column, new and in-place output", "apply", "affine_cols")
def _(cp, inp):
    shape = COLS[1]
    coefs = [inp.coef(shape[1], 0.0, 1.0) for _ in range(3)]
    out, has_inf = _launch.affine(inp.array(shape), 0, *coefs)
    x = inp.array(shape)
    same, has_inf2 = _launch.affine(x, 0, *coefs, out=x)
    return [out, same, has_inf, has_inf2]


@case("affine per row", "apply", "affine_rows")
def _(cp, inp):
    shape = ROWS_BLOCK
    coefs = [inp.coef(shape[0], 0.0, 1.0) for _ in range(3)]
    out, has_inf = _launch.affine(inp.array(shape), 1, *coefs)
    return [out, has_inf]


@case("channel moments", "channels", "channel_moments_partial", "channel_moments_merge")
def _(cp, inp):
    return [a for shape in CHANNELS for a in _launch.channel_moments(inp.array(shape))]


@case("channel dot sums", "channels", "channel_dot_sums_partial", "channel_dot_sums_merge")
def _(cp, inp):
    out = []
    for shape in CHANNELS:
        shift = inp.coef((shape[0], shape[2]), 0.5, 1.0)
        out += _launch.channel_dot_sums(inp.array(shape, 0.0, 1.0), inp.array(shape), shift)
    return out


@case("channel affine", "channels", "channel_affine")
def _(cp, inp):
    return [_launch.channel_affine(inp.array(shape),
                                   *(inp.coef((shape[0], shape[2])) for _ in range(3)))
            for shape in CHANNELS]


@case("channel backward", "channels", "channel_backward")
def _(cp, inp):
    return [_launch.channel_backward(inp.array(shape, 0.0, 1.0), inp.array(shape),
                                     *(inp.coef((shape[0], shape[2])) for _ in range(4)))
            for shape in CHANNELS]


@case("local response norm forward", "channels", "lrn_forward")
def _(cp, inp):
    return [_launch.lrn_forward(inp.array(LRN_SHAPE), *LRN_ARGS)]


@case("local response norm backward", "channels", "lrn_backward")
def _(cp, inp):
    return [_launch.lrn_backward(inp.array(LRN_SHAPE, 0.0, 1.0), inp.array(LRN_SHAPE),
                                 *LRN_ARGS)]


# ------------------------------------------------------------------- run ---

@contextlib.contextmanager
def recording():
    """A list that collects the (family, name expression) of every kernel
    requested from _loader.get_kernel inside the block."""
    seen = []
    original = _loader.get_kernel

    def get_kernel(family, name_expression):
        seen.append((family, name_expression))
        return original(family, name_expression)

    _loader.get_kernel = get_kernel
    try:
        yield seen
    finally:
        _loader.get_kernel = original


@dataclass
class Outcome:
    case: str
    dtype: str
    misaligned: bool
    launched: set
    problems: list
    seconds: float


def run(cp, dtypes=DTYPES, alignments=ALIGNMENTS, check_values=True, log=print):
    """Run every case with the module `cp` as CuPy: a list of Outcome."""
    device = cp.cuda.Device(cp.cuda.runtime.getDevice())
    outcomes = []
    with recording() as seen:
        for c in CASES:
            for dtype in dtypes:
                for misaligned in alignments:
                    start, first = time.perf_counter(), len(seen)
                    problems = []
                    try:
                        results = c.run(cp, Inputs(cp, dtype, misaligned))
                        device.synchronize()
                        if check_values:
                            for i, r in enumerate(results):
                                bad = int(np.count_nonzero(~np.isfinite(
                                    np.asarray(cp.asnumpy(r), np.float64))))
                                if bad:
                                    problems.append(f"result {i}: {bad} non-finite values")
                    except Exception as err:  # keep going: launch the other kernels
                        problems.append(f"raised {type(err).__name__}: {err}")
                        log(traceback.format_exc())
                    launched = set(seen[first:])
                    want = {(c.family, _loader.name_expression(k, dtype)) for k in c.kernels}
                    if not problems and launched != want:
                        problems.append(f"launched {sorted(launched)}, declared {sorted(want)}")
                    o = Outcome(c.name, dtype, misaligned, launched, problems,
                                time.perf_counter() - start)
                    outcomes.append(o)
                    status = "ok" if not problems else "FAILED: " + "; ".join(problems)
                    log(f"{c.name} [{dtype}{', misaligned' if misaligned else ''}]: "
                        f"{len(launched)} kernels, {o.seconds:.2f} s, {status}")
    return outcomes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--poison", action="store_true",
                        help="outputs start as NaN (_launch.POISON), so unwritten elements show")
    parser.add_argument("--no-pool", action="store_true",
                        help="turn CuPy's memory pool off (for compute-sanitizer memcheck)")
    parser.add_argument("--dtypes", default=",".join(DTYPES),
                        help="comma-separated dtypes (default: all); coverage is only "
                             "required with all of them")
    args = parser.parse_args(argv)
    dtypes = tuple(d for d in args.dtypes.split(",") if d)
    unknown = set(dtypes) - set(DTYPES)
    if unknown:
        parser.error(f"unknown dtypes: {sorted(unknown)}")

    import cupy
    if args.no_pool:
        cupy.cuda.set_allocator(None)
    _launch.POISON = args.poison
    start = time.perf_counter()
    outcomes = run(cupy, dtypes)
    failed = [o for o in outcomes if o.problems]
    launched = set().union(*(o.launched for o in outcomes))
    not_covered = missing(launched) if set(dtypes) == set(DTYPES) else []
    n_all = len(all_expressions())
    print(f"\n{len(outcomes)} runs of {len(CASES)} cases in {time.perf_counter() - start:.1f} s;"
          f" {len(launched & all_expressions())} of {n_all} name expressions launched;"
          f" {len(failed)} runs failed")
    for family, expr in not_covered:
        print(f"NOT LAUNCHED: {family}: {expr}")
    return 1 if failed or not_covered else 0


if __name__ == "__main__":
    sys.exit(main())

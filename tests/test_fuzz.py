"""A standing fuzz test (issue 12): property-based checks of every public
function of fastnorm.preprocessing, the main fastnorm.stats functions and
the fastnorm.functional forwards (and backwards) over shapes (0 and 1 along
each axis included), dtypes, memory layouts (Fortran order, steps, negative
strides, arrays that start mid-buffer), ``out=`` aliasing and thread counts.

Every array a call sees is carved out of a larger flat buffer filled with a
sentinel (a NaN with a payload, or 12345): after the call, every element of
every buffer that the call was not allowed to write (the gaps of a strided
view and the guard zones before and after it included) must hold its
sentinel bit for bit, and inputs must be unchanged unless the call asked
for it (``out is X``, ``copy=False``, running statistics).

Oracles: scikit-learn for preprocessing, float64 NumPy for stats, torch
(CPU, float64) for functional; a call the oracle refuses must be refused
with a clean ValueError/TypeError that names an argument.

Kernels run on one thread below 64 KiB of input; this module lowers that
threshold so that config_context(n_threads=2) really splits its small
arrays, and checks that the result is bitwise the same on 1 and 2 threads.

The whole file runs in about 35 s on 2 cores with the default example
counts, derandomized (the same examples every run, no example database).
For a longer local hunt with fresh examples:

    FASTNORM_FUZZ_SCALE=20 FASTNORM_FUZZ_RANDOM=1 pytest tests/test_fuzz.py

Bugs the fuzz found are kept as small regression tests at the end of the
file. While a bug is open, pin it there as a strict xfail and keep the fuzz
away from its inputs with a reject() marked with the test's name.
"""
import inspect
import math
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import sklearn.preprocessing as skp
from hypothesis import HealthCheck, Phase, given, note, settings, strategies as st

import fastnorm
import fastnorm._config
from conftest import assert_close, condition, random_data
from fastnorm import functional as F
from fastnorm import preprocessing as fnp
from fastnorm import stats as fst

import torch  # noqa: E402  (the test extra pins it)
TF = torch.nn.functional

# ------------------------------------------------------------- settings ---

_SCALE = float(os.environ.get("FASTNORM_FUZZ_SCALE", "1"))
_RANDOM = bool(os.environ.get("FASTNORM_FUZZ_RANDOM"))


def fuzz(max_examples):
    return settings(max_examples=max(1, int(max_examples * _SCALE)), deadline=None,
                    derandomize=not _RANDOM, database=None, print_blob=True,
                    phases=[Phase.explicit, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])


@pytest.fixture(autouse=True, scope="module")
def _threads_even_for_small_inputs():
    """Kernels run on one thread below SMALL_INPUT_BYTES (64 KiB); lower it so
    that n_threads=2 really splits these small arrays between two threads."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastnorm._config, "SMALL_INPUT_BYTES", 0, raising=False)
        yield


THREADS = st.sampled_from([1, 2])
FLOATS = ("float64", "float32")
# converted by preprocessing and stats (refused by functional but for byte order)
CONVERTED = ("float16", "int64", "int32", ">f8", ">f4", ">f2")
DTYPES = FLOATS * 3 + CONVERTED
SWAPPED = (">f8", ">f4")

# ---------------------------------------------------- guarded allocation ---

_NAN_BITS = {8: 0x7FF8_DEAD_BEEF_0BAD, 4: 0x7FDE_ADBE, 2: 0x7E5A}  # quiet NaNs with a payload


def _sentinel_bits(dtype, sentinel):
    dtype = np.dtype(dtype)
    if sentinel == "nan":
        return _NAN_BITS[dtype.itemsize]
    return int(np.asarray(12345, dtype=dtype).view(f"u{dtype.itemsize}"))


@dataclass(frozen=True)
class Layout:
    """How an array sits in its buffer: C or F order of the parent block,
    a step per axis (a strided view), a flip per axis (negative strides),
    and `pre`/`post` guard elements before and after."""
    order: str = "C"
    steps: tuple = ()
    flips: tuple = ()
    pre: int = 1
    post: int = 1

    def extent(self, shape):
        return math.prod(n * s for n, s in zip(shape, self.steps or (1,) * len(shape)))


@st.composite
def layouts(draw, ndim):
    return Layout(order=draw(st.sampled_from("CF")),
                  steps=tuple(draw(st.sampled_from([1, 1, 2, 3])) for _ in range(ndim)),
                  flips=tuple(draw(st.booleans()) for _ in range(ndim)),
                  pre=draw(st.integers(1, 5)), post=draw(st.integers(1, 5)))


class Arena:
    """A flat buffer of sentinel values that the arrays of a call are carved
    out of; `check` asserts that nothing but the allowed elements changed."""

    def __init__(self, name, dtype, size, sentinel):
        self.name = name
        self.buf = np.empty(size, dtype)
        self.bits = self.buf.view(f"u{self.buf.dtype.itemsize}")
        self.bits[...] = _sentinel_bits(dtype, sentinel)
        self.spans = []

    def carve(self, start, shape, layout):
        """A view of `shape` whose parent block starts at buffer index `start`;
        returns (view, the buffer index of each of its elements)."""
        steps = layout.steps or (1,) * len(shape)
        flips = layout.flips or (False,) * len(shape)
        parent = tuple(n * s for n, s in zip(shape, steps))
        n = math.prod(parent)
        index = tuple(slice(None, None, -s if f else s) for s, f in zip(steps, flips))
        view = self.buf[start:start + n].reshape(parent, order=layout.order)[index]
        where = np.arange(start, start + n).reshape(parent, order=layout.order)[index]
        assert view.shape == tuple(shape) and (view.size == 0 or np.shares_memory(view, self.buf))
        self.spans.append((start, start + n))
        return view, where.ravel()

    def freeze(self):
        self.before = self.bits.copy()

    def check(self, allowed=()):
        """Every element outside the `allowed` index arrays is bit-identical."""
        ok = np.zeros(self.bits.shape, bool)
        for where in allowed:
            ok[where] = True
        changed = np.flatnonzero((self.bits != self.before) & ~ok)
        if changed.size:
            lo = min(s for s, _ in self.spans) if self.spans else 0
            hi = max(e for _, e in self.spans) if self.spans else 0
            zones = ["guard before" if i < lo else "guard after" if i >= hi
                     else "inside (a gap or a read-only element)" for i in changed[:5]]
            raise AssertionError(
                f"{self.name}: {changed.size} element(s) the call may not write changed, "
                f"at buffer indices {changed[:5].tolist()} ({', '.join(zones)}; the "
                f"array spans [{lo}, {hi}) of {self.bits.size}); now "
                f"{self.buf[changed[:5]].tolist()}")


def guarded(name, values, layout, sentinel):
    """(array with `values` carved from a fresh Arena, its arena, its element indices)."""
    values = np.asarray(values)
    arena = Arena(name, values.dtype, layout.pre + layout.extent(values.shape) + layout.post,
                  sentinel)
    view, where = arena.carve(layout.pre, values.shape, layout)
    view[...] = values
    return view, arena, where


class Call:
    """The guarded arrays of one call: arenas, allowed writes, checks."""

    def __init__(self, sentinel):
        self.sentinel = sentinel
        self.arenas, self.where = {}, {}

    def add(self, name, values, layout, readonly=False):
        if values is None:
            return None
        view, arena, where = guarded(name, values, layout, self.sentinel)
        self.arenas[name], self.where[name] = arena, where
        view.flags.writeable = not readonly
        return view

    def freeze(self):
        for arena in self.arenas.values():
            arena.freeze()

    def check(self, writable=()):
        """Nothing but the named arrays' own elements changed (writable: names,
        or (arena name, element indices) pairs)."""
        allowed = {}
        for w in writable:
            name, where = (w, self.where[w]) if isinstance(w, str) else w
            allowed.setdefault(name, []).append(where)
        for name, arena in self.arenas.items():
            arena.check(allowed.get(name, ()))


# --------------------------------------------------------------- values ---

FLAVORS = ("normal", "normal", "nan", "constant", "ties")


def make_values(seed, shape, dtype, flavor, *, allow_nan=True):
    """Random test data of `shape` and `dtype`: normal, with NaNs, with
    constant slices (along the first and the last axis) or with ties."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    X = random_data(rng, shape, dtype)
    if X.size == 0:
        return X
    if flavor == "nan" and dtype.kind == "f" and allow_nan:
        X[rng.random(shape) < 0.25] = np.nan
    elif flavor == "constant" and X.ndim:
        c = X.flat[0]
        X[..., rng.random(shape[-1]) < 0.5] = c
        if X.ndim > 1 and rng.random() < 0.5:
            X[rng.random(shape[0]) < 0.5] = c
    elif flavor == "ties":
        X = np.round(X / 4).astype(dtype)
    return X


def result_dtype(dtype):
    """The output dtype of preprocessing for input of `dtype` (scikit-learn's:
    native float16/32/64 kept, anything else float64)."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" and dtype.isnative else np.dtype(np.float64)


def work_dtype(dtype):
    """The dtype preprocessing computes its result in (float16 in float32)."""
    rdtype = result_dtype(dtype)
    return np.dtype(np.float32) if rdtype == np.float16 else rdtype


def kernel_dtype(dtype):
    """The dtype stats and the functional norms compute in for `dtype`."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f" and dtype.itemsize <= 4 and dtype.isnative:
        return np.dtype(np.float32)
    return np.dtype(np.float64)  # byte-swapped floats too, as scikit-learn


def check_close(ours, ref, dtype, cond=1.0, err_msg=""):
    """conftest.assert_close, plus float16: compared with one float16 ulp
    (fastnorm computes float16 in float32, as the reference does, then
    rounds; the two roundings may land on neighbouring float16 values)."""
    dtype = np.dtype(dtype)
    if dtype != np.float16:
        return assert_close(ours, ref, dtype, cond=cond, err_msg=err_msg)
    a, b = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    assert a.shape == b.shape, f"{err_msg}: shape {a.shape} != {b.shape}"
    finite = b[np.isfinite(b)]
    mag = max(1.0, float(np.abs(finite).max())) if finite.size else 1.0
    eps16 = float(np.finfo(np.float16).eps)
    atol = np.maximum(2 * eps16 * mag, 4 * np.finfo(np.float32).eps * mag * np.asarray(cond))
    ok = np.isclose(a, b, rtol=eps16, atol=atol, equal_nan=True) & (np.isnan(a) == np.isnan(b))
    assert ok.all(), f"{err_msg}: float16 results differ\nours={a!r}\nref={b!r}"


def same_bits(a, b, what):
    """Bitwise equality (the thread-count invariance DESIGN.md promises)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert np.array_equal(a.view(f"u{a.dtype.itemsize}"), b.view(f"u{b.dtype.itemsize}")), \
        f"{what}: results differ between n_threads=1 and n_threads=2"


def quiet_call(n_threads, fn, *args, **kwargs):
    with fastnorm.config_context(n_threads=n_threads), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def reference(fn, *args, **kwargs):
    """fn(...) or the exception it raised."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any refusal of the oracle
            return exc


def check_clean_error(exc, fn, must_name=None):
    """A refusal must be a ValueError/TypeError naming an argument of `fn`
    (or the given one)."""
    assert isinstance(exc, (ValueError, TypeError)), \
        f"unclean error {type(exc).__name__}: {exc}"
    msg = str(exc)
    names = [must_name] if isinstance(must_name, str) else must_name or \
        list(inspect.signature(fn).parameters)
    assert any(re.search(rf"(?<![\w.]){re.escape(n)}\b", msg) for n in names), \
        f"{type(exc).__name__} does not name {' or '.join(names)}: {msg!r}"


def expect_refusal(fn, call, kwargs_call, must_name=None, like=None, may_write=()):
    """`call()` must raise a clean ValueError/TypeError naming an argument
    (like: the same error as scikit-learn's, for its drop-in classes), and
    write nothing (but `may_write`: an out= whose contents are then undefined)."""
    try:
        got = kwargs_call()
    except (ValueError, TypeError) as exc:
        if like is not None:  # scikit-learn's error, or the same kind naming X
            shapeless = (lambda e: re.sub(r"shape=\([\d, ]*\)", "", str(e)))
            assert type(exc) is type(like) and (
                shapeless(exc) == shapeless(like) or re.search(r"\bX\b", str(exc))), \
                f"scikit-learn raises {type(like).__name__}({like}), fastnorm " \
                f"{type(exc).__name__}({exc})"
        else:
            check_clean_error(exc, fn, must_name)
        call.check(may_write)
        return exc
    except Exception as exc:
        raise AssertionError(f"unclean error {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"the oracle refuses this call but fastnorm returned {got!r}")


# ------------------------------------------------------- preprocessing ---

PRE_KWARGS = {
    "scale": st.fixed_dictionaries({"with_mean": st.booleans(), "with_std": st.booleans()}),
    "minmax_scale": st.fixed_dictionaries(
        {"feature_range": st.sampled_from([(0, 1), (-3, -1), (-2.5, 4)])}),
    "maxabs_scale": st.just({}),
    "robust_scale": st.fixed_dictionaries({
        "with_centering": st.booleans(), "with_scaling": st.booleans(),
        "quantile_range": st.sampled_from([(25.0, 75.0), (10.0, 90.0), (0.0, 100.0),
                                           (50.0, 50.0)]),
        "unit_variance": st.booleans()}).filter(
            lambda kw: not (kw["unit_variance"] and kw["with_scaling"]
                            and kw["quantile_range"] == (50.0, 50.0))),
    "normalize": st.fixed_dictionaries({"norm": st.sampled_from(["l2", "l1", "max"]),
                                        "return_norm": st.booleans()}),
}



def sklearn_reference(fn, values, **kw):
    """scikit-learn on a private copy (float16: computed in float32, rounded
    to float16, as fastnorm documents)."""
    work = values.astype(np.float32) if values.dtype == np.float16 else values.copy()
    res = reference(fn, work, **kw)
    if values.dtype == np.float16 and not isinstance(res, Exception):
        res = tuple(r.astype(np.float16) for r in res) if isinstance(res, tuple) \
            else res.astype(np.float16)
    return res


@st.composite
def shapes_2d(draw, max_rows=64, max_cols=16):
    return (draw(st.integers(0, max_rows)), draw(st.integers(0, max_cols)))


@fuzz(150)
@given(data=st.data(), name=st.sampled_from(list(PRE_KWARGS)), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(DTYPES), flavor=st.sampled_from(FLAVORS),
       axis=st.sampled_from([0, 1]), copy=st.booleans(), n_threads=THREADS,
       sentinel=st.sampled_from(["nan", "number"]),
       out_mode=st.sampled_from([None, None, "X", "separate", "overlap", "wrong_dtype",
                                 "wrong_shape"]))
def test_preprocessing_functions(data, name, seed, dtype, flavor, axis, copy, n_threads,
                                 sentinel, out_mode):
    kw = data.draw(PRE_KWARGS[name], label="kwargs")
    readonly = data.draw(st.sampled_from([False, False, False, True]), label="X read-only")
    ndim = 2 if name == "normalize" else data.draw(st.sampled_from([2, 2, 1]), label="ndim")
    shape = data.draw(shapes_2d(), label="shape")[:ndim]
    x_layout = data.draw(layouts(ndim), label="X layout")
    dtype = np.dtype(dtype)
    rdtype = result_dtype(dtype)
    if out_mode == "overlap" and dtype != rdtype:
        out_mode = "separate"  # int X: out is float64, it cannot alias X's buffer
    out_layout = data.draw(layouts(ndim), label="out layout") if out_mode else None
    values = make_values(seed, shape, dtype, flavor)
    fn = getattr(fnp, name)
    expected = sklearn_reference(getattr(skp, name), values, axis=axis, copy=True, **kw)

    n_x = x_layout.extent(shape)
    shift = data.draw(st.integers(0, max(n_x, 1)), label="out shift") \
        if out_mode == "overlap" else 0

    def build():
        call = Call(sentinel)
        out, out_where = None, None
        if out_mode == "overlap":
            # out carved from X's buffer, shifted: partly (or wholly) over X
            n_out = out_layout.extent(shape)
            arena = Arena("X", dtype, x_layout.pre + max(n_x, shift + n_out) + x_layout.post,
                          sentinel)
            X, x_where = arena.carve(x_layout.pre, shape, x_layout)
            X[...] = values
            X.flags.writeable = not readonly
            out, out_where = arena.carve(x_layout.pre + shift, shape, out_layout)
            call.arenas["X"], call.where["X"] = arena, x_where
        else:
            X = call.add("X", values, x_layout, readonly)
        if out_mode == "X":
            out = X
        elif out_mode in ("separate", "wrong_dtype", "wrong_shape"):
            out_dtype = rdtype if out_mode != "wrong_dtype" else \
                np.dtype(np.float32 if rdtype == np.float64 else np.float64)
            out_shape = shape if out_mode != "wrong_shape" else (shape[0] + 1,) + shape[1:]
            out = call.add("out", np.zeros(out_shape, out_dtype), out_layout)
        call.freeze()
        return call, X, out, out_where

    call, X, out, out_where = build()
    note(f"X strides {X.strides}, out strides {None if out is None else out.strides}")
    bad_out = out_mode in ("wrong_dtype", "wrong_shape") or (
        out_mode == "X" and (dtype != rdtype or readonly))
    refuses = isinstance(expected, Exception) or bad_out
    run = (lambda X, out: quiet_call(n_threads, fn, X, axis=axis, copy=copy, out=out, **kw))
    if refuses:
        must = (["X", "out"] if bad_out else "X") if values.size == 0 else \
            "out" if bad_out and not isinstance(expected, Exception) else None
        # an error found on the way (a NaN for normalize) may leave a separate
        # out written (as NumPy's ufuncs do), never X itself
        may = [("X", out_where)] if out_mode == "overlap" else \
            ["out"] if out_mode == "separate" else []
        expect_refusal(fn, call, lambda: run(X, out), must, may_write=may)
        return

    got = run(X, out)
    Y, norms = got if kw.get("return_norm") else (got, None)
    ref_Y, ref_norms = expected if kw.get("return_norm") else (expected, None)
    assert isinstance(Y, np.ndarray) and Y.dtype == rdtype and Y.shape == shape, \
        f"result {type(Y).__name__} {getattr(Y, 'dtype', None)} {getattr(Y, 'shape', None)}"
    in_place = out is None and not copy and dtype == rdtype and not readonly
    if out is not None:
        assert Y is out, "out= given: the result must be out"
    elif in_place:
        assert Y is X, "copy=False on a writeable float array: scaled in place"
    check_close(Y, ref_Y, rdtype, cond=condition(name, kw, values, axis, work_dtype(dtype)),
                err_msg=name)
    if norms is not None:
        assert norms.dtype == ref_norms.dtype
        check_close(norms, ref_norms, rdtype, err_msg="norms")
    if out_mode == "overlap":
        call.check([("X", out_where)])
    else:
        call.check(["X"] if out_mode == "X" or in_place else ["out"] if out is not None else [])

    # the same call on the other thread count: bitwise the same result
    _, X2, out2, _ = build()
    got2 = quiet_call(3 - n_threads, fn, X2, axis=axis, copy=copy, out=out2, **kw)
    same_bits(got2[0] if norms is not None else got2, Y, name)


SCALER_PARAMS = {
    "StandardScaler": st.fixed_dictionaries({"with_mean": st.booleans(),
                                             "with_std": st.booleans()}),
    "MinMaxScaler": st.fixed_dictionaries({
        "feature_range": st.sampled_from([(0, 1), (-3, -1), (-2.5, 4)]),
        "clip": st.booleans()}),
    "MaxAbsScaler": st.just({}),
    "RobustScaler": PRE_KWARGS["robust_scale"],
    "Normalizer": st.fixed_dictionaries({"norm": st.sampled_from(["l2", "l1", "max"])}),
}
_FUNCTION_OF = {"StandardScaler": "scale", "MinMaxScaler": "minmax_scale",
                "MaxAbsScaler": "maxabs_scale", "RobustScaler": "robust_scale",
                "Normalizer": "normalize"}


@fuzz(60)
@given(data=st.data(), cls=st.sampled_from(list(SCALER_PARAMS)), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(DTYPES), flavor=st.sampled_from(FLAVORS),
       copy=st.booleans(), n_threads=THREADS, sentinel=st.sampled_from(["nan", "number"]),
       chunked=st.booleans())
def test_transformers(data, cls, seed, dtype, flavor, copy, n_threads, sentinel, chunked):
    """fit_transform, transform and inverse_transform of each transformer,
    as scikit-learn's, on guarded arrays (copy=False may write X, and
    only with the result). chunked: fitted by partial_fit_chunks."""
    params = {**data.draw(SCALER_PARAMS[cls], label="params"), "copy": copy}
    shape = data.draw(shapes_2d(), label="X shape")
    z_rows = data.draw(st.integers(0, 64), label="Z rows")
    dtype = np.dtype(dtype)
    rdtype = result_dtype(dtype)
    if cls == "Normalizer" and flavor == "nan":
        flavor = "normal"  # NaN is an error there: covered by the function test
    values = make_values(seed, shape, dtype, flavor)
    z_values = make_values(seed + 1, (z_rows, shape[1]), dtype, flavor)
    ours = getattr(fnp, cls)(**params)
    theirs = getattr(skp, cls)(**{**params, "copy": True})
    work = (lambda v: v.astype(np.float32) if v.dtype == np.float16 else v.copy())
    back = (lambda r: r.astype(np.float16) if dtype == np.float16 and
            not isinstance(r, Exception) else r)
    chunked = chunked and cls in ("StandardScaler", "MinMaxScaler", "MaxAbsScaler")
    chunk_rows = data.draw(st.integers(1, 8), label="chunk_rows") if chunked else None
    cond = condition(_FUNCTION_OF[cls], params, values, 0, work_dtype(dtype))

    readonly = data.draw(st.sampled_from([False, False, False, True]), label="read-only")
    call = Call(sentinel)
    X = call.add("X", values, data.draw(layouts(2), label="X layout"), readonly)
    Z = call.add("Z", z_values, data.draw(layouts(2), label="Z layout"), readonly)
    call.freeze()
    # partial_fit_chunks promises the result of fit on the whole data
    expected = back(reference(theirs.fit_transform, work(values)))
    in_place = not copy and dtype == rdtype and not readonly
    if isinstance(expected, Exception):
        expect_refusal(ours.fit_transform, call,
                       lambda: quiet_call(n_threads, ours.fit_transform, X), like=expected)
        return
    if chunked:
        quiet_call(n_threads, fnp.partial_fit_chunks, ours, X, chunk_rows=chunk_rows)
        got = quiet_call(n_threads, ours.transform, X)
    else:
        got = quiet_call(n_threads, ours.fit_transform, X)
    assert got.dtype == rdtype and got.shape == shape
    check_close(got, expected, rdtype, cond=cond, err_msg=f"{cls}.fit_transform")
    call.check(["X"] if in_place else [])
    if in_place and not np.array_equal(X, values, equal_nan=True):
        same_bits(np.array(X), got, f"{cls}.fit_transform: what copy=False wrote into X")
    call.freeze()

    # transform of other data with the fitted statistics
    expected = back(reference(theirs.transform, work(z_values)))
    if isinstance(expected, Exception):
        expect_refusal(ours.transform, call, lambda: quiet_call(n_threads, ours.transform, Z),
                       like=expected)
        return
    got_z = quiet_call(n_threads, ours.transform, Z)
    check_close(got_z, expected, rdtype, cond=cond, err_msg=f"{cls}.transform")
    call.check(["Z"] if in_place else [])
    if cls == "Normalizer":
        return
    # inverse_transform of a guarded copy of the transform (in the result dtype)
    t_values = np.array(got_z)
    expected = back(reference(theirs.inverse_transform, work(t_values)))
    call = Call(sentinel)
    T = call.add("T", t_values, data.draw(layouts(2), label="T layout"), readonly)
    call.freeze()
    if isinstance(expected, Exception):
        expect_refusal(ours.inverse_transform, call,
                       lambda: quiet_call(n_threads, ours.inverse_transform, T), like=expected)
        return
    got_x = quiet_call(n_threads, ours.inverse_transform, T)
    check_close(got_x, expected, rdtype, err_msg=f"{cls}.inverse_transform")
    call.check(["T"] if not (copy or readonly) else [])


# ---------------------------------------------------------------- stats ---

def _ref_moments(X, axis, w, ignore_nan):
    """float64 (count, mean, m2) along `axis` (X 2-D, float64)."""
    A = X if axis == 0 else X.T  # reduce over rows of A
    W = np.ones(A.shape[0]) if w is None else w.astype(np.float64)
    keep = ~np.isnan(A) if ignore_nan else np.ones(A.shape, bool)
    Wk = W[:, None] * keep
    A0 = np.where(keep, A, 0.0)
    with np.errstate(all="ignore"):
        count = Wk.sum(axis=0)
        mean = (Wk * A0).sum(axis=0) / count
        m2 = (Wk * np.where(keep, A0 - mean, 0.0) ** 2).sum(axis=0)
    mean = np.where(count > 0, mean, np.nan)
    m2 = np.where(count > 0, m2, 0.0)
    return count, mean, m2


@fuzz(80)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(DTYPES), flavor=st.sampled_from(FLAVORS),
       axis=st.sampled_from([0, 1, -1, -2]), ignore_nan=st.booleans(), n_threads=THREADS,
       sentinel=st.sampled_from(["nan", "number"]),
       weights=st.sampled_from([None, None, "random", "zeros_some", "wrong_length"]))
def test_stats_moments(data, seed, dtype, flavor, axis, ignore_nan, n_threads, sentinel,
                       weights):
    ndim = data.draw(st.sampled_from([2, 2, 1]), label="ndim")
    shape = data.draw(shapes_2d(), label="shape")[:ndim]
    values = make_values(seed, shape, dtype, flavor)
    readonly = data.draw(st.booleans(), label="read-only")
    call = Call(sentinel)
    X = call.add("X", values, data.draw(layouts(ndim), label="X layout"), readonly)
    ok_axis = -ndim <= axis < ndim
    n = shape[axis % ndim] if ok_axis else 1
    rng = np.random.default_rng(seed + 7)
    w_values = None
    if weights == "random":
        w_values = rng.uniform(0, 3, n)
    elif weights == "zeros_some":
        w_values = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(0, 3, n))
    elif weights == "wrong_length":
        w_values = np.ones(n + 1)
    w = call.add("sample_weight", w_values, data.draw(layouts(1), label="w layout"), readonly)
    call.freeze()
    run = (lambda: quiet_call(n_threads, fst.moments, X, axis=axis, sample_weight=w,
                              ignore_nan=ignore_nan))
    if not ok_axis:
        expect_refusal(fst.moments, call, run, "axis")
        return
    if weights == "wrong_length":
        expect_refusal(fst.moments, call, run, "sample_weight")
        return
    m = run()
    X2 = values.astype(np.float64)
    X2 = X2 if ndim == 2 else X2[:, None]
    ref = _ref_moments(X2, axis % ndim if ndim == 2 else 0, w_values, ignore_nan)
    for got, want, what in zip((m.count, m.mean, m.m2), ref, ("count", "mean", "m2")):
        got = np.asarray(got)
        assert got.dtype == np.float64, what
        check_close(got, want.reshape(got.shape), np.float64, err_msg=what)
    call.check()
    m1 = quiet_call(3 - n_threads, fst.moments, X, axis=axis, sample_weight=w,
                    ignore_nan=ignore_nan)
    for a, b in zip((m.count, m.mean, m.m2), (m1.count, m1.mean, m1.m2)):
        same_bits(a, b, "moments")


@fuzz(80)
@given(data=st.data(), fn=st.sampled_from(["min_max", "max_abs", "quantiles"]),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(DTYPES),
       flavor=st.sampled_from(FLAVORS), axis=st.sampled_from([0, 1, -1]),
       ignore_nan=st.booleans(), n_threads=THREADS, sentinel=st.sampled_from(["nan", "number"]))
def test_stats_extremes_and_quantiles(data, fn, seed, dtype, flavor, axis, ignore_nan,
                                      n_threads, sentinel):
    ndim = data.draw(st.sampled_from([2, 2, 1]), label="ndim")
    shape = data.draw(shapes_2d(), label="shape")[:ndim]
    values = make_values(seed, shape, dtype, flavor)
    call = Call(sentinel)
    X = call.add("X", values, data.draw(layouts(ndim), label="X layout"),
                 data.draw(st.booleans(), label="read-only"))
    call.freeze()
    kw = {"axis": axis, "ignore_nan": ignore_nan}
    if fn == "quantiles":
        q = data.draw(st.one_of(
            st.sampled_from([0.0, 0.25, 0.5, 1.0]),
            st.lists(st.floats(0, 1), min_size=1, max_size=4),
            st.sampled_from([[-0.1], [0.5, 1.5], [float("nan")]])), label="q")
        kw["q"] = q
    f = getattr(fst, fn)
    run = (lambda: quiet_call(n_threads, f, X, **kw))
    ok_axis = -ndim <= axis < ndim
    if not ok_axis:
        expect_refusal(f, call, run, "axis")
        return
    if fn == "quantiles" and not np.all((np.asarray(q) >= 0) & (np.asarray(q) <= 1)):
        expect_refusal(f, call, run, "q")
        return
    if shape[axis % ndim] == 0:
        expect_refusal(f, call, run, "X")
        return
    got = run()
    X64 = values.astype(np.float64)
    a = axis % ndim
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        if fn == "quantiles":
            # (np.nanquantile of an empty array ignores q's shape: NumPy's bug)
            nan_aware = ignore_nan and X64.size
            ref = (np.nanquantile if nan_aware else np.quantile)(X64, q, axis=a)
            got = np.asarray(got)
            assert got.dtype == np.float64
            check_close(got, np.asarray(ref), np.float64, err_msg="quantiles")
        else:
            mn = (np.nanmin if ignore_nan else np.min)(X64, axis=a)
            mx = (np.nanmax if ignore_nan else np.max)(X64, axis=a)
            want = (mn, mx) if fn == "min_max" else (np.maximum(np.abs(mn), np.abs(mx)),)
            got_t = tuple(got) if fn == "min_max" else (got,)
            want_dtype = kernel_dtype(dtype)  # "in X's dtype" (after conversion)
            for g, w_ in zip(got_t, want):
                g = np.asarray(g)
                assert g.dtype == want_dtype, (g.dtype, want_dtype)
                np.testing.assert_array_equal(g, np.asarray(w_).astype(want_dtype))
    call.check()
    again = quiet_call(3 - n_threads, f, X, **kw)
    for g1, g2 in zip(got_t if fn != "quantiles" else (got,),
                      tuple(again) if fn == "min_max" else (again,)):
        same_bits(np.asarray(g1), np.asarray(g2), fn)


@fuzz(40)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(DTYPES),
       flavor=st.sampled_from(FLAVORS), layout=st.sampled_from(["NCHW", "NHWC"]),
       n_threads=THREADS, sentinel=st.sampled_from(["nan", "number"]))
def test_stats_channel_moments(data, seed, dtype, flavor, layout, n_threads, sentinel):
    shape = data.draw(channel_shapes(min_ndim=2, max_ndim=4), label="shape")
    values = make_values(seed, shape, dtype, flavor, allow_nan=False)
    call = Call(sentinel)
    x = call.add("x", values, data.draw(layouts(len(shape)), label="x layout"),
                 data.draw(st.booleans(), label="read-only"))
    call.freeze()
    if np.dtype(dtype).newbyteorder("=") not in (np.float32, np.float64):  # as functional
        expect_refusal(fst.channel_moments, call,
                       lambda: quiet_call(n_threads, fst.channel_moments, x, layout=layout), "x")
        return
    m = quiet_call(n_threads, fst.channel_moments, x, layout=layout)
    X64 = values.astype(np.float64)
    if layout == "NHWC" and X64.ndim > 2:
        X64 = np.moveaxis(X64, -1, 1)
    C = X64.shape[1]
    A = np.moveaxis(X64, 1, 0).reshape(C, X64.size // C if C else 0).T
    ref = _ref_moments(A, 0, None, False)
    for got, want, what in zip((m.count, m.mean, m.m2), ref, ("count", "mean", "m2")):
        check_close(np.asarray(got), want, np.float64, err_msg=what)
    call.check()


# ----------------------------------------------------------- functional ---

@st.composite
def channel_shapes(draw, min_ndim=2, max_ndim=4, channels=st.integers(0, 6)):
    """(N, C, *spatial) with up to 7x7 spatial positions (NCHW items of 32
    and more take the fused kernels)."""
    ndim = draw(st.integers(min_ndim, max_ndim))
    spatial = {2: 0, 3: 1, 4: 2, 5: 3}[ndim]
    top = {0: 0, 1: 40, 2: 7, 3: 3}[spatial]
    return (draw(st.integers(0, 3)), draw(channels)) + tuple(
        draw(st.integers(0, top)) for _ in range(spatial))


@dataclass
class Case:
    """One functional call: arrays (values in the input's dtype, None for an
    absent one), other arguments, and which arrays the call may update."""
    op: str
    arrays: dict
    kwargs: dict
    writable: tuple = ()
    layout: str = "NCHW"


def _channels_last(shape, layout):
    """Our input shape for the NCHW shape `shape` in `layout`."""
    if layout == "NHWC" and len(shape) > 2:
        return (shape[0],) + shape[2:] + (shape[1],)
    return shape


def _channel_case(draw, op, seed, dtype, flavor):
    layout = draw(st.sampled_from(["NCHW", "NHWC"]), label="layout")
    if op == "instance_norm":
        nchw = draw(channel_shapes(3, 4), label="NCHW shape")
    else:
        nchw = draw(channel_shapes(2, 4 if op == "group_norm" else 5), label="NCHW shape")
    C = nchw[1]
    shape = _channels_last(nchw, layout)
    rng = np.random.default_rng(seed + 3)
    x = make_values(seed, shape, dtype, flavor, allow_nan=False)
    param = (lambda: draw(st.sampled_from([None, "given"])) and
             rng.normal(1.0, 0.5, C).astype(dtype))
    arrays = {"input": x, "weight": param(), "bias": param()}
    kwargs = {"eps": draw(st.sampled_from([1e-5, 1e-3, 0.1]))}
    writable = ()
    if op in ("batch_norm", "instance_norm"):
        training = draw(st.booleans(), label="training")
        has_running = draw(st.booleans()) or not training
        if op == "instance_norm":
            kwargs["use_input_stats"] = training
        else:
            kwargs["training"] = training
        kwargs["momentum"] = draw(st.sampled_from([0.1, 0.0, 0.5, 1.0]))
        if has_running:
            arrays["running_mean"] = rng.normal(0, 1, C).astype(dtype)
            arrays["running_var"] = rng.uniform(0.5, 2, C).astype(dtype)
            if training:
                writable = ("running_mean", "running_var")
        else:
            arrays["running_mean"] = arrays["running_var"] = None
    if op == "group_norm":
        divisors = [g for g in range(1, C + 1) if C % g == 0] or [1]
        kwargs["num_groups"] = draw(st.one_of(st.sampled_from(divisors),
                                              st.integers(1, 7)), label="num_groups")
    return Case(op, arrays, kwargs, writable, layout)


@st.composite
def functional_cases(draw, op, seed, dtype, flavor):
    if op in ("layer_norm", "rms_norm"):
        ndim = draw(st.integers(1, 4))
        top = {1: 64, 2: 16, 3: 8, 4: 5}[ndim]
        shape = tuple(draw(st.integers(0, top)) for _ in range(ndim))
        k = draw(st.integers(1, ndim))
        ns = shape[ndim - k:]
        if draw(st.integers(0, 9)) == 0:  # a mismatched normalized_shape
            ns = ns[:-1] + (ns[-1] + 1,)
        x = make_values(seed, shape, dtype, flavor, allow_nan=False)
        rng = np.random.default_rng(seed + 3)
        shape_ok = shape[ndim - k:] == ns
        param = (lambda: draw(st.sampled_from([None, "given"])) and
                 rng.normal(1.0, 0.5, ns if shape_ok else shape[ndim - k:]).astype(dtype))
        arrays = {"input": x, "weight": param()}
        kwargs = {"normalized_shape": ns}
        if op == "layer_norm":
            arrays["bias"] = param()
            kwargs["eps"] = draw(st.sampled_from([1e-5, 1e-3, 0.1]))
        else:
            kwargs["eps"] = draw(st.sampled_from([None, 1e-5, 1e-3]))
        return Case(op, arrays, kwargs)
    if op in ("batch_norm", "group_norm", "instance_norm"):
        return _channel_case(draw, op, seed, dtype, flavor)
    if op == "local_response_norm":
        shape = draw(channel_shapes(3, 4, channels=st.integers(0, 8)))
        x = make_values(seed, shape, dtype, flavor, allow_nan=False)
        return Case(op, {"input": x}, {
            "size": draw(st.integers(1, 6)), "alpha": draw(st.sampled_from([1e-4, 0.1, 1.0])),
            "beta": draw(st.sampled_from([0.75, 0.5, 1.0])),
            "k": draw(st.sampled_from([1.0, 2.0]))})
    if op == "normalize":
        ndim = draw(st.integers(1, 3))
        top = {1: 64, 2: 16, 3: 8}[ndim]
        shape = tuple(draw(st.integers(0, top)) for _ in range(ndim))
        x = make_values(seed, shape, dtype, flavor, allow_nan=False)
        return Case(op, {"input": x}, {
            "p": draw(st.sampled_from([2.0, 1.0, 3.0, 0.5, float("inf")])),
            "dim": draw(st.integers(-ndim - 1, ndim)),
            "eps": draw(st.sampled_from([1e-12, 1e-3]))})
    raise AssertionError(op)


def to_torch(case, a):
    """A float64 contiguous tensor of `a` (an input-shaped array in NCHW order).

    torch gets only contiguous tensors: torch 2.13's instance_norm backward
    is wrong for a non-contiguous gradient of a single sample (eval mode)."""
    a = np.asarray(a, dtype=np.float64)
    if case.layout == "NHWC" and a.ndim > 2:
        a = np.moveaxis(a, -1, 1)
    return torch.from_numpy(np.ascontiguousarray(a))


def from_torch(case, t):
    """A torch result (NCHW) as a NumPy array in the case's layout."""
    a = t.detach().numpy()
    return np.moveaxis(a, 1, -1) if case.layout == "NHWC" and a.ndim > 2 else a


def _tensors(case, requires_grad=False):
    t = {}
    for name, v in case.arrays.items():
        if v is None:
            t[name] = None
            continue
        t[name] = to_torch(case, v) if name == "input" else \
            torch.from_numpy(np.array(v, dtype=np.float64))
        if requires_grad and name in ("input", "weight", "bias"):
            t[name].requires_grad_(True)
    return t


def torch_forward(case, t):
    """torch's forward (float64, NCHW) for `case` with tensors `t`."""
    kw = case.kwargs
    x = t["input"]
    if case.op == "layer_norm":
        y = TF.layer_norm(x, kw["normalized_shape"], t["weight"], t["bias"], kw["eps"])
    elif case.op == "rms_norm":
        eps = kw["eps"] if kw["eps"] is not None else \
            float(np.finfo(case.arrays["input"].dtype).eps)
        y = TF.rms_norm(x, kw["normalized_shape"], t["weight"], eps)
    elif case.op == "batch_norm":
        y = TF.batch_norm(x, t["running_mean"], t["running_var"], t["weight"], t["bias"],
                          kw["training"], kw["momentum"], kw["eps"])
    elif case.op == "group_norm":
        w = t["weight"]
        if w is None and t["bias"] is not None:
            # torch 2.13's backward fails ("tensor does not have a device")
            # with a bias and no weight: a weight of ones is the same function
            w = torch.ones(x.shape[1], dtype=x.dtype)
        y = TF.group_norm(x, kw["num_groups"], w, t["bias"], kw["eps"])
    elif case.op == "instance_norm":
        y = TF.instance_norm(x, t["running_mean"], t["running_var"], t["weight"], t["bias"],
                             kw["use_input_stats"], kw["momentum"], kw["eps"])
    elif case.op == "local_response_norm":
        y = TF.local_response_norm(x, kw["size"], kw["alpha"], kw["beta"], kw["k"])
    elif case.op == "normalize":
        y = TF.normalize(x, kw["p"], kw["dim"], kw["eps"])
    return y


def ours_forward(case, a):
    """fastnorm's forward with arrays `a` (guarded)."""
    kw = dict(case.kwargs)
    op = getattr(F, case.op)
    if case.op in ("batch_norm", "instance_norm", "group_norm"):
        kw["layout"] = case.layout
    if case.op in ("layer_norm",):
        return op(a["input"], kw.pop("normalized_shape"), a["weight"], a["bias"], **kw)
    if case.op == "rms_norm":
        return op(a["input"], kw.pop("normalized_shape"), a["weight"], **kw)
    if case.op in ("batch_norm", "instance_norm"):
        return op(a["input"], a["running_mean"], a["running_var"], a["weight"], a["bias"], **kw)
    if case.op == "group_norm":
        return op(a["input"], kw.pop("num_groups"), a["weight"], a["bias"], **kw)
    return op(a["input"], **kw)


def ours_backward(case, dy, a):
    kw = dict(case.kwargs)
    op = getattr(F, case.op + "_backward")
    if case.op in ("batch_norm", "instance_norm", "group_norm"):
        kw["layout"] = case.layout
    if case.op == "layer_norm":
        return op(dy, a["input"], kw.pop("normalized_shape"), a["weight"], a["bias"], **kw)
    if case.op == "rms_norm":
        return op(dy, a["input"], kw.pop("normalized_shape"), a["weight"], **kw)
    if case.op in ("batch_norm", "instance_norm"):
        return op(dy, a["input"], a["running_mean"], a["running_var"], a["weight"], a["bias"],
                  **kw)
    if case.op == "group_norm":
        return op(dy, a["input"], kw.pop("num_groups"), a["weight"], a["bias"], **kw)
    return op(dy, a["input"], **kw)


FUNCTIONAL_OPS = ["layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm",
                  "local_response_norm", "normalize"]


def _torch_fails_on_empty(case, exc, run):
    """torch has bugs of its own on empty tensors (an IndexError from
    select() in batch_norm's backward with 0 channels): where torch fails
    that way, fastnorm may instead return empty results of the right shapes
    (returns True when it did)."""
    if isinstance(exc, (ValueError, TypeError)) or case.arrays["input"].size:
        return False
    try:
        got = run()
    except (ValueError, TypeError):
        return False
    got = got if isinstance(got, tuple) else (got,)
    assert got[0].shape == case.arrays["input"].shape
    for g, name in zip(got[1:], ("weight", "bias")):  # no values: zero gradients
        p = case.arrays.get(name)
        assert (g is None) == (p is None) and (g is None or (
            g.shape == p.shape and not g.any())), (name, g)
    return True


def _refused_as_torch(case, expected, fn, call, run):
    """Where torch raised (`expected` is its exception), fastnorm must refuse
    the input too (or give torch-free empty results where torch's own bug
    raised): True when that was checked and the case is done."""
    if not isinstance(expected, Exception):
        return False
    note(f"torch: {type(expected).__name__}: {expected}")
    if not _torch_fails_on_empty(case, expected, run):
        expect_refusal(fn, call, run)
    return True


def _place(case, sentinel, draw, extra=None, readonly=False):
    """The case's arrays (and `extra`) guarded; inputs read-only if asked
    (running statistics stay writable: they are updated in place)."""
    call = Call(sentinel)
    arrays = {}
    for name, v in {**case.arrays, **(extra or {})}.items():
        arrays[name] = None if v is None else call.add(
            name, v, draw(layouts(np.ndim(v)), label=f"{name} layout"),
            readonly and not name.startswith("running_"))
    call.freeze()
    return call, arrays


@fuzz(140)
@given(data=st.data(), op=st.sampled_from(FUNCTIONAL_OPS), seed=st.integers(0, 2**32 - 1),
       dtype=st.sampled_from(FLOATS * 4 + SWAPPED + ("float16", "int64")),
       flavor=st.sampled_from(FLAVORS), readonly=st.booleans(),
       n_threads=THREADS, sentinel=st.sampled_from(["nan", "number"]))
def test_functional_forward(data, op, seed, dtype, flavor, readonly, n_threads, sentinel):
    case = data.draw(functional_cases(op, seed, dtype, flavor), label="case")
    call, a = _place(case, sentinel, data.draw, readonly=readonly)
    fn = getattr(F, op)
    xdtype = np.dtype(dtype).newbyteorder("=")  # byte-swapped floats are floats
    # float16: the norms with 16-bit kernels compute it (as torch's CPU norms do)
    takes_16_bit = op in ("layer_norm", "rms_norm", "batch_norm", "group_norm",
                          "instance_norm") and xdtype == np.float16
    if xdtype not in (np.float32, np.float64) and not takes_16_bit:
        # integers, and float16 in the norms without 16-bit kernels: refused
        expect_refusal(fn, call, lambda: quiet_call(n_threads, ours_forward, case, a), "input")
        return
    t = _tensors(case)
    expected = reference(torch_forward, case, t)
    run = (lambda: quiet_call(n_threads, ours_forward, case, a))
    if _refused_as_torch(case, expected, fn, call, run):
        return
    got = run()
    x = case.arrays["input"]
    assert isinstance(got, np.ndarray) and got.dtype == xdtype and got.shape == x.shape
    check_close(got, from_torch(case, expected), xdtype, err_msg=op)
    for name in case.writable:  # running statistics, updated as torch updates them
        # but with no values the statistics are left as they are (as batch_norm
        # documents; torch writes NaN into instance_norm's for an empty batch)
        want = case.arrays[name] if x.size == 0 else t[name].numpy()
        check_close(a[name], want, xdtype, err_msg=name)
    call.check(case.writable)
    # bitwise the same on the other thread count (running stats: on fresh copies)
    _, a2 = _place(case, sentinel, lambda s, label=None: Layout())
    same_bits(quiet_call(3 - n_threads, ours_forward, case, a2), got, op)


@fuzz(100)
@given(data=st.data(), op=st.sampled_from(FUNCTIONAL_OPS + ["layer_norm"]),
       seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from(FLOATS * 3 + SWAPPED),
       readonly=st.booleans(),
       flavor=st.sampled_from(FLAVORS), n_threads=THREADS,
       sentinel=st.sampled_from(["nan", "number"]))
def test_functional_backward(data, op, seed, dtype, flavor, readonly, n_threads, sentinel):
    case = data.draw(functional_cases(op, seed, dtype, flavor), label="case")
    x = case.arrays["input"]
    xdtype = x.dtype.newbyteorder("=")
    dy = make_values(seed + 11, x.shape, dtype, "normal")
    call, a = _place(case, sentinel, data.draw, {"grad_output": dy}, readonly)
    fn = getattr(F, op + "_backward")
    t = _tensors(case, requires_grad=True)

    def torch_grads():
        y = torch_forward(case, t)
        y.backward(to_torch(case, dy))
        grads = {n: (None if t[n] is None else t[n].grad if t[n].grad is not None
                     else torch.zeros_like(t[n]))
                 for n in ("input", "weight", "bias") if n in t}
        grads["input"] = from_torch(case, grads["input"])
        return grads
    expected = reference(torch_grads)
    run = (lambda: quiet_call(n_threads, ours_backward, case, a["grad_output"], a))
    if _refused_as_torch(case, expected, fn, call, run):
        return
    got = run()
    assert isinstance(got, tuple)
    names = ["input", "weight", "bias"][:len(got)]
    for g, name in zip(got, names):
        want = expected.get(name)
        if want is None or case.arrays.get(name) is None:
            assert g is None, f"grad of the absent {name} must be None"
            continue
        assert isinstance(g, np.ndarray) and g.dtype == xdtype and g.shape == want.shape, name
        # no values: zero gradients, sums over nothing (torch's group_norm says NaN)
        want = np.zeros(want.shape) if x.size == 0 else np.asarray(want)
        check_close(g, want, xdtype, err_msg=f"{op}_backward: grad of {name}")
    call.check()  # a backward writes nothing it was given (running statistics neither)


# ----------------------------------------- errors for empty and bad shapes ---

@pytest.mark.parametrize("name", list(PRE_KWARGS))
@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (0,)])
def test_preprocessing_empty_names_x(name, shape):
    if name == "normalize" and len(shape) == 1:
        shape = (0, 0)
    X = np.empty(shape)
    with pytest.raises(ValueError) as info:
        getattr(fnp, name)(X)
    check_clean_error(info.value, getattr(fnp, name), "X")


# ----------------------------------------------------- found by the fuzz ---
# Failures the fuzz found, fixed: each kept as a small test.

@pytest.mark.parametrize("shape", [(0, 3, 4), (2, 0, 4), (0, 0, 0)])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_fuzz_found_lrn_empty_batch_or_channels(shape, backward):
    x = np.zeros(shape)
    if backward:
        (dx,) = F.local_response_norm_backward(np.zeros(shape), x, 2)
    else:
        dx = F.local_response_norm(x, 2)
    assert dx.shape == shape


def test_fuzz_found_channel_moments_error_names_input():
    with pytest.raises(ValueError) as info:
        fst.channel_moments(np.ones(3))
    check_clean_error(info.value, fst.channel_moments, "x")


@pytest.mark.parametrize("shape", [(1, 1), (1, 3), (1, 2, 1, 1)])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_fuzz_found_group_norm_one_value_per_group(shape, backward):
    x = np.arange(1.0, 1.0 + math.prod(shape)).reshape(shape)
    G = shape[1]
    with pytest.raises(ValueError) as torch_error:
        TF.group_norm(torch.from_numpy(x), G)
    with pytest.raises(ValueError, match="more than 1 value"):
        if backward:
            F.group_norm_backward(np.ones(shape), x, G)
        else:
            F.group_norm(x, G)
    assert "more than 1 value" in str(torch_error.value)


@pytest.mark.parametrize("shape", [(2, 0, 3), (0, 0, 0), (2, 0, 3, 3)])
@pytest.mark.parametrize("backward", [False, True], ids=["forward", "backward"])
def test_fuzz_found_instance_norm_zero_channels(shape, backward):
    x = np.zeros(shape)
    assert TF.instance_norm(torch.from_numpy(x)).shape == shape
    y = F.instance_norm_backward(x, x)[0] if backward else F.instance_norm(x)
    assert y.shape == shape


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("cls", ["MinMaxScaler", "MaxAbsScaler"])
def test_fuzz_found_partial_fit_chunks_all_nan_chunk(cls):
    X = np.array([[np.nan], [1.0], [3.0]])
    chunked = fnp.partial_fit_chunks(getattr(fnp, cls)(), X, chunk_rows=1)
    whole = getattr(fnp, cls)().fit(X)
    np.testing.assert_array_equal(chunked.transform(X), whole.transform(X))


@pytest.mark.parametrize("name", list(PRE_KWARGS) + ["Normalizer"])
def test_fuzz_found_byte_swapped_float16_result_dtype(name):
    X = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]], dtype=">f2")
    if name == "Normalizer":  # its transform calls normalize
        ours, expected = fnp.Normalizer().fit_transform(X), skp.Normalizer().fit_transform(X)
    else:
        ours, expected = getattr(fnp, name)(X), getattr(skp, name)(X)
    assert ours.dtype == expected.dtype == np.float64


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("shape", [(2, 3, 0), (1, 3, 0, 4)])
def test_fuzz_found_instance_norm_no_spatial_values_running_stats(shape):
    rm, rv = np.zeros(3), np.ones(3)
    rmt, rvt = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    TF.instance_norm(torch.zeros(shape, dtype=torch.float64), rmt, rvt)
    F.instance_norm(np.zeros(shape), rm, rv)
    np.testing.assert_array_equal(rmt.numpy(), 0.0)  # torch: left as they were
    np.testing.assert_array_equal(rm, 0.0)
    np.testing.assert_array_equal(rv, 1.0)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("op, shape", [("batch_norm", (0, 2, 3)), ("batch_norm", (2, 2, 0)),
                                       ("batch_norm", (0, 2)), ("group_norm", (2, 2, 0)),
                                       ("instance_norm", (2, 2, 0))])
def test_fuzz_found_empty_input_weight_grad_nan(op, shape):
    x, w, b = np.zeros(shape), np.ones(2), np.zeros(2)
    if op == "batch_norm":
        _, dw, db = F.batch_norm_backward(np.ones(shape), x, None, None, w, b, training=True)
    elif op == "group_norm":
        _, dw, db = F.group_norm_backward(np.ones(shape), x, 2, w, b)
    else:
        _, dw, db = F.instance_norm_backward(np.ones(shape), x, None, None, w, b)
    np.testing.assert_array_equal(db, 0.0)
    np.testing.assert_array_equal(dw, 0.0)  # a sum over no values (torch's batch_norm: 0)

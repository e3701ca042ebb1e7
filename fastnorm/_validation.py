"""The one place that checks and coerces user input.

Kernels never validate; every public function sends its arrays and
arguments through here first. Errors name the offending argument.
"""
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp

from . import _backend

# dtypes the kernels run on natively; others are converted
KERNEL_DTYPES = (np.float32, np.float64)


def as_float_array(X, name="X", *, allow_1d=False, allow_empty=False, gpu_for=None):
    """X as a NumPy float32/float64 array of 2 (or, with allow_1d, 1) dims.

    Integers, booleans and numeric objects become float64 (as in
    scikit-learn), float16 becomes float32, float32/float64 are kept without
    a copy; other floats (byte-swapped, long double) become float64, as
    scikit-learn's dtype check makes them. Returns (array, fresh): fresh is
    True when the array is a new buffer the caller may overwrite.
    Finiteness is not checked here (see `raise_if_not_finite`): most callers
    learn it for free from their statistics.

    CuPy X stays on its device (float16 kept: the GPU kernels take it) when
    `gpu_for` names the calling function; callers without a GPU path leave
    it None and refuse CuPy X with a NotImplementedError.
    """
    if X is None:
        raise TypeError(f"{name} must be an array, got None")
    if _backend.is_sparse(X):
        raise TypeError(f"{name} is a sparse matrix; this function takes dense "
                        f"arrays (convert with {name}.toarray())")
    _backend.ops_for(X, name=name)  # Dask, or a backend the data is not on
    if _backend.array_library(X) == "cupy":
        if gpu_for is None:
            _backend.refuse_gpu(X, name, "this function")
        return _as_float_device_array(X, name, allow_1d, allow_empty)
    if type(X).__module__.split(".")[0] == "pandas":
        # nullable and pyarrow columns: pd.NA becomes NaN, as scikit-learn reads them
        from sklearn.utils.validation import check_array
        X = check_array(X, dtype="numeric", ensure_all_finite=False, ensure_2d=False,
                        allow_nd=True, ensure_min_samples=0, ensure_min_features=0)
    arr = np.asarray(X)
    kind = arr.dtype.kind
    if kind == "f" and arr.dtype in KERNEL_DTYPES:
        out = arr
    elif arr.dtype == np.float16:  # native only: as scikit-learn, '>f2' becomes float64
        out = arr.astype(np.float32)
    elif kind in "biuf":
        out = arr.astype(np.float64)
    elif kind == "c":
        raise TypeError(f"{name} has complex dtype {arr.dtype}; only real numbers "
                        "can be normalized")
    elif kind == "O":
        try:
            out = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{name} must hold numbers; its object array could not "
                            f"be converted to float64: {exc}") from None
    else:
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    _check_dims(out, name, allow_1d, allow_empty)
    return out, out is not arr


def _check_dims(X, name, allow_1d, allow_empty):
    ndims = (1, 2) if allow_1d else (2,)
    if X.ndim not in ndims:
        want = "a 1-D or 2-D" if allow_1d else "a 2-D"
        raise ValueError(f"{name} must be {want} array, got {X.ndim}-D with shape "
                         f"{X.shape}" + ("; reshape a single feature with "
                                         f"{name}.reshape(-1, 1)" if X.ndim == 1 else ""))
    if X.size == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (shape={X.shape}); at least one sample "
                         "and one feature are required")


def _as_float_device_array(X, name, allow_1d, allow_empty):
    """as_float_array for a CuPy X: float16/32/64 kept, integers and booleans
    to float64 (on the device)."""
    kind = X.dtype.kind
    if kind == "f" and X.dtype.itemsize in (2, 4, 8):
        out = X
    elif kind in "biu":
        out = X.astype("float64")
    elif kind == "c":
        raise TypeError(f"{name} has complex dtype {X.dtype}; only real numbers "
                        "can be normalized")
    else:
        raise TypeError(f"{name} must be numeric, got dtype {X.dtype}")
    _check_dims(out, name, allow_1d, allow_empty)
    return out, out is not X


def check_sparse(X, _estimator=None, /, *, reset=None, **check_params):
    """scikit-learn's input check of a sparse X, SciPy's or CuPy's alike:
    validate_data(_estimator, X, reset=reset, **check_params) with an
    estimator, else check_array(X, **check_params).

    A CuPy sparse matrix (cupyx.scipy.sparse) stays on its device:
    scikit-learn's checks run on an empty SciPy matrix of X's shape, format
    and dtype (so the errors, the format and dtype chosen, and the feature
    bookkeeping are scikit-learn's own), and X is converted to what they
    chose on the device. The one check that reads the data, finiteness, is
    made on the device and reported by scikit-learn's assert_all_finite.
    """
    from sklearn.utils.validation import check_array, validate_data
    if _backend.array_library(X) != "cupy":
        if _estimator is not None:
            return validate_data(_estimator, X, reset=reset, **check_params)
        return check_array(X, **check_params)
    # never copies or checks the (empty) host stand-in's data
    host_params = {**check_params, "copy": False, "ensure_all_finite": False}
    stand_in = sp.csr_matrix(X.shape, dtype=X.dtype).asformat(X.format)
    if _estimator is not None:
        chosen = validate_data(_estimator, stand_in, reset=reset, **host_params)
        input_name, estimator_name = "X", type(_estimator).__name__
    else:
        chosen = check_array(stand_in, **host_params)
        estimator = check_params.get("estimator")
        input_name = check_params.get("input_name", "")
        estimator_name = estimator if isinstance(estimator, str) or estimator is None \
            else type(estimator).__name__
    converted = X.format != chosen.format or X.dtype != chosen.dtype
    if X.format != chosen.format:
        X = X.asformat(chosen.format)
    if X.dtype != chosen.dtype:
        X = X.astype(chosen.dtype)
    if check_params.get("copy", False) and not converted:
        X = X.copy()
    finite = check_params.get("ensure_all_finite", True)
    if finite is not False:
        xp = _backend.namespace(X)
        has_inf, has_nan = (bool(v) for v in xp.stack(
            [xp.isinf(X.data).any(), xp.isnan(X.data).any()]).get())
        if has_inf or (has_nan and finite != "allow-nan"):
            # scikit-learn's error for these values, word for word
            from sklearn.utils import assert_all_finite
            assert_all_finite(np.array([np.inf] * has_inf + [np.nan] * has_nan, X.dtype),
                              allow_nan=finite == "allow-nan", estimator_name=estimator_name,
                              input_name=input_name)
    return X


def check_sparse_format(X):
    """ValueError unless sparse X's structure is sound (scipy's
    check_format(full_check=True); for a CuPy matrix, which has no
    check_format, the same checks on the device, read back at once): the
    kernels index with X's indices unchecked."""
    if _backend.array_library(X) != "cupy":
        X.check_format(full_check=True)
        return
    xp = _backend.namespace(X)
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    if X.indptr.shape != (n_major + 1,) or X.indices.shape != X.data.shape:
        raise ValueError(f"index pointer size {X.indptr.shape} or index size "
                         f"{X.indices.shape} does not fit shape {X.shape} and "
                         f"{X.data.shape[0]} stored values")
    minor = "column" if X.format == "csr" else "row"
    problems = xp.stack([X.indptr[0] != 0, X.indptr[-1] != X.data.shape[0],
                         (X.indptr[1:] < X.indptr[:-1]).any(), (X.indices < 0).any(),
                         (X.indices >= n_minor).any()]).get()
    messages = ["index pointer should start with 0",
                "last value of index pointer should be the number of stored values",
                "index pointer values must form a non-decreasing sequence",
                f"{minor} index values must be >= 0", f"{minor} index values must be < {n_minor}"]
    for bad, message in zip(problems, messages):
        if bad:
            raise ValueError(message)


def raise_if_not_finite(X, name="X", *, allow_nan=False):
    """ValueError if X holds inf (or NaN, unless allow_nan). One parallel scan."""
    mn, mx, count = _backend.ops_for(X).min_max(X.reshape(len(X), -1), 0)
    # all-NaN columns come back as min=+inf, max=-inf: only a real inf
    # gives max=+inf or min=-inf
    if bool(np.isposinf(mx).any()) or bool(np.isneginf(mn).any()):
        raise ValueError(f"Input {name} contains infinity or a value too large "
                         f"for {X.dtype!r}.")
    if not allow_nan and float(count.sum()) < X.size:
        raise ValueError(f"Input {name} contains NaN.")


def warn_on_overflow(what, *statistics):
    """RuntimeWarning, as NumPy's (and so scikit-learn's) arithmetic gives, when
    a statistic of finite input overflowed to infinity (NaN marks a feature
    without values)."""
    if any(np.isinf(s).any() for s in statistics if s is not None):
        import warnings
        warnings.warn(f"overflow encountered in the {what}: the input's values are too "
                      "large for float64 arithmetic", RuntimeWarning, stacklevel=3)


def check_out(out, like, name="out", *, shape=None, dtype=None, contiguous=False,
              inputs=()):
    """`out` must be a writeable array of `like`'s library (NumPy, or CuPy on
    like's device), of `shape` and `dtype` (by default like's own); with
    `contiguous`, C-contiguous (the kernels write it in place: a strided
    `out` is refused, never written through a temporary); and it must not
    share memory with any array of `inputs`, (name, array) pairs (None
    entries skipped). Returns out."""
    on_gpu = _backend.array_library(like) == "cupy"
    if on_gpu and _backend.array_library(out) != "cupy":
        raise TypeError(f"{name} must be a CuPy array (X is one), got {_type_name(out)}")
    if not on_gpu and not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {_type_name(out)}")
    if on_gpu and _backend.device_id(out) != _backend.device_id(like):
        raise ValueError(f"{name} is on GPU {_backend.device_id(out)}, the input on GPU "
                         f"{_backend.device_id(like)}")
    shape = like.shape if shape is None else tuple(shape)
    dtype = like.dtype if dtype is None else np.dtype(dtype)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise ValueError(f"{name} has dtype {out.dtype}, expected {dtype}")
    if not _backend.is_writeable(out):
        raise ValueError(f"{name} is read-only")
    if contiguous and not out.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (the result is written into it in "
                         f"place); got strides {out.strides}")
    for other, arr in inputs:
        if arr is not None and _overlaps(out, arr):
            raise ValueError(f"{name} shares memory with {other}; pass a separate buffer "
                             "(writing the result there would overwrite what is being read)")
    return out


def _type_name(a):
    module = type(a).__module__.split(".")[0]
    return type(a).__name__ if module == "builtins" else f"{module}.{type(a).__name__}"


def _overlaps(a, b):
    """Whether arrays a and b (of one library; anything else is not an array
    and overlaps nothing) share memory: exactly for NumPy, or when that is
    too hard to decide, by their bounds."""
    if _backend.array_library(a) != _backend.array_library(b):
        return False
    xp = _backend.namespace(a)
    if not isinstance(b, xp.ndarray) or not xp.may_share_memory(a, b):
        return False
    if xp is not np:
        return True
    try:
        return bool(np.shares_memory(a, b, max_work=10_000))
    except np.exceptions.TooHardError:
        return True


def check_out_tuple(out, specs, like, inputs=()):
    """The gradient buffers of a backward: `out` None, or a tuple (or list)
    with one entry per gradient the backward returns, in its order, each
    None (allocate that one) or an array that check_out accepts.

    specs: one (name, shape, dtype) per returned gradient, or None for a
    gradient that does not exist (the forward took no such parameter): its
    entry must be None. Buffers must not overlap `inputs` or one another.
    Returns a list of the buffers (None where none was given)."""
    names = [s[0] if s is not None else None for s in specs]
    if out is None:
        return [None] * len(specs)
    wanted = ", ".join(n or "None" for n in names)
    if not isinstance(out, (tuple, list)) or len(out) != len(specs):
        got = f"a {type(out).__name__}" + (f" of {len(out)}" if isinstance(out, (tuple, list))
                                           else "")
        raise TypeError(f"out must be None or a tuple of {len(specs)} arrays or Nones "
                        f"({wanted}), one per gradient returned; got {got}")
    buffers = []
    for i, (spec, buf) in enumerate(zip(specs, out)):
        if buf is None:
            buffers.append(None)
            continue
        if spec is None:
            raise ValueError(f"out[{i}] must be None: there is no gradient there (the "
                             "forward took no such parameter)")
        name, shape, dtype = spec
        label = f"out[{i}] ({name})"
        check_out(buf, like, label, shape=shape, dtype=dtype, contiguous=True,
                  inputs=list(inputs) + [(f"out[{j}]", b) for j, b in enumerate(buffers)
                                         if b is not None])
        buffers.append(buf)
    return buffers


def output_for(X, fresh, copy, out):
    """The array results are written to: `out`, X itself (copy=False or X is
    already a private converted copy), or a new array shaped like X."""
    if out is not None:
        check_out(out, X)
        return out
    if fresh or (not copy and _backend.is_writeable(X)):
        return X
    return _backend.namespace(X).empty_like(X)


def check_bool(value, name):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return bool(value)


def check_axis(axis, ndim=2, name="axis", *, allow_negative=True):
    """axis must be an int naming one of X's dims; returns it non-negative.

    allow_negative=False: only 0 .. ndim-1 (scikit-learn's functions refuse -1).
    """
    if not isinstance(axis, Integral) or isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got {axis!r}")
    low = -ndim if allow_negative else 0
    if not low <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of bounds for a {ndim}-D input "
                         f"(allowed: {', '.join(map(str, range(low, ndim)))})")
    return int(axis) % ndim


def check_choice(value, choices, name):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {sorted(choices)}, got {value!r}")
    return value


def check_range_pair(value, name, *, low=None, high=None, strict=True, message=None):
    """A pair (a, b) of real numbers with a < b (a <= b if not strict), within [low, high]."""
    try:
        a, b = value
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a pair (min, max), got {value!r}") from None
    if not all(isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) for v in (a, b)):
        raise TypeError(f"{name} must hold two real numbers, got {value!r}")
    ok = a < b if strict else a <= b
    if low is not None:
        ok = ok and a >= low
    if high is not None:
        ok = ok and b <= high
    if not ok or not (np.isfinite(a) and np.isfinite(b)):
        raise ValueError(message or f"{name} must satisfy min < max, got {value!r}")
    return float(a), float(b)


def check_sample_weight(sample_weight, n, name="sample_weight", xp=np):
    """None, a scalar or a 1-D array of n non-negative finite weights → float64
    array (of the array module `xp`, X's) or None."""
    if sample_weight is None:
        return None
    on_gpu = _backend.array_library(sample_weight) == "cupy"
    if on_gpu != (xp is not np) and (on_gpu or isinstance(sample_weight, np.ndarray)):
        raise TypeError(f"{name} is a {'cupy' if on_gpu else 'numpy'} array but X is a "
                        f"{'numpy' if on_gpu else 'cupy'} array; pass both from one library")
    w = xp.asarray(sample_weight)
    if w.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {w.dtype}")
    w = xp.ascontiguousarray(xp.broadcast_to(w, (n,)) if w.ndim == 0 else w, dtype=np.float64)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {w.shape}")
    if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"{name} must be finite and non-negative")
    return w


def check_int(value, name, *, minimum=None):
    """value as an int: TypeError unless it is one (NumPy integers count;
    bools and floats such as 3.0 do not, as torch refuses them for sizes),
    ValueError below `minimum`."""
    from operator import index
    try:
        if isinstance(value, (bool, np.bool_)):
            raise TypeError
        value = index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return value


def check_shape(value, name):
    """An int or a sequence of ints, each >= 0, as a shape tuple: TypeError for
    anything else (5.7, "5", True, None), ValueError for a negative size."""
    dims = [value] if hasattr(value, "__index__") and np.ndim(value) == 0 else value
    try:
        if isinstance(dims, (str, bytes)):
            raise TypeError
        return tuple(check_int(d, name, minimum=0) for d in dims)
    except TypeError:
        raise TypeError(f"{name} must be an int or a sequence of ints, got {value!r}") from None
    except ValueError:
        raise ValueError(f"{name} must hold sizes >= 0, got {value!r}") from None

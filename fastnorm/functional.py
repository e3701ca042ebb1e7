"""torch.nn.functional's normalizations on NumPy arrays, with their backward.

Same arguments, defaults and semantics as the torch functions of the same
name (biased variance, eps inside the square root, the dtype kept); the
input is a NumPy float32/float64 array (byte-swapped ones are taken and
give native results). Differences, all additions:

- ``return_saved=True`` makes a forward also return its saved statistics,
  which the matching ``*_backward(..., saved=...)`` reuses instead of
  recomputing them;
- ``<name>_backward(grad_output, input, <the forward's arguments>, *,
  saved=None)`` returns the gradients of input, weight and bias (None for
  what the forward did not take), equal to torch.autograd's;
- layer_norm/rms_norm take an int ``normalized_shape`` (torch's modules do;
  its functions want a sequence), and batch_norm takes ``momentum=None``
  (the modules' cumulative average) with ``num_batches_tracked``;
- ``out=`` (keyword-only), so that a training loop reuses its memory:

  - every forward takes ``out=``, an array of exactly the result's shape
    and dtype, of the input's library (NumPy; a CuPy array on the input's
    device for CuPy input), writeable and C-contiguous. The result is
    written into it in place (the kernels write it directly, no temporary)
    and it is returned (with ``return_saved=True``: ``(out, saved)``).
    spectral_norm's ``out`` is for the normalized weight (u and v are
    small new arrays);
  - every backward takes ``out=`` a tuple with one entry per gradient it
    returns, in the same order (``(grad_input, grad_weight, grad_bias)``
    for layer_norm, ``(grad_input, grad_weight)`` for rms_norm,
    ``(grad_input,)`` for local_response_norm, normalize and
    spectral_norm, ``(grad_v, grad_g)`` for weight_norm, five for
    switchable_norm): each None (allocate that gradient) or a buffer as
    above, of that gradient's shape and dtype (a parameter's gradient: the
    parameter's). An entry for a gradient that does not exist (no weight or
    no bias given) must be None;
  - a buffer may not share memory with any input (the input, grad_output,
    parameters, running or saved statistics) nor with another buffer: a
    ValueError, as for a wrong shape, dtype, order or a read-only buffer;
    a buffer of another library is a TypeError. Every message names the
    buffer (``out``, or ``out[i] (grad_weight)``). The checks come before
    anything is written (running statistics included).

Every input torch takes is taken and gives torch's result, unusual ones
included (a negative or NaN eps, a momentum outside [0, 1], normalize's
p <= 0, a 0-d input to normalize); where torch raises, so does fastnorm,
with an error naming the argument (a ValueError or TypeError where torch's
is a RuntimeError; a dim out of range is torch's IndexError, also a
ValueError). Deliberately not torch's: on empty inputs where torch's own
code fails (batch_norm and instance_norm index weight[0] of zero channels)
the results are empty arrays, and a weight gradient summed over no values is
0 (torch's group_norm gives NaN there).

The channel norms (batch_norm, group_norm, instance_norm, switchable_norm)
also take ``layout="NHWC"``: the input is then channels-last, an array of
shape (N, *spatial, C) (the C-contiguous layout of torch's channels_last),
and is normalized in place in that layout, not through a transposed copy.
"""
import math
import operator
from numbers import Integral, Real

import numpy as np

from . import _backend
from ._docs import public_dir as _public_dir
from ._validation import check_out, check_out_tuple, check_shape

__all__ = [
    "layer_norm", "layer_norm_backward", "rms_norm", "rms_norm_backward",
    "batch_norm", "batch_norm_backward", "group_norm", "group_norm_backward",
    "instance_norm", "instance_norm_backward", "switchable_norm", "switchable_norm_backward",
    "local_response_norm", "local_response_norm_backward", "normalize", "normalize_backward",
    "weight_norm", "weight_norm_backward", "spectral_norm", "spectral_norm_backward",
    "SavedStats",
]


# ---------------------------------------------------------------- checks ---

_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _float_array(x, name, *, keep_byte_order=False, gpu=False):
    """x as a NumPy float32/float64 array (as torch, integers and complex
    numbers are refused). Byte-swapped floats are floats: they come back in
    native byte order (a copy), unless keep_byte_order (for an array updated
    in place). gpu: a CuPy x stays on its device, float16 included (the GPU
    kernels take it); otherwise CuPy input is a NotImplementedError."""
    if type(x) is np.ndarray and _backend.numpy_ops() is not None:
        arr = x  # a plain ndarray on the CPU backend: what the checks below pass
    else:
        arr = _float_array_of(x, name, gpu)
        if not isinstance(arr, np.ndarray):
            return arr  # CuPy, checked
    if arr.dtype in _NATIVE_FLOATS:
        return arr
    if arr.dtype.kind == "c":
        raise TypeError(f"{name} has complex dtype {arr.dtype}; only real float32 or float64 "
                        "arrays can be normalized")
    native = arr.dtype.newbyteorder("=")
    if native not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr if keep_byte_order or arr.dtype == native else arr.astype(native)


def _float_array_of(x, name, gpu):
    """_float_array's checks of anything but a plain NumPy array on the CPU
    backend: the CuPy array itself (checked), or x as a NumPy array."""
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    if _backend.is_sparse(x):  # SciPy's or CuPy's
        raise TypeError(f"{name} is a sparse matrix; this function takes dense arrays "
                        f"(convert with {name}.toarray())")
    _backend.ops_for(x, name=name)
    if _backend.array_library(x) == "cupy":
        if not gpu:
            _backend.refuse_gpu(x, name, "this function")
        if x.dtype.kind != "f":
            raise TypeError(f"{name} must be a float16, float32 or float64 array, got dtype "
                            f"{x.dtype}")
        return x
    return np.asarray(x)


def _normalized_shape(normalized_shape, x):
    shape = check_shape(normalized_shape, "normalized_shape")
    if len(shape) == 0:
        raise ValueError("normalized_shape must be non-empty, got ()")
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"normalized_shape={shape} does not match the trailing dimensions "
                         f"of input with shape {x.shape}")
    return shape


def _param(p, name, shape, x):
    """weight/bias: None, or an array of `shape` and the input x's dtype and
    library."""
    if p is None:
        return None
    arr = _float_array(p, name, gpu=True)
    _backend.ops_for(x, arr, name=name)  # one library
    dtype, xp = x.dtype, _backend.namespace(x)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (normalized_shape), got {arr.shape}")
    if arr.dtype != dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but input has {dtype}; they must match")
    return xp.ascontiguousarray(arr).reshape(-1)


def _eps(eps, dtype, name="eps", allow_none=False):
    """eps as a float. Any real number, as torch takes it: a negative or NaN
    eps is unusual (the variance plus eps may be negative: NaN results, as
    torch's), not refused. None (allow_none: rms_norm's default) is the
    dtype's machine epsilon."""
    if type(eps) is float:
        return eps
    if eps is None and allow_none:
        return float(np.finfo(dtype).eps)
    if not isinstance(eps, Real):
        raise TypeError(f"{name} must be a float, got {eps!r}")
    return float(eps)


def _rows(x, shape):
    """x as C-contiguous (n_rows, prod(normalized_shape))."""
    n = math.prod(shape)
    n_rows = x.size // n if n else math.prod(x.shape[:x.ndim - len(shape)])
    return _backend.namespace(x).ascontiguousarray(x).reshape(n_rows, n)


def _out_buffer(out, x, input, *arrays):
    """A forward's `out`: None, or the caller's buffer, checked (exactly the
    result's shape and dtype, on its backend, writeable, C-contiguous, not
    sharing memory with the input, x or any (name, array) of `arrays`)."""
    if out is None:
        return None
    return check_out(out, x, contiguous=True,
                     inputs=(("input", input), ("input", x)) + arrays)


def _grad_buffers(out, x, specs, *arrays):
    """A backward's `out`: the gradient buffers (None: allocate), checked
    against `specs` ((name, shape, dtype) per gradient returned, None for
    one that does not exist); see check_out_tuple."""
    return check_out_tuple(out, specs, x, inputs=arrays)


def _param_spec(name, p, shape, dtype):
    """The buffer spec of a parameter's gradient (None: no parameter)."""
    return None if p is None else (name, tuple(shape), np.dtype(dtype))


def _write(result, buf, dtype=None):
    """result (cast to `dtype`) as what a function returns: a new array when
    no buffer was given, else written into the buffer, which is returned.
    Used where no kernel writes the buffer itself (small or rare results)."""
    if buf is None:
        return result if dtype is None else result.astype(dtype)
    buf[...] = result
    return buf


class SavedStats:
    """Per-group statistics a forward saves for its backward (float64)."""

    def __init__(self, mean, rstd):
        self.mean = mean
        self.rstd = rstd

    def __repr__(self):
        return f"SavedStats(mean={self.mean!r}, rstd={self.rstd!r})"


def _check_saved(saved, shape):
    """`saved` from a forward whose statistics had `shape` (an int: 1-D), as
    the kernels take it: C-contiguous float64 (any float array converts
    without loss)."""
    if saved is None:
        return None
    if not isinstance(saved, SavedStats):
        raise TypeError(f"saved must be what the forward returned with return_saved=True, "
                        f"got {type(saved).__name__}")
    shape = (shape,) if isinstance(shape, Integral) else tuple(shape)
    stats = []
    for name in ("mean", "rstd"):
        value = getattr(saved, name)
        if type(value) is not np.ndarray and _backend.array_library(value) == "cupy":
            # a GPU forward's, in its own dtype
            if value.shape != shape:
                raise ValueError(f"saved.{name} holds statistics of shape {value.shape}, "
                                 f"this input needs {shape}")
            stats.append(value)
            continue
        try:
            arr = np.asarray(value)
        except ValueError:  # a ragged sequence
            arr = np.asarray(None)
        if arr.dtype.kind != "f":
            raise TypeError(f"saved.{name} must be a float array (the forward's statistics), "
                            f"got {type(value).__name__} of dtype {arr.dtype}")
        if arr.shape != shape:
            raise ValueError(f"saved.{name} holds statistics of shape {arr.shape}, "
                             f"this input needs {shape}")
        stats.append(np.ascontiguousarray(arr, dtype=np.float64))
    return SavedStats(*stats)


# ------------------------------------------------------ layer / rms norm ---

class BFloat16Bits:
    """A uint16 array holding bfloat16 bits, as an input or grad_output of
    the norms with 16-bit kernels (NumPy has no bfloat16): how
    fastnorm.torch passes CPU bfloat16 tensors, without a copy."""

    def __init__(self, bits):
        self.bits = bits


def _half_input(x, bfloat16=False, name="input"):
    """(input array, its 16-bit storage or None) for the norms with 16-bit
    kernels: what _float_array gives, or on the CPU a float16 array
    ("float16"), or with bfloat16 or as BFloat16Bits (fastnorm.torch's
    bfloat16 tensors) a uint16 array of bfloat16 bits ("bfloat16"). 16-bit
    values are computed as float32 and rounded back."""
    if bfloat16 or type(x) is BFloat16Bits:
        return np.asarray(getattr(x, "bits", x)), "bfloat16"
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize == 2:
        return np.asarray(x, dtype=np.float16), "float16"  # (in native byte order)
    return _float_array(x, name, gpu=True), None


def _half_param(p, name, shape, half, what, in_place=False):
    """A parameter beside 16-bit input: float32, or float16 beside float16
    input (torch's rule for 16-bit input's parameters), of `shape` (`what`
    names it); as a C-contiguous float32 array, or (in_place) itself."""
    arr = np.asarray(p)
    allowed = ("float32",) if half == "bfloat16" else ("float32", "float16")
    if arr.dtype.newbyteorder("=").name not in allowed:
        raise TypeError(f"{name} has dtype {arr.dtype}; beside {half} input it must be "
                        f"{' or '.join(allowed)}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {arr.shape}")
    return arr if in_place else np.ascontiguousarray(arr, dtype=np.float32).reshape(-1)


def _row_param(p, name, shape, x, half):
    """weight/bias as the kernels take them: _param's, or beside 16-bit input
    a float32 array (_half_param)."""
    if half is None or p is None:
        return _param(p, name, shape, x)
    return _half_param(p, name, shape, half, "normalized_shape")


def _row_eps(eps, x, half, rms):
    if half is not None and eps is None and rms:  # the dtype's machine epsilon, as torch
        return 2.0 ** -7 if half == "bfloat16" else float(np.finfo(np.float16).eps)
    return _eps(eps, x.dtype, allow_none=rms)


def _row_norm(input, normalized_shape, weight, bias, eps, rms, return_saved, bfloat16=False,
              out=None):
    x, half = _half_input(input, bfloat16)
    shape = _normalized_shape(normalized_shape, x)
    w = _row_param(weight, "weight", shape, x, half)
    b = _row_param(bias, "bias", shape, x, half)
    eps = _row_eps(eps, x, half, rms)
    ops = _backend.ops_for(x, w, b, name="input")
    out = _out_buffer(out, x, input, ("weight", weight), ("bias", bias))
    X2 = _rows(x, shape)
    storage = {"bfloat16": True} if half == "bfloat16" else {}
    y, mean, rstd = ops.row_norm_forward(X2, w, b, eps, rms, **storage,
                                         out=None if out is None else out.reshape(X2.shape))
    y = y.reshape(x.shape) if out is None else out
    return (y, SavedStats(mean, rstd)) if return_saved else y


def _row_norm_backward(grad_output, input, normalized_shape, weight, bias, eps, rms, saved,
                       bfloat16=False, out=None):
    x, half = _half_input(input, bfloat16)
    dy = np.asarray(grad_output) if half else _float_array(grad_output, "grad_output", gpu=True)
    ops = _backend.ops_for(x, dy, name="grad_output")
    if dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError(f"grad_output must have input's shape {x.shape} and dtype {x.dtype}, "
                         f"got {dy.shape} {dy.dtype}")
    shape = _normalized_shape(normalized_shape, x)
    w = _row_param(weight, "weight", shape, x, half)
    b = _row_param(bias, "bias", shape, x, half)
    eps = _row_eps(eps, x, half, rms)

    def param_dtype(given):  # a parameter gradient's dtype (16-bit input: as given)
        return x.dtype if half is None else np.asarray(given).dtype
    specs = [("grad_input", x.shape, x.dtype),
             _param_spec("grad_weight", weight, shape, param_dtype(weight))]
    if not rms:
        specs.append(_param_spec("grad_bias", bias, shape, param_dtype(bias)))
    n_rows = math.prod(x.shape[:x.ndim - len(shape)])
    saved = _check_saved(saved, n_rows)
    bufs = _grad_buffers(out, x, specs, ("input", input), ("input", x),
                         ("grad_output", grad_output), ("grad_output", dy),
                         ("weight", weight), ("bias", bias),
                         *(() if saved is None else (("saved.mean", saved.mean),
                                                     ("saved.rstd", saved.rstd))))
    X2, dY2 = _rows(x, shape), _rows(dy, shape)
    storage = {"bfloat16": True} if half == "bfloat16" else {}
    if saved is None:
        _, mean, rstd = ops.row_norm_forward(X2, None, None, eps, rms, **storage)
    else:
        _backend.ops_for(x, saved.mean, saved.rstd, name="saved")
        mean, rstd = saved.mean, saved.rstd
    dX, dw, db = ops.row_norm_backward(
        dY2, X2, w, mean, rstd, rms, want_dw=w is not None, want_db=b is not None, **storage,
        dX=None if bufs[0] is None else bufs[0].reshape(X2.shape))

    def as_param(g, given, buf):  # in the parameter's dtype (16-bit input: as given)
        if g is None:
            return None
        return _write(g.reshape(shape), buf, param_dtype(given))
    return (dX.reshape(x.shape) if bufs[0] is None else bufs[0],
            as_param(dw, weight, bufs[1]), None if rms else as_param(db, bias, bufs[2]))


_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_MACHINE_EPS = {_F32: float(np.finfo(np.float32).eps), _F64: float(np.finfo(np.float64).eps)}
_ndarray = np.ndarray


def _fast_row_norm(input, normalized_shape, weight, bias, eps, rms, out=None):
    """(out, mean, rstd) for the common call, or None for the full path.

    The common call: a C-contiguous float32/float64 ndarray normalized over
    its last dimension (normalized_shape an int, or a 1-tuple/list of one,
    equal to it), weight/bias None or C-contiguous (n,) ndarrays of its
    dtype, eps a float (or None for rms_norm), on the CPU backend. Every
    check of the full path holds for it by construction, so these few
    comparisons are all it needs: a small call costs what its kernel costs,
    not ~25 µs of argument checking. Anything else (every error included)
    takes the full path.
    """
    if type(input) is not _ndarray:
        return None
    dtype = input.dtype
    if dtype is not _F32 and dtype is not _F64:
        return None
    n = normalized_shape
    if type(n) is not int:
        if (type(n) is not tuple and type(n) is not list) or len(n) != 1:
            return None
        n = n[0]
        if type(n) is not int:
            return None
    shape = input.shape
    if not shape or shape[-1] != n or not n or not input.flags.c_contiguous:
        return None
    if weight is not None and (type(weight) is not _ndarray or weight.dtype is not dtype
                               or weight.shape != (n,) or not weight.flags.c_contiguous):
        return None
    if bias is not None and (type(bias) is not _ndarray or bias.dtype is not dtype
                             or bias.shape != (n,) or not bias.flags.c_contiguous):
        return None
    if type(eps) is not float:
        if eps is not None or not rms:
            return None
        eps = _MACHINE_EPS[dtype]
    ops = _backend.numpy_ops()
    if ops is None:
        return None
    if out is not None:  # (the checks of the full path's _out_buffer)
        check_out(out, input, contiguous=True,
                  inputs=(("input", input), ("weight", weight), ("bias", bias)))
    return ops.row_norm_forward(input, weight, bias, eps, rms, out=out)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *, out=None,
               return_saved=False):
    """Layer normalization over the trailing `normalized_shape` dimensions,
    as torch.nn.functional.layer_norm. out: see the module's docstring."""
    fast = _fast_row_norm(input, normalized_shape, weight, bias, eps, False, out)
    if fast is not None:
        return (fast[0], SavedStats(fast[1], fast[2])) if return_saved else fast[0]
    return _row_norm(input, normalized_shape, weight, bias, eps, False, return_saved,
                     out=out)


def layer_norm_backward(grad_output, input, normalized_shape, weight=None, bias=None,
                        eps=1e-5, *, saved=None, out=None):
    """(grad_input, grad_weight, grad_bias) of layer_norm; None for an absent
    weight or bias. out: None, or a tuple (grad_input, grad_weight,
    grad_bias) of buffers, each None to allocate (see the module's docstring)."""
    return _row_norm_backward(grad_output, input, normalized_shape, weight, bias, eps,
                              False, saved, out=out)


def rms_norm(input, normalized_shape, weight=None, eps=None, *, out=None,
             return_saved=False):
    """RMS normalization over the trailing `normalized_shape` dimensions, as
    torch.nn.functional.rms_norm (eps=None: the dtype's machine epsilon).
    out: see the module's docstring."""
    fast = _fast_row_norm(input, normalized_shape, weight, None, eps, True, out)
    if fast is not None:
        return (fast[0], SavedStats(fast[1], fast[2])) if return_saved else fast[0]
    return _row_norm(input, normalized_shape, weight, None, eps, True, return_saved, out=out)


def rms_norm_backward(grad_output, input, normalized_shape, weight=None, eps=None, *,
                      saved=None, out=None):
    """(grad_input, grad_weight) of rms_norm; None for an absent weight.
    out: None, or a tuple (grad_input, grad_weight) of buffers, each None
    to allocate."""
    dx, dw, _ = _row_norm_backward(grad_output, input, normalized_shape, weight, None, eps,
                                   True, saved, out=out)
    return dx, dw


# ----------------------------------------------------------- channel norms ---

LAYOUTS = ("NCHW", "NHWC")


def _one_library(x, arr, name):
    """Refuse NumPy and CuPy arrays mixed in one call (the arrays' library
    checked already: two plain NumPy arrays need nothing more)."""
    if type(x) is not np.ndarray or type(arr) is not np.ndarray:
        _backend.ops_for(x, arr, name=name)


def _grad_output(grad_output, x, half=None):
    """grad_output, of input x's shape and dtype (16-bit input: see _half_input)."""
    dy = _half_input(grad_output, half == "bfloat16", "grad_output")[0] if half else \
        _float_array(grad_output, "grad_output", gpu=True)
    _one_library(x, dy, "grad_output")
    if dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError(f"grad_output must have input's shape {x.shape} and dtype {x.dtype}, "
                         f"got {dy.shape} {dy.dtype}")
    return dy


class _Channels:
    """An (N, C, *spatial) or channels-last (N, *spatial, C) input viewed for
    the channel kernels. Per-(sample, channel) arrays are (N, C) in both
    layouts; `pooled` (channels-last only) views all samples as one, so that
    per-channel statistics come straight out of the kernel as (1, C)."""

    def __init__(self, x, layout, min_ndim, max_ndim=None, pooled=False, name="input",
                 half=None):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if x.ndim < min_ndim or (max_ndim is not None and x.ndim > max_ndim):
            want = (f"{min_ndim}-D to {max_ndim}-D" if max_ndim is not None
                    else f"at least {min_ndim}-D")
            raise ValueError(f"{name} must be {want} (N, C, ...), got shape {x.shape}")
        self.shape = x.shape
        # NumPy, or CuPy on the GPU (x checked: a plain ndarray is the CPU's)
        plain = type(x) is np.ndarray
        self.xp = np if plain else _backend.namespace(x)
        self.ops = (plain and _backend.numpy_ops()) or _backend.ops_for(x)
        # 16-bit storage (_half_input): the kernels are told bfloat16's
        self.half = half
        self.kw = {"bfloat16": True} if half == "bfloat16" else {}
        self.channels_last = layout == "NHWC" and x.ndim > 2
        if self.channels_last:
            self.N, self.C = x.shape[0], x.shape[-1]
            self.S = math.prod(x.shape[1:-1])
        else:
            self.N, self.C = x.shape[:2]
            self.S = math.prod(x.shape[2:])
        # 2-D (N, C) is the same in both layouts: channels-last needs no reshape
        self.pooled = pooled and (self.channels_last or x.ndim == 2)
        self.X3 = self.view(x)

    def view(self, a):
        a = self.xp.ascontiguousarray(a)
        if self.pooled:
            return a.reshape(1, self.N * self.S, self.C)
        if self.channels_last or a.ndim == 2:
            return a.reshape(self.N, self.S, self.C)
        return a.reshape(self.N * self.C, self.S, 1)

    def coef(self, c):
        """An (N, C)-broadcastable coefficient in the kernels' (A, K) shape."""
        rows = 1 if self.pooled else self.N
        c = self.xp.asarray(c, dtype=np.float64)
        if c.shape != (rows, self.C):  # (C,) or a scalar: built in the kernel's shape
            full = self.xp.empty((rows, self.C))
            full[...] = c
            c = full
        return c if (self.pooled or self.channels_last or len(self.shape) == 2) \
            else c.reshape(rows * self.C, 1)

    def per_channel(self, a):
        """A kernel result back as (N, C) (as (1, C) when pooled)."""
        return a.reshape(1 if self.pooled else self.N, self.C)

    def moments(self):
        """(mean, M2) per (sample, channel) over the spatial positions."""
        mean, m2 = self.ops.channel_moments(self.X3, **self.kw)
        return self.per_channel(mean), self.per_channel(m2)

    def dot_sums(self, dy, shift):
        """(sum dy, sum dy * (x - shift)) per (sample, channel)."""
        sdy, sdyx = self.ops.channel_dot_sums(self.view(dy), self.X3, self.coef(shift),
                                              **self.kw)
        return self.per_channel(sdy), self.per_channel(sdyx)

    def _result(self, a, buf):
        """A kernel result in the input's shape: the caller's buffer `buf`
        (which the kernel wrote through a view) when one was given."""
        return a.reshape(self.shape) if buf is None else buf

    def affine(self, shift, scale, offset, out=None):
        y = self.ops.channel_affine(self.X3, self.coef(shift), self.coef(scale),
                                    self.coef(offset), out=None if out is None else self.view(out),
                                    **self.kw)
        return self._result(y, out)

    def backward(self, dy, shift, p, q, r, dx=None):
        g = self.ops.channel_backward(self.view(dy), self.X3, self.coef(shift), self.coef(p),
                                      self.coef(q), self.coef(r),
                                      dX=None if dx is None else self.view(dx), **self.kw)
        return self._result(g, dx)

    def empty(self, buf=None):
        """An uninitialized result of the input's shape (or the buffer `buf`)."""
        return self.xp.empty(self.shape, self.X3.dtype) if buf is None else buf

    # The fused kernels visit each item (the values that share statistics)
    # once, statistics then apply, while it is in cache: NCHW channels long
    # enough for the segment loops to vectorize, or channels-last samples.
    # Channels-last batch norm has no cache-sized item: it stays unfused.
    # 16-bit storage converts a whole item into float32 scratch per thread:
    # fused up to HALF_FUSED_ITEM values, larger items run unfused (their
    # kernels convert cache-sized blocks).
    MIN_FUSED_SEGMENT = 32
    HALF_FUSED_ITEM = 1 << 17

    def fusable(self, G=None, batch=False):
        if self.N * self.C * self.S == 0 or len(self.shape) == 2 or self.xp is not np:
            return False  # (no fused kernels on the GPU yet)
        if self.channels_last:
            item = self.S * self.C
            fused = not batch
        else:
            item = self.S * (self.N if batch else self.C // G)
            fused = self.S >= self.MIN_FUSED_SEGMENT
        return fused and (self.half is None or item <= self.HALF_FUSED_ITEM)

    def _nchw(self, a):
        return np.ascontiguousarray(a).reshape(self.N, self.C, self.S)

    def fused_forward(self, G, w, b, eps, batch=False, out=None):
        """(out, mean, biased var): statistics per channel (C,) for batch
        norm, per (sample, group) (N, G) otherwise."""
        ops = self.ops
        if self.channels_last:
            y, mean, var = ops.fused_forward_nhwc(
                self.X3, G, w, b, eps, out=None if out is None else self.view(out), **self.kw)
        else:
            n_count, c_count = (self.N, 1) if batch else (1, self.C // G)
            y, mean, var = ops.fused_forward_nchw(
                self._nchw(self.X3), n_count, c_count, w, b, eps,
                out=None if out is None else self._nchw(out), **self.kw)
            if not batch:
                mean, var = mean.reshape(self.N, G), var.reshape(self.N, G)
        return self._result(y, out), mean, var

    def fused_backward(self, dy, G, w, mean, rstd, batch=False, dx=None):
        """(dx, sdy, sdyx) of fused_forward, the sums per (sample, channel)
        with the item mean as shift."""
        ops = self.ops
        if self.channels_last:
            g, sdy, sdyx = ops.fused_backward_nhwc(self.view(dy), self.X3, G, w, mean, rstd,
                                                   dX=None if dx is None else self.view(dx),
                                                   **self.kw)
        else:
            n_count, c_count = (self.N, 1) if batch else (1, self.C // G)
            g, sdy, sdyx = ops.fused_backward_nchw(self._nchw(dy), self._nchw(self.X3),
                                                   n_count, c_count, w, mean, rstd,
                                                   dX=None if dx is None else self._nchw(dx),
                                                   **self.kw)
        return self._result(g, dx), sdy, sdyx


def _merge(mean, m2, count, axis):
    """Chan's merge of equal-count moments along `axis`: (mean, M2)."""
    # (NumPy's mean: the sum divided by the count, without its Python layer)
    m = mean.sum(axis=axis, keepdims=True) / mean.shape[axis] if type(mean) is np.ndarray \
        else mean.mean(axis=axis, keepdims=True)
    return m, m2.sum(axis=axis, keepdims=True) + count * ((mean - m) ** 2).sum(
        axis=axis, keepdims=True)


def _channel_param(p, name, C, x, in_place=False, half=None):
    """weight/bias/running statistics: None, or a 1-D array of length C in
    input x's dtype and library (in_place: the array itself, in its byte
    order, for writing through); beside 16-bit input, _half_param's."""
    dtype = x.dtype
    if p is None:
        return None
    if half is not None:
        return _half_param(p, name, (C,), half, "the number of channels", in_place)
    arr = _float_array(p, name, keep_byte_order=in_place, gpu=True)
    _one_library(x, arr, name)
    if arr.shape != (C,):
        raise ValueError(f"{name} must have shape ({C},) (the number of channels), "
                         f"got {arr.shape}")
    if arr.dtype != dtype and arr.dtype.newbyteorder("=") != dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but input has {dtype}; they must match")
    if in_place:
        return arr
    return np.ascontiguousarray(arr) if type(arr) is np.ndarray else \
        _backend.namespace(arr).ascontiguousarray(arr)


def _running(p, name, C, x, half=None):
    """A running statistic, updated in place: a writable array."""
    arr = _channel_param(p, name, C, x, in_place=True, half=half)
    if arr is not None and not ((isinstance(p, np.ndarray) or _backend.array_library(p) == "cupy")
                                and _backend.is_writeable(p)):
        raise TypeError(f"{name} is updated in place: it must be a writable NumPy (or CuPy) "
                        "array")
    return arr


def _momentum(momentum, num_batches_tracked=None):
    """The weight of this batch in the running statistics: any real number,
    as torch takes it (outside [0, 1] the update extrapolates, as torch's).
    momentum=None is the cumulative average of torch's modules: fastnorm's
    functions take it with `num_batches_tracked` (torch's functions refuse
    None: so does this without it, with torch's TypeError)."""
    if momentum is None:
        if num_batches_tracked is None:
            raise TypeError("momentum must be a float, got None (momentum=None, the "
                            "cumulative average, needs num_batches_tracked)")
        if not isinstance(num_batches_tracked, Integral) or num_batches_tracked < 1:
            raise ValueError("momentum=None (a cumulative average) needs num_batches_tracked, "
                             "the number of batches seen including this one (>= 1), got "
                             f"{num_batches_tracked!r}")
        return 1.0 / num_batches_tracked
    if type(momentum) is float:
        return momentum
    if not isinstance(momentum, Real):
        raise TypeError(f"momentum must be a float, got {momentum!r}")
    return float(momentum)


def _rstd(var, eps):
    """1 / sqrt(var + eps): NaN where that is negative, inf where it is 0 (an
    unusual eps: torch's results), without NumPy's warnings."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 / np.sqrt(var + eps)


def _ones_if_none(w, C, xp=np):
    return xp.ones(C) if w is None else w.astype(np.float64)


def _zeros_if_none(b, C, xp=np):
    return xp.zeros(C) if b is None else b.astype(np.float64)


def _param_grads(weight, bias, dw, db, dtype, bufs=(None, None)):
    """The weight and bias gradients (None for no parameter) in `dtype`,
    written into the buffers `bufs` where given; dtype None (16-bit input):
    each in its parameter's dtype, as given."""
    def cast(g, p, buf):
        return None if p is None else _write(g, buf, dtype or np.asarray(p).dtype)
    return cast(dw, weight, bufs[0]), cast(db, bias, bufs[1])


def _channel_grad_buffers(out, x, grad_output, dy, weight, bias, *arrays, half=None):
    """The (grad_input, grad_weight, grad_bias) buffers of a channel norm's
    backward (see _grad_buffers); a parameter's gradient has x's dtype, or
    beside 16-bit input (half) the parameter's own."""
    if out is None:  # (nothing to check)
        return [None, None, None]

    def param_dtype(p):
        return x.dtype if half is None else np.asarray(p).dtype
    specs = [("grad_input", x.shape, x.dtype),
             _param_spec("grad_weight", weight, np.shape(weight), param_dtype(weight)),
             _param_spec("grad_bias", bias, np.shape(bias), param_dtype(bias))]
    return _grad_buffers(out, x, specs, ("input", x), ("grad_output", grad_output),
                         ("grad_output", dy), ("weight", weight), ("bias", bias), *arrays)


# batch_norm ------------------------------------------------------------------

def _batch_norm_args(input, running_mean, running_var, weight, bias, training, eps, layout,
                     momentum=None, num_batches_tracked=None, forward=False):
    """The checks of torch's batch_norm, in its order; the forward's also
    return the running statistics' factor (momentum), checked as torch's
    (the backward does not use it: layers pass None there)."""
    x, half = _half_input(input)
    if training and x.ndim >= 1:  # torch's _verify_batch_size, first
        spatial = x.shape[1:-1] if layout == "NHWC" and x.ndim > 2 else x.shape[2:]
        if x.shape[0] * math.prod(spatial) == 1:
            raise ValueError("Expected more than 1 value per channel when training, got "
                             f"input size {x.shape}")
    eps = _eps(eps, x.dtype)
    if training and eps <= 0:  # torch's checks (a NaN eps passes them, as torch's)
        raise ValueError(f"batch_norm eps must be positive during training, but got {eps}")
    if eps < 0:
        raise ValueError(f"batch_norm eps must be non-negative, but got {eps}")
    factor = _momentum(momentum, num_batches_tracked) if forward else None
    if x.ndim == 1 and x.size == 0:
        # torch returns an empty batch as it is before looking at channels
        # (a 1-D input has none); every other 1-D input it refuses, as we do
        return x, None, None, None, None, None, eps, factor
    ch = _Channels(x, layout, 2, 5, pooled=True, half=half)
    rm = _running(running_mean, "running_mean", ch.C, x, half)
    rv = _running(running_var, "running_var", ch.C, x, half)
    if (rm is None) != (rv is None):
        raise ValueError("running_mean and running_var must be given together")
    if not training and rm is None and x.size:  # (torch returns an empty batch first)
        raise ValueError("running_mean and running_var are required when training=False")
    w = _channel_param(weight, "weight", ch.C, x, half=half)
    b = _channel_param(bias, "bias", ch.C, x, half=half)
    return x, ch, rm, rv, w, b, eps, factor


def _batch_stats(ch):
    """Per-channel (mean, biased variance) of the batch, each (C,)."""
    mean, m2 = ch.moments()
    count = ch.N * ch.S
    if not ch.pooled:  # per (sample, channel): merge the samples
        mean, m2 = _merge(mean, m2, ch.S, axis=0)
    return mean[0], m2[0] / count


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5, *, layout="NCHW", num_batches_tracked=None,
               out=None, return_saved=False):
    """Batch normalization, as torch.nn.functional.batch_norm.

    Training normalizes with the batch's biased variance and, when running
    statistics are given, updates them in place: running = (1 - momentum) *
    running + momentum * batch, with the unbiased variance. momentum=None is
    torch's cumulative average: pass `num_batches_tracked`, the number of
    batches seen including this one (what torch's module counts). Eval
    (training=False) normalizes with the running statistics. An empty batch
    leaves the running statistics as they are. out: see the module's
    docstring.
    """
    x, ch, rm, rv, w, b, eps, factor = _batch_norm_args(
        input, running_mean, running_var, weight, bias, training, eps, layout, momentum,
        num_batches_tracked, forward=True)
    out = _out_buffer(out, x, input, ("weight", weight), ("bias", bias),
                      ("running_mean", running_mean), ("running_var", running_var))
    if ch is None:  # an empty 1-D batch
        y = _write(x, out) if out is not None else x.copy()
        return (y, SavedStats(np.empty(0), np.empty(0))) if return_saved else y
    if not training and rm is None:  # an empty batch without running statistics
        y = ch.empty(out)
        return (y, SavedStats(ch.xp.full(ch.C, np.nan), ch.xp.full(ch.C, np.nan))) \
            if return_saved else y
    y = None
    if training:
        count = ch.N * ch.S
        if count == 0:
            mean = var = ch.xp.full(ch.C, np.nan)
        elif ch.fusable(batch=True):
            y, mean, var = ch.fused_forward(None, w, b, eps, batch=True, out=out)
        else:
            mean, var = _batch_stats(ch)
        if rm is not None and count > 0:
            rm[...] = (1 - factor) * rm + factor * mean
            rv[...] = (1 - factor) * rv + factor * var * (count / (count - 1))
    else:
        mean, var = rm.astype(np.float64), rv.astype(np.float64)
    rstd = _rstd(var, eps)
    if y is None:
        y = ch.affine(mean, _scale(rstd, w), 0.0 if b is None else b, out=out)
    return (y, SavedStats(mean, rstd)) if return_saved else y


def batch_norm_backward(grad_output, input, running_mean, running_var, weight=None, bias=None,
                        training=False, momentum=0.1, eps=1e-5, *, layout="NCHW",
                        saved=None, out=None):
    """(grad_input, grad_weight, grad_bias) of batch_norm.

    In training the statistics are the batch's: from `saved`, or recomputed
    from the input (the running statistics, which the forward updated, are
    not used). In eval they are the running statistics. out: None, or a
    tuple (grad_input, grad_weight, grad_bias) of buffers, each None to
    allocate.
    """
    x, ch, rm, rv, w, b, eps, _ = _batch_norm_args(input, running_mean, running_var, weight,
                                                   bias, training, eps, layout)
    half = _half_input(input)[1] if ch is None else ch.half
    dy = _grad_output(grad_output, x, half)
    gdtype = None if half else x.dtype  # (16-bit input: each parameter's own)
    bufs = _channel_grad_buffers(out, x, grad_output, dy, weight, bias, ("input", input),
                                 ("running_mean", running_mean), ("running_var", running_var),
                                 half=half)
    if ch is None:  # an empty 1-D batch: torch's output is the input (times weight[0])
        zeros = (lambda p, buf: None if p is None else
                 _write(np.zeros(np.shape(p), gdtype or np.asarray(p).dtype), buf))
        return (x.copy() if bufs[0] is None else _write(x, bufs[0]), zeros(weight, bufs[1]),
                zeros(bias, bufs[2]))
    saved = _check_saved(saved, ch.C)
    if x.size == 0:  # sums over no values: zero gradients (torch's too)
        return (ch.empty(bufs[0]),) + _param_grads(weight, bias, ch.xp.zeros(ch.C),
                                                   ch.xp.zeros(ch.C), gdtype, bufs[1:])
    if saved is not None:
        mean, rstd = saved.mean, saved.rstd
    elif training:
        mean, var = _batch_stats(ch)
        rstd = _rstd(var, eps)
    else:
        mean, rstd = rm.astype(np.float64), _rstd(rv.astype(np.float64), eps)
    if training and ch.fusable(batch=True):
        dx, sdy, sdyx = ch.fused_backward(dy, None, w, mean, rstd, batch=True, dx=bufs[0])
        return (dx,) + _param_grads(weight, bias, rstd * sdyx.sum(axis=0), sdy.sum(axis=0),
                                    gdtype, bufs[1:])
    wd = _ones_if_none(w, ch.C, ch.xp)
    sdy, sdyx = ch.dot_sums(dy, mean)
    sdy, sdyx = sdy.sum(axis=0), sdyx.sum(axis=0)
    if training:
        count = ch.N * ch.S
        q = -rstd ** 3 * wd * sdyx / count
        r = -rstd * wd * sdy / count
    else:
        q = r = ch.xp.zeros(ch.C)
    dx = ch.backward(dy, mean, rstd * wd, q, r, dx=bufs[0])
    return (dx,) + _param_grads(weight, bias, rstd * sdyx, sdy, gdtype, bufs[1:])


# group_norm / instance_norm ---------------------------------------------------

def _group_stats(ch, G):
    """Per-(sample, group) (mean, biased variance), each (N, G); NaN for
    groups without values."""
    if ch.N * ch.C * ch.S == 0:
        return ch.xp.full((ch.N, G), np.nan), ch.xp.full((ch.N, G), np.nan)
    mean, m2 = ch.moments()
    size = ch.C // G
    mean, m2 = _merge(mean.reshape(ch.N, G, size), m2.reshape(ch.N, G, size), ch.S, axis=2)
    return mean[..., 0], m2[..., 0] / (size * ch.S)


def _expand(a, size):
    """Per-(sample, group) (N, G) values per (sample, channel), (N, G * size)."""
    return a if size == 1 else a.repeat(size, axis=1)


def _scale(rstd, w):
    """rstd * weight (no weight: rstd, which times ones it equals)."""
    return rstd if w is None else rstd * w.astype(np.float64)


def _group_forward(ch, G, w, b, eps, out=None):
    """(out, mean, biased var, rstd) of the per-(sample, group)
    normalization; statistics (N, G). out: the caller's buffer or None."""
    if ch.N * ch.C * ch.S == 0:
        mean, var = _group_stats(ch, G)
        return ch.empty(out), mean, var, _rstd(var, eps)
    if ch.fusable(G):
        y, mean, var = ch.fused_forward(G, w, b, eps, out=out)
        return y, mean, var, _rstd(var, eps)
    mean, var = _group_stats(ch, G)
    rstd = _rstd(var, eps)
    size = ch.C // G
    y = ch.affine(_expand(mean, size), _scale(_expand(rstd, size), w),
                  0.0 if b is None else b, out=out)
    return y, mean, var, rstd


def _group_backward(ch, dy, G, mean, rstd, w, dx=None):
    """(dx, dw, db) of the per-(sample, group) normalization with
    statistics (mean, rstd) (N, G) and per-channel weight w (or None);
    dx: the caller's buffer or None."""
    if ch.N * ch.C * ch.S == 0:  # sums over no values: zero gradients
        return ch.empty(dx), ch.xp.zeros(ch.C), ch.xp.zeros(ch.C)
    size = ch.C // G
    if ch.fusable(G):
        dx, sdy, sdyx = ch.fused_backward(dy, G, w, mean, rstd, dx=dx)
        return dx, (_expand(rstd, size) * sdyx).sum(axis=0), sdy.sum(axis=0)
    wd = _ones_if_none(w, ch.C, ch.xp)
    mean_c, rstd_c = _expand(mean, size), _expand(rstd, size)  # (N, G) -> (N, C)
    sdy, sdyx = ch.dot_sums(dy, mean_c)
    count = size * ch.S
    sum_g = (sdy * wd).reshape(ch.N, G, size).sum(axis=2)
    sum_gx = (sdyx * wd).reshape(ch.N, G, size).sum(axis=2)
    q = _expand(-rstd ** 3 * sum_gx / count, size)
    r = _expand(-rstd * sum_g / count, size)
    dx = ch.backward(dy, mean_c, rstd_c * wd, q, r, dx=dx)
    return dx, (rstd_c * sdyx).sum(axis=0), sdy.sum(axis=0)


def _group_norm_args(input, num_groups, weight, bias, eps, layout):
    x, half = _half_input(input)
    ch = _Channels(x, layout, 2, half=half)
    if not isinstance(num_groups, Integral) or isinstance(num_groups, bool) or num_groups <= 0:
        raise ValueError(f"num_groups must be a positive int, got {num_groups!r}")
    if ch.C % num_groups:
        raise ValueError(f"num_groups={num_groups} must divide the number of channels "
                         f"{ch.C} (input of shape {x.shape})")
    if ch.N * (ch.C // num_groups) * ch.S == 1:  # torch's check (in eval mode too)
        raise ValueError("Expected more than 1 value per channel when training, got input "
                         f"size {x.shape} ({num_groups} groups of one value)")
    w = _channel_param(weight, "weight", ch.C, x, half=half)
    b = _channel_param(bias, "bias", ch.C, x, half=half)
    return x, ch, int(num_groups), w, b, _eps(eps, x.dtype)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5, *, layout="NCHW",
               out=None, return_saved=False):
    """Group normalization, as torch.nn.functional.group_norm; the saved
    statistics are per (sample, group), shape (N, num_groups). out: see the
    module's docstring."""
    x, ch, G, w, b, eps = _group_norm_args(input, num_groups, weight, bias, eps, layout)
    out = _out_buffer(out, x, input, ("weight", weight), ("bias", bias))
    y, mean, _, rstd = _group_forward(ch, G, w, b, eps, out=out)
    return (y, SavedStats(mean, rstd)) if return_saved else y


def group_norm_backward(grad_output, input, num_groups, weight=None, bias=None, eps=1e-5, *,
                        layout="NCHW", saved=None, out=None):
    """(grad_input, grad_weight, grad_bias) of group_norm. out: None, or a
    tuple (grad_input, grad_weight, grad_bias) of buffers, each None to
    allocate."""
    x, ch, G, w, b, eps = _group_norm_args(input, num_groups, weight, bias, eps, layout)
    dy = _grad_output(grad_output, x, ch.half)
    bufs = _channel_grad_buffers(out, x, grad_output, dy, weight, bias, ("input", input),
                                 half=ch.half)
    saved = _check_saved(saved, (ch.N, G))
    if saved is None:
        mean, var = _group_stats(ch, G)
        rstd = _rstd(var, eps)
    else:
        mean, rstd = saved.mean, saved.rstd
    dx, dw, db = _group_backward(ch, dy, G, mean, rstd, w, dx=bufs[0])
    return (dx,) + _param_grads(weight, bias, dw, db, None if ch.half else x.dtype, bufs[1:])


def _instance_norm_args(input, running_mean, running_var, weight, bias, use_input_stats, eps,
                        layout, momentum=None, forward=False):
    """The checks of torch's instance_norm, in its order; the forward's also
    return the running statistics' factor (momentum), checked as torch's."""
    x, half = _half_input(input)
    # 2-D (N, C): torch takes it (eval, from running stats)
    ch = _Channels(x, layout, 2, 5, half=half)
    if use_input_stats and ch.S == 1:  # torch's _verify_spatial_size, first
        raise ValueError("Expected more than 1 spatial element when training, got input "
                         f"size {x.shape}")
    eps = _eps(eps, x.dtype)
    factor = _momentum(momentum) if forward else None
    rm = _running(running_mean, "running_mean", ch.C, x, half)
    rv = _running(running_var, "running_var", ch.C, x, half)
    if (rm is None) != (rv is None):
        raise ValueError("running_mean and running_var must be given together")
    if not use_input_stats and rm is None:
        raise ValueError("running_mean and running_var are required when "
                         "use_input_stats=False")
    w = _channel_param(weight, "weight", ch.C, x, half=half)
    b = _channel_param(bias, "bias", ch.C, x, half=half)
    return x, ch, rm, rv, w, b, eps, factor


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5, *, layout="NCHW",
                  out=None, return_saved=False):
    """Instance normalization, as torch.nn.functional.instance_norm.

    With use_input_stats, each (sample, channel) is normalized by its own
    statistics, and given running statistics are updated in place with
    their average over the batch (unbiased variance), as torch does; without,
    the running statistics normalize. Saved statistics are (N, C). out: see
    the module's docstring.
    """
    x, ch, rm, rv, w, b, eps, m = _instance_norm_args(
        input, running_mean, running_var, weight, bias, use_input_stats, eps, layout, momentum,
        forward=True)
    out = _out_buffer(out, x, input, ("weight", weight), ("bias", bias),
                      ("running_mean", running_mean), ("running_var", running_var))
    if use_input_stats:
        y, mean, var, rstd = _group_forward(ch, ch.C, w, b, eps, out=out)
        if rm is not None and ch.N * ch.S > 0:  # no values: left as they are, as torch
            rm[...] = (1 - m) * rm + m * mean.mean(axis=0)
            rv[...] = (1 - m) * rv + m * (var * (ch.S / (ch.S - 1))).mean(axis=0)
    else:
        mean = np.broadcast_to(rm.astype(np.float64), (ch.N, ch.C))
        rstd = np.broadcast_to(_rstd(rv.astype(np.float64), eps), (ch.N, ch.C))
        y = ch.affine(mean, _scale(rstd, w), 0.0 if b is None else b, out=out)
    return (y, SavedStats(mean, rstd)) if return_saved else y


def instance_norm_backward(grad_output, input, running_mean=None, running_var=None,
                           weight=None, bias=None, use_input_stats=True, momentum=0.1,
                           eps=1e-5, *, layout="NCHW", saved=None, out=None):
    """(grad_input, grad_weight, grad_bias) of instance_norm. out: None, or a
    tuple (grad_input, grad_weight, grad_bias) of buffers, each None to
    allocate."""
    x, ch, rm, rv, w, b, eps, _ = _instance_norm_args(
        input, running_mean, running_var, weight, bias, use_input_stats, eps, layout)
    dy = _grad_output(grad_output, x, ch.half)
    bufs = _channel_grad_buffers(out, x, grad_output, dy, weight, bias, ("input", input),
                                 ("running_mean", running_mean), ("running_var", running_var),
                                 half=ch.half)
    saved = _check_saved(saved, (ch.N, ch.C))
    if saved is not None:
        mean, rstd = saved.mean, saved.rstd
    elif use_input_stats:
        mean, var = _group_stats(ch, ch.C)
        rstd = _rstd(var, eps)
    else:
        mean = np.broadcast_to(rm.astype(np.float64), (ch.N, ch.C))
        rstd = np.broadcast_to(_rstd(rv.astype(np.float64), eps), (ch.N, ch.C))
    if use_input_stats:
        dx, dw, db = _group_backward(ch, dy, ch.C, mean, rstd, w, dx=bufs[0])
    else:  # the statistics are constants
        wd = _ones_if_none(w, ch.C, ch.xp)
        sdy, sdyx = ch.dot_sums(dy, mean)
        zeros = ch.xp.zeros((ch.N, ch.C))
        dx = ch.backward(dy, mean, rstd * wd, zeros, zeros, dx=bufs[0])
        dw, db = (rstd * sdyx).sum(axis=0), sdy.sum(axis=0)
    return (dx,) + _param_grads(weight, bias, dw, db, None if ch.half else x.dtype, bufs[1:])


# switchable_norm -------------------------------------------------------------

def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _switchable_args(input, weight, bias, mean_weight, var_weight, running_mean, running_var,
                     training, eps, using_bn, layout):
    x = _float_array(input, "input", gpu=True)
    ch = _Channels(x, layout, 3, 5)
    w = _channel_param(weight, "weight", ch.C, x)
    b = _channel_param(bias, "bias", ch.C, x)
    n_stats = 3 if using_bn else 2
    logits = []
    for name, v in (("mean_weight", mean_weight), ("var_weight", var_weight)):
        arr = _float_array(v, name, gpu=True)
        _backend.ops_for(x, arr, name=name)  # one library
        if arr.shape != (n_stats,):
            raise ValueError(f"{name} must have shape ({n_stats},) (IN, LN"
                             f"{', BN' if using_bn else ''} logits), got {arr.shape}")
        logits.append(arr.astype(np.float64))
    rm = _running(running_mean, "running_mean", ch.C, x) if using_bn else None
    rv = _running(running_var, "running_var", ch.C, x) if using_bn else None
    if using_bn and (rm is None) != (rv is None):
        raise ValueError("running_mean and running_var must be given together")
    if using_bn and not training and rm is None:
        raise ValueError("running_mean and running_var are required when training=False "
                         "and using_bn=True")
    if ch.S == 1:
        raise ValueError(f"switchable_norm needs more than 1 spatial element, got input "
                         f"size {x.shape}")
    return x, ch, w, b, logits, rm, rv, _eps(eps, x.dtype)


def _switchable_stats(ch, logits, rm, rv, training, using_bn):
    """The IN, LN (and BN) (mean, biased variance) pairs broadcast to (N, C),
    their mixing weights, and the mixed (mean, var)."""
    mean_in, m2 = ch.moments()
    S, C, N = ch.S, ch.C, ch.N
    mean_ln, m2_ln = _merge(mean_in, m2, S, axis=1)
    parts = [(mean_in, m2 / S), (mean_ln, m2_ln / (C * S))]
    if using_bn:
        if training:
            mean_bn, m2_bn = _merge(mean_in, m2, S, axis=0)
            parts.append((mean_bn, m2_bn / (N * S)))
        else:
            parts.append((rm.astype(np.float64)[None], rv.astype(np.float64)[None]))
    parts = [(np.broadcast_to(m, (N, C)), np.broadcast_to(v, (N, C))) for m, v in parts]
    a, bw = _softmax(logits[0]), _softmax(logits[1])
    mean = sum(ak * m for ak, (m, _) in zip(a, parts))
    var = sum(bk * v for bk, (_, v) in zip(bw, parts))
    return parts, (a, bw), mean, var


def switchable_norm(input, weight, bias, mean_weight, var_weight, running_mean, running_var,
                    training, momentum=0.1, eps=1e-5, using_bn=True, *, layout="NCHW",
                    out=None, return_saved=False):
    """Switchable normalization (Luo et al., 2018): normalizes with a
    softmax-weighted mix of the instance, layer and batch statistics.

    mean_weight and var_weight are the logits of the mix, in the order
    (IN, LN, BN) ((IN, LN) with using_bn=False). As fastnorm's other norms
    (and unlike the paper's reference code, which mixes unbiased instance
    variances) every variance is the biased one; the BN running statistics
    follow torch's convention: running = (1 - momentum) * running + momentum
    * batch, with the unbiased batch variance; eval uses them for the BN part.
    weight and bias may be None (no affine). Saved statistics are the mixed
    (mean, rstd), (N, C). out: see the module's docstring.
    """
    x, ch, w, b, logits, rm, rv, eps = _switchable_args(
        input, weight, bias, mean_weight, var_weight, running_mean, running_var, training,
        eps, using_bn, layout)
    out = _out_buffer(out, x, input, ("weight", weight), ("bias", bias),
                      ("mean_weight", mean_weight), ("var_weight", var_weight),
                      ("running_mean", running_mean), ("running_var", running_var))
    parts, _, mean, var = _switchable_stats(ch, logits, rm, rv, training, using_bn)
    if using_bn and training and rm is not None and ch.N > 0:
        m = _momentum(momentum, None)
        count = ch.N * ch.S
        rm[...] = (1 - m) * rm + m * parts[2][0][0]
        rv[...] = (1 - m) * rv + m * parts[2][1][0] * (count / (count - 1))
    rstd = _rstd(var, eps)
    y = ch.affine(mean, rstd * _ones_if_none(w, ch.C, ch.xp), _zeros_if_none(b, ch.C, ch.xp),
                  out=out)
    return (y, SavedStats(mean, rstd)) if return_saved else y


def switchable_norm_backward(grad_output, input, weight, bias, mean_weight, var_weight,
                             running_mean, running_var, training, momentum=0.1, eps=1e-5,
                             using_bn=True, *, layout="NCHW", saved=None, out=None):
    """(grad_input, grad_weight, grad_bias, grad_mean_weight, grad_var_weight)
    of switchable_norm. In eval the BN statistics are constants. out: None,
    or a tuple of five buffers in that order, each None to allocate."""
    x, ch, w, b, logits, rm, rv, eps = _switchable_args(
        input, weight, bias, mean_weight, var_weight, running_mean, running_var, training,
        eps, using_bn, layout)
    dy = _grad_output(grad_output, x)
    n_stats = 3 if using_bn else 2
    specs = [("grad_input", x.shape, x.dtype),
             _param_spec("grad_weight", weight, np.shape(weight), x.dtype),
             _param_spec("grad_bias", bias, np.shape(bias), x.dtype),
             ("grad_mean_weight", (n_stats,), x.dtype), ("grad_var_weight", (n_stats,), x.dtype)]
    bufs = _grad_buffers(out, x, specs, ("input", input), ("input", x),
                         ("grad_output", grad_output), ("grad_output", dy), ("weight", weight),
                         ("bias", bias), ("mean_weight", mean_weight),
                         ("var_weight", var_weight), ("running_mean", running_mean),
                         ("running_var", running_var))
    _check_saved(saved, (ch.N, ch.C))  # the parts are recomputed either way
    parts, (a, bw), mean, var = _switchable_stats(ch, logits, rm, rv, training, using_bn)
    rstd = _rstd(var, eps)
    wd = _ones_if_none(w, ch.C, ch.xp)
    sdy, sdyx = ch.dot_sums(dy, mean)
    # gradients of the loss wrt the mixed mean and variance, per (n, c)
    g_mean = -rstd * wd * sdy
    g_var = -0.5 * rstd ** 3 * wd * sdyx
    # each part's statistics are means over a set of `count` elements (the
    # set of (n, c) for IN, of n for LN, of c for BN): through them x gets
    # (g_mean_k + 2 (x - mean_k) g_var_k) / count
    S, N, C = ch.S, ch.N, ch.C
    reduce_axes = [None, 1, 0]
    counts = [S, C * S, N * S]
    n_live = 3 if using_bn and training else 2
    q = ch.xp.zeros((N, C))
    r = ch.xp.zeros((N, C))
    for k in range(n_live):
        gm, gv = a[k] * g_mean, bw[k] * g_var
        if reduce_axes[k] is not None:
            gm = gm.sum(axis=reduce_axes[k], keepdims=True)
            gv = gv.sum(axis=reduce_axes[k], keepdims=True)
        q = q + 2 * gv / counts[k]
        r = r + (gm + 2 * gv * (mean - parts[k][0])) / counts[k]
    dx = ch.backward(dy, mean, rstd * wd, q, r, dx=bufs[0])
    # softmax backward for the mixing logits
    ga = ch.xp.stack([(g_mean * m).sum() for m, _ in parts])
    gb = ch.xp.stack([(g_var * v).sum() for _, v in parts])
    g_logits = [p_ * (g - (p_ * g).sum()) for p_, g in ((a, ga), (bw, gb))]
    dw, db = (rstd * sdyx).sum(axis=0), sdy.sum(axis=0)
    return ((dx,) + _param_grads(w, b, dw, db, x.dtype, bufs[1:3])
            + tuple(_write(g, buf, x.dtype) for g, buf in zip(g_logits, bufs[3:])))


# local_response_norm ---------------------------------------------------------

def _lrn_args(input, size, alpha, beta, k):
    x = _float_array(input, "input", gpu=True)
    if x.ndim < 3:
        raise ValueError(f"input must be at least 3-D (N, C, ...), got shape {x.shape}")
    if not isinstance(size, Integral) or isinstance(size, bool) or size <= 0:
        raise ValueError(f"size must be a positive int, got {size!r}")
    for name, v in (("alpha", alpha), ("beta", beta), ("k", k)):
        if not isinstance(v, Real) or isinstance(v, bool) or not np.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    X3 = _backend.namespace(x).ascontiguousarray(x).reshape(x.shape[0], x.shape[1],
                                                            math.prod(x.shape[2:]))
    return x, X3, int(size), float(alpha), float(beta), float(k)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0, *, out=None):
    """Local response normalization across channels, as
    torch.nn.functional.local_response_norm (the window average counts the
    zero padding, as torch's). out: see the module's docstring."""
    x, X3, size, alpha, beta, k = _lrn_args(input, size, alpha, beta, k)
    out = _out_buffer(out, x, input)
    y = _backend.ops_for(X3).lrn_forward(X3, size, alpha, beta, k,
                                         out=None if out is None else out.reshape(X3.shape))
    return y.reshape(x.shape) if out is None else out


def local_response_norm_backward(grad_output, input, size, alpha=1e-4, beta=0.75, k=1.0, *,
                                 out=None):
    """(grad_input,) of local_response_norm. out: None, or a 1-tuple
    (grad_input,) holding a buffer or None."""
    x, X3, size, alpha, beta, k = _lrn_args(input, size, alpha, beta, k)
    dy = _grad_output(grad_output, x)
    (buf,) = _grad_buffers(out, x, [("grad_input", x.shape, x.dtype)], ("input", input),
                           ("input", x), ("grad_output", grad_output), ("grad_output", dy))
    if beta == 0:  # the output is the input (base ** 0 is 1, whatever the base: even 0 or
        # NaN), and torch's pow gives its base no gradient at exponent 0
        return (_backend.namespace(x).array(dy, order="C") if buf is None else _write(dy, buf),)
    dY3 = _backend.namespace(x).ascontiguousarray(dy).reshape(X3.shape)
    dx = _backend.ops_for(X3).lrn_backward(dY3, X3, size, alpha, beta, k,
                                           dX=None if buf is None else buf.reshape(X3.shape))
    return (dx.reshape(x.shape) if buf is None else buf,)


# normalize -------------------------------------------------------------------

class _DimensionError(IndexError, ValueError):
    """A `dim` out of range: torch's IndexError ("Dimension out of range"),
    and a ValueError as fastnorm's other refusals of an argument's value."""


def _dim(dim, ndim, of):
    """dim as a non-negative axis of an `ndim`-D array named `of` (a 0-d
    array counts as 1-D, as torch wraps dims)."""
    try:
        dim = operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an int, got {dim!r}") from None
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise _DimensionError(f"dim={dim} is out of range for {of} with {ndim} dimensions: "
                             f"Dimension out of range (expected to be in range of "
                             f"[{-n}, {n - 1}], but got {dim})")
    return dim % n


def _norm_order(p):
    """normalize's p as a float: any real number (torch's vector_norm order:
    0 counts the nonzeros, a negative p and -inf are the reciprocal means
    and the minimum; NaN gives NaN); None and 'fro' are 2."""
    if p is None or (isinstance(p, str) and p == "fro"):
        return 2.0
    if isinstance(p, str):
        raise ValueError(f"p must be a number (or 'fro'), got {p!r}; fastnorm's normalize "
                         "has no matrix norms")
    if not isinstance(p, Real):
        raise TypeError(f"p must be a number, got {p!r}")
    return float(p)


def _reduced_dims(dim, ndim):
    """normalize's dim as a sorted tuple of axes: an int, a sequence of ints
    (torch's vector_norm dims), or None / () for all of them."""
    if dim is None:
        return tuple(range(max(ndim, 1)))
    if isinstance(dim, (tuple, list)):
        if not dim:
            return tuple(range(max(ndim, 1)))
        axes = [_dim(d, ndim, "input") for d in dim]
        for i, a in enumerate(axes):
            if a in axes[:i]:
                raise ValueError(f"dim {a} appears multiple times in the list of dims "
                                 f"(dim={dim!r})")
        return tuple(sorted(axes))
    return (_dim(dim, ndim, "input"),)


class _Reduced:
    """x viewed as C-contiguous (A, B, K) whose B axis holds the reduced
    dims (transposed there when they are not adjacent); `back` returns an
    (A, B, K) result in x's shape."""

    def __init__(self, x, axes):
        xp = _backend.namespace(x)
        shape = x.shape if x.ndim else (1,)
        lo, hi = axes[0], axes[-1] + 1
        self.shape, self.perm = x.shape, None
        if hi - lo == len(axes):  # adjacent: a reshape
            self.X3 = xp.ascontiguousarray(x).reshape(
                math.prod(shape[:lo]), math.prod(shape[lo:hi]), math.prod(shape[hi:]))
        else:
            kept = [i for i in range(len(shape)) if i not in axes]
            self.perm = kept + list(axes)
            xt = xp.ascontiguousarray(x.transpose(self.perm))
            self.t_shape = xt.shape
            self.X3 = xt.reshape(math.prod(shape[i] for i in kept),
                                 math.prod(shape[i] for i in axes), 1)
        self.xp = xp

    def view(self, a):
        """Another array of x's shape (grad_output) in the same (A, B, K) view."""
        if self.perm is None:
            return self.xp.ascontiguousarray(a).reshape(self.X3.shape)
        return self.xp.ascontiguousarray(a.transpose(self.perm)).reshape(self.X3.shape)

    def out_view(self, buf):
        """The caller's buffer (x's shape, C-contiguous) as the (A, B, K)
        array a kernel writes, or None: none given, or the reduced dims
        were transposed (the result is then copied into it)."""
        if buf is None or self.perm is not None:
            return None
        return buf.reshape(self.X3.shape)

    def result(self, a3, buf):
        """A kernel's (A, B, K) result as what the function returns: the
        buffer, which the kernel wrote or the result is copied into, or the
        result in x's shape."""
        if buf is not None and self.perm is None and self.xp.may_share_memory(a3, buf):
            return buf  # (a kernel wrote it through out_view: a new result shares nothing)
        return _write(self.back(a3), buf)

    def back(self, a3):
        if self.perm is None:
            return a3.reshape(self.shape)
        inverse = np.argsort(self.perm)
        return self.xp.ascontiguousarray(a3.reshape(self.t_shape).transpose(inverse))


def _normalize_args(input, p, dim, eps):
    x = _float_array(input, "input", gpu=True)
    p = _norm_order(p)
    axes = _reduced_dims(dim, x.ndim)
    eps = _eps(eps, x.dtype)
    red = _Reduced(x, axes)
    if red.X3.shape[1] == 0 and (p < 0 or math.isinf(p)):
        raise ValueError(f"input has no values along dim={dim!r}: its p={p} norm (torch's "
                         "linalg.vector_norm) has no identity to return there")
    return x, red, p, eps


def _p_norms(X3, p):
    """The p-norm (torch's vector_norm of order p) of each X3[a, :, k],
    float64 (A, K)."""
    ops = _backend.ops_for(X3)
    if p == 2:
        return np.sqrt(ops.channel_power_sums(X3, 2))
    if p == 1:
        return ops.channel_power_sums(X3, 1)
    if p == math.inf:
        return ops.channel_power_sums(X3, 0)
    xd = np.abs(X3.astype(np.float64))
    if p == 0:  # the count of nonzeros (NaN counts, as torch's x != 0)
        return (xd != 0).sum(axis=1).astype(np.float64)
    if p == -math.inf:
        return xd.min(axis=1)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        return np.sum(xd ** p, axis=1) ** (1 / p)


def normalize(input, p=2.0, dim=1, eps=1e-12, *, out=None):
    """x / max(||x||_p, eps) along `dim`, as torch.nn.functional.normalize.

    p is torch's vector norm order: any real number (0 counts the nonzero
    values, a negative p gives (sum |x|^p)^(1/p), -inf the smallest |x|);
    dim an int, a sequence of ints, or None for all dimensions. out: see the
    module's docstring (with non-adjacent dims the result goes through a
    transposed temporary)."""
    x, red, p, eps = _normalize_args(input, p, dim, eps)
    out = _out_buffer(out, x, input)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / np.maximum(_p_norms(red.X3, p), eps)
    y = _backend.ops_for(red.X3).channel_affine(red.X3, 0.0, scale, 0.0, out=red.out_view(out))
    return red.result(y, out)


def normalize_backward(grad_output, input, p=2.0, dim=1, eps=1e-12, *, out=None):
    """(grad_input,) of normalize. Where the norm is below eps the output is
    x / eps and only that path carries gradient (as torch's clamp_min).
    out: None, or a 1-tuple (grad_input,) holding a buffer or None."""
    x, red, p, eps = _normalize_args(input, p, dim, eps)
    dy = _grad_output(grad_output, x)
    (buf,) = _grad_buffers(out, x, [("grad_input", x.shape, x.dtype)], ("input", input),
                           ("input", x), ("grad_output", grad_output), ("grad_output", dy))
    X3 = red.X3
    xp, ops = red.xp, _backend.ops_for(X3)
    dY3 = red.view(dy)
    norm = _p_norms(X3, p)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        denom = np.maximum(norm, eps)
        _, sdyx = ops.channel_dot_sums(dY3, X3, 0.0)
        # d loss / d norm, zero where the clamp to eps is active
        g_norm = np.where(norm >= eps, -sdyx / denom ** 2, 0.0)
        if p == 2:  # d norm / dx = x / norm: linear in x, one fused kernel; at a zero
            # norm 0, or NaN from a NaN g_norm (a zero norm under eps <= 0), as torch's
            q = xp.where(norm > 0, g_norm / xp.where(norm > 0, norm, 1.0), g_norm * 0.0)
            dx = ops.channel_backward(dY3, X3, 0.0, 1.0 / denom, q, 0.0, dX=red.out_view(buf))
            return (red.result(dx, buf),)
        if p == 0:  # the count of nonzeros is piecewise constant: no gradient through it
            return (red.result((dY3 / denom[:, None, :]).astype(x.dtype), buf),)
        xd = X3.astype(np.float64)
        ax = np.abs(xd)
        if math.isinf(p):  # the gradient of max (min) |x| goes to those elements, shared
            hit = ax == norm[:, None, :]
            d_norm = np.sign(xd) * hit / np.maximum(hit.sum(axis=1, keepdims=True), 1)
        else:
            # sign(x) |x|^(p-1) / norm^(p-1), 0 where x is 0 (as torch, also for p < 1)
            scale = xp.where(norm > 0, xp.where(norm > 0, norm, 1.0) ** (1 - p), 0.0)
            pow_ = xp.where(ax > 0, xp.where(ax > 0, ax, 1.0) ** (p - 1), 0.0)
            d_norm = np.sign(xd) * pow_ * scale[:, None, :]
        dx = dY3 / denom[:, None, :] + g_norm[:, None, :] * d_norm
    return (red.result(dx.astype(x.dtype), buf),)


# weight_norm / spectral_norm (parameters: small, so array expressions in
# float64, NumPy's or CuPy's on the GPU) ----------------------------------------

def _weight_norm_args(v, g, dim):
    v_arr = _float_array(v, "v", gpu=True)
    g_arr = _float_array(g, "g", gpu=True)
    _backend.ops_for(v_arr, g_arr, name="g")  # one library
    if g_arr.dtype != v_arr.dtype:
        raise TypeError(f"g has dtype {g_arr.dtype} but v has {v_arr.dtype}; they must match")
    if v_arr.ndim == 0:
        raise ValueError("v must have at least one dimension")
    try:
        dim = -1 if dim is None else operator.index(dim)
    except TypeError:
        raise TypeError(f"dim must be an int or None, got {dim!r}") from None
    if not -1 <= dim < v_arr.ndim:
        raise ValueError(f"dim must be in [0, {v_arr.ndim}) or -1/None (the whole tensor), "
                         f"got {dim}")
    keep = () if dim == -1 else (dim,)
    axes = tuple(i for i in range(v_arr.ndim) if i not in keep)
    norm_shape = tuple(1 if i in axes else v_arr.shape[i] for i in range(v_arr.ndim))
    g_ok = g_arr.shape == norm_shape or (keep and g_arr.shape == (v_arr.shape[keep[0]],)) \
        or (not keep and g_arr.size == 1)
    if not g_ok:
        raise ValueError(f"g must have shape {norm_shape} (v's shape with 1 on the normed "
                         f"dimensions), got {g_arr.shape}")
    vd = v_arr.astype(np.float64)
    norm = np.sqrt(np.sum(vd * vd, axis=axes, keepdims=True))
    return v_arr, g_arr, vd, g_arr.astype(np.float64).reshape(norm_shape), norm, axes


def weight_norm(v, g, dim=0, *, out=None):
    """w = g * v / ||v||, the norm over every dimension but `dim` (all of
    them for dim=None or -1, as torch._weight_norm counts -1), as torch's
    weight_norm. g has v's number of
    dimensions with size 1 except at `dim` (1-D of length v.shape[dim] is
    accepted too). out: a buffer for w (see the module's docstring)."""
    v_arr, g_arr, vd, gd, norm, _ = _weight_norm_args(v, g, dim)
    out = None if out is None else check_out(out, v_arr, contiguous=True,
                                             inputs=(("v", v), ("v", v_arr), ("g", g),
                                                     ("g", g_arr)))
    return _write(vd * (gd / norm), out, v_arr.dtype)


def weight_norm_backward(grad_output, v, g, dim=0, *, out=None):
    """(grad_v, grad_g) of weight_norm; grad_g has g's shape. out: None, or
    a tuple (grad_v, grad_g) of buffers, each None to allocate."""
    v_arr, g_arr, vd, gd, norm, axes = _weight_norm_args(v, g, dim)
    gw_arr = _grad_output(grad_output, v_arr)
    bufs = _grad_buffers(out, v_arr, [("grad_v", v_arr.shape, v_arr.dtype),
                                      ("grad_g", g_arr.shape, g_arr.dtype)],
                         ("v", v), ("v", v_arr), ("g", g), ("g", g_arr),
                         ("grad_output", grad_output), ("grad_output", gw_arr))
    gw = gw_arr.astype(np.float64)
    dot = np.sum(gw * vd, axis=axes, keepdims=True)
    grad_g = dot / norm
    grad_v = (gd / norm) * (gw - vd * (dot / norm ** 2))
    return (_write(grad_v, bufs[0], v_arr.dtype),
            _write(grad_g.reshape(g_arr.shape), bufs[1], g_arr.dtype))


def _as_matrix(w, dim):
    """w with `dim` first, flattened to 2-D (torch's spectral_norm reshape)."""
    return np.moveaxis(w, dim, 0).reshape(w.shape[dim], -1)


def _spectral_args(weight, u, n_power_iterations, eps, dim, v):
    w = _float_array(weight, "weight", gpu=True)
    if w.ndim < 1:
        raise ValueError("weight must have at least one dimension")
    dim = _dim(dim, w.ndim, "weight")
    W = _as_matrix(w.astype(np.float64), dim)
    u_arr = _float_array(u, "u", gpu=True)
    _backend.ops_for(w, u_arr, name="u")  # one library
    if u_arr.shape != (W.shape[0],):
        raise ValueError(f"u must have shape ({W.shape[0]},) (weight.shape[dim]), "
                         f"got {u_arr.shape}")
    if not isinstance(n_power_iterations, Integral) or isinstance(n_power_iterations, bool) \
            or n_power_iterations < 0:
        raise ValueError(f"n_power_iterations must be an int >= 0, got {n_power_iterations!r}")
    if n_power_iterations == 0:
        if v is None:
            raise ValueError("n_power_iterations=0 needs v, the right singular vector "
                             "estimate, as torch keeps it")
        v_arr = _float_array(v, "v", gpu=True)
        _backend.ops_for(w, v_arr, name="v")
        if v_arr.shape != (W.shape[1],):
            raise ValueError(f"v must have shape ({W.shape[1]},), got {v_arr.shape}")
        v = v_arr.astype(np.float64)
    return w, W, u_arr, int(n_power_iterations), _eps(eps, w.dtype, allow_none=True), dim, v


def _power_iteration(W, u, n, eps, v):
    """torch.nn.utils.spectral_norm's: v = normalize(W^T u), u = normalize(W v)."""
    u = u.astype(np.float64)
    for _ in range(n):
        v = W.T @ u
        v = v / max(np.linalg.norm(v), eps)
        u = W @ v
        u = u / max(np.linalg.norm(u), eps)
    return u, v


def spectral_norm(weight, u, n_power_iterations=1, eps=1e-12, dim=0, *, v=None, out=None):
    """(weight / sigma, u, v): sigma = u . (W v) after n_power_iterations of
    torch.nn.utils.spectral_norm's power iteration from u, with W the weight
    with `dim` first, flattened to 2-D. u and v come back in weight's dtype
    for the next call; n_power_iterations=0 needs the previous v. out: a
    buffer for weight / sigma (u and v, small, are new arrays)."""
    v_given = v
    w, W, u_arr, n, eps, dim, v = _spectral_args(weight, u, n_power_iterations, eps, dim, v)
    out = None if out is None else check_out(out, w, contiguous=True,
                                             inputs=(("weight", weight), ("weight", w),
                                                     ("u", u), ("v", v_given)))
    u_new, v_new = _power_iteration(W, u_arr, n, eps, v)
    sigma = u_new @ (W @ v_new)
    return (_write(w.astype(np.float64) / sigma, out, w.dtype), u_new.astype(w.dtype),
            v_new.astype(w.dtype))


def spectral_norm_backward(grad_output, weight, u, n_power_iterations=1, eps=1e-12, dim=0, *,
                           v=None, out=None):
    """(grad_weight,) of spectral_norm with u and v held fixed (as torch's
    autograd sees them: they are computed without gradient). out: None, or
    a 1-tuple (grad_weight,) holding a buffer or None."""
    v_given = v
    w, W, u_arr, n, eps, dim, v = _spectral_args(weight, u, n_power_iterations, eps, dim, v)
    gw_arr = _grad_output(grad_output, w)
    (buf,) = _grad_buffers(out, w, [("grad_weight", w.shape, w.dtype)], ("weight", weight),
                           ("weight", w), ("u", u), ("v", v_given), ("grad_output", grad_output),
                           ("grad_output", gw_arr))
    gw = gw_arr.astype(np.float64)
    u_new, v_new = _power_iteration(W, u_arr, n, eps, v)
    sigma = u_new @ (W @ v_new)
    G = _as_matrix(gw, dim)
    grad = G / sigma - np.sum(G * W) / sigma ** 2 * np.outer(u_new, v_new)
    # back from the (dim first, flattened) matrix to weight's layout
    moved = np.moveaxis(w, dim, 0).shape
    return (_write(np.moveaxis(grad.reshape(moved), 0, dim), buf, w.dtype),)


__dir__ = _public_dir(globals())  # dir(): the public names (__all__) only

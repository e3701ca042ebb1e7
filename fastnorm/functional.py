"""torch.nn.functional's normalizations on NumPy arrays, with their backward.

Same arguments, defaults and semantics as the torch functions of the same
name (biased variance, eps inside the square root, the dtype kept); the
input is a NumPy float32/float64 array. Differences, all additions:

- ``return_saved=True`` makes a forward also return its saved statistics,
  which the matching ``*_backward(..., saved=...)`` reuses instead of
  recomputing them;
- ``<name>_backward(grad_output, input, <the forward's arguments>, *,
  saved=None)`` returns the gradients of input, weight and bias (None for
  what the forward did not take), equal to torch.autograd's.

So far: layer_norm and rms_norm. The other norms of the issue come next.
"""
import operator
from numbers import Integral, Real

import numpy as np

from . import _backend

__all__ = ["layer_norm", "layer_norm_backward", "rms_norm", "rms_norm_backward"]


# ---------------------------------------------------------------- checks ---

def _float_array(x, name):
    """x as a NumPy float32/float64 array (as torch, integers are refused)."""
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    _backend.ops_for(x, name=name)
    arr = np.asarray(x)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
    return arr


def _normalized_shape(normalized_shape, x):
    if isinstance(normalized_shape, Integral) and not isinstance(normalized_shape, bool):
        normalized_shape = (int(normalized_shape),)
    try:
        if isinstance(normalized_shape, (str, bytes)):
            raise TypeError
        shape = tuple(operator.index(d) for d in normalized_shape)
    except TypeError:
        raise TypeError("normalized_shape must be an int or a sequence of ints, got "
                        f"{normalized_shape!r}") from None
    if len(shape) == 0 or any(d < 0 for d in shape):
        raise ValueError(f"normalized_shape must be non-empty with sizes >= 0, got {shape}")
    if x.ndim < len(shape) or x.shape[x.ndim - len(shape):] != shape:
        raise ValueError(f"normalized_shape={shape} does not match the trailing dimensions "
                         f"of input with shape {x.shape}")
    return shape


def _param(p, name, shape, dtype):
    """weight/bias: None, or an array of `shape` and the input's dtype."""
    if p is None:
        return None
    arr = _float_array(p, name)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (normalized_shape), got {arr.shape}")
    if arr.dtype != dtype:
        raise TypeError(f"{name} has dtype {arr.dtype} but input has {dtype}; they must match")
    return np.ascontiguousarray(arr).reshape(-1)


def _eps(eps, dtype, name="eps"):
    if eps is None:
        return float(np.finfo(dtype).eps)
    if not isinstance(eps, Real) or isinstance(eps, bool) or not eps >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {eps!r}")
    return float(eps)


def _rows(x, shape):
    """x as C-contiguous (n_rows, prod(normalized_shape))."""
    n = int(np.prod(shape))
    n_rows = x.size // n if n else int(np.prod(x.shape[:x.ndim - len(shape)]))
    return np.ascontiguousarray(x).reshape(n_rows, n)


class SavedStats:
    """Per-group statistics a forward saves for its backward (float64)."""

    def __init__(self, mean, rstd):
        self.mean = mean
        self.rstd = rstd

    def __repr__(self):
        return f"SavedStats(mean={self.mean!r}, rstd={self.rstd!r})"


def _check_saved(saved, n_rows):
    if saved is None:
        return None
    if not isinstance(saved, SavedStats):
        raise TypeError(f"saved must be what the forward returned with return_saved=True, "
                        f"got {type(saved).__name__}")
    if saved.mean.shape != (n_rows,) or saved.rstd.shape != (n_rows,):
        raise ValueError(f"saved holds statistics of {saved.mean.shape[0]} groups, "
                         f"the input has {n_rows}")
    return saved


# ------------------------------------------------------ layer / rms norm ---

def _row_norm(input, normalized_shape, weight, bias, eps, rms, return_saved):
    from . import _cpu
    x = _float_array(input, "input")
    shape = _normalized_shape(normalized_shape, x)
    w = _param(weight, "weight", shape, x.dtype)
    b = _param(bias, "bias", shape, x.dtype)
    eps = _eps(eps, x.dtype)
    X2 = _rows(x, shape)
    out, mean, rstd = _cpu.row_norm_forward(X2, w, b, eps, rms)
    out = out.reshape(x.shape)
    return (out, SavedStats(mean, rstd)) if return_saved else out


def _row_norm_backward(grad_output, input, normalized_shape, weight, bias, eps, rms, saved):
    from . import _cpu
    x = _float_array(input, "input")
    dy = _float_array(grad_output, "grad_output")
    if dy.shape != x.shape or dy.dtype != x.dtype:
        raise ValueError(f"grad_output must have input's shape {x.shape} and dtype {x.dtype}, "
                         f"got {dy.shape} {dy.dtype}")
    shape = _normalized_shape(normalized_shape, x)
    w = _param(weight, "weight", shape, x.dtype)
    b = _param(bias, "bias", shape, x.dtype)
    eps = _eps(eps, x.dtype)
    X2, dY2 = _rows(x, shape), _rows(dy, shape)
    saved = _check_saved(saved, X2.shape[0])
    if saved is None:
        _, mean, rstd = _cpu.row_norm_forward(X2, None, None, eps, rms)
    else:
        mean, rstd = saved.mean, saved.rstd
    dX, dw, db = _cpu.row_norm_backward(dY2, X2, w, mean, rstd, rms,
                                        want_dw=w is not None, want_db=b is not None)
    as_param = (lambda g: None if g is None else g.astype(x.dtype).reshape(shape))
    return dX.reshape(x.shape), as_param(dw), as_param(db)


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5, *,
               return_saved=False):
    """Layer normalization over the trailing `normalized_shape` dimensions,
    as torch.nn.functional.layer_norm."""
    return _row_norm(input, normalized_shape, weight, bias, eps, False, return_saved)


def layer_norm_backward(grad_output, input, normalized_shape, weight=None, bias=None,
                        eps=1e-5, *, saved=None):
    """(grad_input, grad_weight, grad_bias) of layer_norm; None for an absent
    weight or bias."""
    return _row_norm_backward(grad_output, input, normalized_shape, weight, bias, eps,
                              False, saved)


def rms_norm(input, normalized_shape, weight=None, eps=None, *, return_saved=False):
    """RMS normalization over the trailing `normalized_shape` dimensions, as
    torch.nn.functional.rms_norm (eps=None: the dtype's machine epsilon)."""
    return _row_norm(input, normalized_shape, weight, None, eps, True, return_saved)


def rms_norm_backward(grad_output, input, normalized_shape, weight=None, eps=None, *,
                      saved=None):
    """(grad_input, grad_weight) of rms_norm; None for an absent weight."""
    dx, dw, _ = _row_norm_backward(grad_output, input, normalized_shape, weight, None, eps,
                                   True, saved)
    return dx, dw

"""Stateful normalization layers with torch.nn's names, built on
fastnorm.functional.

Each layer holds its parameters and running statistics as NumPy arrays under
torch's names and defaults, switches with `train()` / `eval()`, and runs
`forward(x)` (also `layer(x)`) and `backward(grad_output)`: the backward
returns the input gradient of the last forward and stores the parameter
gradients in `layer.grads` (a dict keyed by parameter name). `state_dict()`
returns {name: array} with torch's keys, so that

    torch_module.load_state_dict({k: torch.from_numpy(v) for k, v in
                                  layer.state_dict().items()})

loads it into the matching torch module, and `load_state_dict` takes a
torch module's state dict (tensors or arrays) back.

Parameters are created in `dtype` (float32 unless told, as torch); the
input must have the same dtype.

A forward that raises changes no state (running statistics, the batch count,
what the next backward differentiates), and neither does a load_state_dict
that raises. The backward is that of the last forward even if its input or
the parameters were modified in place in between (the layer keeps its own
copies); a pickled or copied layer does not carry that input.

Buffers are reused across steps (NumPy arrays; CuPy's memory pool already
recycles device memory): the forward writes its output into the previous
forward's output array, and the backward its gradients into the previous
backward's, when nothing but the layer still refers to that array (no
variable, container or view of it: its reference count says so) and its
shape and dtype fit; otherwise a new array is made. So a result the caller
keeps is never overwritten, and a loop that drops its results
(``y = layer(x)`` each step) reuses their memory. (Memory reached only
through a raw pointer, e.g. ``y.ctypes.data``, is not a reference: keep the
array itself while such a pointer is used.) The layer's private copy of the
input is reused likewise.
"""
import sys
from collections import OrderedDict
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from . import _backend
from . import functional as F
from ._docs import public_dir as _public_dir
from ._validation import check_int, check_shape

__all__ = ["BatchNorm", "LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm",
           "LocalResponseNorm", "SwitchableNorm"]


def _dtype(dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _positive_int(v, name):
    return check_int(v, name, minimum=1)


def _to_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    if _backend.array_library(v) == "cupy":  # loading state: an explicit copy to the host
        return v.get()
    return np.asarray(v)


def _is_array(v):
    return isinstance(v, np.ndarray) or _backend.array_library(v) == "cupy"


def _private_input(x, previous=None):
    """The forward's input (checked) as the layer's own C-contiguous copy:
    written into `previous` (the last forward's copy, which only the layer
    holds) when its shape, dtype and library fit, else a new array.

    torch keeps a reference and a version counter, and its backward raises
    if the input was modified in place; NumPy arrays have no version counter.
    A checksum would read the input once at the forward and again at the
    backward, only to raise (a sum is cheap but misses a permutation; CRC32
    runs slower than a memcpy). The copy costs one memcpy at the forward (made
    after the function ran on x, when nothing can fail any more), and the
    backward is exact whatever happens to the caller's array or, for a view,
    its base. It holds one input-sized buffer until the next forward, as
    torch holds the input, and the next forward of that shape reuses it.
    """
    if (type(previous) is np.ndarray and type(x) is np.ndarray and previous.shape == x.shape
            and previous.dtype == x.dtype and not np.may_share_memory(previous, x)):
        np.copyto(previous, x)
        return previous
    return _backend.namespace(x).array(x, order="C")


def _peek(d, key):
    """d[key] if nothing but dict `d` refers to that array (no variable,
    container or view elsewhere: a view of an array that owns its memory
    holds it as its base), else None: the last result, free to overwrite."""
    a = d.get(key)
    return a if sys.getrefcount(a) <= 3 else None  # (3: d's, `a`, getrefcount's argument)


def _buffer(previous, shape, dtype, avoid, numpy):
    """The buffer a result is written into: `previous` (an unheld last
    result, from _peek) if it owns its memory, fits `shape` and `dtype` and
    shares no memory with the arrays in `avoid`; else a new array owning its
    memory (NumPy input), or None (CuPy: the function allocates from CuPy's
    memory pool)."""
    if (type(previous) is np.ndarray and previous.base is None and previous.shape == shape
            and previous.dtype == dtype and previous.flags.writeable
            and not any(isinstance(v, np.ndarray) and np.may_share_memory(previous, v)
                        for v in avoid)):
        return previous
    return np.empty(shape, dtype) if numpy else None


def _frozen(args):
    """The functional's arguments with their arrays (parameters, running
    statistics: small) copied, for the backward of this forward."""
    return {k: v.copy() if _is_array(v) else v for k, v in args.items()}


class _Layer:
    """Parameters (trainable) and buffers (running statistics) by name; the
    forward's input, arguments and saved statistics are kept for the backward.

    A layer names its pair of fastnorm.functional functions and gives their
    keyword arguments other than the input (`_args`); the backward returns
    grad_input and the gradients named in `_grad_names`, in that order."""

    _parameters = ()  # names, in torch's state_dict order
    _buffers = ()
    _forward_fn = _backward_fn = None  # staticmethods
    _grad_names = ()

    def __init__(self):
        self.training = True
        self.grads = {}
        self._ctx = None
        self._results = {}  # the last "output" and "grad_input", for reuse

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)

    def _args(self):
        raise NotImplementedError

    def to(self, device):
        """Move the parameters and running statistics to "cuda" (CuPy arrays
        on the current GPU) or "cpu" (NumPy arrays), as torch's Module.to; the
        layer then takes input of that side only. Returns the layer."""
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if device == "cuda":
            import cupy
            move = cupy.asarray
        else:
            def move(a):
                return a.get() if _backend.array_library(a) == "cupy" else a
        for name in self._present(self._parameters + self._buffers):
            if name != "num_batches_tracked":  # a counter: stays a host number
                setattr(self, name, move(getattr(self, name)))
        self._ctx = None
        self._results = {}
        return self

    def _check_side(self, x):
        """The input on the side (host or GPU) of the layer's parameters."""
        side = _backend.array_library(x)
        for name in self._present(self._parameters + self._buffers):
            value = getattr(self, name)
            if name != "num_batches_tracked" and _backend.array_library(value) != side:
                where = "cuda" if side == "cupy" else "cpu"
                raise TypeError(f"input is a {side} array but {type(self).__name__}.{name} is a "
                                f"{_backend.array_library(value)} array: move the layer with "
                                f".to({where!r}) first (fastnorm does not copy between host "
                                "and device implicitly)")

    def _run(self, x, **forward_only):
        """The forward: every check (the functions') before any state changes."""
        self._check_side(x)
        x = F._float_array(x, "input", gpu=True)
        args = self._args()
        out = _buffer(_peek(self._results, "output"), x.shape, x.dtype,
                      [x] + list(args.values()), type(x) is np.ndarray)
        y, saved = self._forward_fn(x, return_saved=True, out=out, **args, **forward_only)
        # (the function ran on x: the private copy is made now, when nothing can fail,
        # into the last forward's, which is no longer needed)
        previous = None
        if self._ctx is not None:
            previous, self._ctx = self._ctx[0], None
            if sys.getrefcount(previous) > 2:  # (2: `previous`, getrefcount's argument)
                previous = None  # (held elsewhere: not the layer's alone)
        self._ctx = (_private_input(x, previous), saved, _frozen(args))
        self._results["output"] = y
        return y

    def forward(self, x):
        return self._run(x)

    def backward(self, grad_output):
        """grad_input of the last forward; the parameter gradients go to `grads`."""
        x, saved, args = self._saved_input()
        avoid = [x, grad_output] + list(args.values())
        numpy = type(x) is np.ndarray
        bufs = [_buffer(_peek(self._results, "grad_input"), x.shape, x.dtype, avoid, numpy)]
        # the last parameter gradients, when the caller holds neither them nor their
        # dict (2: self.grads and getrefcount's argument)
        old = self.grads if sys.getrefcount(self.grads) <= 2 else {}
        for name in self._grad_names:
            p = args.get(name)
            bufs.append(None if p is None else
                        _buffer(_peek(old, name), p.shape, x.dtype, avoid, numpy))
        del old
        dx, *grads = self._backward_fn(grad_output, x, saved=saved, out=tuple(bufs), **args)
        self._store_grads(**dict(zip(self._grad_names, grads)))
        self._results["grad_input"] = dx
        return dx

    def __getstate__(self):
        """Pickles (and copies) hold parameters and buffers, not the last input."""
        state = self.__dict__.copy()
        state["_ctx"] = None
        state["_results"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._ctx = None  # also from a pickle that carried one
        self._results = {}

    def _present(self, names):
        return [n for n in names if getattr(self, n, None) is not None]

    def named_parameters(self):
        return [(n, getattr(self, n)) for n in self._present(self._parameters)]

    def state_dict(self):
        """Copies of the parameters and buffers under torch's keys."""
        return OrderedDict((n, _backend.namespace(getattr(self, n)).array(getattr(self, n),
                                                                          copy=True))
                           for n in self._present(self._parameters + self._buffers))

    def load_state_dict(self, state_dict, strict=True):
        """Load arrays (or torch tensors) by key, in place, keeping dtypes.
        Every value is checked before any is written."""
        if not isinstance(state_dict, Mapping):
            raise TypeError("state_dict must be a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        expected = self._present(self._parameters + self._buffers)
        if strict:
            missing = set(expected) - set(state_dict)
            unexpected = set(state_dict) - set(expected)
            if missing or unexpected:
                raise KeyError(f"state_dict keys do not match: missing {sorted(missing)}, "
                               f"unexpected {sorted(unexpected)}")
        values = {n: self._state_value(n, state_dict[n]) for n in expected if n in state_dict}
        for name, value in values.items():
            getattr(self, name)[...] = value
        return self

    def _state_value(self, name, value):
        """state_dict[name] as an array that fits the layer's own, without
        silent coercion: real numbers for a parameter or running statistic,
        an integer >= 0 for num_batches_tracked."""
        current, key = getattr(self, name), f"state_dict[{name!r}]"
        try:
            arr = _to_numpy(value)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise TypeError(f"{key} could not be read as an array: {exc}") from None
        integer = current.dtype.kind == "i"
        if arr.dtype.kind not in ("iu" if integer else "fiu"):
            raise TypeError(f"{key} must hold {'an integer' if integer else 'real numbers'}, "
                            f"got {arr.tolist() if arr.size <= 4 else 'an array'} of dtype "
                            f"{arr.dtype}")
        if arr.shape != current.shape:
            raise ValueError(f"{key} has shape {arr.shape}, the layer's is {current.shape}")
        if integer and (arr < 0).any():
            raise ValueError(f"{key} must be >= 0, got {arr.tolist()}")
        return arr

    def _store_grads(self, **grads):
        """Keep the parameter gradients of the last backward (None: no such parameter)."""
        self.grads = {k: g for k, g in grads.items() if g is not None}

    def _saved_input(self):
        if self._ctx is None:
            raise RuntimeError("backward() needs a forward() on this layer first (a pickled "
                               "or copied layer does not carry the last forward's input)")
        return self._ctx

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return ""


# The bookkeeping of torch's norm modules, for any object with their
# attributes (training, track_running_stats, momentum, running_mean,
# running_var): these layers and fastnorm.torch's modules both use it.

class BatchNormPlan(NamedTuple):
    running_mean: object  # None: not passed (not read, not updated)
    running_var: object
    training: bool  # normalize with the batch's statistics
    counts: bool  # this batch counts in num_batches_tracked


def batch_norm_plan(m):
    """torch's _BatchNorm.forward: which statistics normalize and which
    running statistics are updated."""
    passes_running = not m.training or m.track_running_stats
    return BatchNormPlan(
        running_mean=m.running_mean if passes_running else None,
        running_var=m.running_var if passes_running else None,
        training=m.training or (m.running_mean is None and m.running_var is None),
        counts=m.training and m.track_running_stats)


def momentum_factor(momentum, counts, batches_seen):
    """The weight of this batch in the running statistics (torch's
    exponential_average_factor): momentum, or with momentum=None the
    cumulative average's 1 / batches_seen(), the count including this batch
    (called only then: under torch.compile reading the count breaks the graph)."""
    if momentum is not None:
        return momentum
    return 1.0 / float(batches_seen()) if counts else 0.0


class InstanceNormPlan(NamedTuple):
    use_input_stats: bool
    momentum: float


def instance_norm_plan(m):
    """torch's _InstanceNorm._apply_instance_norm arguments."""
    return InstanceNormPlan(use_input_stats=m.training or not m.track_running_stats,
                            momentum=0.0 if m.momentum is None else m.momentum)


class _RunningStats(_Layer):
    """num_features, eps, momentum, affine, track_running_stats as torch's _NormBase."""

    _parameters = ("weight", "bias")
    _buffers = ("running_mean", "running_var", "num_batches_tracked")
    _grad_names = ("weight", "bias")

    def __init__(self, num_features, eps, momentum, affine, track_running_stats, dtype,
                 layout):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps, self.momentum, self.layout = eps, momentum, layout
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        dt = _dtype(dtype)
        self.weight = np.ones(num_features, dt) if affine else None
        self.bias = np.zeros(num_features, dt) if affine else None
        if track_running_stats:
            self.running_mean = np.zeros(num_features, dt)
            self.running_var = np.ones(num_features, dt)
            self.num_batches_tracked = np.zeros((), np.int64)
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm(_RunningStats):
    """torch.nn.BatchNorm1d/2d/3d in one class: the input's rank (2 to 5)
    picks which. layout="NHWC" takes channels-last (N, *spatial, C) input."""

    _forward_fn = staticmethod(F.batch_norm)
    _backward_fn = staticmethod(F.batch_norm_backward)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, layout="NCHW"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         layout)

    def _args(self):
        plan = batch_norm_plan(self)
        momentum = momentum_factor(self.momentum, plan.counts,
                                   lambda: int(self.num_batches_tracked) + 1)
        return dict(running_mean=plan.running_mean, running_var=plan.running_var,
                    weight=self.weight, bias=self.bias, training=plan.training,
                    momentum=momentum, eps=self.eps, layout=self.layout)

    def forward(self, x):
        out = self._run(x)
        if batch_norm_plan(self).counts:  # only a batch that passed the checks counts
            self.num_batches_tracked += 1
        return out


class InstanceNorm(_RunningStats):
    """torch.nn.InstanceNorm1d/2d/3d in one class (input rank 3 to 5); as
    torch, affine and track_running_stats are off by default."""

    _forward_fn = staticmethod(F.instance_norm)
    _backward_fn = staticmethod(F.instance_norm_backward)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=None, layout="NCHW"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         layout)

    def _args(self):
        plan = instance_norm_plan(self)
        return dict(running_mean=self.running_mean, running_var=self.running_var,
                    weight=self.weight, bias=self.bias, use_input_stats=plan.use_input_stats,
                    momentum=plan.momentum, eps=self.eps, layout=self.layout)


class GroupNorm(_Layer):
    """torch.nn.GroupNorm."""

    _parameters = ("weight", "bias")
    _forward_fn = staticmethod(F.group_norm)
    _backward_fn = staticmethod(F.group_norm_backward)
    _grad_names = ("weight", "bias")

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None,
                 layout="NCHW"):
        super().__init__()
        self.num_groups = _positive_int(num_groups, "num_groups")
        self.num_channels = _positive_int(num_channels, "num_channels")
        if num_channels % num_groups:
            raise ValueError(f"num_groups={num_groups} must divide num_channels={num_channels}")
        self.eps, self.affine, self.layout = eps, bool(affine), layout
        dt = _dtype(dtype)
        self.weight = np.ones(num_channels, dt) if affine else None
        self.bias = np.zeros(num_channels, dt) if affine else None

    def _args(self):
        return dict(num_groups=self.num_groups, weight=self.weight, bias=self.bias,
                    eps=self.eps, layout=self.layout)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class LayerNorm(_Layer):
    """torch.nn.LayerNorm."""

    _parameters = ("weight", "bias")
    _forward_fn = staticmethod(F.layer_norm)
    _backward_fn = staticmethod(F.layer_norm_backward)
    _grad_names = ("weight", "bias")

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = check_shape(normalized_shape, "normalized_shape")
        self.eps, self.elementwise_affine = eps, bool(elementwise_affine)
        dt = _dtype(dtype)
        self.weight = np.ones(self.normalized_shape, dt) if elementwise_affine else None
        self.bias = (np.zeros(self.normalized_shape, dt)
                     if elementwise_affine and bias else None)

    def _args(self):
        return dict(normalized_shape=self.normalized_shape, weight=self.weight,
                    bias=self.bias, eps=self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(_Layer):
    """torch.nn.RMSNorm (eps=None: the input dtype's machine epsilon)."""

    _parameters = ("weight",)
    _forward_fn = staticmethod(F.rms_norm)
    _backward_fn = staticmethod(F.rms_norm_backward)
    _grad_names = ("weight",)

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = check_shape(normalized_shape, "normalized_shape")
        self.eps, self.elementwise_affine = eps, bool(elementwise_affine)
        self.weight = (np.ones(self.normalized_shape, _dtype(dtype))
                       if elementwise_affine else None)

    def _args(self):
        return dict(normalized_shape=self.normalized_shape, weight=self.weight, eps=self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


def _lrn(x, return_saved, out=None, **args):
    return F.local_response_norm(x, out=out, **args), None  # no statistics to save


def _lrn_backward(grad_output, x, saved, out=None, **args):
    return F.local_response_norm_backward(grad_output, x, out=out, **args)


class LocalResponseNorm(_Layer):
    """torch.nn.LocalResponseNorm (no parameters)."""

    _forward_fn = staticmethod(_lrn)
    _backward_fn = staticmethod(_lrn_backward)

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = _positive_int(size, "size")
        self.alpha, self.beta, self.k = alpha, beta, k

    def _args(self):
        return dict(size=self.size, alpha=self.alpha, beta=self.beta, k=self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class SwitchableNorm(_Layer):
    """Switchable normalization (Luo et al., 2018), see
    fastnorm.functional.switchable_norm; parameters named as the paper's
    code: weight, bias, mean_weight, var_weight (mixing logits, all ones at
    the start: an equal mix) and the BN buffers running_mean, running_var."""

    _parameters = ("weight", "bias", "mean_weight", "var_weight")
    _buffers = ("running_mean", "running_var")
    _forward_fn = staticmethod(F.switchable_norm)
    _backward_fn = staticmethod(F.switchable_norm_backward)
    _grad_names = _parameters

    def __init__(self, num_features, eps=1e-5, momentum=0.1, using_bn=True, affine=True,
                 dtype=None, layout="NCHW"):
        super().__init__()
        self.num_features = _positive_int(num_features, "num_features")
        self.eps, self.momentum, self.layout = eps, momentum, layout
        self.using_bn, self.affine = bool(using_bn), bool(affine)
        dt = _dtype(dtype)
        n_stats = 3 if using_bn else 2
        self.weight = np.ones(num_features, dt) if affine else None
        self.bias = np.zeros(num_features, dt) if affine else None
        self.mean_weight = np.ones(n_stats, dt)
        self.var_weight = np.ones(n_stats, dt)
        self.running_mean = np.zeros(num_features, dt) if using_bn else None
        self.running_var = np.ones(num_features, dt) if using_bn else None

    def _args(self):
        # (training-mode gradients do not read the running statistics, which
        # the forward updates: the backward's copies of them are harmless)
        return dict(weight=self.weight, bias=self.bias, mean_weight=self.mean_weight,
                    var_weight=self.var_weight, running_mean=self.running_mean,
                    running_var=self.running_var, training=self.training,
                    momentum=self.momentum, eps=self.eps, using_bn=self.using_bn,
                    layout=self.layout)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"using_bn={self.using_bn}, affine={self.affine}")


__dir__ = _public_dir(globals())  # dir(): the public names (__all__) only

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
"""
from collections import OrderedDict
from numbers import Integral

import numpy as np

from . import functional as F
from ._docs import public_dir as _public_dir

__all__ = ["BatchNorm", "LayerNorm", "RMSNorm", "GroupNorm", "InstanceNorm",
           "LocalResponseNorm", "SwitchableNorm"]


def _dtype(dtype):
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _positive_int(v, name):
    if not isinstance(v, Integral) or isinstance(v, bool) or v <= 0:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _to_numpy(v):
    if hasattr(v, "detach"):  # a torch tensor
        v = v.detach().cpu().numpy()
    return np.asarray(v)


class _Layer:
    """Parameters (trainable) and buffers (running statistics) by name; the
    forward's input and saved statistics are kept for the backward."""

    _parameters = ()  # names, in torch's state_dict order
    _buffers = ()

    def __init__(self):
        self.training = True
        self.grads = {}
        self._ctx = None

    def train(self, mode=True):
        self.training = bool(mode)
        return self

    def eval(self):
        return self.train(False)

    def __call__(self, x):
        return self.forward(x)

    def _present(self, names):
        return [n for n in names if getattr(self, n, None) is not None]

    def named_parameters(self):
        return [(n, getattr(self, n)) for n in self._present(self._parameters)]

    def state_dict(self):
        """Copies of the parameters and buffers under torch's keys."""
        return OrderedDict((n, np.array(getattr(self, n), copy=True))
                           for n in self._present(self._parameters + self._buffers))

    def load_state_dict(self, state_dict, strict=True):
        """Load arrays (or torch tensors) by key, in place, keeping dtypes."""
        expected = set(self._present(self._parameters + self._buffers))
        if strict:
            missing, unexpected = expected - set(state_dict), set(state_dict) - expected
            if missing or unexpected:
                raise KeyError(f"state_dict keys do not match: missing {sorted(missing)}, "
                               f"unexpected {sorted(unexpected)}")
        for name in expected & set(state_dict):
            current = getattr(self, name)
            value = _to_numpy(state_dict[name])
            if value.shape != current.shape:
                raise ValueError(f"state_dict[{name!r}] has shape {value.shape}, "
                                 f"the layer's is {current.shape}")
            current[...] = value
        return self

    def _store_grads(self, **grads):
        """Keep the parameter gradients of the last backward (None: no such parameter)."""
        self.grads = {k: g for k, g in grads.items() if g is not None}

    def _saved_input(self):
        if self._ctx is None:
            raise RuntimeError("backward() needs a forward() first")
        return self._ctx

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self):
        return ""


class _RunningStats(_Layer):
    """num_features, eps, momentum, affine, track_running_stats as torch's _NormBase."""

    _parameters = ("weight", "bias")
    _buffers = ("running_mean", "running_var", "num_batches_tracked")

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

    def backward(self, grad_output):
        x, saved, kw = self._saved_input()
        dx, dw, db = self._backward_fn(grad_output, x, saved=saved, **kw)
        self._store_grads(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm(_RunningStats):
    """torch.nn.BatchNorm1d/2d/3d in one class: the input's rank (2 to 5)
    picks which. layout="NHWC" takes channels-last (N, *spatial, C) input."""

    _backward_fn = staticmethod(F.batch_norm_backward)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, layout="NCHW"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         layout)

    def _call_args(self):
        """torch's _BatchNorm.forward: which statistics and which momentum."""
        use_batch = self.training or self.running_mean is None
        track = self.training and self.track_running_stats
        return dict(running_mean=self.running_mean if not self.training or track else None,
                    running_var=self.running_var if not self.training or track else None,
                    weight=self.weight, bias=self.bias, training=use_batch,
                    eps=self.eps, layout=self.layout)

    def forward(self, x):
        kw = self._call_args()
        momentum, nbt = self.momentum, None
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if momentum is None:  # cumulative moving average
                nbt = int(self.num_batches_tracked)
        out, saved = F.batch_norm(x, momentum=0.0 if momentum is None and nbt is None
                                  else momentum, num_batches_tracked=nbt,
                                  return_saved=True, **kw)
        self._ctx = (x, saved, kw)
        return out


class InstanceNorm(_RunningStats):
    """torch.nn.InstanceNorm1d/2d/3d in one class (input rank 3 to 5); as
    torch, affine and track_running_stats are off by default."""

    _backward_fn = staticmethod(F.instance_norm_backward)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, dtype=None, layout="NCHW"):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype,
                         layout)

    def _call_args(self):
        return dict(running_mean=self.running_mean, running_var=self.running_var,
                    weight=self.weight, bias=self.bias,
                    use_input_stats=self.training or not self.track_running_stats,
                    momentum=0.0 if self.momentum is None else self.momentum,
                    eps=self.eps, layout=self.layout)

    def forward(self, x):
        kw = self._call_args()
        out, saved = F.instance_norm(x, return_saved=True, **kw)
        self._ctx = (x, saved, kw)
        return out


class GroupNorm(_Layer):
    """torch.nn.GroupNorm."""

    _parameters = ("weight", "bias")

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

    def forward(self, x):
        out, saved = F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps,
                                  layout=self.layout, return_saved=True)
        self._ctx = (x, saved)
        return out

    def backward(self, grad_output):
        x, saved = self._saved_input()
        dx, dw, db = F.group_norm_backward(grad_output, x, self.num_groups, self.weight,
                                           self.bias, self.eps, layout=self.layout,
                                           saved=saved)
        self._store_grads(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


def _shape_tuple(normalized_shape):
    if isinstance(normalized_shape, Integral):
        normalized_shape = (normalized_shape,)
    return tuple(int(d) for d in normalized_shape)


class LayerNorm(_Layer):
    """torch.nn.LayerNorm."""

    _parameters = ("weight", "bias")

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, bool(elementwise_affine)
        dt = _dtype(dtype)
        self.weight = np.ones(self.normalized_shape, dt) if elementwise_affine else None
        self.bias = (np.zeros(self.normalized_shape, dt)
                     if elementwise_affine and bias else None)

    def forward(self, x):
        out, saved = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps,
                                  return_saved=True)
        self._ctx = (x, saved)
        return out

    def backward(self, grad_output):
        x, saved = self._saved_input()
        dx, dw, db = F.layer_norm_backward(grad_output, x, self.normalized_shape, self.weight,
                                           self.bias, self.eps, saved=saved)
        self._store_grads(weight=dw, bias=db)
        return dx

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class RMSNorm(_Layer):
    """torch.nn.RMSNorm (eps=None: the input dtype's machine epsilon)."""

    _parameters = ("weight",)

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=None):
        super().__init__()
        self.normalized_shape = _shape_tuple(normalized_shape)
        self.eps, self.elementwise_affine = eps, bool(elementwise_affine)
        self.weight = (np.ones(self.normalized_shape, _dtype(dtype))
                       if elementwise_affine else None)

    def forward(self, x):
        out, saved = F.rms_norm(x, self.normalized_shape, self.weight, self.eps,
                                return_saved=True)
        self._ctx = (x, saved)
        return out

    def backward(self, grad_output):
        x, saved = self._saved_input()
        dx, dw = F.rms_norm_backward(grad_output, x, self.normalized_shape, self.weight,
                                     self.eps, saved=saved)
        self._store_grads(weight=dw)
        return dx

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class LocalResponseNorm(_Layer):
    """torch.nn.LocalResponseNorm (no parameters)."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size = _positive_int(size, "size")
        self.alpha, self.beta, self.k = alpha, beta, k

    def forward(self, x):
        self._ctx = x
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def backward(self, grad_output):
        x = self._saved_input()
        return F.local_response_norm_backward(grad_output, x, self.size, self.alpha,
                                              self.beta, self.k)[0]

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class SwitchableNorm(_Layer):
    """Switchable normalization (Luo et al., 2018), see
    fastnorm.functional.switchable_norm; parameters named as the paper's
    code: weight, bias, mean_weight, var_weight (mixing logits, all ones at
    the start: an equal mix) and the BN buffers running_mean, running_var."""

    _parameters = ("weight", "bias", "mean_weight", "var_weight")
    _buffers = ("running_mean", "running_var")

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
        return (self.weight, self.bias, self.mean_weight, self.var_weight, self.running_mean,
                self.running_var, self.training, self.momentum, self.eps, self.using_bn)

    def forward(self, x):
        out, saved = F.switchable_norm(x, *self._args(), layout=self.layout,
                                       return_saved=True)
        # the backward needs the batch statistics, not the updated running ones
        self._ctx = (x, self.training)
        return out

    def backward(self, grad_output):
        x, training = self._saved_input()
        args = list(self._args())
        args[6] = training
        if training and self.using_bn:
            # training-mode gradients do not read the running statistics
            args[4], args[5] = None, None
        dx, dw, db, dmw, dvw = F.switchable_norm_backward(grad_output, x, *args,
                                                          layout=self.layout)
        self._store_grads(weight=dw, bias=db, mean_weight=dmw, var_weight=dvw)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"using_bn={self.using_bn}, affine={self.affine}")


__dir__ = _public_dir(globals())  # dir(): the public names (__all__) only

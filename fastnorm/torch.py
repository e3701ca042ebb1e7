"""fastnorm inside PyTorch: autograd operators, drop-in nn.Modules, patch().

    import fastnorm.torch
    fastnorm.torch.patch(model)     # every torch norm module in model now runs fastnorm's kernels

- **Operators** registered with ``torch.library`` (``torch.ops.fastnorm.layer_norm``,
  ``rms_norm``, ``batch_norm``, ``group_norm``, ``instance_norm``,
  ``local_response_norm``, ``normalize``, ``switchable_norm``): each has its
  autograd formula (fastnorm's ``*_backward`` kernels, from the statistics
  the forward saved) and a fake implementation, so they run in eager mode,
  under autograd, under ``torch.compile(fullgraph=True)`` and with
  ``torch.export``. Running statistics are declared as mutated arguments.
  Double backward is not supported: it raises torch's "autograd not
  implemented" error rather than giving a wrong gradient.
- **Functions** with torch.nn.functional's names and arguments call them:
  ``fastnorm.torch.layer_norm(x, (768,), w, b)``.
- **Modules** subclass torch's own (``LayerNorm``, ``RMSNorm``,
  ``BatchNorm1d/2d/3d``, ``GroupNorm``, ``InstanceNorm1d/2d/3d``,
  ``LocalResponseNorm``): same constructor, parameters, buffers,
  ``state_dict`` and checks; only the computation is fastnorm's. Plus
  ``SwitchableNorm1d/2d``, which torch lacks. ``LayerNorm`` and ``RMSNorm``
  write a large output (and their input gradient) into the memory of the
  last one when nothing refers to it any more (see ``_Buffers``): a fresh
  allocation's page faults saved, never a tensor still in use overwritten.
- ``patch(model)`` turns every torch norm module of a model into its fastnorm
  subclass in place (the same parameter and buffer tensors: nothing is
  copied); ``unpatch(model)`` turns them back.

Tensors: CPU tensors are read and written through NumPy views, without copies
(a channels_last tensor as its NHWC memory, so it stays channels_last).
bfloat16 and float16 tensors are computed in float32 (as torch accumulates
them) and returned in the input's dtype; parameters may be float32 beside
bfloat16/float16 input, as under ``torch.autocast``. layer_norm, rms_norm,
batch_norm, group_norm and instance_norm run them on 16-bit CPU kernels
without a copy (channels_last included); the other norms, and CUDA tensors,
through a float32 copy of the input. CUDA tensors go to fastnorm's
GPU path through DLPack, zero-copy (that path needs CuPy; it has not yet run
on a GPU).

torch is an optional dependency: ``import fastnorm`` does not import it.
"""
import contextvars
import math
import threading
import weakref
from numbers import Real
from typing import List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from . import _backend, _cpu
from . import functional as F
from . import layers as _layers

__all__ = [
    "layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm",
    "local_response_norm", "normalize", "switchable_norm",
    "LayerNorm", "RMSNorm", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "GroupNorm",
    "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d", "LocalResponseNorm",
    "SwitchableNorm1d", "SwitchableNorm2d", "patch", "unpatch",
]

# ------------------------------------------------------------- tensors ---

_FLOAT = (torch.float32, torch.float64, torch.bfloat16, torch.float16)
_HALF = (torch.bfloat16, torch.float16)


def _compute_dtype(input):
    """The dtype the kernels run in for `input`: its own, or float32 for the
    16-bit floats (torch accumulates them in float32 too)."""
    if input.dtype not in _FLOAT:
        raise TypeError(f"input must be a floating-point tensor (float32, float64, bfloat16 "
                        f"or float16), got {input.dtype}")
    return torch.float32 if input.dtype in (torch.bfloat16, torch.float16) else input.dtype


def _check_tensors(input, any_dtype=False, **tensors):
    """Every given tensor is a floating tensor on input's device, of input's
    dtype or float32 beside 16-bit input (torch's rule for its norms'
    parameters; rms_norm takes any, with any_dtype)."""
    for name, t in tensors.items():
        if t is None or (type(t) is Tensor and t.dtype == input.dtype
                         and t.device == input.device):
            continue  # the common case, cheaply
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a tensor or None, got {type(t).__name__}")
        if t.device != input.device:
            raise RuntimeError(f"Expected all tensors to be on the same device, but {name} is "
                               f"on {t.device} and input on {input.device}")
        if t.dtype not in _FLOAT:
            raise TypeError(f"{name} must be a floating-point tensor, got {t.dtype}")
        beside_16_bit = t.dtype == torch.float32 and input.dtype in (torch.bfloat16,
                                                                      torch.float16)
        if not (any_dtype or t.dtype == input.dtype or beside_16_bit):
            raise TypeError(f"mixed dtypes: {name} has dtype {t.dtype} but input has "
                            f"{input.dtype}; it must have the input's dtype (or float32 "
                            "beside bfloat16/float16 input)")


def _array(t, dtype):
    """A NumPy (CPU) or CuPy (CUDA) array of tensor `t` in `dtype`: a view of
    t's memory when t has that dtype, else a converted copy."""
    if t is None:
        return None
    if t.dtype != dtype:
        t = t.to(dtype)
    if t.requires_grad:
        t = t.detach()
    if t.is_cpu:
        return t.numpy()
    if t.is_cuda:
        try:
            import cupy
        except ImportError:
            raise RuntimeError("fastnorm runs CUDA tensors on its GPU path, which needs CuPy "
                               "(the gpu extra: pip install 'fastnorm[gpu]'); it does not copy "
                               "them to the CPU") from None
        return cupy.from_dlpack(t)
    raise RuntimeError(f"fastnorm takes CPU and CUDA tensors, got one on {t.device}")


def _tensor(a, dtype):
    """The result array `a` (NumPy or CuPy) as a tensor of `dtype`, on the
    array's device (no copy when it already has that dtype)."""
    if type(a) is np.ndarray:
        # (a read-only array is a broadcast statistic: torch wants its own memory)
        t = torch.from_numpy(a if a.flags.writeable else a.copy())
    else:
        t = torch.from_dlpack(a)
    return t if t.dtype == dtype else t.to(dtype)


def _stats(a):
    """Saved statistics as contiguous float64 tensors (their dtype does not
    depend on the device, so the fake implementations know it)."""
    if not a.flags.c_contiguous:
        a = _backend.namespace(a).ascontiguousarray(a)
    return _tensor(a, torch.float64)


def _channels_last(t):
    """Whether the channel norms read `t` (N, C, *spatial) as its NHWC memory:
    a channels_last (or channels_last_3d) tensor that is not also contiguous."""
    return (t.dim() in (4, 5) and not t.is_contiguous()
            and t.is_contiguous(memory_format=torch.channels_last if t.dim() == 4
                                else torch.channels_last_3d))


def _to_nhwc(t):
    return t.permute(0, *range(2, t.dim()), 1)


def _from_nhwc(t):
    return t.permute(0, t.dim() - 1, *range(1, t.dim() - 1))


def _channel_arrays(input, dtype, *grads, half=False):
    """(layout, input array, grad arrays) for a channel norm: channels_last
    input as its NHWC view, so that no copy is made. half (the norms with
    16-bit kernels): CPU bfloat16/float16 input and grads go to them as they
    are (_half_array), not as float32 copies."""
    nhwc = _channels_last(input)
    order = _to_nhwc if nhwc else (lambda t: t)
    if half and input.is_cpu and input.dtype in _HALF:
        arrays = (_half_array(order(t.to(input.dtype))) for t in (input, *grads))
    else:
        arrays = (_array(order(t), dtype) for t in (input, *grads))
    return ("NHWC" if nhwc else "NCHW", *arrays)


def _channel_result(a, layout, dtype):
    t = _from_array(a, dtype)
    return _from_nhwc(t) if layout == "NHWC" else t


def _empty_like_result(input):
    """What a channel norm returns for `input`: channels_last stays channels_last."""
    if _channels_last(input):
        fmt = torch.channels_last if input.dim() == 4 else torch.channels_last_3d
        return torch.empty_like(input, memory_format=fmt)
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _real(value, name):
    """A float argument: any real number, as torch takes it (a negative eps
    or a momentum outside [0, 1] included)."""
    if type(value) is float:
        return value
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a float, got {value!r}")
    return float(value)


def _nothing(like):
    """The empty tensor an operator returns for a gradient that does not exist
    (its schema has no optional outputs)."""
    return like.new_empty((0,))


# ----------------------------------------------------------- operators ---
# Each operator is registered with torch.library (the dispatcher: autograd,
# torch.compile, export, fake tensors). An eager call on plain tensors skips
# the dispatcher, whose Python layers cost tens of microseconds a call (more
# than a small tensor's kernel), and runs the same implementation, with the
# same autograd formula as an autograd.Function when a gradient is needed.

_EAGER = {}  # operator -> [implementation, setup_context, backward]


def _operator(name):
    def register(impl):
        op = torch.library.custom_op(f"fastnorm::{name}", impl, mutates_args=())
        _EAGER[op] = [impl, None, None]
        return op
    return register


def _autograd(op, backward, setup_context):
    op.register_autograd(backward, setup_context=setup_context)
    _EAGER[op][1:] = [setup_context, backward]


class _EagerAutograd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, op, *args):
        impl, setup_context, _ = _EAGER[op]
        output = impl(*args)
        setup_context(ctx, args, output)
        ctx.op = op
        ctx.buffers = _REUSE.get()  # (the module's, for its gradients: see _Buffers)
        return output

    @staticmethod
    @torch.autograd.function.once_differentiable  # double backward: an error, as the op's
    def backward(ctx, *grads):
        return (None, *_EAGER[ctx.op][2](ctx, *grads))


# ------------------------------------------------- memory reuse (modules) ---
# A module's large outputs (and input gradients) are written into the memory
# of its last ones once nothing refers to them any more. The test is the
# storage's use count: every tensor over that memory (views, tensors autograd
# saved, .grad, the tensor behind a NumPy array or a DLPack export of it)
# holds the storage, so when the module's own handle is the only one left,
# the storage is exactly what the allocator would have freed at this moment,
# and reusing it is as safe as the allocator's reuse of freed memory: it
# only saves the page faults of a fresh allocation. The returned tensor is
# a new tensor over that storage (its own autograd history and version
# counter). Only plain eager calls use it (see _run): under torch.compile,
# export or any mode, outputs are the dispatcher's.

_REUSE = contextvars.ContextVar("fastnorm_buffers", default=None)
_MODULE_BUFFERS = weakref.WeakKeyDictionary()
REUSE_MIN_BYTES = 1 << 20  # smaller blocks: malloc recycles them without page faults


# (a private torch function, present in the pinned torch: without it, no reuse)
_CAN_COUNT_USES = hasattr(torch._C, "_storage_Use_Count")


def _storage_uses(t):
    """The use count of tensor t's storage (the temporary storage object
    made to read it included: every call counts the same way)."""
    return torch._C._storage_Use_Count(t.untyped_storage()._cdata)


def _new_output(like):
    """A new contiguous CPU tensor of like's shape and dtype for a kernel to
    fill, on transparent huge pages when large (_cpu.advise_huge_pages:
    first writes into torch's 4 KiB pages ran at a quarter of the speed)."""
    out = torch.empty_like(like, memory_format=torch.contiguous_format)
    _cpu.advise_huge_pages(out.data_ptr(), out.numel() * out.element_size())
    return out


class _Buffers:
    """One module's memory for its large results, one slot per kind."""

    def __init__(self):
        self.slots = {}  # key -> (handle over the storage, use count when alone)
        # (a module may run in several threads at once: the test and the taking
        # of a storage are one step, or two calls could both find it free)
        self.lock = threading.Lock()

    def empty(self, key, like):
        """A new contiguous CPU tensor of like's shape and dtype: over the
        memory of this slot's last one when only the slot holds it, else over
        new memory (which the slot then keeps)."""
        nbytes = like.numel() * like.element_size()
        if nbytes < REUSE_MIN_BYTES or not like.is_cpu or not _CAN_COUNT_USES:
            return torch.empty(like.shape, dtype=like.dtype, device=like.device)
        with self.lock:
            return self._take(key, like, nbytes)

    def _take(self, key, like, nbytes):
        slot = self.slots.get(key)
        if slot is not None:
            handle, alone = slot
            # (counted as when the slot was made: no storage object held meanwhile)
            if handle.dtype == like.dtype and _storage_uses(handle) == alone:
                storage = handle.untyped_storage()
                if storage.nbytes() == nbytes and not storage.is_shared():
                    return torch.empty((0,), dtype=like.dtype).set_(storage, 0, like.shape)
        out = _new_output(like)
        handle = torch.empty((0,), dtype=like.dtype).set_(out.untyped_storage(), 0,
                                                           (like.numel(),))
        self.slots[key] = (handle, _storage_uses(handle) - 1)  # (- 1: `out`)
        return out


def _module_buffers(module):
    buffers = _MODULE_BUFFERS.get(module)
    if buffers is None:
        buffers = _MODULE_BUFFERS[module] = _Buffers()
    return buffers


def _with_buffers(buffers, fn, *args):
    """fn(*args) with `buffers` (None: as it is) for the outputs it makes."""
    if buffers is None:
        return fn(*args)
    token = _REUSE.set(buffers)
    try:
        return fn(*args)
    finally:
        _REUSE.reset(token)


# autograd.Function.apply without its Python layer (default arguments of a
# separate setup_context, which _EagerAutograd has not, and functorch
# transforms, which _plain_eager sends to the dispatcher): a few microseconds
# of every small call.
_eager_apply = super(torch.autograd.Function, _EagerAutograd).apply


# Tensor types whose memory the kernels may use directly in plain eager mode
# (nn.Parameter is a Tensor with torch function handling disabled).
_PLAIN = (Tensor, nn.Parameter)


def _plain_eager(args):
    """(plain, needs_grad): plain when nothing but plain eager execution sees
    a call on args; needs_grad when autograd must record it. Not plain:
    torch.compile/export, fx tracing (a Proxy), tensor subclasses
    (FakeTensor, FunctionalTensor, ...), an active torch function or dispatch
    mode (a profiler, FlopCounterMode, ...), functorch transforms (vmap,
    grad, ...)."""
    if (torch.compiler.is_compiling() or torch._C._is_torch_function_mode_enabled()
            or torch._C._len_torch_dispatch_stack() or torch._C._are_functorch_transforms_active()
            or not isinstance(args[0], Tensor)):
        return False, False
    needs_grad = False
    for a in args:
        if isinstance(a, Tensor):
            if type(a) not in _PLAIN:
                return False, False
            needs_grad = needs_grad or a.requires_grad
    return True, needs_grad and torch.is_grad_enabled()


def _run(op, *args, owner=None, buffers=None):
    """op(*args), straight to its implementation when nothing but plain eager
    execution sees the call (see _plain_eager); everything else gets the
    dispatcher, and reuses no buffers. owner: the module whose buffers a
    plain eager call may reuse (see _Buffers), or `buffers` themselves (a
    module's backward: its forward's)."""
    plain, needs_grad = _plain_eager(args)
    if not plain:
        return op(*args)
    if owner is not None:
        buffers = _module_buffers(owner)
    if needs_grad:
        if _EAGER[op][1] is None:  # a backward op, differentiated: torch's clear error
            return op(*args)
        return _with_buffers(buffers, _eager_apply, op, *args)
    return _with_buffers(buffers, _EAGER[op][0], *args)


# ------------------------------------------------------ layer / rms norm ---

def _rows_of(input, normalized_shape):
    return math.prod(input.shape[:input.dim() - len(normalized_shape)])


def _bits16(t):
    """A CPU bfloat16/float16 tensor's memory as a NumPy array, no copy:
    float16, or bfloat16 as its uint16 bits (NumPy has no bfloat16)."""
    t = t.detach()
    return t.view(torch.int16).numpy().view(np.uint16) if t.dtype == torch.bfloat16 \
        else t.numpy()


def _half_array(t):
    """_bits16 as fastnorm.functional's norms with 16-bit kernels take it
    (bfloat16 bits marked as such)."""
    a = _bits16(t)
    return F.BFloat16Bits(a) if t.dtype == torch.bfloat16 else a


def _row_arrays(input, dtype, *params):
    """(input's array, bfloat16?, parameters' arrays) for the row norms. On
    the CPU, bfloat16 and float16 input go to the 16-bit kernels as they are
    (_bits16), parameters as float32; elsewhere everything in the compute
    dtype."""
    if input.is_cpu and input.dtype in _HALF:
        t = input.contiguous()
        return _bits16(t), t.dtype == torch.bfloat16, [_array(p, torch.float32) for p in params]
    return _array(input, dtype), False, [_array(p, dtype) for p in params]


def _from_array(a, dtype):
    """A kernel's output as a tensor of `dtype` (uint16 bits: bfloat16)."""
    if type(a) is np.ndarray and a.dtype == np.uint16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return _tensor(a, dtype)


def _fast_kernel_param(p, input, n):
    """Whether the row-norm kernels take p as it is in the common call (see
    _fast_row_norm): None, or a plain contiguous CPU tensor of n values of
    input's dtype (or float32 beside 16-bit input, which the 16-bit kernels
    take in either dtype)."""
    if p is None:
        return True
    if type(p) not in _PLAIN or not p.is_cpu or p.dim() != 1 or p.shape[0] != n \
            or not p.is_contiguous():
        return False
    return p.dtype is input.dtype or (p.dtype is torch.float32 and input.dtype in _HALF)


def _address(t):
    return 0 if t is None else t.data_ptr()


def _is_16_bit(p):
    """p is a 16-bit parameter (the 16-bit kernels convert it themselves)."""
    return p is not None and p.dtype in _HALF


def _fast_row_norm(input, normalized_shape, weight, bias, eps, rms):
    """(out, mean, rstd) of the common eager call on CPU tensors, straight
    from the tensors' memory, or None for the general path. Making NumPy
    views of the tensors costs more than a small call's kernel. The common
    call: a contiguous float32/float64/bfloat16/float16 CPU tensor
    normalized over its last dimension, weight and bias None or contiguous
    CPU tensors of that shape and dtype (or float32 beside 16-bit input).
    Every check of the general path holds for it by construction."""
    dtype = input.dtype
    if dtype not in _FLOAT or not input.is_cpu or len(normalized_shape) != 1 \
            or not input.is_contiguous():
        return None
    n = normalized_shape[0]
    if not input.dim() or input.shape[-1] != n or n <= 0:
        return None
    if not (_fast_kernel_param(weight, input, n) and _fast_kernel_param(bias, input, n)):
        return None
    ops = _backend.numpy_ops()  # (None: the configured backend is the GPU)
    if ops is None:
        return None
    n_rows = input.numel() // n
    buffers = _REUSE.get()
    out = _new_output(input) if buffers is None else buffers.empty("output", input)
    mean = torch.empty(n_rows, dtype=torch.float64)
    rstd = torch.empty(n_rows, dtype=torch.float64)
    if dtype in _HALF:
        ops.row_norm_forward16_into(input.data_ptr(), n_rows, n, _address(weight),
                                    _address(bias), eps, rms, dtype is torch.bfloat16,
                                    out.data_ptr(), mean.data_ptr(), rstd.data_ptr(),
                                    _is_16_bit(weight), _is_16_bit(bias))
    else:
        ops.row_norm_forward_into(input.data_ptr(), n_rows, n, _address(weight),
                                  _address(bias), eps, rms, dtype is torch.float64,
                                  out.data_ptr(), mean.data_ptr(), rstd.data_ptr())
    return out, mean, rstd


@_operator("row_norm")
def _row_norm(input: Tensor, normalized_shape: List[int], weight: Optional[Tensor],
              bias: Optional[Tensor], eps: float, rms: bool) -> Tuple[Tensor, Tensor, Tensor]:
    fast = _fast_row_norm(input, normalized_shape, weight, bias, eps, rms)
    if fast is not None:
        return fast
    dtype = _compute_dtype(input)
    _check_tensors(input, rms, weight=weight, bias=bias)
    x, bf16, (w, b) = _row_arrays(input, dtype, weight, bias)
    # (F._row_norm: the public functions' body, which also takes bfloat16 bits)
    out, saved = F._row_norm(x, tuple(normalized_shape), w, None if rms else b, eps, rms,
                             return_saved=True, bfloat16=bf16)
    return _from_array(out, input.dtype), _stats(saved.mean), _stats(saved.rstd)


@_row_norm.register_fake
def _(input, normalized_shape, weight, bias, eps, rms):
    _compute_dtype(input)
    _check_tensors(input, rms, weight=weight, bias=bias)
    n = _rows_of(input, normalized_shape)
    return (torch.empty_like(input, memory_format=torch.contiguous_format),
            input.new_empty((n,), dtype=torch.float64), input.new_empty((n,), dtype=torch.float64))


def _fast_row_norm_backward(grad_output, input, normalized_shape, weight, mean, rstd,
                            want_bias, rms):
    """(dx, dw, db) of the common call (see _fast_row_norm) straight from the
    tensors' memory, or None for the general path."""
    dtype = input.dtype
    if dtype not in _FLOAT or not input.is_cpu or len(normalized_shape) != 1 \
            or not input.is_contiguous() or type(grad_output) not in _PLAIN \
            or grad_output.dtype is not dtype or not grad_output.is_cpu \
            or not grad_output.is_contiguous() or grad_output.shape != input.shape:
        return None
    n = normalized_shape[0]
    if not input.dim() or input.shape[-1] != n or n <= 0:
        return None
    if not _fast_kernel_param(weight, input, n):
        return None
    n_rows = input.numel() // n
    for s in (mean, rstd):  # (the forward's own outputs, unless called directly)
        if type(s) not in _PLAIN or s.dtype is not torch.float64 or not s.is_cpu \
                or s.shape != (n_rows,) or not s.is_contiguous():
            return None
    ops = _backend.numpy_ops()
    if ops is None:
        return None
    half = dtype in _HALF
    buffers = _REUSE.get()  # (a module's: see _Buffers)
    dx = _new_output(input) if buffers is None else buffers.empty("grad_input", input)
    dw = db = None
    if weight is not None or (want_bias and not rms):  # (the kernel gives both or neither)
        # (16-bit input: summed into float64, then stored in the parameters' dtype)
        dw, db = (torch.empty(n, dtype=torch.float64 if half else dtype) for _ in "wb")
    if half:
        ops.row_norm_backward16_into(grad_output.data_ptr(), input.data_ptr(), n_rows, n,
                                     _address(weight), mean.data_ptr(), rstd.data_ptr(), rms,
                                     dtype is torch.bfloat16, dx.data_ptr(), _address(dw),
                                     _address(db), _is_16_bit(weight))
        if dw is not None:
            param_dtype = weight.dtype if weight is not None else dtype
            dw, db = dw.to(param_dtype), db.to(param_dtype)
    else:
        ops.row_norm_backward_into(grad_output.data_ptr(), input.data_ptr(), n_rows, n,
                                   _address(weight), mean.data_ptr(), rstd.data_ptr(), rms,
                                   dtype is torch.float64, dx.data_ptr(), _address(dw),
                                   _address(db))
    return (dx, dw if weight is not None else _nothing(input),
            db if want_bias and not rms else _nothing(input))


@_operator("row_norm_backward")
def _row_norm_backward(grad_output: Tensor, input: Tensor, normalized_shape: List[int],
                       weight: Optional[Tensor], mean: Tensor, rstd: Tensor, want_bias: bool,
                       rms: bool) -> Tuple[Tensor, Tensor, Tensor]:
    fast = _fast_row_norm_backward(grad_output, input, normalized_shape, weight, mean, rstd,
                                   want_bias, rms)
    if fast is not None:
        return fast
    dtype = _compute_dtype(input)
    shape = tuple(normalized_shape)
    x, bf16, (w,) = _row_arrays(input, dtype, weight)
    dy = _row_arrays(grad_output.to(input.dtype), dtype)[0]
    # the bias's value does not enter the gradients: zeros stand in for it
    # (float32 beside 16-bit input, as the parameters are given)
    b_dtype = np.float32 if x.dtype.itemsize == 2 else x.dtype
    b = _backend.namespace(x).zeros(shape, b_dtype) if want_bias and not rms else None
    saved = F.SavedStats(_array(mean, torch.float64), _array(rstd, torch.float64))
    buffers, dx_t = _REUSE.get(), None
    if buffers is not None and input.is_cpu and input.dtype in (torch.float32, torch.float64):
        dx_t = buffers.empty("grad_input", input)  # (a module's: see _Buffers)
    out = None if dx_t is None else (dx_t.numpy(),) + (None,) * (1 if rms else 2)
    # (eps: unused, the saved statistics are given)
    dx, dw, db = F._row_norm_backward(dy, x, shape, w, b, 0.0, rms, saved, bfloat16=bf16,
                                      out=out)
    param_dtype = weight.dtype if weight is not None else input.dtype
    return (_from_array(dx, input.dtype) if dx_t is None else dx_t,
            _nothing(input) if dw is None else _tensor(dw, param_dtype),
            _nothing(input) if db is None else _tensor(db, param_dtype))


@_row_norm_backward.register_fake
def _(grad_output, input, normalized_shape, weight, mean, rstd, want_bias, rms):
    param = input.new_empty(tuple(normalized_shape),
                            dtype=weight.dtype if weight is not None else input.dtype)
    return (torch.empty_like(input, memory_format=torch.contiguous_format),
            _nothing(input) if weight is None else torch.empty_like(param),
            torch.empty_like(param) if want_bias and not rms else _nothing(input))


def _row_norm_setup(ctx, inputs, output):
    input, normalized_shape, weight, bias, eps, rms = inputs
    ctx.save_for_backward(input, weight, output[1], output[2])
    ctx.normalized_shape, ctx.has_bias, ctx.rms = normalized_shape, bias is not None, rms


def _row_norm_grad(ctx, grad_output, _grad_mean, _grad_rstd):
    input, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = _run(_row_norm_backward, grad_output, input, ctx.normalized_shape, weight,
                      mean, rstd, ctx.has_bias, ctx.rms,
                      buffers=getattr(ctx, "buffers", None))  # (a module's: _EagerAutograd)
    return (dx, None, dw if weight is not None else None, db if ctx.has_bias else None,
            None, None)


_autograd(_row_norm, _row_norm_grad, _row_norm_setup)


def _shape_list(normalized_shape):
    if type(normalized_shape) is int:
        return [normalized_shape]
    return [int(n) for n in normalized_shape]


# The checks of the common inference call run compiled (see _row_norm_inference).
# (torch.compiler.is_compiling is checked before, in Python: see _row_norm_inference)
_cpu.set_tensor_api(_PLAIN, (torch._C._is_torch_function_mode_enabled,
                             torch._C._len_torch_dispatch_stack,
                             torch._C._are_functorch_transforms_active),
                    torch.is_grad_enabled, torch.empty_like,
                    (torch.float32, torch.float64, torch.bfloat16, torch.float16))


_current_backend = _backend.current_backend
_is_compiling = torch.compiler.is_compiling
_row_norm_tensor_forward = _cpu.row_norm_tensor_forward


def _row_norm_inference(input, normalized_shape, weight, bias, eps, rms, owner):
    """The output of the common inference call, or None for the general
    path: plain eager execution (see _plain_eager) that autograd need not
    record, on a contiguous float32/float64/bfloat16/float16 CPU tensor
    normalized over its last dimension, weight and bias None or contiguous
    CPU tensors of that size and dtype (or float32 beside 16-bit input). No
    statistics are saved. Every check of the general path
    holds for it by construction; they are made in compiled code
    (_cpu.row_norm_tensor_forward), as they cost more than a small call's
    kernel. owner: the module whose buffers the output may reuse (see
    _Buffers), or None. (layer_norm and rms_norm make this call inline: a
    frame costs a tenth of a small call's margin over torch.)"""
    # torch.compile traces this function: is_compiling() is True there, and
    # the trace never reaches the compiled code, which it could not follow
    if _is_compiling() or _current_backend() == "gpu":  # (gpu: _backend.numpy_ops)
        return None
    return _row_norm_tensor_forward(input, normalized_shape, weight, bias, eps, rms,
                                    None if owner is None else _module_buffers(owner).empty)


def _row_norm_call(input, normalized_shape, weight, bias, eps, rms, owner=None):
    """layer_norm (rms_norm: rms) of a function or (owner) a module."""
    out = _row_norm_inference(input, normalized_shape, weight, bias, eps, rms, owner)
    if out is None:
        out = _row_norm_general(input, normalized_shape, weight, bias, eps, rms, owner)
    return out


def _row_norm_general(input, normalized_shape, weight, bias, eps, rms, owner=None):
    """layer_norm (rms_norm: rms) through the operator (see _run)."""
    return _run(_row_norm, input, _shape_list(normalized_shape), weight, bias,
                _real(eps, "eps"), rms, owner=owner)[0]


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm on fastnorm's kernels."""
    if not _is_compiling() and _current_backend() != "gpu":  # (_row_norm_inference, inline)
        out = _row_norm_tensor_forward(input, normalized_shape, weight, bias, eps, False)
        if out is not None:
            return out
    return _row_norm_general(input, normalized_shape, weight, bias, eps, False)


def _rms_eps(input, eps):
    """rms_norm's eps; None: the machine epsilon of the input's dtype, as torch's."""
    if eps is None:
        return torch.finfo(input.dtype).eps if isinstance(input, Tensor) and \
            input.is_floating_point() else 0.0
    return eps


def rms_norm(input, normalized_shape, weight=None, eps=None):
    """torch.nn.functional.rms_norm on fastnorm's kernels (eps=None: the
    machine epsilon of the input's dtype, as torch's)."""
    eps = _rms_eps(input, eps)
    if not _is_compiling() and _current_backend() != "gpu":  # (_row_norm_inference, inline)
        out = _row_norm_tensor_forward(input, normalized_shape, weight, None, eps, True)
        if out is not None:
            return out
    return _row_norm_general(input, normalized_shape, weight, None, eps, True)


# ------------------------------------------------------------ running stats ---
# An operator with an autograd formula cannot mutate its inputs: the norms
# with running statistics take them as inputs, return their updated values
# (fastnorm.functional updates copies), and the Python function writes them
# back with copy_ (which torch.compile traces as the mutation it is).

def _running_copies(running_mean, running_var, dtype):
    copies = []
    for t in (running_mean, running_var):
        a = _array(t, dtype)
        # (a tensor already of `dtype` is viewed, not converted: copy it)
        copies.append(None if a is None else a.copy() if t.dtype == dtype else a)
    return copies


def _running_results(rm, rv, running_mean, running_var, input):
    return tuple(_nothing(input) if a is None else _tensor(a, t.dtype)
                 for a, t in ((rm, running_mean), (rv, running_var)))


def _fake_running(running_mean, running_var, input):
    return tuple(_nothing(input) if t is None else torch.empty_like(t)
                 for t in (running_mean, running_var))


def _store_running(running_mean, running_var, new_mean, new_var):
    if running_mean is not None:
        with torch.no_grad():
            running_mean.copy_(new_mean)
            running_var.copy_(new_var)


# ----------------------------------------------------------- batch norm ---

def _stand_ins(x, C, want_bias):
    """(running_mean, running_var, bias) for a channel norm's backward, where
    their values do not matter: the saved statistics (the forward's, from the
    real running statistics in eval) take precedence, and the bias's value
    does not enter the gradients (only whether there is one)."""
    x = getattr(x, "bits", x)  # (F.BFloat16Bits)
    xp = _backend.namespace(x)
    dtype = np.float32 if x.dtype.itemsize == 2 else x.dtype  # (beside 16-bit input)
    return xp.zeros(C, dtype), xp.ones(C, dtype), xp.zeros(C, dtype) if want_bias else None


@_operator("batch_norm")
def _batch_norm(input: Tensor, running_mean: Optional[Tensor], running_var: Optional[Tensor],
                weight: Optional[Tensor], bias: Optional[Tensor], training: bool,
                momentum: float, eps: float) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    _check_tensors(input, running_mean=running_mean, running_var=running_var, weight=weight,
                   bias=bias)
    layout, x = _channel_arrays(input, dtype, half=True)
    rm, rv = _running_copies(running_mean, running_var, dtype)
    out, saved = F.batch_norm(x, rm, rv, _array(weight, dtype), _array(bias, dtype),
                              training=training, momentum=momentum, eps=eps, layout=layout,
                              return_saved=True)
    return (_channel_result(out, layout, input.dtype), _stats(saved.mean),
            _stats(saved.rstd), *_running_results(rm, rv, running_mean, running_var,
                                                         input))


@_batch_norm.register_fake
def _(input, running_mean, running_var, weight, bias, training, momentum, eps):
    _compute_dtype(input)
    _check_tensors(input, running_mean=running_mean, running_var=running_var, weight=weight,
                   bias=bias)
    C = input.shape[1] if input.dim() > 1 else 0
    return (_empty_like_result(input), input.new_empty((C,), dtype=torch.float64),
            input.new_empty((C,), dtype=torch.float64),
            *_fake_running(running_mean, running_var, input))


@_operator("batch_norm_backward")
def _batch_norm_backward(grad_output: Tensor, input: Tensor, weight: Optional[Tensor],
                         mean: Tensor, rstd: Tensor, want_bias: bool,
                         training: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    layout, x, dy = _channel_arrays(input, dtype, grad_output, half=True)
    rm, rv, b = _stand_ins(x, input.shape[1], want_bias)
    w = _array(weight, dtype)
    saved = F.SavedStats(_array(mean, torch.float64), _array(rstd, torch.float64))
    dx, dw, db = F.batch_norm_backward(dy, x, rm, rv, w, b, training=training, layout=layout,
                                       saved=saved)
    return _channel_grads(dx, dw, db, layout, input, weight)


def _channel_grads(dx, dw, db, layout, input, weight):
    pdtype = weight.dtype if weight is not None else input.dtype
    return (_channel_result(dx, layout, input.dtype),
            _nothing(input) if dw is None else _tensor(dw, pdtype),
            _nothing(input) if db is None else _tensor(db, pdtype))


def _fake_channel_grads(input, weight, want_bias):
    C = input.shape[1]
    pdtype = weight.dtype if weight is not None else input.dtype
    return (_empty_like_result(input),
            _nothing(input) if weight is None else input.new_empty((C,), dtype=pdtype),
            input.new_empty((C,), dtype=pdtype) if want_bias else _nothing(input))


@_batch_norm_backward.register_fake
def _(grad_output, input, weight, mean, rstd, want_bias, training):
    return _fake_channel_grads(input, weight, want_bias)


def _running_norm_setup(ctx, inputs, output):
    """batch_norm's and instance_norm's: their arguments line up (input,
    running_mean, running_var, weight, bias, training / use_input_stats,
    momentum, eps), and so do their outputs and backward operators."""
    input, _, _, weight, bias, batch_stats, _, _ = inputs
    ctx.save_for_backward(input, weight, output[1], output[2])
    ctx.mark_non_differentiable(*output[1:])
    ctx.has_bias, ctx.batch_stats = bias is not None, batch_stats


def _running_norm_grad(backward_op):
    def grad(ctx, grad_output, *_grad_stats):
        input, weight, mean, rstd = ctx.saved_tensors
        dx, dw, db = _run(backward_op, grad_output, input, weight, mean, rstd, ctx.has_bias,
                          ctx.batch_stats)
        return (dx, None, None, dw if weight is not None else None,
                db if ctx.has_bias else None, None, None, None)
    return grad


_autograd(_batch_norm, _running_norm_grad(_batch_norm_backward), _running_norm_setup)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """torch.nn.functional.batch_norm on fastnorm's kernels; the running
    statistics are updated in place in training."""
    out, _, _, new_mean, new_var = _run(
        _batch_norm, input, running_mean, running_var, weight, bias, bool(training),
        _real(momentum, "momentum"), _real(eps, "eps"))
    if training:
        _store_running(running_mean, running_var, new_mean, new_var)
    return out


# ------------------------------------------------ group / instance norm ---

@_operator("group_norm")
def _group_norm(input: Tensor, num_groups: int, weight: Optional[Tensor],
                bias: Optional[Tensor], eps: float) -> Tuple[Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    _check_tensors(input, weight=weight, bias=bias)
    layout, x = _channel_arrays(input, dtype, half=True)
    out, saved = F.group_norm(x, num_groups, _array(weight, dtype), _array(bias, dtype), eps,
                              layout=layout, return_saved=True)
    return _channel_result(out, layout, input.dtype), _stats(saved.mean), _stats(saved.rstd)


@_group_norm.register_fake
def _(input, num_groups, weight, bias, eps):
    _compute_dtype(input)
    _check_tensors(input, weight=weight, bias=bias)
    shape = (input.shape[0], num_groups)
    return (_empty_like_result(input), input.new_empty(shape, dtype=torch.float64),
            input.new_empty(shape, dtype=torch.float64))


@_operator("group_norm_backward")
def _group_norm_backward(grad_output: Tensor, input: Tensor, num_groups: int,
                         weight: Optional[Tensor], mean: Tensor, rstd: Tensor,
                         want_bias: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    layout, x, dy = _channel_arrays(input, dtype, grad_output, half=True)
    w = _array(weight, dtype)
    _, _, b = _stand_ins(x, input.shape[1], want_bias)
    saved = F.SavedStats(_array(mean, torch.float64), _array(rstd, torch.float64))
    dx, dw, db = F.group_norm_backward(dy, x, num_groups, w, b, layout=layout, saved=saved)
    return _channel_grads(dx, dw, db, layout, input, weight)


@_group_norm_backward.register_fake
def _(grad_output, input, num_groups, weight, mean, rstd, want_bias):
    return _fake_channel_grads(input, weight, want_bias)


def _group_norm_setup(ctx, inputs, output):
    input, num_groups, weight, bias, _ = inputs
    ctx.save_for_backward(input, weight, output[1], output[2])
    ctx.num_groups, ctx.has_bias = num_groups, bias is not None


def _group_norm_grad(ctx, grad_output, _grad_mean, _grad_rstd):
    input, weight, mean, rstd = ctx.saved_tensors
    dx, dw, db = _run(_group_norm_backward, grad_output, input, ctx.num_groups, weight, mean,
                      rstd, ctx.has_bias)
    return dx, None, dw if weight is not None else None, db if ctx.has_bias else None, None


_autograd(_group_norm, _group_norm_grad, _group_norm_setup)


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.group_norm on fastnorm's kernels."""
    return _run(_group_norm, input, int(num_groups), weight, bias, _real(eps, "eps"))[0]


@_operator("instance_norm")
def _instance_norm(input: Tensor, running_mean: Optional[Tensor],
                   running_var: Optional[Tensor], weight: Optional[Tensor],
                   bias: Optional[Tensor], use_input_stats: bool, momentum: float,
                   eps: float) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    _check_tensors(input, running_mean=running_mean, running_var=running_var, weight=weight,
                   bias=bias)
    layout, x = _channel_arrays(input, dtype, half=True)
    rm, rv = _running_copies(running_mean, running_var, dtype)
    out, saved = F.instance_norm(x, rm, rv, _array(weight, dtype), _array(bias, dtype),
                                 use_input_stats=use_input_stats, momentum=momentum, eps=eps,
                                 layout=layout, return_saved=True)
    return (_channel_result(out, layout, input.dtype), _stats(saved.mean),
            _stats(saved.rstd), *_running_results(rm, rv, running_mean, running_var,
                                                         input))


@_instance_norm.register_fake
def _(input, running_mean, running_var, weight, bias, use_input_stats, momentum, eps):
    _compute_dtype(input)
    _check_tensors(input, running_mean=running_mean, running_var=running_var, weight=weight,
                   bias=bias)
    shape = tuple(input.shape[:2])
    return (_empty_like_result(input), input.new_empty(shape, dtype=torch.float64),
            input.new_empty(shape, dtype=torch.float64),
            *_fake_running(running_mean, running_var, input))


@_operator("instance_norm_backward")
def _instance_norm_backward(grad_output: Tensor, input: Tensor, weight: Optional[Tensor],
                            mean: Tensor, rstd: Tensor, want_bias: bool,
                            use_input_stats: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    layout, x, dy = _channel_arrays(input, dtype, grad_output, half=True)
    rm, rv, b = _stand_ins(x, input.shape[1], want_bias)
    w = _array(weight, dtype)
    saved = F.SavedStats(_array(mean, torch.float64), _array(rstd, torch.float64))
    dx, dw, db = F.instance_norm_backward(dy, x, rm, rv, w, b, use_input_stats=use_input_stats,
                                          layout=layout, saved=saved)
    return _channel_grads(dx, dw, db, layout, input, weight)


@_instance_norm_backward.register_fake
def _(grad_output, input, weight, mean, rstd, want_bias, use_input_stats):
    return _fake_channel_grads(input, weight, want_bias)


_autograd(_instance_norm, _running_norm_grad(_instance_norm_backward), _running_norm_setup)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """torch.nn.functional.instance_norm on fastnorm's kernels."""
    out, _, _, new_mean, new_var = _run(
        _instance_norm, input, running_mean, running_var, weight, bias, bool(use_input_stats),
        _real(momentum, "momentum"), _real(eps, "eps"))
    if use_input_stats:
        _store_running(running_mean, running_var, new_mean, new_var)
    return out


# ------------------------------------------------- local response norm ---

@_operator("local_response_norm")
def _local_response_norm(input: Tensor, size: int, alpha: float, beta: float,
                         k: float) -> Tensor:
    dtype = _compute_dtype(input)
    out = F.local_response_norm(_array(input, dtype), size, alpha, beta, k)
    return _tensor(out, input.dtype)


@_local_response_norm.register_fake
def _(input, size, alpha, beta, k):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@_operator("local_response_norm_backward")
def _local_response_norm_backward(grad_output: Tensor, input: Tensor, size: int,
                                  alpha: float, beta: float, k: float) -> Tensor:
    dtype = _compute_dtype(input)
    dx, = F.local_response_norm_backward(_array(grad_output, dtype), _array(input, dtype),
                                         size, alpha, beta, k)
    return _tensor(dx, input.dtype)


@_local_response_norm_backward.register_fake
def _(grad_output, input, size, alpha, beta, k):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


def _input_only_setup(ctx, inputs, output):
    """For a norm whose only tensor is its input (local_response_norm,
    normalize): its backward recomputes from the input and the arguments."""
    input, *ctx.args = inputs
    ctx.save_for_backward(input)


def _input_only_grad(backward_op):
    def grad(ctx, grad_output):
        input, = ctx.saved_tensors
        return (_run(backward_op, grad_output, input, *ctx.args),) + (None,) * len(ctx.args)
    return grad


_autograd(_local_response_norm, _input_only_grad(_local_response_norm_backward),
          _input_only_setup)


def local_response_norm(input, size, alpha=1e-4, beta=0.75, k=1.0):
    """torch.nn.functional.local_response_norm on fastnorm's kernels."""
    return _run(_local_response_norm, input, int(size), _real(alpha, "alpha"),
                _real(beta, "beta"), _real(k, "k"))


# ------------------------------------------------------------ normalize ---

@_operator("normalize")
def _normalize(input: Tensor, p: float, dim: Optional[List[int]], eps: float) -> Tensor:
    dtype = _compute_dtype(input)
    return _tensor(F.normalize(_array(input, dtype), p, _dims(dim), eps), input.dtype)


@_normalize.register_fake
def _(input, p, dim, eps):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


@_operator("normalize_backward")
def _normalize_backward(grad_output: Tensor, input: Tensor, p: float,
                        dim: Optional[List[int]], eps: float) -> Tensor:
    dtype = _compute_dtype(input)
    dx, = F.normalize_backward(_array(grad_output, dtype), _array(input, dtype), p, _dims(dim),
                               eps)
    return _tensor(dx, input.dtype)


@_normalize_backward.register_fake
def _(grad_output, input, p, dim, eps):
    return torch.empty_like(input, memory_format=torch.contiguous_format)


_autograd(_normalize, _input_only_grad(_normalize_backward), _input_only_setup)


def _dims(dim):
    """The operator's dim list as fastnorm.functional's dim: an int, a tuple,
    or None (every dimension)."""
    return None if dim is None else dim[0] if len(dim) == 1 else tuple(dim)


def normalize(input, p=2.0, dim=1, eps=1e-12):
    """torch.nn.functional.normalize on fastnorm's kernels (p=None or 'fro':
    2, as torch's)."""
    p = 2.0 if p is None or p == "fro" else _real(p, "p")
    dims = None if dim is None else [dim] if isinstance(dim, int) else [int(d) for d in dim]
    return _run(_normalize, input, p, dims, _real(eps, "eps"))


# ------------------------------------------------------ switchable norm ---

@_operator("switchable_norm")
def _switchable_norm(input: Tensor, weight: Optional[Tensor], bias: Optional[Tensor],
                     mean_weight: Tensor, var_weight: Tensor, running_mean: Optional[Tensor],
                     running_var: Optional[Tensor], training: bool, momentum: float,
                     eps: float, using_bn: bool) -> Tuple[Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    _check_tensors(input, weight=weight, bias=bias, mean_weight=mean_weight,
                   var_weight=var_weight, running_mean=running_mean, running_var=running_var)
    layout, x = _channel_arrays(input, dtype)
    rm, rv = _running_copies(running_mean, running_var, dtype)
    out = F.switchable_norm(x, _array(weight, dtype), _array(bias, dtype),
                            _array(mean_weight, dtype), _array(var_weight, dtype), rm, rv,
                            training, momentum, eps, using_bn, layout=layout)
    return (_channel_result(out, layout, input.dtype),
            *_running_results(rm, rv, running_mean, running_var, input))


@_switchable_norm.register_fake
def _(input, weight, bias, mean_weight, var_weight, running_mean, running_var, training,
      momentum, eps, using_bn):
    _compute_dtype(input)
    _check_tensors(input, weight=weight, bias=bias, mean_weight=mean_weight,
                   var_weight=var_weight, running_mean=running_mean, running_var=running_var)
    return _empty_like_result(input), *_fake_running(running_mean, running_var, input)


@_operator("switchable_norm_backward")
def _switchable_norm_backward(grad_output: Tensor, input: Tensor, weight: Optional[Tensor],
                              bias: Optional[Tensor], mean_weight: Tensor, var_weight: Tensor,
                              running_mean: Optional[Tensor], running_var: Optional[Tensor],
                              training: bool, eps: float,
                              using_bn: bool) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    dtype = _compute_dtype(input)
    layout, x, dy = _channel_arrays(input, dtype, grad_output)
    dx, dw, db, dmw, dvw = F.switchable_norm_backward(
        dy, x, _array(weight, dtype), _array(bias, dtype), _array(mean_weight, dtype),
        _array(var_weight, dtype), _array(running_mean, dtype), _array(running_var, dtype),
        training, eps=eps, using_bn=using_bn, layout=layout)
    dx, dw, db = _channel_grads(dx, dw, db, layout, input, weight)
    return (dx, dw, db, _tensor(dmw, mean_weight.dtype),
            _tensor(dvw, var_weight.dtype))


@_switchable_norm_backward.register_fake
def _(grad_output, input, weight, bias, mean_weight, var_weight, running_mean, running_var,
      training, eps, using_bn):
    return (*_fake_channel_grads(input, weight, bias is not None),
            torch.empty_like(mean_weight), torch.empty_like(var_weight))


def _switchable_setup(ctx, inputs, output):
    (input, weight, bias, mean_weight, var_weight, running_mean, running_var, training, _,
     eps, using_bn) = inputs
    # training's gradients do not read the running statistics (which the
    # caller then overwrites); eval's read them as the forward did
    running = (None, None) if training else (running_mean, running_var)
    ctx.save_for_backward(input, weight, bias, mean_weight, var_weight, *running)
    ctx.mark_non_differentiable(*output[1:])
    ctx.args = (training, eps, using_bn)


def _switchable_grad(ctx, grad_output, *_grad_running):
    input, weight, bias, mean_weight, var_weight, rm, rv = ctx.saved_tensors
    dx, dw, db, dmw, dvw = _run(_switchable_norm_backward, grad_output, input, weight, bias,
                                mean_weight, var_weight, rm, rv, *ctx.args)
    return (dx, dw if weight is not None else None, db if bias is not None else None, dmw,
            dvw, None, None, None, None, None, None)


_autograd(_switchable_norm, _switchable_grad, _switchable_setup)


def switchable_norm(input, weight, bias, mean_weight, var_weight, running_mean, running_var,
                    training, momentum=0.1, eps=1e-5, using_bn=True):
    """fastnorm.functional.switchable_norm for tensors, with autograd."""
    out, new_mean, new_var = _run(
        _switchable_norm, input, weight, bias, mean_weight, var_weight, running_mean,
        running_var, bool(training), _real(momentum, "momentum"), _real(eps, "eps"),
        bool(using_bn))
    if training and using_bn:
        _store_running(running_mean, running_var, new_mean, new_var)
    return out


# -------------------------------------------------------------- modules ---

class LayerNorm(nn.LayerNorm):
    """torch.nn.LayerNorm computed by fastnorm."""

    def forward(self, input):
        return _row_norm_call(input, self.normalized_shape, self.weight, self.bias, self.eps,
                              False, owner=self)


class RMSNorm(nn.RMSNorm):
    """torch.nn.RMSNorm computed by fastnorm."""

    def forward(self, input):
        return _row_norm_call(input, self.normalized_shape, self.weight, None,
                              _rms_eps(input, self.eps), True, owner=self)


class _FastBatchNorm:
    """torch's _BatchNorm.forward, computed by fastnorm: the bookkeeping is
    fastnorm.layers' (one implementation for both)."""

    def forward(self, input):
        self._check_input_dim(input)
        plan = _layers.batch_norm_plan(self)
        if plan.counts:
            self.num_batches_tracked.add_(1)
        momentum = _layers.momentum_factor(self.momentum, plan.counts,
                                           lambda: self.num_batches_tracked)
        return batch_norm(input, plan.running_mean, plan.running_var, self.weight, self.bias,
                          plan.training, momentum, self.eps)


class BatchNorm1d(_FastBatchNorm, nn.BatchNorm1d):
    """torch.nn.BatchNorm1d computed by fastnorm."""


class BatchNorm2d(_FastBatchNorm, nn.BatchNorm2d):
    """torch.nn.BatchNorm2d computed by fastnorm (channels_last input stays
    channels_last)."""


class BatchNorm3d(_FastBatchNorm, nn.BatchNorm3d):
    """torch.nn.BatchNorm3d computed by fastnorm."""


class _FastInstanceNorm:
    """torch's _InstanceNorm with its checks; the normalization is fastnorm's."""

    def _apply_instance_norm(self, input):
        plan = _layers.instance_norm_plan(self)
        return instance_norm(input, self.running_mean, self.running_var, self.weight,
                             self.bias, plan.use_input_stats, plan.momentum, self.eps)


class InstanceNorm1d(_FastInstanceNorm, nn.InstanceNorm1d):
    """torch.nn.InstanceNorm1d computed by fastnorm."""


class InstanceNorm2d(_FastInstanceNorm, nn.InstanceNorm2d):
    """torch.nn.InstanceNorm2d computed by fastnorm."""


class InstanceNorm3d(_FastInstanceNorm, nn.InstanceNorm3d):
    """torch.nn.InstanceNorm3d computed by fastnorm."""


class GroupNorm(nn.GroupNorm):
    """torch.nn.GroupNorm computed by fastnorm."""

    def forward(self, input):
        return group_norm(input, self.num_groups, self.weight, self.bias, self.eps)


class LocalResponseNorm(nn.LocalResponseNorm):
    """torch.nn.LocalResponseNorm computed by fastnorm."""

    def forward(self, input):
        return local_response_norm(input, self.size, self.alpha, self.beta, self.k)


class _SwitchableNorm(nn.Module):
    """Switchable normalization (Luo et al., 2018) as a torch module; see
    fastnorm.layers.SwitchableNorm for the parameters (same names)."""

    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, using_bn=True, affine=True,
                 device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.num_features, self.eps, self.momentum = int(num_features), eps, momentum
        self.using_bn, self.affine = bool(using_bn), bool(affine)
        if self.affine:
            self.weight = nn.Parameter(torch.ones(num_features, **factory))
            self.bias = nn.Parameter(torch.zeros(num_features, **factory))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        n_stats = 3 if self.using_bn else 2
        self.mean_weight = nn.Parameter(torch.ones(n_stats, **factory))
        self.var_weight = nn.Parameter(torch.ones(n_stats, **factory))
        if self.using_bn:
            self.register_buffer("running_mean", torch.zeros(num_features, **factory))
            self.register_buffer("running_var", torch.ones(num_features, **factory))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)

    def forward(self, input):
        if input.dim() not in self._ndims:
            raise ValueError(f"expected {' or '.join(f'{n}D' for n in self._ndims)} input "
                             f"(got {input.dim()}D input)")
        return switchable_norm(input, self.weight, self.bias, self.mean_weight,
                               self.var_weight, self.running_mean, self.running_var,
                               self.training, self.momentum, self.eps, self.using_bn)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"using_bn={self.using_bn}, affine={self.affine}")


class SwitchableNorm1d(_SwitchableNorm):
    """Switchable normalization of (N, C, L) input."""

    _ndims = (3,)


class SwitchableNorm2d(_SwitchableNorm):
    """Switchable normalization of (N, C, H, W) input (channels_last too)."""

    _ndims = (4,)


# --------------------------------------------------------------- patch ---

# torch's class -> fastnorm's subclass, which adds no state: patching swaps
# a module's class and keeps its parameter and buffer tensors
_PATCHES = {nn.LayerNorm: LayerNorm, nn.RMSNorm: RMSNorm, nn.BatchNorm1d: BatchNorm1d,
            nn.BatchNorm2d: BatchNorm2d, nn.BatchNorm3d: BatchNorm3d, nn.GroupNorm: GroupNorm,
            nn.InstanceNorm1d: InstanceNorm1d, nn.InstanceNorm2d: InstanceNorm2d,
            nn.InstanceNorm3d: InstanceNorm3d, nn.LocalResponseNorm: LocalResponseNorm}
_UNPATCHES = {ours: theirs for theirs, ours in _PATCHES.items()}


def _swap(model, table, name):
    if not isinstance(model, nn.Module):
        raise TypeError(f"{name} takes a torch.nn.Module, got {type(model).__name__}")
    swapped = []
    for path, module in model.named_modules():
        new_class = table.get(type(module))  # exact type: a user's subclass is left alone
        if new_class is not None:
            module.__class__ = new_class
            swapped.append(path)
    return swapped


def patch(model):
    """Make every torch norm module in `model` (LayerNorm, RMSNorm, BatchNorm1d/2d/3d,
    GroupNorm, InstanceNorm1d/2d/3d, LocalResponseNorm) compute with fastnorm, in
    place: each becomes fastnorm's subclass of its class, with the same
    parameters and buffers (no copy). Subclasses of those classes are left
    alone. Returns the names (as `model.named_modules()` gives them) of the
    modules it changed."""
    return _swap(model, _PATCHES, "patch")


def unpatch(model):
    """Undo `patch`: every fastnorm module of `model` that patch can make
    becomes torch's class again. Returns the names of the modules changed."""
    return _swap(model, _UNPATCHES, "unpatch")

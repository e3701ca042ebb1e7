"""GPU benchmark of fastnorm's kernels beside their peers, on one device.

    python benches/gpu/bench_gpu.py --out DIR [--quick] [--repeats 10] [--warmup 3]
                                    [--groups rows,rows-extra,columns,channels]

What is measured (fastnorm through fastnorm._cuda._launch, the peers on the
same device arrays; CUDA events around each call, host-side glue included;
a warm-up, then the median of --repeats runs, fastnorm and the peer
interleaved round by round, the L2 cache overwritten before every run):

- copy: the device's copy bandwidth, cupy.copyto of a 2 GiB array (read +
  write bytes / time), measured in the same run: the yardstick of every
  "% of copy" below;
- rows: layer_norm and rms_norm forward and backward (dx, dw, db) at
  32768 x 8192, float32 and float16, vs torch.nn.functional.layer_norm /
  rms_norm (backward: torch.autograd.grad on a retained graph, the backward
  alone);
- rows-extra: layer_norm float32 at the other shapes of the GPU review
  ((4096, 65536), (1M, 1024), (1M, 1025), (10M, 64)), backward with and
  without dw/db;
- columns: at 10M x 64 float32, the statistics passes of StandardScaler
  (column moments) and MinMaxScaler (col_min_max) and row moments, vs plain
  CuPy (X.var(0), X.min(0) / X.max(0), X.var(1)); the apply pass
  (`_launch.affine`) vs (X - mean) * scale; the whole fit_transform
  equivalents (statistics, then affine) vs the plain CuPy expressions
  (X - X.mean(0)) / X.std(0) and its min-max twin;
- channels: batch_norm in training mode (channel_moments + channel_affine;
  backward channel_dot_sums + channel_backward) on (256, 64, 56, 56) NCHW
  (statistics per (n, c) over H*W, X3 = (N*C, H*W, 1), merged over N) and
  channels-last (X3 = (1, N*H*W, C)), and NCHW (2048, 64, 7, 7); group_norm
  (32 groups) and local_response_norm forward and backward, all vs torch.

Achieved bandwidth = minimal bytes moved / time: a one-pass kernel (row
norms forward, group_norm, LRN forward, the apply pass) reads x and writes
y; a row-norm or LRN backward reads dy and x and writes dx; a statistics
pass reads x; where the statistics of the whole input come before any
output (fit_transform, batch_norm forward) x is read twice and y written,
and batch_norm backward reads dy and x twice and writes dx. "rel diff" is
max |fastnorm - peer| / max(1, max |peer|) of the main output, a sanity
check that both compute the same thing.

Targets (GitHub issue 13): forward >= 85% of copy bandwidth, backward >= 70%,
both faster than torch; scalers (fit_transform) >= 2.5x the plain CuPy
expression; statistics pass >= 80% of copy bandwidth. The table's last
column says whether a case meets its target.

Writes DIR/gpu_bench.json (every number, every run's time) and
DIR/gpu_bench.md (the table), and prints the table. Without torch the peer
columns of the torch cases stay empty. --quick: small sizes (a smoke run).
"""
import argparse
import dataclasses
import datetime
import gc
import importlib.util
import json
import pathlib
import platform
import statistics
import sys
import time
import traceback

import numpy as np

if importlib.util.find_spec("fastnorm") is None:  # not installed: the checkout's
    sys.path.append(str(pathlib.Path(__file__).resolve().parents[2]))

from fastnorm._cuda import _launch  # noqa: E402

EPS = 1e-5
GROUPS = ("rows", "rows-extra", "columns", "channels")

SIZES = {
    "full": dict(
        copy_bytes=2 * 2**30,
        rows=(32768, 8192),
        rows_extra=[(4096, 65536), (1048576, 1024), (1048576, 1025), (10_000_000, 64)],
        columns=(10_000_000, 64),
        nchw=(256, 64, 56, 56),
        nchw_short=(2048, 64, 7, 7),
        lrn=(256, 96, 55, 55),
    ),
    "quick": dict(
        copy_bytes=64 * 2**20,
        rows=(1024, 1024),
        rows_extra=[(64, 8192), (2048, 1025)],
        columns=(200_000, 64),
        nchw=(8, 64, 28, 28),
        nchw_short=(64, 64, 7, 7),
        lrn=(8, 96, 27, 27),
    ),
}
# Written before every timed run: evicts the inputs from the L2 cache (tens of MB)
# and keeps the GPU busy while the host enqueues the timed calls, so that the
# host's launch overhead hides behind it as it does in a real pipeline.
L2_FLUSH_BYTES = 1 * 2**30

# kind -> (minimal % of copy bandwidth, minimal speed-up over the peer), None: no target
TARGETS = {
    "forward": (85.0, 1.0),
    "backward": (70.0, 1.0),
    "stats": (80.0, None),
    "scaler": (None, 2.5),
    "channels": (None, 1.0),
    "apply": (None, None),
}


@dataclasses.dataclass
class Case:
    name: str
    kind: str  # a key of TARGETS
    dtype: str
    shape: tuple
    bytes: int  # minimal bytes moved
    fast: object  # () -> main output (CuPy array)
    peer: object = None  # () -> main output (CuPy array or torch tensor), None: no peer
    peer_name: str = ""
    peer_lib: str = "cupy"  # which library's events time the peer
    peer_view: object = None  # torch output -> the layout of fastnorm's output


class Bench:
    def __init__(self, args):
        import cupy
        self.cp = cupy
        self.args = args
        self.sizes = SIZES["quick" if args.quick else "full"]
        try:
            import torch
            import torch.nn.functional as F
            if not torch.cuda.is_available():
                raise ImportError("torch without CUDA")
            torch.backends.cudnn.benchmark = False
            self.torch, self.F = torch, F
        except Exception as err:  # no torch: the peer columns stay empty
            print(f"torch unavailable ({err}): no torch peers", flush=True)
            self.torch = self.F = None
        self.scratch = cupy.empty(L2_FLUSH_BYTES // 4, np.float32)
        self.rng = cupy.random.RandomState(2024)

    # ------------------------------------------------------------ timing ---
    def sync(self):
        self.cp.cuda.Device().synchronize()

    def flush(self):
        """Wait for the device, then enqueue the L2 flush (no wait: the
        timed call is enqueued behind it)."""
        self.sync()
        self.scratch.fill(1)

    def time_cupy(self, fn):
        cp = self.cp
        start, end = cp.cuda.Event(), cp.cuda.Event()
        start.record()
        fn()
        end.record()
        end.synchronize()
        return cp.cuda.get_elapsed_time(start, end)

    def time_torch(self, fn):
        torch = self.torch
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)

    def measure(self, fast, peer=None, peer_lib="cupy"):
        """(fastnorm run times, peer run times) in ms, interleaved."""
        peer_timer = self.time_torch if peer_lib == "torch" else self.time_cupy
        for _ in range(self.args.warmup):
            fast()
            if peer is not None:
                peer()
        self.sync()
        f, p = [], []
        for r in range(self.args.repeats):
            order = [(fast, self.time_cupy, f)]
            if peer is not None:
                order.append((peer, peer_timer, p))
            if r % 2:
                order.reverse()
            for fn, timer, acc in order:
                self.flush()
                acc.append(timer(fn))
        return f, p

    # -------------------------------------------------------------- data ---
    def randn(self, shape, dtype, loc=0.0, scale=1.0):
        """Normal random values in `dtype` (generated as float32, an even count
        of them, as cuRAND's normal generator wants)."""
        size = int(np.prod(shape))
        a = self.rng.standard_normal((size + size % 2,), dtype=np.float32)[:size]
        if loc != 0.0 or scale != 1.0:
            a *= np.float32(scale)
            a += np.float32(loc)
        return a.astype(dtype, copy=False).reshape(shape)

    def t(self, a):
        """A CuPy array as a torch tensor (no copy)."""
        return self.torch.from_dlpack(a)

    def as_cupy(self, out, view=None):
        if self.torch is not None and isinstance(out, self.torch.Tensor):
            out = out.detach()
            if view is not None:
                out = view(out)
            return self.cp.from_dlpack(out.contiguous())
        return out

    def rel_diff(self, case):
        cp = self.cp
        a = case.fast()
        b = self.as_cupy(case.peer(), case.peer_view)
        a = a.reshape(-1).astype(np.float32)
        b = b.reshape(-1).astype(np.float32)
        if a.size != b.size:
            return None
        scale = max(1.0, float(cp.max(cp.abs(b))))
        return float(cp.max(cp.abs(a - b))) / scale

    def free(self):
        gc.collect()
        self.cp.get_default_memory_pool().free_all_blocks()
        if self.torch is not None:
            self.torch.cuda.empty_cache()

    # ------------------------------------------------------------ groups ---
    def copy_bandwidth(self):
        cp = self.cp
        n = self.sizes["copy_bytes"] // 4
        src = self.randn((n,), np.float32)
        dst = cp.empty_like(src)
        runs, _ = self.measure(lambda: cp.copyto(dst, src))
        ms = statistics.median(runs)
        nbytes = 2 * src.nbytes
        del src, dst
        self.free()
        return dict(bytes=nbytes, ms=ms, gbps=nbytes / ms / 1e6, runs_ms=runs)

    def row_cases(self, shape, dtype, norms=("layer_norm", "rms_norm"),
                  grads=((True, "dx, dw, db"),)):
        F = self.F
        n_rows, n = shape
        dt = np.dtype(dtype).name
        x, dy = self.randn(shape, dtype), self.randn(shape, dtype)
        w, b = self.randn((n,), dtype, 1.0, 0.1), self.randn((n,), dtype, 0.0, 0.1)
        nb = x.nbytes
        for norm in norms:
            rms = norm == "rms_norm"
            bias = None if rms else b
            has_peer = F is not None and hasattr(F, norm)

            def fast_fwd(rms=rms, bias=bias):
                return _launch.row_norm_forward(x, w, bias, EPS, rms)[0]

            peer_fwd = None
            if has_peer:
                xt, wt = self.t(x), self.t(w)
                bt = None if bias is None else self.t(bias)

                def peer_fwd(rms=rms, xt=xt, wt=wt, bt=bt):
                    if rms:
                        return F.rms_norm(xt, (n,), wt, EPS)
                    return F.layer_norm(xt, (n,), wt, bt, EPS)
            yield Case(f"{norm} fwd {n_rows}x{n}", "forward", dt, shape, 2 * nb, fast_fwd,
                       peer_fwd, "torch" if has_peer else "", "torch")

            def api_fwd(rms=rms, bias=bias):  # the public function: its checks included
                import fastnorm.functional as fnf
                if rms:
                    return fnf.rms_norm(x, (n,), w, EPS)
                return fnf.layer_norm(x, (n,), w, bias, EPS)
            yield Case(f"{norm} fwd (fastnorm.functional) {n_rows}x{n}", "forward", dt, shape,
                       2 * nb, api_fwd, peer_fwd, "torch" if has_peer else "", "torch")

            _, mean, rstd = _launch.row_norm_forward(x, w, bias, EPS, rms)
            for params, what in grads:
                want = (params, params and not rms)

                def fast_bwd(rms=rms, want=want, mean=mean, rstd=rstd):
                    return _launch.row_norm_backward(dy, x, w, mean, rstd, rms, *want)[0]

                peer_bwd = None
                if has_peer:
                    xg = self.t(x).detach().requires_grad_(True)
                    wg = self.t(w).detach().requires_grad_(params)
                    bg = None if bias is None else self.t(bias).detach().requires_grad_(params)
                    with self.torch.enable_grad():
                        y = (F.rms_norm(xg, (n,), wg, EPS) if rms
                             else F.layer_norm(xg, (n,), wg, bg, EPS))
                    inputs = tuple(a for a in (xg, wg, bg) if a is not None and a.requires_grad)
                    dyt = self.t(dy)

                    def peer_bwd(y=y, inputs=inputs, dyt=dyt):
                        return self.torch.autograd.grad(y, inputs, dyt, retain_graph=True)[0]
                what = "dx, dw" if rms and params else what
                yield Case(f"{norm} bwd ({what}) {n_rows}x{n}", "backward", dt, shape, 3 * nb,
                           fast_bwd, peer_bwd, "torch" if has_peer else "", "torch")

    def group_rows(self):
        for dtype in (np.float32, np.float16):
            yield from self.row_cases(self.sizes["rows"], dtype)
            self.free()

    def group_rows_extra(self):
        for shape in self.sizes["rows_extra"]:
            yield from self.row_cases(shape, np.float32, ("layer_norm",),
                                      ((True, "dx, dw, db"), (False, "dx")))
            self.free()

    def group_columns(self):
        cp = self.cp
        shape = self.sizes["columns"]
        X = self.randn(shape, np.float32, 0.5, 2.0)
        nb, label = X.nbytes, f"{shape[0]}x{shape[1]}"

        def fast_moments():
            count, _, m2 = _launch.moments(X, 0)
            return m2 / count
        yield Case(f"column moments (StandardScaler statistics) {label}", "stats", "float32",
                   shape, nb, fast_moments, lambda: X.var(0), "cupy X.var(0)")

        def fast_min_max():
            return _launch.col_min_max(X)[0]

        def peer_min_max():
            mn = X.min(0)
            X.max(0)
            return mn
        yield Case(f"col_min_max (MinMaxScaler statistics) {label}", "stats", "float32", shape,
                   nb, fast_min_max, peer_min_max, "cupy X.min(0), X.max(0)")

        def fast_row_moments():
            count, _, m2 = _launch.moments(X, 1)
            return m2 / count
        yield Case(f"row moments {label}", "stats", "float32", shape, nb, fast_row_moments,
                   lambda: X.var(1), "cupy X.var(1)")

        count, mean, m2 = _launch.moments(X, 0)
        scale = 1.0 / cp.sqrt(m2 / count)
        mean32, scale32 = mean.astype(np.float32), scale.astype(np.float32)
        yield Case(f"affine per column (apply pass) {label}", "apply", "float32", shape, 2 * nb,
                   lambda: _launch.affine(X, 0, mean, scale, 0.0)[0],
                   lambda: (X - mean32) * scale32, "cupy (X - mean) * scale")

        def fast_standard():
            count, mean, m2 = _launch.moments(X, 0)
            std = cp.sqrt(m2 / count)
            std[std == 0] = 1.0
            return _launch.affine(X, 0, mean, 1.0 / std, 0.0)[0]
        yield Case(f"StandardScaler fit_transform {label}", "scaler", "float32", shape, 3 * nb,
                   fast_standard, lambda: (X - X.mean(0)) / X.std(0),
                   "cupy (X - X.mean(0)) / X.std(0)")
        import fastnorm.preprocessing as fp  # the public transformers, checks included
        yield Case(f"StandardScaler().fit_transform (fastnorm.preprocessing) {label}", "scaler",
                   "float32", shape, 3 * nb, lambda: fp.StandardScaler().fit_transform(X),
                   lambda: (X - X.mean(0)) / X.std(0), "cupy (X - X.mean(0)) / X.std(0)")

        def fast_minmax():
            mn, mx, _ = _launch.col_min_max(X)
            rng = mx - mn
            rng[rng == 0] = 1.0
            return _launch.affine(X, 0, mn, 1.0 / rng, 0.0)[0]

        def peer_minmax():
            mn = X.min(0)
            return (X - mn) / (X.max(0) - mn)
        yield Case(f"MinMaxScaler fit_transform {label}", "scaler", "float32", shape, 3 * nb,
                   fast_minmax, peer_minmax, "cupy (X - X.min(0)) / (X.max(0) - X.min(0))")
        yield Case(f"MinMaxScaler().fit_transform (fastnorm.preprocessing) {label}", "scaler",
                   "float32", shape, 3 * nb, lambda: fp.MinMaxScaler().fit_transform(X),
                   peer_minmax, "cupy (X - X.min(0)) / (X.max(0) - X.min(0))")
        del X
        self.free()

    # batch_norm (training) glue around the channel kernels
    def _bn_nchw(self, X, w, b):
        cp = self.cp
        N, C = X.shape[:2]
        S = X.size // (N * C)
        X3 = X.reshape(N * C, S, 1)
        mean, m2 = _launch.channel_moments(X3)  # per (n, c)
        mean, m2 = mean.reshape(N, C), m2.reshape(N, C)
        mu = mean.mean(0)
        var = (m2.sum(0) + S * ((mean - mu) ** 2).sum(0)) / (N * S)
        rstd = 1.0 / cp.sqrt(var + EPS)

        def per(v):
            return cp.broadcast_to(v, (N, C)).reshape(N * C, 1)
        y = _launch.channel_affine(X3, per(mu), per(rstd * w), per(b))
        return y.reshape(X.shape), mu, rstd

    def _bn_nchw_backward(self, dY, X, w, mu, rstd):
        cp = self.cp
        N, C = X.shape[:2]
        S = X.size // (N * C)
        X3, dY3 = X.reshape(N * C, S, 1), dY.reshape(N * C, S, 1)

        def per(v):
            return cp.broadcast_to(v, (N, C)).reshape(N * C, 1)
        sdy, sdyx = _launch.channel_dot_sums(dY3, X3, per(mu))
        sdy, sdyx = sdy.reshape(N, C).sum(0), sdyx.reshape(N, C).sum(0)
        M = N * S
        p = w * rstd
        q = -p * rstd * rstd * sdyx / M
        r = -p * sdy / M
        return _launch.channel_backward(dY3, X3, per(mu), per(p), per(q), per(r)).reshape(X.shape)

    def _bn_nhwc(self, X, w, b):
        cp = self.cp
        C = X.shape[-1]
        X3 = X.reshape(1, X.size // C, C)
        mean, m2 = _launch.channel_moments(X3)  # (1, C)
        rstd = 1.0 / cp.sqrt(m2 / X3.shape[1] + EPS)
        return _launch.channel_affine(X3, mean, rstd * w, b).reshape(X.shape), mean, rstd

    def _bn_nhwc_backward(self, dY, X, w, mean, rstd):
        C = X.shape[-1]
        X3, dY3 = X.reshape(1, X.size // C, C), dY.reshape(1, X.size // C, C)
        sdy, sdyx = _launch.channel_dot_sums(dY3, X3, mean)
        M = X3.shape[1]
        p = w * rstd
        q = -p * rstd * rstd * sdyx / M
        r = -p * sdy / M
        return _launch.channel_backward(dY3, X3, mean, p, q, r).reshape(X.shape)

    def _torch_bn(self, xt, wt, bt, grad):
        """torch's batch_norm in training mode: y, and its inputs when grad."""
        torch, F = self.torch, self.F
        if not grad:
            with torch.no_grad():
                return F.batch_norm(xt, None, None, wt, bt, True, 0.1, EPS), ()
        xg, wg, bg = (a.detach().requires_grad_(True) for a in (xt, wt, bt))
        with torch.enable_grad():
            y = F.batch_norm(xg, None, None, wg, bg, True, 0.1, EPS)
        return y, (xg, wg, bg)

    def batch_norm_cases(self, shape, layout, backward=True):
        torch = self.torch
        N, C, H, W = shape
        has_peer = torch is not None
        peer_name = "torch" if has_peer else ""
        store = (N, H, W, C) if layout == "NHWC" else shape
        X = self.randn(store, np.float32, 0.5, 2.0)
        dY = self.randn(store, np.float32) if backward else None
        w, b = self.randn((C,), np.float32, 1.0, 0.1), self.randn((C,), np.float32, 0.0, 0.1)
        nb, label = X.nbytes, f"{layout} {N}x{C}x{H}x{W}"
        forward = self._bn_nhwc if layout == "NHWC" else self._bn_nchw
        back = self._bn_nhwc_backward if layout == "NHWC" else self._bn_nchw_backward
        # the kernels alone on the same data: a statistics pass and an apply pass
        X3 = X.reshape(1, N * H * W, C) if layout == "NHWC" else X.reshape(N * C, H * W, 1)
        x3 = "x".join(map(str, X3.shape))
        yield Case(f"channel_moments {label} (X3 {x3})", "stats", "float32", X3.shape, nb,
                   lambda: _launch.channel_moments(X3)[1])
        mean3, m2_3 = _launch.channel_moments(X3)
        scale3 = 1.0 / self.cp.sqrt(m2_3 / X3.shape[1] + EPS)
        yield Case(f"channel_affine {label} (X3 {x3})", "apply", "float32", X3.shape, 2 * nb,
                   lambda: _launch.channel_affine(X3, mean3, scale3, 0.0))
        del mean3, m2_3, scale3

        # torch's view: NCHW, channels-last strides for NHWC data
        xt = dyt = wt = bt = None
        view = None
        if has_peer:
            xt = self.t(X).permute(0, 3, 1, 2) if layout == "NHWC" else self.t(X)
            wt, bt = self.t(w), self.t(b)
            if backward:
                dyt = self.t(dY).permute(0, 3, 1, 2) if layout == "NHWC" else self.t(dY)
            if layout == "NHWC":
                def view(t):
                    return t.permute(0, 2, 3, 1)

        peer = None
        if has_peer:
            def peer():
                return self._torch_bn(xt, wt, bt, False)[0]
        yield Case(f"batch_norm fwd {label}", "channels", "float32", store, 3 * nb,
                   lambda: forward(X, w, b)[0], peer, peer_name, "torch", view)

        def api():  # the public function (training, no running statistics)
            import fastnorm.functional as fnf
            return fnf.batch_norm(X, None, None, w, b, training=True, eps=EPS, layout=layout)
        yield Case(f"batch_norm fwd (fastnorm.functional) {label}", "channels", "float32", store,
                   3 * nb, api, peer, peer_name, "torch", view)
        if not backward:
            return
        _, mu, rstd = forward(X, w, b)
        peer = None
        if has_peer:
            y, inputs = self._torch_bn(xt, wt, bt, True)

            def peer():
                return torch.autograd.grad(y, inputs, dyt, retain_graph=True)[0]
        yield Case(f"batch_norm bwd (dx, dw, db) {label}", "channels", "float32", store,
                   5 * nb, lambda: back(dY, X, w, mu, rstd), peer, peer_name, "torch", view)

    def group_norm_case(self, shape, groups=32):
        cp, F = self.cp, self.F
        N, C, H, W = shape
        S, cg = H * W, C // groups
        X = self.randn(shape, np.float32, 0.5, 2.0)
        w, b = self.randn((C,), np.float32, 1.0, 0.1), self.randn((C,), np.float32, 0.0, 0.1)

        def fast():
            mean, m2 = _launch.channel_moments(X.reshape(N * groups, cg * S, 1))
            rstd = 1.0 / cp.sqrt(m2 / (cg * S) + EPS)
            shift = cp.repeat(mean.reshape(N, groups), cg, axis=1).reshape(N * C, 1)
            scale = (cp.repeat(rstd.reshape(N, groups), cg, axis=1) * w).reshape(N * C, 1)
            offset = cp.broadcast_to(b, (N, C)).reshape(N * C, 1)
            return _launch.channel_affine(X.reshape(N * C, S, 1), shift, scale, offset)

        peer = None
        if F is not None:
            xt, wt, bt = self.t(X), self.t(w), self.t(b)

            def peer():
                return F.group_norm(xt, groups, wt, bt, EPS)
        yield Case(f"group_norm fwd ({groups} groups) NCHW {N}x{C}x{H}x{W}", "channels",
                   "float32", shape, 2 * X.nbytes, fast, peer, "torch" if F else "", "torch")

        def api():
            import fastnorm.functional as fnf
            return fnf.group_norm(X, groups, w, b, EPS)
        yield Case(f"group_norm fwd (fastnorm.functional) ({groups} groups) NCHW "
                   f"{N}x{C}x{H}x{W}", "channels", "float32", shape, 2 * X.nbytes, api, peer,
                   "torch" if F else "", "torch")

    def lrn_cases(self, shape, size=5, alpha=1e-4, beta=0.75, k=2.0):
        torch, F = self.torch, self.F
        N, C, H, W = shape
        X = self.randn(shape, np.float32, 0.5, 2.0)
        dY = self.randn(shape, np.float32)
        X3, dY3 = X.reshape(N, C, H * W), dY.reshape(N, C, H * W)
        nb, label = X.nbytes, f"{N}x{C}x{H}x{W}"
        peer = None
        if F is not None:
            xt = self.t(X)

            def peer():
                return F.local_response_norm(xt, size, alpha, beta, k)
        yield Case(f"local_response_norm fwd {label}", "forward", "float32", shape, 2 * nb,
                   lambda: _launch.lrn_forward(X3, size, alpha, beta, k), peer,
                   "torch" if F else "", "torch")
        if F is not None:
            xg = self.t(X).detach().requires_grad_(True)
            with torch.enable_grad():
                y = F.local_response_norm(xg, size, alpha, beta, k)
            dyt = self.t(dY)

            def peer():
                return torch.autograd.grad(y, (xg,), dyt, retain_graph=True)[0]
        yield Case(f"local_response_norm bwd {label}", "backward", "float32", shape, 3 * nb,
                   lambda: _launch.lrn_backward(dY3, X3, size, alpha, beta, k), peer,
                   "torch" if F else "", "torch")

    def group_channels(self):
        s = self.sizes
        for layout in ("NCHW", "NHWC"):
            yield from self.batch_norm_cases(s["nchw"], layout)
            self.free()
        yield from self.batch_norm_cases(s["nchw_short"], "NCHW", backward=False)
        self.free()
        yield from self.group_norm_case(s["nchw"])
        self.free()
        yield from self.lrn_cases(s["lrn"])
        self.free()


# ------------------------------------------------------------------ report ---

def evaluate(row):
    """(target text, met: True/False/None) of a result row."""
    pct_min, speed_min = TARGETS.get(row["kind"], (None, None))
    parts, met = [], None
    if pct_min is not None:
        parts.append(f">= {pct_min:g}% copy")
        if row.get("pct_copy") is not None:
            met = row["pct_copy"] >= pct_min
    if speed_min is not None and row.get("peer_ms") is not None:
        parts.append(f">= {speed_min:g}x peer" if speed_min != 1.0 else "faster than peer")
        ok = row["speedup"] >= speed_min if speed_min != 1.0 else row["speedup"] > 1.0
        met = ok if met is None else (met and ok)
    return ", ".join(parts), met


def fmt(v, spec):
    return "" if v is None else format(v, spec)


def markdown(result):
    copy = result.get("copy") or {}
    lines = [
        f"GPU benchmark: {result['meta'].get('device', '?')}, "
        f"copy bandwidth {fmt(copy.get('gbps'), '.0f')} GB/s "
        f"(cupy.copyto of a {fmt(copy.get('bytes', 0) / 2 / 2**30, '.2f')} GiB array, "
        "read + write bytes / time), "
        f"median of {result['meta']['repeats']} runs",
        "",
        "| case | dtype | peer | fastnorm ms | peer ms | speed-up | fastnorm GB/s | "
        "% of copy | rel diff | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in result["cases"]:
        if r.get("error"):
            lines.append(f"| {r['name']} | {r['dtype']} | {r.get('peer', '')} | "
                         f"ERROR: {r['error'].splitlines()[-1][:120]} | | | | | | |")
            continue
        target, met = r.get("target", ""), r.get("target_met")
        status = "" if met is None else (" ok" if met else " MISSED")
        lines.append(
            f"| {r['name']} | {r['dtype']} | {r.get('peer', '')} | "
            f"{fmt(r['fastnorm_ms'], '.3f')} | {fmt(r.get('peer_ms'), '.3f')} | "
            f"{fmt(r.get('speedup'), '.2f')} | {fmt(r['fastnorm_gbps'], '.0f')} | "
            f"{fmt(r.get('pct_copy'), '.0f')} | {fmt(r.get('rel_diff'), '.1e')} | "
            f"{target}{status} |")
    return "\n".join(lines) + "\n"


def meta(bench, args):
    cp = bench.cp
    m = dict(date=datetime.datetime.now().isoformat(timespec="seconds"),
             python=platform.python_version(), cupy=getattr(cp, "__version__", "?"),
             quick=args.quick, repeats=args.repeats, warmup=args.warmup)
    try:
        dev = cp.cuda.runtime.getDevice()
        props = cp.cuda.runtime.getDeviceProperties(dev)
        name = props["name"]
        m.update(device=name.decode() if isinstance(name, bytes) else name,
                 sm_count=props["multiProcessorCount"],
                 memory_gib=round(props["totalGlobalMem"] / 2**30, 1),
                 l2_mib=round(props.get("l2CacheSize", 0) / 2**20, 1),
                 cuda_runtime=cp.cuda.runtime.runtimeGetVersion(),
                 cuda_driver=cp.cuda.runtime.driverGetVersion())
    except Exception as err:
        m["device_error"] = repr(err)
    if bench.torch is not None:
        m.update(torch=bench.torch.__version__, torch_cuda=bench.torch.version.cuda)
    return m


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, required=True, help="output directory")
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed runs per case (default 10, 5 with --quick)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--groups", default=",".join(GROUPS),
                        help=f"comma-separated groups to run (default: {','.join(GROUPS)})")
    args = parser.parse_args(argv)
    groups = [g for g in args.groups.split(",") if g]
    unknown = set(groups) - set(GROUPS)
    if unknown:
        parser.error(f"unknown groups {sorted(unknown)}; known: {', '.join(GROUPS)}")
    if args.repeats is None:
        args.repeats = 5 if args.quick else 10
    args.out.mkdir(parents=True, exist_ok=True)

    bench = Bench(args)
    result = dict(meta=meta(bench, args), copy=None, cases=[])
    print(json.dumps(result["meta"]), flush=True)

    def save():
        (args.out / "gpu_bench.json").write_text(json.dumps(result, indent=1))
        (args.out / "gpu_bench.md").write_text(markdown(result))

    start = time.perf_counter()
    try:
        result["copy"] = bench.copy_bandwidth()
        print(f"copy bandwidth: {result['copy']['gbps']:.0f} GB/s", flush=True)
    except Exception:
        result["copy_error"] = traceback.format_exc()
        print(result["copy_error"], flush=True)
    copy_gbps = (result["copy"] or {}).get("gbps")

    failures = 0
    for group in groups:
        cases = getattr(bench, "group_" + group.replace("-", "_"))()
        while True:
            row = dict(group=group)
            try:
                case = next(cases)
            except StopIteration:
                break
            except Exception:  # setting up the group failed: skip the rest of it
                row.update(name=f"{group} (set-up)", dtype="", error=traceback.format_exc())
                print(row["error"], flush=True)
                result["cases"].append(row)
                failures += 1
                break
            row.update(name=case.name, kind=case.kind, dtype=case.dtype, shape=list(case.shape),
                       bytes=case.bytes, peer=case.peer_name)
            try:
                f, p = bench.measure(case.fast, case.peer, case.peer_lib)
                ms = statistics.median(f)
                row.update(fastnorm_ms=ms, fastnorm_runs_ms=f,
                           fastnorm_gbps=case.bytes / ms / 1e6)
                if copy_gbps:
                    row["pct_copy"] = 100.0 * row["fastnorm_gbps"] / copy_gbps
                if p:
                    pms = statistics.median(p)
                    row.update(peer_ms=pms, peer_runs_ms=p, speedup=pms / ms,
                               peer_gbps=case.bytes / pms / 1e6)
                    try:
                        row["rel_diff"] = bench.rel_diff(case)
                    except Exception as err:
                        row["rel_diff_error"] = repr(err)
            except Exception:
                row["error"] = traceback.format_exc()
                print(row["error"], flush=True)
                failures += 1
            row["target"], row["target_met"] = evaluate(row)
            result["cases"].append(row)
            peer = (f"{row['peer']} {row['peer_ms']:.3f} ms" if row.get("peer_ms") is not None
                    else "no peer")
            print(f"{row['name']} [{row['dtype']}]: fastnorm {fmt(row.get('fastnorm_ms'), '.3f')}"
                  f" ms, {peer}, {fmt(row.get('pct_copy'), '.0f')}% of copy", flush=True)
            del case
            save()
        del cases
        bench.free()
    result["meta"]["seconds"] = round(time.perf_counter() - start, 1)
    save()
    print()
    print(markdown(result), flush=True)
    return 1 if failures or result["copy"] is None else 0


if __name__ == "__main__":
    sys.exit(main())

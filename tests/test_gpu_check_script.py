"""The GPU device check (benches/gpu/), checked on a CPU: check.sh parses and,
in a dry run, runs every step with the right command; launch_all.py launches
every name expression of _loader.FAMILIES (planned, and in a dry run of the
real launch helpers against a recording stand-in for CuPy that executes
nothing); bench_gpu.py imports without CuPy and judges targets as stated.
"""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fastnorm._cuda import _launch, _loader

ROOT = Path(__file__).resolve().parents[1]
GPU = ROOT / "benches" / "gpu"
CHECK = GPU / "check.sh"
BASH = shutil.which("bash")

EVERY = {(family, e) for family, exprs in _loader.FAMILIES.items() for e in exprs}


def load(name):
    spec = importlib.util.spec_from_file_location(f"_gpu_check_{name}", GPU / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- check.sh ---

def test_check_script_parses_and_is_executable():
    assert BASH, "bash is needed to run benches/gpu/check.sh"
    proc = subprocess.run([BASH, "-n", str(CHECK)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert os.access(CHECK, os.X_OK)


def code_of(path):
    """The script without its comment lines."""
    return "\n".join(line for line in path.read_text().splitlines()
                     if not line.lstrip().startswith("#"))


def test_check_script_names_every_step():
    code = code_of(CHECK)
    for needed in ("benches/gpu/launch_all.py", "benches/gpu/bench_gpu.py",
                   "tests/test_gpu_", "-m pytest", "nvidia-smi", "compute-sanitizer",
                   "--tool memcheck", "--tool racecheck", "--tool initcheck",
                   "fastnorm._cuda.check --compiler nvrtc",
                   "pip install --no-build-isolation --no-deps",
                   "timeout", "summary.txt"):
        assert needed in code, needed


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    """(summary lines by step, OUTDIR) of a CHECK_DRY_RUN=1 run of check.sh."""
    out = tmp_path_factory.mktemp("gpu-check")
    env = dict(os.environ, CHECK_DRY_RUN="1", JOBS="16", PYTHON=sys.executable)
    proc = subprocess.run([BASH, str(CHECK), str(out)], capture_output=True, text=True,
                          env=env, cwd="/", timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {}
    for line in (out / "summary.txt").read_text().splitlines():
        if line and not line.startswith("#") and not line.startswith("step "):
            name, status = line.split()[:2]
            steps[name] = status
    return steps, out


STEPS = ["nvidia_smi", "versions", "cythonize", "pip_install", "import_fastnorm",
         "nvrtc_check", "launch_all", "pytest_gpu", "bench_gpu", "sanitizer_version",
         "sanitizer_probe", "memcheck", "racecheck", "initcheck"]


def test_dry_run_runs_every_step_in_order(dry_run):
    steps, out = dry_run
    assert list(steps) == STEPS
    assert set(steps.values()) == {"dry-run"}
    for name in STEPS:
        log = (out / f"{name}.log").read_text()
        assert "# command:" in log and "# limit:" in log and "# exit status: 0" in log


def command(out, step):
    return re.search(r"^# command: (.*)$", (out / f"{step}.log").read_text(), re.M)[1]


def test_dry_run_commands(dry_run):
    _, out = dry_run
    assert "launch_all.py --poison" in command(out, "launch_all")
    assert "bench_gpu.py --out " + str(out) in command(out, "bench_gpu")
    assert "-m fastnorm._cuda.check --compiler nvrtc" in command(out, "nvrtc_check")
    pytest_cmd = command(out, "pytest_gpu")
    assert "tests/test_gpu_kernels.py" in pytest_cmd and " -x " in pytest_cmd
    assert "test_gpu_check_script.py" not in pytest_cmd  # a CPU test
    for tool in ("memcheck", "racecheck", "initcheck"):
        cmd = command(out, tool)
        assert f"--tool {tool}" in cmd and "launch_all.py --no-pool" in cmd
    # the build: cythonize on all cores, then the C compile in parallel
    assert command(out, "cythonize").endswith(" 16")
    pip = command(out, "pip_install")
    assert "DIST_EXTRA_CONFIG=" in pip and "pip install --no-build-isolation --no-deps" in pip
    cfg = (out / "distutils-parallel.cfg").read_text()
    assert re.search(r"\[build\]\s*parallel = 16", cfg)
    assert re.search(r"\[build_ext\]\s*parallel = 16", cfg)


def test_dry_run_limits_fit_the_budget(dry_run):
    steps, out = dry_run
    limits = {}
    for line in (out / "summary.txt").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in steps:
            limits[parts[0]] = int(parts[4])
    # the benchmark keeps a real slot, the build about 3 minutes
    assert limits["bench_gpu"] >= 120
    assert limits["cythonize"] + limits["pip_install"] <= 300
    assert all(0 < v <= 200 for v in limits.values())


# ----------------------------------------------------------- launch_all.py ---

def test_launch_plan_covers_every_name_expression():
    la = load("launch_all")
    assert len(EVERY) == sum(len(v) for v in _loader.FAMILIES.values()) > 0
    assert la.all_expressions() == EVERY
    assert la.planned() == EVERY
    assert la.missing(la.planned()) == []


def test_missing_reports_an_uncovered_name_expression():
    la = load("launch_all")
    one = sorted(EVERY)[len(EVERY) // 2]
    assert la.missing(EVERY - {one}) == [one]
    without = [c for c in la.CASES if one[1].split("<")[0] not in c.kernels]
    assert len(without) < len(la.CASES)
    assert {(c.family, _loader.name_expression(k, d)) for c in without for k in c.kernels
            for d in la.DTYPES} != EVERY


class FakeArray(np.ndarray):
    """A host array posing as a CuPy array on device 0."""

    @property
    def device(self):
        return types.SimpleNamespace(id=0)


def _wrap(a):
    return np.asarray(a).view(FakeArray)


def fake_cupy():
    """What launch_all.py and fastnorm._cuda._launch use of CuPy, on the host."""
    cp = types.ModuleType("cupy")
    cp.ndarray = FakeArray
    cp.asarray = lambda a, dtype=None, **_: _wrap(np.array(a, dtype=dtype))
    cp.empty = lambda shape, dtype=float: _wrap(np.empty(shape, dtype))
    cp.zeros = lambda shape, dtype=float: _wrap(np.zeros(shape, dtype))
    cp.ones = lambda shape, dtype=float: _wrap(np.ones(shape, dtype))
    cp.full = lambda shape, value, dtype=None: _wrap(np.full(shape, value, dtype))
    cp.ascontiguousarray = lambda a, dtype=None: _wrap(np.ascontiguousarray(a, dtype))
    cp.broadcast_to = lambda a, shape: _wrap(np.broadcast_to(a, shape))
    cp.asnumpy = lambda a, **_: np.array(a)

    class Device:
        def __init__(self, device=0):
            self.id = device
            self.attributes = {"MultiProcessorCount": 132}

        def synchronize(self):
            pass

    cp.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(getDevice=lambda: 0),
                                    Device=Device, set_allocator=lambda allocator=None: None)
    return cp


class RecordingKernel:
    """Checks a launch's shapes and arguments and records it; runs nothing."""
    max_threads_per_block = 1024

    def __init__(self, family, expr, calls):
        self.family, self.expr, self.calls = family, expr, calls

    def __call__(self, grid, block, args, **_):
        assert isinstance(grid, tuple) and isinstance(block, tuple), self.expr
        assert all(int(g) >= 1 for g in grid), (self.expr, grid)
        assert 1 <= int(np.prod(block)) <= 1024, (self.expr, block)
        misaligned = False
        for a in args:
            if isinstance(a, np.ndarray):
                assert isinstance(a, FakeArray), f"{self.expr}: a host array as argument"
                assert a.flags.c_contiguous, self.expr
                misaligned |= a.ctypes.data % 16 != 0
            else:
                assert isinstance(a, np.generic), f"{self.expr}: argument {a!r}"
        self.calls.append((self.family, self.expr, grid, block, misaligned))


@pytest.fixture
def dry_launches(monkeypatch):
    """(outcomes, recorded launches) of launch_all.run on the fake CuPy."""
    la = load("launch_all")
    calls = []

    def get_kernel(family, expr):
        assert expr in _loader.FAMILIES[family]
        return RecordingKernel(family, expr, calls)

    cp = fake_cupy()
    monkeypatch.setitem(sys.modules, "cupy", cp)
    monkeypatch.setattr(_loader, "get_kernel", get_kernel)
    monkeypatch.setattr(_launch, "POISON", True)
    _launch._sm_count.cache_clear()
    try:
        outcomes = la.run(cp, check_values=False, log=lambda *_: None)
    finally:
        _launch._sm_count.cache_clear()
    return la, outcomes, calls


def test_dry_run_of_launch_all_launches_every_name_expression(dry_launches):
    la, outcomes, calls = dry_launches
    assert len(outcomes) == len(la.CASES) * len(la.DTYPES) * len(la.ALIGNMENTS)
    problems = [(o.case, o.dtype, o.misaligned, o.problems) for o in outcomes if o.problems]
    assert problems == []
    launched = set().union(*(o.launched for o in outcomes))
    assert launched == EVERY
    assert {(f, e) for f, e, *_ in calls} == EVERY  # the kernels were really called
    assert la.missing(launched) == []


def test_dry_run_takes_both_row_paths_and_misaligned_inputs(dry_launches):
    _, _, calls = dry_launches
    for kernel in ("layer_norm_fwd", "layer_norm_bwd", "row_moments"):
        blocks = {block for _, e, _, block, _ in calls if e.startswith(kernel + "<")}
        assert (_launch.WARP, _launch.ROWS_PER_BLOCK_WARP_MODE) in blocks, kernel  # warp per row
        assert any(b[1] == 1 for b in blocks), kernel  # block per row
    # every kernel that reads the inputs (all but the merges) saw a misaligned one
    reading = {e for _, e, *_ in calls if "_merge<" not in e}
    misaligned = {e for _, e, _, _, m in calls if m}
    assert reading and reading <= misaligned


# ------------------------------------------------------------- bench_gpu.py ---

def test_bench_imports_without_cupy_and_judges_targets():
    bench = load("bench_gpu")
    assert "issue 13" in bench.__doc__
    fwd = dict(kind="forward", pct_copy=90.0, peer_ms=1.2, speedup=1.2)
    assert bench.evaluate(fwd)[1] is True
    assert bench.evaluate(dict(fwd, pct_copy=84.0))[1] is False
    assert bench.evaluate(dict(fwd, speedup=0.9))[1] is False
    assert bench.evaluate(dict(kind="backward", pct_copy=71.0, peer_ms=1, speedup=1.1))[1]
    assert bench.evaluate(dict(kind="scaler", pct_copy=50.0, peer_ms=1, speedup=2.4))[1] is False
    assert bench.evaluate(dict(kind="scaler", pct_copy=50.0, peer_ms=1, speedup=2.6))[1] is True
    assert bench.evaluate(dict(kind="stats", pct_copy=79.0, peer_ms=1, speedup=3.0))[1] is False
    # no torch: no peer, the bandwidth target alone
    assert bench.evaluate(dict(kind="forward", pct_copy=90.0))[1] is True


def test_bench_markdown_table():
    bench = load("bench_gpu")
    row = dict(name="layer_norm fwd 32768x8192", kind="forward", dtype="float32", peer="torch",
               fastnorm_ms=0.5, peer_ms=0.6, speedup=1.2, fastnorm_gbps=4295.0,
               pct_copy=90.0, rel_diff=1e-6)
    row["target"], row["target_met"] = bench.evaluate(row)
    result = dict(meta=dict(device="H200", repeats=10),
                  copy=dict(bytes=2**32, gbps=4700.0),
                  cases=[row, dict(name="broken", dtype="float16", error="Traceback\nOops")])
    lines = bench.markdown(result).splitlines()
    header = next(line for line in lines if line.startswith("| case"))
    table = [line for line in lines if line.startswith("|")]
    assert all(line.count("|") == header.count("|") for line in table)
    for column in ("fastnorm ms", "peer ms", "speed-up", "fastnorm GB/s", "% of copy"):
        assert column in header
    assert "| 0.500 | 0.600 | 1.20 | 4295 | 90 |" in lines[4] and "ok" in lines[4]
    assert "ERROR: Oops" in lines[5]


def test_bench_help_runs_without_a_gpu():
    proc = subprocess.run([sys.executable, str(GPU / "bench_gpu.py"), "--help"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "--quick" in proc.stdout and "--out" in proc.stdout


def test_launch_all_runs_every_kernel_on_cudasim():
    """launch_all for real on the CPU execution of the CUDA sources: every
    name expression launched, every result finite (outputs poisoned)."""
    from cudasim import cupy_stub, installed
    la = load("launch_all")
    with installed(cupy_stub):
        _launch.POISON = True
        try:
            outcomes = la.run(cupy_stub, log=lambda *_: None)
        finally:
            _launch.POISON = False
    assert [(o.case, o.dtype, o.problems) for o in outcomes if o.problems] == []
    assert set().union(*(o.launched for o in outcomes)) == EVERY

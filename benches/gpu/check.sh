#!/usr/bin/env bash
# fastnorm's GPU device check: one command, under 8 minutes including the build,
# on a machine with one NVIDIA GPU (made for an H200: Python with cupy-cuda13x,
# torch, scikit-learn, cython, pytest, compute-sanitizer; no network).
#
#   bash benches/gpu/check.sh OUTDIR
#
# Steps, in order, each under `timeout` and logged to OUTDIR/<step>.log (the
# command, its output, its exit status and wall time); a failed step does not
# stop the others. OUTDIR/summary.txt collects status, exit status and wall
# time per step and is printed at the end.
#   nvidia_smi, versions       the device, driver, CUDA, CuPy, torch, ... versions
#   cythonize                  ext/*.pyx -> C, on all cores (setup.py's own
#                              cythonize call, with nthreads added)
#   pip_install                pip install --no-build-isolation --no-deps -e .
#                              with the C compile on all cores (a distutils config
#                              file, DIST_EXTRA_CONFIG, sets build/build_ext parallel)
#   build_ext_inplace          only when pip_install failed (not timed out):
#                              python setup.py build_ext --inplace -j JOBS
#   import_fastnorm            fastnorm and its CPU kernels import
#   nvrtc_check                python -m fastnorm._cuda.check --compiler nvrtc
#   launch_all                 every kernel of _loader.FAMILIES once, outputs poisoned
#   pytest_gpu                 pytest tests/test_gpu_*.py -x (GPU tests)
#   bench_gpu                  benches/gpu/bench_gpu.py --out OUTDIR
#   sanitizer_version, sanitizer_probe
#                              compute-sanitizer works here at all (a trivial CuPy run)
#   memcheck, racecheck, initcheck
#                              compute-sanitizer on benches/gpu/launch_all.py --no-pool
#                              (skipped when the probe failed)
# The benchmark runs before the sanitizers so that a slow sanitizer cannot cost
# the performance numbers; every step's time limit is also cut to what is left
# of the overall budget (CHECK_BUDGET_S), and earlier steps leave time for the
# benchmark.
#
# Environment:
#   PYTHON          the interpreter (default: python, else python3)
#   JOBS            parallel compile jobs (default: nproc)
#   CHECK_BUDGET_S  overall budget in seconds (default 450)
#   CHECK_DRY_RUN=1 write the logs and summary with the commands, run nothing
#                   (what tests/test_gpu_check_script.py checks on a CPU)
#
# Exit status: 0 when every step passed, 1 otherwise, 2 on a usage error.

set -u -o pipefail  # no -e: keep going after a failed step

OUTDIR=${1:-${OUT:-}}
if [ -z "$OUTDIR" ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
mkdir -p "$OUTDIR" || exit 2
OUTDIR=$(cd "$OUTDIR" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO" || exit 2

PYTHON=${PYTHON:-$(command -v python || command -v python3 || echo python)}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 16)}
BUDGET=${CHECK_BUDGET_S:-450}
DRY=${CHECK_DRY_RUN:-0}
START=$(date +%s)
DEADLINE=$((START + BUDGET))
SUMMARY=$OUTDIR/summary.txt
BENCH_TIME=130  # seconds the steps before the benchmark leave for it
SANITIZER_TIME=45  # seconds the benchmark leaves for the sanitizers

export PYTHONUNBUFFERED=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build, even if pip fails
export CUPY_CACHE_DIR=${CUPY_CACHE_DIR:-${TMPDIR:-/tmp}/fastnorm-cupy-kernel-cache}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 PIP_NO_INDEX=1  # no network here

{
    echo "# fastnorm GPU device check, $(date -u +%FT%TZ), host $(hostname 2>/dev/null)"
    echo "# repo $REPO, commit $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "# python $PYTHON, jobs $JOBS, budget ${BUDGET}s$([ "$DRY" = 1 ] && echo ', DRY RUN')"
    printf '%-20s %-8s %5s %8s %8s\n' step status rc wall_s limit_s
} > "$SUMMARY"

declare -A RC=()  # exit status per step
FAILED=0

now() { date +%s.%N; }

# step NAME CAP RESERVE COMMAND...: run COMMAND under timeout, for at most CAP
# seconds and at most what is left of the budget minus RESERVE; log it to
# OUTDIR/NAME.log and record it in the summary.
step() {
    local name=$1 cap=$2 reserve=$3
    shift 3
    local log=$OUTDIR/$name.log left limit rc status t0 wall
    left=$((DEADLINE - $(date +%s) - reserve))
    limit=$((left < cap ? left : cap))
    {
        echo "# step: $name"
        printf '# command:'
        printf ' %q' "$@"
        echo
        echo "# limit: ${limit}s (cap ${cap}s, ${reserve}s kept for later steps)"
        echo "# started: $(date -u +%FT%TZ)"
    } > "$log"
    wall=0
    if [ "$DRY" = 1 ]; then
        rc=0
        status=dry-run
    elif [ "$limit" -lt 5 ]; then
        rc=125
        status=SKIPPED
        echo "# skipped: no time left in the budget" >> "$log"
    else
        t0=$(now)
        timeout -k 10 "$limit" "$@" >> "$log" 2>&1 < /dev/null
        rc=$?
        wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }')
        case $rc in
            0) status=ok ;;
            124 | 137) status=TIMEOUT ;;
            *) status=FAILED ;;
        esac
    fi
    echo "# exit status: $rc ($status), wall ${wall}s" >> "$log"
    printf '%-20s %-8s %5s %8s %8s\n' "$name" "$status" "$rc" "$wall" "$limit" >> "$SUMMARY"
    echo "[check] $name: $status (exit $rc, ${wall}s of ${limit}s)"
    RC[$name]=$rc
    if [ "$rc" -ne 0 ]; then
        FAILED=1
    fi
    return 0
}

# skip NAME REASON: record a step that is not run
skip() {
    echo "# step: $1"$'\n'"# skipped: $2" > "$OUTDIR/$1.log"
    printf '%-20s %-8s %5s %8s %8s   (%s)\n' "$1" SKIPPED - 0 0 "$2" >> "$SUMMARY"
    echo "[check] $1: SKIPPED ($2)"
    FAILED=1
}

# ------------------------------------------------------------ environment ---
VERSIONS_PY='
import importlib, platform, shutil, sys
print("python", sys.version.replace("\n", " "), platform.platform())
for mod in ("numpy", "cupy", "torch", "sklearn", "Cython", "setuptools", "pytest",
            "pytest_benchmark", "hypothesis"):
    try:
        m = importlib.import_module(mod)
        print(mod, getattr(m, "__version__", "?"))
    except Exception as err:
        print(mod, "MISSING:", repr(err))
try:
    import cupy
    rt = cupy.cuda.runtime
    dev = rt.getDevice()
    props = rt.getDeviceProperties(dev)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    print("cupy device", dev, name, "sm_%d%d" % (props["major"], props["minor"]),
          props["multiProcessorCount"], "SMs", round(props["totalGlobalMem"] / 2**30, 1), "GiB,",
          "L2", round(props["l2CacheSize"] / 2**20, 1), "MiB")
    print("CUDA runtime", rt.runtimeGetVersion(), "driver", rt.driverGetVersion())
    from cupy.cuda import nvrtc
    print("NVRTC", nvrtc.getVersion())
    print("cupy config:"); cupy.show_config()
except Exception as err:
    print("cupy device: ERROR", repr(err))
try:
    import torch
    print("torch CUDA", torch.version.cuda, "available", torch.cuda.is_available(),
          torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
except Exception as err:
    print("torch device: ERROR", repr(err))
for tool in ("nvcc", "compute-sanitizer", "ncu", "gcc"):
    print(tool, shutil.which(tool))
'
step nvidia_smi 20 0 nvidia-smi
step versions 60 0 "$PYTHON" -c "$VERSIONS_PY"

# ------------------------------------------------------------------ build ---
# setup.py cythonizes at import, one module after another; run its own
# cythonize call first with nthreads, so that the build below finds the C
# files up to date.
CYTHONIZE_PY='
import functools, sys
import Cython.Build, setuptools
jobs = int(sys.argv[1])
Cython.Build.cythonize = functools.partial(Cython.Build.cythonize, nthreads=jobs)
setuptools.setup = lambda **kwargs: None
sys.argv = ["setup.py"]
with open("setup.py") as f:
    code = compile(f.read(), "setup.py", "exec")
exec(code, {"__name__": "__main__", "__file__": "setup.py"})
print("cythonized with", jobs, "processes")
'
PARALLEL_CFG=$OUTDIR/distutils-parallel.cfg
printf '[build]\nparallel = %s\n[build_ext]\nparallel = %s\n' "$JOBS" "$JOBS" > "$PARALLEL_CFG"

step cythonize 90 0 "$PYTHON" -c "$CYTHONIZE_PY" "$JOBS"
step pip_install 180 0 env DIST_EXTRA_CONFIG="$PARALLEL_CFG" PIP_BREAK_SYSTEM_PACKAGES=1 \
    "$PYTHON" -m pip install --no-build-isolation --no-deps -v -e .
if [ "${RC[pip_install]}" -ne 0 ] && [ "${RC[pip_install]}" -ne 124 ] \
        && [ "${RC[pip_install]}" -ne 137 ]; then
    step build_ext_inplace 180 0 env DIST_EXTRA_CONFIG="$PARALLEL_CFG" \
        "$PYTHON" setup.py build_ext --inplace -j "$JOBS"
fi
step import_fastnorm 60 0 "$PYTHON" -c \
    'import fastnorm, fastnorm._cpu; from fastnorm._cuda import _launch; print(fastnorm.__file__)'

# ------------------------------------------------------------- GPU checks ---
step nvrtc_check 120 "$BENCH_TIME" "$PYTHON" -m fastnorm._cuda.check --compiler nvrtc
step launch_all 90 "$BENCH_TIME" "$PYTHON" benches/gpu/launch_all.py --poison

# The GPU tests: tests/test_gpu_*.py but this script's own CPU test.
GPU_TESTS=()
for f in tests/test_gpu_*.py; do
    [ -e "$f" ] && [ "$f" != tests/test_gpu_check_script.py ] && GPU_TESTS+=("$f")
done
# tests/conftest.py imports hypothesis (for its cache directory only): give
# the GPU tests a stand-in where it is not installed.
TEST_PYTHONPATH=$PYTHONPATH
if [ "$DRY" != 1 ] && ! "$PYTHON" -c 'import hypothesis' > /dev/null 2>&1; then
    STUBS=$OUTDIR/pystubs
    mkdir -p "$STUBS/hypothesis"
    echo '"""Stand-in: hypothesis is not installed here (fastnorm GPU check)."""' \
        > "$STUBS/hypothesis/__init__.py"
    printf 'def set_hypothesis_home_dir(path):\n    pass\n' > "$STUBS/hypothesis/configuration.py"
    TEST_PYTHONPATH=$STUBS:$PYTHONPATH
    echo "[check] hypothesis missing: tests use the stand-in in $STUBS"
fi
if [ ${#GPU_TESTS[@]} -gt 0 ]; then
    step pytest_gpu 180 "$BENCH_TIME" env PYTHONPATH="$TEST_PYTHONPATH" \
        "$PYTHON" -m pytest "${GPU_TESTS[@]}" -x -q -p no:cacheprovider -rfEs \
        --junitxml="$OUTDIR/pytest_gpu.xml"
else
    skip pytest_gpu "no tests/test_gpu_*.py"
fi

step bench_gpu 200 "$SANITIZER_TIME" "$PYTHON" benches/gpu/bench_gpu.py --out "$OUTDIR"

# ---------------------------------------------------------- sanitizers ---
SANITIZER=$(command -v compute-sanitizer || true)
for d in "${CUDA_HOME:-}" "${CUDA_PATH:-}" /usr/local/cuda; do
    if [ -z "$SANITIZER" ] && [ -n "$d" ] && [ -x "$d/bin/compute-sanitizer" ]; then
        SANITIZER=$d/bin/compute-sanitizer
    fi
done
if [ -z "$SANITIZER" ] && [ "$DRY" = 1 ]; then
    SANITIZER=compute-sanitizer
fi
if [ -z "$SANITIZER" ]; then
    for s in sanitizer_version sanitizer_probe memcheck racecheck initcheck; do
        skip "$s" "compute-sanitizer not found"
    done
else
    step sanitizer_version 20 0 "$SANITIZER" --version
    step sanitizer_probe 60 0 "$SANITIZER" --tool memcheck --error-exitcode 99 \
        "$PYTHON" -c 'import cupy; a = cupy.arange(1000, dtype=cupy.float32); print(float((2 * a).sum()))'
    if [ "${RC[sanitizer_probe]}" -eq 0 ]; then
        # --no-pool: every array its own allocation, so memcheck sees overruns
        step memcheck 60 0 "$SANITIZER" --tool memcheck --error-exitcode 99 --print-limit 100 \
            "$PYTHON" benches/gpu/launch_all.py --no-pool
        step racecheck 60 0 "$SANITIZER" --tool racecheck --racecheck-report all \
            --error-exitcode 99 --print-limit 100 \
            "$PYTHON" benches/gpu/launch_all.py --no-pool
        step initcheck 60 0 "$SANITIZER" --tool initcheck --error-exitcode 99 --print-limit 100 \
            "$PYTHON" benches/gpu/launch_all.py --no-pool
    else
        for s in memcheck racecheck initcheck; do
            skip "$s" "the sanitizer probe failed (see sanitizer_probe.log)"
        done
    fi
fi

# ---------------------------------------------------------------- summary ---
echo "# total wall $(( $(date +%s) - START ))s of a ${BUDGET}s budget" >> "$SUMMARY"
echo
if [ -f "$OUTDIR/gpu_bench.md" ]; then
    cat "$OUTDIR/gpu_bench.md"
    echo
fi
cat "$SUMMARY"
exit "$FAILED"

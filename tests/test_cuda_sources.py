"""The GPU path without a GPU: every CUDA source and every template
instantiation of fastnorm._cuda._loader.FAMILIES compiles (nvcc -ptx, or
NVRTC through CuPy), the table lists exactly the kernels the sources define,
the launch shapes keep the kernels' assumptions, and `import fastnorm` never
needs CuPy."""
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from fastnorm._cuda import _launch, _loader, check

ROOT = Path(__file__).resolve().parents[1]

COMPILERS = [c for c, ok in (("nvcc", check.find_nvcc()), ("nvrtc", check.nvrtc_available())) if ok]
needs_compiler = pytest.mark.skipif(
    not COMPILERS, reason="neither nvcc nor CuPy's NVRTC is available: CUDA sources not "
                          "compile-checked")


@needs_compiler
@pytest.mark.parametrize("compiler", COMPILERS or ["none"])
@pytest.mark.parametrize("family", sorted(_loader.FAMILIES))
def test_family_compiles(family, compiler):
    result = check.check_family(family, compiler)
    assert result.ok, f"{result.line()}\n{result.log}"


@needs_compiler
def test_check_fails_on_a_broken_source(monkeypatch):
    good = _loader.source("apply")
    monkeypatch.setattr(_loader, "source", lambda family: good + (
        "\n__global__ void broken(float* x) { x[0] = not_declared_anywhere; }\n"))
    result = check.check_family("apply", COMPILERS[0], archs=("sm_90",))
    assert not result.ok
    assert "not_declared_anywhere" in result.log


@needs_compiler
def test_check_command_line():
    proc = subprocess.run([sys.executable, "-m", "fastnorm._cuda.check", "apply", "--arch", "sm_90"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("apply: ok, 6 instantiations"), proc.stdout


def test_entry_matching_catches_missing_and_duplicate_entries():
    exprs = ["k<float, float>", "k<__half, float>"]
    names = {e: check.mangled_prefix(e) for e in exprs}
    assert names == {"k<float, float>": "_Z1kIffE", "k<__half, float>": "_Z1kI6__halffE"}
    good = ["_Z1kIffEvPKT_", "_Z1kI6__halffEvPKT_"]
    assert check._match_entries(exprs, good, names) == ""
    assert "k<__half, float>: 0 entries" in check._match_entries(exprs, good[:1], names)
    assert "k<float, float>: 2 entries" in check._match_entries(exprs, good + good[:1], names)


def test_table_lists_exactly_the_kernels_of_each_source():
    files = {p.name for p in resources.files("fastnorm._cuda").iterdir() if p.name.endswith(".cu")}
    assert files == {f"{family}.cu" for family in _loader.FAMILIES}
    kernel = re.compile(r"__global__\s+void\s+(?:__launch_bounds__\([^)]*\)\s+)?(\w+)\s*\(")
    for family, exprs in _loader.FAMILIES.items():
        defined = set(kernel.findall(_loader.source(family)))
        listed = {e.split("<")[0] for e in exprs}
        assert defined == listed, family
        # every kernel for every dtype, each once
        assert sorted(exprs) == sorted(f"{k}<{t}, {a}>" for k in listed
                                       for t, a in _loader.TYPES.values())


def test_source_is_self_contained():
    src = _loader.source("row_norms")
    assert '#include "common.cuh"' not in src.splitlines()
    assert "#pragma once" not in src
    assert "struct Moments" in src and "layer_norm_fwd" in src
    with pytest.raises(KeyError):
        _loader.source("no_such_family")
    with pytest.raises(KeyError):
        _loader.get_kernel("row_norms", "layer_norm_fwd<int, int>")
    assert _loader.name_expression("lrn_forward", "float16") == "lrn_forward<__half, float>"


def test_import_without_cupy():
    # sys.modules["cupy"] = None makes `import cupy` fail, as without CuPy
    code = (
        "import sys\n"
        "sys.modules['cupy'] = None\n"
        "import fastnorm\n"
        "from fastnorm._cuda import _launch, _loader, check\n"
        "assert _loader.source('channels')\n"
        "try:\n"
        "    _loader.get_kernel('apply', 'affine_cols<float, float>')\n"
        "except ImportError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('get_kernel ran without CuPy')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_import_does_not_import_cupy():
    code = ("import sys, fastnorm\n"
            "from fastnorm._cuda import _launch, _loader, check\n"
            "assert 'cupy' not in sys.modules, 'cupy imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


class _Kernel:  # stands in for a cupy.RawKernel
    max_threads_per_block = 1024


@pytest.mark.parametrize("n", [1, 31, 32, 1000, 1024, 1025, 2048, 4099, 16384, 10**6])
def test_row_shape(n):
    grid, block = _launch.row_shape(1000, n, _Kernel())
    bx, by = block
    assert bx % 32 == 0 and bx * by <= 1024
    if n <= 1024:  # a warp per row, 8 rows per block
        assert block == (32, 8) and grid == (125,)
    else:  # a block per row
        assert by == 1 and grid == (1000,) and 64 <= bx <= 1024


@pytest.mark.parametrize("n_cols", [1, 2, 3, 7, 32, 33, 1000])
@pytest.mark.parametrize("n_rows", [0, 1, 100, 4096, 10**5, 10**7])
@pytest.mark.parametrize("n_other", [None, 1, 100, 10**6])
def test_column_shapes(n_rows, n_cols, n_other):
    bx, by = _launch.column_tile(n_cols)
    assert bx * by == 256 and by & (by - 1) == 0 and bx <= 32
    n_tiles = -(-n_cols // bx)
    rows, n_blocks = _launch.row_blocks(n_rows, n_other or n_tiles, by)
    # the row blocks cover the rows exactly, none empty, and fit gridDim.y
    assert rows * n_blocks >= n_rows and (n_blocks == 0 or (n_blocks - 1) * rows < n_rows)
    assert n_blocks <= 65535
    grid, block = _launch.merge_shape(n_cols)
    assert block == (256,) and grid[0] * 8 >= n_cols

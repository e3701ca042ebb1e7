"""Compile check of the CUDA sources: runs without a GPU (CI).

    python -m fastnorm._cuda.check [--compiler auto|nvcc|nvrtc] [--arch sm_90 ...] [family ...]

Each family of `_loader.FAMILIES` is compiled to PTX from exactly the text
the runtime compiles (`_loader.source`), with every name expression of the
table instantiated, and the PTX must hold one `.entry` per name expression,
with the expected template arguments.

- nvcc (preferred; no CuPy needed): a temporary .cu includes the source and
  takes the address of every instantiation in host code, which makes nvcc
  emit it; each entry is matched by its mangled name's prefix.
- NVRTC through CuPy's bindings (`cupy.cuda.nvrtc`), when nvcc is missing:
  the name expressions are added to the program as `cupy.RawModule` adds
  them, with the options CuPy adds, and looked up by their lowered names.

Prints one line per family; exit status 1 when a family fails, 2 when
neither compiler is available.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

from . import _loader

# Hopper (the target) and Turing, the oldest architecture CUDA 13's nvcc
# still compiles for: catches code that needs a newer architecture.
DEFAULT_ARCHS = ("sm_90", "sm_75")

# Itanium-ABI codes of the template arguments used in FAMILIES
_TYPE_CODES = {"float": "f", "double": "d", "__half": "6__half"}

_EXPR = re.compile(r"^(\w+)<\s*([\w ]+?)\s*,\s*([\w ]+?)\s*>$")
_ENTRY = re.compile(r"^\s*(?:\.visible\s+|\.weak\s+)?\.entry\s+([\w$]+)\s*\(", re.M)


@dataclass
class Result:
    family: str
    ok: bool
    detail: str  # the summary, or what went wrong
    seconds: float
    log: str = ""  # compiler warnings (or errors)

    def line(self):
        status = "ok" if self.ok else "FAILED"
        return f"{self.family}: {status}, {self.detail} ({self.seconds:.1f} s)"


def mangled_prefix(expr):
    """'layer_norm_fwd<__half, float>' -> '_Z14layer_norm_fwdI6__halffE'."""
    m = _EXPR.match(expr)
    if not m or m[2] not in _TYPE_CODES or m[3] not in _TYPE_CODES:
        raise ValueError(f"name expression {expr!r} is not kernel<T, A> with T, A in "
                         f"{sorted(_TYPE_CODES)}")
    name = m[1]
    return f"_Z{len(name)}{name}I{_TYPE_CODES[m[2]]}{_TYPE_CODES[m[3]]}E"


def find_nvcc():
    """Path of nvcc: on PATH, else under $CUDA_PATH / $CUDA_HOME or /usr/local/cuda."""
    found = shutil.which("nvcc")
    if found:
        return found
    for root in (os.environ.get("CUDA_PATH"), os.environ.get("CUDA_HOME"), "/usr/local/cuda"):
        if root and os.access(os.path.join(root, "bin", "nvcc"), os.X_OK):
            return os.path.join(root, "bin", "nvcc")
    return None


def nvrtc_available():
    """Whether CuPy imports and its NVRTC library loads (no GPU needed)."""
    try:
        from cupy.cuda import nvrtc
        nvrtc.getVersion()
    except Exception:
        return False
    return True


def available_compiler():
    """'nvcc', 'nvrtc' or None."""
    if find_nvcc():
        return "nvcc"
    if nvrtc_available():
        return "nvrtc"
    return None


def _match_entries(exprs, entries, names):
    """What is wrong with `entries` given one expected name (or name prefix,
    from `names`) per expression, or ''."""
    problems = []
    for expr in exprs:
        n = sum(1 for e in entries if e.startswith(names[expr]))
        if n != 1:
            problems.append(f"{expr}: {n} entries")
    if len(entries) != len(exprs):
        problems.append(f"{len(entries)} entries for {len(exprs)} name expressions")
    return "; ".join(problems)


def _check_nvcc(family, exprs, archs, nvcc):
    names = {e: mangled_prefix(e) for e in exprs}
    logs = []
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, f"{family}.cu"), "w") as f:
            f.write(_loader.source(family))
        check_cu = os.path.join(tmp, f"check_{family}.cu")
        with open(check_cu, "w") as f:
            f.write(f'#include "{family}.cu"\n\n'
                    "// taking each kernel's address makes nvcc instantiate and emit it\n"
                    "extern const void* const fastnorm_check_instances[] = {\n")
            f.writelines(f"    (const void*)&{e},\n" for e in exprs)
            f.write("};\n")
        for arch in archs:
            ptx_path = os.path.join(tmp, f"{family}_{arch}.ptx")
            cmd = [nvcc, "-ptx", *_loader.OPTIONS, f"-arch={arch}", check_cu, "-o", ptx_path]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            log = (proc.stdout + proc.stderr).strip()
            if proc.returncode != 0:
                return False, f"nvcc {arch} failed", log
            if log:
                logs.append(f"[{arch}] {log}")
            with open(ptx_path) as f:
                wrong = _match_entries(exprs, _ENTRY.findall(f.read()), names)
            if wrong:
                return False, f"nvcc {arch}: {wrong}", "\n".join(logs)
    return True, f"nvcc {' '.join(archs)}", "\n".join(logs)


def _nvrtc_options(arch):
    """The options cupy.RawModule compiles with: ours, CuPy's include paths
    (they hold cuda_fp16.h), the architecture, and the two CuPy adds."""
    import cupy
    try:
        from cupy._core.core import assemble_cupy_compiler_options
        options = tuple(assemble_cupy_compiler_options(_loader.OPTIONS))
    except ImportError:  # a CuPy without that helper: its CUDA include path
        cuda = cupy.cuda.get_cuda_path()
        options = _loader.OPTIONS + ((f"-I{cuda}/include",) if cuda else ())
    return options + (f"-arch=compute_{arch.split('_')[-1]}", "-ftz=true",
                      "--device-as-default-execution-space")


def _check_nvrtc(family, exprs, archs):
    from cupy.cuda import nvrtc
    source = _loader.source(family)
    for arch in archs:
        prog = nvrtc.createProgram(source, f"{family}.cu", [], [])
        try:
            for e in exprs:
                nvrtc.addNameExpression(prog, e)
            try:
                nvrtc.compileProgram(prog, list(_nvrtc_options(arch)))
            except nvrtc.NVRTCError as err:
                return False, f"NVRTC {arch} failed: {err}", nvrtc.getProgramLog(prog)
            names = {e: nvrtc.getLoweredName(prog, e) for e in exprs}
            ptx = nvrtc.getPTX(prog)
            ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
            wrong = _match_entries(exprs, _ENTRY.findall(ptx), names)
            if wrong:
                return False, f"NVRTC {arch}: {wrong}", ""
        finally:
            nvrtc.destroyProgram(prog)
    return True, f"NVRTC {' '.join(archs)}", ""


def check_family(family, compiler="auto", archs=DEFAULT_ARCHS):
    """Compile-check one family; a Result (raises RuntimeError when the
    requested compiler, or any for 'auto', is unavailable)."""
    exprs = _loader.FAMILIES[family]
    if compiler == "auto":
        compiler = available_compiler()
    if compiler == "nvcc":
        nvcc = find_nvcc()
        if not nvcc:
            raise RuntimeError("nvcc not found (PATH, $CUDA_PATH, $CUDA_HOME, /usr/local/cuda)")
    elif compiler == "nvrtc":
        if not nvrtc_available():
            raise RuntimeError("CuPy's NVRTC is not available")
    else:
        raise RuntimeError("neither nvcc nor CuPy's NVRTC is available")
    start = time.perf_counter()
    if compiler == "nvcc":
        ok, how, log = _check_nvcc(family, exprs, archs, nvcc)
    else:
        ok, how, log = _check_nvrtc(family, exprs, archs)
    detail = f"{len(exprs)} instantiations, {how}" if ok else how
    return Result(family, ok, detail, time.perf_counter() - start, log)


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m fastnorm._cuda.check",
        description="Compile-check fastnorm's CUDA sources and every template "
                    "instantiation (no GPU needed).")
    parser.add_argument("families", nargs="*",
                        help=f"families to check (default: all of {' '.join(sorted(_loader.FAMILIES))})")
    parser.add_argument("--compiler", choices=("auto", "nvcc", "nvrtc"), default="auto")
    parser.add_argument("--arch", action="append",
                        help=f"target architecture, repeatable (default: {' '.join(DEFAULT_ARCHS)})")
    args = parser.parse_args(argv)
    archs = tuple(args.arch or DEFAULT_ARCHS)
    unknown = set(args.families) - set(_loader.FAMILIES)
    if unknown:
        parser.error(f"unknown families: {' '.join(sorted(unknown))}")
    failed = False
    for family in args.families or sorted(_loader.FAMILIES):
        try:
            result = check_family(family, args.compiler, archs)
        except RuntimeError as err:
            print(f"cannot check: {err}", file=sys.stderr)
            return 2
        print(result.line(), flush=True)
        if result.log:
            print("    " + result.log.replace("\n", "\n    "), flush=True)
        failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

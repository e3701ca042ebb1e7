"""Build the compiled kernels of fastnorm (ext/*.pyx -> fastnorm._ext.*).

Environment variables:
  FASTNORM_DEBUG=1      turn Cython's bounds and wraparound checks back on
                        and compile with -O0 -g (slow; for debugging).
  FASTNORM_NO_OPENMP=1  build without OpenMP (single-threaded kernels).
  FASTNORM_ONLY=a,b     build only these modules (e.g. _channels,_channels_v3),
                        for a quick rebuild after a change to their sources.
"""
import glob
import os
import sys
import tempfile
import textwrap
import warnings

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG = os.environ.get("FASTNORM_DEBUG", "") not in ("", "0")

# Release directives: the front end validates every buffer, so kernels need
# no bounds or wraparound checks.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": not DEBUG,
}

# -fassociative-math (with the two flags it needs) lets GCC vectorize the
# floating-point reductions of the row kernels. It does not assume finite
# math, so NaN and inf handling stay exact. No -march=native: the wheel must
# run on any x86-64 / aarch64 CPU.
OPT_FLAGS = ["-O0", "-g"] if DEBUG else [
    "-O3", "-fno-math-errno", "-fno-trapping-math",
    "-fassociative-math", "-fno-signed-zeros",
]

MODULES = {
    "_stats": "c",
    "_apply": "c",
    "_quantiles": "c++",
    "_bandwidth": "c",
    "_openmp": "c",
    "_sparse": "c",
    "_norms": "c",
    "_channels": "c",
    # The same kernels as _stats and _apply, compiled for x86-64-v3 (AVX2,
    # FMA): float->double conversion and the float64 accumulation run twice
    # as wide, which is what keeps them at memory speed on 2 cores.
    # fastnorm._cpu picks them at import when the CPU has those features.
    "_stats_v3": "c",
    "_apply_v3": "c",
    "_bandwidth_v3": "c",
    "_norms_v3": "c",
    "_channels_v3": "c",
}
ONLY = [m for m in os.environ.get("FASTNORM_ONLY", "").split(",") if m]
if ONLY:
    unknown = set(ONLY) - set(MODULES)
    if unknown:
        raise SystemExit(f"FASTNORM_ONLY: unknown modules {sorted(unknown)}; "
                         f"known: {sorted(MODULES)}")
    MODULES = {name: lang for name, lang in MODULES.items() if name in ONLY}
V3_MODULES = {"_stats_v3", "_apply_v3", "_bandwidth_v3", "_norms_v3", "_channels_v3"}
V3_FLAGS = ["-march=x86-64-v3", "-mtune=generic"]


def _compiles(compiler, src, flags):
    """Whether `compiler` compiles and links the C program `src` with `flags`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.c")
        with open(path, "w") as f:
            f.write(textwrap.dedent(src))
        try:
            objs = compiler.compile([path], output_dir=tmp, extra_postargs=flags)
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=flags)
        except Exception:
            return False
    return True


def _compiler_has_openmp(compiler):
    if os.environ.get("FASTNORM_NO_OPENMP", "") not in ("", "0"):
        return False
    return _compiles(compiler, """
        #include <omp.h>
        int main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }
    """, ["-fopenmp"])


def _compiler_has_x86_64_v3(compiler):
    return _compiles(compiler, """
        #if !defined(__x86_64__)
        #error not x86-64
        #endif
        int main(void) { return 0; }
    """, V3_FLAGS)


class BuildExt(build_ext):
    def build_extensions(self):
        openmp = _compiler_has_openmp(self.compiler)
        if not openmp:
            warnings.warn("fastnorm: the C compiler has no OpenMP support; "
                          "building single-threaded kernels.")
        v3 = _compiler_has_x86_64_v3(self.compiler)
        # Without x86-64-v3 (another architecture, an old compiler) only the
        # portable kernels are built.
        self.extensions = [e for e in self.extensions
                           if v3 or e.name.rsplit(".", 1)[1] not in V3_MODULES]
        for ext in self.extensions:
            ext.extra_compile_args += OPT_FLAGS
            if ext.name.rsplit(".", 1)[1] in V3_MODULES:
                ext.extra_compile_args += V3_FLAGS
            if ext.language == "c++":
                ext.extra_compile_args.append("-std=c++11")
            if openmp:
                ext.extra_compile_args.append("-fopenmp")
                ext.extra_link_args.append("-fopenmp")
        super().build_extensions()


def extensions():
    import numpy
    from Cython.Build import cythonize

    # the C headers and shared .pxi bodies: a change to one rebuilds the modules
    shared = sorted(glob.glob("ext/*.h") + glob.glob("ext/*.pxi"))
    exts = [
        Extension(f"fastnorm._ext.{name}", [f"ext/{name}.pyx"],
                  include_dirs=["ext", numpy.get_include()], language=lang, depends=shared,
                  define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
        for name, lang in MODULES.items()
    ]
    return cythonize(exts, compiler_directives=DIRECTIVES,
                     include_path=["ext"], quiet=True)


setup(ext_modules=extensions(), cmdclass={"build_ext": BuildExt})

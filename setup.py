"""Build the compiled cores (aligner, repeat roller); all metadata is in pyproject.toml.

OpenMP is probed by compiling and running a tiny program (as scikit-learn's
setuptools build did). Without it the extension is built serially and a loud
warning is printed; ``ARCHALIGN_FAIL_NO_OPENMP=1`` turns that into an error and
``archalign.openmp_enabled()`` reports the outcome at run time.
``ARCHALIGN_CYTHON_DEBUG=1`` turns bounds checking back on for debugging.
``ARCHALIGN_MARCH=native`` (optional) compiles everything for the build CPU;
the default binary is portable and picks AVX-512/AVX2 clones of the SIMD
kernels at run time where GCC supports function multi-versioning.
"""
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d", n > 0);
        return 0;
    }
    """
)


def _openmp_flag(compiler):
    return ["/openmp"] if compiler.compiler_type == "msvc" else ["-fopenmp"]


def _has_openmp(compiler):
    flag = _openmp_flag(compiler)
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write(_OPENMP_PROBE)
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=flag)
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objs, exe, extra_postargs=flag)
            out = subprocess.run([exe], capture_output=True, text=True, timeout=30)
            return out.returncode == 0 and out.stdout.strip() == "1"
        except Exception:  # any compile, link or run failure means "no OpenMP"
            return False


class BuildExt(build_ext):
    def build_extensions(self):
        openmp = _has_openmp(self.compiler)
        if not openmp:
            msg = (
                "\n" + "*" * 72 + "\n"
                "archalign: the C compiler has no working OpenMP; the aligner is\n"
                "built SERIAL (pairwise() uses one thread). Install an OpenMP\n"
                "runtime (e.g. libgomp / libomp) and rebuild for threads.\n" + "*" * 72
            )
            if os.environ.get("ARCHALIGN_FAIL_NO_OPENMP"):
                raise RuntimeError(msg)
            warnings.warn(msg)
            print(msg, file=sys.stderr)
        unix = self.compiler.compiler_type != "msvc"
        for ext in self.extensions:
            if unix:
                ext.extra_compile_args += ["-O3"]
                march = os.environ.get("ARCHALIGN_MARCH")
                if march:
                    ext.extra_compile_args += [f"-march={march}"]
            if openmp:
                ext.extra_compile_args += _openmp_flag(self.compiler)
                ext.extra_link_args += _openmp_flag(self.compiler)
        super().build_extensions()


_debug = bool(os.environ.get("ARCHALIGN_CYTHON_DEBUG"))
extensions = [
    Extension(
        "archalign.alignment._nw",
        ["archalign/alignment/_nw.pyx"],
        include_dirs=[np.get_include(), "archalign/alignment"],
        depends=["archalign/alignment/_nw_kernels.h"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
    Extension(
        "archalign.tracing._roll",
        ["archalign/tracing/_roll.pyx"],
        include_dirs=[np.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": _debug,
            "wraparound": False,
            "initializedcheck": _debug,
            "nonecheck": False,
            "cdivision": True,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)

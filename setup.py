"""Build the compiled cores (aligner, repeat roller); all metadata is in pyproject.toml.

OpenMP is probed by compiling and running a tiny program (as scikit-learn's
setuptools build did). Without it the extension is built serially and a loud
warning is printed; ``ARCHALIGN_FAIL_NO_OPENMP=1`` turns that into an error and
``archalign.openmp_enabled()`` reports the outcome at run time.

``ARCHALIGN_CYTHON_DEBUG=1`` (any value but empty or 0) makes the debug build:
Cython's ``boundscheck`` and ``initializedcheck`` are on (``wraparound`` stays
off, so a negative index is out of bounds too), and the C macro
``ARCHALIGN_DEBUG`` is defined, which also checks that every sequence's
offsets lie inside its token buffer (the kernels read tokens through
pointers, where ``boundscheck`` cannot see). An index out of bounds then
raises IndexError instead of reading or writing past an array.
``archalign.alignment._nw.DEBUG_BUILD`` and ``archalign.tracing._roll.DEBUG_BUILD``
say which build is installed. The release build (the default) has all these
checks off and ``cdivision`` on. The compiler directives live here only: the
.pyx headers set nothing but ``language_level``. Switching between the two
builds regenerates and recompiles the C files (see ``_other_build``).

``ARCHALIGN_MARCH=native`` (optional) compiles everything for the build CPU;
the default binary is portable and picks AVX-512/AVX2 clones of the SIMD
kernels at run time where GCC supports function multi-versioning.
"""
from __future__ import annotations

import json
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


def _other_build(ext):
    """Whether ext's generated C file is missing or was made for the other build.

    cythonize regenerates a C file only when it is older than its sources, and
    build_ext recompiles only when the module is older than the C file: neither
    notices changed directives or macros. Cython records the Extension's
    define_macros at the top of the C file, so a switch between the debug and
    release builds is seen there, and forces both steps (a regenerated C file
    is newer than the module built from the old one).
    """
    c_file = os.path.splitext(ext.sources[0])[0] + ".c"
    try:
        with open(c_file, encoding="utf-8") as f:
            head = "".join(line for _, line in zip(range(200), f))
        start = head.index("BEGIN: Cython Metadata") + len("BEGIN: Cython Metadata")
        meta = json.loads(head[start:head.index("END: Cython Metadata")])
    except (OSError, ValueError):
        return True
    macros = meta.get("distutils", {}).get("define_macros", [])
    return (["ARCHALIGN_DEBUG", "1"] in macros) != _debug


_debug = os.environ.get("ARCHALIGN_CYTHON_DEBUG", "") not in ("", "0")
_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if _debug:
    _macros.append(("ARCHALIGN_DEBUG", "1"))
extensions = [
    Extension(
        "archalign.alignment._nw",
        ["archalign/alignment/_nw.pyx"],
        include_dirs=[np.get_include(), "archalign/alignment"],
        depends=["archalign/alignment/_nw_kernels.h"],
        define_macros=list(_macros),
    ),
    Extension(
        "archalign.tracing._roll",
        ["archalign/tracing/_roll.pyx"],
        include_dirs=[np.get_include()],
        define_macros=list(_macros),
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        force=any(_other_build(ext) for ext in extensions),
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

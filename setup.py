"""Build steps pyproject.toml cannot declare: the optional C kernel, and the bundled specs and data.

* ``specc.train._nnet_kernel`` (specc/train/nnet_kernel.c, nnet's criterion in C) is optional: without a
  working C compiler the build goes on without it, says so, and specc's NumPy implementation of the
  kernel runs instead (the same numbers, slower). ``specc --version`` says whether it was built.
* The bundled specs (``specs/*.spec``) and example data (``examples/*.csv``, ``examples/*.json``)
  live at the repository's root, where the README's commands use them; the build copies them
  into the package (``specc/specs``, ``specc/examples``), so ``specc demo`` works anywhere
  after ``pip install``. ``specc.files.bundled`` finds them in either place.
"""
from __future__ import annotations

import glob
import os
import shutil
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

# No -ffast-math and no FMA contraction: the kernel must round exactly as R's nnet does.
KERNEL = Extension("specc.train._nnet_kernel", sources=["specc/train/nnet_kernel.c"],
                   extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math"])
BUNDLED = {"specs": ["*.spec"], "examples": ["*.csv", "sine_nnet_wts.json"]}


def _warn(message: str) -> None:
    bar = "*" * 78
    print(f"\n{bar}\nWARNING: {message}\n{bar}\n", file=sys.stderr, flush=True)


class OptionalBuildExt(build_ext):
    """Build the C kernel when a compiler is there; otherwise warn and leave it out."""

    def run(self):
        try:
            super().run()
        except Exception as err:  # no compiler at all (DistutilsPlatformError …): skip the extension
            self._skipped(err)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as err:  # CompileError, LinkError, a compiler that is not there …
            self._skipped(err, ext)

    def _skipped(self, err: Exception, ext: Extension | None = None) -> None:
        name = ext.name if ext is not None else KERNEL.name
        _warn(f"skipped the optional C extension {name} ({type(err).__name__}: {err}). specc works "
              "without it: the nnet engine runs its NumPy implementation (same numbers, slower). Install a C "
              "compiler and reinstall specc to build it.")


class BuildPyWithBundled(build_py):
    """Copy the bundled specs and example data into the built package."""

    def run(self):
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout itself
            return
        for folder, patterns in BUNDLED.items():
            target = os.path.join(self.build_lib, "specc", folder)
            os.makedirs(target, exist_ok=True)
            for pattern in patterns:
                for path in sorted(glob.glob(os.path.join(folder, pattern))):
                    shutil.copyfile(path, os.path.join(target, os.path.basename(path)))


setup(ext_modules=[KERNEL], cmdclass={"build_ext": OptionalBuildExt, "build_py": BuildPyWithBundled})

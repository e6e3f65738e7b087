"""Builds the decoder's compiled kernels (plain C, CPython API only; no NumPy headers).

``pip install -e .`` (or ``python setup.py build_ext --inplace``) compiles them next to
their Python modules; the metadata lives in pyproject.toml. Both are optional: without
a C compiler the package still installs and decodes through numba (entropy) and NumPy
(synthesis), much more slowly.
"""
import sys

from setuptools import Extension, setup

if sys.platform == "win32":
  FLAGS = ["/O2"]
else:
  FLAGS = ["-O3", "-std=gnu11", "-fno-strict-aliasing", "-Wno-unused-function",
           "-Wno-psabi"]

setup(ext_modules=[
    Extension("moric_jax.coding._ans", ["moric_jax/coding/_ans.c"],
              extra_compile_args=FLAGS, optional=True),
    Extension("moric_jax.decoder._synth", ["moric_jax/decoder/_synth.c"],
              extra_compile_args=FLAGS, optional=True),
])

"""Compiled (numba) ANS decoding, bit-exact with constriction's ``stack.AnsCoder``.

Format of constriction's ANS stack as used here (``u32`` words, ``u64`` state, models
with 24-bit fixed-point precision):

* The payload is ``words[0 .. n)``; it is read from the end. The initial state is the
  last word (which must be non-zero) shifted in front of the word before it (one word
  if the payload has one). An empty payload gives state 0 ("empty").
* Decoding one symbol: ``q = state mod 2**24``; find the symbol with
  ``cdf[s] <= q < cdf[s + 1]``; ``state = (state >> 24) * (cdf[s + 1] - cdf[s]) +
  q - cdf[s]``; if then ``state < 2**32`` and words are left, ``state = state << 32 |
  words[--pos]``. The coder is empty iff ``state == 0`` (with data left the state is
  always ``>= 2**32``).
* ``Categorical(perfect=False)`` fed with float64 rows ``p`` (``K`` entries) is
  constriction's lazy model: ``scale = (2**24 - K) / sum(p)``, ``cdf[i] =
  floor(cumsum(p)[:i] * scale) + i`` in float64 (sums left to right), ``cdf[K] =
  2**24``. For our dyadic tables (``count / 2**16``) every step is exact.
* ``Uniform`` with size ``m``: bins of ``2**24 // m``, the last bin takes the rest.

The decoder state lives in a ``uint64[2]`` array ``st = [state, pos]`` next to the
``uint32`` words, so several kernels (weights, then latents) continue one stream.
All CDF tables are padded to a power-of-two width with ``2**24`` (above every
quantile) for a branch-free binary search.

Kernels (``decode_categorical``, ``decode_uniform``, ``decode_residuals``,
``decode_latents``, ``build_lut``): the C extension ``_ans`` (``_ans.c``, compiled by
``pip install -e .``: nothing to compile or import at decode time) or, when it is not
built or ``MORIC_ANS=numba``, the numba twins in ``fast_ans_numba`` (JIT-compiled on
first use, cached to ``__pycache__``). Both are bit-exact with constriction and
tested against each other. ``backend()`` says which one runs. Nothing here imports JAX.
"""
from __future__ import annotations

import contextlib
import functools
import os

import numpy as np

from moric_jax.coding.ans_constants import (  # noqa: F401  (re-used by callers)
    DRY, LUT_BITS, LUT_SHIFT, OK, ONE, PRECISION)


def _load_backend():
  if os.environ.get("MORIC_ANS", "").lower() != "numba":
    try:
      from moric_jax.coding import _ans
      return _ans
    except ImportError:
      pass
  return None


_impl = _load_backend()


_IS_C = _impl is not None


def backend() -> str:
  """``"c"`` (compiled extension) or ``"numba"``."""
  return "c" if _IS_C else "numba"


def _kernels():
  global _impl
  if _impl is None:
    from moric_jax.coding import fast_ans_numba
    _impl = fast_ans_numba
  return _impl


@contextlib.contextmanager
def forced(name: str, simd: int = 2):
  """Runs the block on backend ``name`` (``"c"`` / ``"numba"``); ``simd``: the highest
  SIMD level the C kernels' ARM may use (0 plain integers, 1 AVX2, 2 AVX-512 VNNI).
  For tests and benchmarks."""
  global _impl, _IS_C
  old = _impl, _IS_C
  if name == "c":
    from moric_jax.coding import _ans as impl
  elif name == "numba":
    from moric_jax.coding import fast_ans_numba as impl
  else:
    raise ValueError(f"unknown backend {name!r}")
  prev_simd = impl.set_simd(int(simd)) if name == "c" else None
  _impl, _IS_C = impl, name == "c"
  try:
    yield
  finally:
    _impl, _IS_C = old
    if prev_simd is not None:
      impl.set_simd(prev_simd)


def decode_categorical(words, st, cdf, rows, out) -> int:
  """Decodes ``out[i]`` with CDF row ``rows[i]``; status ``DRY`` if empty at the start."""
  return _kernels().decode_categorical(words, st, cdf, rows, out)


def decode_uniform(words, st, sizes, out) -> int:
  """``out[i]`` uniform over ``range(sizes[i])`` (``2 <= size < 2**24``)."""
  return _kernels().decode_uniform(words, st, sizes, out)


def decode_residuals(words, st, cdf, lut, rows, esc_cdf, esc_lut, esc_rows_of, radius,
                     out) -> int:
  """One block of residuals (``rans.decode_block`` semantics) into ``out`` (int64).

  ``rows[i]``: main CDF row of entry ``i``; ``esc_rows_of[i]``: its escape-class row.
  """
  return _kernels().decode_residuals(words, st, cdf, lut, rows, esc_cdf, esc_lut,
                                     esc_rows_of, int(radius), out)


def decode_latents(words, st, shapes, places, wc, cols, offsets, keep, weights, biases,
                   dims, shifts, hidden_limit, context_limit, consts, cdf, lut, esc_cdf,
                   esc_lut, radius, canvas) -> int:
  """Decodes every coded latent position front by front into ``canvas`` (flat int64).

  See ``fast_ans_numba.decode_latents`` for the arguments; ``OK`` or ``DRY``.
  """
  return _kernels().decode_latents(
      words, st, shapes, places, int(wc), int(cols), offsets, keep, weights, biases, dims,
      shifts, int(hidden_limit), int(context_limit), consts, cdf, lut, esc_cdf, esc_lut,
      int(radius), canvas)


def build_lut(cdf: np.ndarray) -> np.ndarray:
  """``lut[r, b]``: the symbol whose interval holds quantile ``b << LUT_SHIFT``."""
  cdf = np.ascontiguousarray(cdf, np.int32)
  if _IS_C:
    lut = np.empty((cdf.shape[0], 1 << LUT_BITS), np.uint16)
    _impl.build_lut(cdf, lut)
    return lut
  return _kernels().build_lut(cdf)


# ----------------------------------------------------------------------------------
# Fixed-point models (NumPy).

def _pad_width(k: int) -> int:
  return 1 << int(np.ceil(np.log2(k + 1)))


def fixed_point_cdf(probs: np.ndarray) -> np.ndarray:
  """float64 rows ``(N, K)`` -> ``(N, P)`` int32 CDFs of constriction's lazy model.

  ``P`` is the power of two ``>= K + 1``; entries ``K .. P-1`` are ``2**24``.
  """
  p = np.ascontiguousarray(probs, np.float64)
  if p.ndim == 1:
    p = p[None]
  n, k = p.shape
  cum = np.zeros((n, k + 1), np.float64)
  np.cumsum(p, axis=1, out=cum[:, 1:])        # sequential, like Rust's iterator sum
  total = cum[:, -1:]
  if not np.all(np.isfinite(total)) or np.any(total <= 0):
    raise ValueError("probability rows must be finite, non-negative, not all zero")
  scale = float(ONE - k) / total
  out = np.full((n, _pad_width(k)), ONE, np.int64)
  out[:, :k] = np.floor(cum[:, :k] * scale).astype(np.int64) + np.arange(k)
  return out.astype(np.int32)


@functools.lru_cache(maxsize=1)
def load_cdfs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """``tables`` as ``(cdf, lut)``: padded fixed-point CDFs (2-D: rows of ``latent``
  are ``s * 16 + q``) and their quantile look-up tables (``build_lut``)."""
  from moric_jax.coding import tables
  out = {}
  for key, p in tables.load_probabilities().items():
    cdf = fixed_point_cdf(p.reshape(-1, p.shape[-1]))
    lut = build_lut(cdf)
    cdf.setflags(write=False)
    lut.setflags(write=False)
    out[key] = (cdf, lut)
  return out


def open_stream(words: np.ndarray) -> np.ndarray:
  """Initial ``[state, pos]`` (uint64) of ``words``; raises ValueError on a zero last word."""
  n = words.size
  if n == 0:
    return np.zeros(2, np.uint64)
  if words[-1] == 0:
    raise ValueError("the last word of the payload is zero")
  state = int(words[-1])
  pos = n - 1
  if pos > 0:
    state = (state << 32) | int(words[pos - 1])
    pos -= 1
  return np.array([state, pos], np.uint64)

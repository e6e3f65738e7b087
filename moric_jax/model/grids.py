"""Latent-grid geometry in pure NumPy (shared by the trainer and the JAX-free decoder).

Grid k (k = 0..L-1) of an ``H x W`` image has shape ``(ceil(H / 2^k), ceil(W / 2^k))``
and is upsampled to the full frame by separable bilinear (half-pixel) resampling.
"""
from __future__ import annotations

import functools
import math

import numpy as np


def grid_shapes(height: int, width: int, num_grids: int) -> list[tuple[int, int]]:
  """Shapes of the L latent grids for an ``height x width`` image."""
  return [(math.ceil(height / 2**k), math.ceil(width / 2**k)) for k in range(num_grids)]


@functools.lru_cache(maxsize=64)
def upsampling_matrix(out_size: int, in_size: int) -> np.ndarray:
  """``(out_size, in_size)`` float32 matrix of 1-D bilinear (half-pixel) resampling.

  Same convention as ``jax.image.resize(..., "bilinear")`` (triangle kernel, scale
  ``out / in``, weights renormalised at the borders), built in NumPy so that no XLA
  program is compiled per image size.
  """
  scale = out_size / in_size
  pos = (np.arange(out_size, dtype=np.float64) + 0.5) / scale - 0.5
  weights = np.maximum(0.0, 1.0 - np.abs(pos[:, None] - np.arange(in_size)[None, :]))
  weights /= weights.sum(axis=1, keepdims=True)
  out = weights.astype(np.float32)
  out.setflags(write=False)
  return out


def footprint(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray]:
  """Pixel range ``[lo_i, hi_i)`` each of ``in_size`` latents reaches when upsampled.

  Bilinear with half-pixel centres: pixel ``y`` reads latent ``i`` iff
  ``|(2y + 1) in - (2i + 1) out| < 2 out`` (pure integers, same on every machine).
  """
  i = np.arange(in_size, dtype=np.int64)
  c = (2 * i + 1) * out_size
  y_lo = ((c - 2 * out_size) // in_size + 1) // 2        # first y with 2y+1 > (c-2out)/in
  y_hi = (-(-(c + 2 * out_size) // in_size)) // 2        # first y with 2y+1 >= (c+2out)/in
  return np.clip(y_lo, 0, out_size), np.clip(y_hi, 0, out_size)


def footprint_centre(out_size: int, in_size: int) -> np.ndarray:
  """``(in_size,) int64``: the pixel at the centre of each latent's footprint.

  Latent ``i`` sits at ``(2i + 1) out / (2 in) - 1/2`` in pixel coordinates; its
  centre pixel is ``floor((2i + 1) out / (2 in))`` (integers only).
  """
  i = np.arange(in_size, dtype=np.int64)
  return np.minimum(((2 * i + 1) * out_size) // (2 * in_size), out_size - 1)


@functools.lru_cache(maxsize=64)
def two_taps(out_size: int, in_size: int) -> tuple[np.ndarray, ...]:
  """Bilinear resampling as two taps per output: ``(i0, i1, w0, w1)`` with
  ``out = w0 * x[i0] + w1 * x[i1]``: the nonzeros of ``upsampling_matrix``
  (same float64 formula, same float32 values; tested), computed in O(out_size)
  instead of building the dense matrix (~60 ms for a 768x512 frame's 14 matrices)."""
  if not 1 <= in_size <= out_size:
    raise ValueError(f"bilinear two-tap resampling needs 1 <= {in_size} <= {out_size}")
  scale = out_size / in_size
  pos = (np.arange(out_size, dtype=np.float64) + 0.5) / scale - 0.5
  f = np.floor(pos)
  fi = f.astype(np.int64)
  wl = np.where(fi >= 0, np.maximum(0.0, 1.0 - np.abs(pos - f)), 0.0)
  wr = np.where(fi + 1 <= in_size - 1, np.maximum(0.0, 1.0 - np.abs(pos - (f + 1.0))), 0.0)
  total = wl + wr
  left = wl > 0
  i0 = np.where(left, fi, fi + 1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  w0 = (np.where(left, wl, wr) / total).astype(np.float32)
  w1 = np.where(left & (i1 != i0), wr / total, 0.0).astype(np.float32)
  out = (i0, i1, w0, w1)
  for x in out:
    x.setflags(write=False)
  return out

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
def two_taps(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                   np.ndarray]:
  """Bilinear upsampling as two taps per output: ``(i0, i1, w0, w1)`` with
  ``out[y] = w0[y] * x[i0[y]] + w1[y] * x[i1[y]]``: the nonzeros of
  ``upsampling_matrix(out_size, in_size)`` (``out_size >= in_size``)."""
  m = upsampling_matrix(out_size, in_size)
  if np.count_nonzero(m, axis=1).max() > 2:
    raise ValueError(f"resampling {in_size} -> {out_size} is not a two-tap filter")
  rows = np.arange(out_size)
  i0 = np.argmax(m != 0, axis=1)
  i1 = np.minimum(i0 + 1, in_size - 1)
  w0 = m[rows, i0].astype(np.float32)
  w1 = np.where(i1 != i0, m[rows, i1], 0.0).astype(np.float32)
  for a in (i0, i1, w0, w1):
    a.setflags(write=False)
  return i0, i1, w0, w1

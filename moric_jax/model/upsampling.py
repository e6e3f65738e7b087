"""Learned hierarchical upsampling of the latent pyramid (shared by trainer and decoder).

Grid ``k`` reaches the full frame through ``k`` successive 2x steps; step ``j`` (from
grid ``j + 1``'s resolution to grid ``j``'s) filters every channel that passes through
it with one learned separable, symmetric 8-tap transposed filter, the same along rows
and columns. With output ``o = 2i + p`` at input position ``i - 1/4`` (``p = 0``) or
``i + 1/4`` (``p = 1``), and taps ``w0..w3`` for input distances 1/4, 3/4, 5/4, 7/4::

  even[i] = w3 x[i-2] + w1 x[i-1] + w0 x[i]   + w2 x[i+1]
  odd[i]  = w2 x[i-1] + w0 x[i]   + w1 x[i+1] + w3 x[i+2]

(edge-replicated borders), then cropped to the finer grid's size. The trained values
are offsets from the 2x bilinear taps ``(3/4, 1/4, 0, 0)``, so a zero offset is
bilinear at every step (and costs almost no bits). Parameters: ``(L - 1, 4)`` float32.

Written once for both sides: the functions take the array module (``numpy`` for the
JAX-free decoder, ``jax.numpy`` for training).
"""
from __future__ import annotations

import numpy as np

KINDS = ("bilinear", "learned")
NUM_TAPS = 4                      # Free taps per step (an 8-tap symmetric filter).
BILINEAR_TAPS = np.array([0.75, 0.25, 0.0, 0.0], np.float32)


def has_filters(kind: str, num_grids: int) -> bool:
  """Whether upsampling ``kind`` has filters to train and code (one grid: no step)."""
  return kind == "learned" and num_grids > 1


def num_params(num_grids: int) -> int:
  """Scalar parameters of the learned upsampling for ``num_grids`` grids."""
  return max(num_grids - 1, 0) * NUM_TAPS


def init_offsets(num_grids: int) -> np.ndarray:
  """``(L - 1, 4)`` zero offsets (bilinear at every step)."""
  return np.zeros((max(num_grids - 1, 0), NUM_TAPS), np.float32)


def _upsample_axis(x, taps, size: int, axis: int, xp):
  """2x along ``axis`` of ``x`` (``(C, h, w)``), cropped to ``size``."""
  w0, w1, w2, w3 = taps[0], taps[1], taps[2], taps[3]
  n = x.shape[axis]
  pad = [(0, 0)] * x.ndim
  pad[axis] = (2, 2)
  xp_ = xp.pad(x, pad, mode="edge")
  cut = lambda a, lo, hi: a[(slice(None),) * axis + (slice(lo, hi),)]
  take = lambda s: cut(xp_, s + 2, s + 2 + n)
  xm2, xm1, x0, x1, x2 = take(-2), take(-1), take(0), take(1), take(2)
  even = w3 * xm2 + w1 * xm1 + w0 * x0 + w2 * x1
  odd = w2 * xm1 + w0 * x0 + w1 * x1 + w3 * x2
  both = xp.stack([even, odd], axis=axis + 1)          # (..., n, 2, ...)
  shape = list(x.shape)
  shape[axis] = 2 * n
  out = both.reshape(shape)
  return cut(out, 0, size) if size != 2 * n else out


def upsample_2x(x, taps, size: tuple[int, int], xp=np):
  """``(C, h, w)`` -> ``(C, size[0], size[1])`` by one learned 2x step (taps ``(4,)``)."""
  return _upsample_axis(_upsample_axis(x, taps, size[0], 1, xp), taps, size[1], 2, xp)


def upsample_stack(grids: list, offsets, xp=np):
  """L grids ``(h_k, w_k)`` (grid 0 at full size) -> ``(L, H, W)`` planar stack.

  ``offsets``: ``(L - 1, 4)`` learned offsets from the bilinear taps.
  """
  taps = offsets + BILINEAR_TAPS
  x = grids[-1][None]
  for j in range(len(grids) - 2, -1, -1):
    x = upsample_2x(x, taps[j], grids[j].shape, xp)
    x = xp.concatenate([grids[j][None], x], axis=0)
  return x


# ------------------------------------------------------------------------------------
# The same operator as per-output taps (decoder): grid k's k steps along one axis are
# one banded linear map, ``out[o] = sum_t weights[o, t] * x[start[o] + t]``.

def _normalise(pos: np.ndarray, weights: np.ndarray, n_in: int
               ) -> tuple[np.ndarray, np.ndarray]:
  """Absolute input positions ``(n_out, T)`` (may repeat, clamped to the input) and
  their weights -> ``(start (n_out,) int64, weights (n_out, T') float64)`` with
  ``0 <= start`` and ``start + T' <= n_in``."""
  pos = np.clip(pos, 0, n_in - 1)
  live = weights != 0.0       # zero taps do not widen the band
  lo = np.where(live, pos, n_in).min(axis=1)
  hi = np.where(live, pos, -1).max(axis=1)
  lo, hi = np.where(hi < 0, 0, lo), np.maximum(hi, 0)
  width = min(int((hi - lo).max()) + 1, n_in)
  start = np.minimum(lo, n_in - width)
  weights = np.where(live, weights, 0.0)
  pos = np.where(live, pos, start[:, None])
  n_out = pos.shape[0]
  flat = (np.arange(n_out)[:, None] * width + (pos - start[:, None])).ravel()
  out = np.bincount(flat, weights.ravel(), minlength=n_out * width)
  return start.astype(np.int64), out.reshape(n_out, width)


def step_band(taps: np.ndarray, n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray]:
  """One 2x step along an axis (edge-replicated, cropped to ``n_out``) as a band."""
  w0, w1, w2, w3 = (float(t) for t in taps)
  o = np.arange(n_out)
  i, odd = o // 2, (o % 2).astype(bool)
  pos = (i - 2)[:, None] + np.arange(5)[None, :]
  weights = np.where(odd[:, None], [0.0, w2, w0, w1, w3], [w3, w1, w0, w2, 0.0])
  return _normalise(pos, weights, n_in)


def compose_bands(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                  n_in: int) -> tuple[np.ndarray, np.ndarray]:
  """Band of ``A @ B`` (``A``: n0 x n1, ``B``: n1 x n_in)."""
  sa, wa = a
  sb, wb = b
  rows = sa[:, None] + np.arange(wa.shape[1])[None, :]          # (n0, TA) rows of B
  pos = (sb[rows][..., None] + np.arange(wb.shape[1])).reshape(len(sa), -1)
  weights = (wa[..., None] * wb[rows]).reshape(len(sa), -1)
  return _normalise(pos, weights, n_in)


def axis_bands(offsets: np.ndarray, sizes: list[int]
               ) -> list[tuple[np.ndarray, np.ndarray]]:
  """Per grid ``k``, the band ``(start (n_0,), weights (n_0, T_k) float32)`` of its
  ``k`` steps along one axis; ``sizes``: the grids' lengths along it (grid 0 first)."""
  taps = np.asarray(offsets, np.float64) + BILINEAR_TAPS.astype(np.float64)
  n0 = sizes[0]
  band = (np.arange(n0, dtype=np.int64), np.ones((n0, 1)))
  out = [band]
  for k in range(1, len(sizes)):
    band = compose_bands(band, step_band(taps[k - 1], sizes[k], sizes[k - 1]), sizes[k])
    out.append(band)
  return [(s, w.astype(np.float32)) for s, w in out]

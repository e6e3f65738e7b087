"""Where each region lives: bounding box, pixel mask and which latents are coded.

Shared by encoder and decoder (pure NumPy integer/boolean arithmetic, so both sides
derive the same layout from the decoded contours). Region 0 is the background: its box
is the whole image and all its latents are coded (layer 0 renders the whole frame).
Region ``r >= 1`` owns the pixels of its decoded mask not covered by a later region
(DESIGN §2.3: the last covering region wins); its latent pyramid spans the bounding box
of those pixels, and a latent is coded only if its bilinear footprint touches them.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from moric_jax.model import latents as latents_lib


@dataclasses.dataclass(frozen=True, eq=False)
class RegionLayout:
  """``box = (top, left, height, width)`` in pixels; ``mask`` ``(height, width)`` bool
  pixels the region shows; ``coded``: per grid ``(h_k, w_k)`` bool, latents sent."""
  box: tuple[int, int, int, int]
  mask: np.ndarray
  coded: tuple[np.ndarray, ...]

  @property
  def grid_shapes(self) -> list[tuple[int, int]]:
    return [c.shape for c in self.coded]

  @property
  def num_coded(self) -> int:
    return int(sum(c.sum() for c in self.coded))


def partition(decoded_masks: list[np.ndarray], height: int, width: int) -> np.ndarray:
  """``(H, W) int32`` label map: the last decoded mask covering a pixel wins, else 0."""
  labels = np.zeros((height, width), np.int32)
  for i, m in enumerate(decoded_masks, start=1):
    labels[np.asarray(m, bool)] = i
  return labels


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


def _any_in_ranges(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
  """For each range ``[lo_i, hi_i)`` along ``axis``: whether ``a`` has a True there."""
  cs = np.cumsum(a, axis=axis, dtype=np.int32)
  cs = np.concatenate([np.zeros_like(np.take(cs, [0], axis=axis)), cs], axis=axis)
  return (np.take(cs, hi, axis=axis) - np.take(cs, lo, axis=axis)) > 0


def coded_latents(mask: np.ndarray, num_grids: int) -> tuple[np.ndarray, ...]:
  """Per grid: latents whose bilinear footprint reaches a pixel of ``mask`` (O(HW))."""
  h, w = mask.shape
  out = []
  for gh, gw in latents_lib.grid_shapes(h, w, num_grids):
    rl, rh = footprint(h, gh)
    cl, ch = footprint(w, gw)
    rows = _any_in_ranges(mask, rl, rh, axis=0)          # (gh, w)
    out.append(_any_in_ranges(rows, cl, ch, axis=1))     # (gh, gw)
  return tuple(out)


def layout_regions(decoded_masks: list[np.ndarray], height: int, width: int,
                   num_grids: int) -> list[RegionLayout]:
  """Layouts of the background and of every object region (``len(masks) + 1``).

  Raises ``ValueError`` if an object region shows no pixel (hidden by later ones).
  """
  labels = partition(decoded_masks, height, width)
  out = [RegionLayout((0, 0, height, width), labels == 0,
                      tuple(np.ones(s, bool) for s in
                            latents_lib.grid_shapes(height, width, num_grids)))]
  for r in range(1, len(decoded_masks) + 1):
    own = labels == r
    if not own.any():
      raise ValueError(f"region {r} has no pixel of its own (later regions cover it)")
    rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    h, w = int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
    mask = own[top:top + h, left:left + w]
    out.append(RegionLayout((top, left, h, w), mask, coded_latents(mask, num_grids)))
  return out

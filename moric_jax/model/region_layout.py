"""Where each region lives and which latents it owns (DESIGN §2.1, §2.3).

Pure NumPy integer/boolean arithmetic, shared by the encoder and the JAX-free decoder,
so both derive the same layout from the decoded contours:

* ``labels``: the last decoded mask covering a pixel wins, else background (0).
* Region ``r``'s box is the bounding box of the pixels it owns (region 0: the frame);
  its LSN runs over that box only and is kept inside its mask.
* One latent pyramid covers the whole image. Latent ``(k, i, j)`` is owned by the
  region that owns the pixel at its footprint's centre (``grids.footprint_centre``);
  its rate is weighed by that region's lambda. Nothing is coded twice.
* Object-only files (no background layer) code only the latents whose bilinear
  footprint reaches an object pixel; the others are 0 and cost nothing (with learned
  upsampling, pixels near an object's edge also read some of these zeros).
"""
from __future__ import annotations

import dataclasses

import numpy as np

from moric_jax.model import grids


@dataclasses.dataclass(frozen=True, eq=False)
class Layout:
  """Region layout of one image.

  ``labels``: ``(H, W) int32`` region of every pixel; ``boxes[r] = (top, left,
  height, width)``; ``owners[k]``: ``(h_k, w_k) int32`` owning region of every latent;
  ``coded[k]``: ``(h_k, w_k)`` bool, latents sent (all of them unless object-only).
  """
  labels: np.ndarray
  boxes: tuple[tuple[int, int, int, int], ...]
  owners: tuple[np.ndarray, ...]
  coded: tuple[np.ndarray, ...]
  object_only: bool = False

  @property
  def num_regions(self) -> int:
    return len(self.boxes)

  @property
  def rendered(self) -> tuple[int, ...]:
    """Regions that have an LSN (all but the background in object-only files)."""
    return tuple(range(1 if self.object_only else 0, self.num_regions))

  @property
  def all_coded(self) -> bool:
    return all(c.all() for c in self.coded)

  def box_mask(self, r: int) -> np.ndarray:
    """``(h, w)`` bool: the pixels of region ``r`` inside its box."""
    t, l, h, w = self.boxes[r]
    return self.labels[t:t + h, l:l + w] == r

  def region_pixels(self) -> np.ndarray:
    """``(R,) int64`` pixels owned by each region."""
    return np.bincount(self.labels.ravel(), minlength=self.num_regions)

  def shown(self) -> np.ndarray:
    """``(H, W)`` bool: pixels the file renders (all but background if object-only)."""
    return self.labels > 0 if self.object_only else np.ones(self.labels.shape, bool)

  def owner_ids(self) -> np.ndarray:
    """Owners of all latents, raveled grid by grid (the order of the coded pyramid)."""
    return np.concatenate([o.ravel() for o in self.owners])


def partition(decoded_masks: list[np.ndarray], height: int, width: int) -> np.ndarray:
  """``(H, W) int32`` label map: the last decoded mask covering a pixel wins, else 0."""
  labels = np.zeros((height, width), np.int32)
  for i, m in enumerate(decoded_masks, start=1):
    labels[np.asarray(m, bool)] = i
  return labels


def _any_in_ranges(a: np.ndarray, lo: np.ndarray, hi: np.ndarray, axis: int) -> np.ndarray:
  """For each range ``[lo_i, hi_i)`` along ``axis``: whether ``a`` has a True there."""
  cs = np.cumsum(a, axis=axis, dtype=np.int32)
  cs = np.concatenate([np.zeros_like(np.take(cs, [0], axis=axis)), cs], axis=axis)
  return (np.take(cs, hi, axis=axis) - np.take(cs, lo, axis=axis)) > 0


def coded_latents(mask: np.ndarray, num_grids: int) -> tuple[np.ndarray, ...]:
  """Per grid: latents whose bilinear footprint reaches a pixel of ``mask`` (O(HW))."""
  h, w = mask.shape
  out = []
  for gh, gw in grids.grid_shapes(h, w, num_grids):
    rl, rh = grids.footprint(h, gh)
    cl, ch = grids.footprint(w, gw)
    rows = _any_in_ranges(mask, rl, rh, axis=0)          # (gh, w)
    out.append(_any_in_ranges(rows, cl, ch, axis=1))     # (gh, gw)
  return tuple(out)


def latent_owners(labels: np.ndarray, num_grids: int) -> tuple[np.ndarray, ...]:
  """Per grid ``(h_k, w_k) int32``: the label at each latent's footprint centre."""
  h, w = labels.shape
  out = []
  for gh, gw in grids.grid_shapes(h, w, num_grids):
    rows, cols = grids.footprint_centre(h, gh), grids.footprint_centre(w, gw)
    out.append(np.ascontiguousarray(labels[np.ix_(rows, cols)], dtype=np.int32))
  return tuple(out)


def make_layout(decoded_masks: list[np.ndarray], height: int, width: int, num_grids: int,
                object_only: bool = False) -> Layout:
  """Layout of the background and of every object (``len(masks) + 1`` regions).

  Raises ``ValueError`` if an object shows no pixel (hidden by later ones), or if an
  object-only layout has no object.
  """
  labels = partition(decoded_masks, height, width)
  boxes = [(0, 0, height, width)]
  for r in range(1, len(decoded_masks) + 1):
    own = labels == r
    if not own.any():
      raise ValueError(f"region {r} has no pixel of its own (later regions cover it)")
    rows, cols = np.flatnonzero(own.any(axis=1)), np.flatnonzero(own.any(axis=0))
    top, left = int(rows[0]), int(cols[0])
    boxes.append((top, left, int(rows[-1]) - top + 1, int(cols[-1]) - left + 1))
  owners = latent_owners(labels, num_grids)
  if object_only:
    if not decoded_masks:
      raise ValueError("an object-only file needs at least one object mask")
    coded = coded_latents(labels > 0, num_grids)
    # A coded latent centred on a background pixel (it reaches an object only with
    # the edge of its footprint) is charged to object 1.
    owners = tuple(np.where((o == 0) & c, 1, o).astype(np.int32)
                   for o, c in zip(owners, coded))
  else:
    coded = tuple(np.ones(o.shape, bool) for o in owners)
  return Layout(labels, tuple(boxes), owners, coded, bool(object_only))

"""Connected components of a boolean mask and their (sub-pixel) contours.

Conventions used by the whole ``regions`` package:

- Masks are ``(H, W)`` bool arrays; ``True`` = object.
- Components are **8-connected** (background is then 4-connected, so every component
  has exactly one outer boundary and each hole is a separate 4-connected background area).
- Points are ``(row, col)`` float pairs in pixel units; pixel ``(r, c)`` has its centre at
  ``(r, c)``.
- A contour is a closed polyline given as an ``(N, 2)`` array *without* the repeated end
  point. Contours come from marching squares (``skimage.measure.find_contours``) on the
  zero-padded component, so at ``level=0.5`` they pass half-way between object and
  background pixel centres (sub-pixel); a level below 0.5 moves them slightly outward.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from skimage import measure

_EIGHT = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True)
class Component:
    """One 8-connected component, stored as a crop.

    ``pixels`` is the component's own pixels in the crop (holes not filled), ``filled`` the
    same with holes filled, and ``offset`` = (row, col) of the crop's top-left pixel.
    """

    offset: tuple[int, int]
    pixels: np.ndarray
    filled: np.ndarray

    @property
    def n_pixels(self) -> int:
        return int(self.pixels.sum())


def components(mask: np.ndarray) -> list[Component]:
    """8-connected components of ``mask`` (H, W) bool, in raster order of their first pixel."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    labels, n = ndimage.label(mask, structure=_EIGHT)
    out: list[Component] = []
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        pix = labels[sl] == i
        out.append(Component((sl[0].start, sl[1].start), pix, ndimage.binary_fill_holes(pix)))
    return out


def _polygon_area(poly: np.ndarray) -> float:
    r, c = poly[:, 0], poly[:, 1]
    return 0.5 * float(np.dot(r, np.roll(c, -1)) - np.dot(c, np.roll(r, -1)))


def _crop_contours(crop: np.ndarray, offset: tuple[int, int], level: float) -> list[np.ndarray]:
    padded = np.pad(crop.astype(np.float64), 1)
    shift = np.array([offset[0] - 1.0, offset[1] - 1.0])
    out = []
    for cnt in measure.find_contours(padded, level, fully_connected="high"):
        if len(cnt) > 1 and np.allclose(cnt[0], cnt[-1]):
            cnt = cnt[:-1]
        out.append(cnt + shift)
    return out


def outer_contour(comp: Component, level: float = 0.5) -> np.ndarray:
    """Outer boundary of a component as an ``(N, 2)`` closed (row, col) polyline, image coords."""
    if not 0.0 < level < 1.0:
        raise ValueError("level must be in (0, 1)")
    cnts = _crop_contours(comp.filled, comp.offset, level)
    return max(cnts, key=lambda p: abs(_polygon_area(p)) if len(p) > 2 else -1.0)


def hole_contours(comp: Component, level: float = 0.5) -> list[np.ndarray]:
    """Boundaries of the component's holes (one closed polyline per hole), image coords."""
    if not comp.pixels.sum() or np.array_equal(comp.pixels, comp.filled):
        return []
    cnts = _crop_contours(comp.pixels, comp.offset, level)
    cnts.sort(key=lambda p: abs(_polygon_area(p)) if len(p) > 2 else -1.0, reverse=True)
    return cnts[1:]


def extract_contours(
    mask: np.ndarray, holes: bool = False, level: float = 0.5
) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """All components' contours: a list of ``(outer, hole_list)``; ``hole_list`` is empty
    unless ``holes=True``. Ordered like :func:`components`."""
    return [
        (outer_contour(c, level), hole_contours(c, level) if holes else [])
        for c in components(mask)
    ]


def contour_length(poly: np.ndarray) -> float:
    """Perimeter (px) of a closed polyline ``(N, 2)``."""
    if len(poly) < 2:
        return 0.0
    return float(np.linalg.norm(np.roll(poly, -1, axis=0) - poly, axis=1).sum())


def boundary_pixels(mask: np.ndarray) -> np.ndarray:
    """Object pixels of the hole-filled mask with a 4-neighbour outside it (image border
    counts as outside). Returns an (H, W) bool map; its sum is the 'boundary pixel' count
    used to normalise bit rates."""
    filled = ndimage.binary_fill_holes(np.asarray(mask, dtype=bool))
    eroded = ndimage.binary_erosion(filled, border_value=0)
    return filled & ~eroded

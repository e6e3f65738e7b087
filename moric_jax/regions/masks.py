"""Region label maps given by the user: loading, validation and the region options.

A label map is an ``(H, W) int32`` array with ``0`` = background and objects ``1..N``
(contiguous, ``N <= MAX_REGIONS - 1``). Region ``i`` is coded as the C* contour of
``labels == i`` (:mod:`moric_jax.regions.cstar`); decoded regions overlap, and a pixel
belongs to the last region covering it (DESIGN §2.3).

Mask files are read with Pillow:

- grey (modes ``1``, ``L``, ``LA``, ``I``, ``I;16``) and palette (``P``, ``PA``: the palette
  index is the value) images: each distinct non-zero value is one object;
- RGB / RGBA whose three channels are equal everywhere: read as grey;
- colour RGB / RGBA: each distinct non-black colour is one object.

Objects are numbered ``1..N`` by increasing original value (colours by ``(R, G, B)`` in
lexicographic order), so a binary mask (values ``{0, v}``) gives one object labelled 1.
Fully transparent pixels (alpha 0, or a palette's transparent index) are background.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from moric_jax.image_io import ImageError

MAX_REGIONS = 16  # regions per image, background (label 0) included

_HINT = "anti-aliased or JPEG-compressed masks must be thresholded first"


def load_label_map(path: str | os.PathLike, shape: tuple[int, int]) -> np.ndarray:
  """Reads a mask image into an ``(H, W) int32`` label map (0 = background, 1..N).

  Args:
    path: mask image file (any format Pillow reads; see the module docstring).
    shape: ``(H, W)`` of the image the mask belongs to, in pixels.

  Raises:
    ImageError: missing or unreadable file, size different from the image's, more than
      ``MAX_REGIONS - 1`` objects, or no object pixel at all.
  """
  path = Path(path)
  name = f"mask {path}"
  if not path.exists():
    raise ImageError(f"mask not found: {path}")
  if not path.is_file():
    raise ImageError(f"mask is not a file: {path}")
  try:
    with Image.open(path) as im:
      im.load()
      im = ImageOps.exif_transpose(im)
      _check_shape(im.size[::-1], shape, name)
      values, unit = _mask_values(im, name)
  except ImageError:
    raise
  except UnidentifiedImageError:
    raise ImageError(f"mask is not a readable image: {path}") from None
  except Image.DecompressionBombError as e:
    raise ImageError(f"mask {path} is too large: {e}") from None
  except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt files
    raise ImageError(f"cannot read mask {path}: {e}") from None
  return _renumber(values, name, unit)


def validate_label_map(labels: np.ndarray, shape: tuple[int, int],
                       name: str = "mask") -> np.ndarray:
  """Checks an in-memory label map and renumbers it to ``0..N`` (``(H, W) int32``).

  ``labels`` is any 2-D integer or bool array of shape ``(H, W) == shape[:2]``; value 0 is
  the background and each distinct non-zero value one object, numbered ``1..N`` by
  increasing value.

  Raises:
    ImageError: wrong dtype or shape, negative values, more than ``MAX_REGIONS - 1``
      objects, or no object pixel.
  """
  arr = np.asarray(labels)
  if not (arr.dtype == bool or np.issubdtype(arr.dtype, np.integer)):
    raise ImageError(f"{name} must hold integer or bool labels, got dtype {arr.dtype}")
  if arr.ndim != 2:
    raise ImageError(f"{name} must be a 2-D label map, got shape {arr.shape}")
  _check_shape(arr.shape, shape, name)
  if arr.dtype != bool and arr.size and arr.min() < 0:
    raise ImageError(f"{name} has negative labels (min {int(arr.min())}); labels must be >= 0")
  return _renumber(arr, name, "values")


def parse_region_lmbdas(spec: str, num_regions: int) -> dict[int, float]:
  """Parses per-region rate-distortion weights: ``"1=0.002,2=0.01"`` -> ``{1: 0.002, 2: 0.01}``.

  ``""`` gives ``{}``. Region ids must be in ``0..num_regions-1`` (0 = background), each at
  most once; values must be positive finite floats.

  Raises:
    ValueError: bad syntax, unknown or repeated region, or a bad value.
  """
  spec = (spec or "").strip()
  out: dict[int, float] = {}
  if not spec:
    return out
  for item in spec.split(","):
    m = re.fullmatch(r"\s*(\d+)\s*=\s*(\S+)\s*", item)
    if m is None:
      raise ValueError(f"bad region lambda {item.strip()!r} in {spec!r}: expected "
                       "REGION=LAMBDA pairs separated by commas, e.g. '1=0.002,2=0.01'")
    region = int(m.group(1))
    try:
      value = float(m.group(2))
    except ValueError:
      raise ValueError(f"bad lambda {m.group(2)!r} for region {region} in {spec!r}: "
                       "not a number") from None
    if not (math.isfinite(value) and value > 0):
      raise ValueError(f"lambda for region {region} must be a positive finite number, "
                       f"got {m.group(2)!r}")
    if not 0 <= region < num_regions:
      raise ValueError(f"region {region} in {spec!r} does not exist: this image has "
                       f"regions 0..{num_regions - 1} (0 = background)")
    if region in out:
      raise ValueError(f"region {region} is given twice in {spec!r}")
    out[region] = value
  return out


def parse_regions_spec(spec: str) -> int:
  """Parses the automatic region proposal option; returns the number of regions ``K``.

  ``""`` or ``"none"`` -> 0 (no automatic proposal); ``"auto:K"`` -> ``K`` with
  ``2 <= K <= MAX_REGIONS`` (``K`` counts all regions, the background included).

  Raises:
    ValueError: anything else.
  """
  s = (spec or "").strip().lower()
  if s in ("", "none"):
    return 0
  m = re.fullmatch(r"auto\s*:\s*(\d+)", s)
  if m is None:
    raise ValueError(f"bad regions option {spec!r}: expected 'none' or 'auto:K' with K the "
                     f"number of regions including the background (2..{MAX_REGIONS})")
  k = int(m.group(1))
  if not 2 <= k <= MAX_REGIONS:
    raise ValueError(f"bad regions option {spec!r}: K = {k} must be in 2..{MAX_REGIONS} "
                     "(K counts the background)")
  return k


# ----------------------------------------------------------------------------- helpers
def _check_shape(got: tuple[int, ...], shape: tuple[int, int], name: str) -> None:
  """``got`` and ``shape`` are ``(H, W)``; messages say W x H like image tools do."""
  h, w = int(got[0]), int(got[1])
  H, W = int(shape[0]), int(shape[1])
  if (h, w) != (H, W):
    raise ImageError(f"{name} is {w}x{h} but the image is {W}x{H} (width x height)")


def _mask_values(im: Image.Image, name: str) -> tuple[np.ndarray, str]:
  """``(H, W)`` non-negative integer values of a mask image (0 = background)."""
  mode = im.mode
  if mode == "F":
    raise ImageError(f"{name} is a 32-bit float image (mode F); save it as 8-bit grey, "
                     "palette or RGB")
  if mode in ("1", "L", "P") or mode.startswith("I"):
    values = np.asarray(im).astype(np.int64)
    t = im.info.get("transparency") if mode == "P" else None
    if isinstance(t, int):
      values[values == t] = 0
    return values, "values"
  if mode in ("LA", "La", "PA"):
    arr = np.asarray(im.convert("LA") if mode == "La" else im).astype(np.int64)
    values = arr[..., 0].copy()
    values[arr[..., 1] == 0] = 0
    return values, "values"
  rgba = np.asarray(im.convert("RGBA")).astype(np.int64)
  rgb, alpha = rgba[..., :3], rgba[..., 3]
  if np.all(rgb[..., 0:1] == rgb[..., 1:]):
    values = rgb[..., 0].copy()
    unit = "values"
  else:
    values = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    unit = "non-black colours"
  values[alpha == 0] = 0
  return values, unit


def _renumber(values: np.ndarray, name: str, unit: str) -> np.ndarray:
  """Maps 0 -> 0 and the distinct non-zero values, ascending, to ``1..N``."""
  uniq, inv = np.unique(values, return_inverse=True)
  n = int(np.count_nonzero(uniq))
  if n == 0:
    raise ImageError(f"{name} has no object pixel (everything is background 0)")
  if n > MAX_REGIONS - 1:
    raise ImageError(f"{name} has {n} objects (distinct {unit}); at most {MAX_REGIONS - 1} "
                     f"are supported ({_HINT})")
  out = inv.reshape(values.shape).astype(np.int32)
  if uniq[0] != 0:
    out += 1
  return out

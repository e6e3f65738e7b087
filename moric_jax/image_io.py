"""Load, validate and save images.

Images inside the codec are ``(H, W, 3) float32`` arrays with values in ``[0, 1]``;
8-bit outputs are ``(H, W, 3) uint8``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError


class ImageError(ValueError):
  """A user-facing problem with an input image (missing, unreadable, unsupported)."""


def load_image(path: str | os.PathLike, max_pixels: int | None = None) -> np.ndarray:
  """Reads an image file into a ``(H, W, 3) float32`` array in ``[0, 1]``.

  EXIF orientation is applied; grey, palette and opaque-alpha images become RGB;
  16-bit images are scaled to [0, 1] and rounded to 8 bits by the codec's output.

  Raises:
    ImageError: missing file, not an image, empty image, too many pixels or a
      non-opaque alpha channel.
  """
  path = Path(path)
  if not path.exists():
    raise ImageError(f"image not found: {path}")
  if not path.is_file():
    raise ImageError(f"not a file: {path}")
  try:
    with Image.open(path) as im:
      im.load()
      im = ImageOps.exif_transpose(im)
      return pil_to_array(im, max_pixels=max_pixels, name=str(path))
  except UnidentifiedImageError:
    raise ImageError(f"not a readable image: {path}") from None
  except (OSError, SyntaxError) as e:  # truncated / corrupt files
    raise ImageError(f"cannot read image {path}: {e}") from None


def pil_to_array(im: Image.Image, max_pixels: int | None = None,
                 name: str = "image") -> np.ndarray:
  """Converts a PIL image to ``(H, W, 3) float32`` in ``[0, 1]``."""
  w, h = im.size
  if w == 0 or h == 0:
    raise ImageError(f"{name} is empty ({w}x{h})")
  if max_pixels is not None and w * h > max_pixels:
    raise ImageError(
        f"{name} has {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")
  if im.mode in ("I;16", "I;16B", "I;16L", "I"):
    arr = np.asarray(im, dtype=np.float64)
    scale = 65535.0 if arr.max() > 255 or im.mode.startswith("I;16") else 255.0
    grey = np.clip(arr / scale, 0.0, 1.0).astype(np.float32)
    return np.repeat(grey[:, :, None], 3, axis=2)
  if "A" in im.mode or (im.mode == "P" and "transparency" in im.info):
    rgba = np.asarray(im.convert("RGBA"))
    if np.any(rgba[..., 3] != 255):
      raise ImageError(f"{name} has a non-opaque alpha channel; flatten it first")
    return rgba[..., :3].astype(np.float32) / 255.0
  rgb = np.asarray(im.convert("RGB"))
  return rgb.astype(np.float32) / 255.0


def validate_image(image: np.ndarray) -> np.ndarray:
  """Checks an in-memory image and returns it as ``(H, W, 3) float32`` in [0, 1].

  Accepts uint8 (0..255) or float arrays (0..1), shapes (H, W) or (H, W, 3).
  """
  arr = np.asarray(image)
  if arr.ndim == 2:
    arr = np.repeat(arr[:, :, None], 3, axis=2)
  if arr.ndim != 3 or arr.shape[2] != 3:
    raise ImageError(f"expected an (H, W, 3) image, got shape {arr.shape}")
  if arr.shape[0] == 0 or arr.shape[1] == 0:
    raise ImageError(f"image is empty: shape {arr.shape}")
  if arr.dtype == np.uint8:
    return arr.astype(np.float32) / 255.0
  arr = arr.astype(np.float32)
  if not np.all(np.isfinite(arr)):
    raise ImageError("image contains NaN or infinite values")
  if arr.min() < 0.0 or arr.max() > 1.0:
    raise ImageError("float images must have values in [0, 1]")
  return arr


def to_uint8(image: np.ndarray) -> np.ndarray:
  """``(H, W, 3)`` float in [0, 1] -> uint8, rounding half up after clipping."""
  return np.floor(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
  """Writes ``data`` to ``path`` through a temp file + rename (never half-written)."""
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
  try:
    with os.fdopen(fd, "wb") as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def save_png(path: str | os.PathLike, image_uint8: np.ndarray) -> None:
  """Saves an ``(H, W, 3) uint8`` image as PNG, atomically."""
  import io
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image_uint8, np.uint8)).save(buf, format="PNG")
  atomic_write_bytes(path, buf.getvalue())

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


def load_image(path: str | os.PathLike, max_pixels: int | None = None,
               keep_grey: bool = False, notes: list[str] | None = None) -> np.ndarray:
  """Reads an image file into a ``(H, W, 3) float32`` array in ``[0, 1]``.

  Conversions (see ``pil_to_array``): EXIF orientation is applied; palette and
  opaque-alpha images become RGB (a non-opaque alpha is refused); CMYK and other
  colour modes are converted to RGB without colour management; 16-bit images are
  scaled to [0, 1] (the codec's output has 8 bits per channel). Grey images become
  three equal channels, or ``(H, W)`` with ``keep_grey=True`` (coded as grey).
  Human-readable notes about lossy conversions are appended to ``notes``.

  The pixel limit is checked from the header, before the pixels are decoded.

  Raises:
    ImageError: missing file, not an image, empty image, too many pixels, an
      unsupported mode or a non-opaque alpha channel.
  """
  path = Path(path)
  if not path.exists():
    raise ImageError(f"image not found: {path}")
  if not path.is_file():
    raise ImageError(f"not a file: {path}")
  try:
    with Image.open(path) as im:
      _check_size(im.size, max_pixels, str(path))
      sixteen = any(";16" in str(getattr(t, "args", t[3] if len(t) > 3 else ""))
                    for t in (im.tile or []))
      im.load()
      if getattr(im, "n_frames", 1) > 1 and notes is not None:
        notes.append(f"{path.name} has {im.n_frames} frames; only the first is coded")
      im = ImageOps.exif_transpose(im)
      if sixteen and im.mode in ("RGB", "RGBA") and notes is not None:
        notes.append("16-bit channels reduced to 8 bits (the codec codes 8 bits)")
      return pil_to_array(im, max_pixels=max_pixels, name=str(path),
                          keep_grey=keep_grey, notes=notes)
  except ImageError:
    raise
  except UnidentifiedImageError:
    raise ImageError(f"not a readable image: {path}") from None
  except Image.DecompressionBombError as e:
    raise ImageError(f"image {path} is too large: {e}") from None
  except (OSError, SyntaxError, ValueError, EOFError) as e:  # truncated / corrupt files
    raise ImageError(f"cannot read image {path}: {e}") from None


def _check_size(size, max_pixels: int | None, name: str) -> None:
  w, h = size
  if w == 0 or h == 0:
    raise ImageError(f"{name} is empty ({w}x{h})")
  if max_pixels is not None and w * h > max_pixels:
    raise ImageError(
        f"{name} has {w}x{h} = {w * h} pixels, above the limit of {max_pixels}")


GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N")


def pil_to_array(im: Image.Image, max_pixels: int | None = None, name: str = "image",
                 keep_grey: bool = False, notes: list[str] | None = None) -> np.ndarray:
  """Converts a PIL image to ``(H, W, 3) float32`` in ``[0, 1]``.

  Grey modes (1, L, LA, I, I;16) give ``(H, W)`` when ``keep_grey`` (else three equal
  channels). 16-bit grey (I;16) is divided by 65535; mode I (32-bit integer) is read
  as 8-bit when its values fit in 0..255, as 16-bit when they fit in 0..65535, and
  refused otherwise. Alpha (RGBA, LA, PA, P with transparency) must be fully opaque.
  Float images (mode F) are refused.
  """
  _check_size(im.size, max_pixels, name)
  mode = im.mode
  if mode == "F":
    raise ImageError(f"{name} is a 32-bit float image (mode F); convert it to 8 or 16 "
                     "bits per channel first")
  try:
    if "A" in mode or "a" in mode or (mode == "P" and "transparency" in im.info):
      if mode in ("LA", "La"):
        la = np.asarray(im.convert("LA") if mode == "La" else im)
        grey, alpha = la[..., 0], la[..., 1]
        rgb = None
      else:
        rgba = np.asarray(im.convert("RGBA"))
        rgb, alpha, grey = rgba[..., :3], rgba[..., 3], None
      if np.any(alpha != 255):
        raise ImageError(f"{name} has a non-opaque alpha channel "
                         f"({int(np.sum(alpha != 255))} pixels); flatten it first")
      if grey is not None:
        return _grey(grey.astype(np.float32) / 255.0, keep_grey)
      return rgb.astype(np.float32) / 255.0
    if mode.startswith("I"):
      arr = np.asarray(im).astype(np.float64)
      if mode == "I" and arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ImageError(f"{name} is a 32-bit integer image with values outside "
                         "0..65535; not supported")
      if mode.startswith("I;16") or (arr.size and arr.max() > 255):
        scale = 65535.0
        if notes is not None:
          notes.append("16-bit grey reduced to 8 bits (the codec codes 8 bits)")
      else:
        scale = 255.0
      return _grey(np.clip(arr / scale, 0.0, 1.0).astype(np.float32), keep_grey)
    if mode in ("1", "L"):
      return _grey(np.asarray(im.convert("L")).astype(np.float32) / 255.0, keep_grey)
    if mode == "CMYK" and notes is not None:
      notes.append("CMYK converted to RGB without colour management")
    rgb = np.asarray(im.convert("RGB"))
  except ImageError:
    raise
  except (ValueError, OSError) as e:
    raise ImageError(f"{name}: cannot convert image mode {mode} to RGB: {e}") from None
  return rgb.astype(np.float32) / 255.0


def _grey(g: np.ndarray, keep_grey: bool) -> np.ndarray:
  return g if keep_grey else np.repeat(g[:, :, None], 3, axis=2)


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


def centre_crop(a: np.ndarray, side: int) -> np.ndarray:
  """The centred square of an ``(H, W, ...)`` array, ``min(side, H, W)`` on a side (a
  view; ``side`` 0 = the whole array)."""
  if not side:
    return a
  h, w = a.shape[:2]
  c = min(int(side), h, w)
  top, left = (h - c) // 2, (w - c) // 2
  return a[top:top + c, left:left + c]


def to_uint8(image: np.ndarray) -> np.ndarray:
  """``(H, W, 3)`` float in [0, 1] -> uint8, rounding half up after clipping."""
  return np.floor(np.clip(np.asarray(image, np.float32), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def rgb_to_grey(image: np.ndarray) -> np.ndarray:
  """``(H, W, 3) uint8`` -> ``(H, W) uint8``: rounded mean of the channels (integers)."""
  s = np.asarray(image, np.uint16).sum(axis=-1)
  return ((s + 1) // 3).astype(np.uint8)


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


def save_png(path: str | os.PathLike, image_uint8: np.ndarray,
             compress_level: int = 6) -> None:
  """Saves an ``(H, W[, C]) uint8`` image as PNG, atomically (zlib ``compress_level``
  0-9: 6 is Pillow's default; ``moric decode`` uses 3, ~0.1 s faster on a Kodak image
  for a slightly larger PNG)."""
  import io
  buf = io.BytesIO()
  Image.fromarray(np.asarray(image_uint8, np.uint8)).save(buf, format="PNG",
                                                          compress_level=compress_level)
  atomic_write_bytes(path, buf.getvalue())

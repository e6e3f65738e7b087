"""Classical image codec baselines: JPEG, WebP, AVIF and JPEG-XL through imagecodecs.

Rates come from the real encoded bytes (``bpp = 8 * len(bytes) / (H * W)``), quality from the
decoded 8-bit image. Encoder settings (fixed so that runs are comparable; override per call
with ``options``):

- ``jpeg``: libjpeg(-turbo) via ``imagecodecs.jpeg8_encode``, library default chroma
  subsampling (4:2:0), optimized Huffman tables (``optimize=True``).
- ``webp``: libwebp lossy (``lossless=False``; imagecodecs' default would be lossless),
  ``method=6`` (slowest, best compression).
- ``avif``: libavif with its default AV1 encoder, ``speed=4`` (avifenc's default is 6; 4 is
  about 0.3 dB better on a 256x256 Kodak crop and still ~0.5 s per point), default pixel
  format.
- ``jpegxl``: libjxl, ``effort=7`` (cjxl's default); ``level`` is libjxl's quality (mapped
  to a Butteraugli distance by the library).
"""
from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import imagecodecs
import numpy as np

from moric_jax.eval import metrics


class CodecUnavailableError(RuntimeError):
  """The codec is not built into the installed imagecodecs."""


@dataclasses.dataclass(frozen=True)
class _Codec:
  module: str                      # imagecodecs attribute telling availability (``.available``)
  encode: Callable[..., bytes]
  decode: Callable[[bytes], np.ndarray]
  options: dict[str, Any]          # default encoder keyword arguments
  qualities: tuple[int, ...]       # default sweep grid (~0.05-2 bpp on Kodak-like images)


def _encoder(name: str) -> Callable[..., bytes]:
  def encode(image: np.ndarray, quality: int, **options) -> bytes:
    return getattr(imagecodecs, name)(image, level=quality, **options)
  return encode


def _decoder(name: str) -> Callable[[bytes], np.ndarray]:
  return lambda data: getattr(imagecodecs, name)(data)


CODECS: dict[str, _Codec] = {
    "jpeg": _Codec("JPEG8", _encoder("jpeg8_encode"), _decoder("jpeg8_decode"),
                   {"optimize": True},
                   (1, 3, 5, 10, 15, 20, 30, 40, 50, 60, 70, 80, 90, 95)),
    "webp": _Codec("WEBP", _encoder("webp_encode"), _decoder("webp_decode"),
                   {"lossless": False, "method": 6},
                   (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)),
    "avif": _Codec("AVIF", _encoder("avif_encode"), _decoder("avif_decode"),
                   {"speed": 4},
                   (0, 10, 20, 30, 40, 50, 60, 70, 80, 90)),
    "jpegxl": _Codec("JPEGXL", _encoder("jpegxl_encode"), _decoder("jpegxl_decode"),
                     {"effort": 7},
                     (0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)),
}
# Accepted spellings.
_ALIASES = {"jpg": "jpeg", "jpeg8": "jpeg", "jxl": "jpegxl", "jpeg-xl": "jpegxl",
            "jpeg_xl": "jpegxl"}


def canonical_name(codec_name: str) -> str:
  """``'JXL'`` -> ``'jpegxl'`` etc.; raises ``ValueError`` for unknown codecs."""
  name = codec_name.strip().lower()
  name = _ALIASES.get(name, name)
  if name not in CODECS:
    raise ValueError(f"unknown codec {codec_name!r}; known: {', '.join(CODECS)}")
  return name


def is_available(codec_name: str) -> bool:
  """Whether the installed imagecodecs build can encode and decode ``codec_name``."""
  module = getattr(imagecodecs, CODECS[canonical_name(codec_name)].module, None)
  return bool(getattr(module, "available", False))


def available_codecs() -> list[str]:
  """The names in ``CODECS`` that this imagecodecs build supports."""
  return [name for name in CODECS if is_available(name)]


def default_qualities(codec_name: str) -> tuple[int, ...]:
  """The default quality grid of a codec (its ``level`` argument)."""
  return CODECS[canonical_name(codec_name)].qualities


def _check_image(image_uint8: np.ndarray) -> np.ndarray:
  image = np.asarray(image_uint8)
  if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
    raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
  if image.shape[0] < 1 or image.shape[1] < 1:
    raise ValueError(f"empty image {image.shape}")
  return np.ascontiguousarray(image)


def encode_decode(codec_name: str, image_uint8: np.ndarray, quality: int,
                  **options) -> tuple[int, np.ndarray]:
  """Encodes ``(H, W, 3) uint8`` RGB with a baseline codec and decodes it again.

  Args:
    codec_name: ``jpeg``, ``webp``, ``avif`` or ``jpegxl`` (aliases: jpg, jxl).
    image_uint8: ``(H, W, 3) uint8`` image.
    quality: the codec's quality ``level`` (0-100, higher = better; JPEG from 1).
    **options: encoder keyword arguments overriding the defaults in ``CODECS``.

  Returns:
    ``(num_bytes, decoded)``: the encoded size in bytes and the ``(H, W, 3) uint8`` decoding.

  Raises:
    ValueError: unknown codec or bad image.
    CodecUnavailableError: the codec is not built into this imagecodecs.
  """
  name = canonical_name(codec_name)
  image = _check_image(image_uint8)
  if not is_available(name):
    raise CodecUnavailableError(
        f"codec {name!r} is not available in imagecodecs {imagecodecs.__version__} "
        f"(imagecodecs.{CODECS[name].module}.available is False)")
  codec = CODECS[name]
  data = codec.encode(image, int(quality), **{**codec.options, **options})
  decoded = np.asarray(codec.decode(bytes(data)))
  if decoded.ndim == 2:
    decoded = np.repeat(decoded[..., None], 3, axis=-1)
  decoded = decoded[..., :3]
  if decoded.shape != image.shape or decoded.dtype != np.uint8:
    raise RuntimeError(f"{name} decoded {decoded.shape} {decoded.dtype}, "
                       f"expected {image.shape} uint8")
  return len(data), decoded


def sweep(image_uint8: np.ndarray, codec_name: str, qualities: Sequence[int] | None = None,
          **options) -> list[dict[str, Any]]:
  """Rate-distortion points of one codec on one image.

  Args:
    image_uint8: ``(H, W, 3) uint8`` image.
    codec_name: see ``encode_decode``.
    qualities: quality levels; ``None`` = the codec's default grid.
    **options: encoder overrides, passed to ``encode_decode``.

  Returns:
    One dict per quality, in the given order: ``codec`` (canonical name), ``quality``,
    ``num_bytes``, ``bpp`` (from the encoded bytes), ``psnr`` (dB, 8-bit RGB), ``ms_ssim``.
    An empty list (with a ``RuntimeWarning``) when the codec is not available.
  """
  name = canonical_name(codec_name)
  if not is_available(name):
    warnings.warn(f"skipping {name}: not available in this imagecodecs build", RuntimeWarning,
                  stacklevel=2)
    return []
  image = _check_image(image_uint8)
  h, w = image.shape[:2]
  rows = []
  for q in (default_qualities(name) if qualities is None else qualities):
    num_bytes, decoded = encode_decode(name, image, q, **options)
    rows.append({"codec": name, "quality": int(q), "num_bytes": int(num_bytes),
                 "bpp": metrics.bpp_from_bytes(num_bytes, h, w),
                 "psnr": metrics.psnr_uint8(image, decoded),
                 "ms_ssim": metrics.ms_ssim_uint8(image, decoded)})
  return rows


def sweep_all(image_uint8: np.ndarray, codecs: Sequence[str] | None = None
              ) -> list[dict[str, Any]]:
  """``sweep`` over several codecs (default: all in ``CODECS``), unavailable ones skipped."""
  rows = []
  for name in (CODECS if codecs is None else codecs):
    rows.extend(sweep(image_uint8, name))
  return rows

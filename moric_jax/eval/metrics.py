"""Image quality and rate metrics on 8-bit images.

All metrics take ``(H, W, 3) uint8`` RGB images (peak value 255).
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

# Wang, Simoncelli & Bovik, "Multi-scale structural similarity for image quality
# assessment", Asilomar 2003: the 5 per-scale exponents (finest scale first).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_SSIM_WINDOW = 11      # Gaussian window size (pixels) ...
_SSIM_SIGMA = 1.5      # ... and its standard deviation, as in the SSIM paper.
_SSIM_K1, _SSIM_K2 = 0.01, 0.03


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images of the same shape (peak 255)."""
  if a.shape != b.shape:
    raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  if mse == 0:
    return float("inf")
  return float(10.0 * np.log10(255.0**2 / mse))


def bpp_from_bytes(num_bytes: int, height: int, width: int) -> float:
  """Rate in bits per pixel of a file of ``num_bytes`` bytes for an ``height x width`` image."""
  if height <= 0 or width <= 0:
    raise ValueError(f"image size must be positive, got {height}x{width}")
  if num_bytes < 0:
    raise ValueError(f"num_bytes must be >= 0, got {num_bytes}")
  return 8.0 * float(num_bytes) / (float(height) * float(width))


def _gaussian_kernel(size: int, sigma: float) -> np.ndarray:
  x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
  k = np.exp(-0.5 * (x / sigma) ** 2)
  return k / k.sum()


def _filter_valid(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """Separable Gaussian filter of a ``(H, W, C)`` array over H and W, 'valid' region only."""
  y = ndimage.correlate1d(x, kernel, axis=0, mode="constant")
  y = ndimage.correlate1d(y, kernel, axis=1, mode="constant")
  r = (len(kernel) - 1) // 2
  return y[r:x.shape[0] - r, r:x.shape[1] - r]


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, kernel: np.ndarray, data_range: float
                 ) -> tuple[np.ndarray, np.ndarray]:
  """Per-channel mean SSIM and mean contrast-structure term of ``(H, W, C)`` float64 arrays."""
  c1 = (_SSIM_K1 * data_range) ** 2
  c2 = (_SSIM_K2 * data_range) ** 2
  mu_x = _filter_valid(x, kernel)
  mu_y = _filter_valid(y, kernel)
  # Population (not sample) statistics, as in Wang et al.
  var_x = _filter_valid(x * x, kernel) - mu_x**2
  var_y = _filter_valid(y * y, kernel) - mu_y**2
  cov = _filter_valid(x * y, kernel) - mu_x * mu_y
  cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
  lum_map = (2.0 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
  return (lum_map * cs_map).mean(axis=(0, 1)), cs_map.mean(axis=(0, 1))


def ms_ssim_num_scales(height: int, width: int, max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
  """Number of MS-SSIM scales usable for an ``height x width`` image.

  Scale ``j`` (0-based) sees the image downsampled by ``2**j``; it needs at least one full
  11x11 window, so ``min(H, W) // 2**j >= 11``. The standard 5 scales need ``min(H, W) >= 176``.
  """
  side = min(height, width)
  n = 0
  while n < max_scales and side // (2**n) >= _SSIM_WINDOW:
    n += 1
  return n


def ms_ssim_uint8(a: np.ndarray, b: np.ndarray, max_scales: int = len(MS_SSIM_WEIGHTS)) -> float:
  """Multi-scale SSIM (Wang et al. 2003) between two ``(H, W, 3)`` (or ``(H, W)``) uint8 images.

  Standard definition: 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, data range
  255, statistics over the 'valid' region of the window (no padding), 2x2 average pooling
  between scales (an odd trailing row/column is dropped), exponents ``MS_SSIM_WEIGHTS``:
  ``MS-SSIM = prod_{j<M-1} cs_j^w_j * ssim_{M-1}^w_{M-1}``. Negative ``cs``/``ssim`` values are
  clipped to 0 before exponentiation (as TensorFlow and pytorch_msssim do). Computed per RGB
  channel, then averaged over channels (pytorch_msssim's convention, used by CompressAI).

  Small images: when ``min(H, W) < 176`` the 5 standard scales do not fit, so only the first
  ``M = ms_ssim_num_scales(H, W)`` scales are used and their weights renormalised to sum to 1
  (values are then not strictly comparable with 5-scale MS-SSIM; a 64x64 image uses 3 scales).
  Images with a side under 11 pixels raise ``ValueError``.

  Returns:
    MS-SSIM in [0, 1]; 1.0 for identical images.
  """
  if a.shape != b.shape:
    raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
  if a.ndim == 2:
    a, b = a[..., None], b[..., None]
  if a.ndim != 3:
    raise ValueError(f"expected (H, W, C) or (H, W) images, got shape {a.shape}")
  num_scales = ms_ssim_num_scales(a.shape[0], a.shape[1], max_scales)
  if num_scales == 0:
    raise ValueError(f"image {a.shape[0]}x{a.shape[1]} is too small for MS-SSIM "
                     f"(needs both sides >= {_SSIM_WINDOW})")
  weights = np.asarray(MS_SSIM_WEIGHTS[:num_scales], np.float64)
  weights = weights / weights.sum()
  kernel = _gaussian_kernel(_SSIM_WINDOW, _SSIM_SIGMA)
  x = a.astype(np.float64)
  y = b.astype(np.float64)
  values = []
  for j in range(num_scales):
    ssim, cs = _ssim_and_cs(x, y, kernel, 255.0)
    values.append(ssim if j == num_scales - 1 else cs)
    if j < num_scales - 1:
      h, w = (x.shape[0] // 2) * 2, (x.shape[1] // 2) * 2
      x = x[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
      y = y[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
  values = np.maximum(np.stack(values), 0.0)          # (num_scales, C)
  per_channel = np.prod(values ** weights[:, None], axis=0)
  return float(per_channel.mean())

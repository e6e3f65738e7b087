"""Image quality metrics on 8-bit images."""
from __future__ import annotations

import numpy as np


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
  """PSNR in dB between two uint8 images of the same shape (peak 255)."""
  if a.shape != b.shape:
    raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
  mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
  if mse == 0:
    return float("inf")
  return float(10.0 * np.log10(255.0**2 / mse))

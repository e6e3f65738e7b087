"""Multi-resolution latent pyramid: shapes, gains and upsampling.

Grid k (k = 0..L-1) has shape ``(ceil(H / 2^k), ceil(W / 2^k))``. The trainable value
``theta_k`` is multiplied by a fixed gain ``gain_k = base_gain * gain_growth^k`` to give
the latent in symbol units (one quantization bin = 1; the coded symbol is its rounding).
The synthesis sees ``q_step * symbol`` upsampled bilinearly to ``(H, W)``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.model.grids import grid_shapes, upsampling_matrix  # noqa: F401 (re-exported)


def grid_gains(num_grids: int, base_gain: float, gain_growth: float) -> list[float]:
  """Fixed per-grid gains multiplying the trainable latent values."""
  return [float(base_gain * gain_growth**k) for k in range(num_grids)]


def upsample_stack(grids: list[jax.Array], height: int, width: int) -> jax.Array:
  """Upsamples L grids ``(h_k, w_k)`` to a ``(H, W, L)`` stack (separable matmuls)."""
  out = []
  for g in grids:
    uh = upsampling_matrix(height, g.shape[0])
    uw = upsampling_matrix(width, g.shape[1])
    out.append(uh @ g @ uw.T)
  return jnp.stack(out, axis=-1)


def init_latents(height: int, width: int, num_grids: int) -> list[jax.Array]:
  """Zero-initialised trainable latents, one ``(h_k, w_k)`` float32 array per grid."""
  return [jnp.zeros(s, jnp.float32) for s in grid_shapes(height, width, num_grids)]

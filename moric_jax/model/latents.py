"""Multi-resolution latent pyramid: shapes, gains and upsampling.

Grid k (k = 0..L-1) has shape ``(ceil(H / 2^k), ceil(W / 2^k))``. The trainable value
``theta_k`` is multiplied by a fixed gain ``gain_k = base_gain * gain_growth^k`` to give
the latent in symbol units (one quantization bin = 1; the coded symbol is its rounding).
The synthesis sees ``q_step * symbol`` upsampled to ``(H, W)``: bilinearly here, or by
the learned steps of ``upsampling.py`` (``Codec.upsample``).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from moric_jax.model.grids import grid_shapes, two_taps, upsampling_matrix  # noqa: F401 (re-exported)


def grid_gains(num_grids: int, base_gain: float, gain_growth: float) -> list[float]:
  """Fixed per-grid gains multiplying the trainable latent values."""
  return [float(base_gain * gain_growth**k) for k in range(num_grids)]


def upsample_stack(grids: list[jax.Array], height: int, width: int) -> jax.Array:
  """Upsamples L grids ``(h_k, w_k)`` to a ``(H, W, L)`` stack.

  Separable bilinear with two taps per axis (``grids.two_taps``: the nonzeros of
  ``upsampling_matrix``), so the cost is O(HW) per grid whatever the image size; a
  grid of the image's size passes through.
  """
  out = []
  for g in grids:
    if g.shape == (height, width):
      out.append(g)
      continue
    r0, r1, a0, a1 = two_taps(height, g.shape[0])
    c0, c1, b0, b1 = two_taps(width, g.shape[1])
    rows = g[r0] * a0[:, None] + g[r1] * a1[:, None]            # (H, w_k)
    out.append(rows[:, c0] * b0[None, :] + rows[:, c1] * b1[None, :])
  return jnp.stack(out, axis=-1)


def init_latents(height: int, width: int, num_grids: int) -> list[jax.Array]:
  """Zero-initialised trainable latents, one ``(h_k, w_k)`` float32 array per grid."""
  return [jnp.zeros(s, jnp.float32) for s in grid_shapes(height, width, num_grids)]

"""Autoregressive entropy model (ARM) shared by all grids and regions.

For every latent symbol a causal context of already-decoded neighbours of the same
grid (``rows`` rows above with ``2*cols+1`` columns, plus ``cols`` to the left on the
current row: 24 values for rows = cols = 3) goes through a small MLP giving a Laplace
location ``mu`` and scale ``b``. The probability of an integer symbol is the Laplace
mass of its unit bin; the rate is ``-log2`` of it, capped at ``MAX_BITS``.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.model.context import canvas_layout, context_offsets  # noqa: F401

MAX_BITS = 16.0
LOG_SCALE_MIN = float(np.log(0.04))
LOG_SCALE_MAX = float(np.log(64.0))

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu}


def extract_contexts(grid: jax.Array, rows: int, cols: int) -> jax.Array:
  """``(h, w)`` grid -> ``(h * w, C)`` causal contexts (zeros outside the grid)."""
  h, w = grid.shape
  padded = jnp.pad(grid, ((rows, 0), (cols, cols)))
  cols_out = [padded[rows + dy:rows + dy + h, cols + dx:cols + dx + w]
              for dy, dx in context_offsets(rows, cols)]
  return jnp.stack(cols_out, axis=-1).reshape(h * w, -1)


class ARM(nn.Module):
  """Context MLP: ``(N, C)`` contexts -> ``(N,)`` Laplace mu and raw log-scale.

  Only Dense layers and the chosen activation, so that the fixed-point version can
  mirror it layer for layer.
  """
  hidden: Sequence[int] = (18, 18)
  activation: str = "relu"

  @nn.compact
  def __call__(self, context: jax.Array) -> tuple[jax.Array, jax.Array]:
    act = ACTIVATIONS[self.activation]
    h = context
    for width in self.hidden:
      h = act(nn.Dense(width)(h))
    out = nn.Dense(2, kernel_init=nn.initializers.zeros)(h)
    return out[:, 0], out[:, 1]


def scale_from_raw(raw_log_scale: jax.Array) -> jax.Array:
  """Laplace scale b > 0 from the ARM's raw output (clipped log-scale)."""
  return jnp.exp(jnp.clip(raw_log_scale, LOG_SCALE_MIN, LOG_SCALE_MAX))


def laplace_bin_bits(x: jax.Array, mu: jax.Array, scale: jax.Array) -> jax.Array:
  """Bits ``-log2 P(x - 0.5 < X < x + 0.5)`` for ``X ~ Laplace(mu, scale)``, capped.

  Numerically stable in the tails (log domain) and differentiable in x, mu, scale.
  """
  d = jnp.abs(x - mu)
  upper = 0.5 - d          # upper bin edge mirrored to the left of mu
  lower = -0.5 - d         # always < 0
  # Case d >= 0.5: both edges left of mu, mass = 0.5 e^{upper/b} (1 - e^{-1/b}).
  safe_upper = jnp.minimum(upper, 0.0)
  log_tail = jnp.log(0.5) + safe_upper / scale + jnp.log(-jnp.expm1(-1.0 / scale))
  # Case d < 0.5: bin straddles mu, mass = 1 - 0.5 e^{-upper/b} - 0.5 e^{lower/b}.
  safe_up_pos = jnp.maximum(upper, 0.0)
  centre = 1.0 - 0.5 * jnp.exp(-safe_up_pos / scale) - 0.5 * jnp.exp(lower / scale)
  log_centre = jnp.log(jnp.maximum(centre, 1e-30))
  log_mass = jnp.where(upper <= 0.0, log_tail, log_centre)
  bits = -log_mass / jnp.log(2.0)
  return jnp.clip(bits, 0.0, MAX_BITS)


def to_canvas(grids: list[jax.Array], rows: int, cols: int) -> tuple[jax.Array, np.ndarray]:
  """Grids -> ``(Hc, Wc)`` canvas and its static boolean mask of real latent positions."""
  shapes = [tuple(g.shape) for g in grids]
  (hc, wc), places = canvas_layout(shapes, rows, cols)
  canvas = jnp.zeros((hc, wc), grids[0].dtype)
  mask = np.zeros((hc, wc), bool)
  for g, (t, l) in zip(grids, places):
    canvas = jax.lax.dynamic_update_slice(canvas, g, (t, l))
    mask[t:t + g.shape[0], l:l + g.shape[1]] = True
  return canvas, mask


def grids_bits(arm_apply, arm_params, grids: list[jax.Array], rows: int, cols: int,
               chunk: int = 0) -> jax.Array:
  """Per-symbol bits of all grids, concatenated in grid-major raster order ``(N,)``.

  ``grids`` are in symbol units (integers at coding time, noisy/soft while training).
  ``chunk > 0`` and ``N > chunk``: the contexts are gathered from the zero-padded
  canvas chunk by chunk inside ``jax.checkpoint`` (``lax.map``), so neither the
  ``(N, C)`` contexts nor the MLP's activations of all latents are kept for the
  backward pass (training memory O(N) with a small constant).
  """
  n = sum(int(np.prod(g.shape)) for g in grids)
  if not chunk or n <= chunk:
    ctx = jnp.concatenate([extract_contexts(g, rows, cols) for g in grids], axis=0)
    vals = jnp.concatenate([g.reshape(-1) for g in grids], axis=0)
    mu, raw = arm_apply(arm_params, ctx)
    return laplace_bin_bits(vals, mu, scale_from_raw(raw))
  canvas, _ = to_canvas(grids, rows, cols)
  (_, wc), places = canvas_layout([tuple(g.shape) for g in grids], rows, cols)
  pos = np.concatenate([((t + np.arange(g.shape[0]))[:, None] * wc + l
                         + np.arange(g.shape[1])[None, :]).ravel()
                        for g, (t, l) in zip(grids, places)])
  num = -(-n // chunk)
  pos = np.concatenate([pos, np.full(num * chunk - n, pos[0])]).reshape(num, chunk)
  offsets = np.array([dy * wc + dx for dy, dx in context_offsets(rows, cols)], np.int64)
  flat = canvas.reshape(-1)

  def one_chunk(p):
    mu, raw = arm_apply(arm_params, flat[p[:, None] + offsets[None, :]])
    return laplace_bin_bits(flat[p], mu, scale_from_raw(raw))

  bits = jax.lax.map(jax.checkpoint(one_chunk), jnp.asarray(pos, jnp.int32))
  return bits.reshape(-1)[:n]

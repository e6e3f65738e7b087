"""Ideal code lengths (bits) of what a file codes, under the integer models.

What the encoder reports per region and ``moric info`` lists: the bits each latent and
each weight tensor costs with the fixed tables (``tables.py``), exactly as the entropy
coder charges them (main symbol, escape class and raw escape bits). No JAX.
"""
from __future__ import annotations

import numpy as np

from moric_jax.coding import integer_arm, rans, tables, wavefront


def latent_bits(iarm: integer_arm.IntegerARM, grids: list[np.ndarray], rows: int,
                cols: int, coded: list[np.ndarray] | None = None) -> np.ndarray:
  """``(N,) float64`` bits of every latent, grids raveled in order (0 if not coded);
  what ``wavefront.encode_latents(..., per_latent=True)`` reports while coding."""
  shapes = tuple(tuple(int(s) for s in np.shape(g)) for g in grids)
  order = wavefront.front_order(shapes, rows, cols, coded)
  canvas = wavefront._to_canvas(order, grids)
  n = order.positions.size
  out = np.zeros(n, np.float64)
  step = wavefront.ENCODE_CHUNK
  for lo in range(0, n, step):
    hi = min(lo + step, n)
    c, q, s = wavefront.model_outputs(iarm, order, canvas, lo, hi)
    main, esc, k, _ = rans.split(canvas[order.positions[lo:hi]] - c, tables.LATENT_RADIUS)
    out[lo:hi] = wavefront.position_bits(s, q, main, esc, k)
  return wavefront.grid_order(order, out)


def tensors_bits(tensors: list[np.ndarray], scales) -> float:
  """Bits of integer weight tensors coded with the given table scale indices."""
  bits_t = tables.load_bits()
  total = 0.0
  for k, s in zip(tensors, scales):
    main, esc, n, _ = rans.split(np.ravel(np.asarray(k, np.int64)), tables.WEIGHT_RADIUS)
    total += float(bits_t["weight"][s, main].sum())
    if esc.any():
      total += float(bits_t["weight_escape"][s, n].sum() + n.sum())
  return total

"""Wavefront (anti-diagonal) coding of all latent grids with the integer ARM.

The ARM context of ``(i, j)`` reaches ``rows`` rows above at columns ``j - cols ..
j + cols`` and ``cols`` positions to the left. With ``t = j + (cols + 1) * i`` every
context position has a smaller ``t``, so all positions with equal ``t`` (in every grid)
are independent: front ``t`` is decoded as one batch (gather contexts, integer MLP as
float64-exact matmuls, table lookup, one constriction call). The number of fronts is
``w_0 + (cols + 1) * (h_0 - 1)`` (grid 0). The encoder pushes in the reverse order.

Grids live in one zero-padded flat canvas (``model.arm.canvas_layout``) so that a
context is ``canvas[pos + offsets]`` and nothing reaches into another grid.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from moric_jax.coding import integer_arm, rans, tables
from moric_jax.errors import BitstreamError
from moric_jax.model import arm as arm_lib

ENCODE_CHUNK = 1 << 15
MAX_SYMBOL = 1 << 20  # |latent symbol| the encoder accepts


@dataclasses.dataclass(frozen=True)
class FrontOrder:
  """Decode order of all latent positions.

  ``positions``: ``(N,)`` flat canvas indices sorted by (front, grid, row);
  ``starts``: ``(T + 1,)`` front boundaries into ``positions``.
  """
  canvas_shape: tuple[int, int]
  places: tuple[tuple[int, int], ...]
  shapes: tuple[tuple[int, int], ...]
  offsets: np.ndarray
  positions: np.ndarray
  starts: np.ndarray

  @property
  def num_fronts(self) -> int:
    return len(self.starts) - 1


def front_order(shapes: tuple[tuple[int, int], ...], rows: int, cols: int,
                coded: list[np.ndarray] | None = None) -> FrontOrder:
  """Canvas layout and wavefront order for grids of ``shapes``.

  ``coded``: per grid a bool mask of the positions that are coded (the others stay 0
  and are skipped); ``None`` = all positions.
  """
  order = _front_order(shapes, rows, cols)
  if coded is None:
    return order
  keep = np.zeros(order.canvas_shape, bool)
  for c, (h, w), (t, l) in zip(coded, order.shapes, order.places):
    keep[t:t + h, l:l + w] = np.asarray(c, bool)
  sel = keep.reshape(-1)[order.positions]
  counts = np.diff(order.starts)
  front_of = np.repeat(np.arange(order.num_fronts), counts)[sel]
  kept = np.bincount(front_of, minlength=order.num_fronts)
  starts = np.concatenate([[0], np.cumsum(kept)]).astype(np.int64)
  return dataclasses.replace(order, positions=order.positions[sel], starts=starts)


@functools.lru_cache(maxsize=8)
def _front_order(shapes: tuple[tuple[int, int], ...], rows: int, cols: int) -> FrontOrder:
  (hc, wc), places = arm_lib.canvas_layout(list(shapes), rows, cols)
  fronts, grid_ids, rows_i, flat = [], [], [], []
  for k, ((h, w), (top, left)) in enumerate(zip(shapes, places)):
    i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    i, j = i.ravel(), j.ravel()
    fronts.append(j + (cols + 1) * i)
    grid_ids.append(np.full(i.size, k))
    rows_i.append(i)
    flat.append((top + i) * wc + left + j)
  fronts = np.concatenate(fronts)
  order = np.lexsort((np.concatenate(rows_i), np.concatenate(grid_ids), fronts))
  positions = np.concatenate(flat)[order].astype(np.int64)
  counts = np.bincount(fronts, minlength=int(fronts.max()) + 1)
  starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
  offsets = np.array([dy * wc + dx for dy, dx in arm_lib.context_offsets(rows, cols)],
                     np.int64)
  for a in (positions, starts, offsets):
    a.setflags(write=False)
  return FrontOrder((hc, wc), tuple(places), tuple(shapes), offsets, positions, starts)


def _to_canvas(order: FrontOrder, grids) -> np.ndarray:
  canvas = np.zeros(order.canvas_shape, np.int64)
  for g, (t, l) in zip(grids, order.places):
    g = np.asarray(g)
    canvas[t:t + g.shape[0], l:l + g.shape[1]] = g
  return canvas.reshape(-1)


def _from_canvas(order: FrontOrder, canvas: np.ndarray) -> list[np.ndarray]:
  c2 = canvas.reshape(order.canvas_shape)
  return [c2[t:t + h, l:l + w].astype(np.int32)
          for (h, w), (t, l) in zip(order.shapes, order.places)]


def model_outputs(iarm, order: FrontOrder, canvas: np.ndarray, lo: int, hi: int,
                  arm_fn=integer_arm.apply_numpy):
  """``(c, mean bucket, scale index)`` of sorted positions ``lo:hi`` (all contexts known)."""
  pos = order.positions[lo:hi]
  mu, ls = arm_fn(iarm, canvas[pos[:, None] + order.offsets])
  return integer_arm.table_indices(np.asarray(mu, np.int64), np.asarray(ls, np.int64))


def encode_latents(coder, iarm: integer_arm.IntegerARM, grids: list[np.ndarray],
                   rows: int, cols: int, coded: list[np.ndarray] | None = None) -> float:
  """Pushes all latent symbols onto ``coder`` (ANS stack); returns their bits.

  Blocks of fronts without escapes are pushed with one constriction call each.
  ``coded``: per grid the positions to code (the others must be 0); ``None`` = all.
  """
  shapes = tuple(tuple(int(s) for s in np.shape(g)) for g in grids)
  for g in grids:
    if g.size and np.abs(np.asarray(g, np.int64)).max() > MAX_SYMBOL:
      raise ValueError(f"latent symbol magnitude above {MAX_SYMBOL}")
  if coded is not None and any(np.any(np.asarray(g)[~np.asarray(c, bool)])
                               for g, c in zip(grids, coded)):
    raise ValueError("latents outside the coded positions must be 0")
  order = front_order(shapes, rows, cols, coded)
  canvas = _to_canvas(order, grids)
  n_total = order.positions.size
  c = np.empty(n_total, np.int64)
  q = np.empty(n_total, np.int64)
  s = np.empty(n_total, np.int64)
  for lo in range(0, n_total, ENCODE_CHUNK):
    hi = min(lo + ENCODE_CHUNK, n_total)
    c[lo:hi], q[lo:hi], s[lo:hi] = model_outputs(iarm, order, canvas, lo, hi)
  r = canvas[order.positions] - c
  radius = tables.LATENT_RADIUS
  main, esc, n, offset = rans.split(r, radius)
  probs = tables.load_probabilities()
  p_lat, p_esc = probs["latent"], probs["latent_escape"]
  bits_t = tables.load_bits()
  bits = bits_t["latent"][s, q, main].sum()
  esc_pos = np.flatnonzero(esc)
  bits += (bits_t["latent_escape"][s[esc_pos], n] + n).sum()

  def push_range(lo, hi):
    for b in range((hi - lo + ENCODE_CHUNK - 1) // ENCODE_CHUNK - 1, -1, -1):
      a, z = lo + b * ENCODE_CHUNK, min(lo + (b + 1) * ENCODE_CHUNK, hi)
      rans.push_main(coder, main[a:z], p_lat[s[a:z], q[a:z]])

  # Escape bookkeeping: esc_pos is sorted; map each to its front.
  esc_front = np.searchsorted(order.starts, esc_pos, side="right") - 1
  hi = n_total
  for f in np.unique(esc_front)[::-1]:
    a, b = int(order.starts[f]), int(order.starts[f + 1])
    push_range(b, hi)
    sel = esc_front == f
    rans.push_escapes(coder, n[sel], offset[sel], p_esc[s[esc_pos[sel]]])
    hi = b
  push_range(0, hi)
  return float(bits)


def decode_latents(coder, iarm: integer_arm.IntegerARM, shapes, rows: int, cols: int,
                   arm_fn=None, coded: list[np.ndarray] | None = None) -> list[np.ndarray]:
  """Pops all latent grids (``(h_k, w_k) int32``) front by front.

  ``arm_fn(iarm, contexts) -> (mu, log_scale)`` replaces the built-in float64-exact
  NumPy path (tests pass ``integer_arm.apply_jax`` to check they agree).
  """
  order = front_order(tuple(tuple(s) for s in shapes), rows, cols, coded)
  size = order.canvas_shape[0] * order.canvas_shape[1]
  canvas = np.zeros(size, np.int64)
  ctx_canvas = np.zeros(size, np.float64)   # clipped copy, the MLP's input
  probs = tables.load_probabilities()
  nq = tables.NUM_MU_BUCKETS
  p_rows = probs["latent"].reshape(-1, probs["latent"].shape[-1])
  p_esc = probs["latent_escape"]
  radius = tables.LATENT_RADIUS
  a = tables.ACT_FRAC_BITS
  half_mu, one_mu = float(1 << (a - 1)), float(1 << a)
  q_div = float(1 << a) / nq
  s_max = tables.NUM_LATENT_SCALES - 1
  s_add = float(-tables.LOG_SCALE_MIN_FP + tables.LOG_SCALE_STEP_FP // 2)
  s_div = float(tables.LOG_SCALE_STEP_FP)
  layers = integer_arm.scaled_float_layers(iarm)
  lim = float(integer_arm.CONTEXT_LIMIT)
  positions, starts, offsets = order.positions, order.starts, order.offsets
  for f in range(order.num_fronts):
    if starts[f] == starts[f + 1]:
      continue   # Every position of this front is uncoded.
    pos = positions[starts[f]:starts[f + 1]]
    if arm_fn is None:
      out = integer_arm.apply_float_exact(layers, ctx_canvas[pos[:, None] + offsets])
      # Table indices in float64 (exact integer arithmetic, see table_indices).
      shifted = out[:, 0] + half_mu
      c = np.floor(shifted / one_mu)
      q = np.floor((shifted - c * one_mu) / q_div)
      s = np.floor((out[:, 1] + s_add) / s_div)
      np.maximum(s, 0.0, out=s)
      np.minimum(s, s_max, out=s)
      s = s.astype(np.int64)
      row = s * nq + q.astype(np.int64)
      c = c.astype(np.int64)
    else:
      mu, ls = arm_fn(iarm, canvas[pos[:, None] + offsets])
      c, q, s = integer_arm.table_indices(np.asarray(mu, np.int64),
                                          np.asarray(ls, np.int64))
      row = s * nq + q
    r = rans.decode_block(coder, p_rows[row], lambda m: p_esc[s[m]], radius)
    v = c + r
    canvas[pos] = v
    ctx_canvas[pos] = np.minimum(np.maximum(v, -lim), lim)
  grids = _from_canvas(order, canvas)
  for g in grids:
    if g.size and np.abs(g.astype(np.int64)).max() > 8 * MAX_SYMBOL:
      raise BitstreamError("decoded latent symbol out of range")
  return grids

"""Wavefront (anti-diagonal) coding of all latent grids with the integer ARM.

The ARM context of ``(i, j)`` reaches ``rows`` rows above at columns ``j - cols ..
j + cols`` and ``cols`` positions to the left. With ``t = j + (cols + 1) * i`` every
context position has a smaller ``t``, so all positions with equal ``t`` (in every grid)
are independent: front ``t`` is decoded as one batch (gather contexts, integer MLP as
float64-exact matmuls, table lookup, one constriction call). The number of fronts is
``w_0 + (cols + 1) * (h_0 - 1)`` (grid 0). The encoder pushes in the reverse order.

Grids live in one zero-padded flat canvas (``context.canvas_layout``) so that a
context is ``canvas[pos + offsets]`` and nothing reaches into another grid.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

from moric_jax.coding import integer_arm, rans, tables
from moric_jax.model import context
from moric_jax.errors import BitstreamError

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
  (hc, wc), places = context.canvas_layout(list(shapes), rows, cols)
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
  offsets = np.array([dy * wc + dx for dy, dx in context.context_offsets(rows, cols)],
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


def position_bits(s: np.ndarray, q: np.ndarray, main: np.ndarray, esc: np.ndarray,
                  n: np.ndarray) -> np.ndarray:
  """``(N,) float64`` bits of each latent in decode order, as the coder charges them:
  its main symbol, plus escape class and raw bits where it escapes (``rans.split``)."""
  bits_t = tables.load_bits()
  bits = bits_t["latent"][s, q, main].astype(np.float64)
  e = np.flatnonzero(esc)
  bits[e] += bits_t["latent_escape"][s[e], n] + n
  return bits


def grid_order(order: FrontOrder, values: np.ndarray) -> np.ndarray:
  """Per-position ``values`` (decode order) -> grids raveled one after another (0 at
  uncoded positions)."""
  hc, wc = order.canvas_shape
  canvas = np.zeros(hc * wc, np.float64)
  canvas[order.positions] = values
  canvas = canvas.reshape(hc, wc)
  return np.concatenate([canvas[t:t + h, l:l + w].ravel()
                         for (h, w), (t, l) in zip(order.shapes, order.places)])


def encode_latents(coder, iarm: integer_arm.IntegerARM, grids: list[np.ndarray],
                   rows: int, cols: int, coded: list[np.ndarray] | None = None,
                   per_latent: bool = False):
  """Pushes all latent symbols onto ``coder`` (ANS stack); returns their bits (and,
  with ``per_latent``, ``(bits, (N,) bits of each latent in grid order)``).

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
  pos_bits = position_bits(s, q, main, esc, n)
  bits = float(pos_bits.sum())
  esc_pos = np.flatnonzero(esc)

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
  if per_latent:
    return bits, grid_order(order, pos_bits)
  return bits


def decode_latents(coder, iarm: integer_arm.IntegerARM, shapes, rows: int, cols: int,
                   arm_fn=None, coded: list[np.ndarray] | None = None) -> list[np.ndarray]:
  """Pops all latent grids (``(h_k, w_k) int32``) front by front.

  With a ``rans.GuardedDecoder`` and ``arm_fn=None`` every front runs in one compiled
  kernel (``fast_ans.decode_latents``: contexts, int ARM, table indices, ANS,
  escapes). Otherwise (a raw constriction coder, or ``arm_fn`` given, e.g.
  ``integer_arm.apply_jax``) this is ``decode_latents_reference``. Both give the same
  grids, leave the decoder in the same state and raise the same ``BitstreamError``s.
  ``coded``: per grid the positions that were coded (others are 0); ``None`` = all.
  """
  if arm_fn is not None or not isinstance(coder, rans.GuardedDecoder):
    return decode_latents_reference(coder, iarm, shapes, rows, cols, arm_fn, coded)
  shapes = tuple(tuple(int(v) for v in s) for s in shapes)
  (hc, wc), places = context.canvas_layout(list(shapes), rows, cols)
  offsets = np.array([dy * wc + dx for dy, dx in context.context_offsets(rows, cols)],
                     np.int64)
  keep = np.zeros(0, np.uint8)
  if coded is not None:
    keep2 = np.zeros((hc, wc), np.uint8)
    for c, (h, w), (t, l) in zip(coded, shapes, places):
      keep2[t:t + h, l:l + w] = np.asarray(c, bool)
    keep = keep2.reshape(-1)
  canvas = np.zeros(hc * wc, np.int64)
  coder.decode_latent_fronts(np.array(shapes, np.int64).reshape(-1, 2),
                             np.array(places, np.int64).reshape(-1, 2), wc, cols,
                             offsets, keep, fast_ans_arm(iarm, offsets.size), canvas)
  order = FrontOrder((hc, wc), tuple(places), shapes, offsets, np.zeros(0, np.int64),
                     np.zeros(1, np.int64))
  return _checked_grids(order, canvas)


def fast_ans_arm(iarm: integer_arm.IntegerARM, num_inputs: int):
  """``(weights (L, I, O), biases (L, O), dims (L, 2), shifts (L,))`` for the kernel.

  int32 when ``integer_arm``'s limits hold (every accumulator < 2**31, exact), else
  int64 (wider accumulation, same values).
  """
  layers = iarm.layers
  if not layers or layers[0][0].shape[0] != num_inputs or layers[-1][0].shape[1] != 2:
    raise ValueError(f"ARM shape does not match {num_inputs} contexts -> 2 outputs")
  for (w, _), (w2, _) in zip(layers[:-1], layers[1:]):
    if w.shape[1] != w2.shape[0]:
      raise ValueError("ARM layer widths do not chain")
  n_in = max(w.shape[0] for w, _ in layers)
  n_out = max(w.shape[1] for w, _ in layers)
  small = (max(n_in, n_out) <= integer_arm.MAX_WIDTH
           and all(np.abs(w).max(initial=0) <= integer_arm.WEIGHT_LIMIT
                   and np.abs(b).max(initial=0) <= integer_arm.BIAS_LIMIT for w, b in layers))
  dt = np.int32 if small else np.int64
  weights = np.zeros((len(layers), n_in, n_out), dt)
  biases = np.zeros((len(layers), n_out), dt)
  for k, (w, b) in enumerate(layers):
    weights[k, :w.shape[0], :w.shape[1]] = w
    biases[k, :b.shape[0]] = b
  dims = np.array([w.shape for w, _ in layers], np.int64)
  return weights, biases, dims, np.array(iarm.shifts, np.int64)


def _checked_grids(order: FrontOrder, canvas: np.ndarray) -> list[np.ndarray]:
  # The canvas is 0 outside the grids: its extremes are the latents' (one pass, int64).
  if canvas.size and max(-int(canvas.min()), int(canvas.max())) > 8 * MAX_SYMBOL:
    raise BitstreamError("decoded latent symbol out of range")
  return _from_canvas(order, canvas)


def decode_latents_reference(coder, iarm: integer_arm.IntegerARM, shapes, rows: int, cols: int,
                   arm_fn=None, coded: list[np.ndarray] | None = None) -> list[np.ndarray]:
  """Reference twin of ``decode_latents``: a Python loop over fronts, NumPy + one
  ``coder.decode`` call per block (``coder``: a ``rans.GuardedDecoder`` or a raw
  constriction ``AnsCoder``). Same outputs, decoder state and errors.

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
  return _checked_grids(order, canvas)

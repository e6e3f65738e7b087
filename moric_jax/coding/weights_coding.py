"""Entropy coding of quantized network weights (integers ``k = round(w / delta)``).

Each tensor is coded with a zero-mean Laplace row of the fixed weight table; its scale
index (one byte per tensor, in the header) is chosen by the encoder to minimise the
tensor's actual bits. Tensors are coded in ``jax.tree_util`` leaf order of each
network (``arm`` then ``lsn``); the decoder rebuilds the tree from the architecture.
"""
from __future__ import annotations

import numpy as np

from moric_jax.coding import rans, tables
from moric_jax.errors import BitstreamError

MAX_WEIGHT = 1 << 22
# Per-tensor step refinement (format version 5): tensor t of a network with step
# ``delta`` uses ``delta * factor_t / STEP_FACTOR_UNIT`` (``factor_t`` a byte, 1..255;
# ``STEP_FACTOR_UNIT`` = the network's own step). The encoder tries the factors closest
# to 2^(k/4), k = -8..8: steps from delta/4 to 4 delta.
STEP_FACTOR_UNIT = 16
STEP_FACTORS = tuple(sorted({int(round(STEP_FACTOR_UNIT * 2.0 ** (k / 4)))
                             for k in range(-8, 9)}))


def tensor_steps(delta: float, factors) -> list[float]:
  """Per-tensor steps ``float32(float32(delta) * factor / 16)``: exact float64
  products of small integers, then one rounding, so the same on every machine."""
  d = np.float64(np.float32(delta))
  return [float(np.float32(d * int(j) / STEP_FACTOR_UNIT)) for j in factors]


def network_steps(delta: float, factors=()):
  """The steps of a network's tensors: ``delta`` for all when ``factors`` is empty,
  else ``tensor_steps(delta, factors)`` (one per tensor, leaf order)."""
  return tensor_steps(delta, factors) if len(factors) else delta


def unit_factors(num_tensors: int) -> tuple[int, ...]:
  """Factors of a network coded on its own step alone (versions 3 and 4)."""
  return (STEP_FACTOR_UNIT,) * int(num_tensors)


def _bits_for_scales(k: np.ndarray) -> np.ndarray:
  """``(NUM_WEIGHT_SCALES,)`` total bits of integers ``k`` under every scale row."""
  bits_t = tables.load_bits()
  radius = tables.WEIGHT_RADIUS
  main, esc, n, _ = rans.split(k, radius)
  total = bits_t["weight"][:, main].sum(axis=1)
  if esc.any():
    total += bits_t["weight_escape"][:, n].sum(axis=1) + n.sum()
  return total


def scale_bits(k: np.ndarray) -> np.ndarray:
  """``(NUM_WEIGHT_SCALES,)`` bits of the integers ``k`` under every scale row (the
  file codes a tensor with the row of fewest bits: their ``min``). Additive over
  elements, so an encoder can update it for one changed weight."""
  return _bits_for_scales(np.ravel(np.asarray(k, np.int64)))


def choose_scale(k: np.ndarray) -> tuple[int, float]:
  """Scale index with the fewest bits for tensor ``k`` and those bits."""
  bits = _bits_for_scales(np.ravel(k))
  s = int(np.argmin(bits))
  return s, float(bits[s])


def encode_tensors(coder, tensors: list[np.ndarray]) -> tuple[list[int], float]:
  """Pushes ``tensors`` (decoded first-to-last) onto the stack; returns scales, bits."""
  probs = tables.load_probabilities()
  chosen = []
  total = 0.0
  for k in tensors:
    k = np.ravel(np.asarray(k, np.int64))
    if k.size and np.abs(k).max() > MAX_WEIGHT:
      raise ValueError(f"quantized weight magnitude above {MAX_WEIGHT}")
    s, bits = choose_scale(k)
    chosen.append(s)
    total += bits
  for k, s in zip(reversed(tensors), reversed(chosen)):
    k = np.ravel(np.asarray(k, np.int64))
    main, esc, n, offset = rans.split(k, tables.WEIGHT_RADIUS)
    rans.push_escapes(coder, n, offset,
                      np.broadcast_to(probs["weight_escape"][s], (n.size, tables.NUM_ESCAPE_CLASSES)))
    rans.push_main(coder, main, np.broadcast_to(probs["weight"][s], (main.size, probs["weight"].shape[1])))
  return chosen, total


def decode_tensors(coder, sizes: list[int], scales: list[int]) -> list[np.ndarray]:
  """Pops tensors of ``sizes`` elements (flat int32) coded with ``scales``.

  A ``rans.GuardedDecoder`` decodes each tensor in one compiled call; any other coder
  goes through ``decode_tensors_reference`` (same results and decoder state).
  """
  if not isinstance(coder, rans.GuardedDecoder):
    return decode_tensors_reference(coder, sizes, scales)
  out = []
  for size, s in zip(sizes, scales):
    if size == 0:
      out.append(np.zeros(0, np.int32))
      continue
    if not 0 <= int(s) < tables.NUM_WEIGHT_SCALES:
      raise BitstreamError(f"weight scale index {s} out of range")
    rows = np.full(int(size), int(s), np.int64)
    out.append(coder.decode_residuals("weight", rows, rows,
                                      tables.WEIGHT_RADIUS).astype(np.int32))
  return out


def decode_tensors_reference(coder, sizes: list[int], scales: list[int]) -> list[np.ndarray]:
  """``decode_tensors`` through ``coder.decode`` calls (any coder, incl. constriction's)."""
  probs = tables.load_probabilities()
  out = []
  for size, s in zip(sizes, scales):
    if size == 0:
      out.append(np.zeros(0, np.int32))
      continue
    rows = np.broadcast_to(probs["weight"][s], (size, probs["weight"].shape[1]))
    r = rans.decode_block(coder, np.ascontiguousarray(rows),
                          lambda m: np.ascontiguousarray(np.broadcast_to(
                              probs["weight_escape"][s], (int(m.sum()), tables.NUM_ESCAPE_CLASSES))),
                          tables.WEIGHT_RADIUS)
    out.append(r.astype(np.int32))
  return out

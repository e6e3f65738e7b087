"""Entropy coding of integer residuals with constriction's ANS coder (a stack).

A residual ``r`` is coded with one row of a fixed table (``tables.py``): the index
``r + R`` when ``|r| <= R``, else an escape (negative / positive) followed by an excess
class ``n`` (second table row) and ``n`` uniform bits. A *block* is decoded in the order
main symbols, escape classes, escape bits; the encoder pushes the reverse.

All models are ``constriction.stream.model.Categorical(perfect=False)`` fed with the
exact dyadic floats ``count / 2**16`` and ``Uniform`` for raw bits, so encoder and
decoder build bit-identical fixed-point models on any IEEE-754 machine.
"""
from __future__ import annotations

import constriction
import numpy as np

from moric_jax.coding import fast_ans
from moric_jax.errors import BitstreamError

CATEGORICAL = constriction.stream.model.Categorical(perfect=False)
UNIFORM = constriction.stream.model.Uniform()
MAX_ESCAPE_CLASS = 23


def new_encoder() -> "constriction.stream.stack.AnsCoder":
  return constriction.stream.stack.AnsCoder()


def new_decoder(payload: bytes) -> "constriction.stream.stack.AnsCoder":
  if len(payload) % 4:
    raise BitstreamError(f"entropy-coded payload has {len(payload)} bytes, "
                         "not a multiple of 4")
  words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
  try:
    return constriction.stream.stack.AnsCoder(words)
  except Exception as e:  # constriction rejects e.g. a zero last word
    raise BitstreamError(f"invalid entropy-coded payload: {e}") from None


class GuardedDecoder:
  """ANS decoder of one payload that refuses to decode once the payload is used up.

  A decoder that ran dry keeps returning the first symbol of every table for free, so
  a short payload with a header claiming many symbols would otherwise run through all
  of them. In a valid file the coder is empty before the last symbol only if every
  remaining symbol is the first entry of its table (a residual of exactly ``-radius``
  at the very end of the decode order), which trained latents never give; the encoder
  checks its own output with this decoder. ``what`` names the payload in errors.

  The check is made at the start of every decode call (block), as before. The state
  is ``fast_ans``'s (``words`` + ``[state, pos]``), bit-exact with constriction's
  ``AnsCoder``: ``decode`` (constriction's call forms), ``decode_residuals``
  (weights) and ``decode_latent_fronts`` (``wavefront``) continue one stream.
  """

  def __init__(self, payload: bytes, what: str = "payload"):
    if len(payload) % 4:
      raise BitstreamError(f"entropy-coded payload has {len(payload)} bytes, "
                           "not a multiple of 4")
    self._words = np.frombuffer(payload, dtype="<u4").astype(np.uint32)
    try:
      self._st = fast_ans.open_stream(self._words)
    except ValueError as e:
      raise BitstreamError(f"invalid entropy-coded payload: {e}") from None
    self._what = what

  def _check(self, status: int) -> None:
    if status != fast_ans.OK:
      raise BitstreamError(f"truncated {self._what}: the entropy-coded data ends before "
                           "the last symbol")

  def decode(self, model, params) -> np.ndarray:
    """``constriction``'s ``decode(CATEGORICAL, probs (N, K))`` / ``decode(UNIFORM,
    sizes (N,))`` (int32 symbols); any float rows, quantized like constriction."""
    if self.is_empty():
      self._check(fast_ans.DRY)
    if model is CATEGORICAL:
      probs = np.asarray(params, np.float64)
      if probs.ndim != 2 or probs.shape[1] < 2:
        raise BitstreamError("entropy decoding failed: bad probability rows")
      try:
        cdf = fast_ans.fixed_point_cdf(probs)
      except ValueError as e:
        raise BitstreamError(f"entropy decoding failed: {e}") from None
      out = np.empty(probs.shape[0], np.int64)
      self._check(fast_ans.decode_categorical(self._words, self._st, cdf,
                                              np.arange(probs.shape[0]), out))
    elif model is UNIFORM:
      sizes = np.asarray(params, np.int64).reshape(-1)
      if sizes.size and (sizes.min() < 2 or sizes.max() >= fast_ans.ONE):
        raise BitstreamError("entropy decoding failed: uniform size out of range")
      out = np.empty(sizes.size, np.int64)
      self._check(fast_ans.decode_uniform(self._words, self._st, sizes, out))
    else:
      raise TypeError("GuardedDecoder decodes rans.CATEGORICAL and rans.UNIFORM only")
    return out.astype(np.int32)

  def decode_residuals(self, table: str, rows: np.ndarray, esc_rows: np.ndarray,
                       radius: int) -> np.ndarray:
    """``decode_block`` on the fixed tables ``table`` / ``table + "_escape"`` (e.g.
    ``"weight"``): residual ``i`` uses main row ``rows[i]`` and escape-class row
    ``esc_rows[i]`` (rows of the 2-D tables of ``fast_ans.load_cdfs``); int64."""
    cdfs = fast_ans.load_cdfs()
    (cdf, lut), (esc_cdf, esc_lut) = cdfs[table], cdfs[table + "_escape"]
    rows = np.ascontiguousarray(rows, np.int64)
    esc_rows = np.ascontiguousarray(esc_rows, np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= cdf.shape[0] or esc_rows.min() < 0
                      or esc_rows.max() >= esc_cdf.shape[0] or esc_rows.size != rows.size):
      raise ValueError("table rows out of range")
    out = np.empty(rows.size, np.int64)
    self._check(fast_ans.decode_residuals(self._words, self._st, cdf, lut, rows, esc_cdf,
                                          esc_lut, esc_rows, int(radius), out))
    return out

  def decode_latent_fronts(self, shapes, places, wc, cols, offsets, keep, arm, canvas):
    """Runs ``fast_ans.decode_latents`` (see ``wavefront.decode_latents``)."""
    from moric_jax.coding import integer_arm, tables
    cdfs = fast_ans.load_cdfs()
    a = tables.ACT_FRAC_BITS
    consts = np.array([1 << (a - 1), a, a - int(np.log2(tables.NUM_MU_BUCKETS)),
                       tables.NUM_MU_BUCKETS,
                       -tables.LOG_SCALE_MIN_FP + tables.LOG_SCALE_STEP_FP // 2,
                       tables.LOG_SCALE_STEP_FP, tables.NUM_LATENT_SCALES - 1], np.int64)
    weights, biases, dims, shifts = arm
    self._check(fast_ans.decode_latents(
        self._words, self._st, shapes, places, int(wc), int(cols), offsets, keep,
        weights, biases, dims, shifts, integer_arm.HIDDEN_LIMIT,
        integer_arm.CONTEXT_LIMIT, consts, *cdfs["latent"], *cdfs["latent_escape"],
        tables.LATENT_RADIUS, canvas))

  def is_empty(self) -> bool:
    return int(self._st[0]) == 0

  def finish(self) -> None:
    """Raises if data is left after the last symbol."""
    if not self.is_empty():
      raise BitstreamError(f"{self._what} has data left after the last symbol")

  def remaining_words(self) -> np.ndarray:
    """What constriction's ``get_compressed()`` would return now (uint32 words)."""
    state, pos = int(self._st[0]), int(self._st[1])
    tail = [w for w in (state & 0xFFFFFFFF, state >> 32)]
    while tail and tail[-1] == 0:
      tail.pop()
    return np.concatenate([self._words[:pos], np.array(tail, np.uint32)])


def payload_bytes(coder) -> bytes:
  return np.asarray(coder.get_compressed(), np.uint32).astype("<u4").tobytes()


def excess_class(e: np.ndarray) -> np.ndarray:
  """``floor(log2(e + 1))`` by integer comparisons (``e >= 0``)."""
  v = np.asarray(e, np.int64) + 1
  n = np.zeros(v.shape, np.int64)
  for k in range(1, MAX_ESCAPE_CLASS + 2):
    n += v >= (1 << k)
  return n


def split(r: np.ndarray, radius: int):
  """Residuals -> main indices, escape mask, classes, in-class offsets."""
  r = np.asarray(r, np.int64)
  main = r + radius
  esc = np.abs(r) > radius
  main[esc & (r < 0)] = 2 * radius + 1
  main[esc & (r > 0)] = 2 * radius + 2
  e = np.abs(r[esc]) - radius - 1
  n = excess_class(e)
  if n.size and n.max() > MAX_ESCAPE_CLASS:
    raise ValueError(f"residual {int(np.abs(r).max())} too large to code")
  offset = e + 1 - (np.int64(1) << n)
  return main.astype(np.int32), esc, n.astype(np.int32), offset.astype(np.int32)


def residual_bits(r: np.ndarray, main_bits: np.ndarray, esc_bits_rows: np.ndarray,
                  radius: int) -> np.ndarray:
  """Ideal code length (bits) of each residual.

  ``main_bits``: ``(N, K)`` table rows in bits; ``esc_bits_rows``: ``(N, C)``.
  """
  main, esc, n, _ = split(r, radius)
  bits = np.take_along_axis(main_bits, main[:, None].astype(np.int64), 1)[:, 0]
  if esc.any():
    bits[esc] += esc_bits_rows[esc, n] + n
  return bits


def push_escapes(coder, n: np.ndarray, offset: np.ndarray, esc_probs: np.ndarray):
  """Pushes the escape part of a block (classes with rows ``esc_probs``, then bits)."""
  if n.size == 0:
    return
  has_bits = n >= 1
  if has_bits.any():
    coder.encode_reverse(offset[has_bits].astype(np.int32), UNIFORM,
                         (np.int32(1) << n[has_bits]).astype(np.int32))
  coder.encode_reverse(n.astype(np.int32), CATEGORICAL, np.ascontiguousarray(esc_probs))


def push_main(coder, main: np.ndarray, probs: np.ndarray):
  if main.size:
    coder.encode_reverse(np.ascontiguousarray(main, np.int32), CATEGORICAL,
                         np.ascontiguousarray(probs))


def decode_block(coder, probs: np.ndarray, esc_probs_fn, radius: int) -> np.ndarray:
  """Decodes one block of residuals (``probs``: ``(N, K)`` rows).

  ``esc_probs_fn(mask)`` returns the escape-class rows of the escaped positions.
  """
  try:
    main = coder.decode(CATEGORICAL, probs).astype(np.int64)
    r = main - radius
    esc = main > 2 * radius
    if esc.any():
      n = coder.decode(CATEGORICAL, esc_probs_fn(esc)).astype(np.int64)
      offset = np.zeros_like(n)
      has_bits = n >= 1
      if has_bits.any():
        offset[has_bits] = coder.decode(
            UNIFORM, (np.int32(1) << n[has_bits]).astype(np.int32))
      e = offset + (np.int64(1) << n) - 1
      mag = radius + 1 + e
      r[esc] = np.where(main[esc] == 2 * radius + 1, -mag, mag)
    return r
  except BitstreamError:
    raise
  except Exception as e:
    raise BitstreamError(f"entropy decoding failed: {e}") from None

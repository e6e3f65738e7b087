"""Fixed-point ARM: integer weights, integer accumulation, ReLU, right shifts.

The float ARM (``model/arm.py``: Dense + ReLU layers, output ``(mu, raw_log_scale)``)
is converted after training to:

* weights ``W_int = round(w * 2**F)`` (``F = weight_frac_bits``, from the header),
  clipped to ``|W_int| <= WEIGHT_LIMIT``;
* layer 0 input: the integer context symbols clipped to ``[-CONTEXT_LIMIT,
  CONTEXT_LIMIT]`` (scale 1); hidden activations and outputs have
  ``A = ACT_FRAC_BITS`` fraction bits;
* each layer: ``acc = h @ W_int + b_int`` (``b_int = round(b * 2**(A_in + F))``,
  clipped), then ``floor(acc / 2**(A_in + F - A))`` (an arithmetic right shift), then
  ReLU + clip to ``[0, HIDDEN_LIMIT]`` for hidden layers.

The limits keep every accumulator below ``2**31`` for context size and widths <=
``MAX_WIDTH``, so the same numbers come out of int32 (JAX, any backend), int64 and
float64 matmuls (exact for integers below ``2**53``). The decoder uses float64 NumPy
matmuls (BLAS, fast); ``apply_jax`` is the int32 twin used to verify it.

The outputs pick table entries (see ``tables.py``): ``c = (mu + 2**(A-1)) >> A``,
mean bucket from the fraction, scale index from the log-scale.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from moric_jax.coding import tables

CONTEXT_LIMIT = 2**10
WEIGHT_LIMIT = 2**12 - 1
BIAS_LIMIT = 2**24
HIDDEN_LIMIT = 2**13 - 1
MAX_WIDTH = 48
# At least ACT_FRAC_BITS, so that every layer's right shift (F - A, then F) is >= 0.
MIN_FRAC_BITS, MAX_FRAC_BITS = tables.ACT_FRAC_BITS, 14


@dataclasses.dataclass(frozen=True)
class IntegerARM:
  """Integer layers ``[(W (in, out) int64, b (out,) int64)]`` and fraction bits."""
  layers: tuple[tuple[np.ndarray, np.ndarray], ...]
  weight_frac_bits: int

  @property
  def shifts(self) -> list[int]:
    """Right shift after each layer."""
    a, f = tables.ACT_FRAC_BITS, self.weight_frac_bits
    return [f - a if i == 0 else f for i in range(len(self.layers))]


def dense_layers(arm_params) -> list[tuple[np.ndarray, np.ndarray]]:
  """Flax ARM params -> ``[(kernel, bias)]`` in layer order (``Dense_0``, ...)."""
  p = arm_params["params"] if "params" in arm_params else arm_params
  names = sorted(p, key=lambda n: int(n.split("_")[-1]))
  return [(np.asarray(p[n]["kernel"]), np.asarray(p[n]["bias"])) for n in names]


def choose_frac_bits(float_layers) -> int:
  """Largest ``F`` in [MIN_FRAC_BITS, 14] with every ``|w| * 2**F <= WEIGHT_LIMIT``."""
  wmax = max(float(np.max(np.abs(np.asarray(w, np.float64)))) for w, _ in float_layers)
  if wmax <= 0:
    return MAX_FRAC_BITS
  f = int(np.floor(np.log2(WEIGHT_LIMIT / wmax)))
  return int(np.clip(f, MIN_FRAC_BITS, MAX_FRAC_BITS))


def from_float(float_layers, weight_frac_bits: int) -> IntegerARM:
  """Float (or dequantized) ``[(kernel, bias)]`` -> ``IntegerARM``.

  Uses float64 multiply-by-power-of-two and round-half-even: exact and identical on
  every IEEE-754 machine.
  """
  a, f = tables.ACT_FRAC_BITS, int(weight_frac_bits)
  if not MIN_FRAC_BITS <= f <= MAX_FRAC_BITS:
    raise ValueError(f"weight_frac_bits {f} outside [{MIN_FRAC_BITS}, {MAX_FRAC_BITS}]")
  out = []
  for i, (w, b) in enumerate(float_layers):
    in_frac = 0 if i == 0 else a
    wi = np.clip(np.round(np.asarray(w, np.float64) * 2.0**f), -WEIGHT_LIMIT, WEIGHT_LIMIT)
    bi = np.clip(np.round(np.asarray(b, np.float64) * 2.0**(in_frac + f)),
                 -BIAS_LIMIT, BIAS_LIMIT)
    if wi.shape[0] > MAX_WIDTH or wi.shape[1] > MAX_WIDTH:
      raise ValueError(f"ARM layer {wi.shape} wider than {MAX_WIDTH}")
    out.append((wi.astype(np.int64), bi.astype(np.int64)))
  return IntegerARM(tuple(out), f)


def layer_steps(delta, num_layers: int) -> list[tuple[float, float]]:
  """``(kernel step, bias step)`` per layer from one step or per-tensor steps in the
  tree's leaf order (``Dense_i``: bias, then kernel)."""
  if not isinstance(delta, (list, tuple)):
    return [(delta, delta)] * num_layers
  if len(delta) != 2 * num_layers:
    raise ValueError(f"{len(delta)} steps for {num_layers} ARM layers")
  return [(delta[2 * i + 1], delta[2 * i]) for i in range(num_layers)]


def from_quantized(int_layers, delta, weight_frac_bits: int) -> IntegerARM:
  """Coded integer weights ``k`` with step(s) ``delta`` -> ``IntegerARM``.

  ``delta``: one step, or per-tensor steps (``layer_steps``). ``w = k * delta`` is
  formed in float64 from the float32 steps of the header.
  """
  steps = layer_steps(delta, len(int_layers))
  f64 = lambda d: np.float64(np.float32(d))
  return from_float([(np.asarray(k, np.float64) * f64(dk), np.asarray(c, np.float64) * f64(db))
                     for (k, c), (dk, db) in zip(int_layers, steps)], weight_frac_bits)


def scaled_float_layers(iarm: IntegerARM) -> list[tuple[np.ndarray, np.ndarray]]:
  """float64 ``(W * 2**-shift, b * 2**-shift)`` per layer (exact power-of-two scaling).

  ``floor(x @ W' + b')`` equals ``(x @ W + b) >> shift``: every partial sum is a
  multiple of ``2**-shift`` (shift <= 14) below ``2**31``, so float64 holds it exactly
  whatever the summation order of the BLAS.
  """
  return [(w.astype(np.float64) * 2.0**-sh, b.astype(np.float64) * 2.0**-sh)
          for (w, b), sh in zip(iarm.layers, iarm.shifts)]


def apply_float_exact(layers, x: np.ndarray) -> np.ndarray:
  """``scaled_float_layers`` on float64 contexts already clipped to the context limit.

  Returns ``(N, 2)`` float64 holding the integers ``(mu, log_scale)``.
  """
  h = x
  last = len(layers) - 1
  for i, (w, b) in enumerate(layers):
    h = h @ w
    h += b
    np.floor(h, out=h)
    if i < last:
      np.maximum(h, 0.0, out=h)
      np.minimum(h, HIDDEN_LIMIT, out=h)
  return h


def apply_numpy(iarm: IntegerARM, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """``(N, C)`` integer contexts -> ``(mu, log_scale)`` int64 in ``2**-A`` units.

  float64 BLAS matmuls on integer values: exact (see ``scaled_float_layers``).
  """
  x = np.clip(np.asarray(contexts), -CONTEXT_LIMIT, CONTEXT_LIMIT).astype(np.float64)
  h = apply_float_exact(scaled_float_layers(iarm), x).astype(np.int64)
  return h[:, 0], h[:, 1]


def apply_int64(iarm: IntegerARM, contexts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Reference version of ``apply_numpy`` with int64 matmuls and shifts."""
  h = np.clip(np.asarray(contexts, np.int64), -CONTEXT_LIMIT, CONTEXT_LIMIT)
  last = len(iarm.layers) - 1
  for i, ((w, b), sh) in enumerate(zip(iarm.layers, iarm.shifts)):
    h = (h @ w + b) >> sh
    if i < last:
      h = np.clip(h, 0, HIDDEN_LIMIT)
  return h[:, 0], h[:, 1]


def apply_jax(iarm: IntegerARM, contexts):
  """JAX int32 twin of ``apply_numpy`` (returns int32 jax arrays)."""
  import jax.numpy as jnp
  h = jnp.clip(jnp.asarray(contexts, jnp.int32), -CONTEXT_LIMIT, CONTEXT_LIMIT)
  last = len(iarm.layers) - 1
  for i, ((w, b), sh) in enumerate(zip(iarm.layers, iarm.shifts)):
    acc = jnp.matmul(h, jnp.asarray(w, jnp.int32), preferred_element_type=jnp.int32)
    h = jnp.right_shift(acc + jnp.asarray(b, jnp.int32), jnp.int32(sh))
    if i < last:
      h = jnp.clip(h, 0, HIDDEN_LIMIT)
  return h[:, 0], h[:, 1]


def table_indices(mu: np.ndarray, log_scale: np.ndarray, xp=np):
  """Integer ARM outputs -> ``(c, mean bucket, scale index)`` (same dtype as inputs).

  ``c = floor(mu + 1/2)`` is the integer the residual is taken from.
  """
  a = tables.ACT_FRAC_BITS
  shifted = mu + (1 << (a - 1))
  c = shifted >> a
  frac = shifted & ((1 << a) - 1)
  bucket = frac >> (a - int(np.log2(tables.NUM_MU_BUCKETS)))
  half = tables.LOG_SCALE_STEP_FP // 2
  s = (log_scale - tables.LOG_SCALE_MIN_FP + half) // tables.LOG_SCALE_STEP_FP
  s = xp.clip(s, 0, tables.NUM_LATENT_SCALES - 1)
  return c, bucket, s

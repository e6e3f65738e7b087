"""Fixed integer probability tables of the entropy coder (deterministic parse).

Everything that decides a probability is an integer. The tables are generated once by
``scripts/make_tables.py`` (float64 Laplace masses, quantized to integer counts) and
stored in ``laplace_tables.npz`` next to this file; the coder only ever reads the stored
integers. Each row sums to ``2**TABLE_PRECISION`` and every entry is >= 1, so any
symbol costs at most ``TABLE_PRECISION`` (16) bits.

Index conventions (all integer arithmetic):

* Log-scale grid: scale index ``s`` stands for the Laplace scale
  ``b_s = exp((LOG_SCALE_MIN_FP + LOG_SCALE_STEP_FP * s) / 2**ACT_FRAC_BITS)``; the
  step is 1/8 in natural-log units. Latent tables use ``s < NUM_LATENT_SCALES``
  (``b`` in [0.04, 64], the float ARM's clip range); weight tables extend to ~2000.
* Mean buckets: the integer ARM gives ``mu`` in units of ``2**-ACT_FRAC_BITS``; the
  coded residual is ``x - c`` with ``c = floor(mu + 1/2)`` and the fractional part
  ``mu - c`` in [-1/2, 1/2) is bucketed into ``NUM_MU_BUCKETS`` equal bins (the table
  row uses the bin centre).
* Alphabet of a row with radius R: index ``r + R`` for residuals ``|r| <= R``, then
  ``2R + 1`` = escape negative, ``2R + 2`` = escape positive. An escaped residual has
  excess ``e = |r| - R - 1 >= 0`` coded as a class ``n = floor(log2(e + 1))`` (table
  ``*_escape``, ``NUM_ESCAPE_CLASSES`` entries per scale) followed by ``n`` raw bits
  (uniform over ``2**n``) for ``e + 1 - 2**n``.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

TABLE_PRECISION = 16          # Rows sum to 2**16; min count 1 -> <= 16 bits/symbol.
ACT_FRAC_BITS = 6             # Fixed-point fraction bits of ARM activations/outputs.
LOG_SCALE_STEP_FP = 8         # 8 / 64 = 1/8 natural-log step between table scales.
LOG_SCALE_MIN_FP = -206       # round(ln(0.04) * 64).
NUM_LATENT_SCALES = 60        # s = 0..59 covers b in [0.04, ~64].
NUM_WEIGHT_SCALES = 88        # s = 0..87 covers b up to ~2000 (integer weight units).
NUM_MU_BUCKETS = 16
LATENT_RADIUS = 31            # Latent residual alphabet: [-31, 31] + 2 escapes = 65.
WEIGHT_RADIUS = 255           # Weight alphabet: [-255, 255] + 2 escapes = 513.
NUM_ESCAPE_CLASSES = 24       # Excess up to 2**24 - 2.

TABLE_FILE = Path(__file__).with_name("laplace_tables.npz")
TABLE_KEYS = ("latent", "latent_escape", "weight", "weight_escape")


def table_scale(s: np.ndarray | int) -> np.ndarray:
  """Laplace scale ``b`` (float64) that scale index ``s`` stands for."""
  return np.exp((LOG_SCALE_MIN_FP + LOG_SCALE_STEP_FP * np.asarray(s, np.float64))
                / 2.0**ACT_FRAC_BITS)


def mu_bucket_centre(bucket: np.ndarray | int) -> np.ndarray:
  """Offset ``mu - c`` (float64, in [-1/2, 1/2)) that mean bucket ``bucket`` stands for."""
  return -0.5 + (np.asarray(bucket, np.float64) + 0.5) / NUM_MU_BUCKETS


# ----------------------------------------------------------------------------------
# Generation (used by scripts/make_tables.py and the regeneration test only).

def _laplace_cdf(x: np.ndarray, mu: float, b: float) -> np.ndarray:
  z = (x - mu) / b
  return np.where(z < 0, 0.5 * np.exp(np.minimum(z, 0.0)),
                  1.0 - 0.5 * np.exp(-np.maximum(z, 0.0)))


def _laplace_upper_tail(x: np.ndarray, mu: float, b: float) -> np.ndarray:
  """``P(X > x)`` computed without cancellation in the right tail."""
  z = (x - mu) / b
  return np.where(z >= 0, 0.5 * np.exp(-np.maximum(z, 0.0)),
                  1.0 - 0.5 * np.exp(np.minimum(z, 0.0)))


def _bin_masses(mu: float, b: float, radius: int) -> np.ndarray:
  """Masses of residual bins ``[-R..R]`` then the two escape tails (float64)."""
  r = np.arange(-radius, radius + 1, dtype=np.float64)
  lo, hi = r - 0.5, r + 0.5
  # Left of mu use CDF differences, right of mu upper-tail differences.
  left = _laplace_cdf(hi, mu, b) - _laplace_cdf(lo, mu, b)
  right = _laplace_upper_tail(lo, mu, b) - _laplace_upper_tail(hi, mu, b)
  mass = np.where(r < mu, left, right)
  esc_neg = _laplace_cdf(np.float64(-radius - 0.5), mu, b)
  esc_pos = _laplace_upper_tail(np.float64(radius + 0.5), mu, b)
  return np.concatenate([mass, [esc_neg, esc_pos]])


def _escape_class_masses(b: float, radius: int) -> np.ndarray:
  """Masses of excess classes ``n`` for a zero-mean Laplace beyond ``radius``."""
  n = np.arange(NUM_ESCAPE_CLASSES, dtype=np.float64)
  lo = radius + 2.0**n - 0.5           # |r| from R + 2^n ...
  hi = radius + 2.0**(n + 1) - 0.5     # ... to R + 2^(n+1) - 1
  # Ratio of tails, relative to the tail at radius + 0.5 (stable for tiny b).
  start = radius + 0.5
  return np.exp(-(lo - start) / b) - np.exp(-(hi - start) / b)


def quantize_counts(p: np.ndarray, precision: int = TABLE_PRECISION) -> np.ndarray:
  """Float masses (last axis) -> int counts >= 1 summing to ``2**precision``.

  Deterministic: floor of the scaled masses plus one, remainder to the largest entry.
  """
  p = np.asarray(p, np.float64)
  total = 2**precision
  k = p.shape[-1]
  p = np.maximum(p, 0.0)
  p = p / p.sum(axis=-1, keepdims=True)
  counts = np.floor(p * (total - k)).astype(np.int64) + 1
  rem = total - counts.sum(axis=-1)
  top = np.argmax(counts, axis=-1)
  np.put_along_axis(counts, top[..., None],
                    np.take_along_axis(counts, top[..., None], -1) + rem[..., None], -1)
  assert np.all(counts >= 1) and np.all(counts.sum(-1) == total)
  return counts.astype(np.uint32)


def generate_tables() -> dict[str, np.ndarray]:
  """Builds all tables (float64 maths, then integer counts)."""
  latent = np.zeros((NUM_LATENT_SCALES, NUM_MU_BUCKETS, 2 * LATENT_RADIUS + 3), np.float64)
  for s in range(NUM_LATENT_SCALES):
    b = float(table_scale(s))
    for q in range(NUM_MU_BUCKETS):
      latent[s, q] = _bin_masses(float(mu_bucket_centre(q)), b, LATENT_RADIUS)
  weight = np.stack([_bin_masses(0.0, float(table_scale(s)), WEIGHT_RADIUS)
                     for s in range(NUM_WEIGHT_SCALES)])
  lat_esc = np.stack([_escape_class_masses(float(table_scale(s)), LATENT_RADIUS)
                      for s in range(NUM_LATENT_SCALES)])
  w_esc = np.stack([_escape_class_masses(float(table_scale(s)), WEIGHT_RADIUS)
                    for s in range(NUM_WEIGHT_SCALES)])
  return {"latent": quantize_counts(latent), "latent_escape": quantize_counts(lat_esc),
          "weight": quantize_counts(weight), "weight_escape": quantize_counts(w_esc)}


# ----------------------------------------------------------------------------------
# Loading (coder side).

@functools.lru_cache(maxsize=1)
def load_counts() -> dict[str, np.ndarray]:
  """The stored integer tables (uint32 counts)."""
  if not TABLE_FILE.exists():
    raise FileNotFoundError(
        f"missing {TABLE_FILE}; regenerate it with scripts/make_tables.py")
  with np.load(TABLE_FILE) as f:
    out = {k: np.asarray(f[k], np.uint32) for k in TABLE_KEYS}
  for k, v in out.items():
    v.setflags(write=False)
  return out


@functools.lru_cache(maxsize=1)
def load_probabilities() -> dict[str, np.ndarray]:
  """Tables as float64 ``count / 2**16`` (exact dyadic values) for constriction."""
  out = {k: v.astype(np.float64) / 2.0**TABLE_PRECISION for k, v in load_counts().items()}
  for v in out.values():
    v.setflags(write=False)
  return out


@functools.lru_cache(maxsize=1)
def load_bits() -> dict[str, np.ndarray]:
  """Tables as ideal code lengths ``-log2(count / 2**16)`` in bits (float64)."""
  return {k: TABLE_PRECISION - np.log2(v.astype(np.float64))
          for k, v in load_counts().items()}


def tables_digest() -> str:
  """Short SHA-256 digest of the stored tables (for `moric info`)."""
  h = hashlib.sha256()
  for k in TABLE_KEYS:
    h.update(np.ascontiguousarray(load_counts()[k]).tobytes())
  return h.hexdigest()[:16]

"""Annealing schedules computed inside the jit-compiled training program.

``num_steps`` may be traced, so one compiled program serves any step count.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def progress(step: jax.Array, num_steps: jax.Array) -> jax.Array:
  """Fraction of ``num_steps`` done, clipped to [0, 1]."""
  return jnp.clip(step / jnp.maximum(num_steps, 1), 0.0, 1.0)


def linear(step: jax.Array, num_steps: jax.Array, start: float, end: float) -> jax.Array:
  """Linear interpolation from ``start`` (step 0) to ``end`` (step ``num_steps``)."""
  return start + (end - start) * progress(step, num_steps)


def learning_rate(step: jax.Array, soft_steps: jax.Array, peak: float,
                  ste_rate: float) -> jax.Array:
  """Cosine decay from ``peak`` over the soft phase, then the constant ``ste_rate``."""
  cosine = 0.5 * peak * (1.0 + jnp.cos(jnp.pi * progress(step, soft_steps)))
  return jnp.where(step < soft_steps, cosine, ste_rate)

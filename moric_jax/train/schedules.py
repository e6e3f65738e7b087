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
                  final_rate: float, total_steps: jax.Array | None = None,
                  start: int = 0) -> jax.Array:
  """Cosine decay from ``peak`` over the soft phase (from step ``start`` to
  ``soft_steps``), then ``final_rate``: constant, or with ``total_steps`` a cosine
  decay from ``final_rate`` over the final phase."""
  cosine = 0.5 * peak * (1.0 + jnp.cos(jnp.pi * progress(step - start,
                                                          soft_steps - start)))
  final = final_rate
  if total_steps is not None:
    done = progress(step - soft_steps, total_steps - soft_steps)
    final = 0.5 * final_rate * (1.0 + jnp.cos(jnp.pi * done))
  return jnp.where(step < soft_steps, cosine, final)

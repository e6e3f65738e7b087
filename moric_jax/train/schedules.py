"""Annealing schedules computed inside the jit-compiled training program."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def linear(step: jax.Array, num_steps: int, start: float, end: float) -> jax.Array:
  """Linear interpolation from ``start`` (step 0) to ``end`` (step ``num_steps``)."""
  frac = jnp.clip(step / max(num_steps, 1), 0.0, 1.0)
  return start + (end - start) * frac


def cosine_lr(learning_rate: float, num_steps: int) -> optax.Schedule:
  """Cosine decay from ``learning_rate`` to 0 over ``num_steps``."""
  return optax.cosine_decay_schedule(learning_rate, max(num_steps, 1))

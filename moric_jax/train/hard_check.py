"""Hard-loss checks of the soft phase, and the reload of the best model at its end.

Cool-chic 5's encoder evaluates the hard-quantized loss every 100 iterations of its
main phase and, when the main phase ends, reloads the best model seen before the final
phase starts. Here ``config.train.hard_check_every = K`` (0 = off) does the same at
chunk boundaries: a check whenever a chunk crosses a multiple of ``K`` steps and at the
last soft step (the chunk that would cross it stops there, ``stop_at``). The best
parameters and their loss live in the training carry's ``best_params`` / ``best_loss``
slots (unused in the soft phase, and saved by the checkpoints), so a resumed encode
checks and reloads exactly as an uninterrupted one. At the end of the soft phase the
parameters become the best checked ones and ``best_loss`` is reset for the final phase's
own tracking.

Carries are ``(params, opt_state, step, key, best_params, best_loss, ...)``, either of
one run (``best_loss`` a scalar) or stacked (``best_loss`` of shape ``(N,)``).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np


def every(train_config: ml_collections.ConfigDict) -> int:
  """Steps between checks (0 = off). ``ValueError`` if negative."""
  k = int(train_config["hard_check_every"])
  if k < 0:
    raise ValueError(f"train.hard_check_every must be >= 0, got {k}")
  return k


def stop_at(done: int, chunk_size: int, soft_steps: int, total: int, k: int) -> int:
  """The step the next chunk ends at: ``done + chunk_size`` capped by ``total``, and by
  ``soft_steps`` when checks are on and the soft phase is not over."""
  end = min(done + chunk_size, total)
  if k and done < soft_steps < end:
    end = soft_steps
  return end


def chunk_hyper(hyper: dict, done: int, end: int, chunk_size: int, total: int) -> dict:
  """``hyper`` for the chunk from ``done`` to ``end`` (``stop_at``): a chunk cut short
  before ``total`` stops by its ``total_steps`` (traced: no new program); scalar or
  stacked ``(N,)`` hyper."""
  if end - done == chunk_size or end == total:
    return hyper
  return dict(hyper, total_steps=jnp.full_like(jnp.asarray(hyper["total_steps"]), end))


def due(before: int, after: int, soft_steps: int, k: int) -> bool:
  """Whether a chunk from step ``before`` to ``after`` ends with a check."""
  if not k or after > soft_steps or after <= before:
    return False
  return after == soft_steps or after // k > before // k


def _where(mask: jax.Array, new, old):
  """``new`` where ``mask`` (one flag per entry of the leading axis, or a scalar)."""
  def pick(a, b):
    m = jnp.reshape(mask, jnp.shape(mask) + (1,) * (jnp.ndim(a) - jnp.ndim(mask)))
    return jnp.where(m, a, b)
  return jax.tree_util.tree_map(pick, new, old)


def record(carry: tuple, losses) -> tuple:
  """The carry with ``best_params`` / ``best_loss`` replaced where ``losses`` (the hard
  loss of the current parameters, scalar or ``(N,)``) is lower; non-finite never wins."""
  losses = jnp.asarray(np.where(np.isfinite(losses), losses, np.inf), jnp.float32)
  better = losses < carry[5]
  return carry[:4] + (_where(better, carry[0], carry[4]),
                      jnp.where(better, losses, carry[5])) + carry[6:]


def reload(carry: tuple) -> tuple:
  """End of the soft phase: the parameters become the best checked ones (entries never
  checked keep theirs) and ``best_loss`` is reset to infinity."""
  checked = jnp.isfinite(carry[5])
  params = _where(checked, carry[4], carry[0])
  return (params,) + carry[1:5] + (jnp.full_like(carry[5], jnp.inf),) + carry[6:]


def after_chunk(carry: tuple, before: int, after: int, soft_steps: int, k: int,
                losses_of) -> tuple:
  """The check (and, at ``soft_steps``, the reload) due after a chunk that went from
  ``before`` to ``after``; ``losses_of(params)`` gives the hard loss(es) of the carry's
  parameters. The carry unchanged when nothing is due."""
  if not due(before, after, soft_steps, k):
    return carry
  carry = record(carry, losses_of(carry[0]))
  return reload(carry) if after == soft_steps else carry


def stacked_losses(evaluators: Sequence, lmbdas: Sequence[float]):
  """``losses_of`` for a stacked carry: entry ``i`` evaluated by ``evaluators[i]`` at
  ``lmbdas[i]``; returns an ``(N,)`` float64 array."""
  def losses_of(params):
    return np.array([float(ev(jax.tree_util.tree_map(lambda x, i=i: x[i], params),
                              lm)[0]) for i, (ev, lm) in enumerate(zip(evaluators, lmbdas))])
  return losses_of

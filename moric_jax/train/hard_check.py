"""Hard-loss checks of the soft phase, and the reload of the best model at its end.

Cool-chic 5's encoder evaluates the hard-quantized loss every 100 iterations of its
main phase and, when the main phase ends, reloads the best model seen before the final
phase starts. Here ``config.train.hard_check_every = K`` (0 = off) does the same at
chunk boundaries: a check whenever a chunk crosses a multiple of ``K`` steps and at the
last soft step (the chunk that would cross it stops there, ``stop_at``). The best
parameters and their loss live in the training state's ``best_params`` / ``best_loss``
fields (unused in the soft phase, and saved by the checkpoints), so a resumed encode
checks and reloads exactly as an uninterrupted one. At the end of the soft phase the
parameters become the best checked ones and ``best_loss`` is reset for the final phase's
own tracking.

States (``state.TrainState``) are of one run (``best_loss`` a scalar) or stacked
(``best_loss`` of shape ``(N,)``).
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax.train.state import TrainState


def every(train_config: ml_collections.ConfigDict) -> int:
  """Steps between checks (0 = off). ``ValueError`` if negative."""
  k = int(train_config["hard_check_every"])
  if k < 0:
    raise ValueError(f"train.hard_check_every must be >= 0, got {k}")
  return k


def stop_at(done: int, chunk_size: int, soft_steps: int, total: int, k: int,
            split: bool = False) -> int:
  """The step the next chunk ends at: ``done + chunk_size`` capped by ``total``, and by
  ``soft_steps`` when checks are on (or ``split``: the final phase starts afresh) and
  the soft phase is not over."""
  end = min(done + chunk_size, total)
  if (k or split) and done < soft_steps < end:
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


def record(state: TrainState, losses) -> TrainState:
  """The state with ``best_params`` / ``best_loss`` replaced where ``losses`` (the hard
  loss of the current parameters, scalar or ``(N,)``) is lower; non-finite never wins."""
  losses = jnp.asarray(np.where(np.isfinite(losses), losses, np.inf), jnp.float32)
  better = losses < state.best_loss
  return state._replace(best_params=_where(better, state.params, state.best_params),
                        best_loss=jnp.where(better, losses, state.best_loss))


def reload(state: TrainState) -> TrainState:
  """End of the soft phase: the parameters become the best checked ones (entries never
  checked keep theirs) and ``best_loss`` is reset to infinity."""
  checked = jnp.isfinite(state.best_loss)
  return state._replace(params=_where(checked, state.best_params, state.params),
                        best_loss=jnp.full_like(state.best_loss, jnp.inf))


def after_chunk(state: TrainState, before: int, after: int, soft_steps: int, k: int,
                losses_of) -> TrainState:
  """The check (and, at ``soft_steps``, the reload) due after a chunk that went from
  ``before`` to ``after``; ``losses_of(params)`` gives the hard loss(es) of the state's
  parameters. The state unchanged when nothing is due."""
  if not due(before, after, soft_steps, k):
    return state
  state = record(state, losses_of(state.params))
  return reload(state) if after == soft_steps else state


def stacked_losses(evaluators: Sequence, lmbdas: Sequence[float]):
  """``losses_of`` for a stacked carry: entry ``i`` evaluated by ``evaluators[i]`` at
  ``lmbdas[i]``; returns an ``(N,)`` float64 array."""
  def losses_of(params):
    return np.array([float(ev(jax.tree_util.tree_map(lambda x, i=i: x[i], params),
                              lm)[0]) for i, (ev, lm) in enumerate(zip(evaluators, lmbdas))])
  return losses_of

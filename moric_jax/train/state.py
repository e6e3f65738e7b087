"""The training state: what one overfitting run carries from step to step.

One run's state holds scalars in ``step`` / ``best_loss`` / ``lr_scale``; a stack of runs
(several lambdas, images or warm-up candidates trained in one program) holds the same
fields with a leading axis of N entries. The state is what the checkpoints save, so an
encode resumed from one continues exactly.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class TrainState(NamedTuple):
  """``params`` / ``opt_state``: the parameters and the optimizer's moments; ``step``
  (int32): steps done; ``key``: the run's PRNG key (each step folds its index in);
  ``best_params`` / ``best_loss``: the best parameters by hard loss (the hard-loss checks
  of the soft phase, then the final phase's own tracking; ``inf`` = none yet);
  ``lr_scale`` (float32): the learning-rate factor, halved by each NaN rollback."""
  params: Any
  opt_state: Any
  step: jax.Array
  key: jax.Array
  best_params: Any
  best_loss: jax.Array
  lr_scale: jax.Array


def initial(params: dict, optimizer: optax.GradientTransformation, key: jax.Array
            ) -> TrainState:
  """The state of a run starting from ``params`` at step 0."""
  return TrainState(params, optimizer.init(params), jnp.asarray(0, jnp.int32), key,
                    params, jnp.asarray(jnp.inf, jnp.float32),
                    jnp.asarray(1.0, jnp.float32))


def stack(trees, n: int | None = None):
  """``trees`` (a sequence of same-shaped pytrees) stacked on a new leading axis, or,
  with ``n``, the one pytree ``trees`` repeated ``n`` times."""
  if n is not None:
    return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)),
                                  trees)
  return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *trees)


def entry(tree, i):
  """Entry ``i`` (an int, or an index array for several) of a stacked pytree."""
  return jax.tree_util.tree_map(lambda x: x[i], tree)

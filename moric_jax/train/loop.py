"""The training loop: one for every encode, a single one being a stack of one.

``fit`` trains N parameter sets (one per lambda, or per image x lambda, all of one image
shape) in one compiled program per chunk of steps: the warm-up (``warmup.py``), then the
soft phase with its hard-loss checks (``hard_check.py``), then the final phase, each
entry keeping its best parameters; a phase the plan starts afresh gets a new optimizer
state for every entry at its first step. For every entry: a chunk that ends with a non-finite
loss is rolled back and retried with half that entry's learning rate; the stacked
``TrainState`` is checkpointed every few steps and a rerun resumes from it to the same
result. With several devices the stack is sharded over a 1-D mesh. The steps themselves
are ``overfit.build_chunk_fn``'s program.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from moric_jax.model.codec import Codec
from moric_jax.train import hard_check, overfit, warmup
from moric_jax.train import plan as plan_lib
from moric_jax.train import state as state_lib
from moric_jax.train.state import TrainState

logger = logging.getLogger("moric_jax")

PHASES = ("warm-up", "soft", "final")


class TrainingDivergedError(RuntimeError):
  """Training kept producing non-finite losses after lowering the learning rate."""


def phase_at(done: int, soft_steps: int) -> str:
  """The name of the phase a chunk ending at step ``done`` belongs to (after warm-up)."""
  return "soft" if done <= soft_steps else "final"


def _single_chunk(chunk: Callable) -> Callable:
  """A stack of one run through the unbatched program (the same arithmetic as one
  encode always had; the squeeze and expand are free inside the jitted call)."""
  @jax.jit
  def run(state, image, hyper):
    new, aux = chunk(state_lib.entry(state, 0), image, state_lib.entry(hyper, 0))
    return jax.tree_util.tree_map(lambda x: x[None], (new, aux))
  return run


def fit(codec: Codec, image, config: ml_collections.ConfigDict, lmbdas: Sequence,
        key: jax.Array, *, params: dict | None = None,
        evaluate: Callable | None = None,
        on_chunk: Callable[[overfit.ChunkStats], None] | None = None,
        checkpointer=None, devices: Sequence[jax.Device] | None = None,
        max_rollbacks: int = 6) -> list[dict]:
  """Trains one parameter set per entry of ``lmbdas``; returns their parameters.

  ``image``: ``(H, W, 3) float32`` in [0, 1] shared by every entry, or ``(N, H, W, 3)``
  with ``N = len(lmbdas)``, entry ``i`` trained on ``image[i]``. ``lmbdas[i]``: a scalar
  or a per-region ``(R,)`` array. Every entry starts from the same initialisation
  (``codec.init`` of ``key``'s first half, or ``params``; no warm-up then) and the same
  training key, as the same encodes run one by one would; with ``train.warmup`` each
  entry goes on from its own best candidate. ``evaluate``: an ``overfit.Evaluator`` to
  reuse (the hard loss of one entry; ``.on(image)`` for other images).
  ``on_chunk(stats)`` after every chunk: ``stats.step`` counts the steps of one entry,
  warm-up candidates included (what ``num_steps`` budgets), the metrics are entry 0's
  (warm-up: its best candidate's). ``checkpointer``: a ``checkpoints.TrainCheckpointer``
  for this stack. ``TrainingDivergedError`` after ``max_rollbacks`` rollbacks.
  """
  n = len(lmbdas)
  per_image = np.ndim(image) == 4
  if per_image and len(image) != n:
    raise ValueError(f"{len(image)} images for {n} lambdas: give one image per entry")
  devices = list(devices or (jax.devices() if n > 1 else jax.devices()[:1]))
  padded = -(-n // len(devices)) * len(devices)        # padding entries are dropped
  lm = list(lmbdas) + [lmbdas[-1]] * (padded - n)
  image_j = jnp.asarray(image, jnp.float32)
  if per_image and padded > n:
    image_j = jnp.concatenate([image_j, jnp.repeat(image_j[-1:], padded - n, axis=0)])
  procedure = plan_lib.from_config(config)
  soft_steps, total = procedure.soft.steps, procedure.trajectory_steps
  chunk_size, check_every = procedure.chunk_size, procedure.soft.hard_check_every
  k_init, k_train = jax.random.split(key)
  stages = procedure.warmup if params is None else ()
  if params is None:
    params = codec.init(k_init)
  optimizer = overfit.make_optimizer(config.train)
  warm_optimizer = overfit.make_optimizer(config.train, procedure.warmup_settings)
  mode = "images" if per_image else True
  if padded == 1 and not per_image:
    chunk = _single_chunk(overfit.build_chunk_fn(codec, config, optimizer, chunk_size))
  else:
    chunk = overfit.build_chunk_fn(codec, config, optimizer, chunk_size, batched=mode)
  hypers = [overfit.hyper_params(config, soft_steps, total, l) for l in lm]
  hyper = state_lib.stack(hypers)
  evaluate = evaluate or overfit.Evaluator(codec, image_j[0] if per_image else image_j,
                                         config, lm[0])
  evaluators = ([evaluate.on(image_j[i]) for i in range(padded)] if per_image
                else [evaluate] * padded)
  state = state_lib.stack(state_lib.initial(params, optimizer, k_train), padded)
  done = 0
  resumed = False
  if checkpointer is not None:
    done, restored = checkpointer.restore(state._asdict())
    if restored is not None:
      state, resumed = TrainState(**restored), True
  offset = warmup.extra_steps(config) if stages else 0
  clock, current = [time.perf_counter()], [None]
  logger.info("training %d entr%s: %s", n, "y" if n == 1 else "ies", procedure.describe())

  def report(step: int, phase: str, aux: dict, steps: int) -> None:
    if phase != current[0]:
      logger.info("phase %s from step %d", phase, step - steps)
      current[0] = phase
    now = time.perf_counter()
    if on_chunk is not None:
      on_chunk(overfit.chunk_stats(step, phase, aux, steps, now - clock[0]))
    clock[0] = now

  if stages and not resumed:
    reported = [0]

    def on_steps(steps, aux):     # steps of every entry and candidate of one call
      reported[0] += steps
      report(reported[0] // padded, "warm-up", aux, steps // padded)

    state = warmup.run(
        codec, image_j, config,
        overfit.candidate_state(codec, params, warm_optimizer, k_init, k_train), hypers,
        overfit.build_chunk_fn(codec, config, warm_optimizer,
                               warmup.chunk_length(config), batched=mode, warmup=True),
        evaluate, on_steps)
    done = warmup.warmup_steps(config)
  if len(devices) > 1:
    mesh = Mesh(np.asarray(devices), ("batch",))
    split = NamedSharding(mesh, PartitionSpec("batch"))
    state, hyper = jax.device_put(state, split), jax.device_put(hyper, split)
    image_j = jax.device_put(image_j, split if per_image
                             else NamedSharding(mesh, PartitionSpec()))
  losses_of = hard_check.stacked_losses(evaluators, lm)
  # A phase that starts with a fresh optimizer state (plan.SoftPhase / FinalPhase):
  # the state is renewed from the parameters alone when the loop stands at its first
  # step, so a run resumed from a checkpoint there renews it the same way.
  fresh_at = {s for s, on in ((procedure.soft.start, procedure.soft.fresh_optimizer),
                              (soft_steps, procedure.final.fresh_optimizer))
              if on and s < total}
  rollbacks = 0
  clock[0] = time.perf_counter()
  while done < total:
    if done in fresh_at:
      state = state._replace(opt_state=jax.vmap(optimizer.init)(state.params))
    end = hard_check.stop_at(done, chunk_size, soft_steps, total, check_every,
                             split=procedure.final.fresh_optimizer)
    new, aux = chunk(state, image_j,
                     hard_check.chunk_hyper(hyper, done, end, chunk_size, total))
    aux = jax.device_get(aux)
    bad = ~np.isfinite(np.asarray(aux["loss"]))
    if bad.any():
      rollbacks += 1
      if rollbacks > max_rollbacks:
        raise TrainingDivergedError(
            f"loss is not finite at step {end} even after lowering the learning rate "
            f"{max_rollbacks} times; try a smaller learning_rate")
      scale = jnp.where(jnp.asarray(bad), state.lr_scale * 0.5, state.lr_scale)
      state = state._replace(lr_scale=scale)
      logger.warning("non-finite loss in steps %d..%d (entries %s): rolled back, "
                     "learning rate scaled by %s", done, end,
                     np.flatnonzero(bad[:n]).tolist(), np.asarray(scale)[bad].tolist())
      continue
    state = hard_check.after_chunk(new, done, end, soft_steps, check_every, losses_of)
    steps, done = end - done, end
    if checkpointer is not None:
      checkpointer.maybe_save(done, state._asdict(), force=done >= total)
    report(done + offset, phase_at(done, soft_steps), {k: v[0] for k, v in aux.items()},
           steps)
  if checkpointer is not None:
    checkpointer.close()
  out = []
  for i in range(n):
    last = state_lib.entry(state.params, i)
    out.append(last if soft_steps == total else overfit.keep_better(
        last, state_lib.entry(state.best_params, i), state.best_loss[i], evaluators[i],
        lm[i]))
  return out

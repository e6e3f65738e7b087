"""Warm-up: several initialisations train a few steps, only the best go on.

Cool-chic 5's encoder starts 5 candidate initialisations, keeps the best 2 after a
few dozen steps and the best one after as many more. Here a stage is a batch of
candidate states trained together by the batched training program (``vmap``). With
``train.warmup.schedule="shared"`` they train on the same schedule as the main run and
the kept candidate simply continues, with its optimizer state, from the step the
warm-up reached; with ``"own"`` (Cool-chic 5) they train on constant settings of their
own (``plan.WarmupSettings``) and the soft phase starts afresh (``loop.fit``). Candidates are ranked by their
hard-quantized loss (``overfit.Evaluator``). Every candidate step counts against
``config.num_steps`` (``extra_steps``): an encode with warm-up costs the same
number of training steps as one without.
"""
from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax.model.codec import Codec
from moric_jax.train import state as state_lib
from moric_jax.train.state import TrainState

logger = logging.getLogger("moric_jax")


def stages(config: ml_collections.ConfigDict) -> list[tuple[int, int]]:
  """``[(candidates, steps), ...]`` of ``config.train.warmup`` (empty = no warm-up).

  ``config.train.warmup = dict(candidates=(5, 2), fraction=0.025)``: each stage runs
  ``round(fraction * num_steps)`` steps; ``steps=(50, 50)`` sets them instead; or
  ``budget_steps=(50, 100, 200, 400)`` with ``budget_limits=(4000, 9000, 12000)``
  gives every stage the steps of the budget's bracket (Cool-chic 5: 50 steps if
  ``num_steps < 4000``, 100 below 9000, 200 below 12000, else 400). A stage with one
  candidate or no step is pointless and dropped. ``ValueError`` for inconsistent
  settings.
  """
  w = config.train.warmup
  cands = tuple(w.candidates)
  if not cands:
    return []
  steps = w.steps
  budget = tuple(w.budget_steps or ())
  if steps is None and budget:
    limits = tuple(int(x) for x in (w.budget_limits or ()))
    if len(limits) != len(budget) - 1 or list(limits) != sorted(limits):
      raise ValueError(f"train.warmup: {len(budget)} budget_steps need "
                       f"{len(budget) - 1} increasing budget_limits, got {limits}")
    n = int(config.num_steps)
    steps = [int(budget[sum(n >= x for x in limits)])] * len(cands)
  if steps is None:
    frac = float(w.fraction)
    if not 0.0 <= frac < 0.5:
      raise ValueError(f"train.warmup.fraction must be in [0, 0.5), got {frac}")
    steps = [int(round(frac * int(config.num_steps)))] * len(cands)
  steps = tuple(steps)
  if len(cands) != len(steps):
    raise ValueError(f"train.warmup: {len(cands)} candidate counts but {len(steps)} "
                     "step counts")
  out = []
  for c, s in zip(cands, steps):
    c, s = int(c), int(s)
    if c < 1 or s < 0:
      raise ValueError(f"train.warmup: candidates must be >= 1 and steps >= 0, got "
                       f"{c}, {s}")
    if c > 1 and s > 0:
      out.append((c, s))
  return out


def extra_steps(config: ml_collections.ConfigDict) -> int:
  """Training steps of the candidates that do not go on: ``sum (c - 1) * s``."""
  return sum((c - 1) * s for c, s in stages(config))


def warmup_steps(config: ml_collections.ConfigDict) -> int:
  """Steps of the kept trajectory spent in the warm-up: ``sum s``."""
  return sum(s for _, s in stages(config))


def chunk_length(config: ml_collections.ConfigDict) -> int:
  """Steps per call of the batched program: divides every stage's step count."""
  n = max(1, int(config.train.chunk_size))
  for _, s in stages(config):
    n = math.gcd(n, s)
  return n


def run(codec: Codec, image: jax.Array, config: ml_collections.ConfigDict,
        init_state: Callable[[int], TrainState], hypers: Sequence[dict],
        batched_chunk: Callable, evaluate: Callable,
        on_steps: Callable[[int, dict], None] | None = None) -> TrainState:
  """Runs the warm-up for every entry of ``hypers`` (one per lambda); returns the
  kept states stacked on a leading axis, one per entry, at step ``warmup_steps``.
  ``image``: one ``(H, W, 3)`` image for every entry, or ``(N, H, W, 3)``, one per entry
  (then ``batched_chunk`` is ``build_chunk_fn(..., batched="images")`` and each entry's
  candidates are ranked on its own image, ``evaluate.on(image[i])``).

  ``init_state(j)``: the training state of candidate ``j`` (candidate 0 is the run
  without warm-up); ``batched_chunk``: ``build_chunk_fn(..., batched=True)`` with
  ``chunk_length(config)`` steps; ``evaluate(params, lmbda) -> (loss, ...)`` the hard
  loss; ``on_steps(n, aux)`` is told after every call how many training steps it ran
  and the last step's ``aux`` of the candidate with the lowest loss (host floats).
  """
  plan = stages(config)
  n_lm = len(hypers)
  first = plan[0][0]
  states = [init_state(j) for j in range(first)]
  kept = np.tile(np.arange(first), (n_lm, 1))   # original candidate index of each entry
  # Batch layout: entry (i, j) = lambda i, candidate j, at index i * c + j.
  carry = state_lib.stack([states[j] for _ in range(n_lm) for j in range(first)])
  length = chunk_length(config)
  per_entry = jnp.ndim(image) == 4
  evaluators = ([evaluate.on(image[i]) for i in range(n_lm)] if per_entry
                else [evaluate] * n_lm)
  for stage, (cands, steps) in enumerate(plan):
    hyper = state_lib.stack([h for h in hypers for _ in range(cands)])
    images = (jnp.repeat(jnp.asarray(image), cands, axis=0) if per_entry else image)
    for _ in range(steps // length):
      carry, aux = batched_chunk(carry, images, hyper)
      aux = jax.device_get(aux)
      if on_steps is not None:
        best = int(np.nanargmin(np.where(np.isfinite(aux["loss"]), aux["loss"], np.nan))
                   if np.isfinite(aux["loss"]).any() else 0)
        on_steps(length * n_lm * cands,
                 {k: np.asarray(v)[best] for k, v in aux.items()})
    params = carry.params
    losses = np.array([[float(evaluators[i](
        jax.tree_util.tree_map(lambda x: x[i * cands + j], params), hypers[i]["lmbda"])[0])
                        for j in range(cands)] for i in range(n_lm)])
    losses = np.where(np.isfinite(losses), losses, np.inf)
    keep = plan[stage + 1][0] if stage + 1 < len(plan) else 1
    order = np.argsort(losses, axis=1, kind="stable")[:, :keep]
    carry = state_lib.entry(carry, jnp.asarray((np.arange(n_lm)[:, None] * cands
                                               + order).ravel()))
    kept = np.take_along_axis(kept, order, axis=1)
  # Which initialisation each entry goes on with (candidate j is codec.init of the key
  # folded with j): two encodes of one seed start alike only if they kept the same one.
  logger.info("warm-up kept candidate %s", ", ".join(str(int(k)) for k in kept[:, 0]))
  return carry

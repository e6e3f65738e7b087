"""Many codecs' weight-step searches run in step, their trials evaluated in batches.

A codec's finalize is a chain of searches (``weight_search``); each asks for the hard
evaluation of a list of trial parameter trees. One trial at a time that is one host
round trip per candidate, which leaves a GPU idle. Here the searches of every codec
of a stack (images x lambdas, one shape) advance together: at each round their
requests are gathered by evaluator, stacked, and evaluated by one vmapped program
(``overfit.Evaluator(...).many``) per ``batch`` trials, each trial on its own image.
``batch = 1`` evaluates trial by trial with the plain evaluator (the CPU default).
"""
from __future__ import annotations

from typing import Callable, Generator, Sequence

import jax
import jax.numpy as jnp

Request = tuple[str, list]
"""``(evaluator name, trial parameter trees)``: what a tagged search yields."""


def tagged(which: str, search: Generator) -> Generator:
  """``search`` (a ``weight_search.Search``) whose requests name the evaluator
  (``which``) that must answer them; returns the search's result."""
  try:
    trials = next(search)
    while True:
      trials = search.send((yield which, trials))
  except StopIteration as stop:
    return stop.value


def run_in_step(searches: Sequence[Generator], evaluators: Sequence[dict[str, Callable]],
                batch: int = 1) -> list:
  """Drives ``searches[k]`` (yielding ``Request``s) with ``evaluators[k][which]``
  until all end; returns their results in order.

  ``evaluators[k][which]``: an ``overfit.Evaluator`` on codec ``k``'s image
  (its ``.image`` and ``.many`` are used when ``batch > 1``; all evaluators of one
  name must be the same program on images of one shape). Each round answers every
  pending request, ``batch`` trials per vmapped call (the last call of a round padded
  to a power of two, so few batch sizes are compiled).
  """
  results: list = [None] * len(searches)
  pending: dict[int, Request] = {}

  def advance(k: int, answer) -> None:
    try:
      pending[k] = searches[k].send(answer)
    except StopIteration as stop:
      results[k] = stop.value
      pending.pop(k, None)

  for k in range(len(searches)):
    advance(k, None)
  while pending:
    answers: dict[int, list] = {k: [] for k in pending}
    for which in sorted({w for w, _ in pending.values()}):
      items = [(k, trial) for k, (w, trials) in sorted(pending.items()) if w == which
               for trial in trials]
      for (k, _), aux in zip(items, _evaluate(items, evaluators, which, batch)):
        answers[k].append(aux)
    for k in sorted(pending):
      advance(k, answers[k])
  return results


def _evaluate(items: list, evaluators, which: str, batch: int) -> list[dict]:
  """The host ``aux`` of every ``(codec index, trial params)`` of ``items``."""
  if batch <= 1:
    return [jax.device_get(evaluators[k][which](trial)) for k, trial in items]
  out = []
  for start in range(0, len(items), batch):
    chunk = items[start:start + batch]
    size = min(batch, 1 << (len(chunk) - 1).bit_length())
    chunk = chunk + [chunk[-1]] * (size - len(chunk))
    params = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *[t for _, t in chunk])
    images = jnp.stack([evaluators[k][which].image for k, _ in chunk])
    got = jax.device_get(evaluators[chunk[0][0]][which].many(params, images))
    n = min(batch, len(items) - start)
    out.extend(jax.tree_util.tree_map(lambda a, i=i: a[i], got) for i in range(n))
  return out

"""Post-training choice of each network's weight step sizes (DESIGN §2.5).

The ARM only changes the latent rate and the LSN only the distortion, so each step is
searched on its own over a log-spaced grid, minimising its share of ``D + lmbda * R``
with the real integer-weight rate; then each tensor's own step factor
(``weights_coding.STEP_FACTORS``: a quarter to four times the network's step) is
chosen in turn, tensor by tensor, by the same cost (``refine_tensor_steps``); last,
single integers are moved one step towards zero where that lowers the cost
(``round_towards_zero``, a rate-distortion-optimised rounding).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Generator

import jax
import numpy as np

from moric_jax.coding import weights_coding
from moric_jax.model import weights as weights_lib


@dataclasses.dataclass(frozen=True)
class WeightChoice:
  """Chosen step, per-tensor step factors and integer weights of one network, and the
  search trace. ``factors`` empty: every tensor on ``delta`` (``steps``)."""
  delta: float
  int_params: dict
  bits: float
  costs: tuple[float, ...]   # RD cost per candidate step.
  factors: tuple[int, ...] = ()

  @property
  def steps(self):
    """The step of every tensor: ``delta``, or per-tensor steps in leaf order."""
    return weights_coding.network_steps(self.delta, self.factors)


def candidate_deltas(delta_min: float, delta_max: float, num: int) -> np.ndarray:
  """Log-spaced candidate step sizes."""
  return np.geomspace(delta_min, delta_max, num)


def _get(params: dict, name):
  return params[name] if isinstance(name, str) else params[name[0]][name[1]]


def _replace(params: dict, name, value) -> dict:
  trial = dict(params)
  if isinstance(name, str):
    trial[name] = value
  else:
    items = list(trial[name[0]])
    items[name[1]] = value
    trial[name[0]] = items
  return trial


Search = Generator[list, list, "WeightChoice"]
"""A search as a coroutine: it yields a list of trial parameter trees, is sent back
the list of their evaluations (``aux`` dicts, host arrays) and returns its result.
``run_search`` drives one with an evaluator, one trial at a time; ``finalize`` drives
the searches of many codecs in step and evaluates their trials in batches."""


def run_search(search: Generator, evaluate: Callable[[dict], dict]):
  """Drives ``search`` (a ``Search``) to its end with ``evaluate(params) -> aux``,
  one trial at a time; returns its result."""
  try:
    trials = next(search)
    while True:
      trials = search.send([jax.device_get(evaluate(t)) for t in trials])
  except StopIteration as stop:
    return stop.value


def search_network(params: dict, name, deltas: np.ndarray, lmbda: float,
                         num_pixels: int, distortion_key, bits_of: Callable | None = None
                         ) -> Search:
  """Quantizes ``params[name]`` with each step of ``deltas``; the result keeps the lowest
  RD cost. One request of ``len(deltas)`` trials.

  ``name``: a key (``"arm"``) or ``(key, index)`` for one network of a list (one
  region's LSN: ``("lsn", r)``). Trials are evaluated to ``{"mse", "bpp_latents"}``
  (hard latents). For ``distortion_key == "mse"`` the cost is ``mse + lmbda * bits /
  P``; for ``"bpp_latents"`` it is ``lmbda * (bpp_latents + bits / P)``; a callable gives
  ``f(aux) + lmbda * bits / P``. ``bits_of(int_params, delta)``: the network's bits as
  the file codes it (default: its integers under the per-tensor Laplace model).
  """
  trial_of, cost_of = _cost_parts(params, name, lmbda, num_pixels, distortion_key, bits_of)
  tried = [trial_of(float(d)) for d in deltas]
  auxes = yield [t[2] for t in tried]
  costs = [cost_of(a, t[1]) for a, t in zip(auxes, tried)]
  best = int(np.argmin(costs))   # the first of equal costs, as a scan in order keeps
  return WeightChoice(delta=float(deltas[best]), int_params=tried[best][0],
                      bits=tried[best][1], costs=tuple(costs))


def _cost_parts(params, name, lmbda, num_pixels, distortion_key, bits_of):
  """``(trial_of, cost_of)``: ``trial_of(steps) -> (int params, bits, trial params)``
  of ``params[name]`` quantized on ``steps`` (one step, or per-tensor steps in leaf
  order); ``cost_of(aux, bits)`` the RD cost of an evaluated trial (inf if not finite)."""
  def trial_of(steps):
    int_p = weights_lib.quantize_tree(_get(params, name), steps)
    bits = (weights_lib.int_tree_bits(int_p) if bits_of is None
            else float(bits_of(int_p, steps)))
    return int_p, bits, _replace(params, name, weights_lib.dequantize_tree(int_p, steps))

  def cost_of(aux, bits):
    if callable(distortion_key):
      cost = float(distortion_key(aux)) + lmbda * bits / num_pixels
    elif distortion_key == "mse":
      cost = float(aux["mse"]) + lmbda * bits / num_pixels
    else:
      cost = lmbda * (float(aux["bpp_latents"]) + bits / num_pixels)
    return cost if np.isfinite(cost) else float("inf")
  return trial_of, cost_of


def refine_tensor_steps(params: dict, name, choice: WeightChoice, lmbda: float,
                              num_pixels: int, distortion_key,
                              bits_of: Callable | None = None,
                              candidates=weights_coding.STEP_FACTORS) -> Search:
  """One pass over the tensors of ``params[name]`` (leaf order): each takes the step
  factor (``candidates``, on ``choice.delta``) of lowest RD cost, the others fixed.
  Arguments as ``search_network``; the result is ``choice`` with ``factors`` set (never
  a higher cost than ``choice`` on the file's float32 steps). Requests: the unit
  factors, then one per tensor with its ``len(candidates) - 1`` other factors.
  """
  trial_of, cost_of = _cost_parts(params, name, lmbda, num_pixels, distortion_key, bits_of)
  steps_of = lambda fs: weights_coding.tensor_steps(choice.delta, fs)
  factors = list(weights_coding.unit_factors(len(jax.tree_util.tree_leaves(
      _get(params, name)))))
  base = trial_of(steps_of(factors))
  (aux,) = yield [base[2]]
  best = (cost_of(aux, base[1]), base[0], base[1])
  for t in range(len(factors)):
    options = [int(j) for j in candidates if int(j) != factors[t]]
    tried = [trial_of(steps_of(factors[:t] + [j] + factors[t + 1:])) for j in options]
    auxes = yield [x[2] for x in tried]
    for j, x, a in zip(options, tried, auxes):
      cost = cost_of(a, x[1])
      if cost < best[0]:
        best, factors = (cost, x[0], x[1]), factors[:t] + [j] + factors[t + 1:]
  return dataclasses.replace(choice, int_params=best[1], bits=best[2],
                             factors=tuple(factors))


def round_towards_zero(params: dict, name, choice: WeightChoice, lmbda: float,
                             num_pixels: int, distortion_key,
                             max_moves: int | None = None) -> Search:
  """Rate-distortion-optimised rounding of ``choice``'s integers: one pass over the
  nonzero weights (largest ``|k|`` first in each tensor, tensors in leaf order), each
  moved one step towards zero and kept there if ``D + lmbda * bits / P`` falls.

  Bits are the file's (``weights_coding.scale_bits``: each tensor on its cheapest
  scale row); the distortion part is evaluated for every move (arguments as
  ``search_network``). ``max_moves``: at most this many evaluations (``None``: all).
  The result is ``choice`` with the new integers (same steps and factors; ``bits`` the
  Laplace estimate ``int_tree_bits`` as for the other searches). One trial per
  request, each move depending on the ones before.
  """
  steps = weights_lib.per_leaf_steps(choice.int_params, choice.steps)
  leaves, treedef = jax.tree_util.tree_flatten(choice.int_params)
  ints = [np.array(k, np.int32) for k in leaves]
  floats = [np.asarray(k, np.float64) * d for k, d in zip(ints, steps)]
  per_scale = [weights_coding.scale_bits(k) for k in ints]

  def trial_of(trial_floats):
    tree = jax.tree_util.tree_unflatten(
        treedef, [jax.numpy.asarray(w, jax.numpy.float32) for w in trial_floats])
    return _replace(params, name, tree)

  def d_part(aux):
    if callable(distortion_key):
      return float(distortion_key(aux))
    if distortion_key == "mse":
      return float(aux["mse"])
    return lmbda * float(aux["bpp_latents"])

  rate = lambda: lmbda * sum(float(b.min()) for b in per_scale) / num_pixels
  (aux,) = yield [trial_of(floats)]
  best = d_part(aux) + rate()
  budget = np.inf if max_moves is None else int(max_moves)
  for t, k in enumerate(ints):
    flat = k.reshape(-1)
    for i in np.argsort(-np.abs(flat), kind="stable"):
      if flat[i] == 0 or budget <= 0:
        continue
      budget -= 1
      old, new = int(flat[i]), int(flat[i]) - int(np.sign(flat[i]))
      delta_bits = (weights_coding.scale_bits(np.array([new]))
                    - weights_coding.scale_bits(np.array([old])))
      saved = per_scale[t]
      per_scale[t] = saved + delta_bits
      trial = list(floats)
      w = floats[t].reshape(-1).copy()
      w[i] = new * steps[t]
      trial[t] = w.reshape(k.shape)
      (aux,) = yield [trial_of(trial)]
      cost = d_part(aux) + rate()
      if np.isfinite(cost) and cost < best:
        best, flat[i], floats = cost, new, trial
      else:
        per_scale[t] = saved
  int_params = jax.tree_util.tree_unflatten(treedef, ints)
  return dataclasses.replace(choice, int_params=int_params,
                             bits=weights_lib.int_tree_bits(int_params))

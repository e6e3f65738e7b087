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
from typing import Callable

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


def search_network(params: dict, name, deltas: np.ndarray,
                   evaluate: Callable[[dict], dict], lmbda: float, num_pixels: int,
                   distortion_key: str, bits_of: Callable | None = None) -> WeightChoice:
  """Quantizes ``params[name]`` with each step; keeps the lowest RD cost.

  ``name``: a key (``"arm"``) or ``(key, index)`` for one network of a list (one
  region's LSN: ``("lsn", r)``).

  ``evaluate(params) -> {"mse", "bpp_latents"}`` (hard latents). For ``distortion_key
  == "mse"`` the cost is ``mse + lmbda * bits / P``; for ``"bpp_latents"`` it is
  ``lmbda * (bpp_latents + bits / P)``; a callable gives ``f(aux) + lmbda * bits / P``.
  ``bits_of(int_params, delta)``: the network's bits as the file codes it (default:
  its integers under the per-tensor Laplace model).
  """
  cost_of = _cost_fn(params, name, evaluate, lmbda, num_pixels, distortion_key, bits_of)
  best, costs = None, []
  for delta in deltas:
    cost, int_p, bits = cost_of(float(delta))
    costs.append(cost)
    if best is None or cost < best[0]:
      best = (cost, float(delta), int_p, bits)
  return WeightChoice(delta=best[1], int_params=best[2], bits=best[3], costs=tuple(costs))


def _cost_fn(params, name, evaluate, lmbda, num_pixels, distortion_key, bits_of):
  """``steps -> (RD cost, int params, bits)`` of ``params[name]`` quantized on
  ``steps`` (one step, or per-tensor steps in leaf order)."""
  def cost_of(steps):
    int_p = weights_lib.quantize_tree(_get(params, name), steps)
    bits = (weights_lib.int_tree_bits(int_p) if bits_of is None
            else float(bits_of(int_p, steps)))
    trial = _replace(params, name, weights_lib.dequantize_tree(int_p, steps))
    aux = jax.device_get(evaluate(trial))
    if callable(distortion_key):
      cost = float(distortion_key(aux)) + lmbda * bits / num_pixels
    elif distortion_key == "mse":
      cost = float(aux["mse"]) + lmbda * bits / num_pixels
    else:
      cost = lmbda * (float(aux["bpp_latents"]) + bits / num_pixels)
    return (cost if np.isfinite(cost) else float("inf")), int_p, bits
  return cost_of


def refine_tensor_steps(params: dict, name, choice: WeightChoice,
                        evaluate: Callable[[dict], dict], lmbda: float, num_pixels: int,
                        distortion_key, bits_of: Callable | None = None,
                        candidates=weights_coding.STEP_FACTORS) -> WeightChoice:
  """One pass over the tensors of ``params[name]`` (leaf order): each takes the step
  factor (``candidates``, on ``choice.delta``) of lowest RD cost, the others fixed.

  Arguments as ``search_network``; returns ``choice`` with ``factors`` set (never a
  higher cost than ``choice`` on the file's float32 steps). ``len(candidates)`` - 1
  evaluations per tensor.
  """
  cost_of = _cost_fn(params, name, evaluate, lmbda, num_pixels, distortion_key, bits_of)
  steps_of = lambda fs: weights_coding.tensor_steps(choice.delta, fs)
  factors = list(weights_coding.unit_factors(len(jax.tree_util.tree_leaves(
      _get(params, name)))))
  best = cost_of(steps_of(factors))
  for t in range(len(factors)):
    for j in candidates:
      if j == factors[t]:
        continue
      trial = factors[:t] + [int(j)] + factors[t + 1:]
      got = cost_of(steps_of(trial))
      if got[0] < best[0]:
        best, factors = got, trial
  return dataclasses.replace(choice, int_params=best[1], bits=best[2],
                             factors=tuple(factors))


def round_towards_zero(params: dict, name, choice: WeightChoice,
                       evaluate: Callable[[dict], dict], lmbda: float, num_pixels: int,
                       distortion_key, max_moves: int | None = None) -> WeightChoice:
  """Rate-distortion-optimised rounding of ``choice``'s integers: one pass over the
  nonzero weights (largest ``|k|`` first in each tensor, tensors in leaf order), each
  moved one step towards zero and kept there if ``D + lmbda * bits / P`` falls.

  Bits are the file's (``weights_coding.scale_bits``: each tensor on its cheapest
  scale row); the distortion part is ``evaluate``'d for every move (arguments as
  ``search_network``). ``max_moves``: at most this many evaluations (``None``: all).
  Returns ``choice`` with the new integers (same steps and factors; ``bits`` the
  Laplace estimate ``int_tree_bits`` as for the other searches).
  """
  steps = weights_lib.per_leaf_steps(choice.int_params, choice.steps)
  leaves, treedef = jax.tree_util.tree_flatten(choice.int_params)
  ints = [np.array(k, np.int32) for k in leaves]
  floats = [np.asarray(k, np.float64) * d for k, d in zip(ints, steps)]
  per_scale = [weights_coding.scale_bits(k) for k in ints]

  def d_part(trial_floats):
    tree = jax.tree_util.tree_unflatten(
        treedef, [jax.numpy.asarray(w, jax.numpy.float32) for w in trial_floats])
    aux = jax.device_get(evaluate(_replace(params, name, tree)))
    if callable(distortion_key):
      return float(distortion_key(aux))
    if distortion_key == "mse":
      return float(aux["mse"])
    return lmbda * float(aux["bpp_latents"])

  rate = lambda: lmbda * sum(float(b.min()) for b in per_scale) / num_pixels
  d_best = d_part(floats)
  best = d_best + rate()
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
      d = d_part(trial)
      cost = d + rate()
      if np.isfinite(cost) and cost < best:
        best, flat[i], floats = cost, new, trial
      else:
        per_scale[t] = saved
  int_params = jax.tree_util.tree_unflatten(treedef, ints)
  return dataclasses.replace(choice, int_params=int_params,
                             bits=weights_lib.int_tree_bits(int_params))

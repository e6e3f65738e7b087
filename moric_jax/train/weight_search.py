"""Post-training choice of each network's weight step size (DESIGN §2.5).

The ARM only changes the latent rate and the LSN only the distortion, so each step is
searched on its own over a log-spaced grid, minimising its share of ``D + lmbda * R``
with the real integer-weight rate.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import numpy as np

from moric_jax.model import weights as weights_lib


@dataclasses.dataclass(frozen=True)
class WeightChoice:
  """Chosen step and integer weights of one network, and the search trace."""
  delta: float
  int_params: dict
  bits: float
  costs: tuple[float, ...]   # RD cost per candidate step.


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
  best, costs = None, []
  for delta in deltas:
    int_p = weights_lib.quantize_tree(_get(params, name), float(delta))
    bits = (weights_lib.int_tree_bits(int_p) if bits_of is None
            else float(bits_of(int_p, float(delta))))
    trial = _replace(params, name, weights_lib.dequantize_tree(int_p, float(delta)))
    aux = jax.device_get(evaluate(trial))
    if callable(distortion_key):
      cost = float(distortion_key(aux)) + lmbda * bits / num_pixels
    elif distortion_key == "mse":
      cost = float(aux["mse"]) + lmbda * bits / num_pixels
    else:
      cost = lmbda * (float(aux["bpp_latents"]) + bits / num_pixels)
    if not np.isfinite(cost):
      cost = float("inf")
    costs.append(cost)
    if best is None or cost < best[0]:
      best = (cost, float(delta), int_p, bits)
  return WeightChoice(delta=best[1], int_params=best[2], bits=best[3], costs=tuple(costs))

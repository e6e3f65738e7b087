"""MoRIC's modular layout (modulation scheme ``"moric"``): one shared trunk, tiny region
networks (DESIGN §2.3).

* **GMN = the synthesis trunk**: the single-region synthesis (``model.lsn.LSN`` with no
  modulation: per-pixel layers to 3 channels, then residual KxK convolutions) over the
  upsampled latents of the whole frame. Its RGB stages ``U_1..U_K`` (the linear output,
  then the output of each residual convolution, ``K = 1 + num_res_convs``, 3 channels
  each) are the modulation features; ``U_K`` is the trunk's own image.
* **LSN of region r** (own weights, tiny): a per-pixel MLP on the pixel's frame
  coordinates ``c = ((x + 0.5) / W, (y + 0.5) / H) * 2 - 1``: ``s = act(D_in c)``
  (2 -> w), then per stage ``k``: ``s = s + R_k act(s)`` (w -> w, zero-initialised) and
  the **shared aggregator** ``s = act(A_k concat(s, U_1..U_k))`` (w + 3k -> w, weights
  in the GMN: progressive concatenated modulation); the region's pixels are
  ``U_K + H s`` (w -> 3, zero-initialised: a new region starts as the trunk's image).
  With ``w = 3`` and a 2-conv trunk: 57 weights per region, 90 in the aggregator.
* Composition is per pixel by the decoded masks; only the trunk has convolutions, so
  region edges have no seams.

Parameter trees (nested dicts, ``jax.tree_util`` / ``network_layout.flatten`` order)::

  gmn = {"trunk": <LSN params>, "Agg_k": {"kernel": (w + 3(k+1), w), "bias": (w,)}}
  lsn = {"Dense_in": {(2, w), (w,)}, "Res_k": {(w, w), (w,)}, "Head": {(w, 3), (3,)}}

The functions below take the array module (``numpy`` or ``jax.numpy``) as ``xp``, so the
encoder and the JAX-free decoder evaluate the same formulas; this module imports no JAX.
"""
from __future__ import annotations

import numpy as np

STAGE_CHANNELS = 3   # channels of every trunk stage U_k (RGB)
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))


def num_stages(num_res_convs: int) -> int:
  """``K``: the trunk's linear output plus one stage per residual convolution."""
  return 1 + int(num_res_convs)


def activation(name: str, x, xp):
  """ReLU, or GELU's tanh approximation (Flax's ``nn.gelu`` default)."""
  if name == "relu":
    return xp.maximum(x, 0.0)
  return 0.5 * x * (1.0 + xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)))


def _dense(p: dict, x, xp):
  return xp.matmul(x, p["kernel"]) + p["bias"]


def lsn_shapes(width: int, stages: int) -> dict:
  """Shapes of one region network's parameters."""
  out = {"Dense_in": {"bias": (width,), "kernel": (2, width)},
         "Head": {"bias": (3,), "kernel": (width, 3)}}
  for k in range(stages):
    out[f"Res_{k}"] = {"bias": (width,), "kernel": (width, width)}
  return out


def aggregator_shapes(width: int, stages: int) -> dict:
  """Shapes of the shared aggregator's parameters (``Agg_k`` of the GMN tree)."""
  return {f"Agg_{k}": {"bias": (width,), "kernel": (width + STAGE_CHANNELS * (k + 1), width)}
          for k in range(stages)}


def pixel_coordinates(rows: np.ndarray, cols: np.ndarray, frame_h: int, frame_w: int
                      ) -> np.ndarray:
  """``(N, 2) float32`` frame coordinates ``(x, y)`` in ``[-1, 1]`` of pixels
  ``(rows[i], cols[i])`` (their centres; float64 then rounded once)."""
  xs = (np.asarray(cols, np.float64) + 0.5) / frame_w * 2.0 - 1.0
  ys = (np.asarray(rows, np.float64) + 0.5) / frame_h * 2.0 - 1.0
  return np.stack([xs, ys], axis=-1).astype(np.float32)


def coordinates(top: int, left: int, height: int, width: int, frame_h: int,
                frame_w: int) -> np.ndarray:
  """``(height * width, 2)``: ``pixel_coordinates`` of a box's pixels, row-major."""
  rows, cols = np.divmod(np.arange(height * width), width)
  return pixel_coordinates(rows + top, cols + left, frame_h, frame_w)


def apply(lsn: dict, aggregator: dict, coords, stages: list, act: str, xp):
  """One region's pixels: ``coords`` ``(N, 2)``, ``stages`` ``K`` trunk stages ``(N, 3)``
  at the same pixels -> ``(N, 3)`` RGB (unclipped)."""
  s = activation(act, _dense(lsn["Dense_in"], coords, xp), xp)
  for k in range(len(stages)):
    s = s + _dense(lsn[f"Res_{k}"], activation(act, s, xp), xp)
    s = activation(act, _dense(aggregator[f"Agg_{k}"],
                               xp.concatenate([s] + list(stages[:k + 1]), axis=-1), xp), xp)
  return stages[-1] + _dense(lsn["Head"], s, xp)


def init_lsn(normal, width: int, stages: int) -> dict:
  """A region network: LeCun-normal input layer, zero residual layers and head (the
  region starts as the trunk's image). ``normal(shape)``: standard normal float32."""
  shapes = lsn_shapes(width, stages)
  out = {k: {n: np.zeros(s, np.float32) for n, s in v.items()} for k, v in shapes.items()}
  out["Dense_in"]["kernel"] = normal((2, width)) / np.float32(np.sqrt(2.0))
  return out


def init_aggregator(normal, width: int, stages: int) -> dict:
  """LeCun-normal aggregator kernels, zero biases (``normal`` as in ``init_lsn``)."""
  out = {}
  for k, v in aggregator_shapes(width, stages).items():
    fan_in = v["kernel"][0]
    out[k] = {"bias": np.zeros(v["bias"], np.float32),
              "kernel": normal(v["kernel"]) / np.float32(np.sqrt(fan_in))}
  return out


def macs(width: int, stages: int) -> int:
  """Multiply-accumulates per region pixel of one region network and the aggregator."""
  total = 2 * width + width * 3
  for k in range(stages):
    total += width * width + (width + STAGE_CHANNELS * (k + 1)) * width
  return total

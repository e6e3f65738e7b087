"""The decoder's networks in NumPy: parameter layouts and float32 forward passes.

Mirrors the Flax modules (``model/arm.py``, ``model/gmn.py``, ``model/lsn.py``) without
importing them: ``*_template`` give each network's parameter tree as nested dicts of
shapes, whose leaves in ``flatten`` order (dict keys sorted, as ``jax.tree_util``
flattens) are the order the file codes tensors in. ``gmn_forward`` / ``lsn_forward``
are the synthesis in float32, equal to the Flax forward within float tolerance
(tests/test_decoder.py); they only shape pixels, never the parse (DESIGN §2.6).
"""
from __future__ import annotations

import numpy as np

from moric_jax.model import grids
from moric_jax.model import modulation


def _dense(din: int, dout: int) -> dict:
  return {"bias": (dout,), "kernel": (din, dout)}


def context_size(rows: int, cols: int) -> int:
  """Causal context values of the ARM (``model.arm.context_offsets``)."""
  return rows * (2 * cols + 1) + cols


def arm_template(arch) -> dict:
  widths = [context_size(arch.context_rows, arch.context_cols), *arch.arm_hidden, 2]
  return {"params": {f"Dense_{i}": _dense(a, b)
                     for i, (a, b) in enumerate(zip(widths[:-1], widths[1:]))}}


def signal_widths(arch, scheme: str, mod_width: int) -> list[int]:
  return modulation.signal_widths(scheme, arch.lsn_hidden, mod_width)


def gmn_template(arch, scheme: str, width: int, mod_width: int) -> dict:
  p, prev = {}, arch.num_grids
  for k, c in enumerate(signal_widths(arch, scheme, mod_width)):
    p[f"Dense_{2 * k}"] = _dense(prev, width)
    p[f"Dense_{2 * k + 1}"] = _dense(width, c)
    prev = width
  return {"params": p}


def lsn_template(arch, scheme: str, mod_width: int) -> dict:
  widths = signal_widths(arch, scheme, mod_width)
  p = {}
  prev = arch.num_grids + (widths[0] if scheme == "concat_input" else 0)
  for k, w in enumerate(arch.lsn_hidden):
    p[f"Dense_{k}"] = _dense(prev + (widths[k] if scheme == "progressive_concat" else 0), w)
    prev = w
  p[f"Dense_{len(arch.lsn_hidden)}"] = _dense(prev, 3)
  ks = arch.lsn_kernel_size
  for i in range(arch.lsn_num_res_convs):
    p[f"ResidualConv_{i}"] = {"bias": (3,), "kernel": (ks, ks, 3, 3)}
  return {"params": p}


def flatten(tree: dict) -> list:
  """Leaves in ``jax.tree_util`` order (sorted dict keys, depth first)."""
  if isinstance(tree, dict):
    return [leaf for k in sorted(tree) for leaf in flatten(tree[k])]
  return [tree]


def unflatten(template: dict, leaves: list):
  """Inverse of ``flatten`` for a tree shaped like ``template``."""
  it = iter(leaves)

  def build(t):
    if isinstance(t, dict):
      return {k: build(t[k]) for k in sorted(t)}
    return next(it)
  return build(template)


def leaf_shapes(template: dict) -> list[tuple[int, ...]]:
  return [tuple(s) for s in flatten(template)]


def dequantize(int_tree: dict, delta: float) -> dict:
  """Integer tree -> float32 ``k * delta`` (as ``model.weights.dequantize_tree``)."""
  if isinstance(int_tree, dict):
    return {k: dequantize(v, delta) for k, v in int_tree.items()}
  return (np.asarray(int_tree, np.float64) * delta).astype(np.float32)


_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


def _act(name: str, x: np.ndarray) -> np.ndarray:
  """ReLU, or GELU's tanh approximation (Flax's ``nn.gelu`` default), in place."""
  if name == "relu":
    return np.maximum(x, 0.0, out=x)
  t = x * x
  t *= np.float32(0.044715)
  t += 1.0
  t *= x
  t *= _SQRT_2_OVER_PI
  np.tanh(t, out=t)
  t += 1.0
  t *= x
  t *= np.float32(0.5)
  return t


def _dense_apply(p: dict, x: np.ndarray) -> np.ndarray:
  y = x @ p["kernel"]
  y += p["bias"]
  return y


def upsample_stack(symbol_grids: list[np.ndarray], q_step: float, height: int,
                   width: int) -> np.ndarray:
  """Integer grids -> ``(H * W, L)`` float32 stack of ``q_step * symbol`` upsampled."""
  out = np.empty((height, width, len(symbol_grids)), np.float32)
  for k, g in enumerate(symbol_grids):
    g = np.asarray(g, np.float32) * np.float32(q_step)
    uh = grids.upsampling_matrix(height, g.shape[0])
    uw = grids.upsampling_matrix(width, g.shape[1])
    out[:, :, k] = (uh @ g) @ uw.T
  return out.reshape(height * width, -1)


def gmn_forward(params: dict, stack: np.ndarray, arch, scheme: str, mod_width: int,
                activation: str) -> list[np.ndarray]:
  """``(N, L)`` stack -> one ``(N, c_k)`` modulation signal per LSN layer."""
  p = params["params"]
  f, out = stack, []
  for k in range(len(signal_widths(arch, scheme, mod_width))):
    f = _act(activation, _dense_apply(p[f"Dense_{2 * k}"], f))
    out.append(_dense_apply(p[f"Dense_{2 * k + 1}"], f))
  return out


def _shifted_conv(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
  """'SAME' zero-padded cross-correlation of planar ``(C, H, W)`` with ``(K, K, C, O)``."""
  kh, kw, _, cout = kernel.shape
  _, h, w = x.shape
  ph, pw = kh // 2, kw // 2
  xp = np.pad(x, ((0, 0), (ph, kh - 1 - ph), (pw, kw - 1 - pw)))
  out = np.zeros((cout, h, w), np.float32)
  for dy in range(kh):
    for dx in range(kw):
      view = xp[:, dy:dy + h, dx:dx + w]
      out += np.einsum("co,chw->ohw", kernel[dy, dx], view, optimize=False)
  return out


def lsn_forward(params: dict, stack: np.ndarray, signals: list[np.ndarray] | None,
                height: int, width: int, arch, scheme: str) -> np.ndarray:
  """``(N, L)`` stack (``N = height * width``) -> ``(height, width, 3)`` float32."""
  p = params["params"]
  act = arch.lsn_activation
  h = stack
  if scheme == "concat_input":
    h = np.concatenate([h, signals[0]], axis=-1)
  for k in range(len(arch.lsn_hidden)):
    if scheme == "progressive_concat":
      h = np.concatenate([h, signals[k]], axis=-1)
    z = _dense_apply(p[f"Dense_{k}"], h)
    if scheme == "film":
      gamma, beta = np.split(signals[k], 2, axis=-1)
      z = z * (1.0 + gamma) + beta
    h = _act(act, z)
  x = _dense_apply(p[f"Dense_{len(arch.lsn_hidden)}"], h)
  x = np.ascontiguousarray(x.T).reshape(3, height, width)
  for i in range(arch.lsn_num_res_convs):
    conv = p[f"ResidualConv_{i}"]
    x = x + _shifted_conv(_act(act, x.copy()), conv["kernel"]) + conv["bias"][:, None, None]
  return np.transpose(x, (1, 2, 0))

"""The decoder's networks in NumPy: float32 forward passes of the synthesis.

Mirrors the Flax modules (``model/gmn.py``, ``model/lsn.py``, ``model/upsampling.py``)
without importing them; their parameter trees are ``coding.network_layout``'s
templates. ``gmn_forward`` / ``lsn_forward`` are the synthesis in float32, equal to the
Flax forward within float tolerance (tests/test_decoder.py); they only shape pixels,
never the parse (DESIGN §2.6).

Two implementations of the synthesis: the compiled kernels of ``_synth.c`` (built by
``pip install -e .``; per-pixel programs run on blocks of 32 pixels held in cache, see
``_Program``) and the plain NumPy ``*_reference`` functions. ``upsample_stack``,
``gmn_forward`` and ``lsn_forward`` use the compiled kernels when the extension is
importable (``MORIC_SYNTHESIS=numpy`` forces the reference); both are tested against
each other and against the Flax forward.
"""
from __future__ import annotations

import os

import numpy as np

from moric_jax.coding import network_layout
from moric_jax.model import grids
from moric_jax.model import region_net
from moric_jax.model import upsampling


def learned_upsample_stack(symbol_grids: list[np.ndarray], q_step: float,
                           params: dict) -> np.ndarray:
  """Integer grids -> ``(H * W, L)`` float32 stack through the learned 2x steps of
  ``model.upsampling`` (offsets ``params["offsets"]``, float32)."""
  offsets = np.asarray(params["offsets"], np.float32)
  if _synth is None:
    g = [np.asarray(s, np.float32) * np.float32(q_step) for s in symbol_grids]
    return upsampling.upsample_stack(g, offsets).reshape(len(g), -1).T
  shapes = [np.shape(s) for s in symbol_grids]
  return _band_stack(symbol_grids, q_step,
                     upsampling.axis_bands(offsets, [s[0] for s in shapes]),
                     upsampling.axis_bands(offsets, [s[1] for s in shapes]))


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


def upsample_stack_reference(symbol_grids: list[np.ndarray], q_step: float, height: int,
                   width: int) -> np.ndarray:
  """Integer grids -> ``(H * W, L)`` float32 stack of ``q_step * symbol`` upsampled
  (separable bilinear, two taps per axis: the sparse form of ``latents.upsample_stack``)."""
  out = np.empty((height, width, len(symbol_grids)), np.float32)
  for k, g in enumerate(symbol_grids):
    g = np.asarray(g, np.float32) * np.float32(q_step)
    if g.shape == (height, width):
      out[:, :, k] = g
      continue
    r0, r1, a0, a1 = grids.two_taps(height, g.shape[0])
    c0, c1, b0, b1 = grids.two_taps(width, g.shape[1])
    rows = g[r0] * a0[:, None] + g[r1] * a1[:, None]               # (H, w_k)
    out[:, :, k] = rows[:, c0] * b0[None, :] + rows[:, c1] * b1[None, :]
  return out.reshape(height * width, -1)


def gmn_forward_reference(params: dict, stack: np.ndarray, arch, scheme: str, mod_width: int,
                activation: str) -> list[np.ndarray]:
  """``(N, L)`` stack -> one ``(N, c_k)`` modulation signal per LSN layer."""
  p = params["params"]
  f, out = stack, []
  for k in range(len(network_layout.signal_widths(arch, scheme, mod_width))):
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


def lsn_forward_reference(params: dict, stack: np.ndarray, signals: list[np.ndarray] | None,
                height: int, width: int, arch, scheme: str, stages: bool = False
                ) -> np.ndarray:
  """``(N, L)`` stack (``N = height * width``) -> ``(height, width, 3)`` float32
  (``stages``: ``(1 + num_res_convs, 3, height, width)``, the linear output and each
  residual convolution's, planar: the trunk stages of ``model.region_net``)."""
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
  outs = [x]
  for i in range(arch.lsn_num_res_convs):
    conv = p[f"ResidualConv_{i}"]
    x = x + _shifted_conv(_act(act, x.copy()), conv["kernel"]) + conv["bias"][:, None, None]
    outs.append(x)
  if stages:
    return np.stack(outs).astype(np.float32)
  return np.transpose(x, (1, 2, 0))


# ----------------------------------------------------------------------------------
# Compiled fast path (``_synth.c``).

def _load_kernels():
  if os.environ.get("MORIC_SYNTHESIS", "").lower() == "numpy":
    return None
  try:
    from moric_jax.decoder import _synth
  except ImportError:
    return None
  return _synth


_synth = _load_kernels()
def _act_code(name: str) -> int:
  """``_synth``'s activation code; as ``_act``: ReLU for "relu", else tanh-GELU."""
  return 0 if name == "relu" else 1

_LOAD, _DENSE, _ACT, _FILM, _STORE = 1, 2, 3, 4, 5


def compiled() -> bool:
  """Whether the compiled synthesis kernels are in use."""
  return _synth is not None


class _Program:
  """A per-pixel program for ``_synth.mlp``: a register file of rows (one value per
  pixel of a block), input loads, dense layers, FiLM, activations, output stores."""

  def __init__(self):
    self.ops: list[int] = []
    self.index_lists: list[list[int]] = []
    self.dense_at: list[int] = []
    self.blob: list[np.ndarray] = []
    self.blob_size = 0
    self.num_rows = 0

  def rows(self, n: int) -> list[int]:
    r = list(range(self.num_rows, self.num_rows + n))
    self.num_rows += n
    return r

  def load(self, array_index: int, cols: int) -> list[int]:
    r = self.rows(cols)
    self.ops += [_LOAD, array_index, cols, r[0] if r else 0]
    return r

  def dense(self, p: dict, inputs: list[int]) -> list[int]:
    kernel = np.asarray(p["kernel"], np.float32)
    bias = np.asarray(p["bias"], np.float32)
    nin, nout = kernel.shape
    if nin != len(inputs) or bias.shape != (nout,):
      raise ValueError(f"dense layer of shape {kernel.shape} fed {len(inputs)} inputs")
    out = self.rows(nout)
    self.dense_at.append(len(self.ops))
    self.index_lists.append(list(inputs))
    self.ops += [_DENSE, nin, nout, out[0] if out else 0, 0, self.blob_size]
    self.blob += [kernel.ravel(), bias]
    self.blob_size += kernel.size + bias.size
    return out

  def act(self, rows: list[int], name: str) -> list[int]:
    if rows:
      self.ops += [_ACT, rows[0], len(rows), _act_code(name)]
    return rows

  def film(self, z: list[int], gamma: list[int], beta: list[int]) -> list[int]:
    if z:
      self.ops += [_FILM, z[0], gamma[0], beta[0], len(z)]
    return z

  def store(self, rows: list[int], array_index: int) -> None:
    self.ops += [_STORE, rows[0] if rows else 0, len(rows), array_index]

  def run(self, inputs: list[np.ndarray], outputs: list[np.ndarray], n: int,
          in_index: np.ndarray | None = None, out_index: np.ndarray | None = None) -> None:
    """Runs on ``n`` pixels; pixel ``i`` reads input row ``in_index[i]`` and writes
    output row ``out_index[i]`` (default ``i``)."""
    ops = list(self.ops) + [0]
    for at, idx in zip(self.dense_at, self.index_lists):
      ops[at + 4] = len(ops)
      ops += idx
    blob = np.concatenate(self.blob) if self.blob else np.zeros(1, np.float32)
    _synth.mlp(np.asarray(ops, np.int32), blob, inputs, outputs, int(n), in_index,
               out_index)


def _float2d(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x)
  return x if x.dtype == np.float32 else x.astype(np.float32)


def upsample_stack(symbol_grids: list[np.ndarray], q_step: float, height: int,
                   width: int, upsampling_params: dict | None = None) -> np.ndarray:
  """Integer grids -> ``(H * W, L)`` float32 stack of ``q_step * symbol`` bilinearly
  upsampled (compiled ``upsample_stack_reference``), or through the learned filters
  ``upsampling_params`` (``learned_upsample_stack``)."""
  if upsampling_params is not None:
    return learned_upsample_stack(symbol_grids, q_step, upsampling_params)
  if _synth is None:
    return upsample_stack_reference(symbol_grids, q_step, height, width)
  shapes = [np.shape(g) for g in symbol_grids]
  return _band_stack(symbol_grids, q_step, [_bilinear_band(height, s[0]) for s in shapes],
                     [_bilinear_band(width, s[1]) for s in shapes])


def _bilinear_band(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray]:
  """``grids.two_taps`` as ``(start, (out_size, 2) weights)`` for ``upsample_band``
  (the same products, summed in the same order)."""
  i0, i1, w0, w1 = grids.two_taps(out_size, in_size)
  if in_size == 1:
    return np.zeros(out_size, np.int64), w0[:, None].copy()
  start = np.minimum(i0, in_size - 2).astype(np.int64)
  weights = np.zeros((out_size, 2), np.float32)
  rows = np.arange(out_size)
  weights[rows, i0 - start] = w0
  weights[rows, i1 - start] += w1
  return start, weights


def _band_stack(symbol_grids: list[np.ndarray], q_step: float, row_bands: list,
                col_bands: list) -> np.ndarray:
  """Compiled separable resampling of every grid -> ``(H * W, L)`` view of planar
  storage (one contiguous plane per grid: the compiled kernels read planes with unit
  stride)."""
  height, width = len(row_bands[0][0]), len(col_bands[0][0])
  planes = np.empty((len(symbol_grids), height * width), np.float32)
  for k, g in enumerate(symbol_grids):
    g = np.asarray(g)
    if g.dtype != np.int32:
      g = g.astype(np.int32)
    _synth.upsample_band(g, float(q_step), *row_bands[k], *col_bands[k], planes[k])
  return planes.T


def gmn_forward(params: dict, stack: np.ndarray, arch, scheme: str, mod_width: int,
                activation: str) -> list[np.ndarray]:
  """``(N, L)`` stack -> one ``(N, c_k)`` modulation signal per LSN layer."""
  if _synth is None:
    return gmn_forward_reference(params, stack, arch, scheme, mod_width, activation)
  p = params["params"]
  stack = _float2d(stack)
  n = stack.shape[0]
  widths = network_layout.signal_widths(arch, scheme, mod_width)
  prog = _Program()
  f = prog.load(0, stack.shape[1])
  outs = [np.empty((c, n), np.float32).T for c in widths]   # planar, (n, c) views
  for k in range(len(widths)):
    f = prog.act(prog.dense(p[f"Dense_{2 * k}"], f), activation)
    prog.store(prog.dense(p[f"Dense_{2 * k + 1}"], f), k)
  prog.run([stack], outs, n)
  return outs


def lsn_forward(params: dict, stack: np.ndarray, signals: list[np.ndarray] | None,
                height: int, width: int, arch, scheme: str) -> np.ndarray:
  """``(N, L)`` stack (``N = height * width``) -> ``(height, width, 3)`` float32."""
  if _synth is None:
    return lsn_forward_reference(params, stack, signals, height, width, arch, scheme)
  if stack.shape[0] != height * width:
    raise ValueError(f"stack has {stack.shape[0]} rows for {height}x{width} pixels")
  x = np.empty((3, height, width), np.float32)
  _lsn_planar(params, stack, signals, x, arch, scheme)
  return np.transpose(x, (1, 2, 0))


def _lsn_planar(params: dict, stack: np.ndarray, signals: list[np.ndarray] | None,
                x: np.ndarray, arch, scheme: str, in_index: np.ndarray | None = None,
                out_index: np.ndarray | None = None, res_convs: bool = True) -> None:
  """LSN into planar ``x`` ``(3, h, w)``: the per-pixel layers at every pixel (or at
  ``x``'s flat pixels ``out_index``, reading stack / signal rows ``in_index``), then the
  residual convolutions over all of ``x``."""
  p = params["params"]
  act = arch.lsn_activation
  stack = _float2d(stack)
  _, height, width = x.shape
  n = height * width if out_index is None else out_index.size
  sig_in = [] if scheme == "none" or signals is None else [_float2d(s) for s in signals]
  prog = _Program()
  h = prog.load(0, stack.shape[1])
  sig = [prog.load(1 + k, s.shape[1]) for k, s in enumerate(sig_in)]
  if scheme == "concat_input":
    h = h + sig[0]
  for k in range(len(arch.lsn_hidden)):
    if scheme == "progressive_concat":
      h = h + sig[k]
    z = prog.dense(p[f"Dense_{k}"], h)
    if scheme == "film":
      half = len(sig[k]) // 2
      z = prog.film(z, sig[k][:half], sig[k][half:])
    h = prog.act(z, act)
  prog.store(prog.dense(p[f"Dense_{len(arch.lsn_hidden)}"], h), 0)
  prog.run([stack] + sig_in, [x.reshape(3, height * width).T], n, in_index, out_index)
  if arch.lsn_num_res_convs and res_convs:
    convs = [p[f"ResidualConv_{i}"] for i in range(arch.lsn_num_res_convs)]
    kernels = np.ascontiguousarray(np.stack([c["kernel"] for c in convs]), np.float32)
    biases = np.ascontiguousarray(np.stack([c["bias"] for c in convs]), np.float32)
    _synth.res_convs(x, kernels, biases, _act_code(act))


def trunk_stages(params: dict, stack: np.ndarray, height: int, width: int, arch
                 ) -> np.ndarray:
  """The ``moric`` trunk (a plain LSN) over the frame: ``(K, 3, height, width)``
  float32, its linear output and the output of each residual convolution."""
  if _synth is None:
    return lsn_forward_reference(params, stack, None, height, width, arch, "none",
                                 stages=True)
  k = 1 + int(arch.lsn_num_res_convs)
  out = np.empty((k, 3, height, width), np.float32)
  _lsn_planar(params, stack, None, out[0], arch, "none", res_convs=False)
  p = params["params"]
  for i in range(1, k):
    conv = p[f"ResidualConv_{i - 1}"]
    out[i] = out[i - 1]
    _synth.res_convs(out[i], np.ascontiguousarray(conv["kernel"][None], np.float32),
                     np.ascontiguousarray(conv["bias"][None], np.float32),
                     _act_code(arch.lsn_activation))
  return out


def layer_owners(layers: list, height: int, width: int) -> np.ndarray:
  """``(H, W) int32``: the layer that draws each pixel (the last one covering it; -1
  where none does). ``layers`` as in ``compose``: ``(params, (top, left, h, w), mask
  or None for the whole box)``."""
  owner = np.full((height, width), -1, np.int32)
  for j, (_, (t, l, bh, bw), m) in enumerate(layers):
    view = owner[t:t + bh, l:l + bw]
    if m is None:
      view[...] = j
    else:
      view[m] = j
  return owner


def compose_modular(stages: np.ndarray, gmn: dict, layers: list, height: int, width: int,
                    activation: str) -> np.ndarray:
  """The ``moric`` layout: ``stages`` ``(K, 3, H, W)`` from ``trunk_stages``, ``gmn``
  its dequantized tree (aggregator ``Agg_k``); ``layers`` as in ``compose`` (region
  network params, box, mask). Each region network runs only at the pixels it shows
  (a later layer wins); pixels no layer draws are 0. -> ``(H, W, 3)`` float32."""
  owner = layer_owners(layers, height, width)
  agg = {k: v for k, v in gmn.items() if k != "trunk"}
  num_stages = stages.shape[0]
  flat = stages.reshape(num_stages, 3, height * width)
  if _synth is not None:
    rows, cols = np.divmod(np.arange(height * width), width)
    coords = region_net.pixel_coordinates(rows, cols, height, width)
    xp = np.zeros((3, height * width), np.float32)
    for j, (params, _, _) in enumerate(layers):
      idx = np.flatnonzero(owner.ravel() == j).astype(np.int64)
      if idx.size:
        _region_program(params, agg, num_stages, activation).run(
            [coords] + [flat[k].T for k in range(num_stages)], [xp.T], idx.size, idx, idx)
    return np.ascontiguousarray(xp.T).reshape(height, width, 3)
  x = np.zeros((height * width, 3), np.float32)
  for j, (params, _, _) in enumerate(layers):
    idx = np.flatnonzero(owner.ravel() == j)
    if not idx.size:
      continue
    coords = region_net.pixel_coordinates(idx // width, idx % width, height, width)
    feats = [np.ascontiguousarray(flat[k][:, idx].T) for k in range(num_stages)]
    x[idx] = region_net.apply(params, agg, coords, feats, activation, np)
  return x.reshape(height, width, 3)


def _nonzero(p: dict) -> bool:
  return bool(np.any(np.asarray(p["kernel"]))) or bool(np.any(np.asarray(p["bias"])))


def _region_program(params: dict, agg: dict, num_stages: int, activation: str,
                    prune: bool = True) -> "_Program":
  """``region_net.apply`` as a ``_synth.mlp`` program (inputs: coordinates, then the
  trunk stages; output: RGB). Residual sums are dense layers over concatenated rows:
  ``s + R act(s) = [s, act(s)] @ [[I], [R]] + b``, ``U_K + H s = [s, U_K] @ [[H], [I]] + b``.

  ``prune``: leaves out what adds exact zeros (trained region networks are sparse: most
  residual layers and the first aggregator stages quantize to all-zero). A zero head:
  the region shows ``U_K``; a zero residual layer leaves ``s`` as it is; a zero
  aggregator stage makes ``s`` exactly 0 (``act(0) = 0``), so nothing before it is
  computed and its 0 rows are dropped from the next dense layers. A dropped term is a
  product ``w x`` that is exactly +-0, and adding +-0 changes no sum: the pixels are the
  unpruned program's, value for value."""
  width = int(np.asarray(params["Dense_in"]["bias"]).shape[0])
  eye = lambda n: np.eye(n, dtype=np.float32)
  prog = _Program()
  c = prog.load(0, 2)
  stages = [prog.load(1 + k, 3) for k in range(num_stages)]
  head = params["Head"]
  if prune and not _nonzero(head):
    prog.store(stages[-1], 0)
    return prog
  start = 0
  if prune:
    for k in range(num_stages):
      if not _nonzero(agg[f"Agg_{k}"]):
        start = k + 1
  s = prog.act(prog.dense(params["Dense_in"], c), activation) if start == 0 else None
  for k in range(start, num_stages):   # s is None while it is exactly 0
    res = params[f"Res_{k}"]
    if s is None:                      # 0 + R act(0) + b = b
      if np.any(np.asarray(res["bias"])):
        s = prog.dense({"kernel": np.zeros((2, width), np.float32), "bias": res["bias"]}, c)
    elif not prune or _nonzero(res):
      t = prog.act(prog.dense({"kernel": eye(width), "bias": np.zeros(width, np.float32)},
                              s), activation)
      s = prog.dense({"kernel": np.concatenate([eye(width), res["kernel"]]),
                      "bias": res["bias"]}, s + t)
    a = agg[f"Agg_{k}"]
    u = [r for st in stages[:k + 1] for r in st]
    if s is None:
      s = prog.act(prog.dense({"kernel": np.asarray(a["kernel"])[width:],
                               "bias": a["bias"]}, u), activation)
    else:
      s = prog.act(prog.dense(a, s + u), activation)
  if s is None:                        # U_K + H 0 + b
    out = prog.dense({"kernel": eye(3), "bias": head["bias"]}, stages[-1])
  else:
    out = prog.dense({"kernel": np.concatenate([head["kernel"], eye(3)]),
                      "bias": head["bias"]}, s + stages[-1])
  prog.store(out, 0)
  return prog


def conv_reach(arch) -> int:
  """How far (Chebyshev pixels) an LSN output reads its per-pixel layers' outputs."""
  return int(arch.lsn_num_res_convs) * (int(arch.lsn_kernel_size) // 2)


def _dilate(m: np.ndarray, r: int) -> np.ndarray:
  """Square (Chebyshev radius ``r``) dilation of a 2-D bool array, clipped at its edges."""
  out = m.copy()
  for axis in (0, 1):
    src = out.copy()
    n = src.shape[axis]
    for s in range(1, min(r, n - 1) + 1):
      a = [slice(None)] * 2
      b = [slice(None)] * 2
      a[axis], b[axis] = slice(s, None), slice(None, -s)
      out[tuple(a)] |= src[tuple(b)]
      out[tuple(b)] |= src[tuple(a)]
  return out


def compose(stack: np.ndarray, signals: list[np.ndarray] | None, layers: list,
            height: int, width: int, arch, scheme: str) -> np.ndarray:
  """Rendered layers -> ``(height, width, 3)`` float32, evaluating each LSN only where
  its pixels show (plus the ``conv_reach`` ring its convolutions read).

  ``layers``: in rendering order, ``(params, (top, left, h, w), mask)`` with ``mask``
  the ``(h, w)`` bool pixels it draws (``None``: all of the box); a later layer
  replaces earlier ones where it draws, pixels no layer draws are 0. Equal to
  rendering every LSN over its whole box and pasting it inside its mask (the per-pixel
  layers of one pixel do not depend on other pixels; the convolutions see the same
  values at every pixel they read). Uses the compiled kernels; without them, the
  reference path (whole boxes).
  """
  owner = layer_owners(layers, height, width)
  if _synth is None:
    x = np.zeros((height, width, 3), np.float32)
    for j, (params, (t, l, bh, bw), m) in enumerate(layers):
      mine = owner[t:t + bh, l:l + bw] == j
      if mine.any():
        idx = (np.arange(t, t + bh)[:, None] * width + np.arange(l, l + bw)[None, :]).ravel()
        out = lsn_forward_reference(params, stack[idx], None if signals is None else
                                    [s[idx] for s in signals], bh, bw, arch, scheme)
        x[t:t + bh, l:l + bw][mine] = out[mine]
    return x
  reach = conv_reach(arch)
  xp = np.zeros((3, height, width), np.float32)
  for j, (params, (t, l, bh, bw), m) in enumerate(layers):
    mine = owner[t:t + bh, l:l + bw] == j
    if not mine.any():
      continue
    frame = (t, l, bh, bw) == (0, 0, height, width)
    # The first layer over the whole frame renders in place (what it does not show,
    # later layers overwrite); any other into its own box, pasted where it shows.
    direct = j == 0 and frame and m is None
    in_index = out_index = None
    if not (frame and mine.all()):
      need = _dilate(mine, reach) if reach else mine
      out_index = np.flatnonzero(need)
      in_index = out_index if frame else (
          (t + out_index // bw) * width + l + out_index % bw)
    target = xp if direct else np.zeros((3, bh, bw), np.float32)
    _lsn_planar(params, stack, signals, target, arch, scheme, in_index, out_index)
    if not direct:
      np.copyto(xp[:, t:t + bh, l:l + bw], target, where=mine)
  return np.transpose(xp, (1, 2, 0))

"""Parameter layouts of the networks a ``.moric`` file codes, in plain NumPy.

``*_template`` give each network's parameter tree as nested dicts of shapes (the same
trees as the Flax modules ``model/arm.py``, ``model/gmn.py``, ``model/lsn.py``,
``model/upsampling.py``, built without them); their leaves in ``flatten`` order (dict
keys sorted, as ``jax.tree_util`` flattens) are the order the file codes tensors in.
``dequantize`` turns integer trees into float32 weights; ``lsn_reference_ints`` /
``reference_residual`` define what an object LSN is coded relative to. Shared by the
writer (``coding.writer``) and the decoder (``decoder``); imports nothing above
``model``'s NumPy modules.
"""
from __future__ import annotations

import numpy as np

from moric_jax.model import modulation
from moric_jax.model import region_net
from moric_jax.model import upsampling


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
  if scheme == "moric":   # the trunk (a plain LSN) and the shared aggregator
    return {"trunk": lsn_template(arch, "none", 0),
            **region_net.aggregator_shapes(width, moric_stages(arch))}
  p, prev = {}, arch.num_grids
  for k, c in enumerate(signal_widths(arch, scheme, mod_width)):
    p[f"Dense_{2 * k}"] = _dense(prev, width)
    p[f"Dense_{2 * k + 1}"] = _dense(width, c)
    prev = width
  return {"params": p}


def upsampling_template(arch) -> dict:
  """Learned upsampling filters (``model.upsampling``): offsets ``(L - 1, 4)``."""
  return {"offsets": (max(arch.num_grids - 1, 0), upsampling.NUM_TAPS)}


def moric_stages(arch) -> int:
  """Trunk stages the ``moric`` layout aggregates (``region_net.num_stages``)."""
  return region_net.num_stages(arch.lsn_num_res_convs)


def lsn_template(arch, scheme: str, mod_width: int, width: int = 0) -> dict:
  """An LSN's tree; for ``moric`` the tiny region network of ``width`` channels."""
  if scheme == "moric":
    return region_net.lsn_shapes(width, moric_stages(arch))
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


def dequantize(int_tree: dict, delta) -> dict:
  """Integer tree -> float32 ``k * delta`` (as ``model.weights.dequantize_tree``).

  ``delta``: one step for every tensor, or a list of per-tensor steps in ``flatten``
  order (``MoricFile.base_steps``, ``Layer.steps``)."""
  if isinstance(delta, (list, tuple)):
    leaves = flatten(int_tree)
    if len(leaves) != len(delta):
      raise ValueError(f"{len(delta)} steps for {len(leaves)} tensors")
    return unflatten(int_tree, [(np.asarray(k, np.float64) * d).astype(np.float32)
                                for k, d in zip(leaves, delta)])
  if isinstance(int_tree, dict):
    return {k: dequantize(v, delta) for k, v in int_tree.items()}
  return (np.asarray(int_tree, np.float64) * delta).astype(np.float32)


def file_templates(f) -> dict:
  """Parameter templates of a ``MoricFile``'s networks (``arm``, ``gmn``,
  ``upsampling``, ``lsn``)."""
  out = {"arm": arm_template(f.arch),
         "lsn": lsn_template(f.arch, f.modulation, f.mod_width, f.gmn_width)}
  if f.has_gmn:
    out["gmn"] = gmn_template(f.arch, f.modulation, f.gmn_width, f.mod_width)
  if f.has_upsampling:
    out["upsampling"] = upsampling_template(f.arch)
  return out


def base_steps(f) -> dict[str, list[float]]:
  """Per-tensor steps of the base section's networks (the shared ones, and ``lsn``
  for LSN 0 unless the file is object-only), from the header."""
  tpl = file_templates(f)
  names = list(f.shared_networks) + ([] if f.object_only else ["lsn"])
  return dict(zip(names, f.base_steps([len(flatten(tpl[n])) for n in names])))


def lsn_reference_ints(ref_ints: dict, ref_delta, delta) -> dict:
  """The integers an object LSN is coded relative to: LSN 0's weights on the object's
  steps, ``round(k_0 * delta_0 / delta)`` per tensor (float64 on integers, half to
  even: the same on every machine). ``ref_delta`` / ``delta``: one step, or per-tensor
  steps in ``flatten`` order."""
  leaves = flatten(ref_ints)
  per = lambda d: list(d) if isinstance(d, (list, tuple)) else [d] * len(leaves)
  return unflatten(ref_ints, [
      np.round(np.asarray(k, np.float64) * (float(r) / float(d))).astype(np.int32)
      for k, r, d in zip(leaves, per(ref_delta), per(delta))])


def reference_residual(ints: dict, ref_ints: dict, ref_delta: float, delta: float,
                       sign: int = -1) -> dict:
  """``ints - reference`` (what the file codes; ``sign=+1``: the inverse)."""
  ref = lsn_reference_ints(ref_ints, ref_delta, delta)

  def go(a, b):
    if isinstance(a, dict):
      return {k: go(a[k], b[k]) for k in a}
    return (np.asarray(a, np.int64) + sign * np.asarray(b, np.int64)).astype(np.int32)
  return go(ints, ref)

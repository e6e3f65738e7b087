"""Network-weight quantization and its rate.

Each network (ARM, LSN, ...) has one step size ``delta``; a weight ``w`` is coded as the
integer ``k = round(w / delta)`` with a zero-mean Laplace model whose scale (in integer
units) is sent per tensor. Rates are in bits.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.model.arm import laplace_bin_bits

# Header cost per tensor for its Laplace scale (a float16), in bits.
SCALE_HEADER_BITS = 16.0
MIN_INT_SCALE = 0.05


def per_leaf_steps(tree, delta) -> list:
  """One step per leaf (``jax.tree_util`` order) from one step or a list of them."""
  n = len(jax.tree_util.tree_leaves(tree))
  if isinstance(delta, (list, tuple)):
    if len(delta) != n:
      raise ValueError(f"{len(delta)} steps for {n} tensors")
    return list(delta)
  return [delta] * n


def quantize_tree(params, delta):
  """Float parameter tree -> int32 tree ``round(w / delta)``; ``delta`` one step or
  per-tensor steps in leaf order."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  return jax.tree_util.tree_unflatten(treedef, [
      np.round(np.asarray(w, np.float64) / d).astype(np.int32)
      for w, d in zip(leaves, per_leaf_steps(params, delta))])


def dequantize_tree(int_params, delta):
  """Int tree -> float32 tree ``k * delta`` (``delta`` as in ``quantize_tree``)."""
  leaves, treedef = jax.tree_util.tree_flatten(int_params)
  return jax.tree_util.tree_unflatten(treedef, [
      jnp.asarray(np.asarray(k, np.float64) * d, jnp.float32)
      for k, d in zip(leaves, per_leaf_steps(int_params, delta))])


def int_laplace_scale(k: jax.Array) -> jax.Array:
  """Laplace scale (integer units) used to code the integers ``k`` of one tensor."""
  return jnp.maximum(jnp.mean(jnp.abs(k)), MIN_INT_SCALE)


def tensor_bits(x: jax.Array, scale: jax.Array | None = None) -> jax.Array:
  """Bits for the (possibly non-integer, while training) weights ``x = w / delta``."""
  x = jnp.ravel(x)
  if scale is None:
    scale = int_laplace_scale(x)
  bits = laplace_bin_bits(x, 0.0, scale)
  return jnp.sum(bits) + SCALE_HEADER_BITS


def tree_bits(params, delta: float | jax.Array) -> jax.Array:
  """Estimated bits of a float parameter tree coded with step ``delta``.

  Differentiable, so the training loss can use it. All tensors are handled in one
  flat vector (per-tensor scales by segment means) to keep the XLA program small.
  """
  leaves = jax.tree_util.tree_leaves(params)
  sizes = [int(np.size(w)) for w in leaves]
  seg = np.repeat(np.arange(len(leaves)), sizes)
  x = jnp.concatenate([jnp.ravel(w) for w in leaves]) / delta
  mean_abs = jax.ops.segment_sum(jnp.abs(x), seg, num_segments=len(leaves)) / np.asarray(
      sizes, np.float32)
  scale = jnp.maximum(mean_abs, MIN_INT_SCALE)[seg]
  bits = laplace_bin_bits(x, 0.0, scale)
  return jnp.sum(bits) + SCALE_HEADER_BITS * len(leaves)


def int_tree_bits(int_params) -> float:
  """Bits of an integer parameter tree under the per-tensor Laplace model."""
  leaves = jax.tree_util.tree_leaves(int_params)
  return float(sum(tensor_bits(jnp.asarray(k, jnp.float32)) for k in leaves))


def num_params(params) -> int:
  """Number of scalar parameters in a tree."""
  return int(sum(np.size(w) for w in jax.tree_util.tree_leaves(params)))

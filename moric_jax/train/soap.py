"""SOAP: Adam run in the eigenbasis of Shampoo's preconditioner, as an optax transform.

Vyas et al., "SOAP: Improving and Stabilizing Shampoo using Adam" (arXiv 2409.11321);
Cool-chic 5 trains its networks with it. Written here because neither optax (0.2.8)
nor a maintained JAX package provides it.

Every parameter is seen as a matrix ``G`` of shape ``(m, n)`` (all axes but the last
flattened into rows; a vector is ``(1, n)``). Per matrix the transform keeps moving
averages ``L = E[G G^T]`` ``(m, m)`` and ``R = E[G^T G]`` ``(n, n)`` and, refreshed every
``precondition_every`` steps, their eigenvectors ``Q_L``, ``Q_R``. The gradient is
rotated into that basis, ``G' = Q_L^T G Q_R``, where Adam's second moment is kept; the
first moment is kept in the original basis and rotated when used; the Adam direction
is rotated back, ``Q_L N' Q_R^T``. A side of size 1 or above ``max_dim`` stays the
identity (diagonal Adam on that side). The networks here are tiny (widths <= 64), so
refreshing the bases costs little next to the forward pass.
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class SoapState(NamedTuple):
  """``count`` scalar int32; ``leaves`` one dict per parameter (flattened order)."""
  count: jax.Array
  leaves: list


def _sides(shape: tuple[int, ...], max_dim: int) -> tuple[int, int, int, int]:
  """``(m, n, m_pre, n_pre)``: matrix shape and preconditioned sizes (0 = identity)."""
  n = int(shape[-1]) if shape else 1
  m = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
  pre = lambda d: d if 1 < d <= max_dim else 0
  return m, n, pre(m), pre(n)


def _orthonormal_columns(x: jax.Array) -> jax.Array:
  """Gram-Schmidt (twice, for accuracy) of the columns of ``x`` ``(n, n)``: the Q of
  its QR decomposition, up to column signs. Pure ``jnp``: XLA's CPU eigensolver and
  QR custom calls can deadlock inside this batched, scanned program on 2 cores."""
  n = x.shape[1]

  def column(j, q):
    v = jax.lax.dynamic_index_in_dim(x, j, axis=1, keepdims=False)
    earlier = (jnp.arange(n) < j).astype(x.dtype)
    for _ in range(2):
      v = v - q @ (earlier * (q.T @ v))
    return q.at[:, j].set(v / jnp.maximum(jnp.linalg.norm(v), 1e-30))

  return jax.lax.fori_loop(0, n, column, jnp.zeros_like(x))


def _refine_eigenbasis(a: jax.Array, q: jax.Array, iterations: int) -> jax.Array:
  """Orthogonal iteration ``q <- orth(a q)`` towards the eigenvectors of the symmetric
  PSD ``a``, columns by descending eigenvalue (SOAP's refresh: its eigenbasis moves
  slowly, so a few iterations per refresh track it). A small shift keeps ``a q``
  of full rank where ``a`` is (still) singular; a non-finite ``a`` (a diverged step)
  leaves ``q`` as it is."""
  finite = jnp.all(jnp.isfinite(a))
  a = jnp.where(finite, a, 0.0)
  shift = 1e-4 * jnp.mean(jnp.diag(a)) + 1e-12
  refined = q
  for _ in range(iterations):
    refined = _orthonormal_columns(a @ refined + shift * refined)
  return jnp.where(finite, refined, q)


def _maybe_refine(refresh: jax.Array, a: jax.Array, q: jax.Array, iterations: int
                  ) -> jax.Array:
  """``_refine_eigenbasis`` on refresh steps only (``lax.cond``: skipped otherwise;
  under ``vmap`` both branches run, as a select)."""
  return jax.lax.cond(refresh, lambda: _refine_eigenbasis(a, q, iterations), lambda: q)


def _rotate(left: jax.Array | None, right: jax.Array | None, x: jax.Array) -> jax.Array:
  """``left @ x @ right`` with ``None`` standing for the identity."""
  if left is not None:
    x = left @ x
  return x @ right if right is not None else x


def scale_by_soap(b1: float = 0.95, b2: float = 0.95, shampoo_beta: float = 0.95,
                  eps: float = 1e-8, precondition_every: int = 10,
                  iterations: int = 2, max_dim: int = 128) -> optax.GradientTransformation:
  """SOAP's update direction (no learning rate: chain with a scale, as Adam's).

  ``b1`` / ``b2``: Adam's moment decays in the rotated basis; ``shampoo_beta``: decay
  of the ``L`` / ``R`` averages; the eigenbases are refined by ``iterations`` steps of
  orthogonal iteration every ``precondition_every`` steps (and at the first).
  """
  if precondition_every < 1:
    raise ValueError(f"precondition_every must be >= 1, got {precondition_every}")

  def init_fn(params):
    leaves = []
    for p in jax.tree_util.tree_leaves(params):
      m, n, lm, ln = _sides(jnp.shape(p), max_dim)
      # A side that is not preconditioned keeps a (1, 1) placeholder (orbax cannot
      # checkpoint empty arrays); which sides are is decided from the shapes alone.
      lm1, ln1 = max(lm, 1), max(ln, 1)
      leaves.append({"mu": jnp.zeros((m, n), jnp.float32),
                     "nu": jnp.zeros((m, n), jnp.float32),
                     "left": jnp.zeros((lm1, lm1), jnp.float32),
                     "right": jnp.zeros((ln1, ln1), jnp.float32),
                     "q_left": jnp.eye(lm1, dtype=jnp.float32),
                     "q_right": jnp.eye(ln1, dtype=jnp.float32)})
    return SoapState(count=jnp.zeros([], jnp.int32), leaves=leaves)

  def update_fn(updates, state, params=None):
    del params
    grads, treedef = jax.tree_util.tree_flatten(updates)
    count = state.count + 1
    refresh = (count - 1) % precondition_every == 0
    t = count.astype(jnp.float32)
    c1, c2 = 1.0 - b1**t, 1.0 - b2**t
    out, new_leaves = [], []
    for g, s in zip(grads, state.leaves):
      m, n, lm, ln = _sides(jnp.shape(g), max_dim)
      g2 = jnp.reshape(g, (m, n)).astype(jnp.float32)
      left, right, ql, qr = s["left"], s["right"], s["q_left"], s["q_right"]
      if lm:
        left = shampoo_beta * left + (1.0 - shampoo_beta) * (g2 @ g2.T)
        ql = _maybe_refine(refresh, left, ql, iterations)
      if ln:
        right = shampoo_beta * right + (1.0 - shampoo_beta) * (g2.T @ g2)
        qr = _maybe_refine(refresh, right, qr, iterations)
      rot = functools.partial(_rotate, ql.T if lm else None, qr if ln else None)
      unrot = functools.partial(_rotate, ql if lm else None, qr.T if ln else None)
      mu = b1 * s["mu"] + (1.0 - b1) * g2
      nu = b2 * s["nu"] + (1.0 - b2) * jnp.square(rot(g2))
      direction = unrot((rot(mu) / c1) / (jnp.sqrt(nu / c2) + eps))
      out.append(jnp.reshape(direction, jnp.shape(g)).astype(g.dtype))
      new_leaves.append({"mu": mu, "nu": nu, "left": left, "right": right,
                         "q_left": ql, "q_right": qr})
    return (jax.tree_util.tree_unflatten(treedef, out),
            SoapState(count=count, leaves=new_leaves))

  return optax.GradientTransformation(init_fn, update_fn)

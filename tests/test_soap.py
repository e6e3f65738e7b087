import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from moric_jax.train import soap


def test_orthonormal_columns_is_qr_q_up_to_signs():
  x = jnp.asarray(np.random.default_rng(0).normal(size=(9, 9)), jnp.float32)
  q = np.asarray(soap._orthonormal_columns(x))
  np.testing.assert_allclose(q.T @ q, np.eye(9), atol=1e-5)
  ref, _ = np.linalg.qr(np.asarray(x, np.float64))
  np.testing.assert_allclose(np.abs(q), np.abs(ref), atol=1e-4)


def test_refresh_converges_to_the_eigenbasis_in_descending_order():
  m = np.random.default_rng(1).normal(size=(12, 12))
  a = jnp.asarray(m @ m.T, jnp.float32)
  q = jnp.eye(12)
  refine = jax.jit(soap._refine_eigenbasis, static_argnums=2)  # one compile, not 80 eager runs
  for _ in range(80):
    q = refine(a, q, 2)
  _, vecs = np.linalg.eigh(np.asarray(a, np.float64))
  overlap = np.abs(np.asarray(q).T @ vecs[:, ::-1])
  np.testing.assert_allclose(overlap.diagonal(), 1.0, atol=2e-3)


def test_singular_or_non_finite_factor_keeps_an_orthonormal_basis():
  v = jnp.arange(1.0, 6.0)
  rank1 = jnp.outer(v, v)            # L after a first gradient: rank 1
  q = np.asarray(soap._refine_eigenbasis(rank1, jnp.eye(5), 2))
  np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-4)
  bad = rank1.at[0, 0].set(jnp.nan)
  q0 = jnp.eye(5)[::-1]
  np.testing.assert_array_equal(np.asarray(soap._refine_eigenbasis(bad, q0, 2)), q0)


def _train(opt, loss, params, steps, lr):
  state = opt.init(params)

  @jax.jit
  def step(p, s):
    g = jax.grad(loss)(p)
    u, s = opt.update(g, s, p)
    return jax.tree_util.tree_map(lambda a, b: a - lr * b, p, u), s

  for _ in range(steps):
    params, state = step(params, state)
  return float(loss(params))


def test_without_preconditioned_sides_it_is_adam():
  # max_dim=1: every side stays the identity, so SOAP must be Adam exactly.
  rng = np.random.default_rng(2)
  c = jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)
  loss = lambda p: jnp.sum((p["w"] @ jnp.ones((6, 6)) - c) ** 2) + jnp.sum(p["b"] ** 2)
  params = {"w": jnp.zeros((8, 6)), "b": jnp.ones((6,))}
  adam = _train(optax.scale_by_adam(b1=0.9, b2=0.99, eps=1e-8), loss, params, 50, 1e-2)
  same = _train(soap.scale_by_soap(b1=0.9, b2=0.99, max_dim=1), loss, params, 50, 1e-2)
  np.testing.assert_allclose(same, adam, rtol=1e-5)


def test_soap_minimises_a_rotated_ill_conditioned_quadratic():
  rng = np.random.default_rng(3)
  rot = lambda n: np.linalg.qr(rng.normal(size=(n, n)))[0]
  a = jnp.asarray(rot(8) @ np.diag(np.geomspace(1, 30, 8)) @ rot(8), jnp.float32)
  c = jnp.asarray(rng.normal(size=(8, 6)), jnp.float32)
  loss = lambda p: jnp.sum((a @ p["w"] - c) ** 2)
  params = {"w": jnp.zeros((8, 6))}
  start = float(loss(params))
  end = _train(soap.scale_by_soap(b1=0.9, b2=0.99), loss, params, 400, 1e-2)
  assert end < 1e-2 * start, (end, start)


def test_leaf_shapes_vectors_big_sides_and_scalars():
  params = {"k": jnp.ones((3, 3, 2, 4)), "v": jnp.ones((5,)), "big": jnp.ones((300, 2)),
            "s": jnp.ones(())}
  opt = soap.scale_by_soap(max_dim=128)
  state = opt.init(params)
  leaves = dict(zip(sorted(params), state.leaves))   # tree order = sorted keys
  assert leaves["k"]["q_left"].shape == (18, 18) and leaves["k"]["q_right"].shape == (4, 4)
  assert leaves["v"]["q_left"].shape == (1, 1) and leaves["v"]["q_right"].shape == (5, 5)
  assert leaves["big"]["q_left"].shape == (1, 1)      # 300 > max_dim: diagonal there
  grads = jax.tree_util.tree_map(lambda x: 0.1 * jnp.ones_like(x), params)
  updates, state = opt.update(grads, state)
  for k in params:
    assert updates[k].shape == params[k].shape
    assert np.all(np.isfinite(np.asarray(updates[k])))
  assert int(state.count) == 1


def test_bad_refresh_interval_is_refused():
  with pytest.raises(ValueError, match="precondition_every"):
    soap.scale_by_soap(precondition_every=0)

import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.model import weights as weights_lib
from moric_jax.train import weight_search


def _tree():
  rng = np.random.default_rng(0)
  return {"a": {"kernel": rng.normal(0, 0.1, (7, 5)).astype(np.float32),
                "bias": rng.normal(0, 0.01, (5,)).astype(np.float32)},
          "b": rng.normal(0, 0.3, (4,)).astype(np.float32)}


def test_quantize_dequantize_round_trip_within_half_step():
  tree = _tree()
  for delta in (1e-3, 1e-2, 0.1):
    q = weights_lib.quantize_tree(tree, delta)
    assert all(np.asarray(k).dtype == np.int32 for k in jax.tree_util.tree_leaves(q))
    back = weights_lib.dequantize_tree(q, delta)
    for w, r in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(back)):
      assert np.max(np.abs(np.asarray(r) - w)) <= delta / 2 + 1e-7
    # Requantizing the dequantized weights gives the same integers.
    q2 = weights_lib.quantize_tree(back, delta)
    for a, b in zip(jax.tree_util.tree_leaves(q), jax.tree_util.tree_leaves(q2)):
      np.testing.assert_array_equal(a, b)


def test_weight_bits_fall_with_coarser_steps_and_match_int_bits():
  tree = _tree()
  bits = [weights_lib.int_tree_bits(weights_lib.quantize_tree(tree, d))
          for d in (1e-4, 1e-3, 1e-2, 1e-1)]
  assert all(b1 > b2 for b1, b2 in zip(bits, bits[1:]))
  # The differentiable estimate on exact integers equals the integer rate.
  delta = 1e-2
  q = weights_lib.quantize_tree(tree, delta)
  est = float(weights_lib.tree_bits(weights_lib.dequantize_tree(q, delta), delta))
  assert est == np.float32(weights_lib.int_tree_bits(q)) or abs(
      est - weights_lib.int_tree_bits(q)) < 1e-2 * est


def test_search_trades_distortion_against_bits():
  tree = {"net": _tree()}
  target = jax.tree_util.tree_leaves(tree["net"])

  def evaluate(p):
    err = sum(jnp.mean((a - b) ** 2) for a, b in
              zip(jax.tree_util.tree_leaves(p["net"]), target))
    return {"mse": err, "bpp_latents": jnp.float32(0)}

  deltas = weight_search.candidate_deltas(1e-5, 1.0, 21)
  run = weight_search.run_search
  cheap = run(weight_search.search_network(tree, "net", deltas, lmbda=1.0, num_pixels=10,
                                           distortion_key="mse"), evaluate)
  precise = run(weight_search.search_network(tree, "net", deltas, lmbda=1e-9,
                                             num_pixels=10, distortion_key="mse"), evaluate)
  assert cheap.delta > precise.delta
  assert cheap.bits < precise.bits
  assert len(cheap.costs) == 21


def test_per_tensor_steps_quantize_each_leaf_on_its_own_step():
  tree = _tree()
  steps = [1e-3, 1e-1, 1e-2]   # leaf order: a/bias, a/kernel, b
  q = weights_lib.quantize_tree(tree, steps)
  back = weights_lib.dequantize_tree(q, steps)
  for w, r, d in zip(jax.tree_util.tree_leaves(tree), jax.tree_util.tree_leaves(back), steps):
    assert np.max(np.abs(np.asarray(r) - w)) <= d / 2 + 1e-7
  with np.testing.assert_raises(ValueError):
    weights_lib.quantize_tree(tree, steps[:2])


def test_tensor_step_refinement_gives_sensitive_tensors_finer_steps():
  """Distortion weighs tensor "a/kernel" 1000x more than the others: the refinement
  leaves the kernel on the finest step of the three (the others coarser), and ends
  below the single step's cost."""
  tree = {"net": _tree()}
  target = jax.tree_util.tree_leaves(tree["net"])
  weight = [1.0, 1000.0, 1.0]

  def evaluate(p):
    err = sum(w * jnp.sum((a - b) ** 2) for w, a, b in
              zip(weight, jax.tree_util.tree_leaves(p["net"]), target))
    return {"mse": err, "bpp_latents": jnp.float32(0)}

  kw = dict(lmbda=1e-3, num_pixels=1, distortion_key="mse")
  run = weight_search.run_search
  choice = run(weight_search.search_network(
      tree, "net", weight_search.candidate_deltas(1e-4, 1.0, 13), **kw), evaluate)
  refined = run(weight_search.refine_tensor_steps(tree, "net", choice, **kw), evaluate)
  f_bias, f_kernel, f_b = refined.factors
  assert f_kernel < f_b and f_kernel < f_bias
  cost = lambda c: float(evaluate({"net": weights_lib.dequantize_tree(
      c.int_params, c.steps)})["mse"]) + 1e-3 * c.bits
  assert cost(refined) < cost(choice)
  assert refined.bits == weights_lib.int_tree_bits(refined.int_params)


def test_rounding_towards_zero_moves_only_what_the_cost_allows():
  """Distortion ignores "a/kernel" and weighs the other tensors 1e6x: the RDOQ pass
  moves kernel integers towards zero (fewer file bits), leaves the others alone,
  keeps the steps, and never raises the real cost; ``max_moves=0`` changes nothing."""
  from moric_jax.coding import weights_coding
  tree = {"net": _tree()}
  target = jax.tree_util.tree_leaves(tree["net"])
  weight = [1e6, 0.0, 1e6]   # leaf order: a/bias, a/kernel, b

  def evaluate(p):
    err = sum(w * jnp.sum((a - b) ** 2) for w, a, b in
              zip(weight, jax.tree_util.tree_leaves(p["net"]), target))
    return {"mse": err, "bpp_latents": jnp.float32(0)}

  kw = dict(lmbda=1e-3, num_pixels=1, distortion_key="mse")
  run = weight_search.run_search
  choice = run(weight_search.search_network(tree, "net", np.asarray([1e-2]), **kw),
               evaluate)
  moved = run(weight_search.round_towards_zero(tree, "net", choice, **kw), evaluate)
  before = jax.tree_util.tree_leaves(choice.int_params)
  after = jax.tree_util.tree_leaves(moved.int_params)
  np.testing.assert_array_equal(after[0], before[0])
  np.testing.assert_array_equal(after[2], before[2])
  assert np.all(np.abs(after[1]) <= np.abs(before[1]))
  assert np.abs(after[1]).sum() < np.abs(before[1]).sum()
  file_bits = lambda c: sum(weights_coding.choose_scale(np.asarray(k))[1]
                            for k in jax.tree_util.tree_leaves(c.int_params))
  cost = lambda c: float(evaluate({"net": weights_lib.dequantize_tree(
      c.int_params, c.steps)})["mse"]) + 1e-3 * file_bits(c)
  assert cost(moved) < cost(choice)
  assert moved.delta == choice.delta and moved.factors == choice.factors
  assert moved.bits == weights_lib.int_tree_bits(moved.int_params)
  same = run(weight_search.round_towards_zero(tree, "net", choice, max_moves=0, **kw),
             evaluate)
  for a, b in zip(jax.tree_util.tree_leaves(same.int_params), before):
    np.testing.assert_array_equal(a, b)

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax import presets
from moric_jax.model import arm as arm_lib
from moric_jax.model.codec import Codec


def laplace_pdf(x, mu, b):
  return np.exp(-np.abs(x - mu) / b) / (2 * b)


@pytest.mark.parametrize("x,mu,b", [(0, 0.0, 1.0), (2, 0.3, 0.7), (-3, 1.2, 2.5),
                                    (0, 0.2, 0.05), (5, -0.4, 0.9)])
def test_laplace_bin_bits_matches_numeric_integral(x, mu, b):
  grid = np.linspace(x - 0.5, x + 0.5, 200001)
  mass = np.trapezoid(laplace_pdf(grid, mu, b), grid)
  expected = min(-np.log2(mass), arm_lib.MAX_BITS)
  got = float(arm_lib.laplace_bin_bits(jnp.float32(x), jnp.float32(mu), jnp.float32(b)))
  assert got == pytest.approx(expected, rel=1e-3, abs=1e-4)


def test_laplace_bits_are_capped_and_finite_far_in_the_tail():
  bits = arm_lib.laplace_bin_bits(jnp.array([1e4, -1e4]), 0.0, 0.05)
  np.testing.assert_allclose(bits, arm_lib.MAX_BITS)
  g = jax.grad(lambda m: jnp.sum(arm_lib.laplace_bin_bits(jnp.array([3.0, -2.0]), m, 0.5)))(
      0.1)
  assert np.isfinite(g)


def test_context_has_24_causal_neighbours():
  offs = arm_lib.context_offsets(3, 3)
  assert len(offs) == 24
  assert all(dy < 0 or (dy == 0 and dx < 0) for dy, dx in offs)


def test_extract_contexts_reads_the_right_neighbours():
  g = jnp.arange(1.0, 1 + 5 * 6).reshape(5, 6)
  ctx = np.asarray(arm_lib.extract_contexts(g, 3, 3)).reshape(5, 6, 24)
  for (dy, dx), col in zip(arm_lib.context_offsets(3, 3), range(24)):
    i, j = 4, 2
    ii, jj = i + dy, j + dx
    want = float(g[ii, jj]) if 0 <= ii < 5 and 0 <= jj < 6 else 0.0
    assert ctx[i, j, col] == want


def test_causality_future_latent_does_not_change_earlier_rates():
  config = presets.default()
  codec = Codec.from_config(config.model, 24, 20)
  params = codec.init(jax.random.PRNGKey(0))
  # A non-trivial ARM so that contexts matter.
  params["arm"] = jax.tree_util.tree_map(
      lambda w: w + 0.3 * jax.random.normal(jax.random.PRNGKey(1), w.shape), params["arm"])
  rng = np.random.default_rng(0)
  grids = [jnp.asarray(rng.integers(-3, 4, size=s).astype(np.float32))
           for s in [(g.shape) for g in params["latents"]]]
  latent_bits = lambda arm_params, g: arm_lib.grids_bits(
      codec.arm.apply, arm_params, g, codec.context_rows, codec.context_cols)
  bits = latent_bits(params["arm"], grids)
  k, (i, j) = 0, (10, 7)
  changed = [g for g in grids]
  changed[k] = changed[k].at[i, j].add(5.0)
  bits2 = latent_bits(params["arm"], changed)
  # Flattened grid-major raster order: everything before (k, i, j) is unchanged.
  pos = i * grids[0].shape[1] + j
  np.testing.assert_array_equal(np.asarray(bits)[:pos], np.asarray(bits2)[:pos])
  assert not np.array_equal(np.asarray(bits)[pos:], np.asarray(bits2)[pos:])
  # Other grids are independent of grid k.
  n0 = grids[0].size
  np.testing.assert_array_equal(np.asarray(bits)[n0:], np.asarray(bits2)[n0:])

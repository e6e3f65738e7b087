import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.model import quantize


def test_soft_round_fixes_integers_and_half_integers():
  x = jnp.arange(-5.0, 5.5, 0.5)
  for t in (0.05, 0.3, 1.0):
    np.testing.assert_allclose(quantize.soft_round(x, t), x, atol=1e-5)


def test_soft_round_limits():
  x = jnp.linspace(-3.3, 3.3, 101)
  # Low temperature -> hard rounding (away from the .5 boundaries).
  away = jnp.abs(x - jnp.floor(x) - 0.5) > 0.05
  np.testing.assert_allclose(quantize.soft_round(x, 0.005)[away], jnp.round(x)[away],
                             atol=1e-4)
  # High temperature -> identity.
  np.testing.assert_allclose(quantize.soft_round(x, 100.0), x, atol=1e-3)


def test_soft_round_is_monotone():
  x = jnp.linspace(-2, 2, 1001)
  assert np.all(np.diff(np.asarray(quantize.soft_round(x, 0.2))) >= -1e-6)


def test_round_ste_forward_rounds_gradient_is_identity():
  x = jnp.array([-1.7, -0.2, 0.49, 0.51, 2.5])
  np.testing.assert_array_equal(quantize.round_ste(x), jnp.round(x))
  g = jax.grad(lambda v: jnp.sum(quantize.round_ste(v) * jnp.arange(5.0)))(x)
  np.testing.assert_allclose(g, jnp.arange(5.0))


def test_kumaraswamy_noise_range_and_uniform_limit():
  key = jax.random.PRNGKey(0)
  n1 = np.asarray(quantize.kumaraswamy_noise(key, (20000,), 1.0))
  n2 = np.asarray(quantize.kumaraswamy_noise(key, (20000,), 3.0))
  assert n1.min() >= -0.5 and n1.max() <= 0.5
  assert abs(n1.std() - np.sqrt(1 / 12)) < 0.01        # uniform
  assert n2.std() < n1.std() * 0.8                       # concentrated near 0
  assert abs(np.median(n2)) < 0.02


def test_hard_mode_rounds():
  x = jnp.array([0.4, 0.6, -1.2])
  r, y = quantize.quantize_for_training(x, mode="hard", temperature=0.1, noise_a=1.0,
                                        key=None)
  np.testing.assert_array_equal(r, jnp.round(x))
  np.testing.assert_array_equal(y, jnp.round(x))

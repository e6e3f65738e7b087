import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax.model import latents


@pytest.mark.parametrize("out_size,in_size", [(16, 8), (17, 9), (33, 5), (8, 8), (24, 1)])
def test_upsampling_matrix_matches_jax_image_resize(out_size, in_size):
  x = np.random.default_rng(0).standard_normal((in_size, 3)).astype(np.float32)
  want = jax.image.resize(jnp.asarray(x), (out_size, 3), method="bilinear")
  got = latents.upsampling_matrix(out_size, in_size) @ x
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_grid_shapes_halve_with_ceil():
  assert latents.grid_shapes(17, 33, 4) == [(17, 33), (9, 17), (5, 9), (3, 5)]


def test_upsample_stack_shape_and_constant_preserved():
  grids = [jnp.full(s, 2.0) for s in latents.grid_shapes(20, 12, 5)]
  up = latents.upsample_stack(grids, 20, 12)
  assert up.shape == (20, 12, 5)
  np.testing.assert_allclose(up, 2.0, rtol=1e-6)

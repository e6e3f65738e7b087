"""Learned hierarchical upsampling (model/upsampling.py): both array modules, the
bilinear start, gradients, and a trained encode that decodes exactly."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import moric_jax
from moric_jax.model import grids as grids_lib
from moric_jax.model import latents, upsampling
from tests.conftest import smooth_image


def _grids(h, w, n, seed=0):
  rng = np.random.default_rng(seed)
  return [rng.standard_normal(s).astype(np.float32) for s in grids_lib.grid_shapes(h, w, n)]


@pytest.mark.parametrize("h,w,n", [(32, 48, 5), (37, 50, 6), (9, 1, 3), (1, 1, 1)])
def test_numpy_and_jax_agree_and_constants_pass(h, w, n):
  g = _grids(h, w, n)
  offsets = np.random.default_rng(1).normal(0, 0.05, (n - 1, 4)).astype(np.float32)
  a = upsampling.upsample_stack(g, offsets)
  b = upsampling.upsample_stack([jnp.asarray(x) for x in g], jnp.asarray(offsets), jnp)
  assert a.shape == (n, h, w)
  np.testing.assert_allclose(a, np.asarray(b), atol=1e-5)
  np.testing.assert_array_equal(a[0], g[0])           # grid 0 passes through
  ones = [np.full(x.shape, 3.0, np.float32) for x in g]
  np.testing.assert_allclose(upsampling.upsample_stack(ones, upsampling.init_offsets(n)),
                             3.0, rtol=1e-6)


def test_zero_offsets_are_bilinear_at_each_2x_step():
  """On even sizes, one 2x step with zero offsets is the bilinear 2x resampling."""
  g = _grids(32, 48, 2)
  got = upsampling.upsample_stack(g, upsampling.init_offsets(2))[1]
  want = np.asarray(latents.upsample_stack([jnp.asarray(x) for x in g], 32, 48))[..., 1]
  np.testing.assert_allclose(got, want, atol=1e-6)


def test_gradient_reaches_every_step():
  g = [jnp.asarray(x) for x in _grids(16, 16, 4)]
  loss = lambda o: jnp.sum(upsampling.upsample_stack(g, o, jnp) ** 2)
  grad = jax.grad(loss)(jnp.zeros((3, 4)))
  assert np.all(np.abs(np.asarray(grad)).sum(axis=1) > 0)


@pytest.mark.parametrize("num_grids", [7, 1])
def test_learned_upsampling_encode_decodes_exactly(num_grids):
  """One grid has no 2x step: no filters are trained or coded."""
  from moric_jax import presets
  config = presets.fast()
  config.model.upsampling = "learned"
  config.model.latents.num_grids = num_grids
  config.num_steps = 60
  config.train.chunk_size = 30
  config.quant.num_deltas = 5
  config.train.warmup.candidates = ()
  image = smooth_image(24, 40, seed=2)
  data, info = moric_jax.encode(image, config)
  meta = moric_jax.info(data)
  assert meta["architecture"]["upsampling"] == "learned"
  assert (meta["delta_upsampling"] is not None) == (num_grids > 1)
  np.testing.assert_array_equal(moric_jax.decode(data), info["reconstruction"])
  assert info["psnr"] > (20.0 if num_grids > 1 else 10.0)


@pytest.mark.parametrize("h,w,n", [(64, 96, 7), (37, 50, 6), (5, 3, 7), (1, 9, 4)])
def test_decoder_band_kernel_matches_the_steps(h, w, n, monkeypatch):
  """The compiled decoder composes each grid's steps into per-output taps; the result
  is the step-by-step reference within float rounding."""
  from moric_jax.decoder import networks
  rng = np.random.default_rng(h * w)
  symbols = [rng.integers(-4, 5, s).astype(np.int32)
             for s in grids_lib.grid_shapes(h, w, n)]
  params = {"offsets": rng.normal(0, 0.1, (n - 1, 4)).astype(np.float32)}
  got = networks.upsample_stack(symbols, 0.4, h, w, params)
  monkeypatch.setattr(networks, "_synth", None)
  want = networks.upsample_stack(symbols, 0.4, h, w, params)
  assert got.shape == want.shape == (h * w, n)
  np.testing.assert_allclose(got, want, atol=2e-6)

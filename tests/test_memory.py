"""Large images: bounded training memory (banded LSNs, chunked ARM) and early refusal."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax import api, presets
from moric_jax.errors import ResourceError
from moric_jax.model import arm
from moric_jax.model.codec import Codec
from moric_jax.model.grids import grid_shapes
from moric_jax.train import resources
from tests.conftest import smooth_image


def _tree_max_diff(a, b):
  return max(float(jnp.abs(x - y).max()) for x, y in
             zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


def test_banded_synthesis_and_chunked_arm_equal_the_whole_image():
  config = presets.default().model
  config.modulation = "progressive_concat"
  m = np.zeros((37, 29), bool)
  m[5:30, 4:20] = True
  whole = Codec.from_config(config, 37, 29, [m])
  banded = Codec.from_config(config, 37, 29, [m], band_pixels=29 * 5, arm_chunk=100)
  key = jax.random.PRNGKey(3)
  params = jax.tree_util.tree_map(lambda x: x + 0.05 * jax.random.normal(key, x.shape),
                                  whole.init(jax.random.PRNGKey(0)))
  rng = np.random.default_rng(0)
  params["latents"] = [jnp.asarray(rng.normal(size=s) * 0.2, jnp.float32)
                       for s in whole.grid_shapes]
  image = jnp.asarray(rng.random((37, 29, 3)), jnp.float32)
  # Jitted, one program per codec (eager dispatch of the bands' and ARM chunks' many
  # small ops took ~70 s): the loss's gradient, with the image and the bits as aux.
  def loss(c, p):
    value, aux, x = c.rd_terms(p, image, 0.01, 1 / 128, mode="hard")
    return value, (x, aux["region_latent_bits"])
  run = lambda c: jax.jit(jax.value_and_grad(lambda p: loss(c, p), has_aux=True))(params)
  ((_, (xa, bits_a)), ga), ((_, (xb, bits_b)), gb) = run(whole), run(banded)
  np.testing.assert_allclose(np.asarray(xa), np.asarray(xb), atol=2e-6)
  np.testing.assert_allclose(np.asarray(bits_a), np.asarray(bits_b), rtol=1e-5)
  assert _tree_max_diff(ga, gb) < 1e-4 * max(1.0, _tree_max_diff(ga, jax.tree_util.tree_map(
      jnp.zeros_like, ga)))


def test_chunked_arm_bits_match():
  a = arm.ARM()
  p = a.init(jax.random.PRNGKey(0), jnp.zeros((1, 24)))
  p = jax.tree_util.tree_map(lambda x: x + 0.1 * jax.random.normal(jax.random.PRNGKey(3),
                                                                   x.shape), p)
  rng = np.random.default_rng(0)
  g = [jnp.asarray(rng.normal(size=s) * 2, jnp.float32) for s in grid_shapes(23, 31, 5)]
  np.testing.assert_allclose(np.asarray(arm.grids_bits(a.apply, p, g, 3, 3)),
                             np.asarray(arm.grids_bits(a.apply, p, g, 3, 3, chunk=97)),
                             atol=1e-5)


def test_estimate_grows_with_pixels_and_bands_above_the_bound():
  c = presets.default()
  small, big = resources.estimate(512, 768, c), resources.estimate(3000, 4000, c)
  assert not small["banded"] and big["banded"]
  assert big["bytes"] > small["bytes"] and big["seconds"] > small["seconds"]
  assert big["bytes"] < 20e9        # a 12 MP photo fits a 24 GB machine


def test_encode_refuses_above_the_memory_limit(tmp_path, capsys):
  config = presets.fast()
  config.max_memory_bytes = int(0.2e9)
  with pytest.raises(ResourceError, match="needs about .* GB of memory"):
    api.encode(smooth_image(16, 16), config)
  from PIL import Image
  from moric_jax import cli
  src = tmp_path / "in.png"
  Image.fromarray((smooth_image(16, 16) * 255).astype(np.uint8)).save(src)
  out = tmp_path / "o.moric"
  assert cli.main(["encode", str(src), "-o", str(out), "--max-memory-gb", "0.2"]) == 1
  err = capsys.readouterr().err
  assert "needs about" in err and "Traceback" not in err and err.count("\n") == 1
  assert not out.exists()

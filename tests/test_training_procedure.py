"""The encoder procedure's switches (issue 25): the quantization proxy, the frozen final
phase, its learning-rate schedule, and clipping / weight decay on the networks only."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from moric_jax import presets
from moric_jax.model import quantize
from moric_jax.model.codec import Codec
from moric_jax.train import overfit, schedules
from moric_jax.train import state as state_lib


def test_one_tensor_proxy_feeds_rate_and_synthesis_the_same_values():
  x = jnp.linspace(-3.0, 3.0, 101)
  key = jax.random.PRNGKey(0)
  kw = dict(mode="soft", temperature=0.3, noise_a=0.2, key=key, noise="gaussian")
  r1, y1 = quantize.quantize_for_training(x, proxy="one_tensor", **kw)
  r2, y2 = quantize.quantize_for_training(x, proxy="two_tensor", **kw)
  np.testing.assert_array_equal(r1, y1)
  np.testing.assert_array_equal(y1, y2)          # same noise, same synthesis input
  assert not np.array_equal(r2, y2)              # the old proxy prices s(x) + n
  # s(s(x) + n) sits closer to the integers than s(x) + n
  assert np.mean(np.abs(r1 - np.round(r1))) < np.mean(np.abs(r2 - np.round(r2)))
  with pytest.raises(ValueError, match="proxy"):
    quantize.quantize_for_training(x, proxy="three", **kw)


def test_final_learning_rate_cosine():
  lr = lambda s: float(schedules.learning_rate(jnp.int32(s), 80, 1e-2, 1e-4, 100))
  assert lr(0) == pytest.approx(1e-2)
  assert lr(80) == pytest.approx(1e-4)
  assert lr(90) == pytest.approx(0.5e-4, rel=1e-5)
  assert lr(100) == pytest.approx(0.0, abs=1e-12)
  const = float(schedules.learning_rate(jnp.int32(95), 80, 1e-2, 1e-4))
  assert const == pytest.approx(1e-4)


def _train(config, image, steps):
  codec = Codec.from_config(config.model, *image.shape[:2])
  opt = overfit.make_optimizer(config.train)
  chunk = overfit.build_chunk_fn(codec, config, opt, steps)
  soft, total = overfit.phase_steps(config)
  hyper = overfit.hyper_params(config, soft, total)
  params = codec.init(jax.random.PRNGKey(0))
  carry, _ = chunk(state_lib.initial(params, opt, jax.random.PRNGKey(1)),
                   jnp.asarray(image), hyper)
  return carry.params


def test_frozen_final_phase_keeps_the_latents_and_trains_the_networks(image32):
  config = presets.default()
  config.num_steps = 12
  config.train.ste_fraction = 0.5          # 6 soft steps, then 6 final steps
  config.train.warmup.candidates = ()
  soft_only = _train(config.copy_and_resolve_references(), image32, 6)
  for phase, moved in (("frozen", False), ("ste", True)):
    config.train.final_phase = phase
    both = _train(config, image32, 12)
    same = [np.array_equal(a, b) for a, b in zip(both["latents"], soft_only["latents"])]
    assert all(same) != moved, phase
    lsn_a, lsn_b = (jax.tree_util.tree_leaves(p["lsn"]) for p in (both, soft_only))
    assert not all(np.array_equal(a, b) for a, b in zip(lsn_a, lsn_b))


def test_clipping_and_decay_on_the_networks_only():
  params = {"latents": [jnp.ones(4)], "lsn": {"w": jnp.ones(3)}}
  grads = {"latents": [jnp.full(4, 100.0)], "lsn": {"w": jnp.full(3, 100.0)}}
  tc = presets.default().train
  tc.optimizer = "adam"
  tc.clip_norm, tc.clip_scope, tc.weight_decay = 0.1, "networks", 0.5
  opt = overfit.make_optimizer(tc)
  upd, _ = opt.update(grads, opt.init(params), params)
  # Adam's first step is sign-like (~1) whatever the clipping; the decay adds 0.5 * w.
  np.testing.assert_allclose(upd["latents"][0], 1.0, rtol=1e-3)
  np.testing.assert_allclose(upd["lsn"]["w"], 1.0 + 0.5, rtol=1e-3)
  # Global clipping scales the latents' gradients too; networks-only leaves them.
  seen = {}
  for scope in ("global", "networks"):
    tc.clip_scope, tc.weight_decay = scope, 0.0
    chain = overfit.make_optimizer(tc)
    st = chain.init(params)
    for _ in range(3):   # Adam's second moment remembers the gradient's size
      upd, st = chain.update(grads, st, params)
    seen[scope] = st
  tc.clip_scope = "sideways"
  with pytest.raises(ValueError, match="clip_scope"):
    overfit.make_optimizer(tc)
  def latent_nu(st):   # Adam's second moment of the latents' gradients
    found = [v["latents"][0] for _, v in optax.tree_utils.tree_get_all_with_path(st, "nu")
             if not isinstance(v["latents"][0], optax.MaskedNode)]
    return float(found[0][0])
  assert latent_nu(seen["global"]) < 1.0 < latent_nu(seen["networks"])


def test_clamped_output_measures_what_the_decoder_shows(image32):
  """With clamp_output the distortion is that of the [0, 1]-clipped image, and pixels
  pushed out of range get no gradient."""
  config = presets.default()
  codec = Codec.from_config(config.model, 32, 32)
  params = codec.init(jax.random.PRNGKey(0))
  params["lsn"] = jax.tree_util.tree_map(lambda w: w * 40.0, params["lsn"])  # overshoot
  kw = dict(mode="hard")
  _, aux_free, recon = codec.rd_terms(params, jnp.asarray(image32), 0.01, 1 / 128, **kw)
  _, aux_clip, clipped = codec.rd_terms(params, jnp.asarray(image32), 0.01, 1 / 128,
                                        clamp_output=True, **kw)
  assert float(jnp.max(jnp.abs(recon - 0.5))) > 0.5          # really out of range
  np.testing.assert_allclose(clipped, np.clip(recon, 0, 1), atol=1e-6)
  want = np.mean((np.clip(np.asarray(recon), 0, 1) - image32) ** 2)
  assert float(aux_clip["mse"]) == pytest.approx(want, rel=1e-5)
  assert float(aux_clip["mse"]) < float(aux_free["mse"])

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax.model import quantize
from moric_jax.model.codec import Codec
from moric_jax.train import batched, overfit, warmup
from moric_jax.train.compress import compress_image


def _with_warmup(config, candidates=(3, 2), steps=(20, 20)):
  config.train.warmup.candidates = candidates
  config.train.warmup.steps = steps
  return config


def test_stages_and_step_accounting(tiny_config):
  cfg = tiny_config
  assert warmup.stages(cfg) == [] and warmup.extra_steps(cfg) == 0
  cfg.num_steps = 2000
  cfg.train.warmup.candidates = (5, 2)       # fraction 0.025: 50 steps per stage
  cfg.train.chunk_size = 50
  assert warmup.stages(cfg) == [(5, 50), (2, 50)]
  assert warmup.extra_steps(cfg) == 4 * 50 + 1 * 50
  assert warmup.warmup_steps(cfg) == 100
  soft, total = overfit.phase_steps(cfg)
  assert total == 2000 - 250 and soft == total - round(cfg.train.ste_fraction * total)
  assert warmup.chunk_length(cfg) == 50
  cfg.train.warmup.steps = (30, 0)           # a stage without steps is dropped
  assert warmup.stages(cfg) == [(5, 30)] and warmup.chunk_length(cfg) == 10


def test_bad_warmup_settings_are_refused(tiny_config):
  tiny_config.train.warmup.candidates = (3, 2)
  tiny_config.train.warmup.steps = (10,)
  with pytest.raises(ValueError, match="step counts"):
    warmup.stages(tiny_config)
  tiny_config.train.warmup.steps = (100, 100)
  tiny_config.num_steps = 300                 # 300 - 300 extra: nothing left
  with pytest.raises(ValueError, match="no training after the warm-up"):
    overfit.phase_steps(tiny_config)


def test_warmup_keeps_the_candidate_with_the_lowest_loss(image32, tiny_config, caplog):
  cfg = tiny_config
  # Adam: batched and one-at-a-time training then differ only by rounding (SOAP's
  # basis refresh amplifies it, see test_batched.py).
  cfg.train.optimizer = "adam"
  cfg.train.warmup.candidates = (3,)
  cfg.train.warmup.steps = (20,)
  cfg.train.chunk_size = 20
  codec = Codec.from_config(cfg.model, 32, 32)
  image = jnp.asarray(image32)
  soft, total = overfit.phase_steps(cfg)
  opt = overfit.make_optimizer(cfg.train)
  hyper = overfit.hyper_params(cfg, soft, total)
  k_init, k_train = jax.random.split(jax.random.PRNGKey(0))
  init = overfit.candidate_state(codec, codec.init(k_init), opt, k_init, k_train)
  evaluate = overfit.Evaluator(codec, image, cfg)
  with caplog.at_level("INFO", logger="moric_jax"):
    kept = warmup.run(codec, image, cfg, init, [hyper],
                      overfit.build_chunk_fn(codec, cfg, opt, 20, batched=True), evaluate)
  assert int(kept.step[0]) == 20                      # at step 20 of the trajectory
  kept_loss = float(evaluate(jax.tree_util.tree_map(lambda x: x[0], kept.params))[0])
  # Each candidate trained alone for the same 20 steps.
  single = overfit.build_chunk_fn(codec, cfg, opt, 20)
  losses = [float(evaluate(single(init(j), image, hyper)[0].params)[0]) for j in range(3)]
  assert len(set(np.round(losses, 6))) == 3         # the candidates really differ
  assert kept_loss == pytest.approx(min(losses), rel=1e-4)
  # The log names the initialisation that goes on (paired comparisons need it).
  assert f"warm-up kept candidate {int(np.argmin(losses))}" in caplog.text


def test_encode_with_warmup_reports_every_step_and_round_trips(image32, tiny_config):
  from moric_jax import api
  cfg = _with_warmup(tiny_config)
  cfg.train.chunk_size = 20
  cfg.num_steps = 160          # 60 candidate steps, then a trajectory of 100
  seen = []
  data, info = api.encode(image32, cfg, on_chunk=seen.append)
  steps = [s.step for s in seen]
  assert steps == sorted(steps) and steps[-1] == cfg.num_steps
  assert [s.phase for s in seen[:2]] == ["warm-up", "warm-up"]
  assert seen[2].phase == "soft" and seen[-1].phase == "final"
  decoded = api.decode(data)
  np.testing.assert_array_equal(decoded, info["reconstruction"])


def test_batched_warmup_matches_one_lambda_at_a_time(image32, tiny_config):
  cfg = _with_warmup(tiny_config, (2,), (20,))
  cfg.train.chunk_size = 20
  cfg.num_steps = 60
  # Adam: SOAP's preconditioner (and the learned upsampling behind it) amplify the
  # float rounding differences of the vmapped program past any tight tolerance.
  cfg.train.optimizer = "adam"
  res = batched.compress_image_batched(image32, cfg, [1e-4, 1e-2])
  for lmbda, r in zip([1e-4, 1e-2], res):
    c = cfg.copy_and_resolve_references()
    c.lmbda = lmbda
    alone = compress_image(image32, c)
    assert r.metrics["psnr"] == pytest.approx(alone.metrics["psnr"], abs=0.05)
  assert res[1].metrics["bpp_latents"] < res[0].metrics["bpp_latents"]


def test_gaussian_noise_and_its_level_from_lambda(tiny_config):
  n = np.asarray(quantize.training_noise("gaussian", jax.random.PRNGKey(0), (40000,), 0.2))
  assert abs(n.std() - 0.2) < 0.005 and abs(n.mean()) < 0.005
  with pytest.raises(ValueError, match="unknown training noise"):
    quantize.training_noise("laplace", jax.random.PRNGKey(0), (3,), 0.2)
  # Cool-chic 5's rule: (0.747 - 0.432 log10 lambda) / 10.
  assert overfit.noise_std_from_lmbda(1e-3) == pytest.approx(0.2043)
  cfg = tiny_config
  cfg.train.noise = "gaussian"
  assert float(overfit.hyper_params(cfg, 90, 100, 1e-3)["noise_start"]) == \
      pytest.approx(0.22)
  cfg.train.noise_from_lmbda = True
  assert float(overfit.hyper_params(cfg, 90, 100, 1e-3)["noise_start"]) == \
      pytest.approx(0.2043, abs=1e-4)


def test_unknown_optimizer_is_refused(tiny_config):
  tiny_config.train.optimizer = "lion"
  with pytest.raises(ValueError, match="train.optimizer"):
    overfit.make_optimizer(tiny_config.train)


def test_each_lambda_gets_its_own_noise_start(tiny_config):
  tiny_config.train.noise = "gaussian"
  tiny_config.train.noise_from_lmbda = True
  hypers = [overfit.hyper_params(tiny_config, 90, 100, l) for l in (1e-4, 1e-2)]
  starts = [float(h["noise_start"]) for h in hypers]
  assert starts == pytest.approx([overfit.noise_std_from_lmbda(1e-4),
                                  overfit.noise_std_from_lmbda(1e-2)], abs=1e-6)
  assert [float(h["lmbda"]) for h in hypers] == pytest.approx([1e-4, 1e-2])

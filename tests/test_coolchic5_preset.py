"""The `coolchic5` preset as Cool-chic 5.0.1's intra preset, phase for phase (issue 34).

Its plan by budget (warm-up stages of 50 / 100 / 200 / 400 steps, exactly 500 final
steps), the warm-up's own constant settings, a fresh optimizer state at the start of
the core (soft) and final phases, and a resume across the phase boundary.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax import api, presets
from moric_jax.model.codec import Codec
from moric_jax.train import loop, overfit, plan
from moric_jax.train.state import initial


@pytest.mark.parametrize("num_steps,stage", [(2000, 50), (5000, 100), (10000, 200),
                                             (15000, 400), (3999, 50), (4000, 100)])
def test_plan_by_budget(num_steps, stage):
  config = presets.coolchic5()
  config.num_steps = num_steps
  p = plan.from_config(config)
  assert p.warmup == (plan.WarmupStage(5, stage), plan.WarmupStage(2, stage))
  # Every candidate step comes out of the budget; the kept one's 2 stages go on.
  assert p.trajectory_steps == num_steps - 5 * stage
  assert p.final.steps == 500 and p.final.latents == "frozen" and p.final.fresh_optimizer
  core = num_steps - 7 * stage - 500          # Cool-chic's iter_core_training
  assert p.soft.steps - p.soft.start == core and p.soft.start == 2 * stage
  assert p.soft.fresh_optimizer and p.soft.hard_check_every == 100
  w = p.warmup_settings
  assert (w.schedule, w.temperature, w.noise_std, w.latent_betas, w.precondition_every) \
      == ("own", 0.35, None, (0.725, 0.97), 1)
  text = p.describe()
  assert f"warm-up 5x{stage} -> 2x{stage} (own" in text and f"soft {core} steps" in text
  assert "final 500 steps" in text and text.count("fresh optimizer") == 2


def test_the_default_plan_is_unchanged():
  config = presets.default()
  config.num_steps = 2000
  p = plan.from_config(config)
  assert p.warmup_settings.schedule == "shared" and p.soft.start == 0
  assert not p.soft.fresh_optimizer and not p.final.fresh_optimizer
  assert p.final.steps == 88 and "fresh" not in p.describe()


@pytest.mark.parametrize("fields,match", [
    ({"train.ste_fraction": 0.05}, "final_steps .* or .*ste_fraction"),   # both set
    ({"train.final_steps": None}, "final_steps .* or .*ste_fraction"),    # neither
    ({"train.final_steps": 1750}, "final_steps must be in"),
    ({"train.final_steps": 1700}, "leave no soft phase"),
    ({"train.warmup.schedule": "mine"}, "warmup.schedule"),
    ({"train.final_optimizer": "reset"}, "final_optimizer"),
    ({"train.noise": "kumaraswamy"}, "needs train.noise='gaussian'"),
    ({"train.warmup.latent_betas": (0.9, 1.0)}, "latent_betas"),
    ({"train.warmup.budget_limits": (4000, 9000)}, "budget_limits"),
])
def test_bad_phase_settings_are_refused(fields, match):
  config = presets.coolchic5()
  config.num_steps = 2000
  for key, value in fields.items():
    *path, last = key.split(".")
    node = config
    for part in path:
      node = node[part]
    node[last] = value
  with pytest.raises(ValueError, match=match):
    plan.from_config(config)


def _tiny(config=None):
  """Cool-chic 5's phases at 32x32: warm-up 2 x 10 steps (own settings), soft phase to
  step 40 (hard-loss check every 20), 20 final steps; chunks of 10."""
  config = presets.coolchic5_phases(config or presets.default())
  config.num_steps = 70                 # 10 candidate steps that do not go on
  config.train.chunk_size = 10
  config.train.warmup.candidates = (2,)
  config.train.warmup.steps = (10,)
  config.train.final_steps = 20
  config.train.hard_check_every = 20
  config.lmbda = 1e-3
  config.quant.num_deltas = 3
  config.quant.tensor_steps = False     # the finalize is not what is tested here
  config.quant.rdoq = False
  return config


def test_the_warmup_program_has_constant_settings(image32, monkeypatch):
  config = _tiny()
  p = plan.from_config(config)
  real = overfit.loss_fn

  def spy(*args, **kwargs):    # the temperature and noise level each step sees
    loss, aux = real(*args, **kwargs)
    return loss, dict(aux, temperature=jnp.asarray(kwargs["temperature"], jnp.float32),
                      noise=jnp.asarray(kwargs["noise_a"], jnp.float32))
  monkeypatch.setattr(overfit, "loss_fn", spy)
  codec = Codec.from_config(config.model, 32, 32)
  image = jnp.asarray(image32)
  hyper = overfit.hyper_params(config, p.soft.steps, p.trajectory_steps)
  params = codec.init(jax.random.PRNGKey(0))
  warm_opt = overfit.make_optimizer(config.train, p.warmup_settings)
  main_opt = overfit.make_optimizer(config.train)
  warm = overfit.build_chunk_fn(codec, config, warm_opt, 1, warmup=True)
  main = overfit.build_chunk_fn(codec, config, main_opt, 1)

  def one_step(chunk, opt, step):
    """(temperature, noise, largest latent move) of one step at ``step`` from a fresh
    optimizer state: Adam's first move is the learning rate times about +-1."""
    state = initial(params, opt, jax.random.PRNGKey(1))._replace(step=jnp.int32(step))
    new, aux = chunk(state, image, hyper)
    move = max(float(jnp.max(jnp.abs(a - b)))
               for a, b in zip(jax.tree_util.tree_leaves(new.params["latents"]),
                               jax.tree_util.tree_leaves(params["latents"])))
    return float(aux["temperature"]), float(aux["noise"]), move

  noise = overfit.noise_std_from_lmbda(1e-3)        # (0.747 + 3 * 0.432) / 10
  for step in (0, 9, 35):                            # constant whatever the step
    t, n, move = one_step(warm, warm_opt, step)
    assert t == pytest.approx(0.35) and n == pytest.approx(noise, rel=1e-6)
    assert move == pytest.approx(1e-2, rel=1e-3)
  # The core phase's schedules count from its own first step (10), not from 0.
  t, n, move = one_step(main, main_opt, p.soft.start)
  assert (t, n) == (pytest.approx(0.35), pytest.approx(0.22))
  assert move == pytest.approx(1e-2, rel=1e-3)
  t, n, move = one_step(main, main_opt, p.soft.start + 15)      # half-way: 15 of 30
  assert t == pytest.approx(0.35 + 0.5 * (0.08 - 0.35), rel=1e-5)
  assert n == pytest.approx(0.22 + 0.5 * (0.15 - 0.22), rel=1e-5)
  assert move == pytest.approx(0.5e-2, rel=1e-3)


class _Recorder:
  """A checkpointer that saves nothing: records each chunk's optimizer step counts."""

  def __init__(self):
    self.counts = {}

  def restore(self, carry_like):
    return 0, None

  def maybe_save(self, step, carry, force=False):
    leaves = jax.tree_util.tree_flatten_with_path(carry["opt_state"])[0]
    self.counts[step] = sorted({int(np.max(v)) for path, v in leaves
                                if "count" in jax.tree_util.keystr(path)})

  def close(self):
    pass


def test_the_optimizer_state_is_fresh_at_the_core_and_final_starts(image32):
  config = _tiny()
  codec = Codec.from_config(config.model, 32, 32)
  rec = _Recorder()
  loop.fit(codec, image32, config, [1e-3], jax.random.PRNGKey(0), checkpointer=rec)
  # Chunks end at 20, 30, 40 (soft, from the warm-up's end at 10), 50, 60 (final); the
  # kept candidate's 10 warm-up updates are forgotten at 10, the soft phase's at 40 (a
  # state carried through would count 20, 30, 40, 50, 60).
  assert rec.counts == {20: [10], 30: [20], 40: [30], 50: [10], 60: [20]}


class Interrupt(Exception):
  pass


def test_a_resume_at_the_final_phase_start_writes_the_uninterrupted_file(image32,
                                                                          tmp_path):
  config = _tiny()
  full = api.encode(image32, config)[0]
  config.checkpoint.dir = str(tmp_path / "ckpt")
  config.checkpoint.every_steps = 10

  def stop(stats):          # killed right after the soft phase's last chunk (step 40)
    if stats.phase == "soft" and stats.step >= 40 + 10:    # + the 10 candidate steps
      raise Interrupt
  with pytest.raises(Interrupt):
    api.encode(image32, config, on_chunk=stop)
  assert (tmp_path / "ckpt" / "step_000000040").is_dir()
  assert api.encode(image32, config)[0] == full

"""The typed encode plan: every phase read from the config once, and validated there."""
import pytest

from moric_jax import presets
from moric_jax.train import overfit, plan


def test_default_plan_names_every_phase_in_order():
  config = presets.default()
  config.num_steps = 2000
  p = plan.from_config(config)
  # Warm-up 5 x 50 -> 2 x 50 (2.5% of 2,000 each); 350 candidate steps do not go on.
  assert p.warmup == (plan.WarmupStage(5, 50), plan.WarmupStage(2, 50))
  assert p.trajectory_steps == 2000 - 4 * 50 - 1 * 50
  assert p.final.steps == round(0.05 * p.trajectory_steps) and p.final.latents == "frozen"
  assert (p.soft.steps, p.trajectory_steps) == overfit.phase_steps(config)
  text = p.describe()
  assert text.index("warm-up") < text.index("soft") < text.index("final") \
      < text.index("weight steps")
  assert "soft 1562 steps" in text and "final 88 steps" in text
  assert p.as_dict()["weight_search"]["per_tensor"] is True


def test_coolchic5_plan_has_hard_loss_checks_and_rdoq():
  p = plan.from_config(presets.coolchic5())
  assert p.soft.hard_check_every == 100 and p.weight_search.rdoq
  assert "hard-loss check every 100" in p.describe() and "RDOQ" in p.describe()


@pytest.mark.parametrize("field,value,match", [
    ("train.final_phase", "thaw", "train.final_phase"),
    ("train.optimizer", "lion", "train.optimizer"),
    ("train.noise", "laplace", "train.noise"),
    ("train.clip_scope", "layer", "train.clip_scope"),
    ("train.ste_fraction", 1.5, "ste_fraction"),
    ("train.hard_check_every", -1, "hard_check_every"),
    ("quant.num_deltas", 0, "num_deltas"),
    ("num_steps", 100, "no training after the warm-up"),
])
def test_a_bad_field_is_refused_before_any_training(field, value, match):
  config = presets.default()
  config.num_steps = 2000
  node = config
  *path, last = field.split(".")
  for part in path:
    node = node[part]
  node[last] = value
  if field == "num_steps":
    config.train.warmup.steps = (60, 60)
  with pytest.raises(ValueError, match=match):
    plan.from_config(config)

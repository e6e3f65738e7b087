import logging

import numpy as np
import pytest

from moric_jax.train import loop
from moric_jax.train.compress import compress_image


@pytest.mark.parametrize("hard_check_every", [0, 20])
def test_resume_from_checkpoint_gives_the_same_result(image32, tiny_config, tmp_path,
                                                       caplog, hard_check_every):
  tiny_config.num_steps = 80
  tiny_config.train.chunk_size = 20
  # With hard-loss checks (steps 20, 40, 60 and the soft end, 76) the best checked
  # model rides in the checkpointed carry: the resumed run reloads the same one.
  tiny_config.train.hard_check_every = hard_check_every
  full = compress_image(image32, tiny_config)

  tiny_config.checkpoint.dir = str(tmp_path / "ckpt")
  tiny_config.checkpoint.every_steps = 20
  stop_at = 40

  class Interrupt(Exception):
    pass

  def interrupt(stats):
    if stats.step >= stop_at:
      raise Interrupt

  with pytest.raises(Interrupt):
    compress_image(image32, tiny_config, on_chunk=interrupt)
  seen = []
  with caplog.at_level(logging.WARNING, logger="moric_jax"):
    resumed = compress_image(image32, tiny_config, on_chunk=seen.append)
  assert "resuming from checkpoint at step 40" in caplog.text
  assert [s.step for s in seen] == ([60, 76, 80] if hard_check_every else [60, 80])
  np.testing.assert_array_equal(resumed.reconstruction, full.reconstruction)
  assert resumed.metrics["bpp_estimated"] == full.metrics["bpp_estimated"]


def test_resume_after_the_warm_up_gives_the_same_result(image32, tiny_config, tmp_path):
  """The default warms up (5 -> 2 candidates) before its checkpointed trajectory: an
  encode interrupted after the warm-up resumes to the uninterrupted result."""
  tiny_config.num_steps = 200
  tiny_config.train.chunk_size = 20
  tiny_config.train.warmup.candidates = (3, 2)
  tiny_config.train.warmup.fraction = 0.05        # 10 steps per stage
  full = compress_image(image32, tiny_config)
  tiny_config.checkpoint.dir = str(tmp_path / "ckpt")
  tiny_config.checkpoint.every_steps = 20

  class Interrupt(Exception):
    pass

  def interrupt(stats):
    if stats.phase != "warm-up" and stats.step >= 120:
      raise Interrupt

  with pytest.raises(Interrupt):
    compress_image(image32, tiny_config, on_chunk=interrupt)
  resumed = compress_image(image32, tiny_config)
  np.testing.assert_array_equal(resumed.reconstruction, full.reconstruction)
  assert resumed.metrics["bpp_estimated"] == full.metrics["bpp_estimated"]


def test_checkpoint_dir_of_another_run_is_refused(image32, tiny_config, tmp_path):
  tiny_config.num_steps = 20
  tiny_config.train.chunk_size = 20
  tiny_config.checkpoint.dir = str(tmp_path / "ckpt")
  compress_image(image32, tiny_config)
  tiny_config.lmbda = 0.5
  with pytest.raises(ValueError, match="another run"):
    compress_image(image32, tiny_config)


def test_diverging_chunk_is_rolled_back_with_lower_learning_rate(image32, tiny_config,
                                                                 caplog):
  tiny_config.num_steps = 40
  tiny_config.train.chunk_size = 20
  tiny_config.train.learning_rate = 1e30   # Explodes.
  with caplog.at_level(logging.WARNING, logger="moric_jax"):
    try:
      result = compress_image(image32, tiny_config)
      assert np.isfinite(result.metrics["psnr"])
    except loop.TrainingDivergedError as e:
      assert "not finite" in str(e)
  assert "rolled back" in caplog.text

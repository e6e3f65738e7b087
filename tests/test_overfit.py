import subprocess
import sys
from pathlib import Path

import numpy as np

from moric_jax import image_io
from moric_jax.eval import metrics
from moric_jax.train.compress import compress_image

ROOT = Path(__file__).resolve().parents[1]


def test_overfitting_beats_mean_colour_by_far(image32, tiny_config):
  seen = []
  result = compress_image(image32, tiny_config, on_chunk=seen.append)
  target = image_io.to_uint8(image32)
  mean_colour = np.broadcast_to(
      image_io.to_uint8(image32.reshape(-1, 3).mean(0)), target.shape)
  baseline = metrics.psnr_uint8(mean_colour, target)
  m = result.metrics
  assert m["psnr"] > baseline + 8.0, (m["psnr"], baseline)
  assert m["psnr"] == metrics.psnr_uint8(result.reconstruction, target)
  assert m["bpp_latents"] > 0 and m["bpp_weights"] > 0
  assert m["bpp_estimated"] == m["bpp_latents"] + m["bpp_weights"]
  # Progress was reported chunk by chunk, in order, ending at num_steps.
  assert [s.step for s in seen] == [40, 80, 120]
  assert seen[-1].phase == "final"
  # Integer symbols match the grid shapes.
  assert [s.shape for s in result.symbols] == [tuple(p.shape) for p in result.params["latents"]]


def test_same_seed_same_result(image32, tiny_config):
  tiny_config.num_steps = 40
  a = compress_image(image32, tiny_config)
  b = compress_image(image32, tiny_config)
  np.testing.assert_array_equal(a.reconstruction, b.reconstruction)
  assert a.metrics["bpp_estimated"] == b.metrics["bpp_estimated"]


def test_higher_lambda_spends_fewer_bits(image32, tiny_config):
  tiny_config.num_steps = 120
  low = compress_image(image32, tiny_config).metrics
  tiny_config.lmbda = 0.05
  high = compress_image(image32, tiny_config).metrics
  assert high["bpp_latents"] < low["bpp_latents"]


def test_compress_launcher_bad_input_is_one_line(tmp_path):
  cmd = [sys.executable, "-m", "experiments.compress", "--config=configs/fast.py",
         f"--config.image_path={tmp_path / 'missing.png'}",
         f"--config.output_dir={tmp_path / 'o'}"]
  proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr
  assert "not found" in proc.stderr

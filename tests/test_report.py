"""One report schema (eval/report.py) for `moric encode --json`, experiments.compress's
metrics.json and a sweep row: the same fields, the same values for the same encode."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from moric_jax.eval import report
from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """from moric_jax import presets
def get_config():
  c = presets.default()
  c.num_steps = 20
  c.train.chunk_size = 10
  c.quant.num_deltas = 5
  c.train.warmup.candidates = ()   # (tests/test_warmup.py): two fewer programs to compile
  return c
"""


def _run(module, *args):
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  p = subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=ROOT, env=env,
                     capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  return p


def test_three_front_ends_one_schema(tmp_path):
  img = (smooth_image(16, 24, seed=7) * 255).round().astype(np.uint8)
  src = tmp_path / "pic.png"
  Image.fromarray(img).save(src)
  cfg = tmp_path / "cfg.py"
  cfg.write_text(CONFIG)
  cli = json.loads(_run("moric_jax", "encode", src, "-o", tmp_path / "cli.moric",
                        "--config", cfg, "--lmbda", "0.002", "--json").stdout)
  _run("experiments.compress", f"--config={cfg}", f"--config.image_path={src}",
       f"--config.output_dir={tmp_path / 'compress'}")
  metrics = json.loads((tmp_path / "compress" / "metrics.json").read_text())
  _run("experiments.sweep", "--config=configs/sweep.py", f"--config.sweep.images={src}",
       "--config.sweep.lmbdas=0.002", f"--config.output_dir={tmp_path / 'sweep'}",
       "--config.num_steps=20", "--config.train.chunk_size=10",
       "--config.quant.num_deltas=5", "--config.train.warmup.candidates=()",
       "--config.sweep.baselines=()", "--config.sweep.anchors=none")
  with (tmp_path / "sweep" / "results.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 1 and list(rows[0]) == list(report.FIELDS)
  for rep in (cli, metrics):
    assert set(report.FIELDS) <= set(rep), set(report.FIELDS) - set(rep)
    assert rep["config"]["num_steps"] == 20 and rep["config"]["lmbda"] == 0.002
  # The same encode (same config, seed, machine) gives the same figures in all three.
  assert cli["config_hash"] == metrics["config_hash"]
  for k in ("image", "height", "width", "bytes", "bpp", "bpp_estimated", "bpp_latents",
            "bpp_weights", "bpp_contours", "bpp_header", "psnr", "ms_ssim",
            "macs_per_pixel", "steps", "seed", "git_commit", "lmbda"):
    assert cli[k] == metrics[k], k
    assert str(rows[0][k]) == str(cli[k]), (k, rows[0][k], cli[k])
  assert cli["image"] == "pic" and cli["steps"] == 20
  assert cli["bytes"] == (tmp_path / "cli.moric").stat().st_size
  assert cli["bpp"] == pytest.approx(8 * cli["bytes"] / (16 * 24))
  parts = sum(cli[k] for k in ("bpp_latents", "bpp_weights", "bpp_contours"))
  assert parts == pytest.approx(cli["bpp_estimated"])
  assert 0 < cli["ms_ssim"] <= 1 and cli["steps_per_second"] > 0
  assert cli["encode_seconds"] > 0 and cli["decode_seconds"] > 0


def test_config_hash_ignores_per_run_fields():
  from moric_jax import presets
  a, b = presets.default(), presets.default()
  b.image_path, b.output_dir, b.lmbda = "x.png", "runs/y", 0.01
  assert report.config_hash(a) == report.config_hash(b)
  b.num_steps = 7
  assert report.config_hash(a) != report.config_hash(b)

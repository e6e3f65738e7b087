"""README command 1 (experiments.compress): a real file, its size, its decoded PNG."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


def test_compress_writes_the_file_and_reports_its_real_bpp(tmp_path):
  import jax
  from moric_jax import api
  img = (smooth_image(16, 24, seed=2) * 255).astype(np.uint8)
  Image.fromarray(img).save(tmp_path / "tiny.png")
  out = tmp_path / "out"
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  p = subprocess.run([sys.executable, "-m", "experiments.compress",
                      "--config=configs/default.py", f"--config.image_path={tmp_path}/tiny.png",
                      f"--config.output_dir={out}", "--config.num_steps=20",
                      "--config.train.chunk_size=10", "--config.quant.num_deltas=5"],
                     cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert p.returncode == 0, p.stderr[-3000:]
  moric = out / "tiny.moric"
  size = moric.stat().st_size
  m = re.search(r"(\d+) bytes = ([0-9.]+) bpp", p.stdout)
  assert m, p.stdout
  assert int(m.group(1)) == size
  assert float(m.group(2)) == round(8 * size / (16 * 24), 4)
  assert re.search(r"PSNR [0-9.]+ dB", p.stdout)
  assert re.search(r"encode [0-9.]+ s, decode [0-9.]+ s", p.stdout)
  metrics = json.loads((out / "metrics.json").read_text())
  assert metrics["bytes"] == size and metrics["bpp"] == 8 * size / (16 * 24)
  decoded = np.asarray(Image.open(out / "tiny_decoded.png"))
  assert np.array_equal(decoded, api.decode(moric.read_bytes()))
  # No alarming start-up lines (the JAX TPU probe), a progress bar on stderr.
  assert "Unable to initialize backend" not in p.stderr + p.stdout
  assert "Traceback" not in p.stderr and "20/20" in p.stderr

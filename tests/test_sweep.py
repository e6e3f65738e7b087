import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


def _run(args, timeout=900):
  import os
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return subprocess.run([sys.executable, "-m", "experiments.sweep", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=env)


def test_tiny_sweep_writes_results_plot_and_bd_and_resumes(tmp_path):
  """The inline launcher (one process, the same job code as local/SLURM jobs)."""
  for i in range(2):
    img = (smooth_image(32, 32, seed=i, noise=0.0) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"img{i}.png")
  out = tmp_path / "sweep"
  args = ["--config=configs/sweep.py", f"--config.images={tmp_path}/img*.png",
          "--config.lmbdas=0.0005,0.02", f"--config.output_dir={out}",
          "--config.num_steps=40", "--config.train.chunk_size=20",
          "--config.quant.num_deltas=7", "--config.baselines=('jpeg','webp')"]
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with (out / "results.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4
  assert {r["image"] for r in rows} == {"img0", "img1"}
  for r in rows:
    assert float(r["bpp"]) > 0 and np.isfinite(float(r["psnr"]))
    assert 0 < float(r["ms_ssim"]) <= 1
    assert r["git_commit"] is not None and r["config_hash"]
    f = out / "files" / f"{r['image']}_lmbda{float(r['lmbda']):g}.moric"
    assert f.stat().st_size == int(r["bytes"])
  # Higher lambda -> fewer bits on each image.
  for name in ("img0", "img1"):
    by = {float(r["lmbda"]): float(r["bpp"]) for r in rows if r["image"] == name}
    assert by[0.02] < by[0.0005]
  bd = json.loads((out / "bd.json").read_text())
  assert set(bd) == {"jpeg", "webp"}
  assert any(v["bd_rate_percent"] is not None and np.isfinite(v["bd_rate_percent"])
             for v in bd.values()), bd
  assert (out / "rd.png").stat().st_size > 1000
  assert "mean of 2" in (out / "results.md").read_text()
  assert json.loads((out / "sweep.json").read_text())["images"] == [
      f"{tmp_path}/img0.png", f"{tmp_path}/img1.png"]
  # A rerun finds every row done and trains nothing.
  again = _run(args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "4 rows already done" in again.stdout
  with (out / "results.csv").open() as f:
    assert len(list(csv.DictReader(f))) == 4


def test_sweep_bad_glob_is_one_line(tmp_path):
  proc = _run(["--config=configs/sweep.py", f"--config.images={tmp_path}/none*.png",
               f"--config.output_dir={tmp_path}/o"], timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "no image matches" in proc.stderr


def test_sweep_unknown_launcher_is_one_line(tmp_path):
  proc = _run(["--config=configs/sweep.py", "--config.launcher=cloud",
               f"--config.output_dir={tmp_path}/o"], timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "inline, local, slurm" in proc.stderr


def test_slurm_launcher_without_slurm_is_one_line(tmp_path):
  img = (smooth_image(16, 16) * 255).astype(np.uint8)
  Image.fromarray(img).save(tmp_path / "a.png")
  proc = _run(["--config=configs/sweep.py", "--config.launcher=slurm",
               f"--config.images={tmp_path}/a.png", f"--config.output_dir={tmp_path}/o"],
              timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "slurm" in proc.stderr.lower()

"""The prepared GPU check (experiments.gpu_check), run with tiny settings on the CPU."""
import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


def _run(args):
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return subprocess.run([sys.executable, "-m", "experiments.gpu_check", *args], cwd=ROOT,
                        env=env, capture_output=True, text=True, timeout=900)


def test_gpu_check_batches_by_shape_writes_rows_and_one_archive(tmp_path):
  for name, (h, w), seed in (("a", (16, 16), 0), ("b", (16, 16), 1), ("c", (16, 12), 2)):
    Image.fromarray((smooth_image(h, w, seed=seed) * 255).astype(np.uint8)).save(
        tmp_path / f"{name}.png")
  out = tmp_path / "check"
  tiny = [f"--images={tmp_path}/*.png", "--lmbdas=0.001,0.02", "--steps=20",
          "--chunk_size=10", "--num_deltas=5"]
  p = _run(tiny + [f"--out={out}"])
  assert p.returncode == 0, p.stderr[-3000:]
  assert "3 images in 2 shape batches" in p.stdout
  assert p.stdout.count("lambda-steps/s") == 2
  assert p.stdout.count("files written") == 2   # packaged on threads, batch by batch
  with (out / "rows.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert {(r["image"], float(r["lmbda"])) for r in rows} == {
      (i, l) for i in "abc" for l in (0.001, 0.02)}
  for r in rows:
    assert (out / "files" / f"{r['image']}_lmbda{float(r['lmbda']):g}.moric"
            ).stat().st_size == int(r["bytes"])
  summary = json.loads((out / "summary.json").read_text())
  assert summary["images_done"] == 3 and [b["entries"] for b in summary["batches"]] == [4, 2]
  assert summary["errors"] == [] and summary["search_batch"] == 64
  with tarfile.open(tmp_path / "check.tar.gz") as tar:
    names = tar.getnames()
  assert "check/rows.csv" in names and "check/summary.json" in names
  assert sum(n.endswith(".moric") for n in names) == 6
  # A limit that the first batch already uses up: it stops before the second, and
  # still writes the rows, the summary and the archive.
  p = _run(tiny + [f"--out={tmp_path / 'short'}", "--time_limit_s=1", "--reserve_s=0"])
  assert p.returncode == 0, p.stderr[-3000:]
  assert "stopping before batch 2/2" in p.stdout
  summary = json.loads((tmp_path / "short" / "summary.json").read_text())
  assert summary["images_done"] == 2 and summary["rows"] == 4
  assert (tmp_path / "short.tar.gz").exists()

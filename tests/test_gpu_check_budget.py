"""experiments.gpu_check's time budget counts the packaging still running on its threads
(training and packaging faked: no JAX program runs, a few seconds in all)."""
import json
import time

import numpy as np
import pytest
from PIL import Image

from experiments import gpu_check

PACK_S = 0.3   # seconds one fake file takes to package


def test_batch_fits_counts_queued_packaging_and_the_batch_own():
  # Training alone fits; with 4 s of packaging still queued beside it, it does not.
  assert gpu_check.batch_fits(10, 5, 0, 0, time_limit=20, reserve=4)
  assert not gpu_check.batch_fits(10, 5, 9, 0, time_limit=20, reserve=4)
  # Queued packaging shorter than the training runs beside it: only the longer counts.
  assert gpu_check.batch_fits(10, 5, 4, 1, time_limit=20, reserve=4)
  # The batch's own packaging comes after its training.
  assert not gpu_check.batch_fits(10, 5, 0, 2, time_limit=20, reserve=4)


class SlowPackager(gpu_check.Packager):
  """Packaging that takes PACK_S seconds a file and writes nothing but its row."""

  def _package(self, name, image, lmbda, result, config):
    t0 = time.perf_counter()
    time.sleep(PACK_S)
    with self.lock:
      self.package_seconds += time.perf_counter() - t0
      self.files_timed += 1
    return {"image": name, "lmbda": lmbda, "bpp": 1.0, "psnr": 30.0, "decode_seconds": 0.0}


def test_packager_estimates_what_is_still_queued(tmp_path):
  pk = SlowPackager(tmp_path, workers=2, chash="c", commit="")
  assert pk.seconds_left() == 0.0 and pk.seconds_for(4) == 0.0   # nothing measured
  pk.submit({"batch": 1}, [(f"i{k}", None, 0.01, None, None) for k in range(6)])
  t0 = time.perf_counter()
  left = pk.seconds_left()     # waits for the first file: 2 workers, 6 files
  waited = time.perf_counter() - t0
  assert PACK_S * 0.8 < waited < PACK_S * 2.5
  # 4 or 5 files left on 2 threads: 2 or 3 waves.
  assert 2 * PACK_S * 0.9 <= left <= 3 * PACK_S * 1.6
  assert pk.seconds_for(3) == pytest.approx(2 * pk.seconds_per_file())
  pk.close()
  assert pk.seconds_left() == 0.0 and pk.pending == 0 and len(pk.rows) == 6


def _fake_training(monkeypatch, calls):
  class Result:
    metrics = {"train_seconds": 0.01}

  def compress_images_batched(images, config, lmbdas):
    calls.append(len(images))
    return [[Result() for _ in lmbdas] for _ in images]

  monkeypatch.setattr("moric_jax.train.batched.compress_images_batched",
                      compress_images_batched)
  monkeypatch.setattr("moric_jax.sweeps.launch.default_compile_cache", lambda: None)
  monkeypatch.setattr(gpu_check, "Packager", SlowPackager)


@pytest.mark.parametrize("limit, batches", [(1.5, 1), (60.0, 2)])
def test_gpu_check_stops_when_queued_packaging_would_overrun(tmp_path, monkeypatch, capsys,
                                                             limit, batches):
  """Training takes no time here, packaging 4 x 0.3 s on one thread: the old check
  (elapsed + last batch's training) would start batch 2 under a 1.5 s limit and end
  past it; now batch 2 starts only when its queue and its own files fit."""
  rng = np.random.default_rng(0)
  for name, (h, w) in (("a", (16, 16)), ("b", (16, 16)), ("c", (16, 12))):
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / f"{name}.png")
  calls = []
  _fake_training(monkeypatch, calls)
  out = tmp_path / "check"
  t0 = time.perf_counter()
  code = gpu_check.main([f"--images={tmp_path}/*.png", f"--out={out}", "--lmbdas=0.001,0.02",
                         "--steps=5", "--package_workers=1", f"--time_limit_s={limit}",
                         "--reserve_s=0"])
  wall = time.perf_counter() - t0
  text = capsys.readouterr().out
  assert code == 0 and len(calls) == batches
  summary = json.loads((out / "summary.json").read_text())
  assert len(summary["batches"]) == batches
  assert summary["rows"] == 4 + 2 * (batches - 1)
  assert summary["package_seconds_per_file"] == pytest.approx(PACK_S, rel=0.5)
  if batches == 1:
    assert "stopping before batch 2/2" in text and "packaging still queued about 1 s" in text
    assert wall < limit + 0.5          # the limit held, packaging included
  assert (tmp_path / "check.tar.gz").exists()

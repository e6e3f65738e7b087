"""The encoder's files, pinned byte for byte (issue 33's guard for reworking the encode).

Six small encodes (one 32x32 image, 40 steps) write their files; each file's SHA-256 is
compared with the digest recorded when the procedure was last changed on purpose:
1 region, 2 regions (the modular layout), object-only, lambda-batched, image-batched, and
encodes killed and resumed from their checkpoints (single and batched), which must give
the uninterrupted files. XLA's float results depend on the CPU's instruction set, on
the jax version and on XLA's optimisation level, so the digests hold for the machine they
were recorded on (``FINGERPRINT``); elsewhere the digests are skipped but the resume
equalities are still checked.

Two tables: ``PINNED_FULL_XLA``, the files a user's encode writes (XLA's full
optimisation), recorded with the two training loops of before issue 33, and ``PINNED``,
the same encodes at the tests' cheap optimisation level (tests/conftest.py), recorded
from the code that still writes ``PINNED_FULL_XLA`` byte for byte. The test run checks
``PINNED`` in-process (the full optimisation compiles the ten encodes ~40% slower: CI
time); ``MORIC_TEST_FULL_XLA=1 pytest tests/test_pinned_files.py`` checks the user's
bytes. To re-pin after a deliberate change, run both ways with ``MORIC_PRINT_PINS=1
pytest -s``: each prints its new table.
"""
import hashlib
import os
import platform

import jax
import jaxlib
import numpy as np
import pytest

from moric_jax import api
from moric_jax.train import batched
from tests.conftest import FULL_XLA, smooth_image


def _fingerprint() -> str:
  flags = ""
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        if line.startswith("flags"):
          flags = " ".join(sorted(line.split(":", 1)[1].split()))
          break
  except OSError:
    pass
  cpu = hashlib.sha256(flags.encode()).hexdigest()[:12]
  return f"{platform.machine()} cpu:{cpu} jax:{jax.__version__} jaxlib:{jaxlib.__version__}"


# Recorded 2026-12-07 with the two training loops of before issue 33 (the batched
# resume is new: its files are the uninterrupted batched ones). A lambda-batched entry
# differs from the same encode run alone (the vmapped program orders its float sums
# otherwise) and equals the image-batched entry of that image and lambda. two_regions
# and object_only re-pinned 2026-12-08 (were 30af2397c9096f14 / 7cf18948a749d417) when the
# modular layout's trunk took the single-region codec's key (``Codec.init``: a paired
# start); the other eight files did not change.
FINGERPRINT = "x86_64 cpu:fb86c92f4654 jax:0.10.2 jaxlib:0.10.2"
PINNED_FULL_XLA = {"single": "b0e6cac4506b8354", "two_regions": "8e649af9c25c2a60",
          "object_only": "d60297d80ca2f425", "lambda_batched_0.001": "9a827df325a06d96",
          "lambda_batched_0.004": "2094d3cc349c6c4c", "image_batched_0": "9a827df325a06d96",
          "image_batched_1": "1fb4dd8733e099a1", "single_resumed": "b0e6cac4506b8354",
          "lambda_batched_resumed_0.001": "9a827df325a06d96",
          "lambda_batched_resumed_0.004": "2094d3cc349c6c4c"}
# The same encodes at the tests' optimisation level, recorded 2026-12-08 from commit
# d536dd5 (whose full-optimisation files were PINNED_FULL_XLA's first version) and re-pinned
# for two_regions and object_only when the modular layout's trunk took the single-region
# codec's key (model/codec.py ``Codec.init``: a paired start; the other eight files are
# unchanged, as they must be).
PINNED = {"single": "391dd5fa3e7b1cab", "two_regions": "cba955ff334626b6",
          "object_only": "65b35e66ea87f1d4", "lambda_batched_0.001": "42f446593661d90a",
          "lambda_batched_0.004": "5793f852bb8f79c0", "image_batched_0": "42f446593661d90a",
          "image_batched_1": "9eac2cade5a4e7a1", "single_resumed": "391dd5fa3e7b1cab",
          "lambda_batched_resumed_0.001": "42f446593661d90a",
          "lambda_batched_resumed_0.004": "5793f852bb8f79c0"}


def _config():
  from moric_jax import presets
  config = presets.default()
  config.num_steps = 40
  config.train.chunk_size = 20
  config.lmbda = 1e-3
  config.quant.num_deltas = 5
  config.train.warmup.candidates = ()
  return config


def _labels():
  labels = np.zeros((32, 32), np.int32)
  yy, xx = np.mgrid[:32, :32]
  labels[(yy - 15) ** 2 + (xx - 17) ** 2 < 64] = 1
  return labels


def _digest(data: bytes) -> str:
  return hashlib.sha256(data).hexdigest()[:16]


def _package(image, result, config) -> bytes:
  return api.package(image, result, config)[0]


class Interrupt(Exception):
  pass


def _encodes(tmp_path) -> dict[str, bytes]:
  image, other = smooth_image(32, 32, seed=0), smooth_image(32, 32, seed=1)
  config = _config()
  files = {"single": api.encode(image, config)[0],
           "two_regions": api.encode(image, config, labels=_labels())[0]}
  oo = _config()
  oo.regions.object_only = True
  files["object_only"] = api.encode(image, oo, labels=_labels())[0]
  for lm, result in zip((1e-3, 4e-3), batched.compress_image_batched(image, config,
                                                                     [1e-3, 4e-3])):
    cfg = _config()
    cfg.lmbda = lm
    files[f"lambda_batched_{lm:g}"] = _package(image, result, cfg)
  rows = batched.compress_images_batched([image, other], config, [1e-3])
  files["image_batched_0"] = _package(image, rows[0][0], config)
  files["image_batched_1"] = _package(other, rows[1][0], config)

  # Killed after step 20 of 40, resumed from the checkpoint of step 20.
  ck = _config()
  ck.checkpoint.dir = str(tmp_path / "single")
  ck.checkpoint.every_steps = 20

  def stop(stats):
    if stats.step >= 20:
      raise Interrupt
  with pytest.raises(Interrupt):
    api.encode(image, ck, on_chunk=stop)
  files["single_resumed"] = api.encode(image, ck)[0]

  # A lambda-batched encode killed the same way resumes its whole stack.
  ck.checkpoint.dir = str(tmp_path / "batched")

  def stop_batched(done, total):
    if done >= 20:
      raise Interrupt
  with pytest.raises(Interrupt):
    batched.compress_image_batched(image, ck, [1e-3, 4e-3], on_chunk=stop_batched)
  for lm, result in zip((1e-3, 4e-3), batched.compress_image_batched(image, ck,
                                                                     [1e-3, 4e-3])):
    cfg = _config()
    cfg.lmbda = lm
    files[f"lambda_batched_resumed_{lm:g}"] = _package(image, result, cfg)
  return files


@pytest.fixture(scope="module")
def files(tmp_path_factory):
  """The ten encodes' bytes, at the optimisation level this test process runs XLA at."""
  return _encodes(tmp_path_factory.mktemp("pins"))


def test_resumed_encodes_write_the_uninterrupted_files(files):
  assert files["single_resumed"] == files["single"]
  for lm in ("0.001", "0.004"):
    assert files[f"lambda_batched_resumed_{lm}"] == files[f"lambda_batched_{lm}"]


def test_lambda_batched_entry_is_the_file_of_its_lambda(files):
  assert files["lambda_batched_0.001"] != files["lambda_batched_0.004"]
  assert len(files["lambda_batched_0.004"]) < len(files["lambda_batched_0.001"])


def test_files_are_the_pinned_bytes(files):
  table = {k: _digest(v) for k, v in files.items()}
  if os.environ.get("MORIC_PRINT_PINS"):
    print(f'\nFINGERPRINT = "{_fingerprint()}"\nPINNED = {table!r}')
  if _fingerprint() != FINGERPRINT:
    pytest.skip(f"digests recorded on {FINGERPRINT}, this is {_fingerprint()}")
  assert table == (PINNED_FULL_XLA if FULL_XLA else PINNED)

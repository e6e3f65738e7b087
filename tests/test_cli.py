"""`moric encode/decode/info` end to end (subprocess), and user-error handling."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


def run(*args, check_rc=None):
  env = dict(os.environ)
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  env.setdefault("JAX_COMPILATION_CACHE_DIR",
                 os.environ.get("MORIC_TEST_JAX_CACHE", "/tmp/moric_jax_test_cache"))
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  p = subprocess.run([sys.executable, "-m", "moric_jax", *map(str, args)], cwd=ROOT,
                     env=env, capture_output=True, text=True, timeout=300)
  if check_rc is not None:
    assert p.returncode == check_rc, p.stderr
  return p


@pytest.fixture(scope="module")
def encoded(tmp_path_factory):
  d = tmp_path_factory.mktemp("cli")
  src = d / "in.png"
  Image.fromarray((smooth_image(16, 24, seed=5) * 255).round().astype(np.uint8)).save(src)
  out = d / "out.moric"
  p = run("encode", src, "-o", out, "--preset", "fast", "--steps", "20", "--rdoq", "--json",
          check_rc=0)
  return d, src, out, json.loads(p.stdout)


def test_encode_json(encoded):
  _, _, out, info = encoded
  for k in ("bpp", "bpp_estimated", "psnr", "bytes", "encode_seconds", "header_bytes"):
    assert k in info
  assert info["bytes"] == out.stat().st_size
  assert info["bpp"] == pytest.approx(8 * info["bytes"] / (16 * 24))


def test_decode_matches_encoder_psnr(encoded):
  d, src, out, info = encoded
  png = d / "dec.png"
  p = run("decode", out, "-o", png, "--json", check_rc=0)
  dj = json.loads(p.stdout)
  assert (dj["height"], dj["width"]) == (16, 24) and dj["decode_seconds"] > 0
  from moric_jax.eval import metrics
  dec = np.asarray(Image.open(png))
  ref = np.asarray(Image.open(src))
  assert metrics.psnr_uint8(dec, ref) == pytest.approx(info["psnr"], abs=1e-9)


def test_info_json(encoded):
  _, _, out, info = encoded
  p = run("info", out, "--json", check_rc=0)
  meta = json.loads(p.stdout)
  assert meta["bytes"] == info["bytes"] and meta["height"] == 16


def _one_line_error(p):
  assert p.returncode != 0
  lines = p.stderr.strip().splitlines()
  assert len(lines) == 1, p.stderr
  assert "Traceback" not in p.stderr


def test_user_errors(encoded, tmp_path):
  d, src, out, _ = encoded
  _one_line_error(run("decode", tmp_path / "missing.moric", "-o", tmp_path / "x.png"))
  bad = tmp_path / "bad.moric"
  data = bytearray(out.read_bytes())
  data[len(data) // 2] ^= 0xFF
  bad.write_bytes(bytes(data))
  _one_line_error(run("decode", bad, "-o", tmp_path / "x.png"))
  _one_line_error(run("info", src))                   # a PNG is not a .moric file
  notimg = tmp_path / "notimage.png"
  notimg.write_text("hello")
  _one_line_error(run("encode", notimg, "-o", tmp_path / "y.moric", "--json"))
  _one_line_error(run("encode", tmp_path / "nope.png", "-o", tmp_path / "y.moric"))
  assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.moric").exists()

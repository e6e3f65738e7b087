"""Interrupted encodes never damage an existing output and leave no temp files.

``moric encode`` runs in a subprocess on a small image with many steps; once the
progress bar shows training steps it gets SIGINT (clean exit: status 130, one line, no
traceback, no temp files) or SIGKILL. Either way the existing OUT.moric is unchanged.
"""
import os
import re
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from moric_jax import image_io
from tests.conftest import smooth_image
from tests.test_cli import ROOT

OLD = b"previous output, must survive\n" * 10
PROGRESS = re.compile(r"\|\s*([1-9]\d*)/\d+")


def _env():
  env = dict(os.environ)
  env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
  env.setdefault("JAX_COMPILATION_CACHE_DIR",
                 os.environ.get("MORIC_TEST_JAX_CACHE", "/tmp/moric_jax_test_cache"))
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  return env


def _default_sigint():
  """Test runners (pytest-xdist workers) may ignore SIGINT, and a child inherits that:
  Python then installs no KeyboardInterrupt handler. Give the child the default."""
  signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_mid_run(tmp_path, sig):
  src = tmp_path / "in.png"
  # Same size and preset as tests/test_cli.py (shares the compile cache).
  Image.fromarray(image_io.to_uint8(smooth_image(16, 24, seed=5))).save(src)
  out = tmp_path / "out.moric"
  out.write_bytes(OLD)
  p = subprocess.Popen([sys.executable, "-m", "moric_jax", "encode", str(src), "-o",
                        str(out), "--preset", "fast", "--steps", "100000"],
                       cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, preexec_fn=_default_sigint)
  chunks = []

  def reader():
    while True:
      b = os.read(p.stderr.fileno(), 4096)
      if not b:
        return
      chunks.append(b)

  t = threading.Thread(target=reader, daemon=True)
  t.start()
  deadline = time.monotonic() + 240
  try:
    while not PROGRESS.search(b"".join(chunks).decode(errors="replace")):
      assert p.poll() is None, b"".join(chunks).decode(errors="replace")
      assert time.monotonic() < deadline, "encode never started training"
      time.sleep(0.1)
    assert out.read_bytes() == OLD
    p.send_signal(sig)
    rc = p.wait(timeout=300)   # the signal may land in an XLA compile
  finally:
    if p.poll() is None:
      p.kill()
      p.wait()
  t.join(timeout=10)
  stdout = p.stdout.read().decode()
  p.stdout.close()
  p.stderr.close()
  return rc, stdout, b"".join(chunks).decode(errors="replace"), out


def test_sigint_keeps_output_and_exits_cleanly(tmp_path):
  rc, stdout, stderr, out = _interrupt_mid_run(tmp_path, signal.SIGINT)
  assert rc == 130, stderr
  assert out.read_bytes() == OLD
  assert sorted(f.name for f in tmp_path.iterdir()) == ["in.png", "out.moric"]
  assert "Traceback" not in stderr and stdout == ""
  # Besides the progress bar (tqdm, "encode: ...") and the memory/time estimate
  # printed before training, exactly one line.
  lines = [s.strip() for s in re.split(r"[\r\n]", stderr) if s.strip()]
  other = [s for s in lines if not s.startswith("encode:")
           and "estimated peak memory" not in s]
  assert other == ["moric encode: interrupted"], stderr


def test_sigkill_keeps_output(tmp_path):
  rc, _, _, out = _interrupt_mid_run(tmp_path, signal.SIGKILL)
  assert rc == -signal.SIGKILL
  assert out.read_bytes() == OLD
  assert sorted(f.name for f in tmp_path.iterdir()) == ["in.png", "out.moric"]


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_atomic_write_interrupted_during_write(tmp_path, monkeypatch, exc):
  out = tmp_path / "out.moric"
  out.write_bytes(OLD)

  def boom(*a, **k):
    raise exc("interrupted at the rename")

  monkeypatch.setattr(os, "replace", boom)
  with pytest.raises(exc):
    image_io.atomic_write_bytes(out, b"new data")
  assert out.read_bytes() == OLD
  assert [f.name for f in tmp_path.iterdir()] == ["out.moric"]
  monkeypatch.undo()
  image_io.save_png(tmp_path / "x.png", np.zeros((2, 3, 3), np.uint8))
  assert sorted(f.name for f in tmp_path.iterdir()) == ["out.moric", "x.png"]


def test_killed_encode_resumes_from_checkpoint_to_the_same_file(tmp_path):
  src = tmp_path / "in.png"
  Image.fromarray(image_io.to_uint8(smooth_image(16, 24, seed=6))).save(src)
  base = [sys.executable, "-m", "moric_jax", "encode", str(src), "--preset", "fast",
          "--steps", "400"]
  ref = tmp_path / "ref.moric"
  done = subprocess.run(base + ["-o", str(ref)], cwd=ROOT, env=_env(),
                        capture_output=True, timeout=600)
  assert done.returncode == 0, done.stderr.decode()[-2000:]

  out = tmp_path / "out.moric"
  ckpt = tmp_path / "ckpt"
  cmd = base + ["-o", str(out), "--checkpoint-dir", str(ckpt), "--checkpoint-every", "25"]
  p = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
  deadline = time.monotonic() + 300
  try:
    # Kill once a checkpoint exists (and before the run can finish).
    while not any(d.name.startswith("step_") and d.name[5:].isdigit()
                  for d in (ckpt.iterdir() if ckpt.exists() else [])):
      assert p.poll() is None, "encode ended before any checkpoint"
      assert time.monotonic() < deadline
      time.sleep(0.05)
    p.kill()
    p.wait(timeout=60)
  finally:
    if p.poll() is None:
      p.kill()
  assert not out.exists()
  rerun = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, timeout=600)
  assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
  assert "resuming from checkpoint at step" in rerun.stderr.decode()
  assert out.read_bytes() == ref.read_bytes()

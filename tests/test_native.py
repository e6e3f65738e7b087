"""The C extensions keep CPython's rules: no Python C-API call without the GIL.

Python 3.12+ crashes on a ``PyMem_*`` call made with the GIL released; 3.11 does not,
but its debug allocator (``PYTHONMALLOC=debug``) reports the same misuse as a fatal
error. So every decode here runs in a child process under ``-X dev`` with the debug
allocator, on files that reach every kernel (weights, latents with the ARM, the
synthesis programs, upsampling, residual convs, object layers), and must exit cleanly
with the pixels the in-process decoder gives.
"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from PIL import Image

from moric_jax import api
from moric_jax.coding import fast_ans
from moric_jax.decoder import networks
from tests.test_bitstream import _object_masks, synthetic_file

needs_c = pytest.mark.skipif(fast_ans.backend() != "c" or not networks.compiled(),
                             reason="C extensions not built (pip install -e .)")


def _files() -> dict[str, bytes]:
  return {"one_region": synthetic_file(24, 20, seed=1)[0],
          "three_regions": synthetic_file(16, 14, masks=_object_masks(),
                                          modulation="progressive_concat")[0]}


def debug_allocator_env() -> dict[str, str]:
  env = dict(os.environ, PYTHONMALLOC="debug", PYTHONFAULTHANDLER="1")
  env.pop("MORIC_ANS", None)
  env.pop("MORIC_SYNTHESIS", None)
  return env


@needs_c
@pytest.mark.parametrize("kind", ["one_region", "three_regions"])
def test_c_decode_under_the_debug_allocator(tmp_path, kind):
  """Fails on the code before the fix: "Python memory allocator called without holding
  the GIL" (a segfault on 3.12)."""
  data = _files()[kind]
  src, out = tmp_path / "f.moric", tmp_path / "f.png"
  src.write_bytes(data)
  proc = subprocess.run(
      [sys.executable, "-X", "dev", "-m", "moric_jax", "decode", str(src), "-o", str(out)],
      env=debug_allocator_env(), capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "GIL" not in proc.stderr and "Fatal Python error" not in proc.stderr
  got = np.asarray(Image.open(out))
  want = api.decode(data)
  assert np.array_equal(got, want)


@needs_c
def test_c_kernels_decode_in_threads():
  """The kernels release the GIL: decodes running in four threads at once give the
  same pixels as one decode alone (no shared mutable state in the extensions)."""
  data = _files()["three_regions"]
  want = api.decode(data)
  results: list = [None] * 4

  def work(i):
    results[i] = [api.decode(data) for _ in range(3)]

  threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  for per_thread in results:
    assert per_thread is not None
    for img in per_thread:
      assert np.array_equal(img, want)

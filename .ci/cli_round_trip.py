"""One `moric encode` -> `moric decode` round trip through the CLI, for CI.

    python [-X dev] .ci/cli_round_trip.py WORKDIR

Crops 32x32 pixels of the shipped sample, encodes them (40 steps, fast preset) and
decodes the file, each in a child process of this interpreter with its flags and
environment (so PYTHONMALLOC=debug, -X dev, MORIC_ANS=numba carry over). Checks that
both exit 0 with nothing fatal on stderr, that the decoded PNG is what the in-process
decoder makes of the same bytes, and that its PSNR is the one the encoder reported.
"""
import json
import pathlib
import subprocess
import sys

import numpy as np
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess:
  flags = ["-X", "dev"] if sys.flags.dev_mode else []
  proc = subprocess.run([sys.executable, *flags, "-m", "moric_jax", *args],
                        capture_output=True, text=True, timeout=900)
  bad = [w for w in ("Fatal Python error", "GIL", "Segmentation fault", "ERROR: AddressSanitizer")
         if w in proc.stderr]
  if proc.returncode != 0 or bad:
    sys.exit(f"moric {args[0]} failed ({proc.returncode}, {bad}):\n{proc.stderr[-4000:]}")
  return proc


def main() -> None:
  work = pathlib.Path(sys.argv[1])
  work.mkdir(parents=True, exist_ok=True)
  src, coded, out = work / "crop.png", work / "crop.moric", work / "crop_decoded.png"
  Image.open(ROOT / "data/samples/kodim23.png").convert("RGB").crop(
      (300, 100, 332, 132)).save(src)
  report = json.loads(run("encode", str(src), "-o", str(coded), "--preset", "fast",
                          "--steps", "40", "--json").stdout)
  run("decode", str(coded), "-o", str(out))
  from moric_jax import api
  from moric_jax.eval import metrics
  decoded = np.asarray(Image.open(out).convert("RGB"))
  assert np.array_equal(decoded, api.decode(coded.read_bytes())), "CLI and API decodes differ"
  psnr = metrics.psnr_uint8(decoded, np.asarray(Image.open(src)))
  assert abs(psnr - report["psnr"]) < 1e-9, (psnr, report["psnr"])
  assert report["bytes"] == coded.stat().st_size
  print(f"cli round trip: {report['bytes']} bytes, {report['bpp']:.3f} bpp, {psnr:.2f} dB")


if __name__ == "__main__":
  main()

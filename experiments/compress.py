"""Compress one image to a real .moric file, decode the file, report what it costs.

  python -m experiments.compress --config=configs/default.py \
      --config.image_path=data/samples/kodim23.png --config.output_dir=runs/kodim23

Writes to ``output_dir``: ``<name>.moric`` (the file, written atomically),
``<name>_decoded.png`` (what ``moric_jax.api.decode`` makes of the bytes on disk)
and ``metrics.json``; prints the file's bytes, its bpp (8 x file bytes / pixels),
the PSNR of the decoded image, and the encode and decode seconds.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from absl import app
from absl import logging as absl_logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py",
                                          "Path to an ml-collections config file.")


def main(argv):
  del argv
  # JAX probes for a TPU at start-up and logs "Unable to initialize backend 'tpu'"
  # at INFO level; that reads like an error on a laptop. Show warnings and up only.
  absl_logging.set_verbosity(absl_logging.WARNING)
  config = _CONFIG.value
  if not config.image_path:
    sys.exit("error: set --config.image_path=IMAGE")
  import numpy as np
  from tqdm import tqdm

  from moric_jax import api, image_io
  from moric_jax.errors import BitstreamError
  try:
    image = image_io.load_image(config.image_path, max_pixels=config.max_pixels)
  except image_io.ImageError as e:
    sys.exit(f"error: {e}")
  out = Path(config.output_dir)
  name = Path(config.image_path).stem
  h, w = image.shape[:2]
  print(f"{config.image_path}: {w}x{h}, {config.num_steps} steps, lmbda={config.lmbda}",
        flush=True)
  bar = tqdm(total=int(config.num_steps), unit="step", dynamic_ncols=True)

  def on_chunk(stats):
    post = {k: f"{getattr(stats, k):.{p}f}" for k, p in (("psnr", 2), ("bpp", 4))
            if isinstance(getattr(stats, k, None), (int, float))}
    bar.set_postfix(phase=getattr(stats, "phase", ""), refresh=False, **post)
    bar.update(stats.step - bar.n)

  try:
    data, info = api.encode(image, config, on_chunk=on_chunk)
  except (image_io.ImageError, ValueError) as e:
    bar.close()
    sys.exit(f"error: {e}")
  bar.close()
  moric_path = out / f"{name}.moric"
  image_io.atomic_write_bytes(moric_path, data)

  # Decode the bytes on disk, as a receiver would.
  on_disk = moric_path.read_bytes()
  t0 = time.perf_counter()
  try:
    decoded = api.decode(on_disk, max_pixels=None)
  except BitstreamError as e:
    sys.exit(f"error: the written file does not decode: {e}")
  decode_seconds = time.perf_counter() - t0
  png_path = out / f"{name}_decoded.png"
  image_io.save_png(png_path, decoded)
  from moric_jax.eval import report as report_lib
  pixels = h * w
  m = report_lib.build(info, config, image=name, target=image_io.to_uint8(np.asarray(image)),
                       decoded=decoded, decode_seconds=decode_seconds)
  if m["bytes"] != len(on_disk):
    sys.exit(f"error: {moric_path} holds {len(on_disk)} bytes, the encoder wrote {m['bytes']}")
  m.update(file=str(moric_path), decoded_png=str(png_path),
           image_path=str(config.image_path))
  image_io.atomic_write_bytes(out / "metrics.json",
                              json.dumps(m, indent=2, default=str).encode())
  print(f"file    {moric_path}: {m['bytes']} bytes = {m['bpp']:.4f} bpp "
        f"(8 x bytes / {pixels} pixels; latents {m['bpp_latents']:.4f}, weights "
        f"{m['bpp_weights']:.4f}, header {m['bpp_header']:.4f} bpp)")
  print(f"decoded {png_path}: PSNR {m['psnr']:.2f} dB")
  print(f"encode {m['encode_seconds']:.1f} s, decode {decode_seconds:.2f} s "
        f"(metrics in {out / 'metrics.json'})")


if __name__ == "__main__":
  app.run(main)

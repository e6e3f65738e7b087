"""Compress one image with a config and write reconstruction.png + metrics.json.

  python -m experiments.compress --config=configs/default.py \
      --config.image_path=data/samples/kodim23.png --config.output_dir=runs/kodim23
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from absl import app
from ml_collections import config_flags
from tqdm import tqdm

from moric_jax import image_io
from moric_jax.train.compress import compress_image

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py",
                                          "Path to an ml-collections config file.")


def main(argv):
  del argv
  config = _CONFIG.value
  if not config.image_path:
    sys.exit("error: set --config.image_path=IMAGE")
  try:
    image = image_io.load_image(config.image_path, max_pixels=config.max_pixels)
  except image_io.ImageError as e:
    sys.exit(f"error: {e}")
  out = Path(config.output_dir)
  h, w = image.shape[:2]
  print(f"{config.image_path}: {w}x{h}, {config.num_steps} steps, lmbda={config.lmbda}")
  bar = tqdm(total=int(config.num_steps), unit="step", dynamic_ncols=True)

  def on_chunk(stats):
    bar.set_postfix(phase=stats.phase, loss=f"{stats.loss:.5f}", psnr=f"{stats.psnr:.2f}",
                    bpp=f"{stats.bpp:.4f}", refresh=False)
    bar.update(stats.step - bar.n)

  result = compress_image(image, config, on_chunk=on_chunk)
  bar.close()
  m = dict(result.metrics)
  m["image_path"] = str(config.image_path)
  m["config"] = config.to_dict()
  image_io.save_png(out / "reconstruction.png", result.reconstruction)
  image_io.atomic_write_bytes(out / "metrics.json",
                              json.dumps(m, indent=2, default=str).encode())
  print(f"psnr {m['psnr']:.2f} dB | bpp {m['bpp_estimated']:.4f} (latents "
        f"{m['bpp_latents']:.4f}, weights {m['bpp_weights']:.4f}) | "
        f"{m['macs_per_pixel']:.0f} MACs/px | {m['encode_seconds']:.1f} s")
  print(f"wrote {out / 'reconstruction.png'} and {out / 'metrics.json'}")


if __name__ == "__main__":
  app.run(main)

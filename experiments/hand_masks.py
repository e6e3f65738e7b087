"""Hand-drawn region masks for 256x256 centre crops of two Kodak images.

  python -m experiments.hand_masks --out_dir=runs/masks

Writes ``kodim23_256.png`` / ``kodim04_256.png`` (the crops) and, per image, a 2-region
(one object) and a 3-region (two objects) label map ``*_regions2.png`` /
``*_regions3.png`` (0 = background, 1, 2 = objects), drawn as polygons in crop pixels.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw

_OUT = flags.DEFINE_string("out_dir", "runs/masks", "Output folder.")
_KODAK = flags.DEFINE_string("kodak_dir", "../shared/data/kodak", "Kodak images.")

# Polygons (x, y) in 256x256 crop pixels; object 1 first.
POLYGONS = {
    "kodim23": [  # the red parrot's head and beak, then the blue-and-yellow parrot
        [(145, 30), (165, 5), (200, 0), (256, 0), (256, 256), (215, 256), (220, 175),
         (200, 160), (165, 125), (150, 75)],
        [(0, 100), (15, 115), (35, 165), (50, 225), (55, 256), (0, 256)],
    ],
    "kodim04": [  # the eyes, then the mouth
        [(65, 50), (256, 50), (256, 125), (65, 110)],
        [(70, 200), (175, 200), (175, 256), (70, 256)],
    ],
}


def centre_crop(path: Path, size: int = 256) -> Image.Image:
  im = Image.open(path).convert("RGB")
  w, h = im.size
  left, top = (w - size) // 2, (h - size) // 2
  return im.crop((left, top, left + size, top + size))


def label_map(polygons, size: int = 256) -> np.ndarray:
  canvas = Image.new("L", (size, size), 0)
  draw = ImageDraw.Draw(canvas)
  for i, poly in enumerate(polygons, start=1):
    draw.polygon(poly, fill=i)
  return np.asarray(canvas)


def main(argv):
  del argv
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  for name, polys in POLYGONS.items():
    centre_crop(Path(_KODAK.value) / f"{name}.png").save(out / f"{name}_256.png")
    for n in (2, 3):
      labels = label_map(polys[:n - 1])
      Image.fromarray(labels.astype(np.uint8)).save(out / f"{name}_regions{n}.png")
      print(f"{out / f'{name}_regions{n}.png'}: objects cover "
            f"{(labels > 0).mean():.1%} of the crop")


if __name__ == "__main__":
  app.run(main)

"""Hand-drawn region masks for two Kodak images: 256x256 centre crops and full frames.

  python -m experiments.hand_masks --out_dir=runs/masks

Writes ``kodim23_256.png`` / ``kodim04_256.png`` (the crops) and, per image, a 2-region
(one object) and a 3-region (two objects) label map ``*_regions2.png`` /
``*_regions3.png`` (0 = background, 1, 2 = objects), drawn as polygons in crop pixels;
and the same for the full 768x512 / 512x768 frames: ``*_full_regions{2,3}.png``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image, ImageDraw

from moric_jax import image_io

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


# Polygons (x, y) in full-frame pixels; object 1 first.
FULL_POLYGONS = {
    "kodim23": [  # the red parrot, then the blue-and-yellow parrot
        [(400, 150), (430, 120), (490, 110), (560, 120), (620, 160), (660, 220),
         (690, 270), (740, 300), (768, 350), (768, 512), (480, 512), (476, 360),
         (460, 300), (430, 270), (410, 220), (400, 180)],
        [(70, 220), (100, 190), (140, 176), (190, 180), (230, 210), (250, 250),
         (270, 300), (300, 340), (350, 400), (390, 512), (130, 512), (140, 440),
         (150, 360), (140, 300), (100, 300), (76, 280)],
    ],
    "kodim04": [  # the face, then the hat
        [(120, 220), (420, 220), (410, 380), (360, 480), (300, 520), (220, 520),
         (150, 460), (120, 360)],
        [(0, 140), (40, 60), (140, 20), (280, 10), (400, 30), (480, 90), (500, 180),
         (490, 240), (460, 280), (430, 220), (340, 190), (220, 190), (110, 210),
         (60, 300), (20, 320), (0, 260)],
    ],
}


def centre_crop(path: Path, size: int = 256) -> Image.Image:
  """The ``size`` centre square of the image at ``path`` (``image_io.centre_crop``)."""
  rgb = np.asarray(Image.open(path).convert("RGB"))
  return Image.fromarray(np.ascontiguousarray(image_io.centre_crop(rgb, size)))


def label_map(polygons, size=256) -> np.ndarray:
  """Label image of ``polygons``; ``size``: side, or ``(width, height)``."""
  canvas = Image.new("L", (size, size) if isinstance(size, int) else tuple(size), 0)
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
  for name, polys in FULL_POLYGONS.items():
    size = Image.open(Path(_KODAK.value) / f"{name}.png").size
    for n in (2, 3):
      labels = label_map(polys[:n - 1], size)
      path = out / f"{name}_full_regions{n}.png"
      Image.fromarray(labels.astype(np.uint8)).save(path)
      print(f"{path}: objects cover {(labels > 0).mean():.1%} of the frame")


if __name__ == "__main__":
  app.run(main)

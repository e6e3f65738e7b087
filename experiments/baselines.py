"""Rate-distortion sweeps of the classical baselines (JPEG, WebP, AVIF, JPEG-XL).

  python -m experiments.baselines --images=/work/shared/data/kodak/kodim23.png --crop=256 \
      --output_dir=runs/baselines_k23

writes OUTPUT_DIR/baselines.csv (one row per image, codec and quality: bytes, bpp from the
encoded file, PSNR and MS-SSIM on the 8-bit RGB decoding) and OUTPUT_DIR/rd_baselines.png
(for one image its curves; for several, the mean bpp and PSNR per codec and quality).
"""
from __future__ import annotations

import csv
import glob
import io
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from absl import app, flags

from moric_jax import image_io
from moric_jax.eval import baselines, plots

_IMAGES = flags.DEFINE_string("images", None, "Glob or comma-separated list of images.")
_CROP = flags.DEFINE_integer("crop", 0, "Centre crop to CROPxCROP pixels (0: full image).")
_CODECS = flags.DEFINE_list("codecs", list(baselines.CODECS), "Codecs to sweep.")
_OUTPUT_DIR = flags.DEFINE_string("output_dir", "runs/baselines", "Output folder.")

_FIELDS = ("image", "codec", "quality", "num_bytes", "bpp", "psnr", "ms_ssim")


def _expand(spec: str) -> list[str]:
  paths: list[str] = []
  for part in filter(None, (p.strip() for p in spec.split(","))):
    matches = sorted(glob.glob(part))
    paths.extend(matches if matches else [part])
  return paths


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
  h, w = image.shape[:2]
  if size <= 0:
    return image
  if size > min(h, w):
    raise image_io.ImageError(f"--crop={size} is larger than the {w}x{h} image")
  return image_io.centre_crop(image, size)


def main(argv):
  del argv
  if not _IMAGES.value:
    sys.exit("error: set --images=GLOB_OR_COMMA_LIST")
  rows = []
  for path in _expand(_IMAGES.value):
    try:
      image = image_io.to_uint8(_centre_crop(image_io.load_image(path), _CROP.value))
    except image_io.ImageError as e:
      sys.exit(f"error: {e}")
    print(f"{path}: {image.shape[1]}x{image.shape[0]}")
    for codec in _CODECS.value:
      for row in baselines.sweep(image, codec):
        rows.append({"image": Path(path).stem, **row})
        print(f"  {row['codec']:7s} q={row['quality']:3d}  {row['bpp']:.4f} bpp  "
              f"{row['psnr']:.2f} dB  ms-ssim {row['ms_ssim']:.4f}")
  out = Path(_OUTPUT_DIR.value)
  buf = io.StringIO()
  writer = csv.DictWriter(buf, fieldnames=_FIELDS, lineterminator="\n")
  writer.writeheader()
  writer.writerows(rows)
  image_io.atomic_write_bytes(out / "baselines.csv", buf.getvalue().encode())

  points = defaultdict(list)    # (codec, quality) -> [(bpp, psnr)] over images
  for r in rows:
    points[(r["codec"], r["quality"])].append((r["bpp"], r["psnr"]))
  curves = defaultdict(lambda: ([], []))
  for (codec, _), pts in sorted(points.items()):
    curves[codec][0].append(float(np.mean([p[0] for p in pts])))
    curves[codec][1].append(float(np.mean([p[1] for p in pts])))
  n = len({r["image"] for r in rows})
  title = f"baselines, {n} image(s)" + (f", {_CROP.value}x{_CROP.value} crop" if _CROP.value
                                         else "")
  plots.rd_plot(dict(curves), out / "rd_baselines.png", title=title)
  print(f"wrote {out / 'baselines.csv'} and {out / 'rd_baselines.png'}")


if __name__ == "__main__":
  app.run(main)

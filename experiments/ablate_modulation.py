"""Ablation of the GMN modulation schemes of the multi-region codec.

  python -m experiments.ablate_modulation --config=configs/ablation.py \
      --config.image_path=IMG --config.output_dir=DIR

Every (scheme, lambda) is encoded to a real layered file and decoded. Writes to DIR:
``results.csv`` (a row per run, appended as runs finish; rerunning skips finished
rows), ``results.md`` (the same as a markdown table), ``rd.png`` (one curve per
scheme), ``labels.png`` (the regions used) and ``files/*.moric``.
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
from absl import app
from ml_collections import config_flags

from moric_jax import api, image_io
from moric_jax.eval import plots
from moric_jax.regions import masks as masks_lib
from moric_jax.regions import proposals

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ablation.py",
                                          "Ablation config.")
FIELDS = ["scheme", "lmbda", "num_regions", "bpp", "psnr", "bpp_estimated", "bytes",
          "encode_seconds", "steps_per_second", "decode_seconds", "macs_per_pixel",
          "steps", "region_psnr"]


def centre_crop(a: np.ndarray, crop: int) -> np.ndarray:
  if not crop:
    return a
  h, w = a.shape[:2]
  c = min(crop, h, w)
  top, left = (h - c) // 2, (w - c) // 2
  return a[top:top + c, left:left + c]


def region_labels(config, image_full: np.ndarray, image: np.ndarray) -> np.ndarray:
  """The label map of the (cropped) image: from the mask file or a proposal."""
  if config.regions.masks:
    try:   # a mask of the cropped image, or of the whole image (then cropped too)
      return masks_lib.load_label_map(config.regions.masks, image.shape[:2])
    except image_io.ImageError:
      if image.shape == image_full.shape:
        raise
    full = masks_lib.load_label_map(config.regions.masks, image_full.shape[:2])
    return masks_lib.validate_label_map(centre_crop(full, config.crop), image.shape[:2])
  k = masks_lib.parse_regions_spec(config.regions.auto)
  return proposals.propose_regions(image, max(k, 2), seed=int(config.seed))


def read_rows(path: Path) -> list[dict]:
  if not path.exists():
    return []
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def append_row(path: Path, row: dict) -> None:
  new = not path.exists()
  with open(path, "a", newline="") as f:
    w = csv.DictWriter(f, fieldnames=FIELDS)
    if new:
      w.writeheader()
    w.writerow(row)


def markdown(rows: list[dict]) -> str:
  cols = ["scheme", "lmbda", "num_regions", "bpp", "psnr", "encode_seconds",
          "steps_per_second", "macs_per_pixel"]
  lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  for r in sorted(rows, key=lambda r: (r["scheme"], float(r["lmbda"]))):
    cells = []
    for c in cols:
      v = r[c]
      try:
        v = f"{float(v):.4g}"
      except ValueError:
        pass
      cells.append(v)
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  config = _CONFIG.value
  if not config.image_path:
    sys.exit("error: set --config.image_path=IMAGE")
  try:
    full = image_io.load_image(config.image_path, max_pixels=config.max_pixels)
    image = centre_crop(full, int(config.crop))
    labels = region_labels(config, full, image)
  except (image_io.ImageError, ValueError) as e:
    sys.exit(f"error: {e}")
  out = Path(config.output_dir)
  (out / "files").mkdir(parents=True, exist_ok=True)
  image_io.save_png(out / "labels.png",
                    (labels * (255 // max(1, int(labels.max())))).astype(np.uint8))
  results = out / "results.csv"
  done = {(r["scheme"], f"{float(r['lmbda']):.6g}") for r in read_rows(results)}
  # "--config.schemes=none,film" arrives as one string: split on commas.
  schemes = [x.strip() for s in config.schemes for x in str(s).split(",") if x.strip()]
  runs = [(s, float(l)) for s in schemes for l in config.lmbdas]
  if config.include_single:
    runs = [("single-region", float(l)) for l in config.lmbdas] + runs
  n_obj = int(labels.max())
  print(f"{config.image_path}: {image.shape[1]}x{image.shape[0]}, {n_obj + 1} regions, "
        f"{len(runs)} runs of {config.num_steps} steps ({len(done)} done)")
  for scheme, lmbda in runs:
    if (scheme, f"{lmbda:.6g}") in done:
      continue
    c = config.copy_and_resolve_references()
    c.lmbda = lmbda
    single = scheme == "single-region"
    if single:   # no regions at all (not even an automatic proposal)
      c.regions.masks = c.regions.auto = ""
    else:
      c.model.modulation = scheme
    data, info = api.encode(image, c, labels=None if single else labels)
    name = f"{scheme}_l{lmbda:g}.moric"
    image_io.atomic_write_bytes(out / "files" / name, data)
    row = {"scheme": scheme, "lmbda": lmbda, "num_regions": info.get("num_regions", 1),
           "bpp": info["bpp"], "psnr": info["psnr"],
           "bpp_estimated": info["bpp_estimated"], "bytes": info["bytes"],
           "encode_seconds": info["encode_seconds"],
           "steps_per_second": info.get("steps_per_second", ""),
           "decode_seconds": info["decode_seconds"],
           "macs_per_pixel": info.get("macs_per_pixel", ""), "steps": int(c.num_steps),
           "region_psnr": json.dumps([r["psnr"] for r in info.get("regions", [])])}
    append_row(results, row)
    print(f"{scheme:>18s} lmbda {lmbda:g}: {info['bpp']:.4f} bpp, {info['psnr']:.2f} dB, "
          f"{info['encode_seconds']:.0f} s")
  rows = read_rows(results)
  image_io.atomic_write_bytes(out / "results.md", markdown(rows).encode())
  curves = {}
  for r in rows:
    curves.setdefault(r["scheme"], ([], []))
    curves[r["scheme"]][0].append(float(r["bpp"]))
    curves[r["scheme"]][1].append(float(r["psnr"]))
  plots.rd_plot(curves, out / "rd.png", title=f"modulation ablation: "
                f"{Path(config.image_path).name}, {n_obj + 1} regions")
  print(f"wrote {results}, {out / 'results.md'}, {out / 'rd.png'}")


if __name__ == "__main__":
  app.run(main)

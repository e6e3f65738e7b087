"""Do regions pay for themselves? One region vs 2 and 3 regions, same steps and lambda.

  python -m experiments.regions_vs_single --image=../shared/data/kodak/kodim23.png \\
      --masks=runs/masks/kodim23_full_regions2.png,runs/masks/kodim23_full_regions3.png \\
      --steps=400 --lmbda=0.002 [--schemes=progressive_concat] [--crop=0] \\
      --out_dir=runs/regions/kodim23

Every row is a real file (written to OUT_DIR) decoded back: bpp from the file size,
PSNR (whole image and per region) from the decoded pixels, RD cost D + lambda * bpp
(D = MSE on [0, 1]), MACs/px of the decoder, steps/s. Rows already in
``results.jsonl`` are skipped on rerun; ``results.md`` is the table.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import app, flags

from moric_jax import api, image_io, presets
from moric_jax.regions import masks as masks_lib

_IMAGE = flags.DEFINE_string("image", None, "Image to code.", required=True)
_MASKS = flags.DEFINE_list("masks", [], "Label maps (one row each, plus one region).")
_SCHEMES = flags.DEFINE_list("schemes", ["progressive_concat"], "Modulation schemes.")
_STEPS = flags.DEFINE_integer("steps", 400, "Training steps of every row.")
_LMBDA = flags.DEFINE_float("lmbda", 0.002, "Lambda of every row.")
_CROP = flags.DEFINE_integer("crop", 0, "Centre crop side (0 = whole image).")
_OUT = flags.DEFINE_string("out_dir", "runs/regions", "Output folder.")


_crop = image_io.centre_crop


def run_row(image, labels, scheme: str, name: str, out: Path) -> dict:
  config = presets.default()
  config.num_steps = _STEPS.value
  config.lmbda = _LMBDA.value
  config.model.modulation = scheme
  data, info = api.encode(image, config, labels=labels)
  image_io.atomic_write_bytes(out / f"{name}.moric", data)
  assert np.array_equal(api.decode(data), info["reconstruction"])
  return {"row": name, "regions": info["num_regions"], "modulation": info["modulation"],
          "bpp": info["bpp"], "psnr": info["psnr"], "rd_cost": info["rd_cost"],
          "region_psnr": [r["psnr"] for r in info["regions"]],
          "region_bits": [{k: r[k] for k in ("bits_latents", "bits_weights",
                                             "bits_contour")} for r in info["regions"]],
          "macs_per_pixel": info["macs_per_pixel"],
          "steps_per_second": info["steps_per_second"],
          "encode_seconds": info["encode_seconds"], "steps": _STEPS.value,
          "lmbda": _LMBDA.value}


def main(argv):
  del argv
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  full_image = image_io.load_image(_IMAGE.value)
  image = _crop(full_image, _CROP.value)
  h, w = image.shape[:2]
  rows_path = out / "results.jsonl"
  done = {}
  if rows_path.exists():
    done = {r["row"]: r for r in map(json.loads, rows_path.read_text().splitlines())}
  plan = [("single", None, "none")]
  for m in _MASKS.value:
    full = masks_lib.load_label_map(m, full_image.shape[:2])
    labels = _crop(full, _CROP.value)
    for s in _SCHEMES.value:
      plan.append((f"{Path(m).stem}_{s}", labels, s))
  for name, labels, scheme in plan:
    if name in done:
      continue
    row = run_row(image, labels, scheme, name, out)
    with rows_path.open("a") as fh:
      fh.write(json.dumps(row) + "\n")
    done[name] = row
    print(json.dumps(row), flush=True)
  base = done["single"]
  lines = [f"{Path(_IMAGE.value).name} {w}x{h}, {_STEPS.value} steps, lambda "
           f"{_LMBDA.value}", "",
           "| row | regions | bpp | PSNR | region PSNR | RD cost vs single | MACs/px | "
           "steps/s |", "|---|---|---|---|---|---|---|---|"]
  for name, *_ in plan:
    r = done[name]
    rp = " / ".join("-" if p is None else f"{p:.2f}" for p in r["region_psnr"])
    lines.append(f"| {name} | {r['regions']} | {r['bpp']:.4f} | {r['psnr']:.2f} | {rp} | "
                 f"{100 * (r['rd_cost'] / base['rd_cost'] - 1):+.1f}% | "
                 f"{r['macs_per_pixel']:.0f} | {r['steps_per_second'] or 0:.2f} |")
  (out / "results.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  app.run(main)

"""Single-object compression (the paper's Fig. 7): only the object's pixels are coded.

  python -m experiments.object_only --image=../shared/data/kodak/kodim23.png \\
      --masks=runs/masks/kodim23_full_regions2.png --steps=400 --lmbda=0.002 \\
      --out_dir=runs/object_only/kodim23

Writes the ``.moric`` (``--object-only``: no background latents, LSN or pixels) and its
decoded RGBA PNG (the decoded mask as alpha), then reports bpp and PSNR over the
object's pixels next to what AVIF and WebP spend on the same pixels: the object's box
with the background flattened to the object's mean colour, coded at a quality sweep,
bits / object pixels, PSNR on the object pixels, interpolated at our PSNR (bpp they
need for it) and at our bpp (PSNR they reach). Appends one JSON line to
``OUT_DIR/results.jsonl``.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import app, flags

from moric_jax import api, image_io, presets
from moric_jax.eval import baselines, metrics
from moric_jax.regions import masks as masks_lib

_IMAGE = flags.DEFINE_string("image", None, "Image.", required=True)
_MASKS = flags.DEFINE_string("masks", None, "Label map (its objects are coded).",
                             required=True)
_STEPS = flags.DEFINE_integer("steps", 400, "Training steps.")
_LMBDA = flags.DEFINE_float("lmbda", 0.002, "Lambda.")
_OUT = flags.DEFINE_string("out_dir", "runs/object_only", "Output folder.")


def flattened_box(image_u8: np.ndarray, obj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """The object's bounding box with non-object pixels set to the object's mean."""
  rows, cols = np.flatnonzero(obj.any(1)), np.flatnonzero(obj.any(0))
  box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
  crop, m = image_u8[box].copy(), obj[box]
  crop[~m] = np.round(crop[m].mean(axis=0)).astype(np.uint8)
  return crop, m


def baseline_curve(codec: str, crop: np.ndarray, m: np.ndarray) -> list[tuple[float, float]]:
  pts = []
  for q in baselines.default_qualities(codec):
    n, dec = baselines.encode_decode(codec, crop, q)
    pts.append((8.0 * n / m.sum(), metrics.psnr_uint8(dec[m], crop[m])))
  return sorted(pts)


def main(argv):
  del argv
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  image = image_io.load_image(_IMAGE.value)
  labels = masks_lib.load_label_map(_MASKS.value, image.shape[:2])
  config = presets.default()
  config.num_steps, config.lmbda = _STEPS.value, _LMBDA.value
  config.regions.object_only = True
  data, info = api.encode(image, config, labels=labels)
  stem = Path(_IMAGE.value).stem
  image_io.atomic_write_bytes(out / f"{stem}_object.moric", data)
  decoded = api.decode(data)
  assert np.array_equal(decoded, info["reconstruction"])
  image_io.save_png(out / f"{stem}_object.png", decoded)
  obj = decoded[..., 3] > 0
  ref = image_io.to_uint8(image)
  row = {"image": stem, "object_pixels": int(obj.sum()), "bytes": len(data),
         "bpp_object": info["bpp"], "psnr_object": info["psnr"],
         "true_object_pixels": int((labels > 0).sum()),
         "steps": _STEPS.value, "lmbda": _LMBDA.value,
         "encode_seconds": info["encode_seconds"]}
  crop, m = flattened_box(ref, obj)
  for codec in ("avif", "webp"):
    if not baselines.is_available(codec):
      continue
    pts = baseline_curve(codec, crop, m)
    bpp, psnr = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
    order = np.argsort(psnr)
    row[f"{codec}_bpp_at_our_psnr"] = float(np.interp(info["psnr"], psnr[order], bpp[order]))
    row[f"{codec}_psnr_at_our_bpp"] = float(np.interp(info["bpp"], bpp, psnr))
  with (out / "results.jsonl").open("a") as fh:
    fh.write(json.dumps(row) + "\n")
  print(json.dumps(row))


if __name__ == "__main__":
  app.run(main)

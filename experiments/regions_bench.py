"""Regions benchmark on the MoRIC authors' masks: 1 region vs the MoRIC regions.

  python -m experiments.regions_bench --images=kodim23,kodim04,kodim15,kodim20 \\
      --masks_dir=../shared/data/moric_masks/kodak --kodak_dir=../shared/data/kodak \\
      --crop=256 --steps=2000 --lmbdas=0.0005,0.001,0.002 --seeds=0,1 \\
      --rows=single,moric --out_dir=runs/regions_bench

For every image x seed x row the lambdas train together (``compress_image_batched``);
every point is a real file decoded back (bpp from its size, PSNR from the decoded
pixels). Rows: ``single`` (one region), a modulation scheme (``moric``,
``progressive_concat``, ...: the authors' mask as 2 regions), ``auto:K`` (regions
proposed from the image, ``moric`` layout). ``--crop`` takes a square centred on the
object's box (clipped to the frame; 0 = the whole image). Per point: bits of each
region's latents, network and contour, MACs/px, warm decode ms; per image x seed x row:
BD-rate against ``single`` over the lambdas. Rows already in ``results.jsonl`` are kept
on rerun; ``results.md`` holds the tables, ``rd_<image>.png`` the curves.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from absl import app, flags

from moric_jax import api, image_io, presets
from moric_jax.eval import bdrate
from moric_jax.regions import masks as masks_lib
from moric_jax.sweeps import rd

_IMAGES = flags.DEFINE_list("images", ["kodim23", "kodim04", "kodim15", "kodim20"],
                            "Kodak image names (or paths to images).")
_KODAK = flags.DEFINE_string("kodak_dir", "../shared/data/kodak", "Folder of the images.")
_MASKS = flags.DEFINE_string("masks_dir", "../shared/data/moric_masks/kodak",
                             "Folder of one mask per image, same file name.")
_CROP = flags.DEFINE_integer("crop", 256, "Side of the square centred on the object (0: "
                             "whole image).")
_STEPS = flags.DEFINE_integer("steps", 2000, "Training steps of every encode.")
_LMBDAS = flags.DEFINE_list("lmbdas", ["0.0005", "0.001", "0.002"], "Lambdas (>= 2).")
_SEEDS = flags.DEFINE_list("seeds", ["0"], "Seeds.")
_ROWS = flags.DEFINE_list("rows", ["single", "moric"],
                          "single | a modulation scheme | auto:K.")
_SET = flags.DEFINE_multi_string("set", [], "Extra config overrides FIELD=VALUE "
                                 "(Python literal), e.g. regions.layer0_weight=0.0.")
_OUT = flags.DEFINE_string("out_dir", "runs/regions_bench", "Output folder.")


def object_crop(labels: np.ndarray, side: int) -> tuple[int, int, int, int]:
  """``(top, left, h, w)`` of a ``side`` square centred on the objects' box, moved
  inside the frame (the frame itself if it is smaller)."""
  h, w = labels.shape
  if not side:
    return 0, 0, h, w
  ys, xs = np.nonzero(labels)
  cy = (ys.min() + ys.max() + 1) // 2 if ys.size else h // 2
  cx = (xs.min() + xs.max() + 1) // 2 if xs.size else w // 2
  sh, sw = min(side, h), min(side, w)
  top = int(np.clip(cy - sh // 2, 0, h - sh))
  left = int(np.clip(cx - sw // 2, 0, w - sw))
  return top, left, sh, sw


def _resolve(name: str, folder: str) -> Path:
  p = Path(name)
  return p if p.suffix else Path(folder) / f"{name}.png"


def row_labels(row: str, image: np.ndarray, mask: np.ndarray, seed: int
               ) -> tuple[np.ndarray | None, str]:
  """``(labels or None, modulation scheme)`` of a benchmark row."""
  if row == "single":
    return None, "none"
  k = masks_lib.parse_regions_spec(row) if row.startswith("auto") else 0
  if k:
    from moric_jax.regions import proposals
    return proposals.propose_regions(image, k, seed=seed), "moric"
  return mask, row


def encode_row(image: np.ndarray, labels, scheme: str, lmbdas: list[float], seed: int,
               out: Path, stem: str) -> list[dict]:
  """Trains the lambdas of one row together; one measured dict per lambda."""
  from moric_jax.train.batched import compress_image_batched
  config = presets.default()
  config.num_steps = _STEPS.value
  config.seed = seed
  if scheme != "none":
    config.model.modulation = scheme
  rd.apply_overrides(config, _SET.value)
  t0 = time.perf_counter()
  results = compress_image_batched(image, config, lmbdas, labels=labels)
  train_each = (time.perf_counter() - t0) / len(lmbdas)
  rows = []
  for lmbda, result in zip(lmbdas, results):
    cfg = config.copy_and_resolve_references()
    cfg.lmbda = lmbda
    data, info = api.package(image, result, cfg)
    path = out / "files" / f"{stem}_lmbda{lmbda:g}.moric"
    image_io.atomic_write_bytes(path, data)
    decoded = api.decode(data)
    if not np.array_equal(decoded, info["reconstruction"]):
      raise RuntimeError(f"{path}: decoded pixels differ from the encoder's")
    t1 = time.perf_counter()
    for _ in range(3):
      api.decode(data)
    decode_ms = (time.perf_counter() - t1) / 3 * 1000.0
    rows.append({
        "lmbda": lmbda, "bytes": len(data), "bpp": info["bpp"], "psnr": info["psnr"],
        "num_regions": info["num_regions"], "modulation": info["modulation"],
        "regions": [{k: r[k] for k in ("pixels", "psnr", "bits_latents", "bits_weights",
                                       "bits_contour")} for r in info["regions"]],
        "bits_shared_weights": api.info(data)["bits_shared_weights"],
        "macs_per_pixel": info["macs_per_pixel"], "decode_ms": decode_ms,
        "encode_seconds": info["encode_seconds"], "train_seconds": train_each,
        "steps_per_second": result.metrics.get("steps_per_second")})
  return rows


def bd_of(rows: list[dict], anchor: list[dict]) -> float | None:
  """BD-rate (%) of ``rows`` against ``anchor`` (same lambdas), ``None`` if undefined."""
  try:
    return bdrate.bd_rate_auto([r["bpp"] for r in anchor], [r["psnr"] for r in anchor],
                               [r["bpp"] for r in rows], [r["psnr"] for r in rows])[0]
  except ValueError:   # too little overlap: reported as "-"
    return None


def network_bits(point: dict) -> float:
  """Bits of every network of a file: the shared ones (ARM, upsampling, GMN) and each
  region's LSN (one region: its LSN is the whole synthesis)."""
  return point["bits_shared_weights"] + sum(r["bits_weights"] for r in point["regions"])


def markdown(done: dict, images: list[str], seeds: list[int], row_names: list[str]) -> str:
  lines = [f"{_STEPS.value} steps, crop {_CROP.value or 'full'}, lambdas "
           f"{', '.join(_LMBDAS.value)}" + (f", overrides {_SET.value}" if _SET.value else ""),
           "", "| image | seed | row | BD-rate vs single | bpp | PSNR dB | object bits "
           "(latents / net / contour) | network bits, all | MACs/px | decode ms |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  bds: dict[str, list[float]] = {}
  for im in images:
    for seed in seeds:
      anchor = done.get(f"{im}|{seed}|single")
      for name in row_names:
        rows = done.get(f"{im}|{seed}|{name}")
        if rows is None:
          continue
        bd = bd_of(rows, anchor) if (anchor and name != "single") else None
        if bd is not None:
          bds.setdefault(name, []).append(bd)
        obj = " ; ".join("/".join(f"{r[k]:.0f}" for k in ("bits_latents", "bits_weights",
                                                          "bits_contour"))
                         for p in rows for r in p["regions"][1:]) or "-"
        lines.append(
            f"| {im} | {seed} | {name} | {'-' if bd is None else f'{bd:+.2f}%'} | "
            + " / ".join(f"{p['bpp']:.4f}" for p in rows) + " | "
            + " / ".join(f"{p['psnr']:.2f}" for p in rows) + f" | {obj} | "
            + " / ".join(f"{network_bits(p):.0f}" for p in rows) + " | "
            + f"{rows[0]['macs_per_pixel']:.0f} | "
            + " / ".join(f"{p['decode_ms']:.0f}" for p in rows) + " |")
  lines += ["", "| row | mean BD-rate vs single | worst | n |", "|---|---|---|---|"]
  for name, v in bds.items():
    lines.append(f"| {name} | {np.mean(v):+.2f}% | {max(v):+.2f}% | {len(v)} |")
  return "\n".join(lines) + "\n"


def plot(done: dict, im: str, seeds: list[int], row_names: list[str], out: Path) -> None:
  from moric_jax.eval import plots
  curves = {}
  for seed in seeds:
    for name in row_names:
      rows = done.get(f"{im}|{seed}|{name}")
      if rows:
        curves[f"{name} seed {seed}"] = ([r["bpp"] for r in rows], [r["psnr"] for r in rows])
  if curves:
    plots.rd_plot(curves, str(out / f"rd_{im}.png"), title=f"{im}: regions vs one region")


def main(argv):
  del argv
  lmbdas = sorted(float(l) for l in _LMBDAS.value)
  if len(lmbdas) < 2:
    raise app.UsageError("--lmbdas needs at least 2 values for a BD-rate")
  seeds = [int(s) for s in _SEEDS.value]
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  path = out / "results.jsonl"
  done = rd.read_jsonl(path, "points")
  names = []
  for spec in _IMAGES.value:
    img_path, mask_path = _resolve(spec, _KODAK.value), _resolve(spec, _MASKS.value)
    for p in (img_path, mask_path):
      if not p.exists():
        raise app.UsageError(f"{p} does not exist")
    full = image_io.load_image(str(img_path))
    mask = masks_lib.load_label_map(str(mask_path), full.shape[:2])
    t, l, h, w = object_crop(mask, _CROP.value)
    image, labels = full[t:t + h, l:l + w], mask[t:t + h, l:l + w]
    im = img_path.stem
    names.append(im)
    for seed in seeds:
      for row in _ROWS.value:
        key = f"{im}|{seed}|{row}"
        if key in done:
          continue
        lab, scheme = row_labels(row, image, labels, seed)
        print(f"{key}: {w}x{h} crop at ({l}, {t}), {_STEPS.value} steps, lambdas "
              f"{lmbdas}", flush=True)
        stem = f"{im}_s{seed}_{row.replace(':', '')}"
        points = encode_row(image, lab, scheme, lmbdas, seed, out, stem)
        done[key] = points
        rd.append_jsonl(path, key, "points", points)
        for p in points:
          print(f"  lambda {p['lmbda']:g}: {p['bpp']:.4f} bpp, {p['psnr']:.2f} dB, "
                f"decode {p['decode_ms']:.0f} ms", flush=True)
        (out / "results.md").write_text(markdown(done, names, seeds, _ROWS.value))
      plot(done, im, seeds, _ROWS.value, out)
  text = markdown(done, names, seeds, _ROWS.value)
  (out / "results.md").write_text(text)
  print(text)


if __name__ == "__main__":
  app.run(main)

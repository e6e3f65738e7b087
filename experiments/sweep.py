"""RD sweep: every (image, lambda) encoded to a real .moric file and decoded.

  python -m experiments.sweep --config=configs/sweep.py --config.images='a.png,b.png' \
      --config.lmbdas=0.002,0.01 --config.output_dir=runs/sweep

Writes to ``output_dir``: ``results.csv`` (one row per run, appended as runs finish),
``baselines.csv``, ``rd.png`` (our mean curve vs the baselines'), ``bd.json`` (BD-rate
of ours vs each baseline), ``files/*.moric``. Rerunning skips finished rows (same
image, lambda and config hash); with ``batch_lmbdas=False`` and
``--config.checkpoint.dir`` unset, each encode checkpoints under ``output_dir/ckpt``
and an interrupted one resumes from its last checkpoint.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
from absl import app
from ml_collections import config_flags
from PIL import Image
from tqdm import tqdm

from moric_jax import api, image_io
from moric_jax.eval import baselines as baselines_lib
from moric_jax.eval import bdrate, metrics, plots
from moric_jax.train.batched import compress_image_batched
from moric_jax.train.compress import compress_image

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Sweep config.")

FIELDS = ["image", "lmbda", "bpp", "psnr", "ms_ssim", "bytes", "bpp_estimated",
          "encode_seconds", "decode_seconds", "steps", "config_hash", "seed", "git_commit"]
_SWEEP_ONLY = ("images", "lmbdas", "lmbda", "output_dir", "baselines", "batch_lmbdas",
               "image_path", "checkpoint")


def expand_images(spec: str) -> list[str]:
  """A glob or comma-separated list of paths -> sorted unique existing paths."""
  paths = []
  for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
    matches = sorted(glob.glob(part))
    if not matches:
      raise FileNotFoundError(f"no image matches {part!r}")
    paths.extend(matches)
  return list(dict.fromkeys(paths))


def config_hash(config) -> str:
  cfg = {k: v for k, v in config.to_dict().items() if k not in _SWEEP_ONLY}
  return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]


def git_commit() -> str:
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return ""


def load_crop(path: str, crop: int, max_pixels: int) -> np.ndarray:
  image = image_io.load_image(path, max_pixels=max_pixels)
  if crop:
    h, w = image.shape[:2]
    c = min(crop, h, w)
    top, left = (h - c) // 2, (w - c) // 2
    image = image[top:top + c, left:left + c]
  return image


def read_rows(path: Path) -> list[dict]:
  if not path.exists():
    return []
  with path.open(newline="") as f:
    return list(csv.DictReader(f))


def append_row(path: Path, row: dict, fields: list[str]) -> None:
  """Appends one row and syncs it to disk (a killed sweep loses no finished row)."""
  new = not path.exists()
  with path.open("a", newline="") as f:
    w = csv.DictWriter(f, fieldnames=fields)
    if new:
      w.writeheader()
    w.writerow({k: row.get(k, "") for k in fields})
    f.flush()
    os.fsync(f.fileno())


def file_row(name, image, result, config, chash, commit, train_seconds, out_dir):
  """Writes the real file for one trained result, decodes it, returns the CSV row."""
  h, w = image.shape[:2]
  data, info = api.package(image, result, config)
  image_io.atomic_write_bytes(out_dir / "files" / f"{name}_lmbda{info['lmbda']:g}.moric",
                              data)
  target = image_io.to_uint8(image)
  return {"image": name, "lmbda": info["lmbda"], "bpp": info["bpp"],
          "psnr": info["psnr"],
          "ms_ssim": (metrics.ms_ssim_uint8(info["reconstruction"], target)
                      if min(h, w) >= 11 else ""),
          "bytes": info["bytes"], "bpp_estimated": info["bpp_estimated"],
          "encode_seconds": train_seconds, "decode_seconds": info["decode_seconds"],
          "steps": int(config.num_steps), "config_hash": chash, "seed": int(config.seed),
          "git_commit": commit}


def mean_curve(rows: list[dict], key_field: str) -> tuple[list[float], list[float]]:
  """Mean bpp and PSNR over images for each value of ``key_field``, sorted by bpp."""
  groups: dict[str, list[dict]] = {}
  for r in rows:
    groups.setdefault(str(r[key_field]), []).append(r)
  pts = sorted((float(np.mean([float(r["bpp"]) for r in g])),
                float(np.mean([float(r["psnr"]) for r in g]))) for g in groups.values())
  return [p[0] for p in pts], [p[1] for p in pts]


def main(argv):
  del argv
  logging.getLogger("moric_jax").setLevel(logging.INFO)
  config = _CONFIG.value
  out = Path(config.output_dir)
  (out / "files").mkdir(parents=True, exist_ok=True)
  try:
    images = expand_images(config.images)
  except FileNotFoundError as e:
    sys.exit(f"error: {e}")
  lmbdas = [float(x) for x in config.lmbdas]
  chash, commit = config_hash(config), git_commit()
  results_path = out / "results.csv"
  done = {(r["image"], float(r["lmbda"]), r["config_hash"]) for r in read_rows(results_path)}
  print(f"{len(images)} images x {len(lmbdas)} lambdas, config {chash}, "
        f"{len(jax.devices())} device(s); {len(done)} rows already done")

  baseline_path = out / "baselines.csv"
  baseline_rows = read_rows(baseline_path)
  for path in images:
    name = Path(path).stem
    try:
      image = load_crop(path, int(config.crop), int(config.max_pixels))
    except image_io.ImageError as e:
      sys.exit(f"error: {e}")
    if not any(r["image"] == name for r in baseline_rows):
      for codec in config.baselines:
        for row in baselines_lib.sweep(image_io.to_uint8(image), codec):
          row = dict(row, image=name)
          append_row(baseline_path, row,
                     ["image", "codec", "quality", "num_bytes", "bpp", "psnr", "ms_ssim"])
          baseline_rows.append({k: str(v) for k, v in row.items()})
    todo = [l for l in lmbdas if (name, l, chash) not in done]
    if not todo:
      continue
    bar = tqdm(total=int(config.num_steps) * (len(todo) if not config.batch_lmbdas else 1),
               desc=f"{name} x{len(todo)} lambdas", unit="step")
    t0 = time.perf_counter()
    if config.batch_lmbdas and len(todo) > 1:
      results = compress_image_batched(image, config, todo,
                                       on_chunk=lambda d, t: bar.update(d - bar.n))
      per = (time.perf_counter() - t0) / len(todo)
      trained = [(r, per) for r in results]
    else:
      trained = []
      for l in todo:
        cfg = config.copy_and_resolve_references()
        cfg.lmbda = l
        if not cfg.checkpoint.dir:
          cfg.checkpoint.dir = str(out / "ckpt" / f"{name}_{chash}_lmbda{l:g}")
        t1 = time.perf_counter()
        start = bar.n
        r = compress_image(image, cfg, on_chunk=lambda s, b=start: bar.update(
            b + s.step - bar.n))
        trained.append((r, time.perf_counter() - t1))
    bar.close()
    for result, secs in trained:
      row = file_row(name, image, result, config, chash, commit, secs, out)
      append_row(results_path, row, FIELDS)
      print(f"  {name} lambda={row['lmbda']:g}: {row['bpp']:.4f} bpp, "
            f"{row['psnr']:.2f} dB, encode {secs:.1f} s, decode {row['decode_seconds']:.2f} s")

  rows = [r for r in read_rows(results_path) if r["config_hash"] == chash]
  curves = {"moric_jax": mean_curve(rows, "lmbda")}
  codecs = sorted({r["codec"] for r in baseline_rows})
  for codec in codecs:
    curves[codec] = mean_curve([r for r in baseline_rows if r["codec"] == codec], "quality")
  plots.rd_plot(curves, out / "rd.png",
                title=f"{len(images)} image(s), mean over images (config {chash})")
  bd = {}
  for codec in codecs:
    try:
      value, method = bdrate.bd_rate_auto(*curves[codec], *curves["moric_jax"])
      bd[codec] = {"bd_rate_percent": value, "method": method}
    except ValueError as e:
      bd[codec] = {"bd_rate_percent": None, "error": str(e)}
  image_io.atomic_write_bytes(out / "bd.json", json.dumps(bd, indent=2).encode())
  print(json.dumps(bd, indent=2))
  print(f"wrote {results_path}, {out / 'rd.png'}, {out / 'bd.json'}")


if __name__ == "__main__":
  app.run(main)

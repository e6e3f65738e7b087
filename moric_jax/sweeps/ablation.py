"""The modulation ablation of the multi-region codec, as ``launch.Job`` s.

One job per (scheme, lambda) on one image with one region layout (computed once by
the launcher and stored as ``labels.npy``, so every job codes the same regions).
Each job trains with its own orbax checkpoint directory (``ckpt/<key>/``) and writes
``files/<scheme>_l<lambda>.moric`` and ``jobs/<key>.json``; ``collect`` merges them
into ``results.csv`` and writes ``results.md`` and ``rd.png``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.sweeps import launch, rd

FIELDS = ["scheme", "lmbda", "num_regions", "bpp", "psnr", "bpp_estimated", "bytes",
          "encode_seconds", "steps_per_second", "decode_seconds", "macs_per_pixel",
          "steps", "region_psnr"]
WORK_FN = "moric_jax.sweeps.ablation:run_job"
SINGLE = "single-region"


centre_crop = image_io.centre_crop


def row_key(scheme: str, lmbda) -> str:
  return f"{scheme}__lmbda{float(lmbda):.6g}"


def key_of(row: dict) -> str:
  return row_key(row["scheme"], row["lmbda"])


def schemes_of(config) -> list[str]:
  # "--config.sweep.schemes=none,film" arrives as one string: split on commas.
  return [x.strip() for s in config.sweep.schemes for x in str(s).split(",") if x.strip()]


def runs_of(config) -> list[tuple[str, float]]:
  sw = config.sweep
  runs = [(s, float(l)) for s in schemes_of(config) for l in sw.lmbdas]
  if sw.include_single:
    runs = [(SINGLE, float(l)) for l in sw.lmbdas] + runs
  return runs


def write_plan(config, out: Path, num_regions: int) -> None:
  image_io.atomic_write_bytes(out / "ablation.json", json.dumps({
      "config": config.to_dict(), "image_path": str(config.image_path),
      "num_regions": num_regions, "runs": runs_of(config),
      "launched": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=1, default=str).encode())


def make_jobs(config, out: Path, done: set[str]) -> list[launch.Job]:
  cfg = rd.codec_config(config)
  jobs = []
  for scheme, lmbda in runs_of(config):
    key = row_key(scheme, lmbda)
    if key in done:
      continue
    jobs.append(launch.Job(key, WORK_FN, {
        "image_path": str(Path(config.image_path).absolute()), "config": cfg,
        "crop": int(config.sweep.crop), "scheme": scheme, "lmbda": lmbda,
        "labels": str((out / "labels.npy").absolute())}, int(config.num_steps)))
  return jobs


def run_job(args: dict, ctx: launch.JobContext) -> None:
  """Encodes the ablation image with one scheme at one lambda; emits its row."""
  from moric_jax import api

  c = ml_collections.ConfigDict(args["config"])
  scheme, lmbda = args["scheme"], float(args["lmbda"])
  full = image_io.load_image(args["image_path"], max_pixels=c.max_pixels)
  image = centre_crop(full, int(args["crop"]))
  labels = np.load(args["labels"])
  c.lmbda = lmbda
  single = scheme == SINGLE
  if single:   # no regions at all (not even an automatic proposal)
    c.regions.masks = c.regions.auto = ""
  else:
    c.model.modulation = scheme
  key = row_key(scheme, lmbda)
  root = c.checkpoint.dir
  c.checkpoint.dir = (str(Path(root) / launch.safe_name(key)) if root
                      else ctx.checkpoint_dir(key))
  total = int(c.num_steps)

  def on_chunk(s):
    ctx.progress(s.step, total, f"{scheme} lambda={lmbda:g}", ckpt_dir=c.checkpoint.dir)

  data, info = api.encode(image, c, on_chunk=on_chunk, labels=None if single else labels)
  ctx.close_bar()
  image_io.atomic_write_bytes(ctx.out_dir / "files" / f"{scheme}_l{lmbda:g}.moric", data)
  row = {"scheme": scheme, "lmbda": lmbda, "num_regions": info.get("num_regions", 1),
         "bpp": info["bpp"], "psnr": info["psnr"],
         "bpp_estimated": info["bpp_estimated"], "bytes": info["bytes"],
         "encode_seconds": info["encode_seconds"],
         "steps_per_second": info.get("steps_per_second", ""),
         "decode_seconds": info["decode_seconds"],
         "macs_per_pixel": info.get("macs_per_pixel", ""), "steps": int(c.num_steps),
         "region_psnr": json.dumps([r["psnr"] for r in info.get("regions", [])])}
  ctx.emit(key, row)
  print(f"{scheme:>18s} lambda {lmbda:g}: {info['bpp']:.4f} bpp, {info['psnr']:.2f} dB, "
        f"{info['encode_seconds']:.0f} s", flush=True)


def markdown(rows: list[dict]) -> str:
  cols = ["scheme", "lmbda", "num_regions", "bpp", "psnr", "encode_seconds",
          "steps_per_second", "macs_per_pixel"]
  lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
  for r in sorted(rows, key=lambda r: (r["scheme"], float(r["lmbda"]))):
    cells = []
    for c in cols:
      v = r.get(c, "")
      try:
        v = f"{float(v):.4g}"
      except ValueError:
        pass
      cells.append(v)
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def collect(out_dir: str | Path, echo: Callable[[str], None] = print) -> dict:
  """Merges the job files into ``results.csv``; writes ``results.md`` and ``rd.png``."""
  from moric_jax.eval import plots

  out = Path(out_dir)
  plan = json.loads((out / "ablation.json").read_text())
  rows, added = launch.merge_rows(out, out / "results.csv", FIELDS, key_of)
  image_io.atomic_write_bytes(out / "results.md", markdown(rows).encode())
  curves: dict[str, tuple[list, list]] = {}
  for r in rows:
    curves.setdefault(r["scheme"], ([], []))
    curves[r["scheme"]][0].append(float(r["bpp"]))
    curves[r["scheme"]][1].append(float(r["psnr"]))
  plots.rd_plot(curves, out / "rd.png", title=f"modulation ablation: "
                f"{Path(plan['image_path']).name}, {plan['num_regions']} regions")
  have = {key_of(r) for r in rows}
  missing = [row_key(s, l) for s, l in plan["runs"] if row_key(s, l) not in have]
  if missing:
    echo(f"{len(missing)} of {len(plan['runs'])} rows missing, e.g. {missing[0]}")
  echo(f"wrote {out / 'results.csv'} ({len(rows)} rows, {added} new), "
       f"{out / 'results.md'}, {out / 'rd.png'}")
  return {"rows": len(rows), "added": added, "missing": missing}

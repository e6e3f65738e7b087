r"""The prepared GPU check: full-size Kodak images, shape-batch after shape-batch, in one
command that stops in time and leaves everything in one archive.

  python -m experiments.gpu_check --images='gpu_data/kodak/*.png' --out="$OUT/check" \
      [--lmbdas=0.0004,0.001,0.002,0.004] [--steps=10000] [--batch_images=8] \
      [--time_limit_s=540] [--reserve_s=60] [--preset=default]

Images of one shape (Kodak: 768x512 and 512x768) train together with all their lambdas
(``train.batched.compress_images_batched``: one image x lambda stack per program,
``--batch_images`` images at most). Before each batch it checks the clock: a batch
starts only if the one before it, timed, would still end ``--reserve_s`` seconds
before ``--time_limit_s`` (the first batch always runs). After every batch it writes
the real files, appends the rows (``eval/report.py`` fields) to ``rows.csv`` and
prints lambda-steps/s, seconds per image and the RD rows; at the end ``summary.json``
(batches, throughput, what was skipped) and ``<out>.tar.gz`` holding all of it.

Tested on the CPU with tiny settings (``tests/test_gpu_check.py``); on a GPU, run the
same command with the defaults.
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
import time
from pathlib import Path


def plan_batches(paths: list[str], crop: int, cap: int) -> list[list[str]]:
  """Paths grouped by coded shape, in order of first appearance, ``cap`` at most each."""
  from moric_jax.sweeps import rd
  groups: dict[tuple[int, int], list[str]] = {}
  for p in paths:
    groups.setdefault(rd.coded_shape(p, crop), []).append(p)
  return [g[k:k + cap] for g in groups.values() for k in range(0, len(g), cap)]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  ap.add_argument("--images", default="../shared/data/kodak/kodim*.png",
                  help="glob or comma-separated paths")
  ap.add_argument("--out", default="runs/gpu_check")
  ap.add_argument("--lmbdas", default="0.0004,0.001,0.002,0.004")
  ap.add_argument("--steps", type=int, default=10_000)
  ap.add_argument("--batch_images", type=int, default=8)
  ap.add_argument("--crop", type=int, default=0, help="centre crop (0 = full images)")
  ap.add_argument("--preset", default="default", help="moric_jax.presets name")
  ap.add_argument("--chunk_size", type=int, default=0, help="steps per program call")
  ap.add_argument("--num_deltas", type=int, default=0, help="weight steps searched (0: preset)")
  ap.add_argument("--time_limit_s", type=float, default=540.0)
  ap.add_argument("--reserve_s", type=float, default=60.0)
  args = ap.parse_args(argv)

  from moric_jax import api, image_io, presets
  from moric_jax.eval import report
  from moric_jax.sweeps import launch, rd
  from moric_jax.train.batched import compress_images_batched

  t_start = time.perf_counter()
  try:
    paths = rd.expand_images(args.images)
    lmbdas = [float(x) for x in args.lmbdas.split(",") if x.strip()]
    config = presets.PRESETS[args.preset]()
  except (FileNotFoundError, ValueError, KeyError) as e:
    sys.exit(f"error: {e}")
  config.num_steps = int(args.steps)
  if args.chunk_size:
    config.train.chunk_size = int(args.chunk_size)
  if args.num_deltas:
    config.quant.num_deltas = int(args.num_deltas)
  launch.default_compile_cache()
  out = Path(args.out)
  (out / "files").mkdir(parents=True, exist_ok=True)
  batches = plan_batches(paths, args.crop, max(1, args.batch_images))
  chash, commit = report.config_hash(config), report.git_commit()
  rows, done_batches, last = [], [], None
  print(f"{len(paths)} images in {len(batches)} shape batches x {len(lmbdas)} lambdas x "
        f"{config.num_steps} steps (preset {args.preset}, config {chash})", flush=True)
  for b, part in enumerate(batches):
    elapsed = time.perf_counter() - t_start
    if last is not None and elapsed + last > args.time_limit_s - args.reserve_s:
      print(f"stopping before batch {b + 1}/{len(batches)}: {elapsed:.0f} s gone, the last "
            f"batch took {last:.0f} s, limit {args.time_limit_s:.0f} s - "
            f"{args.reserve_s:.0f} s reserve", flush=True)
      break
    t0 = time.perf_counter()
    images = [rd.load_crop(p, args.crop, int(config.max_pixels)) for p in part]
    results = compress_images_batched(images, config, lmbdas)
    t_train = sum(r.metrics["train_seconds"] for rs in results for r in rs)
    for path, image, per_image in zip(part, images, results):
      name = Path(path).stem
      for lmbda, result in zip(lmbdas, per_image):
        cfg = config.copy_and_resolve_references()
        cfg.lmbda = lmbda
        data, info = api.package(image, result, cfg)
        image_io.atomic_write_bytes(out / "files" / f"{name}_lmbda{lmbda:g}.moric", data)
        rows.append(report.row(report.build(info, cfg, image=name,
                                            target=image_io.to_uint8(image),
                                            chash=chash, commit=commit, lmbda=lmbda)))
    last = time.perf_counter() - t0
    entries = len(part) * len(lmbdas)
    stats = {"batch": b + 1, "images": [Path(p).stem for p in part],
             "shape": list(images[0].shape[:2]), "entries": entries,
             "seconds": round(last, 2), "train_seconds": round(t_train, 2),
             "lambda_steps_per_second": round(entries * config.num_steps / max(t_train, 1e-9), 1),
             "seconds_per_image": round(last / len(part), 2)}
    done_batches.append(stats)
    launch.write_csv(out / "rows.csv", rows, list(report.FIELDS))
    print(f"batch {b + 1}/{len(batches)} {stats['shape'][1]}x{stats['shape'][0]} "
          f"{len(part)} images x {len(lmbdas)} lambdas: {last:.1f} s, "
          f"{stats['lambda_steps_per_second']} lambda-steps/s, "
          f"{stats['seconds_per_image']} s/image", flush=True)
    for r in rows[-entries:]:
      print(f"  {r['image']} lambda={r['lmbda']:g}: {r['bpp']:.4f} bpp, {r['psnr']:.2f} dB",
            flush=True)
  summary = {"config_hash": chash, "git_commit": commit, "preset": args.preset,
             "steps": config.num_steps, "lmbdas": lmbdas, "batches": done_batches,
             "images_done": sum(len(s["images"]) for s in done_batches),
             "images_planned": len(paths), "rows": len(rows),
             "wall_seconds": round(time.perf_counter() - t_start, 1)}
  image_io.atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
  archive = out.with_name(out.name + ".tar.gz")
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(out, arcname=out.name)
  print(f"{summary['images_done']}/{len(paths)} images, {len(rows)} rows in "
        f"{summary['wall_seconds']} s; everything in {archive}", flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())

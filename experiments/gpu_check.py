r"""The prepared GPU check: full-size Kodak images, shape-batch after shape-batch, in one
command that stops in time and leaves everything in one archive.

  python -m experiments.gpu_check --images='gpu_data/kodak/*.png' --out="$OUT/check" \
      [--lmbdas=0.0004,0.001,0.002,0.004] [--steps=10000] [--batch_images=8] \
      [--time_limit_s=540] [--reserve_s=60] [--preset=default] [--search_batch=64] \
      [--package_workers=0]

Images of one shape (Kodak: 768x512 and 512x768) train together with all their lambdas
(``train.batched.compress_images_batched``: one image x lambda stack per program,
``--batch_images`` images at most); their weight-step searches run in step,
``--search_batch`` trials per vmapped evaluation (``compress.finalize_many``). A
finished batch's files are written and decoded on ``--package_workers`` threads (0: one
per CPU) while the next batch trains. Before each batch it checks the clock
(``batch_fits``): a batch starts only if, trained as long as the one before it while
the packaging still queued on the threads goes on, and then packaged itself, it would
end ``--reserve_s`` seconds before ``--time_limit_s`` (the first batch always runs;
packaging is timed per file, and the check waits for the first file measured). When a
batch's last file is
written its rows (``eval/report.py`` fields) go to ``rows.csv`` and are printed with
lambda-steps/s and seconds per image (decode times are taken beside that work). At the
end ``summary.json`` (batches, throughput, what was skipped) and ``<out>.tar.gz``
holding all of it; the exit status is 1 if a file failed to package.

Tested on the CPU with tiny settings (``tests/test_gpu_check.py``); on a GPU, run the
same command with the defaults.
"""
from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def plan_batches(paths: list[str], crop: int, cap: int) -> list[list[str]]:
  """Paths grouped by coded shape, in order of first appearance, ``cap`` at most each."""
  from moric_jax.sweeps import rd
  groups: dict[tuple[int, int], list[str]] = {}
  for p in paths:
    groups.setdefault(rd.coded_shape(p, crop), []).append(p)
  return [g[k:k + cap] for g in groups.values() for k in range(0, len(g), cap)]


class Packager:
  """Writes and decodes finished encodes on worker threads (``api.package``) while the
  main thread trains the next batch. When a batch's last file is written, its rows
  join ``rows`` in submission order, ``rows.csv`` is rewritten and they are printed."""

  def __init__(self, out: Path, workers: int, chash: str, commit: str):
    self.out, self.chash, self.commit = out, chash, commit
    self.workers = max(1, workers)
    self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="package")
    self.lock = threading.Lock()
    self.first_done = threading.Event()   # set when a file's packaging time is known
    self.rows: list[dict] = []
    self.errors: list[str] = []
    self.package_seconds = 0.0
    self.pending = 0          # files submitted and not yet written (or failed)
    self.files_timed = 0      # files whose packaging time is in package_seconds

  def seconds_per_file(self) -> float | None:
    """Mean wall seconds one file took to package so far (None: none finished)."""
    with self.lock:
      return self.package_seconds / self.files_timed if self.files_timed else None

  def seconds_for(self, files: int) -> float:
    """Estimated wall seconds to package ``files`` files on the threads (waves of
    ``workers`` files at the measured seconds per file; 0 before any measurement)."""
    per = self.seconds_per_file()
    return 0.0 if per is None or files <= 0 else math.ceil(files / self.workers) * per

  def seconds_left(self, wait_s: float = 600.0) -> float:
    """Estimated wall seconds until the packaging already queued ends. With files
    queued and none measured yet, first waits (``wait_s`` at most) for one to finish."""
    with self.lock:
      pending = self.pending
    if pending and self.seconds_per_file() is None:
      self.first_done.wait(wait_s)
      with self.lock:
        pending = self.pending
    return self.seconds_for(pending)

  def submit(self, stats: dict, entries: list[tuple]) -> None:
    """``entries``: ``(name, image, lmbda, result, config)`` of one batch (``config``
    the check's; ``rd.packaged`` sets each entry's lambda on a copy)."""
    rows: list = [None] * len(entries)
    left = [len(entries)]
    with self.lock:
      self.pending += len(entries)
    for i, entry in enumerate(entries):
      future = self.pool.submit(self._package, *entry)
      future.add_done_callback(functools.partial(self._done, stats, rows, left, i))

  def _package(self, name, image, lmbda, result, config) -> dict:
    from moric_jax import image_io
    from moric_jax.sweeps import rd
    t0 = time.perf_counter()
    data, info, _ = rd.packaged(image, result, config, lmbda, 0.0)
    image_io.atomic_write_bytes(self.out / "files" / f"{name}_lmbda{lmbda:g}.moric", data)
    row = rd.result_row(name, image, info, config, self.chash, self.commit,
                        info["encode_seconds"])
    with self.lock:
      self.package_seconds += time.perf_counter() - t0
      self.files_timed += 1
    return row

  def _done(self, stats, rows, left, i, future) -> None:
    from moric_jax.eval import report
    from moric_jax.sweeps import launch
    with self.lock:
      try:
        rows[i] = future.result()
      except Exception as e:   # an encoder bug: reported, the other files still written
        self.errors.append(f"batch {stats['batch']} entry {i}: {e}")
      self.pending -= 1
      self.first_done.set()
      left[0] -= 1
      if left[0]:
        return
      done = [r for r in rows if r is not None]
      self.rows.extend(done)
      launch.write_csv(self.out / "rows.csv", self.rows, list(report.FIELDS))
      print(f"batch {stats['batch']} files written:", flush=True)
      for r in done:
        print(f"  {r['image']} lambda={r['lmbda']:g}: {r['bpp']:.4f} bpp, "
              f"{r['psnr']:.2f} dB, decode {r['decode_seconds']:.2f} s", flush=True)

  def close(self) -> None:
    self.pool.shutdown(wait=True)


def batch_fits(elapsed: float, last_batch: float, packaging_left: float,
               packaging_next: float, time_limit: float, reserve: float) -> bool:
  """Whether a batch started ``elapsed`` seconds in ends in time: it trains about
  ``last_batch`` seconds while the ``packaging_left`` seconds of packaging still queued
  run on the threads beside it (whichever is longer), then its own files take
  ``packaging_next`` seconds; all that must end ``reserve`` seconds before
  ``time_limit``."""
  return elapsed + max(last_batch, packaging_left) + packaging_next <= time_limit - reserve


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
  ap.add_argument("--search_batch", type=int, default=64,
                  help="weight-search trials per vmapped evaluation")
  ap.add_argument("--package_workers", type=int, default=0,
                  help="threads writing and decoding files (0: one per CPU)")
  ap.add_argument("--time_limit_s", type=float, default=540.0)
  ap.add_argument("--reserve_s", type=float, default=60.0)
  args = ap.parse_args(argv)

  from moric_jax import image_io, presets
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
  config.quant.search_batch = max(1, int(args.search_batch))
  launch.default_compile_cache()
  out = Path(args.out)
  (out / "files").mkdir(parents=True, exist_ok=True)
  batches = plan_batches(paths, args.crop, max(1, args.batch_images))
  chash, commit = report.config_hash(config), report.git_commit()
  packager = Packager(out, args.package_workers or os.cpu_count() or 1, chash, commit)
  done_batches, last = [], None
  print(f"{len(paths)} images in {len(batches)} shape batches x {len(lmbdas)} lambdas x "
        f"{config.num_steps} steps (preset {args.preset}, config {chash})", flush=True)
  for b, part in enumerate(batches):
    if last is not None:
      budget = args.time_limit_s - args.reserve_s - (time.perf_counter() - t_start)
      pack_left = packager.seconds_left(wait_s=max(0.0, budget))
      pack_next = packager.seconds_for(len(part) * len(lmbdas))
      elapsed = time.perf_counter() - t_start
      if not batch_fits(elapsed, last, pack_left, pack_next, args.time_limit_s,
                        args.reserve_s):
        print(f"stopping before batch {b + 1}/{len(batches)}: {elapsed:.0f} s gone, the "
              f"last batch took {last:.0f} s, packaging still queued about "
              f"{pack_left:.0f} s and this batch's about {pack_next:.0f} s, limit "
              f"{args.time_limit_s:.0f} s - {args.reserve_s:.0f} s reserve", flush=True)
        break
    t0 = time.perf_counter()
    images = [rd.load_crop(p, args.crop, int(config.max_pixels)) for p in part]
    results = compress_images_batched(images, config, lmbdas)
    last = time.perf_counter() - t0
    flat = [r for rs in results for r in rs]
    t_train = sum(r.metrics["train_seconds"] for r in flat)
    entries = len(flat)
    stats = {"batch": b + 1, "images": [Path(p).stem for p in part],
             "shape": list(images[0].shape[:2]), "entries": entries,
             "seconds": round(last, 2), "train_seconds": round(t_train, 2),
             "finalize_seconds": round(last - t_train, 2),
             "lambda_steps_per_second": round(entries * config.num_steps / max(t_train, 1e-9), 1),
             "seconds_per_image": round(last / len(part), 2)}
    done_batches.append(stats)
    print(f"batch {b + 1}/{len(batches)} {stats['shape'][1]}x{stats['shape'][0]} "
          f"{len(part)} images x {len(lmbdas)} lambdas: {last:.1f} s (finalize "
          f"{stats['finalize_seconds']:.1f} s), {stats['lambda_steps_per_second']} "
          f"lambda-steps/s, {stats['seconds_per_image']} s/image", flush=True)
    packager.submit(stats, [(Path(p).stem, image, lmbda, result, config)
                            for p, image, per_image in zip(part, images, results)
                            for lmbda, result in zip(lmbdas, per_image)])
  t_wait = time.perf_counter()
  packager.close()
  rows = packager.rows
  summary = {"config_hash": chash, "git_commit": commit, "preset": args.preset,
             "steps": config.num_steps, "lmbdas": lmbdas,
             "search_batch": config.quant.search_batch, "batches": done_batches,
             "images_done": sum(len(s["images"]) for s in done_batches),
             "images_planned": len(paths), "rows": len(rows),
             "package_seconds": round(packager.package_seconds, 1),
             "package_seconds_per_file": round(packager.seconds_per_file() or 0.0, 2),
             "package_wait_seconds": round(time.perf_counter() - t_wait, 1),
             "errors": packager.errors,
             "wall_seconds": round(time.perf_counter() - t_start, 1)}
  image_io.atomic_write_bytes(out / "summary.json", json.dumps(summary, indent=1).encode())
  archive = out.with_name(out.name + ".tar.gz")
  with tarfile.open(archive, "w:gz") as tar:
    tar.add(out, arcname=out.name)
  print(f"{summary['images_done']}/{len(paths)} images, {len(rows)} rows in "
        f"{summary['wall_seconds']} s (packaging {summary['package_seconds']} s on "
        f"threads, {summary['package_wait_seconds']} s waited for at the end); "
        f"everything in {archive}", flush=True)
  for e in packager.errors:
    print(f"error: {e}", file=sys.stderr)
  return 1 if packager.errors else 0


if __name__ == "__main__":
  sys.exit(main())

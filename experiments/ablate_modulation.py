"""Ablation of the GMN modulation schemes of the multi-region codec.

  python -m experiments.ablate_modulation --config=configs/ablation.py \
      --config.image_path=IMG --config.output_dir=DIR [--config.launch.launcher=slurm \
      --config.launch.slurm.partition=gpu]

Every (scheme, lambda) is a job (``moric_jax/sweeps/ablation.py``; launchers as in
``experiments.sweep``: ``inline``, ``local``, ``slurm``) that encodes a real layered
file, decodes it, and resumes from its orbax checkpoint when requeued or rerun.
Writes to DIR: ``results.csv`` (a row per run, merged from ``jobs/*.json``; rerunning
skips finished rows), ``results.md`` (the same as a markdown table), ``rd.png`` (one
curve per scheme), ``labels.png`` / ``labels.npy`` (the regions used) and
``files/*.moric``. ``python -m experiments.collect --dir=DIR`` regathers them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from absl import app
from absl import logging as absl_logging
from ml_collections import config_flags

from moric_jax import image_io
from moric_jax.regions import masks as masks_lib
from moric_jax.regions import proposals
from moric_jax.sweeps import ablation, launch

_CONFIG = config_flags.DEFINE_config_file("config", "configs/ablation.py",
                                          "Ablation config.")
FIELDS = ablation.FIELDS
centre_crop = ablation.centre_crop


def region_labels(config, image_full: np.ndarray, image: np.ndarray) -> np.ndarray:
  """The label map of the (cropped) image: from the mask file or a proposal."""
  if config.regions.masks:
    try:   # a mask of the cropped image, or of the whole image (then cropped too)
      return masks_lib.load_label_map(config.regions.masks, image.shape[:2])
    except image_io.ImageError:
      if image.shape == image_full.shape:
        raise
    full = masks_lib.load_label_map(config.regions.masks, image_full.shape[:2])
    return masks_lib.validate_label_map(centre_crop(full, config.sweep.crop),
                                        image.shape[:2])
  k = masks_lib.parse_regions_spec(config.regions.auto)
  return proposals.propose_regions(image, max(k, 2), seed=int(config.seed))


def main(argv):
  del argv
  config = _CONFIG.value
  absl_logging.set_verbosity(absl_logging.WARNING)   # no INFO from orbax / the JAX probe
  if not config.image_path:
    sys.exit("error: set --config.image_path=IMAGE")
  if str(config.launch.launcher) not in launch.LAUNCHERS:
    sys.exit(f"error: --config.launch.launcher={config.launch.launcher} is not one of "
             f"{', '.join(launch.LAUNCHERS)}")
  try:
    full = image_io.load_image(config.image_path, max_pixels=config.max_pixels)
    image = centre_crop(full, int(config.sweep.crop))
    labels = region_labels(config, full, image)
  except (image_io.ImageError, ValueError) as e:
    sys.exit(f"error: {e}")
  launch.default_compile_cache()
  out = Path(config.output_dir)
  (out / "files").mkdir(parents=True, exist_ok=True)
  image_io.save_png(out / "labels.png",
                    (labels * (255 // max(1, int(labels.max())))).astype(np.uint8))
  np.save(out / "labels.npy", np.asarray(labels))
  n_obj = int(labels.max())
  ablation.write_plan(config, out, n_obj + 1)
  rows, _ = launch.merge_rows(out, out / "results.csv", FIELDS, ablation.key_of)
  runs = ablation.runs_of(config)
  done = {ablation.key_of(r) for r in rows}
  n_done = sum(ablation.row_key(s, l) in done for s, l in runs)
  print(f"{config.image_path}: {image.shape[1]}x{image.shape[0]}, {n_obj + 1} regions, "
        f"{len(runs)} runs of {config.num_steps} steps ({n_done} done)", flush=True)
  try:
    report = launch.run_jobs(ablation.make_jobs(config, out, done), out, config.launch)
  except RuntimeError as e:   # e.g. launcher=slurm where there is no SLURM
    sys.exit(f"error: {e}")
  if not report.waited:
    print(f"submitted {report.submitted} job(s); when they are done: "
          f"python -m experiments.collect --dir={out}")
    return
  summary = ablation.collect(out)
  if report.failed or summary["missing"]:
    sys.exit(f"error: {len(report.failed)} job(s) failed, {len(summary['missing'])} "
             f"row(s) missing (rerun to retry; jobs resume from their checkpoints)")


if __name__ == "__main__":
  app.run(main)

"""RD sweep: every (image, lambda) encoded to a real .moric file and decoded.

  python -m experiments.sweep --config=configs/sweep.py --config.images='a.png,b.png' \
      --config.lmbdas=0.002,0.01 --config.output_dir=runs/sweep

  # the same sweep as a SLURM job array (one job per image, or per (image, lambda)
  # with --config.batch_lmbdas=False: those resume from checkpoints when requeued)
  python -m experiments.sweep --config=configs/sweep.py ... --config.launcher=slurm \
      --config.slurm.partition=gpu --config.slurm.gpus_per_task=1

``--config.launcher``: ``inline`` (this process, progress bars), ``local`` (one
process per job through submitit's LocalExecutor) or ``slurm`` (a submitit job
array; knobs under ``--config.slurm.*``, see ``moric_jax/sweeps/launch.py``).
``--config.wait=False`` submits and returns; ``python -m experiments.collect
--dir=OUT`` then gathers the results whenever you like.

Writes to ``output_dir``: ``results.csv`` (one row per (image, lambda), merged from
the jobs' ``jobs/*.json`` by this process only), ``baselines.csv``, ``results.md``,
``rd.png`` (our mean curve vs the baselines'), ``bd.json`` (BD-rate of ours vs each
baseline), ``files/*.moric``. Rerunning skips finished rows (same image, lambda and
config hash) and resumes unfinished single-lambda encodes from ``ckpt/``.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

from absl import app
from absl import logging as absl_logging
from ml_collections import config_flags

from moric_jax.eval import anchors
from moric_jax.sweeps import launch, rd

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Sweep config.")


def main(argv):
  del argv
  logging.getLogger("moric_jax").setLevel(logging.INFO)
  config = _CONFIG.value
  absl_logging.set_verbosity(absl_logging.WARNING)   # no INFO from orbax / the JAX probe
  if str(config.get("launcher", "inline")) not in launch.LAUNCHERS:
    sys.exit(f"error: --config.launcher={config.launcher} is not one of "
             f"{', '.join(launch.LAUNCHERS)}")
  launch.default_compile_cache()
  out = Path(config.output_dir)
  (out / "files").mkdir(parents=True, exist_ok=True)
  try:
    images = rd.expand_images(config.images)
    anchors.parse_names(config.get("anchors", None))
  except (FileNotFoundError, ValueError) as e:
    sys.exit(f"error: {e}")
  plan = rd.write_plan(config, out, images)
  chash = plan["config_hash"]
  # Rows of an earlier, interrupted run may sit in jobs/ unmerged: merge them first.
  rows, _ = launch.merge_rows(out, out / "results.csv", rd.FIELDS, rd.key_of)
  done = {rd.key_of(r) for r in rows}
  lmbdas = rd.lmbdas_of(config)
  planned = [rd.row_key(Path(p).stem, l, chash) for p in images for l in lmbdas]
  n_done = sum(k in done for k in planned)
  jobs = rd.make_jobs(config, images, done, chash, plan["git_commit"])
  print(f"{len(images)} images x {len(lmbdas)} lambdas, config {chash}, launcher "
        f"{config.launcher}: {len(jobs)} job(s); {n_done} rows already done", flush=True)
  try:
    report = launch.run_jobs(jobs, out, config)
  except RuntimeError as e:   # e.g. launcher=slurm where there is no SLURM
    sys.exit(f"error: {e}")
  if not report.waited:
    print(f"submitted {report.submitted} job(s) {report.job_ids[:3]}...; when they are "
          f"done: python -m experiments.collect --dir={out}")
    return
  summary = rd.collect(out)
  if report.failed:
    sys.exit(f"error: {len(report.failed)} job(s) failed (rerun the same command to "
             f"retry them; they resume from their checkpoints): "
             + "; ".join(f"{n}: {m}" for n, m, _ in report.failed[:3]))
  if summary["missing"]:
    sys.exit(f"error: {len(summary['missing'])} row(s) missing")


if __name__ == "__main__":
  app.run(main)

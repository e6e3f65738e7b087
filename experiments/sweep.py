"""RD sweep: every (image, lambda) encoded to a real .moric file and decoded.

  python -m experiments.sweep --config=configs/sweep.py --config.sweep.images='a.png,b.png' \
      --config.sweep.lmbdas=0.002,0.01 --config.output_dir=runs/sweep

  # the same sweep as a SLURM job array (one job per image, or per (image, lambda)
  # with --config.sweep.batch_lmbdas=False: those resume from checkpoints when requeued)
  python -m experiments.sweep --config=configs/sweep.py ... --config.launch.launcher=slurm \
      --config.launch.slurm.partition=gpu --config.launch.slurm.gpus_per_task=1

``--config.launch.launcher``: ``inline`` (this process, progress bars), ``local`` (one
process per job through submitit's LocalExecutor) or ``slurm`` (a submitit job
array; knobs under ``--config.launch.slurm.*``, see ``moric_jax/sweeps/launch.py``).
``--config.launch.wait=False`` submits and returns; ``python -m experiments.collect
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

from moric_jax.sweeps import rd

_CONFIG = config_flags.DEFINE_config_file("config", "configs/sweep.py", "Sweep config.")


def main(argv):
  del argv
  logging.getLogger("moric_jax").setLevel(logging.INFO)
  absl_logging.set_verbosity(absl_logging.WARNING)   # no INFO from orbax / the JAX probe
  try:
    rd.run(_CONFIG.value, echo=lambda line: print(line, flush=True))
  except rd.SweepError as e:
    sys.exit(f"error: {e}")


if __name__ == "__main__":
  app.run(main)

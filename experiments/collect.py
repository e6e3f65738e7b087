"""Collects a sweep's results: merge job files, tables, RD plot, BD-rates.

  python -m experiments.collect --dir=runs/bench_kodak_gpu

Works on the output directory of ``experiments.sweep`` (it reads ``sweep.json``)
and of ``experiments.ablate_modulation`` (``ablation.json``), finished or not: rows
of finished jobs are merged into ``results.csv`` (this is the one writer), and
``results.md``, ``rd.png`` (and for sweeps ``baselines.csv``, ``bd.json``) are
rewritten. Missing rows are listed; rerun the launch command to retry them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

_DIR = flags.DEFINE_string("dir", None, "Output directory of a sweep or ablation.")


def main(argv):
  del argv
  if not _DIR.value:
    sys.exit("error: set --dir=OUTPUT_DIR")
  out = Path(_DIR.value)
  if (out / "sweep.json").exists():
    from moric_jax.sweeps import rd
    rd.collect(out)
  elif (out / "ablation.json").exists():
    from moric_jax.sweeps import ablation
    ablation.collect(out)
  else:
    sys.exit(f"error: {out} holds neither sweep.json nor ablation.json (not a sweep "
             f"output directory)")


if __name__ == "__main__":
  app.run(main)

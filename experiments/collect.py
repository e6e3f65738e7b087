"""Collects a sweep's results: merge job files, tables, RD plot, BD-rates.

  python -m experiments.collect --dir=runs/bench_kodak_gpu

Works on the output directory of ``experiments.sweep`` (it reads ``sweep.json``)
and of ``experiments.ablate_modulation`` (``ablation.json``), finished or not: rows
of finished jobs are merged into ``results.csv`` (this is the one writer), and
``results.md``, ``rd.png`` (and for sweeps ``baselines.csv``, ``bd.json``) are
rewritten. Sweeps of full images also draw the published anchors (Cool-chic 5.0.1 /
4.2 / 3.1, C3; ``--anchors=coolchic50,c3`` picks) and give BD-rates against each on
the same images (only images with every lambda; C3, a mean of the 24 Kodak images,
only when all 24 are). Missing rows are listed, and an incomplete sweep's
``results.md`` and ``bd.json`` say so; rerun the launch command to retry them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from absl import app, flags

_DIR = flags.DEFINE_string("dir", None, "Output directory of a sweep or ablation.")
_ANCHORS = flags.DEFINE_string(
    "anchors", None, "Published anchors to draw and compare with (sweeps): all, none or "
    "comma-separated names (coolchic50, coolchic50_clic20, coolchic42, coolchic31, c3); "
    "default: the sweep config's.")


def main(argv):
  del argv
  if not _DIR.value:
    sys.exit("error: set --dir=OUTPUT_DIR")
  out = Path(_DIR.value)
  if (out / "sweep.json").exists():
    from moric_jax.eval import anchors
    from moric_jax.sweeps import rd
    try:
      anchors.parse_names(_ANCHORS.value)
    except ValueError as e:
      sys.exit(f"error: {e}")
    rd.collect(out, anchor_names=_ANCHORS.value)
  elif (out / "ablation.json").exists():
    from moric_jax.sweeps import ablation
    ablation.collect(out)
  else:
    sys.exit(f"error: {out} holds neither sweep.json nor ablation.json (not a sweep "
             f"output directory)")


if __name__ == "__main__":
  app.run(main)

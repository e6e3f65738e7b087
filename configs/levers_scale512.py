"""Issue 25, yardstick (c): the new default against the old one on a 512x512 crop at
5,000 steps (each run ~25 min on 2 CPU cores when alone).

  python -m experiments.levers --config=configs/levers_scale512.py \
      --config.output_dir=runs/levers_scale512

The kodim23 512x512 centre crop, lambdas 0.001 and 0.002, real files. ``base`` is the
default preset (Cool-chic 5's encoder procedure, RDOQ off); ``old_default`` undoes the
procedure (the default before commit 9cd8386: two-tensor proxy, Kumaraswamy noise,
straight-through final 10%, global clip 1.0, no decay, no clamp, no warm-up).
"""
import ml_collections

from configs import levers
from configs.levers_scale import OLD_DEFAULT


def get_config():
  config = levers.get_config()
  base = config.base
  base.sweep.crop = 512
  base.sweep.lmbdas = (0.001, 0.002)
  base.num_steps = 5000
  base.sweep.baselines = ("webp", "avif")
  config.output_dir = "runs/levers_scale512"
  config.base_overrides = "train.chunk_size=100"
  config.levers = ml_collections.ConfigDict({
      "base": "", "old_default": OLD_DEFAULT,
      # Cool-chic's synthesis trunk (one 48-wide ReLU layer): -0.7% at (a), +2.7% here.
      "wide_lsn_relu": "model.lsn.hidden=(48,);model.lsn.activation=relu"})
  config.report_bpp = 0.3
  return config

"""Issue 25 levers: Cool-chic 5's encoder procedure, step by step, judged at 2,000 steps.

  python -m experiments.levers --config=configs/levers_scale.py --config.output_dir=runs/levers_scale

Yardstick (a) of the compression-at-scale issue: the kodim23 256x256 centre crop at
2,000 steps in all, lambdas 0.001 and 0.002, PSNR at 0.491 bpp (Cool-chic 5's own point
there: 36.39 dB). Each lever adds to the one before (they interact), so the table
reads as a path from the old default (``OLD_DEFAULT``) to the full procedure
(``presets.coolchic5_procedure``, today's default).
"""
import ml_collections

from configs import levers

# The default before Cool-chic 5's procedure (commit 9cd8386), the path's starting point.
OLD_DEFAULT = ";".join([
    "train.proxy=two_tensor", "train.noise=kumaraswamy", "train.temperature=(0.3, 0.1)",
    "train.final_phase=ste", "train.final_lr_schedule=constant", "train.ste_fraction=0.1",
    "train.clip_scope=global", "train.clip_norm=1.0", "train.weight_decay=0.0",
    "train.clamp_output=False", "train.warmup.candidates=()"])
NOISE = "train.noise=gaussian;train.gaussian_std=(0.22, 0.15);train.temperature=(0.35, 0.08)"
ONE = NOISE + ";train.proxy=one_tensor"
FROZEN = ONE + ";train.final_phase=frozen;train.final_lr_schedule=cosine;train.ste_fraction=0.05"
NETS = FROZEN + ";train.clip_scope=networks;train.clip_norm=0.1;train.weight_decay=0.01"
WARM = NETS + ";train.warmup.candidates=(5, 2);train.warmup.fraction=0.025"


def get_config():
  config = levers.get_config()
  base = config.base
  base.sweep.lmbdas = (0.001, 0.002)
  base.num_steps = 2000
  base.sweep.baselines = ("webp", "avif")
  config.output_dir = "runs/levers_scale"
  # The path starts from the old default (the procedure is the default now), so the
  # table of WORKSPACE.md "Compression at scale" reads as it was measured.
  config.base_overrides = OLD_DEFAULT
  config.levers = ml_collections.ConfigDict({
      "base": "",
      "noise_temperature": NOISE,
      "one_tensor": ONE,
      "frozen_final": FROZEN,
      "networks_clip_decay": NETS,
      "warmup": WARM,
      "warmup_clamp": WARM + ";train.clamp_output=True",
      "cc5_procedure": WARM + ";quant.rdoq=True",
      "cc5_procedure_clamp": WARM + ";quant.rdoq=True;train.clamp_output=True",
  })
  config.report_bpp = 0.491
  return config

"""Equal-iteration comparison with Cool-chic 5 (issue 12): the bench crops at 2,000 steps.

  python -m experiments.equal_steps --config=configs/equal_steps.py

Cool-chic 5.0.1's own code, run on this CPU on the kodim23 256x256 centre crop with
``--n_itr=2000`` (HOP decoder, lambda 0.001, real bitstream), gave 36.39 dB at
0.491 bpp (../shared/notes/coolchic5-recipe.md). The preset's recipe is used as is;
``num_steps`` counts every training step (warm-up candidates included).
"""
from configs import bench_cpu


def get_config():
  config = bench_cpu.get_config()     # the same four 256x256 crops and lambdas
  config.num_steps = 2000
  config.sweep.baselines = ("webp", "avif")
  config.output_dir = "runs/equal_steps"
  # Measured points of other codecs on the same crops: image -> (bpp, PSNR, label).
  with config.unlocked():
    config.sweep.reference_points = {"kodim23": (0.491, 36.39, "Cool-chic 5.0.1, 2000 itr")}
  return config

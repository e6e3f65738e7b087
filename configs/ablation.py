"""Modulation ablation (MoRIC): the side-GMN schemes and the modular layout ("moric"),
one lambda grid, one image.

  python -m experiments.ablate_modulation --config=configs/ablation.py \
      --config.image_path=IMG --config.output_dir=runs/ablation

Regions come from ``regions.masks`` (a label image of the same size as the image before
cropping) or ``regions.auto`` ("auto:K"). ``include_single`` adds the single-region
codec at the same steps as a reference row.

One job per (scheme, lambda); on a SLURM cluster add ``--config.launcher=slurm
--config.slurm.partition=PARTITION`` (fields in ``moric_jax/sweeps/launch.py``).
"""
from moric_jax import presets
from moric_jax.sweeps import launch


def get_config():
  config = presets.default()
  config.image_path = "data/samples/kodim23.png"
  config.output_dir = "runs/ablation"
  config.crop = 256                      # centre crop (0 = whole image)
  config.num_steps = 600
  config.lmbdas = (0.001, 0.004)
  config.schemes = ("none", "film", "concat_input", "progressive_concat", "moric")
  config.include_single = True
  config.regions.auto = "auto:3"
  launch.add_launch_fields(config)
  return config

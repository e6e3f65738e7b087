"""Modulation ablation (MoRIC): the side-GMN schemes and the modular layout ("moric"),
one lambda grid, one image.

  python -m experiments.ablate_modulation --config=configs/ablation.py \
      --config.image_path=IMG --config.output_dir=runs/ablation

Regions come from ``regions.masks`` (a label image of the same size as the image before
cropping) or ``regions.auto`` ("auto:K"). ``include_single`` adds the single-region
codec at the same steps as a reference row.

One job per (scheme, lambda); on a SLURM cluster add ``--config.launch.launcher=slurm
--config.launch.slurm.partition=PARTITION`` (fields in ``moric_jax/sweeps/launch.py``).
The codec's fields (``presets.default()``), the ablation's (``config.sweep``) and the
launcher's (``config.launch``) are apart; the config is locked.
"""
import ml_collections

from moric_jax import presets
from moric_jax.sweeps import launch


def get_config():
  config = presets.default()
  config.image_path = "data/samples/kodim23.png"
  config.output_dir = "runs/ablation"
  config.num_steps = 600
  config.regions.auto = "auto:3"
  with config.unlocked():
    config.sweep = ml_collections.ConfigDict(dict(
        crop=256,                          # centre crop (0 = whole image)
        lmbdas=(0.001, 0.004),
        schemes=("none", "film", "concat_input", "progressive_concat", "moric"),
        include_single=True))
    config.launch = launch.launch_fields()
  return config.lock()

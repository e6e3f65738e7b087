"""Sweep: every (image, lambda) encoded to a real file, decoded, compared to baselines.

  python -m experiments.sweep --config=configs/sweep.py \
      --config.images='../shared/data/kodak/kodim0[1-4].png' \
      --config.lmbdas=0.0005,0.002,0.008 --config.output_dir=runs/sweep

Launcher fields (``moric_jax/sweeps/launch.py``): ``--config.launcher=inline|local|slurm``,
``--config.slurm.partition=...``, ``--config.slurm.gpus_per_task=1``,
``--config.slurm.timeout_min=240``, ``--config.slurm.array_parallelism=64``, ...
"""
from moric_jax import presets
from moric_jax.sweeps import launch


def get_config():
  config = presets.default()
  config.images = "data/samples/kodim23.png"   # Glob or comma-separated paths.
  config.lmbdas = (0.0005, 0.002, 0.008)
  config.crop = 0                               # Centre crop size in px (0 = full image).
  config.baselines = ("jpeg", "webp", "avif", "jpegxl")
  # Published anchors drawn on rd.png and compared in bd.json on the same images
  # (moric_jax/eval/anchors.py): "all", "none" or names, e.g. "coolchic50,c3".
  config.anchors = "all"
  config.batch_lmbdas = True    # Train an image's lambdas together (vmap, sharded).
  # With batch_lmbdas: up to this many images of one coded shape train together with
  # their lambdas (one image x lambda stack per job; pays on a GPU, not on 2 CPU cores).
  config.batch_images = 1
  config.output_dir = "runs/sweep"
  launch.add_launch_fields(config)
  return config

"""Sweep: every (image, lambda) encoded to a real file, decoded, compared to baselines.

  python -m experiments.sweep --config=configs/sweep.py \
      --config.sweep.images='../shared/data/kodak/kodim0[1-4].png' \
      --config.sweep.lmbdas=0.0005,0.002,0.008 --config.output_dir=runs/sweep

Three kinds of fields, apart: the codec's (``presets.default()``: ``model``, ``train``,
``quant``, ``num_steps``, ...; every job trains with exactly these), the sweep's
(``config.sweep``: what to encode and which tables to draw) and the launcher's
(``config.launch``, ``moric_jax/sweeps/launch.py``): ``--config.launch.launcher=
inline|local|slurm``, ``--config.launch.slurm.partition=...``,
``--config.launch.slurm.gpus_per_task=1``, ``--config.launch.slurm.timeout_min=240``,
``--config.launch.slurm.array_parallelism=64``, ... The config is locked: a misspelt
field is an error, not a new field.
"""
import ml_collections

from moric_jax import presets
from moric_jax.sweeps import launch


def sweep_fields() -> ml_collections.ConfigDict:
  """The ``sweep`` sub-dict: what a sweep encodes, and the tables it draws."""
  return ml_collections.ConfigDict(dict(
      images="data/samples/kodim23.png",   # Glob or comma-separated paths.
      lmbdas=(0.0005, 0.002, 0.008),
      crop=0,                              # Centre crop size in px (0 = full image).
      baselines=("jpeg", "webp", "avif", "jpegxl"),
      # Published anchors drawn on rd.png and compared in bd.json on the same images
      # (moric_jax/eval/anchors.py): "all", "none" or names, e.g. "coolchic50,c3".
      anchors="all",
      batch_lmbdas=True,    # Train an image's lambdas together (vmap, sharded).
      # With batch_lmbdas: up to this many images of one coded shape train together
      # with their lambdas (one image x lambda stack per job; pays on a GPU, not on 2
      # CPU cores).
      batch_images=1))


def get_config():
  config = presets.default()
  config.output_dir = "runs/sweep"
  with config.unlocked():
    config.sweep = sweep_fields()
    config.launch = launch.launch_fields()
  return config.lock()

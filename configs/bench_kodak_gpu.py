"""Full Kodak (24 images) at paper-scale steps, for a GPU/TPU."""
from configs import sweep
from moric_jax import presets


def get_config():
  config = sweep.get_config()
  paper = presets.paper_kodak()
  config.num_steps = paper.num_steps
  config.train.chunk_size = paper.train.chunk_size
  config.images = "../shared/data/kodak/kodim*.png"
  config.crop = 0
  config.lmbdas = (0.0002, 0.0005, 0.001, 0.002, 0.004, 0.008)
  config.output_dir = "runs/bench_kodak_gpu"
  return config

"""Paper-scale preset for Kodak on a GPU/TPU."""
from moric_jax import presets


def get_config():
  return presets.paper_kodak()

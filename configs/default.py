"""Default preset: CPU-friendly single-region codec (see moric_jax/presets.py)."""
from moric_jax import presets


def get_config():
  return presets.default()

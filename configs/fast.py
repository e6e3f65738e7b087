"""Fast preset: few steps, for smoke tests."""
from moric_jax import presets


def get_config():
  return presets.fast()

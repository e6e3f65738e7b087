"""Shared test fixtures: tiny deterministic images and a fast config."""
import os

import jax
import numpy as np
import pytest

# Compiled XLA programs are reused across tests (and runs) of the same shapes.
jax.config.update("jax_compilation_cache_dir",
                  os.environ.get("MORIC_TEST_JAX_CACHE", "/tmp/moric_jax_test_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def smooth_image(height: int, width: int, seed: int = 0, noise: float = 0.03) -> np.ndarray:
  """A smooth colourful ``(H, W, 3) float32`` test image in [0, 1] with some texture."""
  rng = np.random.default_rng(seed)
  y, x = np.mgrid[0:height, 0:width] / max(height, width)
  img = np.stack([0.5 + 0.4 * np.sin(6 * x + 1.0 * rng.random()),
                  0.5 + 0.4 * np.cos(5 * y + 2 * x),
                  0.5 + 0.3 * np.sin(9 * x * y + 3 * y)], axis=-1)
  img += noise * rng.standard_normal(img.shape)
  return np.clip(img, 0, 1).astype(np.float32)


@pytest.fixture
def image32():
  return smooth_image(32, 32)


@pytest.fixture
def tiny_config():
  from moric_jax import presets
  config = presets.default()
  config.num_steps = 120
  config.train.chunk_size = 40
  config.lmbda = 1e-4
  config.quant.num_deltas = 9
  config.train.warmup.candidates = ()   # warm-up has its own tests (test_warmup.py)
  return config

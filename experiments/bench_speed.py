"""Training speed (steps/s) of the default C3-sized model at given image sizes.

  python -m experiments.bench_speed --sizes=128,256 --chunks=1,50 --steps=300

Times the compiled training program only (compile excluded, measured separately),
on centre crops of the sample image, fixed seed.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
from absl import app, flags

from moric_jax import image_io, presets
from moric_jax.model.codec import Codec
from moric_jax.train import overfit

_SIZES = flags.DEFINE_list("sizes", ["128", "256"], "Square crop sizes (px).")
_CHUNKS = flags.DEFINE_list("chunks", ["1", "50"], "Steps fused per lax.scan call.")
_STEPS = flags.DEFINE_integer("steps", 300, "Timed steps per measurement.")
_IMAGE = flags.DEFINE_string("image", "data/samples/kodim23.png", "Source image.")


def main(argv):
  del argv
  config = presets.default()
  full = image_io.load_image(_IMAGE.value)
  print(f"{jax.devices()[0].platform}, {jax.device_count()} device(s)")
  for size in map(int, _SIZES.value):
    h, w = full.shape[:2]
    img = jnp.asarray(full[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2])
    codec = Codec.from_config(config.model, size, size)
    for chunk_size in map(int, _CHUNKS.value):
      opt = overfit.make_optimizer(config.train.clip_norm)
      params = codec.init(jax.random.PRNGKey(0))
      chunk = overfit.build_chunk_fn(codec, config, opt, chunk_size)
      hyper = overfit.hyper_params(config, 10 * _STEPS.value, 10 * _STEPS.value)
      carry = overfit.initial_carry(params, opt, jax.random.PRNGKey(1))
      t0 = time.perf_counter()
      carry, _ = chunk(carry, img, hyper)
      jax.block_until_ready(carry)
      first = time.perf_counter() - t0
      reps = max(1, _STEPS.value // chunk_size)
      t0 = time.perf_counter()
      for _ in range(reps):
        carry, _ = chunk(carry, img, hyper)
      jax.block_until_ready(carry)
      rate = reps * chunk_size / (time.perf_counter() - t0)
      print(f"{size}x{size} chunk={chunk_size:3d}: {rate:6.1f} steps/s "
            f"(compile + first chunk {first:.1f} s)")


if __name__ == "__main__":
  app.run(main)

"""Training speed (steps/s) of the default C3-sized model, lambda batches and regions.

  python -m experiments.bench_speed --sizes=128,256 --chunks=1,50 --steps=300
  python -m experiments.bench_speed --sizes=256 --chunks=50 --lambda_batch=4
  python -m experiments.bench_speed --sizes=256 --chunks=50 --regions=1,2,3
  python -m experiments.bench_speed --sizes=256 --chunks=50 --optimizers=adam,soap

Times the compiled training program only (compile excluded, reported separately), on
centre crops of the sample image, fixed seed. ``--lambda_batch=N`` also times N lambdas
trained together (vmapped, one program) against N one after the other.
``--regions`` times the multi-region codec with 1 (single-region codec), 2 and 3
regions (objects: fixed boxes covering ~30% and ~10% of the crop).
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from moric_jax import image_io, presets
from moric_jax.model.codec import Codec
from moric_jax.train import overfit
from moric_jax.train import state as state_lib

_SIZES = flags.DEFINE_list("sizes", ["128", "256"], "Square crop sizes (px).")
_CHUNKS = flags.DEFINE_list("chunks", ["1", "50"], "Steps fused per lax.scan call.")
_STEPS = flags.DEFINE_integer("steps", 300, "Timed steps per measurement.")
_IMAGE = flags.DEFINE_string("image", "data/samples/kodim23.png", "Source image.")
_LAMBDA_BATCH = flags.DEFINE_integer("lambda_batch", 0, "Also time N batched lambdas.")
_REGIONS = flags.DEFINE_list("regions", [], "Region counts to time (1, 2, 3).")
_OPTIMIZERS = flags.DEFINE_list("optimizers", [""], "Network optimizers to time, e.g. "
                                "adam,soap (default: the preset's).")
_UPSAMPLINGS = flags.DEFINE_list("upsamplings", [""], "Latent upsamplings to time, e.g. "
                                 "bilinear,learned (default: the preset's).")


def _time_chunk(chunk, carry, img, hyper, chunk_size: int) -> tuple[float, float]:
  """``(steps/s, seconds of compile + first chunk)``."""
  t0 = time.perf_counter()
  carry, _ = chunk(carry, img, hyper)
  jax.block_until_ready(carry)
  first = time.perf_counter() - t0
  reps = max(1, _STEPS.value // chunk_size)
  t0 = time.perf_counter()
  for _ in range(reps):
    carry, _ = chunk(carry, img, hyper)
  jax.block_until_ready(carry)
  return reps * chunk_size / (time.perf_counter() - t0), first


def _object_masks(size: int, n: int) -> list[np.ndarray]:
  boxes = [(0.05, 0.45, 0.6, 0.5), (0.6, 0.05, 0.3, 0.35)]   # (top, left, h, w) fractions
  out = []
  for t, l, h, w in boxes[:n]:
    m = np.zeros((size, size), bool)
    m[int(t * size):int((t + h) * size), int(l * size):int((l + w) * size)] = True
    out.append(m)
  return out


def main(argv):
  del argv
  config = presets.default()
  full = image_io.load_image(_IMAGE.value)
  print(f"{jax.devices()[0].platform}, {jax.device_count()} device(s)")
  big = 10 * _STEPS.value
  for size in map(int, _SIZES.value):
    img = jnp.asarray(image_io.centre_crop(full, size))
    runs = [(u, o, c) for u in _UPSAMPLINGS.value for o in _OPTIMIZERS.value
            for c in map(int, _CHUNKS.value)]
    for ups, name, chunk_size in runs:
      if ups:
        config.model.upsampling = ups
      codec = Codec.from_config(config.model, size, size)
      params = codec.init(jax.random.PRNGKey(0))
      if name:
        config.train.optimizer = name
      opt = overfit.make_optimizer(config.train)
      label = (f"{size}x{size} {config.train.optimizer} {codec.upsampling} "
               f"chunk={chunk_size:3d}")
      chunk = overfit.build_chunk_fn(codec, config, opt, chunk_size)
      carry = state_lib.initial(params, opt, jax.random.PRNGKey(1))
      rate, first = _time_chunk(chunk, carry, img, overfit.hyper_params(config, big, big),
                                chunk_size)
      print(f"{label}: {rate:6.1f} steps/s "
            f"(compile + first chunk {first:.1f} s)")
      n = _LAMBDA_BATCH.value
      if n > 1:
        chunk_b = overfit.build_chunk_fn(codec, config, opt, chunk_size, batched=True)
        stack = lambda t: jax.tree_util.tree_map(
            lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), t)
        carry_b = stack(state_lib.initial(params, opt, jax.random.PRNGKey(1)))
        hyper_b = stack(overfit.hyper_params(config, big, big))
        hyper_b["lmbda"] = jnp.geomspace(5e-4, 4e-3, n).astype(jnp.float32)
        rate_b, first_b = _time_chunk(chunk_b, carry_b, img, hyper_b, chunk_size)
        print(f"{label} {n} lambdas batched: {rate_b:6.1f} "
              f"steps/s = {n * rate_b:6.1f} lambda-steps/s, speed-up vs one lambda at a "
              f"time {n * rate_b / rate:.2f}x (compile + first chunk {first_b:.1f} s)")
      for r in map(int, _REGIONS.value):
        if r == 1:
          print(f"{label} 1 region: "
                f"{rate:6.1f} steps/s")
          continue
        mc = Codec.from_config(config.model, size, size, _object_masks(size, r - 1),
                               layer0_weight=config.regions.layer0_weight)
        chunk_m = overfit.build_chunk_fn(mc, config, opt, chunk_size)
        carry_m = state_lib.initial(mc.init(jax.random.PRNGKey(0)), opt,
                                        jax.random.PRNGKey(1))
        hyper_m = overfit.hyper_params(config, big, big, mc.lmbda_array(config.lmbda))
        rate_m, first_m = _time_chunk(chunk_m, carry_m, img, hyper_m, chunk_size)
        print(f"{label} {r} regions "
              f"({config.model.modulation}): {rate_m:6.1f} steps/s "
              f"(compile + first chunk {first_m:.1f} s)")


if __name__ == "__main__":
  app.run(main)

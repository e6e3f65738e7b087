"""Batched overfitting: several RD points, of one image or of several images of one
shape, in one program.

The parameter sets (one per lambda, or per image x lambda) are stacked on a leading
axis and the training chunk is ``vmap``-ed over it (the images too when there are
several); with several devices the stack is sharded over a 1-D mesh
(``jax.sharding``), so a sweep's encodes of one shape run in parallel.
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from moric_jax import image_io
from moric_jax.model.codec import Codec
from moric_jax.train import overfit as overfit_lib
from moric_jax.train import hard_check, warmup
from moric_jax.train.compress import (CompressResult, FinalizeJob, build_codec,
                                     finalize_many, region_settings,
                                     memory_bounds, search_evaluators)


def _stack(tree, n: int):
  return jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), tree)


def _unstack(tree, i: int):
  return jax.tree_util.tree_map(lambda x: x[i], tree)


def lambda_hypers(config: ml_collections.ConfigDict, soft_steps: int, total: int,
                  lmbdas: Sequence[float]) -> list[dict]:
  """``overfit.hyper_params`` for each lambda (the noise may start from the lambda)."""
  return [overfit_lib.hyper_params(config, soft_steps, total, l) for l in lmbdas]


def overfit_batched(codec: Codec, image: np.ndarray, config: ml_collections.ConfigDict,
                    lmbdas: Sequence[float], key: jax.Array,
                    devices: Sequence[jax.Device] | None = None,
                    on_chunk: Callable[[int, int], None] | None = None,
                    evaluate: Callable | None = None) -> list[dict]:
  """Trains one parameter set per entry of ``lmbdas`` jointly; returns their params.

  ``image``: ``(H, W, 3)``, shared by every entry (several lambdas of one image), or
  ``(N, H, W, 3)`` with ``N = len(lmbdas)``, entry ``i`` trained on ``image[i]``
  (several images x lambdas of one shape in one program). All sets start from the
  same initialisation (same seed), as the same encodes run one by one would; with
  ``train.warmup`` each entry goes on from its own best candidate.
  ``on_chunk(steps_done, total)`` reports progress (steps per entry, warm-up
  candidates counted).
  """
  devices = list(devices or jax.devices())
  n = len(lmbdas)
  per_image = np.ndim(image) == 4
  if per_image and len(image) != n:
    raise ValueError(f"{len(image)} images for {n} lambdas: give one image per entry")
  # Pad the batch to a multiple of the device count (padding rows are dropped).
  padded = -(-n // len(devices)) * len(devices)
  lm = list(lmbdas) + [lmbdas[-1]] * (padded - n)
  tc = config.train
  soft_steps, total = overfit_lib.phase_steps(config)
  k_init, k_train = jax.random.split(key)
  params = codec.init(k_init)
  optimizer = overfit_lib.make_optimizer(tc)
  chunk_size = max(1, min(int(tc.chunk_size), total))
  mode = "images" if per_image else True
  chunk = overfit_lib.build_chunk_fn(codec, config, optimizer, chunk_size, batched=mode)
  hypers = lambda_hypers(config, soft_steps, total, lm)
  image_j = jnp.asarray(image, jnp.float32)
  if per_image and padded > n:
    image_j = jnp.concatenate([image_j, jnp.repeat(image_j[-1:], padded - n, axis=0)])
  evaluate = evaluate or overfit_lib.eval_fn(codec, image_j[0] if per_image else image_j,
                                             config)
  evaluators = ([evaluate.on(image_j[i]) for i in range(padded)] if per_image
                else [evaluate] * padded)
  done, offset = 0, 0
  if warmup.stages(config):
    # Progress in steps per entry, every candidate's counted (num_steps budgets them).
    reported = [0]

    def on_steps(steps, aux):
      reported[0] += steps
      if on_chunk is not None:
        on_chunk(reported[0] // len(lm), int(config.num_steps))

    warm_chunk = chunk if warmup.chunk_length(config) == chunk_size else \
        overfit_lib.build_chunk_fn(codec, config, optimizer, warmup.chunk_length(config),
                                   batched=mode)
    carry = warmup.run(
        codec, image_j, config,
        overfit_lib.candidate_carry(codec, params, optimizer, k_init, k_train), hypers,
        warm_chunk, evaluate, on_steps)
    done, offset = warmup.warmup_steps(config), warmup.extra_steps(config)
  else:
    carry = _stack(overfit_lib.initial_carry(params, optimizer, k_train), padded)
  hyper = jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *hypers)
  if len(devices) > 1:
    mesh = Mesh(np.asarray(devices), ("batch",))
    split = NamedSharding(mesh, PartitionSpec("batch"))
    carry = jax.device_put(carry, split)
    hyper = jax.device_put(hyper, split)
    image_j = jax.device_put(image_j, split if per_image
                             else NamedSharding(mesh, PartitionSpec()))
  check_every = hard_check.every(tc)
  losses_of = hard_check.stacked_losses(evaluators, lm)
  while done < total:
    end = hard_check.stop_at(done, chunk_size, soft_steps, total, check_every)
    carry, _ = chunk(carry, image_j,
                     hard_check.chunk_hyper(hyper, done, end, chunk_size, total))
    jax.block_until_ready(carry)
    carry = hard_check.after_chunk(carry, done, end, soft_steps, check_every, losses_of)
    done = end
    if on_chunk is not None:
      on_chunk(done + offset, int(config.num_steps))
  out = []
  for i in range(n):
    last = _unstack(carry[0], i)
    out.append(last if soft_steps == total else overfit_lib.keep_better(
        last, _unstack(carry[4], i), carry[5][i], evaluators[i], lm[i]))
  return out


def compress_image_batched(image: np.ndarray, config: ml_collections.ConfigDict,
                           lmbdas: Sequence[float],
                           devices: Sequence[jax.Device] | None = None,
                           on_chunk: Callable[[int, int], None] | None = None,
                           labels: np.ndarray | None = None) -> list[CompressResult]:
  """``compress_image`` for several lambdas at once; one result each. ``labels``
  ``(H, W)``: regions as in ``compress_image`` (one lambda for every region of an
  entry; per-region lambdas are refused)."""
  return compress_images_batched([image], config, lmbdas, devices, on_chunk,
                                 labels)[0]


def compress_images_batched(images: Sequence[np.ndarray], config: ml_collections.ConfigDict,
                            lmbdas: Sequence[float],
                            devices: Sequence[jax.Device] | None = None,
                            on_chunk: Callable[[int, int], None] | None = None,
                            labels: np.ndarray | None = None
                            ) -> list[list[CompressResult]]:
  """``compress_image`` of one region for every image x lambda, trained in one program.

  ``images``: ``(H, W, 3)`` arrays of one shape (``ValueError`` otherwise). Returns
  ``results[i][j]`` for image ``i`` at ``lmbdas[j]``; each equals the same encode run
  alone up to the order of float reductions. The finalize (weight-step search,
  quantization) runs the searches of every image x lambda in step on programs compiled
  once for the shape (``compress.finalize_many``; ``config.quant.search_batch`` trials
  per evaluation).
  """
  t0 = time.perf_counter()
  images = [image_io.validate_image(im) for im in images]
  shapes = {im.shape for im in images}
  if len(shapes) != 1:
    raise ValueError(f"images of one batch must share a shape, got {sorted(shapes)}")
  height, width = images[0].shape[:2]
  contours = []
  if labels is not None and np.asarray(labels).max() > 0:
    if len(images) != 1:
      raise ValueError("regions are batched over lambdas of one image only")
    if region_settings(config).lmbdas:
      raise ValueError("per-region lambdas cannot be batched over lambdas")
    codec, contours, _ = build_codec(images[0], config, labels)
  else:
    codec = Codec.from_config(config.model, height, width, **memory_bounds(config))
  evaluate = overfit_lib.eval_fn(codec, jnp.asarray(images[0]), config)
  key = jax.random.PRNGKey(int(config.seed))
  if len(images) == 1:
    trained = overfit_batched(codec, images[0], config, lmbdas, key, devices=devices,
                              on_chunk=on_chunk, evaluate=evaluate)
  else:
    stack = np.stack([im for im in images for _ in lmbdas])
    trained = overfit_batched(codec, stack, config, list(lmbdas) * len(images), key,
                              devices=devices, on_chunk=on_chunk, evaluate=evaluate)
  train_seconds = (time.perf_counter() - t0) / (len(lmbdas) * len(images))
  rate_of, dist_of = search_evaluators(codec, jnp.asarray(images[0]), config)
  jobs = []
  for i, image in enumerate(images):
    img = jnp.asarray(image)
    ev, searches = evaluate.on(img), (rate_of.on(img), dist_of.on(img))
    for j, lmbda in enumerate(lmbdas):
      cfg = config.copy_and_resolve_references()
      cfg.lmbda = float(lmbda)
      jobs.append(FinalizeJob(trained[i * len(lmbdas) + j], image, cfg, ev, searches,
                              codec.lmbda_array(float(lmbda)), train_seconds,
                              list(contours)))
  done = finalize_many(codec, jobs)
  results = [done[i * len(lmbdas):(i + 1) * len(lmbdas)] for i in range(len(images))]
  return results

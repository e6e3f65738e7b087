"""Batched encodes: several RD points, of one image or of several images of one shape,
trained in one program (``loop.fit`` with a stack of N entries, sharded over the
devices given) and finalized in step (``compress.finalize_many``).
"""
from __future__ import annotations

import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.model.codec import Codec
from moric_jax.train import checkpoints, loop
from moric_jax.train import plan as plan_lib
from moric_jax.train import overfit as overfit_lib
from moric_jax.train.compress import (CompressResult, FinalizeJob, build_codec,
                                     finalize_many,
                                     memory_bounds, search_evaluators)


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
  procedure = plan_lib.from_config(config)
  images = [image_io.validate_image(im) for im in images]
  shapes = {im.shape for im in images}
  if len(shapes) != 1:
    raise ValueError(f"images of one batch must share a shape, got {sorted(shapes)}")
  height, width = images[0].shape[:2]
  contours = []
  if labels is not None and np.asarray(labels).max() > 0:
    if len(images) != 1:
      raise ValueError("regions are batched over lambdas of one image only")
    if config.regions.lmbdas:
      raise ValueError("per-region lambdas cannot be batched over lambdas")
    codec, contours, _ = build_codec(images[0], config, labels)
  else:
    codec = Codec.from_config(config.model, height, width, **memory_bounds(config))
  evaluate = overfit_lib.Evaluator(codec, jnp.asarray(images[0]), config)
  key = jax.random.PRNGKey(int(config.seed))
  entries = [float(l) for l in lmbdas] * len(images)
  stack = images[0] if len(images) == 1 else np.stack(
      [im for im in images for _ in lmbdas])
  # The checkpoints identify the run by its pixels, labels and lambdas.
  run_data = np.concatenate([np.ravel(stack), np.asarray(entries, np.float32)] + (
      [] if labels is None else [np.ravel(np.asarray(labels, np.float32))]))
  report = None if on_chunk is None else (
      lambda stats: on_chunk(stats.step, int(config.num_steps)))
  trained = loop.fit(codec, stack, config, entries, key, evaluate=evaluate,
                     on_chunk=report, checkpointer=checkpoints.from_config(config, run_data),
                     devices=list(devices or jax.devices()))
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
  for r in done:
    r.metrics["procedure"] = procedure.describe()
  results = [done[i * len(lmbdas):(i + 1) * len(lmbdas)] for i in range(len(images))]
  return results

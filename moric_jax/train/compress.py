"""Encoder pipeline for one image: overfit, choose weight steps, quantize, measure."""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.eval import complexity, metrics
from moric_jax.model import weights as weights_lib
from moric_jax.model.codec import Codec
from moric_jax.train import checkpoints
from moric_jax.train import overfit as overfit_lib
from moric_jax.train import weight_search


@dataclasses.dataclass
class CompressResult:
  """Everything the encoder decided, plus measured numbers.

  ``reconstruction`` is the ``(H, W, 3) uint8`` image the decoder produces from the
  quantized latents and quantized weights.
  """
  codec: Codec
  params: dict                  # Trained float parameters.
  deltas: dict[str, float]      # Chosen weight step per network.
  int_weights: dict[str, dict]  # Integer weights per network.
  symbols: list[np.ndarray]     # Integer latent symbols per grid, (h_k, w_k) int32.
  reconstruction: np.ndarray
  metrics: dict


def decoded_params(result_int_weights: dict, deltas: dict, symbols: list[np.ndarray],
                   codec: Codec) -> dict:
  """Parameters as the decoder sees them (dequantized weights, latents = symbols)."""
  params = {n: weights_lib.dequantize_tree(result_int_weights[n], deltas[n])
            for n in overfit_lib.NETWORKS}
  params["latents"] = [jnp.asarray(s, jnp.float32) / g
                       for s, g in zip(symbols, codec.gains)]
  return params


def compress_image(image: np.ndarray, config: ml_collections.ConfigDict,
                   on_chunk: Callable[[overfit_lib.ChunkStats], None] | None = None,
                   params: dict | None = None) -> CompressResult:
  """Encodes ``image`` ``(H, W, 3) float32 in [0, 1]`` with ``config``."""
  t0 = time.perf_counter()
  image = image_io.validate_image(image)
  height, width = image.shape[:2]
  codec = Codec.from_config(config.model, height, width)
  key = jax.random.PRNGKey(int(config.seed))
  evaluate = overfit_lib.eval_fn(codec, jnp.asarray(image), config)
  checkpointer = checkpoints.from_config(config, image)
  meter = overfit_lib.SpeedMeter(on_chunk)
  params = overfit_lib.overfit(codec, image, config, key, params=params,
                               on_chunk=meter, evaluate=evaluate,
                               checkpointer=checkpointer)
  result = finalize(codec, params, image, config, evaluate, time.perf_counter() - t0)
  result.metrics["steps_per_second"] = meter.steps_per_second
  return result


def finalize(codec: Codec, params: dict, image: np.ndarray,
             config: ml_collections.ConfigDict, evaluate: Callable,
             train_seconds: float) -> CompressResult:
  """Chooses weight steps, quantizes and measures trained ``params`` (one lambda)."""
  t0 = time.perf_counter()
  height, width = image.shape[:2]
  num_pixels = height * width
  deltas_grid = weight_search.candidate_deltas(
      config.quant.delta_min, config.quant.delta_max, config.quant.num_deltas)
  lmbda = float(config.lmbda)
  choice = {
      "arm": weight_search.search_network(params, "arm", deltas_grid,
                                          lambda p: evaluate(p, lmbda)[1], lmbda,
                                          num_pixels, "bpp_latents"),
      "lsn": weight_search.search_network(params, "lsn", deltas_grid,
                                          lambda p: evaluate(p, lmbda)[1], lmbda,
                                          num_pixels, "mse"),
  }
  deltas = {n: c.delta for n, c in choice.items()}
  int_weights = {n: c.int_params for n, c in choice.items()}
  symbols = [np.asarray(s) for s in codec.integer_symbols(params["latents"])]
  qparams = decoded_params(int_weights, deltas, symbols, codec)
  _, aux, recon_f = evaluate(qparams, lmbda)
  latent_bits = float(aux["bpp_latents"]) * num_pixels
  reconstruction = image_io.to_uint8(np.asarray(recon_f))
  weight_bits = sum(c.bits for c in choice.values())
  encode_seconds = train_seconds + time.perf_counter() - t0
  psnr = metrics.psnr_uint8(reconstruction, image_io.to_uint8(image))
  macs = complexity.macs_per_pixel(config.model, height, width)
  m = {
      "psnr": psnr,
      "bpp_latents": float(latent_bits) / num_pixels,
      "bpp_weights": weight_bits / num_pixels,
      "bpp_estimated": (float(latent_bits) + weight_bits) / num_pixels,
      "num_steps": int(config.num_steps),
      "encode_seconds": encode_seconds,
      "train_seconds": train_seconds,
      "height": height, "width": width,
      "seed": int(config.seed),
      "lmbda": lmbda,
      "weight_deltas": deltas,
      "num_params": {n: weights_lib.num_params(params[n]) for n in overfit_lib.NETWORKS},
      "macs_per_pixel": macs["total"],
      "macs_per_pixel_parts": macs,
  }
  return CompressResult(codec=codec, params=params, deltas=deltas,
                        int_weights=int_weights, symbols=symbols,
                        reconstruction=reconstruction, metrics=m)

"""Encoder pipeline for a multi-region image (MoRIC): contours, joint overfit, quantize.

The masks the networks are trained on are the ones the decoder gets back: every object
mask is C*-coded first and decoded again (``cstar``), and the region layouts are derived
from those decoded masks exactly as the decoder derives them.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.eval import complexity
from moric_jax.model import weights as weights_lib
from moric_jax.model.multi_codec import MultiCodec
from moric_jax.regions import cstar, masks as masks_lib
from moric_jax.train import checkpoints
from moric_jax.train import overfit as overfit_lib
from moric_jax.train import weight_search


@dataclasses.dataclass
class RegionsResult:
  """Trained multi-region codec, its quantized form and float-weight measurements."""
  codec: MultiCodec
  params: dict
  contours: list[bytes]             # C* bytes per object region
  lmbdas: np.ndarray                # (R,) lambda per region
  deltas: dict                      # arm, gmn: float; lsn: [float per region]
  int_weights: dict                 # arm, gmn: tree; lsn: [tree per region]
  symbols: list[list[np.ndarray]]   # per region, per grid (0 where not coded)
  metrics: dict


def region_settings(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """``config.regions`` with defaults filled in."""
  r = ml_collections.ConfigDict(dict(masks="", auto="", lmbdas="", layer0_weight=0.05))
  if config.get("regions"):
    r.update(config.regions)
  return r


def code_contours(labels: np.ndarray) -> tuple[list[bytes], list[np.ndarray]]:
  """C*-codes every object of ``labels`` (1..N) -> (bytes, decoded masks)."""
  h, w = labels.shape
  contours, decoded = [], []
  for i in range(1, int(labels.max()) + 1):
    data = cstar.encode_mask(labels == i)
    contours.append(data)
    decoded.append(cstar.decode_mask(data, (h, w)))
  return contours, decoded


def decoded_params(codec: MultiCodec, int_weights: dict, deltas: dict,
                   symbols) -> dict:
  """Parameters as the decoder sees them."""
  p = {"arm": weights_lib.dequantize_tree(int_weights["arm"], deltas["arm"]),
       "lsn": [weights_lib.dequantize_tree(k, d)
               for k, d in zip(int_weights["lsn"], deltas["lsn"])]}
  if codec.gmn is not None:
    p["gmn"] = weights_lib.dequantize_tree(int_weights["gmn"], deltas["gmn"])
  p["latents"] = [[jnp.asarray(s, jnp.float32) / g for s, g in zip(grids, codec.gains)]
                  for grids in symbols]
  return p


def compress_regions(image: np.ndarray, labels: np.ndarray,
                     config: ml_collections.ConfigDict,
                     on_chunk: Callable | None = None) -> RegionsResult:
  """Encodes ``image`` ``(H, W, 3)`` in [0, 1] split by ``labels`` ``(H, W)`` (0..N)."""
  t0 = time.perf_counter()
  image = image_io.validate_image(image)
  h, w = image.shape[:2]
  labels = masks_lib.validate_label_map(labels, (h, w))
  rs = region_settings(config)
  contours, decoded = code_contours(labels)
  try:
    codec = MultiCodec.from_config(config.model, h, w, decoded, rs.layer0_weight)
    lmbdas = codec.lmbda_array(
        config.lmbda, masks_lib.parse_region_lmbdas(rs.lmbdas, codec.num_regions))
  except ValueError as e:   # a region hidden by later ones, bad per-region lambdas
    raise image_io.ImageError(str(e)) from None
  key = jax.random.PRNGKey(int(config.seed))
  img = jnp.asarray(image)
  evaluate = overfit_lib.eval_fn(codec, img, config, lmbdas)
  checkpointer = checkpoints.from_config(
      config, np.concatenate([image, labels[..., None].astype(np.float32)], axis=-1))
  meter = overfit_lib.SpeedMeter(on_chunk)
  params = overfit_lib.overfit(codec, image, config, key, on_chunk=meter,
                               evaluate=evaluate, checkpointer=checkpointer,
                               lmbda=lmbdas)
  train_seconds = time.perf_counter() - t0

  # Weight steps: the ARM changes only latent bits, GMN/LSNs only the distortion.
  grid = weight_search.candidate_deltas(config.quant.delta_min, config.quant.delta_max,
                                        config.quant.num_deltas)
  pixels = h * w
  aux_of = lambda p: evaluate(p)[1]
  lam0 = float(lmbdas[0])
  lam_np = np.asarray(lmbdas, np.float64)
  # What each network changes, as in the training loss (besides its own bits).
  latent_cost = lambda a: float(np.dot(lam_np, np.asarray(a["region_latent_bits"]))) / pixels
  dist_cost = lambda a: float(a["mse"]) + codec.layer0_weight * float(a["mse_layer0"])
  names = [("arm", latent_cost, lam0)]
  if codec.gmn is not None:
    names.append(("gmn", dist_cost, lam0))
  names += [(("lsn", r), dist_cost, float(lmbdas[r])) for r in range(codec.num_regions)]
  choice = {n: weight_search.search_network(params, n, grid, aux_of, lam, pixels, key_)
            for n, key_, lam in names}
  deltas = {"arm": choice["arm"].delta,
            "lsn": [choice[("lsn", r)].delta for r in range(codec.num_regions)]}
  ints = {"arm": choice["arm"].int_params,
          "lsn": [choice[("lsn", r)].int_params for r in range(codec.num_regions)]}
  if codec.gmn is not None:
    deltas["gmn"], ints["gmn"] = choice["gmn"].delta, choice["gmn"].int_params
  symbols = [[np.asarray(s) for s in grids] for grids in codec.integer_symbols(
      params["latents"])]
  _, aux, _ = evaluate(decoded_params(codec, ints, deltas, symbols))
  aux = jax.device_get(aux)
  m = {
      "num_regions": codec.num_regions,
      "modulation": str(config.model.get("modulation", "progressive_concat")),
      "lmbdas": [float(x) for x in lmbdas],
      "region_pixels": np.bincount(codec.labels().ravel(),
                                   minlength=codec.num_regions).tolist(),
      "bpp_latents_float": float(aux["bpp_latents"]),
      "train_seconds": train_seconds,
      "steps_per_second": meter.steps_per_second,
      "encode_seconds": time.perf_counter() - t0,
      "num_steps": int(config.num_steps), "seed": int(config.seed),
      "macs_per_pixel": complexity.multi_macs_per_pixel(codec),
  }
  return RegionsResult(codec, params, contours, lmbdas, deltas, ints, symbols, m)

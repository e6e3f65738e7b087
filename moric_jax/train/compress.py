"""Encoder pipeline for one image, one region or many: contours, overfit, quantize.

The masks the networks are trained on are the ones the decoder gets back: every object
mask is C*-coded first and decoded again (``cstar``), and the region layout is derived
from those decoded masks exactly as the decoder derives it. One region (no labels) is
the same pipeline with no contours.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax import image_io
from moric_jax.coding import network_layout, weights_coding
from moric_jax.eval import complexity, metrics
from moric_jax.model import weights as weights_lib
from moric_jax.model.codec import Codec
from moric_jax.regions import cstar, masks as masks_lib
from moric_jax.train import checkpoints, loop
from moric_jax.train import plan as plan_lib
from moric_jax.train import overfit as overfit_lib
from moric_jax.train import search_batches
from moric_jax.train import weight_search


@dataclasses.dataclass
class CompressResult:
  """Everything the encoder decided, plus float-model measurements.

  ``deltas`` / ``int_weights`` / ``factors`` (per-tensor step factors,
  ``weights_coding.tensor_steps``): ``arm`` (and ``gmn``, ``upsampling``) one each,
  ``lsn`` a list in ``codec.layout.rendered`` order. ``symbols``: integer latents per grid, ``(h_k, w_k)
  int32`` (0 where not coded). ``reconstruction``: ``(H, W, 3) uint8`` of the quantized
  model's JAX forward (the file's own decode is what ``api.package`` reports).
  """
  codec: Codec
  params: dict
  contours: list[bytes]             # C* bytes per object region
  lmbdas: np.ndarray                # (R,) lambda per region
  deltas: dict
  int_weights: dict
  symbols: list[np.ndarray]
  reconstruction: np.ndarray
  metrics: dict
  factors: dict = dataclasses.field(default_factory=dict)


def code_contours(labels: np.ndarray) -> tuple[list[bytes], list[np.ndarray]]:
  """C*-codes every object of ``labels`` (1..N) -> (bytes, decoded masks)."""
  h, w = labels.shape
  contours, decoded = [], []
  for i in range(1, int(labels.max()) + 1):
    data = cstar.encode_mask(labels == i)
    contours.append(data)
    decoded.append(cstar.decode_mask(data, (h, w)))
  return contours, decoded


def decoded_params(codec: Codec, int_weights: dict, deltas: dict,
                   symbols: list[np.ndarray], factors: dict | None = None) -> dict:
  """Parameters as the decoder sees them (dequantized weights, latents = symbols);
  ``factors`` (as ``CompressResult.factors``) put each tensor on its own step."""
  factors = factors or {}
  steps = lambda delta, fs: weights_coding.network_steps(delta, fs or ())
  p = {n: weights_lib.dequantize_tree(int_weights[n], steps(deltas[n], factors.get(n)))
       for n in codec.shared_networks}
  lsn_f = factors.get("lsn") or [()] * len(deltas["lsn"])
  p["lsn"] = [weights_lib.dequantize_tree(k, steps(d, fs))
              for k, d, fs in zip(int_weights["lsn"], deltas["lsn"], lsn_f)]
  p["latents"] = [jnp.asarray(s, jnp.float32) / g for s, g in zip(symbols, codec.gains)]
  return p


def memory_bounds(config: ml_collections.ConfigDict) -> dict:
  """``band_pixels`` / ``arm_chunk`` of ``config.train`` (0 when absent)."""
  return {"band_pixels": int(config.train.band_pixels),
          "arm_chunk": int(config.train.arm_chunk)}


def build_codec(image: np.ndarray, config: ml_collections.ConfigDict,
                labels: np.ndarray | None = None
                ) -> tuple[Codec, list[bytes], np.ndarray]:
  """``(codec, contours, lmbdas)`` for ``image`` split by ``labels`` (``None`` = one
  region). ``ImageError`` for layouts or per-region lambdas that cannot be used."""
  h, w = image.shape[:2]
  rs = config.regions
  contours, decoded = [], []
  if labels is not None:
    labels = masks_lib.validate_label_map(labels, (h, w))
    contours, decoded = code_contours(labels)
  if rs.object_only and not decoded:
    raise image_io.ImageError("--object-only needs object masks (--masks FILE)")
  try:
    codec = Codec.from_config(config.model, h, w, decoded, bool(rs.object_only),
                              rs.layer0_weight, **memory_bounds(config))
    lmbdas = codec.lmbda_array(
        config.lmbda, masks_lib.parse_region_lmbdas(rs.lmbdas, codec.num_regions))
  except ValueError as e:   # a region hidden by later ones, bad per-region lambdas
    raise image_io.ImageError(str(e)) from None
  return codec, contours, lmbdas


def compress_image(image: np.ndarray, config: ml_collections.ConfigDict,
                   on_chunk: Callable[[overfit_lib.ChunkStats], None] | None = None,
                   params: dict | None = None, labels: np.ndarray | None = None
                   ) -> CompressResult:
  """Encodes ``image`` ``(H, W, 3) float32 in [0, 1]``, split by ``labels`` ``(H, W)``
  (0 = background, 1..N objects; ``None`` = one region). The procedure, top-down:

  1. the plan (``plan.from_config``: every phase, validated before any work);
  2. the regions: object contours C*-coded and decoded back, the codec of their layout;
  3. training (``loop.fit``): warm-up -> soft phase with hard-loss checks -> final
     phase, checkpointed when ``config.checkpoint.dir`` is set;
  4. ``finalize``: weight steps per network -> per-tensor steps -> RDOQ -> quantized
     weights and symbols, measured. ``api.package`` writes the file.
  """
  t0 = time.perf_counter()
  procedure = plan_lib.from_config(config)
  image = image_io.validate_image(image)
  codec, contours, lmbdas = build_codec(image, config, labels)
  evaluate = overfit_lib.Evaluator(codec, jnp.asarray(image), config, lmbdas)
  run_data = image if codec.num_regions == 1 else np.concatenate(
      [image, codec.labels()[..., None].astype(np.float32)], axis=-1)
  meter = overfit_lib.SpeedMeter(on_chunk)
  params = loop.fit(codec, image, config, [lmbdas], jax.random.PRNGKey(int(config.seed)),
                    params=params, on_chunk=meter, evaluate=evaluate,
                    checkpointer=checkpoints.from_config(config, run_data))[0]
  result = finalize(codec, params, image, config, evaluate,
                    search_evaluators(codec, jnp.asarray(image), config), lmbdas,
                    time.perf_counter() - t0, contours)
  result.metrics["steps_per_second"] = meter.steps_per_second
  result.metrics["procedure"] = procedure.describe()
  return result


def search_evaluators(codec: Codec, image: jax.Array, config: ml_collections.ConfigDict
                      ) -> tuple[Callable, Callable]:
  """``(rate_of, dist_of)``: jitted ``params -> {"region_latent_bits"}`` and
  ``params -> {"mse", "mse_layer0"}`` (hard latents), the two halves of the evaluation
  the weight-step searches need; neither depends on lambda, so one pair serves every
  lambda of an image."""
  return (overfit_lib.Evaluator(codec, image, config, keys=("region_latent_bits",)),
          overfit_lib.Evaluator(codec, image, config, keys=("mse", "mse_layer0")))


def finalize(codec: Codec, params: dict, image: np.ndarray,
             config: ml_collections.ConfigDict, evaluate: Callable,
             searches: tuple[Callable, Callable], lmbdas: np.ndarray,
             train_seconds: float, contours: list[bytes] = ()) -> CompressResult:
  """Chooses weight steps, quantizes and measures trained ``params``.

  Each network's step is searched on its own (``weight_search``): the ARM changes only
  the latent rate (``searches[0]``), the GMN and LSNs only the distortion
  (``searches[1]``; ``search_evaluators``), each network's own bits weighed by its
  region's lambda, as in the training loss.
  """
  return finalize_many(codec, [FinalizeJob(params, image, config, evaluate, searches,
                                           lmbdas, train_seconds, list(contours))])[0]


@dataclasses.dataclass
class FinalizeJob:
  """One trained codec of a stack to finalize (arguments of ``finalize``)."""
  params: dict
  image: np.ndarray
  config: ml_collections.ConfigDict
  evaluate: Callable
  searches: tuple[Callable, Callable]
  lmbdas: np.ndarray
  train_seconds: float
  contours: list[bytes] = dataclasses.field(default_factory=list)


def finalize_many(codec: Codec, jobs: Sequence[FinalizeJob]) -> list[CompressResult]:
  """``finalize`` of every job (trained codecs of one ``codec`` layout), their weight
  searches run in step (``search_batches``): with ``config.quant.search_batch`` N > 1
  (the first job's), the trials of all jobs are evaluated N at a time in one vmapped
  program; 1 evaluates them one by one. Each job's ``encode_seconds`` counts an equal
  share of the searches."""
  t0 = time.perf_counter()
  batch = int(jobs[0].config.quant.search_batch)
  choices = search_batches.run_in_step(
      [_weight_choices(codec, j.params, j.config, j.lmbdas) for j in jobs],
      [{"rate": j.searches[0], "dist": j.searches[1]} for j in jobs], batch)
  share = (time.perf_counter() - t0) / len(jobs)
  return [_measured(codec, j, c, share) for j, c in zip(jobs, choices)]


def _weight_choices(codec: Codec, params: dict, config: ml_collections.ConfigDict,
                    lmbdas: np.ndarray):
  """The searches of one codec's networks as one ``search_batches`` request chain;
  returns ``{name: WeightChoice}`` (``"arm"``, shared networks, ``("lsn", j)``)."""
  pixels = codec.shown_pixels
  grid = weight_search.candidate_deltas(config.quant.delta_min, config.quant.delta_max,
                                        config.quant.num_deltas)
  lam = np.asarray(lmbdas, np.float64)
  latent_cost = lambda a: float(np.dot(lam, np.asarray(a["region_latent_bits"]))) / pixels
  dist_cost = lambda a: float(a["mse"]) + codec.layer0_weight * float(a["mse_layer0"])
  names = [("arm", latent_cost, lam[0], "rate")]
  names += [(n, dist_cost, lam[0], "dist") for n in codec.shared_networks if n != "arm"]
  rendered = codec.layout.rendered
  names += [(("lsn", j), dist_cost, lam[r], "dist") for j, r in enumerate(rendered)]
  per_tensor = bool(config.quant.tensor_steps)
  rdoq = bool(config.quant.rdoq)
  tag = search_batches.tagged
  choice = {}
  for n, c, l, which in names:   # LSN 0 before the object LSNs coded relative to it
    bits_of = None
    ref = codec.lsn_reference(n[1]) if isinstance(n, tuple) else None
    if ref is not None:
      base = choice[("lsn", ref)]
      bits_of = lambda k, d, base=base: weights_lib.int_tree_bits(
          network_layout.reference_residual(k, base.int_params, base.steps, d))
    choice[n] = yield from tag(which, weight_search.search_network(
        params, n, grid, float(l), pixels, c, bits_of))
    if per_tensor and ref is None:   # object LSNs keep their one step (factors 16)
      choice[n] = yield from tag(which, weight_search.refine_tensor_steps(
          params, n, choice[n], float(l), pixels, c))
    if rdoq and ref is None:
      choice[n] = yield from tag(which, weight_search.round_towards_zero(
          params, n, choice[n], float(l), pixels, c))
  return choice


def _measured(codec: Codec, job: FinalizeJob, choice: dict, search_seconds: float
              ) -> CompressResult:
  """The result of one finalized job: quantized weights and latents, measured."""
  t0 = time.perf_counter()
  params, image, config, lmbdas = job.params, job.image, job.config, job.lmbdas
  pixels = codec.shown_pixels
  lam = np.asarray(lmbdas, np.float64)
  rendered = codec.layout.rendered
  deltas = {n: choice[n].delta for n in codec.shared_networks}
  ints = {n: choice[n].int_params for n in codec.shared_networks}
  factors = {n: choice[n].factors for n in codec.shared_networks}
  deltas["lsn"] = [choice[("lsn", j)].delta for j in range(len(rendered))]
  ints["lsn"] = [choice[("lsn", j)].int_params for j in range(len(rendered))]
  factors["lsn"] = [choice[("lsn", j)].factors for j in range(len(rendered))]
  symbols = [np.asarray(s) for s in codec.integer_symbols(params["latents"])]
  _, aux, recon_f = job.evaluate(decoded_params(codec, ints, deltas, symbols, factors),
                                 lmbdas)
  aux = jax.device_get(aux)
  reconstruction = image_io.to_uint8(np.asarray(recon_f))
  weight_bits = sum(c.bits for c in choice.values())
  latent_bits = float(aux["bpp_latents"]) * pixels
  shown = codec.layout.shown()
  m = {
      "psnr": metrics.psnr_uint8(reconstruction[shown], image_io.to_uint8(image)[shown]),
      "bpp_latents": latent_bits / pixels,
      "bpp_weights": weight_bits / pixels,
      "bpp_estimated": (latent_bits + weight_bits) / pixels,
      "num_steps": int(config.num_steps), "seed": int(config.seed),
      "train_seconds": job.train_seconds,
      "encode_seconds": job.train_seconds + search_seconds + time.perf_counter() - t0,
      "height": codec.height, "width": codec.width,
      "lmbda": float(config.lmbda), "lmbdas": [float(x) for x in lam],
      "num_regions": codec.num_regions,
      "modulation": codec.scheme,
      "region_pixels": codec.layout.region_pixels().tolist(),
      "weight_deltas": deltas,
      "weight_factors": factors,
      "num_params": {n: weights_lib.num_params(params[n]) for n in codec.networks},
      "macs_per_pixel": complexity.macs_per_pixel(codec),
  }
  return CompressResult(codec=codec, params=params, contours=list(job.contours),
                        lmbdas=np.asarray(lmbdas, np.float32), deltas=deltas,
                        int_weights=ints, symbols=symbols, reconstruction=reconstruction,
                        metrics=m, factors=factors)

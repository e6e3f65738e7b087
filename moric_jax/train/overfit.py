"""The training step program: one jit-compiled chunk of steps (``lax.scan``).

A step of the soft phase sees soft-rounded latents plus annealed noise (Kumaraswamy or
Gaussian) in rate, context and synthesis as ``train.proxy`` says; a step of the final
phase the hard symbols (``train.final_phase``: ``frozen``, the latents stay put and only
the networks fit them, as Cool-chic 5; ``ste``, the latents move by straight-through
gradients), at a low learning rate, keeping the parameters of the lowest hard loss.
Adam for the latents, Adam or SOAP for the networks, cosine learning rate. The phase is
derived from the step, so one program runs both. The loop around it is ``loop.fit``;
the procedure it follows is ``plan.EncodePlan``.
Loss = MSE + lmbda * (latent bits + estimated weight bits) / pixels.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from moric_jax.model.codec import Codec
from moric_jax.train import plan, schedules, soap
from moric_jax.train.plan import CLIP_SCOPES, FINAL_PHASES, OPTIMIZERS
from moric_jax.train.state import TrainState, initial

@dataclasses.dataclass
class ChunkStats:
  """Metrics of the last step of a chunk (host floats)."""
  step: int
  phase: str
  loss: float
  psnr: float
  bpp: float
  steps_per_second: float


def loss_terms(params: dict, codec: Codec, image: jax.Array, lmbda, weight_delta: float,
               *, mode: str, temperature=0.3, noise_a=1.0, key=None, ste=None,
               noise: str = "kumaraswamy", proxy: str = "two_tensor",
               clamp_output: bool = False) -> tuple[jax.Array, dict, jax.Array]:
  """``(D + lmbda * R, aux, recon)`` (``Codec.rd_terms``); R in bpp: latent bits +
  estimated weight bits. ``lmbda``: scalar or ``(R,)`` per region."""
  return codec.rd_terms(params, image, lmbda, weight_delta, mode=mode,
                        temperature=temperature, noise_a=noise_a, key=key, ste=ste,
                        noise=noise, proxy=proxy, clamp_output=clamp_output)


def loss_fn(*args, **kwargs) -> tuple[jax.Array, dict]:
  """``loss_terms`` without the reconstruction (for ``jax.value_and_grad``)."""
  loss, aux, _ = loss_terms(*args, **kwargs)
  return loss, aux




def _labels(params: dict) -> dict:
  """Optimizer group of every leaf: ``latents`` or ``networks``."""
  return {k: jax.tree_util.tree_map(lambda _, k=k: "latents" if k == "latents"
                                    else "networks", v) for k, v in params.items()}


def make_optimizer(train_config: ml_collections.ConfigDict,
                   warmup: "plan.WarmupSettings | None" = None
                   ) -> optax.GradientTransformation:
  """Update direction (the learning rate is applied per step): Adam for the latents
  and ``train.optimizer`` (``adam`` or ``soap``, with ``train.soap`` its arguments)
  for the networks. Gradient clipping to ``train.clip_norm`` over all gradients
  (``train.clip_scope="global"``) or over the networks' only (``"networks"``, as
  Cool-chic 5); ``train.weight_decay`` (decoupled, scaled by the learning rate) on the
  networks. ``warmup``: the warm-up's settings (``plan.WarmupSettings``); with its own
  schedule, the latents' Adam takes its ``latent_betas`` and SOAP refreshes its basis
  every ``precondition_every`` steps (the optimizer state has the same structure)."""
  own = warmup is not None and warmup.schedule == "own"
  name = str(train_config.optimizer)
  if name == "adam":
    networks = optax.scale_by_adam()
  elif name == "soap":
    kwargs = train_config.soap
    kwargs = kwargs.to_dict() if hasattr(kwargs, "to_dict") else dict(kwargs)
    if own:
      kwargs["precondition_every"] = warmup.precondition_every
    networks = soap.scale_by_soap(**kwargs)
  else:
    raise ValueError(f"train.optimizer must be one of {OPTIMIZERS}, got {name!r}")
  scope = str(train_config.clip_scope)
  if scope not in CLIP_SCOPES:
    raise ValueError(f"train.clip_scope must be one of {CLIP_SCOPES}, got {scope!r}")
  clip = optax.clip_by_global_norm(float(train_config.clip_norm))
  decay = float(train_config.weight_decay)
  if scope == "networks":
    networks = optax.chain(clip, networks)
  if decay > 0.0:
    networks = optax.chain(networks, optax.add_decayed_weights(decay))
  latents = (optax.scale_by_adam(*warmup.latent_betas) if own
             else optax.scale_by_adam())
  per_group = optax.multi_transform({"latents": latents,
                                     "networks": networks}, _labels)
  return optax.chain(clip, per_group) if scope == "global" else per_group


def frozen_region_gradients(grads: dict) -> dict:
  """The modular layout's gradients with the region networks' and the aggregator's set
  to 0 (``regions.frozen_networks``): those keep their initial values (zero heads: every
  region renders the trunk's image), so the trunk's clipping and updates see only the
  single-region codec's own gradients."""
  zero = lambda t: jax.tree_util.tree_map(jnp.zeros_like, t)
  gmn = {k: (v if k == "trunk" else zero(v)) for k, v in grads["gmn"].items()}
  return dict(grads, lsn=zero(grads["lsn"]), gmn=gmn)


def noise_std_from_lmbda(lmbda: float) -> float:
  """Cool-chic 5's starting noise level for a lambda: ``(0.747 - 0.432 log10 lmbda) / 10``
  (more noise, so a flatter rate landscape, at lower rates)."""
  return (0.747 - 0.432 * float(np.log10(max(float(lmbda), 1e-12)))) / 10.0


def _psnr(mse: float) -> float:
  return float(10.0 * np.log10(1.0 / max(mse, 1e-12)))


def chunk_stats(step: int, phase: str, aux: dict, steps: int, seconds: float
                 ) -> ChunkStats:
  return ChunkStats(step=step, phase=phase, loss=float(aux["loss"]),
                    psnr=_psnr(float(aux["mse"])),
                    bpp=float(aux["bpp_latents"] + aux["bpp_weights"]),
                    steps_per_second=steps / max(seconds, 1e-9))


def build_chunk_fn(codec: Codec, config: ml_collections.ConfigDict,
                   optimizer: optax.GradientTransformation, chunk_size: int,
                   batched: bool = False, *, warmup: bool = False) -> Callable:
  """Returns a jitted ``chunk(carry, image, hyper) -> (carry, last_aux)``.

  With ``batched=True`` the carry and hyper have a leading axis (one entry per
  parameter set, e.g. per lambda) and the chunk is ``vmap``-ed over it: the whole
  batch trains in one program, sharded by whatever sharding its inputs carry. With
  ``batched="images"`` the image has that axis too (one image per entry, all of one
  shape: several images x lambdas in one program).

  carry: a ``state.TrainState``; hyper = dict of
  traced scalars (``hyper_params``), so one compiled program serves every lambda,
  learning rate and step count of a given image size and model. Both phases
  live in the program (the phase is derived from the step); steps past
  ``total_steps`` leave the carry unchanged, so the last chunk needs no retrace.
  The soft phase's schedules run from ``plan.soft.start`` to ``soft_steps``.
  ``warmup=True``: the warm-up stages' program; with the warm-up's own settings
  (``train.warmup.schedule="own"``) its temperature, noise (``hyper["warmup_noise"]``)
  and learning rate are constant, else it is the soft phase's program.
  """
  tc = config.train
  procedure = plan.from_config(config)
  start = procedure.soft.start
  own = warmup and procedure.warmup_settings.schedule == "own"
  warm_temperature = procedure.warmup_settings.temperature
  noise = str(tc.noise)
  noise_end = float(noise_range(tc)[1])
  proxy = str(tc.proxy)
  final_phase = str(tc.final_phase)
  if final_phase not in FINAL_PHASES:
    raise ValueError(f"train.final_phase must be one of {FINAL_PHASES}, got {final_phase!r}")
  final_cosine = str(tc.final_lr_schedule) == "cosine"
  clamp = bool(tc.clamp_output)
  freeze_regions = bool(config.regions.frozen_networks) and codec.modular is not None

  def one_step(image, hyper, carry: TrainState, _):
    params, opt_state, step, key, best_params, best_loss, lr_scale = carry
    soft_steps = hyper["soft_steps"]
    if own:   # the warm-up's constant settings
      ste = jnp.asarray(False)
      temperature, noise_level = warm_temperature, hyper["warmup_noise"]
    else:     # the soft phase's schedules, from its start
      ste = step >= soft_steps
      temperature = schedules.linear(step - start, soft_steps - start, *tc.temperature)
      noise_level = schedules.linear(step - start, soft_steps - start,
                                     hyper["noise_start"], noise_end)
    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    (loss, aux), grads = grad_fn(params, codec, image, hyper["lmbda"], tc.weight_delta,
                                 mode="train", temperature=temperature,
                                 noise_a=noise_level, key=jax.random.fold_in(key, step),
                                 ste=ste, noise=noise, proxy=proxy, clamp_output=clamp)
    if freeze_regions:
      grads = frozen_region_gradients(grads)
    active = step < hyper["total_steps"]
    # In the straight-through phase the forward pass is the hard loss: keep the best.
    better = ste & active & (loss < best_loss)
    best_params = jax.tree_util.tree_map(lambda b, p: jnp.where(better, p, b),
                                         best_params, params)
    best_loss = jnp.where(better, loss, best_loss)
    updates, new_opt_state = optimizer.update(grads, opt_state, params)
    if own:
      lr = hyper["learning_rate"]
    else:
      lr = schedules.learning_rate(step, soft_steps, hyper["learning_rate"],
                                   hyper["ste_learning_rate"],
                                   hyper["total_steps"] if final_cosine else None,
                                   start=start)
    lr = lr * lr_scale
    latent_lr = lr * tc.latent_lr_scale
    if final_phase == "frozen":   # the final phase fits the networks to fixed symbols
      latent_lr = jnp.where(ste, 0.0, latent_lr)
    scale = {k: -(latent_lr if k == "latents" else lr) for k in updates}
    updates = {k: jax.tree_util.tree_map(lambda u, s=scale[k]: s * u, v)
               for k, v in updates.items()}
    new_params = optax.apply_updates(params, updates)
    keep = lambda new, old: jax.tree_util.tree_map(
        lambda a, b: jnp.where(active, a, b), new, old)
    carry = TrainState(keep(new_params, params), keep(new_opt_state, opt_state),
                       step + active.astype(step.dtype), key, best_params, best_loss,
                       lr_scale)
    return carry, aux

  def chunk(carry, image, hyper):
    carry, aux = jax.lax.scan(functools.partial(one_step, image, hyper), carry, None,
                              length=chunk_size)
    return carry, jax.tree_util.tree_map(lambda a: a[-1], aux)

  if batched == "images":
    return jax.jit(jax.vmap(chunk, in_axes=(0, 0, 0)))
  if batched:
    return jax.jit(jax.vmap(chunk, in_axes=(0, None, 0)))
  return jax.jit(chunk)


class Evaluator:
  """The hard loss of trained parameters: hard latents, float weights.

  ``Evaluator(codec, image, config)(params, lmbda=None) -> (loss, aux, recon)``, one
  jitted program serving the best-parameter checks, the final measurement and other
  images of the same shape: ``.on(other_image)`` is the same evaluator on
  ``other_image`` (no new compilation). ``recon`` is the unclipped ``(H, W, 3)`` float
  image; ``image`` the ``(H, W, 3)`` image it evaluates on. ``default_lmbda``: scalar or
  per-region array (default ``config.lmbda``). ``keys``: the program returns only
  ``{key: aux[key]}``, and XLA drops what those do not need (the synthesis for
  ``("region_latent_bits",)``, the entropy model for ``("mse", "mse_layer0")``): the
  weight-step searches' cheaper evaluations. ``.many(params, images, lmbda=None)``
  evaluates a stack: ``params`` trees and ``(N, H, W, 3)`` ``images`` with a leading axis
  of N, each entry on its own image (``search_batches``).
  """

  def __init__(self, codec: Codec, image, config, default_lmbda=None,
               keys: tuple[str, ...] | None = None, *, _programs=None):
    if _programs is None:
      def terms(params, lmbda, img):
        out = loss_terms(params, codec, img, lmbda, config.train.weight_delta,
                         mode="hard", clamp_output=bool(config.train.clamp_output))
        return out if keys is None else {k: out[1][k] for k in keys}
      # The image is an argument, not a closed-over constant: XLA would otherwise embed
      # (and constant-fold over) an (H, W, 3) array in the program.
      _programs = (jax.jit(terms), jax.jit(jax.vmap(terms, in_axes=(0, None, 0))))
    self._programs = _programs
    self._codec, self._config, self._keys = codec, config, keys
    self.default_lmbda = float(config.lmbda) if default_lmbda is None else default_lmbda
    self.image = jnp.asarray(image, jnp.float32)

  def _lmbda(self, lmbda):
    return jnp.asarray(self.default_lmbda if lmbda is None else lmbda, jnp.float32)

  def __call__(self, params, lmbda=None):
    return self._programs[0](params, self._lmbda(lmbda), self.image)

  def many(self, params, images, lmbda=None):
    return self._programs[1](params, self._lmbda(lmbda), images)

  def on(self, image) -> "Evaluator":
    return Evaluator(self._codec, image, self._config, self.default_lmbda, self._keys,
                     _programs=self._programs)


def noise_range(train_config: ml_collections.ConfigDict) -> tuple[float, float]:
  """``(start, end)`` level of ``train.noise``: Kumaraswamy shape or Gaussian std."""
  if str(train_config.noise) == "gaussian":
    return tuple(train_config.gaussian_std)
  return tuple(train_config.kumaraswamy)


def hyper_params(config: ml_collections.ConfigDict, soft_steps: int, total: int,
                 lmbda=None) -> dict:
  """Traced scalars of the training program (changing them needs no recompile).

  ``lmbda``: scalar or per-region ``(R,)`` array (default ``config.lmbda``).
  """
  lmbda = config.lmbda if lmbda is None else lmbda
  tc = config.train
  noise_start = noise_range(tc)[0]
  first = np.ravel(np.asarray(lmbda, np.float64))[0]
  if str(tc.noise) == "gaussian" and tc.noise_from_lmbda:
    noise_start = noise_std_from_lmbda(first)
  warm = plan.from_config(config).warmup_settings.noise_std
  return {"lmbda": jnp.asarray(lmbda, jnp.float32), "soft_steps": jnp.int32(soft_steps),
          "noise_start": jnp.float32(noise_start),
          "warmup_noise": jnp.float32(noise_std_from_lmbda(first) if warm is None
                                      else warm),
          "total_steps": jnp.int32(total),
          "learning_rate": jnp.float32(config.train.learning_rate),
          "ste_learning_rate": jnp.float32(config.train.ste_learning_rate)}


def phase_steps(config: ml_collections.ConfigDict) -> tuple[int, int]:
  """``(soft_steps, total_steps)`` of the kept trajectory (``plan.from_config``):
  ``num_steps`` less the steps of warm-up candidates that do not go on; the final
  phase is its last ``final_steps`` (or ``ste_fraction`` of it)."""
  p = plan.from_config(config)
  return p.soft.steps, p.trajectory_steps


def candidate_state(codec: Codec, params: dict, optimizer: optax.GradientTransformation,
                    k_init: jax.Array, k_train: jax.Array) -> Callable[[int], TrainState]:
  """Warm-up candidate ``j`` -> its training state: candidate 0 starts from ``params``
  (the run without warm-up), candidate ``j`` from ``codec.init(fold_in(k_init, j))``."""
  return lambda j: initial(
      codec.init(jax.random.fold_in(k_init, j)) if j else params, optimizer, k_train)


def keep_better(last: dict, best: dict, best_loss: float, evaluate: Callable,
                lmbda: float | None = None) -> dict:
  """The last parameters (never evaluated by the scan) or the best seen, by hard loss."""
  return last if float(evaluate(last, lmbda)[0]) < float(best_loss) else best


class SpeedMeter:
  """Wraps an ``on_chunk`` callback and records each chunk's steps/s.

  ``steps_per_second`` is the median over chunks after the first (which includes the
  XLA compilation), or the first one's if there is only one.
  """

  def __init__(self, on_chunk: Callable[[ChunkStats], None] | None = None):
    self._inner, self.rates = on_chunk, []

  def __call__(self, stats: ChunkStats) -> None:
    self.rates.append(stats.steps_per_second)
    if self._inner is not None:
      self._inner(stats)

  @property
  def steps_per_second(self) -> float | None:
    rates = self.rates[1:] or self.rates
    return float(np.median(rates)) if rates else None

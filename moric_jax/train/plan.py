"""The encode procedure of a config, as a typed plan built and validated once.

An encode is: warm-up stages (several initialisations, the best go on) -> the soft
phase (soft-rounded latents and noise, hard-loss checks every K steps, the best checked
model reloaded at its end) -> the final phase (hard symbols; frozen latents or
straight-through) -> the weight-step search per network -> per-tensor steps -> RDOQ ->
the file. The warm-up either shares the soft phase's schedules and optimizer state
(its steps are the soft phase's first) or has its own constant settings, the soft phase
then starting afresh (Cool-chic 5: each phase a new optimizer and its own schedules);
the final phase continues the optimizer state or starts a fresh one. ``from_config`` reads every field the procedure needs and refuses a bad one
with ``ValueError`` before any training; ``EncodePlan.describe()`` is the one line the
logs and the report name the phases with (``loop.PHASES``).
"""
from __future__ import annotations

import dataclasses

import ml_collections

from moric_jax.train import hard_check, warmup

OPTIMIZERS = ("adam", "soap")
CLIP_SCOPES = ("global", "networks")
FINAL_PHASES = ("ste", "frozen")
NOISES = ("gaussian", "kumaraswamy")
PROXIES = ("one_tensor", "two_tensor")
LR_SCHEDULES = ("cosine", "constant")
WARMUP_SCHEDULES = ("shared", "own")
FINAL_OPTIMIZERS = ("continue", "fresh")


@dataclasses.dataclass(frozen=True)
class WarmupStage:
  """``candidates`` initialisations trained ``steps`` steps each; the best go on."""
  candidates: int
  steps: int


@dataclasses.dataclass(frozen=True)
class WarmupSettings:
  """How the warm-up stages train. ``schedule="shared"``: they are the first steps of
  the soft phase's schedules, and the kept candidate goes on with its optimizer state.
  ``"own"`` (Cool-chic 5): constant soft-round ``temperature``, constant noise
  ``noise_std`` (``None``: from each entry's lambda, ``overfit.noise_std_from_lmbda``),
  constant learning rate, Adam ``latent_betas`` for the latents and the networks' SOAP
  basis refreshed every ``precondition_every`` steps; the soft phase then starts with a
  fresh optimizer state and its schedules count from its own first step."""
  schedule: str
  temperature: float
  noise_std: float | None
  latent_betas: tuple[float, float]
  precondition_every: int


@dataclasses.dataclass(frozen=True)
class SoftPhase:
  """Soft rounding with ``noise`` (annealed), ``optimizer`` for the networks, cosine
  learning rate from ``learning_rate``; ``steps`` of the kept trajectory (the kept
  candidate's warm-up steps included: they are soft steps); its schedules (temperature,
  noise, learning rate) run from step ``start`` (0, or the warm-up's end when the
  warm-up has its own settings) to ``steps``; ``fresh_optimizer``: the optimizer state
  is new at ``start``; a hard-loss check every ``hard_check_every`` steps (0 = off)."""
  steps: int
  start: int
  fresh_optimizer: bool
  learning_rate: float
  optimizer: str
  noise: str
  proxy: str
  hard_check_every: int


@dataclasses.dataclass(frozen=True)
class FinalPhase:
  """Hard symbols: ``latents`` ``"frozen"`` (only the networks fit them) or ``"ste"``
  (straight-through); ``learning_rate`` on ``schedule``; the best hard loss is kept;
  ``fresh_optimizer``: a new optimizer state at its first step (Cool-chic 5)."""
  steps: int
  latents: str
  learning_rate: float
  schedule: str
  fresh_optimizer: bool


@dataclasses.dataclass(frozen=True)
class WeightSearch:
  """Per network, the best of ``num_deltas`` log-spaced steps in [``delta_min``,
  ``delta_max``]; then per-tensor steps; then RDOQ; ``batch`` trials per evaluation."""
  num_deltas: int
  delta_min: float
  delta_max: float
  per_tensor: bool
  rdoq: bool
  batch: int


@dataclasses.dataclass(frozen=True)
class EncodePlan:
  """What an encode of ``num_steps`` training steps does, in order."""
  num_steps: int
  warmup: tuple[WarmupStage, ...]
  warmup_settings: WarmupSettings
  soft: SoftPhase
  final: FinalPhase
  weight_search: WeightSearch
  chunk_size: int

  @property
  def trajectory_steps(self) -> int:
    """Steps of the kept run (warm-up stages included, discarded candidates not)."""
    return self.soft.steps + self.final.steps

  def describe(self) -> str:
    """The procedure in one line, phase by phase."""
    parts = []
    if self.warmup:
      text = "warm-up " + " -> ".join(f"{s.candidates}x{s.steps}" for s in self.warmup)
      w = self.warmup_settings
      if w.schedule == "own":
        noise = ("noise from lambda" if w.noise_std is None
                 else f"noise {w.noise_std:g}")
        text += (f" (own: temperature {w.temperature:g}, {noise}, constant lr, latent "
                 f"betas {w.latent_betas[0]:g}/{w.latent_betas[1]:g}, basis every "
                 f"{w.precondition_every})")
      parts.append(text)
    checks = (f", hard-loss check every {self.soft.hard_check_every}"
              if self.soft.hard_check_every else "")
    warm = sum(s.steps for s in self.warmup)   # the kept candidate's are soft steps
    fresh = ", fresh optimizer" if self.soft.fresh_optimizer else ""
    parts.append(f"soft {self.soft.steps - warm} steps ({self.soft.optimizer}, "
                 f"{self.soft.noise} noise{checks}{fresh})")
    if self.final.steps:
      fresh = ", fresh optimizer" if self.final.fresh_optimizer else ""
      parts.append(f"final {self.final.steps} steps ({self.final.latents} latents, "
                   f"{self.final.schedule} lr {self.final.learning_rate:g}{fresh})")
    ws = self.weight_search
    search = f"weight steps ({ws.num_deltas} per network"
    search += ", per tensor" if ws.per_tensor else ""
    search += ", RDOQ" if ws.rdoq else ""
    parts.append(search + ")")
    return " -> ".join(parts)

  def as_dict(self) -> dict:
    return dataclasses.asdict(self)


def _one_of(name: str, value, choices: tuple) -> str:
  value = str(value)
  if value not in choices:
    raise ValueError(f"{name} must be one of {choices}, got {value!r}")
  return value


def _final_steps(tc: ml_collections.ConfigDict, total: int) -> int:
  """Steps of the final phase: ``train.final_steps`` exactly, or ``train.ste_fraction``
  of the kept trajectory (``total``); exactly one of the two is set (the other None)."""
  steps, fraction = tc.final_steps, tc.ste_fraction
  if (steps is None) == (fraction is None):
    raise ValueError("give the final phase as train.final_steps (steps) or "
                     "train.ste_fraction (a share of the steps), the other None; got "
                     f"final_steps={steps}, ste_fraction={fraction}")
  if steps is not None:
    steps = int(steps)
    if not 0 <= steps < total:
      raise ValueError(f"train.final_steps must be in [0, {total}) (the kept run's "
                       f"steps), got {steps}")
    return steps
  fraction = float(fraction)
  if not 0.0 <= fraction <= 1.0:
    raise ValueError(f"train.ste_fraction must be in [0, 1], got {fraction}")
  return int(round(total * fraction))


def _warmup_settings(tc: ml_collections.ConfigDict) -> WarmupSettings:
  w = tc.warmup
  schedule = _one_of("train.warmup.schedule", w.schedule,
                     WARMUP_SCHEDULES)
  noise = w.noise_std
  betas = tuple(float(b) for b in w.latent_betas)
  every = int(w.precondition_every)
  if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
    raise ValueError(f"train.warmup.latent_betas must be two values in [0, 1), got {betas}")
  if every < 1:
    raise ValueError(f"train.warmup.precondition_every must be >= 1, got {every}")
  if noise is not None and float(noise) < 0.0:
    raise ValueError(f"train.warmup.noise_std must be >= 0 or None, got {noise}")
  return WarmupSettings(schedule=schedule,
                        temperature=float(w.temperature),
                        noise_std=None if noise is None else float(noise),
                        latent_betas=betas, precondition_every=every)


def from_config(config: ml_collections.ConfigDict) -> EncodePlan:
  """The plan of ``config`` (``presets``); ``ValueError`` for a field out of range."""
  tc, q = config.train, config.quant
  num_steps = int(config.num_steps)
  if num_steps < 1:
    raise ValueError(f"num_steps must be >= 1, got {num_steps}")
  stages = tuple(WarmupStage(c, s) for c, s in warmup.stages(config))
  total = num_steps - warmup.extra_steps(config)
  if stages and total <= warmup.warmup_steps(config):
    raise ValueError(f"num_steps={num_steps} leaves no training after the "
                     f"warm-up ({warmup.stages(config)} candidates x steps)")
  final_steps = _final_steps(tc, total)
  warm = warmup.warmup_steps(config) if stages else 0
  if stages and total - final_steps < warm:
    raise ValueError(f"num_steps={num_steps}: the warm-up ({warm} steps of the kept run) "
                     f"and the final phase ({final_steps}) leave no soft phase")
  settings = _warmup_settings(tc)
  own = settings.schedule == "own"
  if own and str(tc.noise) != "gaussian":
    raise ValueError("train.warmup.schedule='own' needs train.noise='gaussian' "
                     f"(its noise_std is a Gaussian std), got {tc.noise!r}")
  soft = SoftPhase(steps=total - final_steps, start=warm if own else 0,
                   fresh_optimizer=own and bool(stages),
                   learning_rate=float(tc.learning_rate),
                   optimizer=_one_of("train.optimizer", tc.optimizer, OPTIMIZERS),
                   noise=_one_of("train.noise", tc.noise, NOISES),
                   proxy=_one_of("train.proxy", tc.proxy, PROXIES),
                   hard_check_every=hard_check.every(tc))
  _one_of("train.clip_scope", tc.clip_scope, CLIP_SCOPES)
  final = FinalPhase(steps=final_steps,
                     latents=_one_of("train.final_phase", tc.final_phase, FINAL_PHASES),
                     learning_rate=float(tc.ste_learning_rate),
                     schedule=_one_of("train.final_lr_schedule", tc.final_lr_schedule,
                                      LR_SCHEDULES),
                     fresh_optimizer=_one_of("train.final_optimizer",
                                             tc.final_optimizer,
                                             FINAL_OPTIMIZERS) == "fresh")
  num_deltas = int(q.num_deltas)
  if num_deltas < 1 or not 0.0 < float(q.delta_min) <= float(q.delta_max):
    raise ValueError(f"quant: num_deltas must be >= 1 and 0 < delta_min <= delta_max, "
                     f"got {num_deltas}, {q.delta_min}, {q.delta_max}")
  search = WeightSearch(num_deltas=num_deltas, delta_min=float(q.delta_min),
                        delta_max=float(q.delta_max), per_tensor=bool(q.tensor_steps),
                        rdoq=bool(q.rdoq), batch=max(1, int(q.search_batch)))
  return EncodePlan(num_steps=num_steps, warmup=stages, warmup_settings=settings,
                    soft=soft, final=final,
                    weight_search=search,
                    chunk_size=max(1, min(int(tc.chunk_size), total)))

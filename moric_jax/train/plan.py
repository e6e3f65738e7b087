"""The encode procedure of a config, as a typed plan built and validated once.

An encode is: warm-up stages (several initialisations, the best go on) -> the soft
phase (soft-rounded latents and noise, hard-loss checks every K steps, the best checked
model reloaded at its end) -> the final phase (hard symbols; frozen latents or
straight-through) -> the weight-step search per network -> per-tensor steps -> RDOQ ->
the file. ``from_config`` reads every field the procedure needs and refuses a bad one
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


@dataclasses.dataclass(frozen=True)
class WarmupStage:
  """``candidates`` initialisations trained ``steps`` steps each; the best go on."""
  candidates: int
  steps: int


@dataclasses.dataclass(frozen=True)
class SoftPhase:
  """Soft rounding with ``noise`` (annealed), ``optimizer`` for the networks, cosine
  learning rate from ``learning_rate``; ``steps`` of the kept trajectory (the kept
  candidate's warm-up steps included: they are soft steps); a hard-loss check every
  ``hard_check_every`` steps (0 = off)."""
  steps: int
  learning_rate: float
  optimizer: str
  noise: str
  proxy: str
  hard_check_every: int


@dataclasses.dataclass(frozen=True)
class FinalPhase:
  """Hard symbols: ``latents`` ``"frozen"`` (only the networks fit them) or ``"ste"``
  (straight-through); ``learning_rate`` on ``schedule``; the best hard loss is kept."""
  steps: int
  latents: str
  learning_rate: float
  schedule: str


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
      parts.append("warm-up " + " -> ".join(f"{s.candidates}x{s.steps}"
                                            for s in self.warmup))
    checks = (f", hard-loss check every {self.soft.hard_check_every}"
              if self.soft.hard_check_every else "")
    warm = sum(s.steps for s in self.warmup)   # the kept candidate's are soft steps
    parts.append(f"soft {self.soft.steps - warm} steps ({self.soft.optimizer}, "
                 f"{self.soft.noise} noise{checks})")
    if self.final.steps:
      parts.append(f"final {self.final.steps} steps ({self.final.latents} latents, "
                   f"{self.final.schedule} lr {self.final.learning_rate:g})")
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
  fraction = float(tc.ste_fraction)
  if not 0.0 <= fraction <= 1.0:
    raise ValueError(f"train.ste_fraction must be in [0, 1], got {fraction}")
  final_steps = int(round(total * fraction))
  soft = SoftPhase(steps=total - final_steps, learning_rate=float(tc.learning_rate),
                   optimizer=_one_of("train.optimizer", tc.optimizer, OPTIMIZERS),
                   noise=_one_of("train.noise", tc.noise, NOISES),
                   proxy=_one_of("train.proxy", tc.proxy, PROXIES),
                   hard_check_every=hard_check.every(tc))
  _one_of("train.clip_scope", tc.clip_scope, CLIP_SCOPES)
  final = FinalPhase(steps=final_steps,
                     latents=_one_of("train.final_phase", tc.final_phase, FINAL_PHASES),
                     learning_rate=float(tc.ste_learning_rate),
                     schedule=_one_of("train.final_lr_schedule", tc.final_lr_schedule,
                                      LR_SCHEDULES))
  num_deltas = int(q.num_deltas)
  if num_deltas < 1 or not 0.0 < float(q.delta_min) <= float(q.delta_max):
    raise ValueError(f"quant: num_deltas must be >= 1 and 0 < delta_min <= delta_max, "
                     f"got {num_deltas}, {q.delta_min}, {q.delta_max}")
  search = WeightSearch(num_deltas=num_deltas, delta_min=float(q.delta_min),
                        delta_max=float(q.delta_max), per_tensor=bool(q.tensor_steps),
                        rdoq=bool(q.rdoq), batch=max(1, int(q.search_batch)))
  return EncodePlan(num_steps=num_steps, warmup=stages, soft=soft, final=final,
                    weight_search=search,
                    chunk_size=max(1, min(int(tc.chunk_size), total)))

"""Single-region overfitted codec: latents + ARM + LSN wired together.

``Codec`` holds only static structure (module definitions, shapes, gains); all
parameters flow in and arrays flow out. Parameter tree::

  {"latents": [theta_0 (h_0, w_0), ...], "arm": {...}, "lsn": {...}}
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections

from moric_jax.model import arm as arm_lib
from moric_jax.model import latents as latents_lib
from moric_jax.model import quantize
from moric_jax.model.lsn import LSN


@dataclasses.dataclass(frozen=True)
class Codec:
  """Static structure of the codec for one image size."""
  height: int
  width: int
  num_grids: int
  q_step: float
  gains: tuple[float, ...]
  context_rows: int
  context_cols: int
  arm: arm_lib.ARM
  lsn: LSN

  @classmethod
  def from_config(cls, model_config: ml_collections.ConfigDict, height: int,
                  width: int) -> "Codec":
    lat = model_config.latents
    return cls(
        height=height, width=width, num_grids=lat.num_grids, q_step=lat.q_step,
        gains=tuple(latents_lib.grid_gains(lat.num_grids, lat.base_gain, lat.gain_growth)),
        context_rows=model_config.arm_context.rows,
        context_cols=model_config.arm_context.cols,
        arm=arm_lib.ARM(**model_config.arm), lsn=LSN(**model_config.lsn))

  @property
  def context_size(self) -> int:
    return len(arm_lib.context_offsets(self.context_rows, self.context_cols))

  @property
  def num_latents(self) -> int:
    return sum(h * w for h, w in latents_lib.grid_shapes(self.height, self.width,
                                                         self.num_grids))

  def init(self, key: jax.Array) -> dict:
    """Fresh parameters: zero latents, randomly initialised ARM and LSN."""
    k_arm, k_lsn = jax.random.split(key)
    arm_params = self.arm.init(k_arm, jnp.zeros((1, self.context_size)))
    lsn_params = self.lsn.init(k_lsn, jnp.zeros((1, 1, self.num_grids)))
    return {"latents": latents_lib.init_latents(self.height, self.width, self.num_grids),
            "arm": arm_params, "lsn": lsn_params}

  def symbols(self, latents: list[jax.Array]) -> list[jax.Array]:
    """Trainable latents -> continuous values in symbol units (gain applied)."""
    return [g * th for g, th in zip(self.gains, latents)]

  def synthesize(self, lsn_params, symbol_grids: list[jax.Array]) -> jax.Array:
    """Symbol grids -> ``(H, W, 3)`` float image (unclipped)."""
    scaled = [self.q_step * s for s in symbol_grids]
    stack = latents_lib.upsample_stack(scaled, self.height, self.width)
    return self.lsn.apply(lsn_params, stack)

  def latent_bits(self, arm_params, symbol_grids: list[jax.Array]) -> jax.Array:
    """``(N,)`` bits of every latent symbol under the float ARM."""
    return arm_lib.grids_bits(self.arm.apply, arm_params, symbol_grids,
                              self.context_rows, self.context_cols)

  def forward(self, params: dict, *, mode: str, temperature=0.3, noise_a=1.0,
              key: jax.Array | None = None, ste=None) -> tuple[jax.Array, jax.Array]:
    """Returns ``(image (H, W, 3), latent bits (scalar))`` for a quantization mode.

    ``mode="train"`` mixes soft and straight-through quantization by the traced
    boolean ``ste``, so both training phases share one compiled program.
    """
    shapes = [th.shape for th in params["latents"]]
    flat = jnp.concatenate([s.ravel() for s in self.symbols(params["latents"])])
    if mode == "train":
      soft_r, soft_y = quantize.quantize_for_training(
          flat, mode="soft", temperature=temperature, noise_a=noise_a, key=key)
      hard = quantize.round_ste(flat)
      for_rate = jnp.where(ste, hard, soft_r)
      for_synth = jnp.where(ste, hard, soft_y)
    else:
      for_rate, for_synth = quantize.quantize_for_training(
          flat, mode=mode, temperature=temperature, noise_a=noise_a, key=key)
    rate_grids = _split(for_rate, shapes)
    bits = jnp.sum(self.latent_bits(params["arm"], rate_grids))
    return self.synthesize(params["lsn"], _split(for_synth, shapes)), bits

  def integer_symbols(self, latents: list[jax.Array]) -> list[jax.Array]:
    """Hard-rounded integer symbols of each grid (what the file codes)."""
    return [jnp.round(s).astype(jnp.int32) for s in self.symbols(latents)]


def _split(flat: jax.Array, shapes: list[tuple[int, int]]) -> list[jax.Array]:
  """Inverse of concatenating raveled grids."""
  out, start = [], 0
  for h, w in shapes:
    out.append(flat[start:start + h * w].reshape(h, w))
    start += h * w
  return out

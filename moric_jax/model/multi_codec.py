"""Multi-region codec (MoRIC): per-region latents and LSNs, one shared ARM and GMN.

``MultiCodec`` holds static structure only (modules, gains, region layouts); parameters
flow in and arrays flow out. Parameter tree::

  {"latents": [[theta_{r,k} (h_{r,k}, w_{r,k}) for k in grids] for r in regions],
   "arm": {...}, "gmn": {...} (absent for modulation "none"), "lsn": [lsn_r, ...]}

Region 0 (background) spans the image; region ``r >= 1`` spans its box
(``region_layout``). Composition: ``x = out_0`` then, layer by layer, region ``r``'s
LSN output replaces ``x`` on the pixels the region owns. Loss (bits per pixel ``P``)::

  D + w0 * D_layer0 + sum_r lmbda_r (latent bits_r + LSN bits_r) / P
    + lmbda_0 (ARM + GMN bits) / P

with ``D`` the MSE of the composed image and ``D_layer0`` that of layer 0 alone over
the whole frame (weight ``w0 = layer0_weight``: keeps layer 0 a usable preview).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from moric_jax.model import arm as arm_lib
from moric_jax.model import latents as latents_lib
from moric_jax.model import modulation as modulation_lib
from moric_jax.model import quantize
from moric_jax.model import weights as weights_lib
from moric_jax.model.gmn import GMN
from moric_jax.model.lsn import LSN
from moric_jax.model.region_layout import RegionLayout, layout_regions, partition


def gmn_config(model_config: ml_collections.ConfigDict) -> dict:
  """GMN settings with defaults (``config.model.gmn``)."""
  g = dict(width=8, mod_width=4, activation="gelu")
  g.update(dict(model_config.get("gmn", {}) or {}))
  return g


@dataclasses.dataclass(frozen=True, eq=False)
class MultiCodec:
  """Static structure of a multi-region codec for one image and region layout."""
  height: int
  width: int
  num_grids: int
  q_step: float
  gains: tuple[float, ...]
  context_rows: int
  context_cols: int
  arm: arm_lib.ARM
  lsn: LSN
  gmn: GMN | None
  regions: tuple[RegionLayout, ...]
  layer0_weight: float = 0.0

  @classmethod
  def from_config(cls, model_config: ml_collections.ConfigDict, height: int, width: int,
                  decoded_masks: list[np.ndarray], layer0_weight: float = 0.0
                  ) -> "MultiCodec":
    """``decoded_masks``: the object masks (``(H, W)`` bool) as the decoder gets them."""
    lat = model_config.latents
    scheme = modulation_lib.check_scheme(str(model_config.get("modulation",
                                                              "progressive_concat")))
    lsn = LSN(**model_config.lsn, modulation=scheme)
    gmn = None
    if scheme != "none":
      g = gmn_config(model_config)
      if not (1 <= int(g["width"]) <= 64 and 1 <= int(g["mod_width"]) <= 64):
        raise ValueError(f"GMN width and mod_width must be 1..64, got {g['width']}, "
                         f"{g['mod_width']}")
      if g["activation"] not in ("relu", "gelu"):
        raise ValueError(f"GMN activation must be relu or gelu, got {g['activation']!r}")
      gmn = GMN(scheme=scheme, lsn_hidden=tuple(model_config.lsn.hidden), **g)
    return cls(
        height=height, width=width, num_grids=lat.num_grids, q_step=lat.q_step,
        gains=tuple(latents_lib.grid_gains(lat.num_grids, lat.base_gain, lat.gain_growth)),
        context_rows=model_config.arm_context.rows,
        context_cols=model_config.arm_context.cols,
        arm=arm_lib.ARM(**model_config.arm), lsn=lsn, gmn=gmn,
        regions=tuple(layout_regions(decoded_masks, height, width, lat.num_grids)),
        layer0_weight=float(layer0_weight))

  @property
  def num_regions(self) -> int:
    return len(self.regions)

  @property
  def networks(self) -> tuple[str, ...]:
    return ("arm", "gmn", "lsn") if self.gmn is not None else ("arm", "lsn")

  @property
  def context_size(self) -> int:
    return len(arm_lib.context_offsets(self.context_rows, self.context_cols))

  def labels(self) -> np.ndarray:
    """``(H, W) int32``: the region each pixel belongs to."""
    out = np.zeros((self.height, self.width), np.int32)
    for r, reg in enumerate(self.regions[1:], start=1):
      t, l, h, w = reg.box
      out[t:t + h, l:l + w][reg.mask] = r
    return out

  def init(self, key: jax.Array) -> dict:
    """Zero latents, random ARM, GMN and one LSN per region."""
    keys = jax.random.split(key, 2 + self.num_regions)
    params = {"latents": [[jnp.zeros(c.shape, jnp.float32) for c in reg.coded]
                          for reg in self.regions],
              "arm": self.arm.init(keys[0], jnp.zeros((1, self.context_size)))}
    x = jnp.zeros((1, 1, self.num_grids))
    sig = None
    if self.gmn is not None:
      params["gmn"] = self.gmn.init(keys[1], x)
      sig = self.gmn.apply(params["gmn"], x)
    params["lsn"] = [self.lsn.init(k, x, sig) for k in keys[2:]]
    return params

  def symbols(self, latents) -> list[list[jax.Array]]:
    """Trainable latents -> symbol units (gain applied, uncoded latents forced to 0)."""
    return [[g * th * c for g, th, c in zip(self.gains, grids, reg.coded)]
            for grids, reg in zip(latents, self.regions)]

  def integer_symbols(self, latents) -> list[list[jax.Array]]:
    """Hard-rounded integer symbols per region and grid (0 where not coded)."""
    return [[jnp.round(s).astype(jnp.int32) for s in grids]
            for grids in self.symbols(latents)]

  def render_region(self, net_params: dict, r: int, symbol_grids: list[jax.Array]
                    ) -> jax.Array:
    """Region ``r``'s LSN output over its box, ``(h, w, 3)`` float (unclipped)."""
    _, _, h, w = self.regions[r].box
    stack = latents_lib.upsample_stack([self.q_step * s for s in symbol_grids], h, w)
    sig = None
    if self.gmn is not None:
      sig = self.gmn.apply(net_params["gmn"], stack)
    return self.lsn.apply(net_params["lsn"][r], stack, sig)

  def synthesize(self, net_params: dict, symbols, layers: int | None = None
                 ) -> tuple[jax.Array, jax.Array]:
    """Composes the first ``layers`` regions -> ``(image, layer-0 image)``, ``(H, W, 3)``."""
    n = self.num_regions if layers is None else max(1, min(int(layers), self.num_regions))
    out0 = self.render_region(net_params, 0, symbols[0])
    x = out0
    for r in range(1, n):
      t, l, h, w = self.regions[r].box
      out = self.render_region(net_params, r, symbols[r])
      patch = jnp.where(self.regions[r].mask[..., None], out, x[t:t + h, l:l + w])
      x = x.at[t:t + h, l:l + w].set(patch)
    return x, out0

  def region_latent_bits(self, arm_params, symbols) -> jax.Array:
    """``(R,)`` bits of each region's coded latents under the float ARM."""
    grids = [g for region in symbols for g in region]
    bits = arm_lib.grids_bits(self.arm.apply, arm_params, grids, self.context_rows,
                              self.context_cols)
    coded = np.concatenate([c.ravel() for reg in self.regions for c in reg.coded])
    ids = np.concatenate([np.full(c.size, r) for r, reg in enumerate(self.regions)
                          for c in reg.coded])
    return jax.ops.segment_sum(bits * coded, ids, num_segments=self.num_regions)

  def lmbda_array(self, base: float, per_region: dict[int, float] | None = None
                  ) -> np.ndarray:
    """``(R,) float32`` lambda per region: ``base`` unless ``per_region`` says otherwise."""
    lam = np.full(self.num_regions, float(base), np.float32)
    for r, v in (per_region or {}).items():
      lam[int(r)] = float(v)
    return lam

  def rd_terms(self, params: dict, image: jax.Array, lmbda, weight_delta: float, *,
               mode: str, temperature=0.3, noise_a=1.0, key=None, ste=None
               ) -> tuple[jax.Array, dict, jax.Array]:
    """``(loss, aux, composed image)``; ``lmbda`` is a scalar or ``(R,)`` per region."""
    lam = jnp.broadcast_to(jnp.asarray(lmbda, jnp.float32), (self.num_regions,))
    sym = self.symbols(params["latents"])
    shapes = [[s.shape for s in grids] for grids in sym]
    flat = jnp.concatenate([s.ravel() for grids in sym for s in grids])
    if mode == "train":
      soft_r, soft_y = quantize.quantize_for_training(
          flat, mode="soft", temperature=temperature, noise_a=noise_a, key=key)
      hard = quantize.round_ste(flat)
      for_rate, for_synth = jnp.where(ste, hard, soft_r), jnp.where(ste, hard, soft_y)
    else:
      for_rate, for_synth = quantize.quantize_for_training(
          flat, mode=mode, temperature=temperature, noise_a=noise_a, key=key)
    # Uncoded latents are exactly 0 in the file: no training noise there either.
    coded = np.concatenate([c.ravel() for reg in self.regions for c in reg.coded])
    for_rate, for_synth = for_rate * coded, for_synth * coded
    lat_bits = self.region_latent_bits(params["arm"], _split(for_rate, shapes))
    recon, out0 = self.synthesize(params, _split(for_synth, shapes))
    pixels = self.height * self.width
    err = jnp.sum((recon - image) ** 2, axis=-1)
    mse = jnp.mean(err) / 3.0
    mse0 = jnp.mean((out0 - image) ** 2)
    lsn_bits = jnp.stack([weights_lib.tree_bits(p, weight_delta) for p in params["lsn"]])
    shared_bits = weights_lib.tree_bits(params["arm"], weight_delta)
    if self.gmn is not None:
      shared_bits = shared_bits + weights_lib.tree_bits(params["gmn"], weight_delta)
    labels = self.labels()
    region_sse = jax.ops.segment_sum(err.ravel(), labels.ravel(),
                                     num_segments=self.num_regions)
    region_px = np.maximum(np.bincount(labels.ravel(), minlength=self.num_regions), 1)
    loss = (mse + self.layer0_weight * mse0
            + jnp.sum(lam * (lat_bits + lsn_bits)) / pixels + lam[0] * shared_bits / pixels)
    aux = {"mse": mse, "mse_layer0": mse0, "loss": loss,
           "bpp_latents": jnp.sum(lat_bits) / pixels,
           "bpp_weights": (jnp.sum(lsn_bits) + shared_bits) / pixels,
           "region_mse": region_sse / (3.0 * region_px),
           "region_latent_bits": lat_bits, "region_weight_bits": lsn_bits}
    return loss, aux, recon


def _split(flat: jax.Array, shapes) -> list[list[jax.Array]]:
  """Inverse of concatenating raveled grids of every region."""
  out, start = [], 0
  for region in shapes:
    grids = []
    for h, w in region:
      grids.append(flat[start:start + h * w].reshape(h, w))
      start += h * w
    out.append(grids)
  return out


__all__ = ["MultiCodec", "gmn_config", "partition"]

"""The MoRIC codec for one or many regions: one latent pyramid, one ARM, one GMN, LSNs.

``Codec`` holds static structure only (modules, gains, the region layout); parameters
flow in and arrays flow out. Parameter tree::

  {"latents": [theta_k (h_k, w_k) for k in grids],     # one pyramid, whole frame
   "arm": {...}, "gmn": {...} (absent for modulation "none"),
   "lsn": [lsn of each rendered region]}               # layout.rendered order

One region (no masks) is this codec with one LSN, no GMN and a trivial layout. Object
LSNs start as copies of LSN 0 and are coded as their difference from it
(``lsn_reference``): an object layer pays only for what it changes.

Synthesis (DESIGN §2.3): the latents are upsampled once to an ``(H, W, L)`` stack; the
GMN maps the whole stack to its modulation signals (global context); LSN 0 renders the
whole frame (layer 0); each object's LSN runs over its box and replaces layer 0 inside
its mask. Loss, rates in bits per shown pixel ``P``::

  D + w0 * D_layer0 + sum_r lmbda_r (latent bits owned by r + LSN bits of r) / P
    + lmbda_0 (ARM + GMN bits) / P

with ``D`` the MSE of the composed image over the shown pixels (the whole frame, or
the objects of an object-only file) and ``D_layer0`` that of layer 0 alone over the
frame (weight ``w0 = layer0_weight``, multi-region only: keeps layer 0 a usable
preview).
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
from moric_jax.model import region_net
from moric_jax.model import upsampling as upsampling_lib
from moric_jax.model import weights as weights_lib
from moric_jax.model.gmn import GMN
from moric_jax.model.lsn import LSN
from moric_jax.model.region_layout import Layout, make_layout


def gmn_config(model_config: ml_collections.ConfigDict) -> dict:
  """The side GMN's settings (``config.model.gmn``: width, mod_width, activation)."""
  return dict(model_config.gmn)


@dataclasses.dataclass(frozen=True)
class Modular:
  """The ``moric`` layout's region networks (``region_net.py``): ``width`` channels,
  one aggregation per trunk stage (``stages``), ``activation``."""
  width: int
  stages: int
  activation: str


def effective_scheme(model_config: ml_collections.ConfigDict, num_regions: int) -> str:
  """The modulation a file uses: ``config.model.modulation`` with several regions;
  ``none`` for one region (a GMN would only widen its single LSN, and a one-region
  file stays as small as a plain single-region codec's)."""
  scheme = modulation_lib.check_scheme(str(model_config.modulation))
  return scheme if num_regions > 1 else "none"


@dataclasses.dataclass(frozen=True, eq=False)
class Codec:
  """Static structure of the codec for one image size and region layout."""
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
  layout: Layout
  modular: Modular | None = None   # scheme "moric": gmn = trunk + aggregator
  layer0_weight: float = 0.0
  upsampling: str = "bilinear"   # upsampling.KINDS
  band_pixels: int = 0     # > 0: LSNs run in rematerialised row bands of ~this size
  arm_chunk: int = 0       # > 0: the ARM runs in rematerialised chunks of latents


  @classmethod
  def from_config(cls, model_config: ml_collections.ConfigDict, height: int, width: int,
                  decoded_masks: list[np.ndarray] = (), object_only: bool = False,
                  layer0_weight: float = 0.0, band_pixels: int = 0,
                  arm_chunk: int = 0) -> "Codec":
    """``decoded_masks``: object masks (``(H, W)`` bool) as the decoder gets them;
    ``band_pixels`` / ``arm_chunk``: memory bounds of the synthesis (``render``) and
    of the ARM (``arm.grids_bits``); 0 = no bound (fastest for small images)."""
    lat = model_config.latents
    layout = make_layout(list(decoded_masks), height, width, lat.num_grids, object_only)
    scheme = effective_scheme(model_config, layout.num_regions)
    lsn = LSN(**model_config.lsn, modulation="none" if scheme == "moric" else scheme)
    gmn = modular = None
    if scheme == "moric":
      g = dict(model_config.region_net)
      if not 1 <= int(g["width"]) <= 64:
        raise ValueError(f"config.model.region_net.width must be 1..64, got {g['width']}")
      if g["activation"] not in ("relu", "gelu"):
        raise ValueError(f"config.model.region_net.activation must be relu or gelu, got "
                         f"{g['activation']!r}")
      modular = Modular(int(g["width"]), region_net.num_stages(lsn.num_res_convs),
                        str(g["activation"]))
    elif scheme != "none":
      g = gmn_config(model_config)
      if not (1 <= int(g["width"]) <= 64 and 1 <= int(g["mod_width"]) <= 64):
        raise ValueError(f"GMN width and mod_width must be 1..64, got {g['width']}, "
                         f"{g['mod_width']}")
      if g["activation"] not in ("relu", "gelu"):
        raise ValueError(f"GMN activation must be relu or gelu, got {g['activation']!r}")
      gmn = GMN(scheme=scheme, lsn_hidden=tuple(model_config.lsn.hidden), **g)
    upsampling = str(model_config.upsampling)
    if upsampling not in upsampling_lib.KINDS:
      raise ValueError(f"config.model.upsampling must be one of {upsampling_lib.KINDS}, "
                       f"got {upsampling!r}")
    return cls(
        height=height, width=width, num_grids=lat.num_grids, q_step=lat.q_step,
        upsampling=upsampling,
        gains=tuple(latents_lib.grid_gains(lat.num_grids, lat.base_gain, lat.gain_growth)),
        context_rows=model_config.arm_context.rows,
        context_cols=model_config.arm_context.cols,
        arm=arm_lib.ARM(**model_config.arm), lsn=lsn, gmn=gmn, layout=layout,
        modular=modular,
        layer0_weight=float(layer0_weight) if layout.num_regions > 1 else 0.0,
        band_pixels=int(band_pixels), arm_chunk=int(arm_chunk))

  @property
  def num_regions(self) -> int:
    return self.layout.num_regions

  @property
  def scheme(self) -> str:
    """The modulation scheme the file records (``modulation.SCHEMES``)."""
    return "moric" if self.modular is not None else self.lsn.modulation

  def header_gmn(self) -> dict | None:
    """The GMN fields of the file header (``writer.write``'s ``gmn``): the side GMN's
    width, modulation width and activation; for ``moric`` the region networks' width,
    the trunk stages' channels and their activation; ``None`` without a GMN."""
    if self.modular is not None:
      return {"width": self.modular.width, "mod_width": region_net.STAGE_CHANNELS,
              "activation": self.modular.activation}
    if self.gmn is not None:
      return {"width": self.gmn.width, "mod_width": self.gmn.mod_width,
              "activation": self.gmn.activation}
    return None

  @property
  def networks(self) -> tuple[str, ...]:
    """Keys of the coded networks in the parameter tree (``shared_networks`` + LSNs)."""
    return self.shared_networks + ("lsn",)

  @property
  def shared_networks(self) -> tuple[str, ...]:
    """Networks shared by all regions (their bits weigh with the background's lambda)."""
    has_gmn = self.gmn is not None or self.modular is not None
    return (("arm",) + (("gmn",) if has_gmn else ())
            + (("upsampling",) if upsampling_lib.has_filters(self.upsampling,
                                                             self.num_grids) else ()))

  @property
  def context_size(self) -> int:
    return len(arm_lib.context_offsets(self.context_rows, self.context_cols))

  @property
  def grid_shapes(self) -> list[tuple[int, int]]:
    return latents_lib.grid_shapes(self.height, self.width, self.num_grids)

  @property
  def num_latents(self) -> int:
    return sum(h * w for h, w in self.grid_shapes)

  @property
  def shown_pixels(self) -> int:
    """Pixels the rate is normalised by and the distortion measured on."""
    return int(self.layout.shown().sum())

  def labels(self) -> np.ndarray:
    """``(H, W) int32``: the region each pixel belongs to."""
    return self.layout.labels

  def init(self, key: jax.Array) -> dict:
    """Zero latents, random ARM, GMN and one LSN per rendered region.

    In the modular layout the trunk is drawn from the key the single-region codec draws
    its synthesis from (``keys[2]``) and every region network's head is zero, so a
    region layout starts as the single-region codec of the same seed, pixel for pixel:
    a comparison of the two at one seed is paired (only what the regions change
    differs), not one of two random initialisations."""
    keys = jax.random.split(key, 2 + len(self.layout.rendered))
    params = {"latents": latents_lib.init_latents(self.height, self.width, self.num_grids),
              "arm": self.arm.init(keys[0], jnp.zeros((1, self.context_size)))}
    if "upsampling" in self.shared_networks:
      params["upsampling"] = {"offsets": jnp.asarray(
          upsampling_lib.init_offsets(self.num_grids))}
    x = jnp.zeros((1, 1, self.num_grids))
    sig = None
    if self.modular is not None:
      m = self.modular
      normal = lambda k: (lambda shape: jax.random.normal(
          jax.random.fold_in(keys[1], k), shape, jnp.float32))
      params["gmn"] = {"trunk": self.lsn.init(keys[2], x),
                       **region_net.init_aggregator(normal(1), m.width, m.stages)}
      net = region_net.init_lsn(normal(2), m.width, m.stages)
      params["lsn"] = [net] * len(self.layout.rendered)
      return params
    if self.gmn is not None:
      params["gmn"] = self.gmn.init(keys[1], x)
      sig = self.gmn.apply(params["gmn"], x)
    lsns = [self.lsn.init(k, x, sig) for k in keys[2:]]
    if self.lsn_reference(1) == 0:   # Object LSNs start as copies of LSN 0.
      lsns = [lsns[0]] * len(lsns)
    params["lsn"] = lsns
    return params

  def lsn_reference(self, j: int) -> int | None:
    """Index of the LSN that LSN ``j`` (rendered order) is coded relative to: object
    LSNs are coded as their difference from LSN 0 (the background's), so an object
    layer costs only what it changes; ``None`` for LSN 0 and in object-only files."""
    return 0 if j >= 1 and not self.layout.object_only else None

  def lsn_bits(self, lsn_params: list, weight_delta) -> jax.Array:
    """``(len(rendered),)`` estimated bits of every LSN as the file codes it."""
    out = []
    for j, p in enumerate(lsn_params):
      ref = self.lsn_reference(j)
      if ref is not None:
        p = jax.tree_util.tree_map(lambda a, b: a - b, p, lsn_params[ref])
      out.append(weights_lib.tree_bits(p, weight_delta))
    return jnp.stack(out)

  def _coded_flat(self) -> np.ndarray | None:
    """``(N,) float32`` 1 where a latent is coded, ``None`` when all are."""
    if self.layout.all_coded:
      return None
    return np.concatenate([c.ravel() for c in self.layout.coded]).astype(np.float32)

  def symbols(self, latents: list[jax.Array]) -> list[jax.Array]:
    """Trainable latents -> symbol units (gain applied, uncoded latents forced to 0)."""
    return [g * th * (1.0 if c.all() else c) for g, th, c in
            zip(self.gains, latents, self.layout.coded)]

  def integer_symbols(self, latents: list[jax.Array]) -> list[jax.Array]:
    """Hard-rounded integer symbols of each grid (what the file codes)."""
    return [jnp.round(s).astype(jnp.int32) for s in self.symbols(latents)]

  def render(self, lsn_params, stack: jax.Array, sig: list[jax.Array] | None,
             stages: bool = False) -> jax.Array:
    """One LSN over ``(h, w, L)`` latents (and signals) -> ``(h, w, 3)`` (``stages``:
    ``(h, w, 3 K)``, the trunk stages of ``region_net``).

    With ``band_pixels`` smaller than the box, the box is cut into row bands (each
    with a halo of ``num_res_convs * (kernel_size // 2)`` rows, fed to the residual
    convolutions as zeros outside the box, so the result is the same) evaluated by
    ``lax.map`` under ``jax.checkpoint``: the backward pass recomputes one band at a
    time, so training memory no longer grows with the LSN's activations of the whole
    frame.
    """
    h, w = stack.shape[:2]
    band = max(1, self.band_pixels // max(w, 1)) if self.band_pixels else h
    if band >= h:
      return self.lsn.apply(lsn_params, stack, sig, stages=stages)
    halo = self.lsn.num_res_convs * (self.lsn.kernel_size // 2)
    nb = -(-h // band)
    pad = ((halo, nb * band - h + halo), (0, 0), (0, 0))
    rows = np.arange(nb)[:, None] * band + np.arange(band + 2 * halo)[None, :]
    valid = jnp.asarray((rows >= halo) & (rows < halo + h))
    xs = jnp.pad(stack, pad)[rows]
    ss = None if sig is None else [jnp.pad(s, pad)[rows] for s in sig]

    def one_band(args):
      x, s, v = args
      return self.lsn.apply(lsn_params, x, s, row_valid=v, stages=stages)[halo:halo + band]

    out = jax.lax.map(jax.checkpoint(one_band), (xs, ss, valid))
    return out.reshape(nb * band, w, out.shape[-1])[:h]

  def upsample(self, grids: list[jax.Array], upsampling_params: dict | None
               ) -> jax.Array:
    """L grids ``(h_k, w_k)`` -> ``(H, W, L)`` stack (bilinear, or the learned steps
    of ``upsampling.py`` with ``upsampling_params["offsets"]``)."""
    if "upsampling" not in self.shared_networks:   # bilinear, or one grid
      return latents_lib.upsample_stack(grids, self.height, self.width)
    planar = upsampling_lib.upsample_stack(grids, upsampling_params["offsets"], jnp)
    return jnp.transpose(planar, (1, 2, 0))

  def synthesize(self, net_params: dict, symbol_grids: list[jax.Array],
                 layers: int | None = None) -> tuple[jax.Array, jax.Array | None]:
    """Symbol grids -> ``(image, layer-0 image or None)``, ``(H, W, 3)`` unclipped.

    ``layers``: render only the first ``layers`` rendered regions (default all);
    pixels of regions not drawn show layer 0 (0 in object-only files).
    """
    rendered = self.layout.rendered
    n = len(rendered) if layers is None else max(1, min(int(layers), len(rendered)))
    stack = self.upsample([self.q_step * s for s in symbol_grids],
                          net_params.get("upsampling"))
    if self.modular is not None:
      return self._synthesize_modular(net_params, stack, rendered[:n])
    sig = self.gmn.apply(net_params["gmn"], stack) if self.gmn is not None else None
    out0 = None
    x = jnp.zeros((self.height, self.width, 3), stack.dtype)
    for j, r in enumerate(rendered[:n]):
      if r == 0:
        out0 = x = self.render(net_params["lsn"][j], stack, sig)
        continue
      t, l, h, w = self.layout.boxes[r]
      box = lambda a: a[t:t + h, l:l + w]
      out = self.render(net_params["lsn"][j], box(stack),
                        None if sig is None else [box(s) for s in sig])
      patch = jnp.where(self.layout.box_mask(r)[..., None], out, box(x))
      x = x.at[t:t + h, l:l + w].set(patch)
    return x, out0

  def _synthesize_modular(self, net_params: dict, stack: jax.Array, rendered
                          ) -> tuple[jax.Array, jax.Array | None]:
    """The ``moric`` layout: the trunk's stages over the frame, then each rendered
    region's network at its box's pixels, kept inside its mask (``region_net.py``)."""
    m = self.modular
    feats = self.render(net_params["gmn"]["trunk"], stack, None, stages=True)
    agg = {k: v for k, v in net_params["gmn"].items() if k != "trunk"}
    c = region_net.STAGE_CHANNELS
    out0 = None
    x = jnp.zeros((self.height, self.width, 3), stack.dtype)
    for j, r in enumerate(rendered):
      t, l, h, w = self.layout.boxes[r]
      f = feats[t:t + h, l:l + w].reshape(h * w, -1)
      coords = jnp.asarray(region_net.coordinates(t, l, h, w, self.height, self.width))
      out = region_net.apply(net_params["lsn"][j], agg, coords,
                             [f[:, c * k:c * (k + 1)] for k in range(m.stages)],
                             m.activation, jnp).reshape(h, w, 3)
      if r == 0:
        out0 = x = out
        continue
      patch = jnp.where(self.layout.box_mask(r)[..., None], out, x[t:t + h, l:l + w])
      x = x.at[t:t + h, l:l + w].set(patch)
    return x, out0

  def region_latent_bits(self, arm_params, symbol_grids: list[jax.Array]) -> jax.Array:
    """``(R,)`` bits of the latents each region owns, under the float ARM."""
    bits = arm_lib.grids_bits(self.arm.apply, arm_params, symbol_grids,
                              self.context_rows, self.context_cols, self.arm_chunk)
    coded = self._coded_flat()
    if coded is not None:
      bits = bits * coded
    if self.num_regions == 1:
      return jnp.sum(bits)[None]
    return jax.ops.segment_sum(bits, self.layout.owner_ids(),
                               num_segments=self.num_regions)

  def lmbda_array(self, base: float, per_region: dict[int, float] | None = None
                  ) -> np.ndarray:
    """``(R,) float32`` lambda per region: ``base`` unless ``per_region`` says otherwise."""
    lam = np.full(self.num_regions, float(base), np.float32)
    for r, v in (per_region or {}).items():
      lam[int(r)] = float(v)
    return lam

  def rd_terms(self, params: dict, image: jax.Array, lmbda, weight_delta: float, *,
               mode: str, temperature=0.3, noise_a=1.0, key=None, ste=None,
               noise: str = "kumaraswamy", proxy: str = "two_tensor",
               clamp_output: bool = False) -> tuple[jax.Array, dict, jax.Array]:
    """``(loss, aux, composed image)``; ``lmbda`` is a scalar or ``(R,)`` per region.
    ``noise`` / ``noise_a``: the soft phase's noise and its level
    (``quantize.training_noise``); ``proxy``: what the rate and the ARM's context see
    in the soft phase (``quantize.quantize_for_training``); ``clamp_output``: the
    distortion is measured on the image clipped to [0, 1], as the decoder's 8-bit output
    is (no gradient through clipped pixels).

    ``mode="train"`` mixes soft and straight-through quantization by the traced
    boolean ``ste``, so both training phases share one compiled program.
    """
    lam = jnp.broadcast_to(jnp.asarray(lmbda, jnp.float32), (self.num_regions,))
    sym = self.symbols(params["latents"])
    shapes = [s.shape for s in sym]
    flat = jnp.concatenate([s.ravel() for s in sym])
    if mode == "train":
      soft_r, soft_y = quantize.quantize_for_training(
          flat, mode="soft", temperature=temperature, noise_a=noise_a, key=key,
          noise=noise, proxy=proxy)
      hard = quantize.round_ste(flat)
      for_rate, for_synth = jnp.where(ste, hard, soft_r), jnp.where(ste, hard, soft_y)
    else:
      for_rate, for_synth = quantize.quantize_for_training(
          flat, mode=mode, temperature=temperature, noise_a=noise_a, key=key)
    coded = self._coded_flat()
    if coded is not None:   # Uncoded latents are exactly 0 in the file: no noise there.
      for_rate, for_synth = for_rate * coded, for_synth * coded
    lat_bits = self.region_latent_bits(params["arm"], _split(for_rate, shapes))
    recon, out0 = self.synthesize(params, _split(for_synth, shapes))
    if clamp_output:
      recon = jnp.clip(recon, 0.0, 1.0)
      out0 = None if out0 is None else jnp.clip(out0, 0.0, 1.0)
    pixels = self.shown_pixels
    err = jnp.sum((recon - image) ** 2, axis=-1)
    labels = self.layout.labels
    if self.num_regions == 1:
      mse = jnp.mean(err) / 3.0
      region_mse = mse[None]
    else:
      region_sse = jax.ops.segment_sum(err.ravel(), labels.ravel(),
                                       num_segments=self.num_regions)
      region_px = np.maximum(self.layout.region_pixels(), 1)
      region_mse = region_sse / (3.0 * region_px)
      shown = self.layout.rendered
      mse = jnp.sum(region_sse[np.asarray(shown)]) / (3.0 * pixels)
    lsn_bits = self.lsn_bits(params["lsn"], weight_delta)
    shared_bits = sum(weights_lib.tree_bits(params[n], weight_delta)
                      for n in self.shared_networks)
    lsn_lam = lam[np.asarray(self.layout.rendered)]
    loss = (mse + jnp.sum(lam * lat_bits) / pixels + jnp.sum(lsn_lam * lsn_bits) / pixels
            + lam[0] * shared_bits / pixels)
    mse0 = mse
    if out0 is not None and self.layer0_weight > 0.0:
      mse0 = jnp.mean((out0 - image) ** 2)
      loss = loss + self.layer0_weight * mse0
    aux = {"mse": mse, "mse_layer0": mse0, "loss": loss,
           "bpp_latents": jnp.sum(lat_bits) / pixels,
           "bpp_weights": (jnp.sum(lsn_bits) + shared_bits) / pixels,
           "region_mse": region_mse, "region_latent_bits": lat_bits,
           "region_weight_bits": lsn_bits}
    return loss, aux, recon


def _split(flat: jax.Array, shapes: list[tuple[int, int]]) -> list[jax.Array]:
  """Inverse of concatenating raveled grids."""
  out, start = [], 0
  for h, w in shapes:
    out.append(flat[start:start + h * w].reshape(h, w))
    start += h * w
  return out

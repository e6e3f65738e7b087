"""Multi-region (layered) ``.moric`` files: write, decode layer by layer, inspect.

Decoder side only (imports nothing from ``train/``). The decoder rebuilds everything
from the bytes: C* contours -> masks -> region layouts (``model.region_layout``) ->
per-region ANS sections (LSN weights, coded latents under the integer ARM) -> GMN +
LSNs -> composition. ``layers=K`` renders only the background and the first ``K - 1``
objects (and decodes only their sections).
"""
from __future__ import annotations

import dataclasses
import time

import jax
import jax.numpy as jnp
import numpy as np

from moric_jax import image_io
from moric_jax.coding import bitstream, integer_arm, layered_bitstream as lb
from moric_jax.coding import rans, wavefront, weights_coding
from moric_jax.errors import BitstreamError
from moric_jax.model import weights as weights_lib
from moric_jax.model.multi_codec import MultiCodec
from moric_jax.regions import cstar


@dataclasses.dataclass
class DecodedLayers:
  """``image``: ``(H, W, 3) uint8`` (or ``(H, W)`` for grey) of the first ``layers``."""
  file: lb.LayeredFile
  masks: list[np.ndarray]          # decoded object masks, before composition
  int_weights: dict
  symbols: list[list[np.ndarray]]  # per decoded region, per grid
  image: np.ndarray
  layers: int
  entropy_seconds: float
  synthesis_seconds: float


def _leaf_shapes(tree) -> tuple:
  leaves, treedef = jax.tree_util.tree_flatten(tree)
  return treedef, [tuple(l.shape) for l in leaves]


def templates(codec: MultiCodec) -> dict:
  """Per network (``arm``, ``gmn``, ``lsn`` = one region's): (treedef, leaf shapes)."""
  shapes = jax.eval_shape(codec.init, jax.random.PRNGKey(0))
  out = {"arm": _leaf_shapes(shapes["arm"]), "lsn": _leaf_shapes(shapes["lsn"][0])}
  if codec.gmn is not None:
    out["gmn"] = _leaf_shapes(shapes["gmn"])
  return out


def _decode_net(section: lb.Section, template, what: str):
  treedef, shapes = template
  if len(section.scales) != len(shapes):
    raise BitstreamError(f"{what}: {len(section.scales)} tensors, the architecture has "
                         f"{len(shapes)}")
  sizes = [int(np.prod(s)) for s in shapes]
  need = bitstream.min_payload_bits(section.scales, sizes, 0)
  if 8 * len(section.payload) < need:
    raise BitstreamError(f"{what}: payload too short")
  coder = rans.GuardedDecoder(section.payload, what)
  flat = weights_coding.decode_tensors(coder, sizes, list(section.scales))
  coder.finish()
  return jax.tree_util.tree_unflatten(treedef, [k.reshape(s) for k, s in zip(flat, shapes)])


def build_codec(f: lb.LayeredFile, masks: list[np.ndarray]) -> MultiCodec:
  try:
    return MultiCodec.from_config(f.model_config(), f.height, f.width, masks)
  except ValueError as e:
    raise BitstreamError(f"bad region layout: {e}") from None


def decode_masks(f: lb.LayeredFile) -> list[np.ndarray]:
  """C* contours of every object region -> ``(H, W)`` bool masks."""
  out = []
  for i, reg in enumerate(f.regions[1:], start=1):
    try:
      out.append(cstar.decode_mask(reg.contour, (f.height, f.width)))
    except (cstar.CStarError, ValueError) as e:
      raise BitstreamError(f"region {i} contour: {e}") from None
  return out


_SYNTH_CACHE: dict = {}


def _synth_fn(codec: MultiCodec, f: lb.LayeredFile, layers: int):
  """Jitted ``(net params, symbols) -> uint8 image``, one per file layout and layer count
  (kept for the last few layouts, so decoding a file again compiles nothing)."""
  key = (f.arch, f.modulation, f.gmn_width, f.mod_width, f.gmn_activation, f.height,
         f.width, layers, tuple((reg.box, reg.mask.tobytes()) for reg in codec.regions))
  if key in _SYNTH_CACHE:
    return _SYNTH_CACHE[key]
  if len(_SYNTH_CACHE) >= 8:
    _SYNTH_CACHE.pop(next(iter(_SYNTH_CACHE)))

  @jax.jit
  def synth(net_params, symbols):
    grids = [[g.astype(jnp.float32) for g in region] for region in symbols]
    grids += [[jnp.zeros(c.shape, jnp.float32) for c in reg.coded]
              for reg in codec.regions[len(grids):]]
    x, _ = codec.synthesize(net_params, grids, layers=layers)
    return jnp.floor(jnp.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(jnp.uint8)
  _SYNTH_CACHE[key] = synth
  return synth


def decode_layered(data: bytes, max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS,
                   layers: int | None = None) -> DecodedLayers:
  """Parses a version-2 file and renders its first ``layers`` layers (all by default)."""
  f = lb.read(data)
  pixels = f.height * f.width
  if max_pixels is not None and pixels > max_pixels:
    raise BitstreamError(f"image is {f.width}x{f.height} = {pixels} pixels, above the "
                         f"decoder limit of {max_pixels}")
  n = f.num_regions if layers is None else int(layers)
  if not 1 <= n <= f.num_regions:
    raise ValueError(f"layers must be 1..{f.num_regions} for this file, got {layers}")
  t0 = time.perf_counter()
  masks = decode_masks(f)
  codec = build_codec(f, masks)
  tpl = templates(codec)
  ints = {"arm": _decode_net(f.arm, tpl["arm"], "ARM weights")}
  net = {"arm": weights_lib.dequantize_tree(ints["arm"], f.delta_arm)}
  if codec.gmn is not None:
    ints["gmn"] = _decode_net(f.gmn, tpl["gmn"], "GMN weights")
    net["gmn"] = weights_lib.dequantize_tree(ints["gmn"], f.delta_gmn)
  iarm = integer_arm.from_quantized(integer_arm.dense_layers(ints["arm"]), f.delta_arm,
                                    f.arm_frac_bits)
  ints["lsn"], net["lsn"], symbols = [], [], []
  for r in range(n):
    reg, lay = f.regions[r], codec.regions[r]
    k = _decode_net(reg.lsn, tpl["lsn"], f"region {r} LSN weights")
    ints["lsn"].append(k)
    net["lsn"].append(weights_lib.dequantize_tree(k, reg.delta_lsn))
    need = bitstream.min_payload_bits([], [], lay.num_coded)
    if 8 * len(reg.latents) < need:
      raise BitstreamError(f"region {r} latents: payload too short for "
                           f"{lay.num_coded} latents")
    coder = rans.GuardedDecoder(reg.latents, f"region {r} latents")
    symbols.append(wavefront.decode_latents(coder, iarm, lay.grid_shapes,
                                            codec.context_rows, codec.context_cols,
                                            coded=list(lay.coded)))
    coder.finish()
  net["lsn"] += [net["lsn"][0]] * (codec.num_regions - n)   # unused placeholders
  t1 = time.perf_counter()
  image = np.asarray(_synth_fn(codec, f, n)(net, [[jnp.asarray(g) for g in s]
                                              for s in symbols]))
  if f.mode == bitstream.MODE_L8:
    image = image_io.rgb_to_grey(image)
  t2 = time.perf_counter()
  return DecodedLayers(f, masks, ints, symbols, image, n, t1 - t0, t2 - t1)


def write_layered(codec: MultiCodec, mode: int, model_config, contours: list[bytes],
                  lmbdas, deltas: dict, int_weights: dict, symbols) -> tuple[bytes, dict]:
  """Entropy codes a trained multi-region codec -> ``(bytes, bits)``.

  ``codec`` must be built from the masks the ``contours`` decode to.
  ``deltas``: ``arm``, ``gmn`` (floats), ``lsn`` (one per region); ``int_weights``
  likewise (``lsn`` a list); ``symbols[r][k]`` integer grids (0 where not coded).
  ``bits`` = ideal code lengths per region: ``regions[r]`` has ``contour``,
  ``weights``, ``latents``; plus ``shared`` (ARM + GMN weights).
  """
  height, width = codec.height, codec.width
  arch = bitstream.Architecture.from_model_config(model_config)
  f32 = bitstream.f32
  d_arm = f32(deltas["arm"])
  layers_q = integer_arm.dense_layers(int_weights["arm"])
  frac = integer_arm.choose_frac_bits([(np.asarray(k, np.float64) * d_arm, b)
                                       for k, b in layers_q])
  iarm = integer_arm.from_quantized(layers_q, d_arm, frac)

  def net_section(tree):
    coder = rans.new_encoder()
    tensors = [np.asarray(k) for k in jax.tree_util.tree_leaves(tree)]
    scales, bits = weights_coding.encode_tensors(coder, tensors)
    return lb.Section(tuple(scales), rans.payload_bytes(coder)), bits

  arm_sec, arm_bits = net_section(int_weights["arm"])
  scheme = str(model_config.get("modulation", "progressive_concat"))
  from moric_jax.model.multi_codec import gmn_config
  g = gmn_config(model_config)
  gmn_sec, gmn_bits = (None, 0.0)
  if scheme != "none":
    gmn_sec, gmn_bits = net_section(int_weights["gmn"])
  regions, region_bits = [], []
  rows, cols = arch.context_rows, arch.context_cols
  for r, grids in enumerate(symbols):
    lsn_sec, lsn_bits = net_section(int_weights["lsn"][r])
    coder = rans.new_encoder()
    coded = list(codec.regions[r].coded) if r >= 1 else None
    lat_bits = wavefront.encode_latents(coder, iarm, [np.asarray(s) for s in grids],
                                        rows, cols, coded)
    regions.append(lb.RegionSection(f32(float(lmbdas[r])),
                                    contours[r - 1] if r >= 1 else b"",
                                    f32(deltas["lsn"][r]), lsn_sec,
                                    rans.payload_bytes(coder)))
    region_bits.append({"contour": 8.0 * len(contours[r - 1]) if r >= 1 else 0.0,
                        "weights": lsn_bits, "latents": lat_bits})
  lf = lb.LayeredFile(height, width, mode, arch, scheme, int(g["width"]),
                      int(g["mod_width"]), str(g["activation"]), frac, d_arm,
                      f32(deltas.get("gmn", 1.0)), arm_sec, gmn_sec, tuple(regions))
  return lb.write(lf), {"regions": region_bits, "shared": arm_bits + gmn_bits}


def region_info(data: bytes) -> dict:
  """Header fields and per-region section sizes of a version-2 file (no decoding)."""
  f = lb.read(data)
  regions = []
  for i, reg in enumerate(f.regions):
    regions.append({"region": i, "lmbda": reg.lmbda,
                    "bits_contour": 8 * len(reg.contour),
                    "bits_weights": 8 * (len(reg.lsn.payload) + 1 + len(reg.lsn.scales)),
                    "bits_latents": 8 * len(reg.latents),
                    "delta_lsn": reg.delta_lsn})
  shared = 8 * (len(f.arm.payload) + 1 + len(f.arm.scales))
  if f.gmn is not None:
    shared += 8 * (len(f.gmn.payload) + 1 + len(f.gmn.scales))
  return {"version": lb.VERSION, "height": f.height, "width": f.width,
          "mode": bitstream.MODE_NAMES[f.mode], "num_regions": f.num_regions,
          "modulation": f.modulation, "bytes": len(data),
          "bpp": 8.0 * len(data) / (f.height * f.width),
          "architecture": dataclasses.asdict(f.arch),
          "gmn": {"width": f.gmn_width, "mod_width": f.mod_width,
                  "activation": f.gmn_activation},
          "bits_shared_weights": shared, "delta_arm": f.delta_arm,
          "delta_gmn": f.delta_gmn, "regions": regions}

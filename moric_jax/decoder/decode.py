"""The JAX-free decoder: parse, contours, entropy decode, NumPy synthesis, compose.

Imports NumPy, constriction/numba (entropy coding), Pillow-free helpers and the C*
rasteriser; never JAX, Flax or training code (DESIGN §2.8). Steps:

1. ``bitstream.read``: header and sections (CRC-checked; a cut file keeps its complete
   layers);
2. the C* contours -> object masks -> region layout (``model.region_layout``, the same
   integer rules the encoder trained with);
3. the base payload: ARM, GMN, upsampling and LSN-0 weights, then every coded latent under the
   integer ARM (wavefronts); each object layer's payload: its LSN weights;
4. synthesis: latents upsampled once, the GMN over the frame, LSN 0 over the frame,
   each object's LSN over its box, kept inside its mask.

Robustness: images above ``max_pixels`` and payloads too short for what the header
claims are refused before anything sized by the image is allocated, and every entropy
decoder stops as soon as its data runs dry, so a corrupt or crafted file costs time and
memory bounded by its length.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from moric_jax.coding import bitstream, code_lengths, integer_arm, rans, wavefront
from moric_jax.coding import network_layout, weights_coding
from moric_jax import image_io
from moric_jax.decoder import compose
from moric_jax.errors import BitstreamError
from moric_jax.model import grids
from moric_jax.model.region_layout import Layout, make_layout


@dataclasses.dataclass
class Decoded:
  """Everything parsed from a file.

  ``image``: ``(H, W, 3) uint8`` (RGB), ``(H, W) uint8`` (grey); object-only files add
  the decoded mask as alpha: ``(H, W, 4)`` / ``(H, W, 2)``. ``int_weights``: ``arm``,
  ``gmn``, ``upsampling`` (if any), ``lsn`` (list, rendered order, decoded layers only).
  ``symbols``: integer latents per grid ``(h_k, w_k) int32``.
  """
  file: bitstream.MoricFile
  masks: list[np.ndarray]
  layout: Layout
  int_weights: dict
  symbols: list[np.ndarray]
  image: np.ndarray
  layers: int
  parse_seconds: float
  entropy_seconds: float
  synthesis_seconds: float

  @property
  def header(self) -> bitstream.MoricFile:
    return self.file


def _base_networks(f: bitstream.MoricFile) -> list[str]:
  return f.shared_networks + ([] if f.object_only else ["lsn"])


def _decode_tensors(coder, tpl_list: list[dict], scales, what: str) -> list[dict]:
  shapes = [s for t in tpl_list for s in network_layout.leaf_shapes(t)]
  if len(scales) != len(shapes):
    raise BitstreamError(f"{what}: {len(scales)} weight scales, the architecture has "
                         f"{len(shapes)} tensors")
  flat = weights_coding.decode_tensors(coder, [int(np.prod(s)) for s in shapes],
                                       list(scales))
  out, i = [], 0
  for t in tpl_list:
    n = len(network_layout.flatten(t))
    out.append(network_layout.unflatten(t, [k.reshape(s) for k, s in
                                      zip(flat[i:i + n], shapes[i:i + n])]))
    i += n
  return out


def decode_masks(f: bitstream.MoricFile) -> list[np.ndarray]:
  """C* contours of every object region -> ``(H, W)`` bool masks."""
  if not f.contours:
    return []
  from moric_jax.regions import cstar
  out = []
  for i, c in enumerate(f.contours, start=1):
    try:
      out.append(cstar.decode_mask(c, (f.height, f.width)))
    except (cstar.CStarError, ValueError) as e:
      raise BitstreamError(f"region {i} contour: {e}") from None
  return out


def parse(data, max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS
          ) -> tuple[bitstream.MoricFile, list[np.ndarray], Layout]:
  """Header, sections, contours and region layout (no entropy decoding)."""
  f = bitstream.read(data)
  pixels = f.height * f.width
  if max_pixels is not None and pixels > max_pixels:
    raise BitstreamError(
        f"image is {f.width}x{f.height} = {pixels} pixels, above the decoder limit of "
        f"{max_pixels} (raise max_pixels / --max-pixels to decode it)")
  num_latents = sum(h * w for h, w in grids.grid_shapes(f.height, f.width,
                                                        f.arch.num_grids))
  # Cheap bound before the masks (H x W each) exist: every latent costs some bits.
  if not f.object_only:
    need = bitstream.min_payload_bits([], [], num_latents)
    if 8 * len(f.base_payload) < need:
      raise BitstreamError(
          f"payload of {len(f.base_payload)} bytes is too short for a {f.width}x"
          f"{f.height} image ({num_latents} latents need at least {need / 8:.0f} bytes)")
  masks = decode_masks(f)
  try:
    layout = make_layout(masks, f.height, f.width, f.arch.num_grids, f.object_only)
  except ValueError as e:
    raise BitstreamError(f"bad region layout: {e}") from None
  return f, masks, layout


def decode_file(data, max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS,
                layers: int | None = None) -> Decoded:
  """Parses ``data`` and renders its first ``layers`` layers (default: all there are).

  Raises ``BitstreamError`` for corrupt files and images above ``max_pixels``
  (``None`` = only the format's own limit), ``ValueError`` for a ``layers`` value the
  file does not have.
  """
  t0 = time.perf_counter()
  f, masks, layout = parse(data, max_pixels)
  available = f.complete_layers
  n = available if layers is None else int(layers)
  if not 1 <= n <= available:
    cut = (f" ({available} complete: the file is truncated)" if f.truncated else "")
    raise ValueError(f"layers must be 1..{available} for this file{cut}, got {layers}")
  t1 = time.perf_counter()
  ints, deltas, symbols = decode_payloads(f, layout, n - (0 if f.object_only else 1))
  t2 = time.perf_counter()
  image = synthesize(f, layout, ints, deltas, symbols, n)
  t3 = time.perf_counter()
  return Decoded(f, masks, layout, ints, symbols, image, n, t1 - t0, t2 - t1, t3 - t2)


def decode_payloads(f: bitstream.MoricFile, layout: Layout, object_layers: int
                    ) -> tuple[dict, list[float], list[np.ndarray]]:
  """Entropy-decodes the base payload and the first ``object_layers`` object layers.

  Returns ``(int_weights, LSN steps in rendered order, latent symbols per grid)``.
  """
  tpl = network_layout.file_templates(f)
  base_nets = _base_networks(f)
  sizes = [int(np.prod(s)) for name in base_nets for s in network_layout.leaf_shapes(tpl[name])]
  num_coded = sum(int(c.sum()) for c in layout.coded)
  need = bitstream.min_payload_bits(f.base_scales, sizes, num_coded)
  if len(f.base_scales) == len(sizes) and 8 * len(f.base_payload) < need:
    raise BitstreamError(f"base payload of {len(f.base_payload)} bytes is too short "
                         f"for its weights and {num_coded} latents")
  coder = rans.GuardedDecoder(f.base_payload, "base payload")
  steps = network_layout.base_steps(f)
  decoded = dict(zip(base_nets, _decode_tensors(coder, [tpl[k] for k in base_nets],
                                                f.base_scales, "base")))
  try:
    iarm = integer_arm.from_quantized(integer_arm.dense_layers(decoded["arm"]),
                                      steps["arm"], f.arm_frac_bits)
    symbols = wavefront.decode_latents(
        coder, iarm, grids.grid_shapes(f.height, f.width, f.arch.num_grids),
        f.arch.context_rows, f.arch.context_cols,
        coded=None if layout.all_coded else list(layout.coded))
  except BitstreamError:
    raise
  except ValueError as e:   # an integer ARM the kernels refuse (crafted weights/steps)
    raise BitstreamError(f"bad ARM: {e}") from None
  coder.finish()
  ints = {n: decoded[n] for n in f.shared_networks}
  ints["lsn"] = [decoded["lsn"]] if "lsn" in decoded else []
  deltas = [] if f.object_only else [steps["lsn"]]
  for i, layer in enumerate(f.layers[:object_layers], start=1):
    c = rans.GuardedDecoder(layer.payload, f"layer {i} payload")
    coded = _decode_tensors(c, [tpl["lsn"]], layer.scales, f"layer {i}")[0]
    c.finish()
    if len(layer.factors) != len(layer.scales):
      raise BitstreamError(f"layer {i}: one step factor per weight tensor")
    if not f.object_only:   # object LSNs are coded relative to LSN 0
      coded = network_layout.reference_residual(coded, ints["lsn"][0], deltas[0], layer.steps, +1)
    ints["lsn"].append(coded)
    deltas.append(layer.steps)
  return ints, deltas, symbols


def to_uint8(x: np.ndarray) -> np.ndarray:
  """Float image -> uint8 (``floor(clip(x, 0, 1) * 255 + 0.5)``, as the encoder)."""
  return np.floor(np.clip(x, 0.0, 1.0) * np.float32(255.0) + np.float32(0.5)).astype(
      np.uint8)


def synthesize_float(f: bitstream.MoricFile, layout: Layout, int_weights: dict,
                     lsn_deltas: list[float], symbols: list[np.ndarray], layers: int
                     ) -> np.ndarray:
  """``(H, W, 3) float32`` composition of the first ``layers`` rendered layers: the
  latents upsampled and the GMN run once over the frame, each LSN evaluated where its
  pixels show (``compose``)."""
  return compose.synthesize_float(f, layout, int_weights, lsn_deltas, symbols, layers)


def synthesize(f: bitstream.MoricFile, layout: Layout, int_weights: dict,
               lsn_deltas: list[float], symbols: list[np.ndarray], layers: int
               ) -> np.ndarray:
  """The decoded uint8 image (grey and alpha as ``Decoded.image`` says)."""
  image = to_uint8(synthesize_float(f, layout, int_weights, lsn_deltas, symbols, layers))
  if f.mode == bitstream.MODE_L8:
    image = image_io.rgb_to_grey(image)
  if f.object_only:
    drawn = np.isin(layout.labels, layout.rendered[:layers])
    alpha = np.where(drawn, 255, 0).astype(np.uint8)
    image = np.concatenate([image.reshape(f.height, f.width, -1), alpha[..., None]], -1)
  return image


def latent_code_lengths(f: bitstream.MoricFile, layout: Layout, arm_ints: dict,
                        symbols: list[np.ndarray]) -> np.ndarray:
  """``(N,)`` ideal bits of every latent (grids raveled in order) under the integer
  model; 0 for uncoded latents."""
  iarm = integer_arm.from_quantized(integer_arm.dense_layers(arm_ints),
                                    network_layout.base_steps(f)["arm"], f.arm_frac_bits)
  return code_lengths.latent_bits(iarm, symbols, f.arch.context_rows, f.arch.context_cols,
                                None if layout.all_coded else list(layout.coded))


def info(data) -> dict:
  """Header fields, and per region: pixels, lambda, bits of its latents (ideal code
  lengths of the latents it owns), LSN and contour. Entropy-decodes, no synthesis."""
  d = decode_entropy(data)
  f, layout = d.file, d.layout
  pixels = f.height * f.width
  owner = layout.owner_ids()
  lat_bits = np.bincount(owner, weights=latent_code_lengths(f, layout, d.int_weights["arm"],
                                                             d.symbols),
                         minlength=f.num_regions)
  net_bits = lambda tree, scale_list: code_lengths.tensors_bits(
      network_layout.flatten(tree), scale_list)
  tpl = network_layout.file_templates(f)
  shared, n_shared = 0.0, 0
  for name in f.shared_networks:
    n = len(network_layout.flatten(tpl[name]))
    shared += net_bits(d.int_weights[name], f.base_scales[n_shared:n_shared + n])
    n_shared += n
  lsn_scales = ([] if f.object_only else [f.base_scales[n_shared:]]) + [
      layer.scales for layer in f.layers]
  lsn_deltas = ([] if f.object_only else [network_layout.base_steps(f)["lsn"]]) + [
      l.steps for l in f.layers]

  def lsn_coded(j):   # what the file codes for LSN j (object LSNs: relative to LSN 0)
    k = d.int_weights["lsn"][j]
    if j >= 1 and not f.object_only:
      k = network_layout.reference_residual(k, d.int_weights["lsn"][0], lsn_deltas[0], lsn_deltas[j])
    return k

  region_px = layout.region_pixels()
  lmbdas = [f.lmbda0] + [layer.lmbda for layer in f.layers]
  regions = []
  for r in range(f.num_regions):
    j = layout.rendered.index(r) if r in layout.rendered else None
    has_lsn = j is not None and j < len(d.int_weights["lsn"])
    regions.append({
        "region": r, "pixels": int(region_px[r]),
        "lmbda": float(lmbdas[r]) if f.num_regions > 1 and r < len(lmbdas) else None,
        "bits_latents": float(lat_bits[r]),
        "bits_weights": net_bits(lsn_coded(j), lsn_scales[j]) if has_lsn else 0.0,
        "bits_contour": 8 * len(f.contours[r - 1]) if r >= 1 else 0,
        "layer_present": has_lsn or (r == 0 and f.object_only)})
  return {"version": f.version, "height": f.height, "width": f.width,
          "mode": bitstream.MODE_NAMES[f.mode], "num_regions": f.num_regions,
          "object_only": f.object_only, "modulation": f.modulation,
          "bytes": len(data), "bpp": 8.0 * len(data) / pixels,
          "base_payload_bytes": len(f.base_payload),
          "architecture": dataclasses.asdict(f.arch),
          "gmn": ({"width": f.gmn_width, "mod_width": f.mod_width,
                   "activation": f.gmn_activation} if f.has_gmn else None),
          "arm_weight_frac_bits": f.arm_frac_bits, "delta_arm": f.delta_arm,
          "delta_upsampling": f.delta_upsampling if f.has_upsampling else None,
          "delta_lsn": [f.delta_lsn0] * (not f.object_only) + [l.delta_lsn
                                                               for l in f.layers],
          "step_factors": {"base": list(bitstream.resolve_factors(
                               f.base_factors, len(f.base_scales))),
                           "layers": [list(l.factors) for l in f.layers]},
          "bits_shared_weights": shared, "truncated": f.truncated,
          "complete_layers": f.complete_layers,
          "num_wavefronts": f.width + (f.arch.context_cols + 1) * (f.height - 1),
          "regions": regions}


def decode_entropy(data) -> Decoded:
  """``decode_file`` of every layer without synthesis (``image`` is ``None``)."""
  t0 = time.perf_counter()
  f, masks, layout = parse(data, None)
  ints, _, symbols = decode_payloads(f, layout, len(f.layers))
  return Decoded(f, masks, layout, ints, symbols, None, 0, 0.0,
                 time.perf_counter() - t0, 0.0)

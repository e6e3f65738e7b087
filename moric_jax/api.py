"""Public encode / decode / info of ``.moric`` files.

The decoder path imports only ``model/`` (forward pass) and ``coding/``; training code
is imported lazily by ``encode``. ``encode`` reports the reconstruction produced by
``decode`` itself on the written bytes, so ``decode(data)`` equals
``info["reconstruction"]`` bit for bit on the same machine.

Robustness: ``decode`` refuses images above ``max_pixels`` (default
``bitstream.DEFAULT_DECODE_MAX_PIXELS``) and payloads too short for the claimed image
before allocating anything sized by the image, and stops as soon as the entropy coder
runs dry, so a corrupt or crafted file costs time and memory bounded by its length.
Grey images (2-D input arrays, or ``(H, W, 1)``) are stored with header mode ``L8``
and decode to ``(H, W) uint8``; RGB decodes to ``(H, W, 3) uint8``.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from moric_jax import image_io
from moric_jax.coding import bitstream, integer_arm, rans, wavefront, weights_coding
from moric_jax.errors import BitstreamError
from moric_jax.model import latents as latents_lib
from moric_jax.model import weights as weights_lib
from moric_jax.model.codec import Codec

NETWORKS = ("arm", "lsn")


@dataclasses.dataclass
class Decoded:
  """Everything parsed from a file.

  ``image``: ``(H, W, 3) uint8`` (mode RGB8) or ``(H, W) uint8`` (mode L8).
  """
  header: bitstream.Header
  int_weights: dict
  symbols: list[np.ndarray]
  image: np.ndarray
  entropy_seconds: float
  synthesis_seconds: float


def build_codec(header: bitstream.Header) -> Codec:
  return Codec.from_config(header.arch.model_config(), header.height, header.width)


def _templates(arch: bitstream.Architecture, height: int = 1, width: int = 1):
  """Per network: (treedef, leaf shapes) of the parameter tree, without computing.

  The ARM and LSN parameter shapes do not depend on the image size.
  """
  del height, width
  return _network_templates(arch)


@functools.lru_cache(maxsize=16)
def _network_templates(arch: bitstream.Architecture):
  codec = Codec.from_config(arch.model_config(), 1, 1)
  shapes = jax.eval_shape(codec.init, jax.random.PRNGKey(0))
  out = {}
  for n in NETWORKS:
    leaves, treedef = jax.tree_util.tree_flatten(shapes[n])
    out[n] = (treedef, [tuple(l.shape) for l in leaves])
  return out


@functools.lru_cache(maxsize=4)
def _synthesis_fn(arch: bitstream.Architecture, height: int, width: int):
  """One jitted ``(lsn_params, symbol grids) -> uint8 image`` per architecture/size."""
  codec = Codec.from_config(arch.model_config(), height, width)

  @jax.jit
  def synth(lsn_params, grids):
    x = codec.synthesize(lsn_params, [g.astype(jnp.float32) for g in grids])
    return jnp.floor(jnp.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(jnp.uint8)

  return synth


def _integer_arm(header: bitstream.Header, arm_ints) -> integer_arm.IntegerARM:
  return integer_arm.from_quantized(integer_arm.dense_layers(arm_ints), header.delta_arm,
                                    header.arm_frac_bits)


def check_limits(header: bitstream.Header, payload: bytes,
                 max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS) -> list[int]:
  """Refuses headers the decoder should not act on; returns the weight tensor sizes.

  Checks, before anything sized by the image is allocated: the pixel limit, the
  number of weight tensors against the architecture, and that the payload is long
  enough to hold the claimed weights and latents (``bitstream.min_payload_bits``).
  """
  pixels = header.height * header.width
  if max_pixels is not None and pixels > max_pixels:
    raise BitstreamError(
        f"image is {header.width}x{header.height} = {pixels} pixels, above the decoder "
        f"limit of {max_pixels} (raise max_pixels / --max-pixels to decode it)")
  templates = _templates(header.arch)
  sizes = [int(np.prod(s)) for n in NETWORKS for s in templates[n][1]]
  if len(sizes) != len(header.scales):
    raise BitstreamError(f"header has {len(header.scales)} weight scales, the "
                         f"architecture has {len(sizes)} tensors")
  num_latents = sum(h * w for h, w in latents_lib.grid_shapes(
      header.height, header.width, header.arch.num_grids))
  need = bitstream.min_payload_bits(header.scales, sizes, num_latents)
  if 8 * len(payload) < need:
    raise BitstreamError(
        f"payload of {len(payload)} bytes is too short for a {header.width}x"
        f"{header.height} image ({num_latents} latents need at least {need / 8:.0f} bytes)")
  return sizes


def decode_full(data: bytes, arm_fn=None,
                max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS) -> Decoded:
  """Parses ``data`` and reconstructs the image; raises ``BitstreamError``.

  ``max_pixels``: largest image (height * width) decoded; ``None`` = only the format's
  own limit (``bitstream.MAX_PIXELS``).
  """
  header, payload = bitstream.read(data)
  t0 = time.perf_counter()
  sizes = check_limits(header, payload, max_pixels)
  templates = _templates(header.arch)
  coder = rans.GuardedDecoder(payload)
  flat = weights_coding.decode_tensors(coder, sizes, list(header.scales))
  int_weights, i = {}, 0
  for n in NETWORKS:
    treedef, shapes = templates[n]
    leaves = [flat[i + j].reshape(s) for j, s in enumerate(shapes)]
    i += len(shapes)
    int_weights[n] = jax.tree_util.tree_unflatten(treedef, leaves)
  iarm = _integer_arm(header, int_weights["arm"])
  shapes = latents_lib.grid_shapes(header.height, header.width, header.arch.num_grids)
  symbols = wavefront.decode_latents(coder, iarm, shapes, header.arch.context_rows,
                                     header.arch.context_cols, arm_fn=arm_fn)
  coder.finish()
  t1 = time.perf_counter()
  lsn_params = weights_lib.dequantize_tree(int_weights["lsn"], header.delta_lsn)
  synth = _synthesis_fn(header.arch, header.height, header.width)
  image = np.asarray(synth(lsn_params, [jnp.asarray(s) for s in symbols]))
  if header.mode == bitstream.MODE_L8:
    image = image_io.rgb_to_grey(image)
  t2 = time.perf_counter()
  return Decoded(header, int_weights, symbols, image, t1 - t0, t2 - t1)


def decode(data: bytes,
           max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS,
           layers: int | None = None) -> np.ndarray:
  """``.moric`` bytes -> ``(H, W, 3) uint8`` image (``(H, W)`` for grey files).

  ``layers``: for multi-region files, render only the first ``layers`` layers (1 =
  background only); single-region files have one layer. Raises ``BitstreamError``
  for corrupt files and for images above ``max_pixels``, ``ValueError`` for a
  ``layers`` value the file does not have.
  """
  if bitstream.file_version(data) == 2:
    from moric_jax import layered
    return layered.decode_layered(data, max_pixels=max_pixels, layers=layers).image
  if layers is not None and int(layers) != 1:
    raise ValueError(f"this file has a single layer; --layers {layers} asks for more")
  return decode_full(data, max_pixels=max_pixels).image


def info(data: bytes) -> dict:
  """Header fields and sizes of a ``.moric`` file (no decoding).

  Multi-region files also list ``regions``: per region its lambda and the bits of its
  contour, LSN weights and latents (section sizes).
  """
  if bitstream.file_version(data) == 2:
    from moric_jax import layered
    return layered.region_info(data)
  header, payload = bitstream.read(data)
  a = header.arch
  pixels = header.height * header.width
  return {"version": bitstream.VERSION, "height": header.height, "width": header.width,
          "mode": bitstream.MODE_NAMES[header.mode], "num_regions": header.num_regions,
          "bytes": len(data), "header_bytes": len(data) - len(payload),
          "payload_bytes": len(payload), "bpp": 8.0 * len(data) / pixels,
          "architecture": dataclasses.asdict(a),
          "arm_weight_frac_bits": header.arm_frac_bits,
          "delta_arm": header.delta_arm, "delta_lsn": header.delta_lsn,
          "weight_scales": list(header.scales),
          "num_wavefronts": _num_fronts(header)}


def _num_fronts(header: bitstream.Header) -> int:
  """``w_0 + (cols + 1) * (h_0 - 1)`` (grid 0 is the largest), without allocating."""
  return header.width + (header.arch.context_cols + 1) * (header.height - 1)


def write_file(height: int, width: int, arch: bitstream.Architecture,
               deltas: dict, int_weights: dict, symbols: list[np.ndarray],
               mode: int = bitstream.MODE_RGB8) -> tuple[bytes, dict]:
  """Entropy codes quantized weights and symbols -> ``(bytes, bits)``.

  ``bits`` holds the ideal code lengths under the integer model (what the payload
  should cost): ``latents``, ``weights``.
  """
  delta_arm, delta_lsn = bitstream.f32(deltas["arm"]), bitstream.f32(deltas["lsn"])
  arm_layers = integer_arm.dense_layers(int_weights["arm"])
  frac_bits = integer_arm.choose_frac_bits(
      [(np.asarray(k, np.float64) * delta_arm, b) for k, b in arm_layers])
  iarm = integer_arm.from_quantized(arm_layers, delta_arm, frac_bits)
  coder = rans.new_encoder()
  # Stack: latents first (decoded last), then weights (decoded first).
  latent_bits = wavefront.encode_latents(coder, iarm, [np.asarray(s) for s in symbols],
                                         arch.context_rows, arch.context_cols)
  tensors = [np.asarray(k) for n in NETWORKS
             for k in jax.tree_util.tree_leaves(int_weights[n])]
  if len(tensors) > 255:
    raise ValueError("too many weight tensors for the header")
  scales, weight_bits = weights_coding.encode_tensors(coder, tensors)
  header = bitstream.Header(height, width, arch, frac_bits, delta_arm, delta_lsn,
                            tuple(scales), mode)
  data = bitstream.write(header, rans.payload_bytes(coder))
  return data, {"latents": latent_bits, "weights": weight_bits}


def encode(image, config, on_chunk: Callable | None = None,
           labels: np.ndarray | None = None) -> tuple[bytes, dict]:
  """Encodes an image (``(H, W, 3)`` uint8 or float in [0, 1]) with ``config``.

  Regions (MoRIC): ``labels`` ``(H, W)`` ints (0 = background, 1..N objects), else
  ``config.regions.masks`` (a mask image path), else ``config.regions.auto``
  (``"auto:K"``: up to K regions proposed from the image). With objects the file is
  a layered (version 2) file; otherwise a single-region (version 1) file.

  A 2-D ``(H, W)`` (or ``(H, W, 1)``) image is coded as grey (header mode ``L8``; the
  networks see it as three equal channels) and decodes to ``(H, W) uint8``. Images
  above ``config.max_pixels`` pixels are refused with ``ImageError``.

  Returns ``(data, info)``; ``info`` has ``bpp`` (file bits / pixels),
  ``bpp_estimated`` (ideal bits of the payload under the integer model / pixels),
  ``psnr`` (of the decoded image), ``bytes``, ``header_bytes``, ``encode_seconds`` and
  ``reconstruction`` (``(H, W, 3) uint8``, exactly what ``decode(data)`` returns).
  """
  from moric_jax.train import compress

  t0 = time.perf_counter()
  arr = np.asarray(image)
  grey = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1)
  if arr.ndim == 3 and arr.shape[2] == 1:
    arr = arr[:, :, 0]
  image = image_io.validate_image(arr)
  h, w = image.shape[:2]
  max_pixels = config.get("max_pixels")
  if max_pixels is not None and h * w > max_pixels:
    raise image_io.ImageError(f"image has {w}x{h} = {h * w} pixels, above the limit "
                              f"of {max_pixels} (config.max_pixels)")
  if max(h, w) > bitstream.MAX_SIDE or h * w > bitstream.MAX_PIXELS:
    raise image_io.ImageError(f"image {w}x{h} is above the format's limits "
                              f"({bitstream.MAX_SIDE} per side, "
                              f"{bitstream.MAX_PIXELS} pixels)")
  labels = _region_labels(image, config, labels)
  if labels is not None and labels.max() > 0:
    from moric_jax.train import compress_regions
    result = compress_regions.compress_regions(image, labels, config, on_chunk=on_chunk)
    data, info_d = package_regions(image, result, config, grey=grey)
  else:
    result = compress.compress_image(image, config, on_chunk=on_chunk)
    data, info_d = package(image, result, config, grey=grey)
  info_d["encode_seconds"] = time.perf_counter() - t0
  return data, info_d


def _region_labels(image: np.ndarray, config, labels) -> np.ndarray | None:
  """The label map to encode with (``None`` = single region)."""
  from moric_jax.regions import masks as masks_lib
  h, w = image.shape[:2]
  if labels is not None:
    return masks_lib.validate_label_map(labels, (h, w))
  rs = config.get("regions") or {}
  if rs.get("masks"):
    return masks_lib.load_label_map(rs["masks"], (h, w))
  k = masks_lib.parse_regions_spec(str(rs.get("auto", "") or ""))
  if k >= 2:
    from moric_jax.regions import proposals
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    return proposals.propose_regions(rgb, k, seed=int(config.seed))
  return None


def package_regions(image: np.ndarray, result, config, grey: bool = False
                    ) -> tuple[bytes, dict]:
  """Writes the layered file of a trained multi-region result and decodes it back."""
  from moric_jax import layered
  from moric_jax.eval import metrics

  h, w = image.shape[:2]
  mode = bitstream.MODE_L8 if grey else bitstream.MODE_RGB8
  data, bits = layered.write_layered(result.codec, mode, config.model, result.contours,
                                     result.lmbdas, result.deltas, result.int_weights,
                                     result.symbols)
  t_decode = time.perf_counter()
  try:
    decoded = layered.decode_layered(data, max_pixels=None)
  except BitstreamError as e:
    raise RuntimeError(f"internal error: the encoder's output does not decode: {e}"
                       ) from None
  decode_seconds = time.perf_counter() - t_decode
  same = all(np.array_equal(a, b) for ra, rb in zip(decoded.symbols, result.symbols)
             for a, b in zip(ra, rb))
  if not same:
    raise RuntimeError("internal error: decoded latents differ from the encoded ones")
  pixels = h * w
  ref = image_io.to_uint8(image[..., 0] if grey else image)
  labels = result.codec.labels()
  regions = []
  for r, rb in enumerate(bits["regions"]):
    sel = labels == r
    regions.append({
        "region": r, "lmbda": float(result.lmbdas[r]), "pixels": int(sel.sum()),
        "bits_contour": rb["contour"], "bits_weights": rb["weights"],
        "bits_latents": rb["latents"],
        "psnr": metrics.psnr_uint8(decoded.image[sel], ref[sel]) if sel.any() else None})
  est = bits["shared"] + sum(r["contour"] + r["weights"] + r["latents"]
                             for r in bits["regions"])
  m = result.metrics
  info_d = {
      "bpp": 8.0 * len(data) / pixels, "bpp_estimated": est / pixels,
      "bpp_contours": sum(r["contour"] for r in bits["regions"]) / pixels,
      "bpp_latents": sum(r["latents"] for r in bits["regions"]) / pixels,
      "bpp_weights": (bits["shared"] + sum(r["weights"] for r in bits["regions"]))
                     / pixels,
      "psnr": metrics.psnr_uint8(decoded.image, ref),
      "mode": bitstream.MODE_NAMES[mode], "bytes": len(data),
      "encode_seconds": m["encode_seconds"], "train_seconds": m["train_seconds"],
      "steps_per_second": m["steps_per_second"],
      "decode_seconds": decode_seconds,
      "height": h, "width": w, "num_steps": int(config.num_steps),
      "lmbda": float(config.lmbda), "num_regions": result.codec.num_regions,
      "modulation": m["modulation"], "regions": regions,
      "macs_per_pixel": m["macs_per_pixel"]["total"],
      "reconstruction": decoded.image,
  }
  return data, info_d


def package(image: np.ndarray, result, config, grey: bool = False
            ) -> tuple[bytes, dict]:
  """Writes the file for a trained ``CompressResult`` and decodes it back.

  ``image`` is the ``(H, W, 3)`` float input; the reported ``reconstruction``, ``psnr``
  and ``decode_seconds`` come from decoding the written bytes with the decoder's own
  path. ``encode_seconds`` is the result's own (training + weight search).
  """
  from moric_jax.eval import metrics

  h, w = image.shape[:2]
  mode = bitstream.MODE_L8 if grey else bitstream.MODE_RGB8
  arch = bitstream.Architecture.from_model_config(config.model)
  data, bits = write_file(h, w, arch, result.deltas, result.int_weights, result.symbols,
                          mode)
  t_decode = time.perf_counter()
  try:
    decoded = decode_full(data, max_pixels=None)
  except BitstreamError as e:
    raise RuntimeError(f"internal error: the encoder's output does not decode: {e}"
                       ) from None
  decode_seconds = time.perf_counter() - t_decode
  if not all(np.array_equal(a, b) for a, b in zip(decoded.symbols, result.symbols)):
    raise RuntimeError("internal error: decoded latents differ from the encoded ones")
  pixels = h * w
  header_bytes = len(data) - len(bitstream.read(data)[1])
  est_bits = bits["latents"] + bits["weights"]
  m = result.metrics
  info_d = {
      "bpp": 8.0 * len(data) / pixels,
      "bpp_estimated": est_bits / pixels,
      "bpp_latents": bits["latents"] / pixels,
      "bpp_weights": bits["weights"] / pixels,
      "bpp_header": 8.0 * header_bytes / pixels,
      "bpp_estimated_float": m.get("bpp_estimated"),
      "psnr": metrics.psnr_uint8(
          decoded.image, image_io.to_uint8(image[..., 0] if grey else image)),
      "mode": bitstream.MODE_NAMES[mode],
      "psnr_float_weights": m.get("psnr"),
      "bytes": len(data), "header_bytes": header_bytes,
      "payload_bytes": len(data) - header_bytes,
      "encode_seconds": m.get("encode_seconds"), "decode_seconds": decode_seconds,
      "train_seconds": m.get("train_seconds"),
      "steps_per_second": m.get("steps_per_second"),
      "height": h, "width": w,
      "num_steps": int(config.num_steps), "lmbda": float(m.get("lmbda", config.lmbda)),
      "weight_deltas": {"arm": decoded.header.delta_arm, "lsn": decoded.header.delta_lsn},
      "arm_weight_frac_bits": decoded.header.arm_frac_bits,
      "reconstruction": decoded.image,
  }
  return data, info_d

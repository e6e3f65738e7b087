"""Public encode / decode / info of ``.moric`` files (one codec, one format).

``decode`` and ``info`` run the JAX-free decoder (``moric_jax.decoder``); importing
this module imports no JAX: training code is imported by ``encode`` only. ``encode``
reports the reconstruction produced by ``decode`` itself on the written bytes, so
``decode(data)`` equals ``info["reconstruction"]`` bit for bit on the same machine.

Robustness: ``decode`` refuses images above ``max_pixels`` (default
``bitstream.DEFAULT_DECODE_MAX_PIXELS``) and payloads too short for the claimed image
before allocating anything sized by the image, and stops as soon as an entropy coder
runs dry, so a corrupt or crafted file costs time and memory bounded by its length.
Grey images (2-D input arrays, or ``(H, W, 1)``) are stored with header mode ``L8``
and decode to ``(H, W) uint8``; RGB decodes to ``(H, W, 3) uint8``; object-only files
add the decoded mask as an alpha channel.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np

from moric_jax import image_io
from moric_jax.coding import bitstream, writer
from moric_jax.decoder import decode as decoder
from moric_jax.errors import BitstreamError

Decoded = decoder.Decoded


def decode_file(data: bytes, max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS,
                layers: int | None = None) -> decoder.Decoded:
  """Parses and renders ``data`` (see ``decoder.decode_file``)."""
  return decoder.decode_file(data, max_pixels=max_pixels, layers=layers)


def decode(data: bytes, max_pixels: int | None = bitstream.DEFAULT_DECODE_MAX_PIXELS,
           layers: int | None = None) -> np.ndarray:
  """``.moric`` bytes -> ``(H, W, 3) uint8`` image (``(H, W)`` for grey files).

  ``layers``: render only the first ``layers`` layers (1 = background only). A file
  cut inside its object layers decodes to its complete layers. Raises
  ``BitstreamError`` for corrupt files and images above ``max_pixels``, ``ValueError``
  for a ``layers`` value the file does not have.
  """
  return decoder.decode_file(data, max_pixels=max_pixels, layers=layers).image


def info(data: bytes) -> dict:
  """Header fields and per-region sizes of a ``.moric`` file (``decoder.info``)."""
  return decoder.info(data)


def _file_arch(model_config) -> bitstream.Architecture:
  try:
    return bitstream.Architecture.from_model_config(model_config)
  except ValueError as e:
    raise image_io.ImageError(str(e)) from None


def write_file(result, model_config, mode: int = bitstream.MODE_RGB8
               ) -> tuple[bytes, dict]:
  """Entropy codes a trained ``CompressResult`` -> ``(bytes, bits)`` (``writer.write``)."""
  codec = result.codec
  layout = codec.layout
  return writer.write(
      codec.height, codec.width, _file_arch(model_config), mode=mode,
      modulation=codec.scheme, gmn=codec.header_gmn(),
      contours=result.contours, lmbdas=result.lmbdas, deltas=result.deltas,
      int_weights=result.int_weights, symbols=result.symbols, owners=layout.owner_ids(),
      coded=None if layout.all_coded else list(layout.coded),
      object_only=layout.object_only, factors=result.factors)


def encode(image, config, on_chunk: Callable | None = None,
           labels: np.ndarray | None = None,
           on_plan: Callable[[dict], None] | None = None) -> tuple[bytes, dict]:
  """Encodes an image (``(H, W, 3)`` uint8 or float in [0, 1]) with ``config``.

  Regions (MoRIC): ``labels`` ``(H, W)`` ints (0 = background, 1..N objects), else
  ``config.regions.masks`` (a mask image path), else ``config.regions.auto``
  (``"auto:K"``: up to K regions proposed from the image; the encoder also codes the
  image as one region and keeps whichever file has the lower RD cost ``D + lmbda *
  R``, reported as ``info["region_choice"]``). ``config.regions.object_only`` codes
  only the objects (no background latents, LSN or pixels).

  A 2-D ``(H, W)`` (or ``(H, W, 1)``) image is coded as grey (header mode ``L8``; the
  networks see it as three equal channels) and decodes to ``(H, W) uint8``. Images
  above ``config.max_pixels`` pixels are refused with ``ImageError``; encodes whose
  estimated memory (``train.resources``) exceeds the machine's, or
  ``config.max_memory_bytes``, with ``ResourceError``, before training. ``on_plan``
  receives that estimate (``bytes``, ``seconds``, ``available``) first.

  Returns ``(data, info)``; ``info`` has ``bpp`` (file bits / pixels; object-only:
  over the object pixels), ``bpp_estimated`` (ideal bits under the integer model /
  pixels), ``psnr`` (of the decoded image), ``bytes``, ``encode_seconds``, ``regions``
  (per region: pixels, lambda, bits, PSNR) and ``reconstruction`` (exactly what
  ``decode(data)`` returns).
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
  labels, auto = _region_labels(image, config, labels)
  if labels is not None and labels.max() == 0:
    labels = None
  from moric_jax.train import resources
  plan = resources.check(h, w, config, 1 if labels is None else int(labels.max()) + 1)
  if on_plan is not None:
    on_plan(plan)
  result = compress.compress_image(image, config, on_chunk=on_chunk, labels=labels)
  data, info_d = package(image, result, config, grey=grey)
  if auto and labels is not None:
    single = compress.compress_image(image, config, on_chunk=on_chunk)
    data1, info1 = package(image, single, config, grey=grey)
    choice = {"proposal_regions": int(labels.max()) + 1,
              "rd_cost_regions": info_d["rd_cost"], "rd_cost_single": info1["rd_cost"]}
    if info1["rd_cost"] <= info_d["rd_cost"]:
      data, info_d = data1, info1
    choice["kept"] = "regions" if info_d["num_regions"] > 1 else "single"
    info_d["region_choice"] = choice
  info_d["encode_seconds"] = time.perf_counter() - t0
  return data, info_d


def _region_labels(image: np.ndarray, config, labels) -> tuple[np.ndarray | None, bool]:
  """The label map to encode with (``None`` = one region), and whether it was
  proposed automatically."""
  from moric_jax.regions import masks as masks_lib
  h, w = image.shape[:2]
  if labels is not None:
    return masks_lib.validate_label_map(labels, (h, w)), False
  rs = config.regions
  if rs.masks:
    return masks_lib.load_label_map(rs.masks, (h, w)), False
  k = masks_lib.parse_regions_spec(str(rs.auto or ""))
  if k >= 2:
    from moric_jax.regions import proposals
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)
    return proposals.propose_regions(rgb, k, seed=int(config.seed)), True
  return None, False


def package(image: np.ndarray, result, config, grey: bool = False
            ) -> tuple[bytes, dict]:
  """Writes the file of a trained ``CompressResult`` and decodes it back.

  ``image`` is the ``(H, W, 3)`` float input; the reported ``reconstruction``, ``psnr``
  and ``decode_seconds`` come from decoding the written bytes with the decoder's own
  path. ``encode_seconds`` is the result's own (training + weight search).
  """
  from moric_jax.eval import metrics

  h, w = image.shape[:2]
  mode = bitstream.MODE_L8 if grey else bitstream.MODE_RGB8
  data, bits = write_file(result, config.model, mode)
  t_decode = time.perf_counter()
  try:
    decoded = decoder.decode_file(data, max_pixels=None)
  except BitstreamError as e:
    raise RuntimeError(f"internal error: the encoder's output does not decode: {e}"
                       ) from None
  decode_seconds = time.perf_counter() - t_decode
  if not all(np.array_equal(a, b) for a, b in zip(decoded.symbols, result.symbols)):
    raise RuntimeError("internal error: decoded latents differ from the encoded ones")
  codec, layout = result.codec, result.codec.layout
  shown = layout.shown()
  pixels = int(shown.sum())
  ref = image_io.to_uint8(image[..., 0] if grey else image)
  rgb = decoded.image[..., :-1] if layout.object_only else decoded.image
  if layout.object_only and grey:
    rgb = rgb[..., 0]
  psnr = metrics.psnr_uint8(rgb[shown], ref[shown])
  labels = layout.labels
  regions = []
  for r in range(codec.num_regions):
    sel = labels == r
    j = layout.rendered.index(r) if r in layout.rendered else None
    regions.append({
        "region": r, "lmbda": float(result.lmbdas[r]), "pixels": int(sel.sum()),
        "bits_contour": bits["contours"][r - 1] if r >= 1 else 0.0,
        "bits_weights": bits["lsn"][j] if j is not None else 0.0,
        "bits_latents": float(bits["region_latents"][r]),
        "psnr": (metrics.psnr_uint8(rgb[sel], ref[sel])
                 if sel.any() and j is not None else None)})
  est = bits["latents"] + bits["shared"] + sum(bits["lsn"]) + sum(bits["contours"])
  header_bytes = len(data) - len(decoded.file.base_payload) - sum(
      len(l.payload) for l in decoded.file.layers)
  m = result.metrics
  mse = float(np.mean((rgb[shown].astype(np.float64) - ref[shown]) ** 2)) / 255.0**2
  bpp = 8.0 * len(data) / pixels
  info_d = {
      "bpp": bpp, "bpp_estimated": est / pixels,
      "bpp_latents": bits["latents"] / pixels,
      "bpp_weights": (bits["shared"] + sum(bits["lsn"])) / pixels,
      "bpp_contours": sum(bits["contours"]) / pixels,
      "bpp_header": 8.0 * header_bytes / pixels,
      "bpp_estimated_float": m.get("bpp_estimated"),
      "psnr": psnr, "psnr_float_model": m.get("psnr"),
      "rd_cost": mse + float(result.lmbdas[0]) * bpp,
      "mode": bitstream.MODE_NAMES[mode], "bytes": len(data),
      "header_bytes": header_bytes, "payload_bytes": len(data) - header_bytes,
      "pixels": pixels, "object_only": layout.object_only,
      "encode_seconds": m.get("encode_seconds"), "decode_seconds": decode_seconds,
      "train_seconds": m.get("train_seconds"),
      "steps_per_second": m.get("steps_per_second"),
      "procedure": m.get("procedure"),
      "height": h, "width": w, "num_steps": int(config.num_steps),
      "lmbda": float(result.lmbdas[0]), "num_regions": codec.num_regions,
      "modulation": codec.scheme, "regions": regions,
      "macs_per_pixel": m["macs_per_pixel"]["total"],
      "weight_deltas": {"arm": decoded.file.delta_arm, "lsn": [
          decoded.file.delta_lsn0] * (not layout.object_only) + [
              l.delta_lsn for l in decoded.file.layers]},
      "arm_weight_frac_bits": decoded.file.arm_frac_bits,
      "reconstruction": decoded.image,
  }
  return data, info_d

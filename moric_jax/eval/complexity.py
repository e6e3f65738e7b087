"""Decoder complexity in multiply-accumulates (MACs) per pixel."""
from __future__ import annotations

import ml_collections

from moric_jax.model import arm as arm_lib
from moric_jax.model import latents as latents_lib


def mlp_macs(sizes: list[int]) -> int:
  """MACs of a dense MLP with layer widths ``sizes`` (input first), per sample."""
  return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def macs_per_pixel(model_config: ml_collections.ConfigDict, height: int, width: int
                   ) -> dict[str, float]:
  """MACs/pixel of decoding: ARM (per latent, scaled to pixels), upsampling, LSN."""
  lat = model_config.latents
  shapes = latents_lib.grid_shapes(height, width, lat.num_grids)
  latents_per_pixel = sum(h * w for h, w in shapes) / (height * width)
  ctx = len(arm_lib.context_offsets(model_config.arm_context.rows,
                                    model_config.arm_context.cols))
  arm = mlp_macs([ctx, *model_config.arm.hidden, 2]) * latents_per_pixel
  upsample = 4.0 * (lat.num_grids - 1)   # separable bilinear: 2 + 2 MACs per grid.
  lsn_cfg = model_config.lsn
  k = lsn_cfg.kernel_size
  lsn = mlp_macs([lat.num_grids, *lsn_cfg.hidden, 3]) + lsn_cfg.num_res_convs * k * k * 9
  return {"arm": float(arm), "upsampling": upsample, "lsn": float(lsn),
          "total": float(arm + upsample + lsn)}


def multi_macs_per_pixel(codec) -> dict[str, float]:
  """MACs/pixel of decoding a ``MultiCodec``: every region's ARM (coded latents only),
  upsampling, GMN and LSN over its box, divided by the image's pixels."""
  pixels = codec.height * codec.width
  ctx = codec.context_size
  arm_per_latent = mlp_macs([ctx, *codec.arm.hidden, 2])
  lsn = codec.lsn
  lg = codec.num_grids
  widths = []
  if codec.gmn is not None:
    from moric_jax.model import modulation
    widths = modulation.signal_widths(codec.gmn.scheme, lsn.hidden, codec.gmn.mod_width)
  gmn = 0
  if codec.gmn is not None:
    prev = lg
    for c in widths:
      gmn += prev * codec.gmn.width + codec.gmn.width * c
      prev = codec.gmn.width
  scheme = lsn.modulation
  prev = lg + (widths[0] if scheme == "concat_input" else 0)
  lsn_macs = 0
  for k, width in enumerate(lsn.hidden):
    extra = widths[k] if scheme == "progressive_concat" else 0
    lsn_macs += (prev + extra) * width
    prev = width
  lsn_macs += prev * 3 + lsn.num_res_convs * lsn.kernel_size ** 2 * 9
  arm = upsample = synth = 0.0
  for reg in codec.regions:
    _, _, h, w = reg.box
    arm += arm_per_latent * reg.num_coded
    upsample += 4.0 * (lg - 1) * h * w
    synth += (gmn + lsn_macs) * h * w
  total = (arm + upsample + synth) / pixels
  return {"arm": arm / pixels, "upsampling": upsample / pixels,
          "synthesis": synth / pixels, "total": total}

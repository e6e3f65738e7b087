"""Decoder complexity in multiply-accumulates (MACs) per pixel."""
from __future__ import annotations

from moric_jax.model import modulation
from moric_jax.model import region_net


def mlp_macs(sizes: list[int]) -> int:
  """MACs of a dense MLP with layer widths ``sizes`` (input first), per sample."""
  return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def macs_per_pixel(codec) -> dict[str, float]:
  """MACs per image pixel of decoding a ``Codec`` (any number of regions).

  ARM: one MLP per coded latent; upsampling: separable bilinear, once over the frame
  (2 + 2 MACs per grid), or learned 2x steps (4 taps per axis for every channel that
  passes a step, at the finer resolution); GMN: once over the frame; LSNs: each rendered region's over
  its box (LSN 0 over the frame), including the modulation inputs and residual convs.
  """
  pixels = codec.height * codec.width
  lg = codec.num_grids
  num_coded = sum(int(c.sum()) for c in codec.layout.coded)
  arm = mlp_macs([codec.context_size, *codec.arm.hidden, 2]) * num_coded
  upsample = 4.0 * (lg - 1) * pixels
  if "upsampling" in codec.shared_networks:
    shapes = codec.grid_shapes
    # Step j (grid j+1 -> j) filters L-1-j channels: along rows to (h_j, w_{j+1}),
    # then along columns to (h_j, w_j), 4 taps per output.
    upsample = float(sum(4 * (lg - 1 - j) * (shapes[j][0] * shapes[j + 1][1]
                                            + shapes[j][0] * shapes[j][1])
                         for j in range(lg - 1)))
  lsn = codec.lsn
  if codec.modular is not None:   # trunk over the frame + region networks per pixel
    m = codec.modular
    trunk = mlp_macs([lg, *lsn.hidden, 3]) + lsn.num_res_convs * lsn.kernel_size ** 2 * 9
    # Each region network runs at the pixels it shows (the decoder's compose).
    shown = sum(int((codec.layout.labels == r).sum()) for r in codec.layout.rendered)
    nets = region_net.macs(m.width, m.stages) * shown
    synth = trunk * pixels + nets
    return {"arm": arm / pixels, "upsampling": upsample / pixels, "gmn": float(trunk),
            "lsn": nets / pixels, "synthesis": synth / pixels,
            "total": (arm + upsample + synth) / pixels}
  widths, gmn = [], 0
  if codec.gmn is not None:
    widths = modulation.signal_widths(codec.gmn.scheme, lsn.hidden, codec.gmn.mod_width)
    prev = lg
    for c in widths:
      gmn += prev * codec.gmn.width + codec.gmn.width * c
      prev = codec.gmn.width
  prev = lg + (widths[0] if lsn.modulation == "concat_input" else 0)
  lsn_macs = 0
  for k, width in enumerate(lsn.hidden):
    lsn_macs += (prev + (widths[k] if lsn.modulation == "progressive_concat" else 0)) * width
    prev = width
  lsn_macs += prev * 3 + lsn.num_res_convs * lsn.kernel_size ** 2 * 9
  box_pixels = sum(codec.layout.boxes[r][2] * codec.layout.boxes[r][3]
                   for r in codec.layout.rendered)
  synth = gmn * pixels + lsn_macs * box_pixels
  return {"arm": arm / pixels, "upsampling": upsample / pixels, "gmn": float(gmn),
          "lsn": lsn_macs * box_pixels / pixels, "synthesis": synth / pixels,
          "total": (arm + upsample + synth) / pixels}

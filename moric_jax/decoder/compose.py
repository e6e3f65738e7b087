"""Region composition that evaluates every LSN only where its pixels show.

``synthesize_float`` is a drop-in for ``decode.synthesize_float`` (same arguments, the
same float32 pixels bit for bit: tests/test_decoder.py): the latents are upsampled and
the GMN run once over the frame, then ``networks.compose`` renders each layer's LSN at
the pixels it draws plus the ring its residual convolutions read, instead of over its
whole box (the base LSN also skips what later regions cover). A 3-region 768x512 file
synthesises in ~45 ms instead of ~65 ms.
"""
from __future__ import annotations

import numpy as np

from moric_jax.coding import network_layout
from moric_jax.decoder import networks


def synthesize_float(f, layout, int_weights: dict, lsn_deltas: list[float],
                     symbols: list[np.ndarray], layers: int) -> np.ndarray:
  """``(H, W, 3) float32`` composition of the first ``layers`` rendered layers."""
  h, w, a = f.height, f.width, f.arch
  ups = None
  steps = network_layout.base_steps(f)
  if f.has_upsampling:
    ups = network_layout.dequantize(int_weights["upsampling"], steps["upsampling"])
  stack = networks.upsample_stack(symbols, a.q_step, h, w, ups)
  if f.modulation == "moric":
    gmn = network_layout.dequantize(int_weights["gmn"], steps["gmn"])
    layers_m = [(network_layout.dequantize(int_weights["lsn"][j], lsn_deltas[j]),
                 layout.boxes[r], None if r == 0 else layout.box_mask(r))
                for j, r in enumerate(layout.rendered[:layers])]
    return networks.compose_modular(networks.trunk_stages(gmn["trunk"], stack, h, w, a),
                                    gmn, layers_m, h, w, f.gmn_activation)
  sig = None
  if f.has_gmn:
    sig = networks.gmn_forward(network_layout.dequantize(int_weights["gmn"], steps["gmn"]),
                               stack, a, f.modulation, f.mod_width, f.gmn_activation)
  stack_layers = [(network_layout.dequantize(int_weights["lsn"][j], lsn_deltas[j]),
                   layout.boxes[r], None if r == 0 else layout.box_mask(r))
                  for j, r in enumerate(layout.rendered[:layers])]
  return networks.compose(stack, sig, stack_layers, h, w, a, f.modulation)

"""Global Modulation Network (GMN): one per image, weights shared by all regions.

Maps a region's upsampled latent stack ``(h, w, L)`` to one modulation signal per LSN
layer. Features are progressive: ``f_k = act(Dense(f_{k-1}))`` with ``f_0`` the latents,
so deeper layers receive more processed (wider-context) features; the shared
modulation map ``M_k`` (a Dense head) turns ``f_k`` into the signal ``m_k`` whose
width the scheme asks for (``modulation.signal_widths``).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax

from moric_jax.model import modulation

ACTIVATIONS = {"relu": nn.relu, "gelu": nn.gelu}


class GMN(nn.Module):
  """``(h, w, L)`` latents -> list of ``(h, w, c_k)`` modulation signals."""
  scheme: str = "progressive_concat"
  lsn_hidden: Sequence[int] = (18, 18)
  width: int = 8          # channels of the features f_k
  mod_width: int = 4      # channels of each concatenated signal
  activation: str = "gelu"

  @nn.compact
  def __call__(self, latents: jax.Array) -> list[jax.Array]:
    act = ACTIVATIONS[self.activation]
    widths = modulation.signal_widths(self.scheme, self.lsn_hidden, self.mod_width)
    f, out = latents, []
    for c in widths:
      f = act(nn.Dense(self.width)(f))
      # FiLM heads start at the identity (gamma = beta = 0).
      init = nn.initializers.zeros if self.scheme == "film" else nn.initializers.lecun_normal()
      out.append(nn.Dense(c, kernel_init=init)(f))
    return out

"""How the Global Modulation Network's features enter a Local Synthesis Network.

Schemes (``config.model.modulation``), for LSN hidden layers ``k = 1..K`` with
pre-activations ``z_k = Dense_k(input_k)`` and modulation signals ``m_k`` from the GMN:

* ``none``: the LSN sees the latents only (no GMN is coded).
* ``film``: ``h_k = act(z_k * (1 + gamma_k) + beta_k)`` with ``(gamma_k, beta_k) = m_k``.
* ``concat_input``: ``input_1 = concat(latents, m_1)``, once.
* ``progressive_concat``: ``input_k = concat(h_{k-1}, m_k)`` at every layer, so
  global context enters every layer while each LSN keeps its own weights (the layout
  before ``moric``: a whole latent-fed LSN per region, an 8-wide side GMN).
* ``moric`` (the authors' modular layout, ``region_net.py``): the GMN is the whole
  synthesis trunk, each region's LSN a tiny network on its pixel coordinates joined to
  the trunk's stages by a shared aggregator. No signals in the sense above.
"""
from __future__ import annotations

SCHEMES = ("none", "film", "concat_input", "progressive_concat", "moric")


def check_scheme(scheme: str) -> str:
  """Returns ``scheme`` or raises ``ValueError`` naming the valid ones."""
  if scheme not in SCHEMES:
    raise ValueError(f"unknown modulation scheme {scheme!r}; choose one of "
                     f"{', '.join(SCHEMES)}")
  return scheme


def num_signals(scheme: str, num_layers: int) -> int:
  """How many modulation signals ``m_k`` an LSN with ``num_layers`` hidden layers takes."""
  return {"none": 0, "film": num_layers, "concat_input": 1,
          "progressive_concat": num_layers, "moric": 0}[check_scheme(scheme)]


def signal_widths(scheme: str, lsn_hidden, mod_width: int) -> list[int]:
  """Channels of each signal: ``2 * width_k`` for FiLM, ``mod_width`` for concatenation."""
  n = num_signals(scheme, len(lsn_hidden))
  if scheme == "film":
    return [2 * int(w) for w in lsn_hidden]
  return [int(mod_width)] * n

"""C* format constants, parameters (:class:`CStarParams`) and the error type.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import constriction


_model = constriction.stream.model
_queue = constriction.stream.queue

FIX = 16  # lattice units per pixel
HALF = FIX // 2  # half-pixel grid spacing in lattice units
SUB = 4  # supersampling of the decoder's raster / dilation grid (per pixel)
_KS = (8, 16, 32, 64)
_MAX_SIDE = (1 << 23) - 8
_PAD_WORDS = 4  # zero words the decoder may read past the data before "truncated"
_EV_FREE = 4096  # chain events + components allowed regardless of the data length ...
_EV_PER_BYTE = 64  # ... plus this many per byte of data
_Q_CAP_MAX_PX = 16  # dilation radius cap (px); see _q_cap_px
_BLOCK = 1 << 20  # output samples per block of the decoder's dilation
_CHUNK = 1 << 18  # scanline crossings (or span x row pairs) generated at a time
_MODE_PRIOR = (3.0, 1.0)  # initial counts of the closed / arcs component mode


class CStarError(ValueError):
    """Raised for a corrupt, truncated or otherwise undecodable C* byte string."""


@dataclass(frozen=True)
class CStarParams:
    """C* encoder settings. Lengths in pixels, angles in units of 2*pi/n_directions.

    The four module switches: ``angle_matching`` (choose the offset whose endpoint lands
    nearest the contour; off = quantise the contour's own chord direction, open loop),
    ``global_resetting`` (RESET when drift > ``reset_bound``), ``offset_adaptation`` (ESC to
    a wide alphabet and short step where the smooth alphabet deviates > ``adapt_threshold``;
    off = one fixed alphabet ``[-smooth_range, smooth_range]`` and step), ``contour_dilation``
    (send the smallest dilation giving 100% coverage; off = no dilation).
    ``contour_level`` (encoder only) is the marching-squares level of the traced contour;
    below 0.5 biases the chain slightly outward so less dilation is needed.
    """

    angle_matching: bool = True
    global_resetting: bool = True
    offset_adaptation: bool = True
    contour_dilation: bool = True
    n_directions: int = 32
    step: float = 4.0
    corner_step: float = 2.0
    smooth_range: int = 2
    corner_range: int = 12
    reset_bound: float = 1.0
    adapt_threshold: float = 0.7
    contour_level: float = 0.5


class _Format(NamedTuple):
    """What the decoder must know (written to the stream header)."""

    K: int
    step_u: int
    cstep_u: int
    A: int
    C: int
    reset: bool
    adapt: bool
    dilate: bool


def _format(p: CStarParams) -> _Format:
    if p.n_directions not in _KS:
        raise ValueError(f"n_directions must be one of {_KS}")
    step_u = int(round(p.step * FIX))
    cstep_u = int(round(p.corner_step * FIX))
    if not (FIX // 2 <= step_u <= 64 * FIX and FIX // 4 <= cstep_u <= step_u):
        raise ValueError("need 0.5 <= step <= 64 and 0.25 <= corner_step <= step")
    half_k = p.n_directions // 2
    if not (1 <= p.smooth_range < half_k and p.smooth_range <= p.corner_range <= half_k):
        raise ValueError("need 1 <= smooth_range <= corner_range <= n_directions/2")
    return _Format(
        p.n_directions, step_u, cstep_u, p.smooth_range, p.corner_range,
        bool(p.global_resetting), bool(p.offset_adaptation), bool(p.contour_dilation),
    )


_DEFAULT = CStarParams()
_DEFAULT_FMT = _format(_DEFAULT)

"""C* frame geometry: the image border as a ring of half-pixel points, frame arcs and ring walks.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import numpy as np

from moric_jax.regions.cstar.params import FIX, HALF
from moric_jax.regions.cstar.lattice import _half


# The frame is the image's outer boundary, the rectangle of lattice points from (-HALF, -HALF)
# to ((H-1)*FIX + HALF, (W-1)*FIX + HALF). Its half-pixel points are numbered clockwise (on
# screen; rows grow downwards) by s in [0, P), P = 4*(H+W): top side left to right from the
# top-left corner (s = 0), right side top to bottom (s = 2W), bottom side right to left
# (s = 2W+2H), left side bottom to top (s = 4W+2H). A corner belongs to the side it starts.
_GAP = HALF  # the decoder's ring walk runs this far (lattice units) outside the frame
_INWARD = (1, 2, 3, 0)  # inward normal of sides 0..3, in quarter turns (direction K/4*x)
_OUTWARD = ((-1, 0), (0, 1), (1, 0), (0, -1))  # outward normal of sides 0..3 (drow, dcol)


def _perimeter(lay) -> int:
    return 4 * (lay.H + lay.W)


def _side(lay, s: int) -> int:
    w, h = 2 * lay.W, 2 * lay.H
    return 0 if s < w else 1 if s < w + h else 2 if s < 2 * w + h else 3


def _frame_point(lay, s: int) -> tuple[int, int]:
    """Half-pixel coordinates of frame point ``s``."""
    w, h = 2 * lay.W, 2 * lay.H
    side = _side(lay, s)
    if side == 0:
        return -1, s - 1
    if side == 1:
        return s - w - 1, w - 1
    if side == 2:
        return h - 1, 2 * w + h - 1 - s
    return 2 * w + 2 * h - 1 - s, -1


def _frame_s(lay, hr: int, hc: int) -> int:
    """Number of the frame point at half-pixel coordinates (hr, hc) (which must lie on the
    frame: hr in {-1, 2H-1} or hc in {-1, 2W-1})."""
    w, h = 2 * lay.W, 2 * lay.H
    if hr == -1 and hc < w - 1:
        return hc + 1
    if hc == w - 1 and hr < h - 1:
        return w + hr + 1
    if hr == h - 1 and hc > -1:
        return 2 * w + h - 1 - hc
    return 2 * w + 2 * h - 1 - hr


def _outside(lay, v) -> bool:
    """Vertex (lattice) strictly outside the frame: ends an arc."""
    return not (-HALF <= v[0] <= (lay.H - 1) * FIX + HALF
                and -HALF <= v[1] <= (lay.W - 1) * FIX + HALF)


def _exit_s(lay, v) -> int:
    """Frame point where the ring walk after an arc's exit vertex ``v`` (outside) starts:
    its nearest half-pixel point, clamped to the frame rectangle (lands on the frame)."""
    hr = min(max(_half(v[0]), -1), 2 * lay.H - 1)
    hc = min(max(_half(v[1]), -1), 2 * lay.W - 1)
    return _frame_s(lay, hr, hc)


def _ring_point(lay, s: int) -> tuple[int, int]:
    hr, hc = _frame_point(lay, s)
    dr, dc = _OUTWARD[_side(lay, s)]
    return hr * HALF + dr * _GAP, hc * HALF + dc * _GAP


def _ring_walk(lay, s0: int, s1: int) -> list:
    """Lattice vertices of the walk outside the frame, clockwise from frame point ``s0`` to
    ``s1`` (nothing in between if they are equal)."""
    w, h = 2 * lay.W, 2 * lay.H
    P = _perimeter(lay)
    lo, hi_r, hi_c = -HALF - _GAP, (h - 1) * HALF + _GAP, (w - 1) * HALF + _GAP
    corners = ((0, (lo, lo)), (w, (lo, hi_c)), (w + h, (hi_r, hi_c)), (2 * w + h, (hi_r, lo)))
    dist = (s1 - s0) % P
    passed = sorted(((c - s0) % P, v) for c, v in corners if 0 < (c - s0) % P <= dist)
    return [_ring_point(lay, s0)] + [v for _, v in passed] + [_ring_point(lay, s1)]


def _walk_units(lay, v, s1: int) -> int:
    """Budget units of the ring walk from exit vertex ``v`` to frame point ``s1``: one per
    step length walked, like the events (its raster work is that of a chain as long)."""
    return ((s1 - _exit_s(lay, v)) % _perimeter(lay)) * HALF // lay.f.step_u


def _arcs_polygon(lay, arcs) -> np.ndarray:
    """The polygon of a component coded as frame arcs ``[(s_entry, vertices)]`` (each arc
    from its entry point on the frame to its first vertex outside): the arcs, joined by
    walks outside the frame from each arc's exit to the next arc's entry (clockwise)."""
    out = []
    for i, (_, verts) in enumerate(arcs):
        out += list(verts)
        out += _ring_walk(lay, _exit_s(lay, verts[-1]), arcs[(i + 1) % len(arcs)][0])
    return np.array(out, dtype=np.int64)

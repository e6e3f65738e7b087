"""C* integer geometry: the direction tables, the lattice layout of an image and the chain events.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from moric_jax.regions.cstar.params import FIX, _Format, HALF, _MODE_PRIOR, _Q_CAP_MAX_PX, SUB
from moric_jax.regions.cstar.entropy import _Adaptive, _Reader, _Writer


def _dir_table(K: int, u: int) -> np.ndarray:
    """Integer step vectors ``(K, 2)`` (drow, dcol) of length ~u for direction k = angle 2*pi*k/K."""
    quarter = []
    for k in range(K // 4):
        th = 2.0 * math.pi * k / K
        quarter.append((math.floor(u * math.sin(th) + 0.5), math.floor(u * math.cos(th) + 0.5)))
    out = []
    for rot in range(4):
        for dr, dc in quarter:
            for _ in range(rot):
                dr, dc = dc, -dr  # +90 degrees: (sin, cos) -> (cos, -sin)
            out.append((dr, dc))
    return np.array(out, dtype=np.int64)


class _Layout(NamedTuple):
    """Format + shape derived constants shared by encoder and decoder."""

    f: _Format
    H: int
    W: int
    ts: np.ndarray  # smooth step table (K, 2)
    tc: np.ndarray  # corner step table (K, 2)
    R: int  # reset displacement bound, half-pixel units
    n_smooth: int  # smooth alphabet size
    esc: int  # ESC symbol index or -1
    rst: int  # RESET symbol index or -1
    max_components: int
    max_events: int  # total events per mask
    max_q: int


def _q_cap_px(f: _Format) -> int:
    """Largest dilation radius (px) the format allows: ``4 + ceil(step)`` px, at most
    ``_Q_CAP_MAX_PX``. The encoder needs ~1-3 px in practice (<= 2.5 px on the test shapes
    with default settings, ~2.9 px without resetting and angle matching; chords of long steps
    need up to ~step/2)."""
    return min(_Q_CAP_MAX_PX, 4 + -(-f.step_u // FIX))


def _layout(f: _Format, shape: tuple[int, int]) -> _Layout:
    H, W = int(shape[0]), int(shape[1])
    n = 2 * f.A + 1
    esc = n if f.adapt else -1
    rst = n + int(f.adapt) if f.reset else -1
    n += int(f.adapt) + int(f.reset)
    max_comp = ((H + 1) // 2) * ((W + 1) // 2)
    min_len = (f.cstep_u if f.adapt else f.step_u) / FIX
    max_events = int(math.ceil(8.0 * (H + 2) * (W + 2) / min_len)) + 4 * max_comp + 64
    return _Layout(
        f, H, W, _dir_table(f.K, f.step_u), _dir_table(f.K, f.cstep_u),
        2 * int(math.ceil(f.step_u / FIX)) + 8, n, esc, rst, max_comp, max_events,
        min(SUB * SUB * ((H + 2) ** 2 + (W + 2) ** 2), (SUB * _q_cap_px(f)) ** 2),
    )


class _Models:
    """All adaptive models of one stream (shared by every component / region)."""

    def __init__(self, lay: _Layout):
        f = lay.f
        self.smooth = [_Adaptive(lay.n_smooth) for _ in range(3)]
        self.corner = _Adaptive(2 * f.C + 1)
        self.rdelta = _Adaptive(2 * lay.R + 1, inc=1.0)
        self.rdir = _Adaptive(f.K, inc=1.0)
        self.outline = _Adaptive(2)
        # component coded as 0 = closed chain, 1 = frame arcs (~0.2 bits while all closed)
        self.mode = _Adaptive(2, init=_MODE_PRIOR)
        self.edir = _Adaptive(f.K // 2 + 1)  # arc entry direction - inward normal + K/4
        self.more = _Adaptive(2)  # another arc follows


# events: (kind, a, b, c) with kind 0 = smooth (a=offset), 1 = corner (a=offset),
# 2 = reset (a=drow_h, b=dcol_h, c=new direction offset mod K)
_SMOOTH, _CORNER, _RESET = 0, 1, 2


def _half(v: int) -> int:
    """Nearest half-pixel grid index of a lattice coordinate (integer, ties up)."""
    return (v + HALF // 2) // HALF


def _apply(lay: _Layout, v: tuple[int, int], d: int, ev: tuple[int, int, int, int]):
    """Next (vertex, direction, context) after an event. Pure integer arithmetic."""
    kind, a, b, c = ev
    K = lay.f.K
    if kind == _RESET:
        d = (d + c) % K
        return ((_half(v[0]) + a) * HALF, (_half(v[1]) + b) * HALF), d, 1
    d = (d + a) % K
    t = lay.ts if kind == _SMOOTH else lay.tc
    return (v[0] + int(t[d, 0]), v[1] + int(t[d, 1])), d, (a > 0) - (a < 0) + 1


def _write_event(w: _Writer, lay: _Layout, m: _Models, ctx: int, ev) -> None:
    kind, a, b, c = ev
    sm = m.smooth[ctx]
    if kind == _SMOOTH:
        w.adaptive(sm, a + lay.f.A)
    elif kind == _CORNER:
        w.adaptive(sm, lay.esc)
        w.adaptive(m.corner, a + lay.f.C)
    else:
        w.adaptive(sm, lay.rst)
        w.adaptive(m.rdelta, a + lay.R)
        w.adaptive(m.rdelta, b + lay.R)
        w.adaptive(m.rdir, c)


def _read_event(r: _Reader, lay: _Layout, m: _Models, ctx: int):
    s = r.adaptive(m.smooth[ctx])
    if s == lay.esc:
        return (_CORNER, r.adaptive(m.corner) - lay.f.C, 0, 0)
    if s == lay.rst:
        a = r.adaptive(m.rdelta) - lay.R
        b = r.adaptive(m.rdelta) - lay.R
        return (_RESET, a, b, r.adaptive(m.rdir))
    return (_SMOOTH, s - lay.f.A, 0, 0)

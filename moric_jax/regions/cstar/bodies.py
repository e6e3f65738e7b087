"""C* mask bodies: the components of one mask as coded pieces (encoder) and their decode.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import copy
import functools
import math

import numpy as np

from moric_jax.regions.cstar.params import _BLOCK, CStarError, CStarParams, HALF, _MAX_SIDE
from moric_jax.regions.cstar.entropy import _Adaptive, _Reader, _Writer
from moric_jax.regions.cstar.lattice import _apply, _Layout, _Models, _read_event, _write_event
from moric_jax.regions.cstar.frame import (
    _arcs_polygon, _frame_point, _INWARD, _outside, _perimeter, _side, _walk_units)
from moric_jax.regions.cstar.raster import (
    _add_runs, _component_mask, _component_view, _component_window, _required_q)
if TYPE_CHECKING:
    from moric_jax.regions import contours as _ct

from moric_jax.regions.cstar.encoder_geometry import _chain, _frame_arcs, _open_candidate


def _check_shape(shape) -> tuple[int, int]:
    try:
        H, W = (int(x) for x in shape)
    except Exception as e:
        raise ValueError(f"shape must be (H, W), got {shape!r}") from e
    if not (1 <= H <= _MAX_SIDE and 1 <= W <= _MAX_SIDE):
        raise ValueError(f"invalid shape {shape!r}")
    return H, W


class _CostWriter:
    """Writer interface that only adds up ideal code lengths (bits), updating the adaptive
    models it is handed like the real coder does (encoder decisions only)."""

    def __init__(self) -> None:
        self.bits = 0.0

    def uniform(self, x: int, n: int) -> None:
        self.bits += math.log2(n) if n > 1 else 0.0

    def gamma(self, n: int) -> None:
        self.bits += 2 * (int(n).bit_length() - 1) + 1

    def adaptive(self, m: _Adaptive, x: int) -> None:
        self.bits += math.log2(float(m.counts.sum()) / float(m.counts[x]))
        m.update(int(x))


def _write_piece(w, lay: _Layout, m: _Models, ctx: int, piece) -> int:
    """Write one component ``(body, outline, q)``; body ``(0, start_h, d0, events)`` (closed
    chain) or ``(1, [(s_entry, entry direction offset, events)])`` (frame arcs). Returns
    the context after it."""
    body, outline, q = piece
    K = lay.f.K
    w.adaptive(m.mode, body[0])
    if body[0] == 0:
        _, start_h, d0, events = body
        w.uniform(start_h[0] + 2, 2 * lay.H + 3)
        w.uniform(start_h[1] + 2, 2 * lay.W + 3)
        w.uniform(d0, K)
        w.gamma(len(events) + 1)
        chains = [events]
    else:
        chains = []
        for i, (s, doff, events) in enumerate(body[1]):
            if i:
                w.adaptive(m.more, 1)
            w.uniform(s, _perimeter(lay))
            w.adaptive(m.edir, doff + K // 4)
            chains.append(events)
        w.adaptive(m.more, 0)  # (all arc heads first, then the arcs' events)
    for events in chains:
        for ev in events:
            _write_event(w, lay, m, ctx, ev)
            ctx = _apply(lay, (0, 0), 0, ev)[2]
    w.adaptive(m.outline, int(outline))
    if lay.f.dilate:
        w.gamma(q + 1)
    return ctx


class _Sim:
    """Encoder-side copy of the adaptive models and context, advanced along the components
    already chosen, to price the candidates of the next one."""

    def __init__(self, m: _Models, ctx: int = 1):
        self.m, self.ctx = copy.deepcopy(m), ctx

    def cost(self, lay: _Layout, piece) -> float:
        w = _CostWriter()
        _write_piece(w, lay, copy.deepcopy(self.m), self.ctx, piece)
        return w.bits

    def commit(self, lay: _Layout, piece) -> None:
        self.ctx = _write_piece(_CostWriter(), lay, self.m, self.ctx, piece)


_OPEN_MIN_RUNS = (0.0, 12.0)  # frame-run lengths (px) tried as ring walks (encoder)
_ERR_BITS = 1.0  # encoder: a wrong pixel weighs as much as this many bits


def _pieces(lay: _Layout, p: CStarParams, comp: _ct.Component, budget: list, sim: _Sim) -> list:
    """Components ``(body, outline, q)`` whose decoded union covers ``comp``: one, or -- if no
    dilation <= ``lay.max_q`` makes it cover the component -- the pieces of its two
    bounding-box halves' components, recursively (a single pixel's tiny chain always fits).
    A component touching the frame is tried as a closed chain and as frame arcs; the one
    with the fewest bits (priced on ``sim``) + ``_ERR_BITS`` x wrong pixels is kept.
    ``budget`` = [events left]."""
    from moric_jax.regions import contours as _ct  # encoder only (scikit-image)
    shape = (lay.H, lay.W)
    poly = _ct.outer_contour(comp, p.contour_level)
    start_h, d0, events, verts = _chain(poly, lay, p, budget[0])
    cands = [((0, start_h, d0, events), verts, 1 + len(events), len(events))]
    area2 = float(np.dot(poly[:, 0], np.roll(poly[:, 1], -1))
                  - np.dot(poly[:, 1], np.roll(poly[:, 0], -1)))
    poly_cw = poly if area2 < 0 else poly[::-1]  # clockwise on screen, like the frame's s
    seen = set()
    for min_run in _OPEN_MIN_RUNS:  # (longer min_run: a subset of the runs)
        arcs = _frame_arcs(poly_cw, lay.H, lay.W, min_run)
        if arcs is None or len(arcs) in seen:
            continue
        seen.add(len(arcs))
        res = _open_candidate(arcs, lay, p, budget[0])
        if res is not None:
            cands.append((res[0], res[1], 1 + res[2], sum(len(a[2]) for a in res[0][1])))
    target = np.zeros(shape, dtype=bool)
    r0, c0 = comp.offset
    ph, pw = comp.pixels.shape
    target[r0:r0 + ph, c0:c0 + pw] = comp.pixels
    valid = []
    for body, verts, units, n_ev in cands:
        best = None
        for outline in (False, True):
            q = _required_q(verts, outline, target, lay.max_q) if lay.f.dilate else 0
            if q > lay.max_q:
                continue
            dec = _component_mask(verts, outline, q, shape)
            err = int((dec != target).sum())
            if best is None or err < best[0]:
                best = (err, outline, q)
        if best is not None:
            valid.append((best[0], (body, best[1], best[2]), units, n_ev))
    if not valid and ph * pw > 1:
        out = []
        k = (ph if ph >= pw else pw) // 2
        for sl, off in (
            ((slice(0, k), slice(None)), (0, 0)),
            ((slice(k, None), slice(None)), (k, 0)),
        ) if ph >= pw else (
            ((slice(None), slice(0, k)), (0, 0)),
            ((slice(None), slice(k, None)), (0, k)),
        ):
            for sub in _ct.components(comp.pixels[sl]):
                o = (r0 + off[0] + sub.offset[0], c0 + off[1] + sub.offset[1])
                out += _pieces(lay, p, _ct.Component(o, sub.pixels, sub.filled), budget, sim)
        return out
    if not valid:  # pragma: no cover - a single pixel's chain covers it with q ~ 0
        valid = [(0, ((0, start_h, d0, events), False, lay.max_q), 1 + len(events),
                  len(events))]  # (never seen; would give up full coverage)
    _, piece, units, n_ev = min(
        valid, key=lambda v: sim.cost(lay, v[1]) + _ERR_BITS * v[0] if len(valid) > 1 else 0)
    sim.commit(lay, piece)
    budget[0] -= n_ev
    return [(piece, units)]


def _encode_body(w: _Writer, lay: _Layout, m: _Models, mask: np.ndarray, p: CStarParams) -> int:
    """Code one mask; returns its number of budget units (components + arcs + events)."""
    from moric_jax.regions import contours as _ct  # encoder only (scikit-image)
    budget = [lay.max_events]
    sim = _Sim(m)
    pieces = [pc for comp in _ct.components(mask) for pc in _pieces(lay, p, comp, budget, sim)]
    w.gamma(len(pieces) + 1)
    ctx = 1
    for piece, _ in pieces:
        ctx = _write_piece(w, lay, m, ctx, piece)
    return sum(u for _, u in pieces)


def _decode_body(r: _Reader, lay: _Layout, m: _Models, sink) -> None:
    """Decode one mask, handing each component ``(verts, outline, q)`` to ``sink`` as soon as
    it is decoded. A closed chain has a coded length; an arc ends at its first vertex
    outside the frame (each event is charged to the data-length budget as it is read)."""
    n_comp = r.gamma(lay.max_components + 1, "component count") - 1
    budget = lay.max_events
    K, P = lay.f.K, _perimeter(lay)
    ctx = 1
    for _ in range(n_comp):
        r.spend(1, "component count")
        if r.adaptive(m.mode) == 0:
            rh = r.uniform(2 * lay.H + 3) - 2
            ch = r.uniform(2 * lay.W + 3) - 2
            d = r.uniform(K)
            n = r.gamma(budget + 1, "chain length") - 1
            r.spend(n, "chain length")
            budget -= n
            v = (rh * HALF, ch * HALF)
            verts = [v]  # grows as decoded
            for _ in range(n):
                ev = _read_event(r, lay, m, ctx)
                v, d, ctx = _apply(lay, v, d, ev)
                verts.append(v)
            verts = np.array(verts, dtype=np.int64)
        else:
            heads = []
            while True:
                r.spend(1, "arc count")
                s = r.uniform(P)
                d = (_INWARD[_side(lay, s)] * K // 4 + r.adaptive(m.edir) - K // 4) % K
                heads.append((s, d))
                if not r.adaptive(m.more):
                    break
            arcs = []
            for i, (s, d) in enumerate(heads):
                hr, hc = _frame_point(lay, s)
                v = (hr * HALF, hc * HALF)
                verts = [v]
                while True:
                    if budget <= 0:
                        raise CStarError("corrupt C* stream: chain length exceeds limit")
                    budget -= 1
                    r.spend(1, "chain length")
                    ev = _read_event(r, lay, m, ctx)
                    v, d, ctx = _apply(lay, v, d, ev)
                    verts.append(v)
                    if _outside(lay, v):
                        break
                r.spend(_walk_units(lay, v, heads[(i + 1) % len(heads)][0]), "frame walk")
                arcs.append((s, verts))
            verts = _arcs_polygon(lay, arcs)
        outline = bool(r.adaptive(m.outline))
        q = r.gamma(lay.max_q + 1, "dilation") - 1 if lay.f.dilate else 0
        sink(verts, outline, q)


class _MaskSink:
    """Union of decoded components as run counts in one int32 difference array ``(H, W+1)``
    (allocated at the first component): each component costs O(its runs), the image
    O(H*W) once, at the end."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.diff = None

    def __call__(self, verts, outline, q) -> None:
        view = _component_view(verts, outline, q, self.shape)
        if view is None:
            return
        if self.diff is None:
            self.diff = np.zeros(self.shape[0] * (self.shape[1] + 1), dtype=np.int32)
        r0, c0, ras, args = view
        for _, _, k, lo, hi in ras.runs(*args):
            _add_runs(self.diff, (r0 + k) * (self.shape[1] + 1) + c0, lo, hi)

    def mask(self) -> np.ndarray:
        H, W = self.shape
        if self.diff is None:
            return np.zeros((H, W), dtype=bool)
        out = np.empty((H, W), dtype=bool)
        blk = max(1, _BLOCK // (W + 1))
        for i in range(0, H, blk):
            j = min(i + blk, H)
            d = self.diff[i * (W + 1):j * (W + 1)].reshape(j - i, W + 1)
            out[i:j] = np.cumsum(d, axis=1, dtype=np.int32)[:, :W] > 0
        return out


def _paint_sink(out: np.ndarray, value):
    """Sink painting each component's window into ``out``: OR (bool) or ``value``."""
    def sink(verts, outline, q) -> None:
        win = _component_window(verts, outline, q, out.shape)
        if win is None:
            return
        r0, c0, m = win
        view = out[r0:r0 + m.shape[0], c0:c0 + m.shape[1]]
        if out.dtype == bool:
            view |= m
        else:
            view[m] = value
    return sink


def _guard(fn):
    """Decoder entry point: MemoryError -> CStarError."""
    @functools.wraps(fn)
    def wrapped(data, shape):
        try:
            return fn(data, shape)
        except MemoryError:
            raise CStarError("C* stream too large to decode") from None
    return wrapped

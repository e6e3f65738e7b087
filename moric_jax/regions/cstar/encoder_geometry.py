"""C* encoder geometry: angle matching, global resetting and offset adaptation along a contour.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import math

import numpy as np

from moric_jax.regions.cstar.params import CStarParams, FIX, HALF
from moric_jax.regions.cstar.lattice import _apply, _CORNER, _half, _Layout, _RESET, _SMOOTH
from moric_jax.regions.cstar.frame import (
    _arcs_polygon, _exit_s, _frame_point, _frame_s, _INWARD, _outside, _OUTWARD,
    _perimeter, _side, _walk_units)


class _Track:
    """Contour resampled every ~0.05 px along arc length (encoder side only): closed
    (positions wrap around) or open (positions are clamped to its ends)."""

    def __init__(self, poly: np.ndarray, h: float = 0.05, closed: bool = True):
        pts = np.vstack([poly, poly[:1]]) if closed else np.asarray(poly, dtype=np.float64)
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        self.L = float(cum[-1])
        M = max(int(math.ceil(self.L / h)), 1)
        self.h = self.L / M if self.L > 0 else 1.0
        s = np.arange(M + int(not closed)) * self.h
        self.pts = np.stack([np.interp(s, cum, pts[:, 0]), np.interp(s, cum, pts[:, 1])], 1)
        self.M = M
        self.closed = closed

    def _idx(self, idx):
        return idx % self.M if self.closed else np.clip(idx, 0, self.M)

    def at(self, t: float) -> np.ndarray:
        return self.pts[self._idx(int(round(t / self.h)))]

    def project(self, p: np.ndarray, t0: float, t1: float) -> tuple[float, float]:
        j0, j1 = int(math.ceil(t0 / self.h)), int(math.floor(t1 / self.h))
        idx = np.arange(j0, max(j1, j0) + 1)  # (unwrapped: t keeps growing on a closed one)
        if not self.closed:
            idx = np.clip(idx, 0, self.M)
        d = np.linalg.norm(self.pts[self._idx(idx)] - p, axis=1)
        k = int(np.argmin(d))
        return float(idx[k] * self.h), float(d[k])


def _quant_dir(vec: np.ndarray, K: int) -> int:
    return int(round(math.atan2(vec[0], vec[1]) / (2 * math.pi / K))) % K


def _next_event(tr: _Track, lay: _Layout, p: CStarParams, v, d: int, t: float, keep_in: bool):
    """Encoder: the next chain event from vertex ``v``, direction ``d``, track position ``t``
    (angle matching, offset adaptation, resetting). ``keep_in``: only events whose vertex
    stays inside the frame (an arc must not end early). Returns (event, new t) or None."""
    f, K = lay.f, lay.f.K
    s_len, c_len = f.step_u / FIX, f.cstep_u / FIX

    def best(table: np.ndarray, rng: int, length: float):
        offs = np.arange(-rng, rng + 1)
        ends_l = np.array(v) + table[(d + offs) % K]
        ok = np.ones(len(offs), dtype=bool)
        if keep_in:
            ok = ((ends_l >= -HALF).all(axis=1) & (ends_l[:, 0] <= (lay.H - 1) * FIX + HALF)
                  & (ends_l[:, 1] <= (lay.W - 1) * FIX + HALF))
            if not ok.any():
                return None
        if p.angle_matching:
            dist = np.linalg.norm(ends_l / FIX - tr.at(t + length), axis=1)
            dist[~ok] = np.inf
            o = int(offs[np.argmin(dist)])
        else:
            chord = tr.at(t + length) - tr.at(t)
            delta = (_quant_dir(chord, K) - d + K // 2) % K - K // 2
            o0 = int(np.clip(delta, -rng, rng))
            cand = offs[ok]
            o = int(cand[np.argmin(np.abs(cand - o0))])
        e = np.array([v[0] + table[(d + o) % K, 0], v[1] + table[(d + o) % K, 1]]) / FIX
        if p.angle_matching:
            tn, dev = tr.project(e, t + 0.25 * length, t + 2.0 * length)
        else:
            tn = t + length
            dev = float(np.linalg.norm(e - tr.at(tn)))
        return o, tn, dev

    res = best(lay.ts, f.A, s_len)
    ev, tn, dev = ((_SMOOTH, res[0], 0, 0), res[1], res[2]) if res else (None, t, math.inf)
    if f.adapt and dev > p.adapt_threshold:
        res = best(lay.tc, f.C, c_len)
        if res is not None and res[2] < dev:
            ev, tn, dev = (_CORNER, res[0], 0, 0), res[1], res[2]
    if f.reset and dev > p.reset_bound:
        tn = t + s_len
        q = tr.at(tn)
        qr, qc = round(q[0] * 2), round(q[1] * 2)
        if keep_in:  # (v is inside, so is every point between it and the clamped target)
            qr, qc = min(max(qr, -1), 2 * lay.H - 1), min(max(qc, -1), 2 * lay.W - 1)
        dr = int(np.clip(qr - _half(v[0]), -lay.R, lay.R))
        dc = int(np.clip(qc - _half(v[1]), -lay.R, lay.R))
        dn = _quant_dir(tr.at(tn + s_len) - q, K)
        ev = (_RESET, dr, dc, (dn - d) % K)
    return None if ev is None else (ev, tn)


def _chain(poly: np.ndarray, lay: _Layout, p: CStarParams, budget: int):
    """Encoder: approximate one closed contour. Returns (start_h, d0, events, vertices)."""
    f, K = lay.f, lay.f.K
    tr = _Track(poly)
    s_len = f.step_u / FIX
    p0 = tr.at(0.0) if tr.L > s_len else poly.mean(axis=0)  # tiny: a single central vertex
    start_h = (
        int(np.clip(round(p0[0] * 2), -2, 2 * lay.H)),
        int(np.clip(round(p0[1] * 2), -2, 2 * lay.W)),
    )
    v = (start_h[0] * HALF, start_h[1] * HALF)
    d = d0 = _quant_dir(tr.at(s_len) - p0, K)
    events, verts = [], [v]
    t = 0.0
    while tr.L - t > s_len and len(events) < budget:
        ev, t = _next_event(tr, lay, p, v, d, t, False)
        v, d, _ = _apply(lay, v, d, ev)
        events.append(ev)
        verts.append(v)
    return start_h, d0, events, np.array(verts, dtype=np.int64)


def _frame_arcs(poly: np.ndarray, H: int, W: int, min_run: float):
    """Split a clockwise contour at its runs along the frame (points outside the pixel-centre
    rectangle: marching squares puts them on the frame) at least ``min_run`` px long. Returns
    the arcs between them (each a polyline from the last point of one run to the first point
    of the next, in contour order), or None if there is no such run or no arc."""
    n = len(poly)
    F = (poly[:, 0] < 0) | (poly[:, 0] > H - 1) | (poly[:, 1] < 0) | (poly[:, 1] > W - 1)
    if n < 3 or F.all() or not F.any():
        return None
    i0 = int(np.flatnonzero(F & ~np.roll(F, 1))[0])
    poly, F = np.roll(poly, -i0, axis=0), np.roll(F, -i0)
    seg = np.linalg.norm(np.diff(poly, axis=0), axis=1)
    edges = np.flatnonzero(np.diff(F.astype(np.int8)))  # last index before each change
    starts = np.concatenate([[0], edges[1::2] + 1])
    ends = edges[0::2]
    keep = [(int(a), int(b)) for a, b in zip(starts, ends) if seg[a:b].sum() >= min_run]
    if not keep:
        return None
    arcs = []
    for k, (_, b) in enumerate(keep):
        a2 = keep[(k + 1) % len(keep)][0]
        arcs.append(poly[np.arange(b, a2 + (n if a2 <= b else 0) + 1) % n])
    return arcs


def _snap(lay: _Layout, pt) -> tuple[int, int]:
    """Half-pixel point of the frame nearest to a contour point on (or beyond) it."""
    def one(x, n):
        return -1 if x < 0 else 2 * n - 1 if x > n - 1 else min(max(round(2 * x), -1), 2 * n - 1)
    return one(pt[0], lay.H), one(pt[1], lay.W)


def _open_chain(tr: _Track, L_arc: float, s: int, lay: _Layout, p: CStarParams, budget: int):
    """Encoder: one arc from frame point ``s`` along ``tr`` (the arc, ``L_arc`` px, then a
    straight run out of the frame) up to its first vertex outside the frame. Returns
    (entry direction offset, events, vertices) or None if it cannot be coded."""
    f, K = lay.f, lay.f.K
    s_len = f.step_u / FIX
    hr, hc = _frame_point(lay, s)
    v = (hr * HALF, hc * HALF)
    inward = _INWARD[_side(lay, s)] * K // 4
    d = _quant_dir(tr.at(min(s_len, L_arc)) - tr.at(0.0), K)
    doff = int(np.clip((d - inward + K // 2) % K - K // 2, -(K // 4), K // 4))
    d = (inward + doff) % K
    events, verts = [], [v]
    t = 0.0
    cap = min(budget, int(tr.L / (0.25 * f.cstep_u / FIX)) + 32)
    while len(events) < cap:
        nxt = _next_event(tr, lay, p, v, d, t, t + s_len < L_arc)
        if nxt is None:
            return None
        ev, t = nxt
        v, d, _ = _apply(lay, v, d, ev)
        events.append(ev)
        verts.append(v)
        if _outside(lay, v):
            return doff, events, verts
    return None


def _open_candidate(arcs: list, lay: _Layout, p: CStarParams, budget: int):
    """Encoder: a component as the frame arcs ``arcs`` (:func:`_frame_arcs`; the decoder's
    ring walk replaces the runs along the frame between them). Returns (body, vertices,
    units) or None."""
    from moric_jax.regions import contours as _ct  # encoder only (scikit-image)
    P = _perimeter(lay)
    ext = 3 * lay.f.step_u / FIX + 4.0
    body, dec, exits = [], [], []
    for pts in arcs:
        eh, xh = _snap(lay, pts[0]), _snap(lay, pts[-1])
        s_in, s_out = _frame_s(lay, *eh), _frame_s(lay, *xh)
        x_px = np.array(xh, dtype=np.float64) / 2
        arc = np.vstack([np.array(eh, dtype=np.float64) / 2, pts[1:-1], x_px])
        L_arc = _ct.contour_length(arc) - float(np.linalg.norm(arc[-1] - arc[0]))
        # beyond the exit: straight on, turned outward (by >= ~27 degrees)
        tail = _Track(arc[::-1], closed=False)
        u = x_px - tail.at(min(lay.f.step_u / FIX, tail.L))
        u = u / max(float(np.linalg.norm(u)), 1e-9) + 0.5 * np.array(_OUTWARD[_side(lay, s_out)])
        track = np.vstack([arc, x_px + ext * u / float(np.linalg.norm(u))])
        res = _open_chain(_Track(track, closed=False), L_arc, s_in, lay, p, budget)
        if res is None:
            return None
        doff, events, verts = res
        budget -= len(events)
        body.append((s_in, doff, events))
        dec.append((s_in, verts))
        exits.append(s_out)
    tol = 4 * lay.f.step_u // HALF + 8  # half pixels
    for i, (_, verts) in enumerate(dec):  # each walk must go about where the contour goes
        s_next = body[(i + 1) % len(body)][0]
        if (s_next - _exit_s(lay, verts[-1])) % P > (s_next - exits[i]) % P + tol:
            return None
    units = len(body) + sum(len(b[2]) for b in body) + sum(
        _walk_units(lay, verts[-1], body[(i + 1) % len(body)][0])
        for i, (_, verts) in enumerate(dec))
    return (1, body), _arcs_polygon(lay, dec), units

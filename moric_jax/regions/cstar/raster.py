"""C* raster: scanline filling of decoded polygons and their dilation (shared by encoder and decoder).

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import math

import numpy as np

from moric_jax.regions.cstar.params import _BLOCK, _CHUNK, FIX, SUB


def _line_points(r0: int, c0: int, r1: int, c1: int, gh: int, gw: int):
    """The points of ``skimage.draw.line(r0, c0, r1, c1)`` (Bresenham) that lie in the grid
    ``[0, gh) x [0, gw)``, computed in closed form only for the part of the segment that can
    reach the grid: point ``i`` (0..n along the major axis, n = its length) has minor offset
    ``floor((2 * m * i + n) / (2 * n))`` with m the minor length."""
    dr, dc = abs(r1 - r0), abs(c1 - c0)
    sr, sc = (1 if r1 >= r0 else -1), (1 if c1 >= c0 else -1)
    steep = dr > dc
    if steep:  # major axis = rows
        M0, m0, n, mm, sM, sm, GM, Gm = r0, c0, dr, dc, sr, sc, gh, gw
    else:
        M0, m0, n, mm, sM, sm, GM, Gm = c0, r0, dc, dr, sc, sr, gw, gh
    if n == 0:
        i = np.zeros(1, dtype=np.int64)
    else:
        # major coordinate M0 + sM * i in [0, GM)
        lo, hi = (-M0, GM - 1 - M0) if sM > 0 else (M0 - GM + 1, M0)
        lo, hi = max(lo, 0), min(hi, n)
        # minor offset o(i) in [t0, t1] (the grid's range): o(i) >= t0 iff
        # 2*mm*i >= (2*t0 - 1)*n, o(i) <= t1 iff 2*mm*i < (2*t1 + 1)*n
        t0, t1 = (-m0, Gm - 1 - m0) if sm > 0 else (m0 - Gm + 1, m0)
        if t1 < 0:
            lo = hi + 1
        elif mm > 0:
            lo = max(lo, -(-(2 * max(t0, 0) - 1) * n // (2 * mm)))
            hi = min(hi, -(-(2 * t1 + 1) * n // (2 * mm)) - 1)
        elif t0 > 0:
            lo = hi + 1
        if lo > hi:
            e = np.zeros(0, dtype=np.int64)
            return e, e
        i = np.arange(lo, hi + 1, dtype=np.int64)
    M = M0 + sM * i
    m = m0 + sm * ((2 * mm * i + n) // (2 * n) if n else 0 * i)
    rr, cc = (M, m) if steep else (m, M)
    ok = (rr >= 0) & (rr < gh) & (cc >= 0) & (cc < gw)
    return rr[ok], cc[ok]


def _edges(y: np.ndarray, x: np.ndarray, gh: int):
    """Edges of the closed polygon (y, x) (float, exact small dyadic values) that cross a
    grid row ``0 <= i < gh``: (y0, x0, y1, x1, first row, stop row), or None."""
    y1, x1 = np.roll(y, -1), np.roll(x, -1)
    keep = y != y1
    y0, x0, y1, x1 = y[keep], x[keep], y1[keep], x1[keep]
    start = np.clip(np.ceil(np.minimum(y0, y1)), 0, gh).astype(np.int64)
    stop = np.clip(np.ceil(np.maximum(y0, y1)), 0, gh).astype(np.int64)
    k = stop > start
    return (y0[k], x0[k], y1[k], x1[k], start[k], stop[k]) if k.any() else None


def _ranges(cnt: np.ndarray):
    """(owner, offset) for ``cnt[k]`` consecutive items per owner k."""
    tot = int(cnt.sum())
    own = np.repeat(np.arange(len(cnt)), cnt)
    return own, np.arange(tot) - np.repeat(np.cumsum(cnt) - cnt, cnt)


def _spans(edges, i0: int, i1: int, gw: int, first_only: bool = False):
    """Even-odd scanline fill of grid rows ``i0 <= i < i1`` as spans ``(row, jl, jr)``
    (grid points ``jl <= j < jr`` of the row, ``jl < jr``, clipped to ``[0, gw]``): an edge
    crosses row i iff min(y0, y1) <= i < max(y0, y1); with a row's crossings x sorted, each
    pair (x_left, x_right) fills x_left <= j <= x_right. IEEE-exact basic operations only, so
    encoder and decoder agree bit for bit. Crossings are generated for groups of whole rows,
    ~``_CHUNK`` at a time. ``first_only``: stop at the first non-empty group."""
    empty = np.zeros(0, dtype=np.int64)
    out = ([], [], [])
    if edges is not None:
        y0, x0, y1, x1, start, stop = edges
        sel = np.nonzero((start < i1) & (stop > i0))[0]
        s0, s1 = np.maximum(start[sel], i0), np.minimum(stop[sel], i1)
        per_row = np.zeros(i1 - i0 + 1, dtype=np.int64)
        np.add.at(per_row, s0 - i0, np.int64(1))
        np.add.at(per_row, s1 - i0, np.int64(-1))
        cum = np.cumsum(np.cumsum(per_row)[:-1])  # crossings in rows i0 .. i
        b0 = i0
        while b0 < i1 and len(sel):
            base = int(cum[b0 - i0 - 1]) if b0 > i0 else 0
            b1 = min(max(i0 + int(np.searchsorted(cum, base + _CHUNK, "right")), b0 + 1), i1)
            if int(cum[b1 - i0 - 1]) > base:
                m = (s0 < b1) & (s1 > b0)
                ss = np.maximum(s0[m], b0)
                own, off = _ranges(np.minimum(s1[m], b1) - ss)
                rows = ss[own] + off
                ie = sel[m][own]
                xs = x0[ie] + (rows - y0[ie]) * (x1[ie] - x0[ie]) / (y1[ie] - y0[ie])
                order = np.lexsort((xs, rows))
                rows, xs = rows[order], xs[order]
                jl = np.clip(np.ceil(xs[0::2]), 0, gw).astype(np.int64)
                jr = np.clip(np.floor(xs[1::2]) + 1, 0, gw).astype(np.int64)
                ok = jl < jr
                for lst, v in zip(out, (rows[0::2][ok], jl[ok], jr[ok])):
                    lst.append(v)
                if first_only and ok.any():
                    break
            b0 = b1
    return tuple(np.concatenate(v) if v else empty for v in out)


def _merge_spans(row: np.ndarray, jl: np.ndarray, jr: np.ndarray, gw: int):
    """The union of spans ``[jl, jr)`` per row as disjoint, non-adjacent spans."""
    if len(row) < 2:
        return row, jl, jr
    order = np.lexsort((jl, row))
    row, jl, jr = row[order], jl[order], jr[order]
    stride = gw + 2
    reach = np.maximum.accumulate(row * stride + jr)  # running max of jr, per row
    new = np.ones(len(row), dtype=bool)
    new[1:] = row[1:] * stride + jl[1:] > reach[:-1]  # new row, or a gap before it
    first = np.nonzero(new)[0]
    last = np.append(first[1:] - 1, len(row) - 1)
    return row[first], jl[first], reach[last] - row[last] * stride


def _paint_rows(spans, i0: int, i1: int, gw: int) -> np.ndarray:
    """Dense bool rows ``(i1 - i0, gw)`` of spans ``(row, jl, jr)``."""
    row, jl, jr = spans
    diff = np.zeros((i1 - i0) * (gw + 1), dtype=np.int32)
    base = (row - i0) * (gw + 1)
    np.add.at(diff, base + jl, np.int32(1))
    np.add.at(diff, base + jr, np.int32(-1))
    return np.cumsum(diff.reshape(i1 - i0, gw + 1), axis=1, dtype=np.int32)[:, :gw] > 0


def _scan_fill(y: np.ndarray, x: np.ndarray, gshape: tuple[int, int]) -> np.ndarray:
    """Even-odd scanline fill (:func:`_spans`) of the closed polygon (y, x) on the grid
    ``gshape``, dense (also used by the Freeman baseline)."""
    gh, gw = gshape
    return _paint_rows(_spans(_edges(y, x, gh), 0, gh, gw), 0, gh, gw)


class _Raster:
    """The polygon raster of one component on the grid of points ``(a + i/SUB, c + j/SUB)``
    px, ``0 <= i < gh = (b-a)*SUB+1``, ``0 <= j < gw = (d-c)*SUB+1``, as row spans.

    Grid points inside the polygon (:func:`_spans`), plus, if ``outline``, the grid lines
    (Bresenham) between the grid points nearest to consecutive vertices. If both are empty
    on the whole grid, the (clipped) grid points nearest to the vertices instead
    (:meth:`use_fallback`)."""

    def __init__(self, verts: np.ndarray, a: int, b: int, c: int, d: int, outline: bool):
        gh, gw = (b - a) * SUB + 1, (d - c) * SUB + 1
        self.gh, self.gw = gh, gw
        unit = FIX // SUB
        rel = verts - np.array([a * FIX, c * FIX], dtype=np.int64)
        self.gp = (rel + unit // 2) // unit
        self.edges = _edges(rel[:, 0] / unit, rel[:, 1] / unit, gh) if len(verts) >= 3 else None
        rows, cols = [], []
        if outline and len(verts) >= 2:
            gp = self.gp
            ok = (gp[:, 0] >= 0) & (gp[:, 0] < gh) & (gp[:, 1] >= 0) & (gp[:, 1] < gw)
            rows.append(gp[ok, 0])
            cols.append(gp[ok, 1])
            for (r0, c0), (r1, c1) in zip(gp.tolist(), np.roll(gp, -1, axis=0).tolist()):
                if max(abs(r1 - r0), abs(c1 - c0)) > 1:
                    rr, cc = _line_points(r0, c0, r1, c1, gh, gw)
                    rows.append(rr)
                    cols.append(cc)
        self._set_points(rows, cols)

    def _set_points(self, rows, cols) -> None:
        pr = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        pc = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        order = np.argsort(pr, kind="stable")
        self.pr, self.pc = pr[order].astype(np.int64), pc[order].astype(np.int64)

    def use_fallback(self) -> None:
        """Switch to the fallback raster (the clipped grid points nearest to the vertices)."""
        self.edges = None
        gp = self.gp
        self._set_points([np.clip(gp[:, 0], 0, self.gh - 1)], [np.clip(gp[:, 1], 0, self.gw - 1)])

    def spans(self, i0: int, i1: int):
        """Raster rows ``i0 <= i < i1`` as disjoint, non-adjacent spans ``(row, jl, jr)``."""
        row, jl, jr = _spans(self.edges, i0, i1, self.gw)
        lo, hi = np.searchsorted(self.pr, [i0, i1])
        if hi > lo:
            pc = self.pc[lo:hi]
            row, jl, jr = (np.concatenate([row, self.pr[lo:hi]]), np.concatenate([jl, pc]),
                           np.concatenate([jr, pc + 1]))
        return _merge_spans(row, jl, jr, self.gw)

    def nonempty(self) -> bool:
        return len(self.pr) > 0 or len(_spans(self.edges, 0, self.gh, self.gw, True)[0]) > 0

    def full(self) -> np.ndarray:
        """The dense raster (fallback applied), ``(gh, gw)`` bool."""
        if not self.nonempty():
            self.use_fallback()
        return _paint_rows(self.spans(0, self.gh), 0, self.gh, self.gw)

    def runs(self, q: int, ilo: int, ihi: int, jlo: int, jhi: int):
        """The grid points (i, j) = (ilo + SUB*k, jlo + SUB*m), ``0 <= k <= (ihi-ilo)/SUB``,
        ``0 <= m <= (jhi-jlo)/SUB``, within squared distance ``q`` (grid units) of a True
        raster point, as runs: yields ``(k0, k1, k, mlo, mhi)``, for a block of rows
        ``k0 <= k < k1`` arrays of (possibly overlapping) runs ``mlo..mhi`` (inclusive) of
        row k. Exact: a span [jl, jr) of grid row i' reaches the points of row i with column
        in [jl - w, jr - 1 + w], w = isqrt(q - (i' - i)^2), for |i' - i| <= isqrt(q).
        Memory O(spans of a block + ~_CHUNK), never the dense grid."""
        h = math.isqrt(max(q, 0))
        wtab = np.array([math.isqrt(q - dy * dy) for dy in range(h + 1)], dtype=np.int64)
        K = (jhi - jlo) // SUB + 1
        n_out = (ihi - ilo) // SUB + 1
        blk = max(1, _BLOCK // (K + 1))
        for k0 in range(0, n_out, blk):
            k1 = min(k0 + blk, n_out)
            g0, g1 = max(ilo + k0 * SUB - h, 0), min(ilo + (k1 - 1) * SUB + h + 1, self.gh)
            row, jl, jr = self.spans(g0, g1)
            if not len(row):
                continue
            # output rows k0 <= k < k1 each span reaches
            ka = np.maximum(-((h + ilo - row) // SUB), k0)
            kb = np.minimum((row + h - ilo) // SUB, k1 - 1)
            cnt = np.maximum(kb - ka + 1, 0)
            cum = np.cumsum(cnt)
            s0 = 0
            while s0 < len(row):  # ~_CHUNK (span, output row) pairs at a time
                base = int(cum[s0 - 1]) if s0 else 0
                s1 = max(int(np.searchsorted(cum, base + _CHUNK, "right")), s0 + 1)
                own, off = _ranges(cnt[s0:s1])
                own += s0
                k = ka[own] + off
                w = wtab[np.abs(ilo + k * SUB - row[own])]
                clo = np.maximum(-((jlo + w - jl[own]) // SUB), 0)  # ceil((jl - w - jlo) / SUB)
                chi = np.minimum((jr[own] - 1 + w - jlo) // SUB, K - 1)
                ok = clo <= chi
                yield k0, k1, k[ok], clo[ok], chi[ok]
                s0 = s1

    def dilated_samples(self, q: int, ilo: int, ihi: int, jlo: int, jhi: int) -> np.ndarray:
        """:meth:`runs` as a dense bool array ``(rows, cols)``."""
        K = (jhi - jlo) // SUB + 1
        res = np.zeros(((ihi - ilo) // SUB + 1, K), dtype=bool)
        cur = None
        for k0, k1, k, lo, hi in self.runs(q, ilo, ihi, jlo, jhi):
            if cur is None or cur[0] != k0:
                if cur is not None:
                    _flush_runs(res, *cur)
                cur = (k0, k1, np.zeros((k1 - k0) * (K + 1), dtype=np.int32))
            _add_runs(cur[2], (k - k0) * (K + 1), lo, hi)
        if cur is not None:
            _flush_runs(res, *cur)
        return res


def _add_runs(diff: np.ndarray, base: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> None:
    """Count runs ``base + lo .. base + hi`` (inclusive) into a flat difference array."""
    np.add.at(diff, base + lo, np.int32(1))  # (np.int32: numpy's fast path of add.at)
    np.add.at(diff, base + hi + 1, np.int32(-1))


def _flush_runs(res: np.ndarray, k0: int, k1: int, diff: np.ndarray) -> None:
    K = res.shape[1]
    res[k0:k1] = np.cumsum(diff.reshape(k1 - k0, K + 1), axis=1, dtype=np.int32)[:, :K] > 0


def _window(verts: np.ndarray, q: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """The grid window (pixel rows a..b, cols c..d) of a component: every grid point that can
    matter (polygon parts farther than the radius outside the image are cut)."""
    H, W = shape
    rad = math.isqrt(max(q, 0)) // SUB + 2
    lo, hi = verts.min(axis=0) // FIX, -(-verts.max(axis=0) // FIX)
    a = int(min(max(lo[0] - rad, -rad), H - 1 + rad))
    b = int(max(min(hi[0] + rad, H - 1 + rad), a))
    c = int(min(max(lo[1] - rad, -rad), W - 1 + rad))
    d = int(max(min(hi[1] + rad, W - 1 + rad), c))
    return a, b, c, d


def _component_view(verts: np.ndarray, outline: bool, q: int, shape: tuple[int, int]):
    """Decoder reconstruction of one component: pixel ``(r, c)`` is in the mask iff the grid
    point at its centre is within squared distance ``q`` (grid units, 1/SUB px) of the
    polygon raster (:class:`_Raster`). Returns ``(r0, c0, raster, sample args)`` for the
    image pixels ``r0.., c0..`` of the component's window, or ``None`` if the window misses
    the image."""
    H, W = shape
    a, b, c, d = _window(verts, q, shape)
    r0, r1, c0, c1 = max(a, 0), min(b, H - 1), max(c, 0), min(d, W - 1)
    if r0 > r1 or c0 > c1:
        return None
    ras = _Raster(verts, a, b, c, d, outline)
    if not ras.nonempty():
        ras.use_fallback()
    return r0, c0, ras, (q, (r0 - a) * SUB, (r1 - a) * SUB, (c0 - c) * SUB, (c1 - c) * SUB)


def _component_window(verts: np.ndarray, outline: bool, q: int, shape: tuple[int, int]):
    """:func:`_component_view` as ``(r0, c0, m)``, ``m`` the dense mask of the window's
    image pixels, or ``None``."""
    view = _component_view(verts, outline, q, shape)
    if view is None:
        return None
    r0, c0, ras, args = view
    return r0, c0, ras.dilated_samples(*args)


def _component_mask(
    verts: np.ndarray, outline: bool, q: int, shape: tuple[int, int]
) -> np.ndarray:
    """:func:`_component_window` as a full ``shape`` mask (encoder side)."""
    out = np.zeros(shape, dtype=bool)
    win = _component_window(verts, outline, q, shape)
    if win is not None:
        r0, c0, m = win
        out[r0:r0 + m.shape[0], c0:c0 + m.shape[1]] = m
    return out


def _grid_fill(verts: np.ndarray, a: int, b: int, c: int, d: int, outline: bool) -> np.ndarray:
    """The whole (dense) raster of :class:`_Raster`, fallback included (encoder side)."""
    return _Raster(verts, a, b, c, d, outline).full()


def _required_q(verts: np.ndarray, outline: bool, target: np.ndarray, max_q: int) -> int:
    """Smallest q such that ``_component_mask(verts, outline, q)`` covers ``target``;
    ``max_q + 1`` or more if no q <= ``max_q`` does."""
    from scipy import ndimage  # encoder only: keeps scipy off the decode path
    from scipy.spatial import cKDTree
    shape = target.shape
    base = _component_mask(verts, outline, 0, shape)
    missing = target & ~base
    if not missing.any():
        return 0
    tr, tc = np.nonzero(missing)
    lo, hi = verts.min(axis=0) // FIX, -(-verts.max(axis=0) // FIX)
    a, c = int(min(lo[0], tr.min())) - 1, int(min(lo[1], tc.min())) - 1
    b, d = int(max(hi[0], tr.max())) + 1, int(max(hi[1], tc.max())) + 1
    g = _grid_fill(verts, a, b, c, d, outline)
    edge = np.argwhere(g & ~ndimage.binary_erosion(g))  # nearest fill point is on its edge
    dist, _ = cKDTree(edge).query(np.stack([(tr - a) * SUB, (tc - c) * SUB], 1))
    q = int(np.round(np.max(dist) ** 2))
    if q > max_q:
        return q
    while not (target <= _component_mask(verts, outline, q, shape)).all():
        if q >= max_q:  # only if the windowed decoder sees a different raster
            return max_q + 1
        q = min(2 * q + 1, max_q)
    return q

"""C* chain coding of region contours (DESIGN §2.4), pure NumPy + constriction.

Each 8-connected component of a mask is coded by its outer contour (holes are filled, so
coverage never suffers from them), in one of two modes (an adaptive flag per component):

- **closed chain**: start vertex on the half-pixel grid (uniform code given the image shape),
  an initial direction (uniform over ``K`` directions), the chain length (Elias gamma), then
  the events below; the polygon closes back to the start vertex;
- **frame arcs** (contours that run along the image border): parts of a contour on the frame
  (the image's outer boundary) carry no information, so only the arcs between them are
  coded, as open chains: per arc its entry point on the frame (uniform over the ``4*(H+W)``
  half-pixel frame points, numbered clockwise from the top-left corner) and its initial
  direction (adaptive, within +-90 degrees of the inward normal), a "more arcs" flag; then
  each arc's events, until the first vertex strictly outside the frame, which ends the arc
  (no length is coded). The decoder joins each arc's exit to the next arc's entry (the last
  to the first) by a walk just outside the frame, clockwise (:func:`_ring_walk`), and fills
  that polygon: the frame clips it, so the runs along the frame cost nothing. The encoder
  orients the contour clockwise, splits it at its frame runs (all of them, or only those
  >= 12 px) and keeps whichever of closed chain / frame arcs has the fewest bits + wrong
  pixels (priced with the adaptive models' current state); arcs never leave the frame
  before their end (offsets that would are not chosen);

events, each entropy coded with adaptive categorical models (constriction range coder):

  * ``SMOOTH o``  -- turn by ``o`` in ``[-A, A]`` direction units (2*pi/K) and move one step
    of length ``step``;
  * ``ESC``+``o`` -- (offset adaptation) the same with the wide corner alphabet ``[-C, C]``
    and the short ``corner_step``;
  * ``RESET``     -- (global resetting) jump to an absolute half-pixel position (coded as a
    bounded displacement from the current vertex) and set a new direction.

- the decoder rasterizes the polygon on a grid supersampled ``SUB`` = 4 times per pixel
  (even-odd scanline fill, plus the polygon's outline when the per-component ``outline``
  flag is set -- it rescues one-pixel-wide parts), then dilates it by the coded squared
  radius ``q`` (grid units, i.e. 1/4 px resolution): pixel (r, c) is in the mask iff its
  centre's grid point is within exact squared distance ``q`` of the raster. The encoder
  runs exactly that reconstruction, picks the outline flag with fewer wrong pixels and
  sends the smallest ``q`` that covers every pixel of the component (contour dilation ->
  100% coverage). ``q`` is capped (:func:`_q_cap_px`: ``4 px + step``, at most 16 px; the
  encoder needs <= ~3 px in practice): should a component need more, it is split into the
  components of its two bounding-box halves, recursively (a single pixel always fits),
  each coded as a component of its own, so coverage stays 100% (the format is unchanged;
  the pieces just cost more bits).
- the byte string is the range coder's output (big-endian 32-bit words) with the flush
  shortened as far as the decoder, which pads with zero bytes, still reproduces the result.

Decoding cost is bounded by the length of the data and the real image size, never by
counts the data merely claims (masks come from untrusted files):

- the decoder reads the data plus ``_PAD_WORDS`` = 4 zero words and raises
  ``CStarError("truncated contour data")`` if it needs a symbol after that (an exhausted
  range decoder would otherwise return symbol 0 forever, for free). Encoder output never
  gets there: :func:`_trim` only shortens the flush as far as the real decoder still
  reproduces the result (a sealed stream is read at most one word past its end), so
  valid encodings are byte-for-byte the same as before this rule;
- chain events plus components (plus arcs, plus one per step length of every walk outside
  the frame) of a stream are limited to ``_EV_FREE + _EV_PER_BYTE * len(data)`` = 4096 +
  64 per byte, checked when a closed chain's length is read, before any work, and for an
  arc at each event and walk. Adaptive coding makes a long straight edge cost as
  little as ~0.003 bits/event, so for such extreme masks (> 4096 events at < 1/8 bit each)
  the encoder appends zero bytes, which decode the same, to stay inside;
- the number of components / regions is bounded by the data (each costs >= 1 bit);
- a component's window is its chain's bounding box plus the dilation radius + 2 px
  (<= 18 px), clipped to the image plus that margin. Its raster is kept as row spans
  (O(scanline crossings) = O(events * step) memory, generated ~``_CHUNK`` at a time) and
  dilated exactly, span by span, into runs of pixel centres (block by block): no
  supersampled dense grid, no distance transform. :func:`decode_mask` counts all runs
  into one ``(H, W+1)`` int32 difference array, so a component costs O(its runs) =
  O(window rows * (1 + radius) * spans per row) and the image O(H*W) once (~90 MB peak at
  4096^2); the label-map decoders paint each component's window (O(window pixels));
- ``MemoryError`` inside a decoder is reported as :class:`CStarError`.

Everything that decides the parse or the reconstruction is integer (or, in the scanline
fill, correctly rounded IEEE basic operations on small dyadic values): vertices live on a
lattice of ``1/FIX`` px and step vectors come from a fixed integer table per direction
(only the first quadrant is computed with ``round(u*cos), round(u*sin)``, the rest by exact
90-degree rotations; with ``K`` in {8, 16, 32, 64} there are no rounding ties). The
encoder's choices (angle matching, when to escape/reset, the dilation radius) may use floats;
the decoder never needs them.

The four modules can be switched off in :class:`CStarParams` to measure their value.

Label maps (:func:`encode_label_map`): region ``i`` = ``labels == i`` for ``i = 1..N``,
each coded like a mask in one stream. Overlap rule (DESIGN §2.3): dilated masks may
overlap; a pixel belongs to the LAST region (highest index) whose decoded mask covers it,
and to background (0) if none does.
"""

from __future__ import annotations

import copy
import functools
import math
from dataclasses import dataclass
from typing import NamedTuple

import constriction
import numpy as np


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


# ----------------------------------------------------------------------------- entropy coding
class _Adaptive:
    """Adaptive categorical model over ``{0..n-1}`` (integer counts, deterministic)."""

    def __init__(self, n: int, inc: float = 2.0, limit: float = 4096.0, init=None):
        self.counts = np.ones(n, dtype=np.float64) if init is None else np.array(init, float)
        self.inc, self.limit = inc, limit

    def model(self):
        return _model.Categorical(self.counts, perfect=False)

    def update(self, x: int) -> None:
        self.counts[x] += self.inc
        if self.counts.sum() > self.limit:
            self.counts = np.floor((self.counts + 1.0) / 2.0)


def _gamma_chunks(zeros: int) -> list[tuple[int, int]]:
    """(shift, bits) of the uniform pieces of an Elias-gamma remainder of ``zeros`` bits, most
    significant first: one piece up to 24 bits (constriction's ``Uniform`` takes at most
    2**24 symbols and panics above), else a first piece of ``zeros - 24*k`` bits and k pieces
    of 24 bits (values that large were not codable before, so no stream changed)."""
    k = max(zeros - 1, 0) // 24
    out = [(24 * k, zeros - 24 * k)] if zeros else []
    return out + [(24 * i, 24) for i in range(k - 1, -1, -1)]


class _Writer:
    def __init__(self) -> None:
        self.enc = _queue.RangeEncoder()

    def uniform(self, x: int, n: int) -> None:
        if not 0 <= x < n:
            raise AssertionError(f"value {x} out of range {n}")
        if n > 1:
            self.enc.encode(int(x), _model.Uniform(int(n)))

    def gamma(self, n: int) -> None:
        """Elias-gamma code of an integer ``n >= 1`` (remainder: :func:`_gamma_chunks`)."""
        nbits = int(n).bit_length()
        for _ in range(nbits - 1):
            self.uniform(0, 2)
        self.uniform(1, 2)
        rem = int(n) - (1 << (nbits - 1))
        for shift, bits in _gamma_chunks(nbits - 1):
            self.uniform((rem >> shift) & ((1 << bits) - 1), 1 << bits)

    def adaptive(self, m: _Adaptive, x: int) -> None:
        self.enc.encode(int(x), m.model())
        m.update(int(x))

    def getvalue(self) -> bytes:
        """All words of the sealed stream (trailing zero bytes NOT stripped: see _trim)."""
        return np.asarray(self.enc.get_compressed(), dtype=">u4").tobytes()


class _Reader:
    """Range decoder over ``data`` + ``_PAD_WORDS`` zero words. Needing a symbol once all of
    that has been read raises ``CStarError("truncated contour data")``; ``units`` is the
    stream's budget of chain events + components (``_EV_FREE + _EV_PER_BYTE * len(data)``)."""

    def __init__(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("data must be bytes")
        b = bytes(data)
        self.units = _EV_FREE + _EV_PER_BYTE * len(b)
        b += b"\0" * (-len(b) % 4 + 4 * _PAD_WORDS)
        try:
            self.dec = _queue.RangeDecoder(np.frombuffer(b, dtype=">u4").astype(np.uint32))
        except Exception as e:  # pragma: no cover - constriction rejects nothing here
            raise CStarError(f"cannot open C* stream: {e}") from e

    def spend(self, n: int, what: str) -> None:
        if n > self.units:
            raise CStarError(f"corrupt C* stream: {what} exceeds what the data length allows")
        self.units -= n

    def _decode(self, model) -> int:
        if self.dec.maybe_exhausted():
            raise CStarError("truncated contour data")
        try:
            return int(self.dec.decode(model))
        except Exception as e:
            raise CStarError(f"corrupt C* stream: {e}") from e

    def uniform(self, n: int) -> int:
        return self._decode(_model.Uniform(int(n))) if n > 1 else 0

    def gamma(self, max_value: int, what: str) -> int:
        maxbits = int(max_value).bit_length()
        zeros = 0
        while self.uniform(2) == 0:
            zeros += 1
            if zeros >= maxbits:
                raise CStarError(f"corrupt C* stream: {what} exceeds limit {max_value}")
        n = 1 << zeros
        for shift, bits in _gamma_chunks(zeros):
            n += self.uniform(1 << bits) << shift
        if n > max_value:
            raise CStarError(f"corrupt C* stream: {what} = {n} exceeds limit {max_value}")
        return n

    def adaptive(self, m: _Adaptive) -> int:
        x = self._decode(m.model())
        if not 0 <= x < len(m.counts):
            raise CStarError("corrupt C* stream: symbol out of range")
        m.update(x)
        return x


def _write_header(w: _Writer, f: _Format) -> None:
    w.uniform(int(f.reset) | int(f.adapt) << 1 | int(f.dilate) << 2, 8)
    geo = f[:5]
    w.uniform(int(geo == _DEFAULT_FMT[:5]), 2)
    if geo == _DEFAULT_FMT[:5]:
        return
    w.uniform(_KS.index(f.K), len(_KS))
    w.gamma(f.step_u)
    w.gamma(f.cstep_u)
    w.gamma(f.A)
    w.gamma(f.C)


def _read_header(r: _Reader) -> _Format:
    flags = r.uniform(8)
    flags = (bool(flags & 1), bool(flags & 2), bool(flags & 4))
    if r.uniform(2):
        return _Format(*_DEFAULT_FMT[:5], *flags)
    K = _KS[r.uniform(len(_KS))]
    step_u = r.gamma(64 * FIX, "step")
    cstep_u = r.gamma(64 * FIX, "corner step")
    A = r.gamma(K // 2, "smooth range")
    C = r.gamma(K // 2, "corner range")
    if not (FIX // 2 <= step_u and FIX // 4 <= cstep_u <= step_u and A < K // 2 and A <= C):
        raise CStarError("corrupt C* stream: invalid header parameters")
    return _Format(K, step_u, cstep_u, A, C, *flags)


# ----------------------------------------------------------------------------- integer geometry
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


# ----------------------------------------------------------------------------- the frame
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


# ----------------------------------------------------------------------------- encoder geometry
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


# ----------------------------------------------------------------------------- mask bodies
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


# ----------------------------------------------------------------------------- public API
def _trim(data: bytes, decode, units: int = 0) -> bytes:
    """Shorten the range coder's flush: the decoder pads with zero bytes, so drop trailing
    zero bytes and then try dropping up to 7 more bytes, rounding the kept prefix up by one
    unit if needed, and keep the shortest string from which the decoder still reproduces
    exactly the same result. Every candidate is checked by the real decoder, so its limits
    (reading past the data, events per byte) hold for the output. ``units`` = components +
    chain events of the stream: the output is padded with zero bytes to at least
    ``(units - _EV_FREE) / _EV_PER_BYTE`` bytes if needed."""
    min_len = max(0, -(-(units - _EV_FREE) // _EV_PER_BYTE))
    data = data + b"\0" * max(0, min_len - len(data))
    ref = decode(data)  # the sealed stream decodes (reads <= 1 word past its end)

    def same(b: bytes) -> bool:
        try:
            return np.array_equal(decode(b), ref)
        except CStarError:
            return False

    # shortest zero-stripped length (decoding is the same with implicit zeros, and more
    # explicit zeros only help the limits, so this is monotone)
    lo, hi = max(len(data.rstrip(b"\0")), min_len), len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        if same(data[:mid]):
            hi = mid
        else:
            lo = mid + 1
    base = best = data[:hi]
    for k in range(1, min(8, len(base)) + 1):
        head = base[:-k]
        cands = [head]
        if head and head != b"\xff" * len(head):
            n = len(head)
            cands.append((int.from_bytes(head, "big") + 1).to_bytes(n, "big"))
        for cand in cands:
            cand = cand.rstrip(b"\0")
            if len(cand) < len(best) and same(cand):
                best = cand
        if len(best) > len(base) - k:
            break
    return best


def encode_mask(mask: np.ndarray, params: CStarParams | None = None) -> bytes:
    """C*-code a boolean mask ``(H, W)``. The shape is not stored (the decoder gets it)."""
    mask = np.asarray(mask).astype(bool)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D, got shape {mask.shape}")
    p = params or _DEFAULT
    lay = _layout(_format(p), _check_shape(mask.shape))
    w = _Writer()
    _write_header(w, lay.f)
    units = _encode_body(w, lay, _Models(lay), mask, p)
    return _trim(w.getvalue(), lambda b: decode_mask(b, mask.shape), units)


@_guard
def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Decode :func:`encode_mask` output to an ``(H, W)`` bool mask.

    Raises :class:`CStarError` on corrupt / truncated input. Work: O(H*W) once, plus
    O(chain events) and, per component, O(its runs of output pixels); memory O(H*W) plus
    O(events * step); never set by counts the data merely claims (module docstring)."""
    H, W = _check_shape(shape)
    r = _Reader(data)
    lay = _layout(_read_header(r), (H, W))
    sink = _MaskSink((H, W))
    _decode_body(r, lay, _Models(lay), sink)
    return sink.mask()


def encode_label_map(labels: np.ndarray, params: CStarParams | None = None) -> bytes:
    """C*-code a label map ``(H, W)`` of ints >= 0 (0 = background, region i = label i).

    Decoded regions are dilated masks, so they may overlap: see :func:`decode_label_map`."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError("labels must be a 2-D integer array")
    if labels.size and labels.min() < 0:
        raise ValueError("labels must be >= 0")
    H, W = _check_shape(labels.shape)
    n = int(labels.max()) if labels.size else 0
    if n > H * W:
        raise ValueError(f"at most H*W = {H * W} regions")
    p = params or _DEFAULT
    lay = _layout(_format(p), (H, W))
    w = _Writer()
    _write_header(w, lay.f)
    w.gamma(n + 1)
    models = _Models(lay)
    units = 0
    for i in range(1, n + 1):
        units += _encode_body(w, lay, models, labels == i, p)
    return _trim(w.getvalue(), lambda b: np.stack(decode_label_masks(b, (H, W)) or [labels]),
                 units)


@_guard
def decode_label_map(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Decode :func:`encode_label_map` output to an ``(H, W)`` int32 label map.

    Overlap rule: a pixel gets the LAST (highest) region index whose decoded mask covers
    it, 0 if none. Each decoded mask covers all pixels of its true region, but a later
    region may take some of them over."""
    H, W = _check_shape(shape)
    r = _Reader(data)
    lay = _layout(_read_header(r), (H, W))
    n = r.gamma(H * W + 1, "region count") - 1
    models = _Models(lay)
    out = np.zeros((H, W), dtype=np.int32)
    for i in range(1, n + 1):
        _decode_body(r, lay, models, _paint_sink(out, i))
    return out


@_guard
def decode_label_masks(data: bytes, shape: tuple[int, int]) -> list[np.ndarray]:
    """The decoded (possibly overlapping) mask of every region 1..N, before composition.

    Returns N full ``(H, W)`` arrays (N <= ~8 * len(data) + 128, each region costs >= 1
    bit): prefer :func:`decode_label_map` for large images."""
    H, W = _check_shape(shape)
    r = _Reader(data)
    lay = _layout(_read_header(r), (H, W))
    n = r.gamma(H * W + 1, "region count") - 1
    models = _Models(lay)
    out = []
    for _ in range(n):
        out.append(np.zeros((H, W), dtype=bool))
        _decode_body(r, lay, models, _paint_sink(out[-1], True))
    return out

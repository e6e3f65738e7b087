"""Baseline: lossless differential Freeman (8-direction) chain code of region outlines.

Each 8-connected component's outer boundary pixels are traced (Moore-neighbour tracing,
clockwise, from the component's first pixel in raster order) and coded as: start pixel
(uniform given the shape), chain length (Elias gamma), first direction (uniform over 8),
then direction changes mod 8 with an adaptive categorical model (constriction range
coder). The decoder fills the polygon through the boundary pixel centres and adds the
boundary pixels, which reproduces the component with its holes filled exactly. So the code
is lossless for masks without holes (holes are not coded, like in C*).
"""

from __future__ import annotations

import numpy as np

from . import contours as _ct
from moric_jax.regions.cstar.params import CStarError
from moric_jax.regions.cstar.entropy import _Adaptive, _Reader, _Writer
from moric_jax.regions.cstar.raster import _scan_fill
from moric_jax.regions.cstar.api import _trim

# clockwise (row axis pointing down): E, SE, S, SW, W, NW, N, NE
DIRS = np.array([(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)])
_INDEX = {tuple(d): i for i, d in enumerate(DIRS.tolist())}


def trace_boundary(filled: np.ndarray) -> tuple[tuple[int, int], list[int]]:
    """Moore tracing of one 8-connected component ``filled`` (h, w) bool without holes.

    Returns (start pixel, list of direction indices into :data:`DIRS`); the walk returns to
    the start pixel. A single pixel gives an empty list."""
    h, w = filled.shape
    pad = np.pad(filled, 1)
    r, c = (int(x) + 1 for x in np.argwhere(filled)[0])
    start = (r, c)
    cur, back = start, (r, c - 1)
    moves: list[int] = []
    first = None
    for _ in range(8 * (h + 2) * (w + 2) + 8):
        k = _INDEX[(back[0] - cur[0], back[1] - cur[1])]
        for j in range(1, 9):
            dr, dc = DIRS[(k + j) % 8]
            if pad[cur[0] + dr, cur[1] + dc]:
                break
        else:
            return (r - 1, c - 1), []  # isolated pixel
        move = (k + j) % 8
        if cur == start and first is not None and move == first:
            break
        if first is None:
            first = move
        pr, pc = DIRS[(k + j - 1) % 8]
        back = (cur[0] + pr, cur[1] + pc)
        cur = (cur[0] + int(DIRS[move][0]), cur[1] + int(DIRS[move][1]))
        moves.append(move)
    return (r - 1, c - 1), moves


def _fill_chain(start: tuple[int, int], moves: list[int], shape: tuple[int, int]) -> np.ndarray:
    steps = DIRS[np.asarray(moves, dtype=np.int64)] if moves else np.zeros((0, 2), np.int64)
    pts = np.vstack([[start], np.asarray(start) + np.cumsum(steps, axis=0)]).astype(np.int64)
    out = np.zeros(shape, dtype=bool)
    if len(pts) >= 3:
        out |= _scan_fill(pts[:, 0].astype(np.float64), pts[:, 1].astype(np.float64), shape)
    ok = (pts[:, 0] >= 0) & (pts[:, 0] < shape[0]) & (pts[:, 1] >= 0) & (pts[:, 1] < shape[1])
    out[pts[ok, 0], pts[ok, 1]] = True
    return out


def encode_mask(mask: np.ndarray) -> bytes:
    """Freeman-code a boolean mask ``(H, W)`` (lossless up to hole filling)."""
    mask = np.asarray(mask).astype(bool)
    H, W = mask.shape
    w = _Writer()
    comps = _ct.components(mask)
    w.gamma(len(comps) + 1)
    model = _Adaptive(8)
    for comp in comps:
        (r, c), moves = trace_boundary(comp.filled)
        w.uniform(r + comp.offset[0], H)
        w.uniform(c + comp.offset[1], W)
        w.gamma(len(moves) + 1)
        prev = 0
        for i, m in enumerate(moves):
            if i == 0:
                w.uniform(m, 8)
            else:
                w.adaptive(model, (m - prev) % 8)
            prev = m
    return _trim(w.getvalue(), lambda b: decode_mask(b, (H, W)))


def decode_mask(data: bytes, shape: tuple[int, int]) -> np.ndarray:
    """Decode :func:`encode_mask` output to an ``(H, W)`` bool mask (raises CStarError)."""
    H, W = (int(x) for x in shape)
    r = _Reader(data)
    out = np.zeros((H, W), dtype=bool)
    n_comp = r.gamma(((H + 1) // 2) * ((W + 1) // 2) + 1, "component count") - 1
    budget = 8 * (H + 2) * (W + 2)
    model = _Adaptive(8)
    for _ in range(n_comp):
        start = (r.uniform(H), r.uniform(W))
        n = r.gamma(budget + 1, "chain length") - 1
        budget -= n
        moves, prev = [], 0
        for i in range(n):
            prev = r.uniform(8) if i == 0 else (prev + r.adaptive(model)) % 8
            moves.append(prev)
        out |= _fill_chain(start, moves, (H, W))
    return out


__all__ = ["encode_mask", "decode_mask", "trace_boundary", "CStarError"]

"""C* public API: masks and label maps to bytes and back.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import numpy as np

from moric_jax.regions.cstar.params import (
    CStarError, CStarParams, _DEFAULT, _EV_FREE, _EV_PER_BYTE, _format)
from moric_jax.regions.cstar.entropy import _read_header, _Reader, _write_header, _Writer
from moric_jax.regions.cstar.lattice import _layout, _Models
from moric_jax.regions.cstar.bodies import (
    _check_shape, _decode_body, _encode_body, _guard, _MaskSink, _paint_sink)


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

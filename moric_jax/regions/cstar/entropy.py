"""C* entropy coding: adaptive models, the range-coder writer/reader and the stream header.

Part of :mod:`moric_jax.regions.cstar` (the format is described there).
"""

from __future__ import annotations

import numpy as np

from moric_jax.regions.cstar.params import (
    CStarError, _DEFAULT_FMT, _EV_FREE, _EV_PER_BYTE, FIX, _Format, _KS, _model,
    _PAD_WORDS, _queue)


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

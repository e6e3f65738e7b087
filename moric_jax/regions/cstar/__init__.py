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

from moric_jax.regions.cstar.params import FIX, HALF, SUB, CStarError, CStarParams
from moric_jax.regions.cstar.api import (
    decode_label_map, decode_label_masks, decode_mask, encode_label_map, encode_mask)

__all__ = ["FIX", "HALF", "SUB", "CStarError", "CStarParams", "decode_label_map",
           "decode_label_masks", "decode_mask", "encode_label_map", "encode_mask"]

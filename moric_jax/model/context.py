"""ARM context geometry in pure NumPy (shared by the model and the JAX-free decoder).

The causal context of ``(i, j)`` is ``rows`` rows above at columns ``j - cols ..
j + cols``, then ``cols`` positions to the left on the same row. All grids live in one
zero-padded canvas so that no context window reaches into another grid.
"""
from __future__ import annotations


def context_offsets(rows: int, cols: int) -> list[tuple[int, int]]:
  """Causal (dy, dx) offsets in raster order: rows above, then left on the same row."""
  offs = [(dy, dx) for dy in range(-rows, 0) for dx in range(-cols, cols + 1)]
  offs += [(0, dx) for dx in range(-cols, 0)]
  return offs


def canvas_layout(shapes: list[tuple[int, int]], rows: int, cols: int
                  ) -> tuple[tuple[int, int], list[tuple[int, int]]]:
  """Places grids in one canvas: grid 0 on the left, the others stacked on the right.

  Grids are separated by at least ``rows`` zero rows / ``cols`` zero columns so that
  no context window reaches into another grid. Returns ``((Hc, Wc), [(top, left)])``.
  """
  h0, w0 = shapes[0]
  places = [(rows, cols)]
  left = cols + w0 + cols
  top = rows
  right_w = 0
  for h, w in shapes[1:]:
    places.append((top, left))
    top += h + rows
    right_w = max(right_w, w)
  height = max(rows + h0, top)
  width = left + right_w + cols if len(shapes) > 1 else cols + w0 + cols
  return (height, width), places

"""Rate-distortion plots (matplotlib, Agg canvas; no pyplot global state)."""
from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from moric_jax import image_io


def rd_plot(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
            path: str | os.PathLike, title: str = "", xlabel: str = "rate [bpp]",
            ylabel: str = "PSNR [dB]", styles: Mapping[str, Mapping] | None = None,
            logx: bool = False, dpi: int = 120) -> str:
  """Draws one line per curve and writes a PNG atomically (temp file + ``os.replace``).

  Args:
    curves: ``name -> (bpps, psnrs)``; points are sorted by rate before drawing. Points with
      a non-finite value (e.g. lossless ``inf`` PSNR) are left out.
    path: output ``.png`` path; parent folders are created.
    title: figure title.
    styles: optional ``name -> matplotlib line kwargs`` (e.g. ``{"linestyle": "--"}`` for
      anchor curves).
    logx: log-scale rate axis.

  Returns:
    ``str(path)``.
  """
  fig = Figure(figsize=(6.4, 4.8))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  for name, (bpps, psnrs) in curves.items():
    pts = sorted((float(r), float(d)) for r, d in zip(bpps, psnrs)
                 if math.isfinite(float(r)) and math.isfinite(float(d)))
    if not pts:
      continue
    kwargs = {"marker": "o", "markersize": 3, "linewidth": 1.2}
    kwargs.update((styles or {}).get(name, {}))
    ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, **kwargs)
  if logx:
    ax.set_xscale("log")
  ax.set_xlabel(xlabel)
  ax.set_ylabel(ylabel)
  if title:
    ax.set_title(title)
  ax.grid(True, alpha=0.3)
  if ax.get_legend_handles_labels()[0]:
    ax.legend(loc="lower right", fontsize="small")
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=dpi)
  image_io.atomic_write_bytes(path, buf.getvalue())
  return str(path)

"""Bjontegaard deltas (BD-rate, BD-PSNR); the published anchor curves: ``anchors``.

BD values come from the ``bjontegaard`` package (Herzog et al., FAU), by default with Akima
interpolation (``method='akima'``; ``'pchip'`` matches the piecewise-cubic JVET CTC sheet,
``'cubic'`` is Bjontegaard's original cubic fit). Rates are in bpp, distortion is PSNR in dB.
Sign convention: BD-rate < 0 means the test codec needs fewer bits than the anchor for the
same PSNR; BD-PSNR > 0 means the test has higher PSNR at the same rate.

Curves must have at least 4 points and, after sorting by rate, strictly increasing rate and
PSNR (a rate-distortion curve that goes down is not a curve the interpolation can use). Points
that break this raise ``ValueError``; ``pareto_front`` drops dominated points first if wanted.

For a dataset (e.g. Kodak) the usual figure is the mean of per-image BD-rates; an average curve
(mean bpp and mean PSNR per lambda) is what C3 publishes, so BD-rate against C3 can only be
computed on average curves.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import bjontegaard
import numpy as np

MIN_POINTS = 4
METHODS = ("akima", "pchip", "cubic")



def _prepare(bpps: Sequence[float], psnrs: Sequence[float], which: str
             ) -> tuple[np.ndarray, np.ndarray]:
  rate = np.asarray(bpps, np.float64).ravel()
  dist = np.asarray(psnrs, np.float64).ravel()
  if rate.shape != dist.shape:
    raise ValueError(f"{which}: {rate.size} rates but {dist.size} PSNR values")
  if rate.size < MIN_POINTS:
    raise ValueError(f"{which}: BD needs at least {MIN_POINTS} points, got {rate.size}")
  if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(dist))):
    raise ValueError(f"{which}: rates and PSNRs must be finite (lossless points have inf PSNR)")
  if np.any(rate <= 0):
    raise ValueError(f"{which}: rates must be > 0 bpp")
  order = np.argsort(rate, kind="stable")
  rate, dist = rate[order], dist[order]
  if np.any(np.diff(rate) <= 0) or np.any(np.diff(dist) <= 0):
    raise ValueError(
        f"{which}: after sorting by rate, rate and PSNR must both be strictly increasing; got "
        f"bpp={np.round(rate, 4).tolist()} psnr={np.round(dist, 3).tolist()} "
        "(use pareto_front() to drop dominated points)")
  return rate, dist


def pareto_front(bpps: Sequence[float], psnrs: Sequence[float]
                 ) -> tuple[list[float], list[float]]:
  """Keeps the points that no other point beats (lower-or-equal rate with higher PSNR).

  Returns the kept ``(bpps, psnrs)`` sorted by rate, strictly increasing in both.
  """
  pts = sorted(zip(map(float, bpps), map(float, psnrs)), key=lambda p: (p[0], -p[1]))
  out_r: list[float] = []
  out_d: list[float] = []
  for r, d in pts:
    if out_d and d <= out_d[-1]:
      continue
    if out_r and r == out_r[-1]:
      continue
    out_r.append(r)
    out_d.append(d)
  return out_r, out_d


def _bd(fn, anchor_bpp, anchor_psnr, test_bpp, test_psnr, method, min_overlap) -> float:
  if method not in METHODS:
    raise ValueError(f"unknown BD method {method!r}; use one of {METHODS}")
  ra, da = _prepare(anchor_bpp, anchor_psnr, "anchor curve")
  rt, dt = _prepare(test_bpp, test_psnr, "test curve")
  with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    value = float(fn(ra, da, rt, dt, method=method, require_matching_points=False,
                     min_overlap=min_overlap))
  for w in caught:
    if "do not overlap" in str(w.message):
      raise ValueError("the curves do not overlap: BD is undefined")
    warnings.warn(w.message, w.category, stacklevel=3)
  return value


def bd_rate(anchor_bpp: Sequence[float], anchor_psnr: Sequence[float],
            test_bpp: Sequence[float], test_psnr: Sequence[float],
            method: str = "akima", min_overlap: float = 0.75) -> float:
  """BD-rate of the test curve against the anchor, in percent (negative = test saves bits).

  The integral runs over the PSNR range where both curves exist; a ``UserWarning`` is issued
  when that overlap is below ``min_overlap`` of the union. Raises ``ValueError`` for curves
  with fewer than 4 points, non-monotone curves or curves that do not overlap.
  """
  return _bd(bjontegaard.bd_rate, anchor_bpp, anchor_psnr, test_bpp, test_psnr, method,
             min_overlap)


def bd_psnr(anchor_bpp: Sequence[float], anchor_psnr: Sequence[float],
            test_bpp: Sequence[float], test_psnr: Sequence[float],
            method: str = "akima", min_overlap: float = 0.75) -> float:
  """BD-PSNR of the test curve against the anchor, in dB (positive = test is better).

  Integrated over the overlapping log-rate range; same checks as ``bd_rate``.
  """
  return _bd(bjontegaard.bd_psnr, anchor_bpp, anchor_psnr, test_bpp, test_psnr, method,
             min_overlap)


def as_arrays(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
  """``[(bpp, psnr), ...]`` -> ``([bpp, ...], [psnr, ...])``."""
  return [float(p[0]) for p in points], [float(p[1]) for p in points]


def bd_rate_linear(anchor_bpp: Sequence[float], anchor_psnr: Sequence[float],
                   test_bpp: Sequence[float], test_psnr: Sequence[float]) -> float:
  """BD-rate (percent) with piecewise-linear log-rate(PSNR) curves; needs 2+ points each.

  For short curves (e.g. a 2-lambda sweep) where the cubic fits of ``bd_rate`` are
  undefined. Pareto fronts are taken first; the mean log-rate difference is taken
  over the overlapping PSNR range.
  """
  curves = []
  for name, r, d in (("anchor", anchor_bpp, anchor_psnr), ("test", test_bpp, test_psnr)):
    r, d = pareto_front(r, d)
    if len(r) < 2:
      raise ValueError(f"{name} curve: need at least 2 points on its Pareto front")
    curves.append((np.log(np.asarray(r)), np.asarray(d)))
  lo = max(curves[0][1][0], curves[1][1][0])
  hi = min(curves[0][1][-1], curves[1][1][-1])
  if not hi > lo:
    raise ValueError("the curves do not overlap in PSNR: BD is undefined")
  grid = np.linspace(lo, hi, 1001)
  diff = np.interp(grid, curves[1][1], curves[1][0]) - np.interp(grid, curves[0][1],
                                                                 curves[0][0])
  return float((np.exp(np.mean(diff)) - 1.0) * 100.0)


def bd_rate_auto(anchor_bpp: Sequence[float], anchor_psnr: Sequence[float],
                 test_bpp: Sequence[float], test_psnr: Sequence[float]
                 ) -> tuple[float, str]:
  """``(bd_rate_percent, method)``: Akima when both curves allow it, else linear."""
  try:
    return bd_rate(anchor_bpp, anchor_psnr, test_bpp, test_psnr), "akima"
  except ValueError:
    return bd_rate_linear(anchor_bpp, anchor_psnr, test_bpp, test_psnr), "linear"

"""Bjontegaard deltas (BD-rate, BD-PSNR) and the published anchor curves.

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

import csv
import os
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import bjontegaard
import numpy as np

MIN_POINTS = 4
METHODS = ("akima", "pchip", "cubic")

# C3 (Kim et al., "C3: High-performance and low-complexity neural compression from a single
# image or video", arXiv 2312.02753), Kodak average over the 24 images, bpp -> PSNR (dB), as
# published in google-deepmind/c3_neural_compression `baselines/kodak.py`; copied from
# ../shared/data/anchors/SOURCE.md. Rates are estimates (no bitstream).
C3_KODAK_AVERAGE: tuple[tuple[float, float], ...] = (
    (0.0926, 27.06), (0.1339, 28.45), (0.1532, 28.96), (0.2025, 30.03), (0.2318, 30.59),
    (0.2761, 31.34), (0.3506, 32.39), (0.5144, 34.37), (0.5785, 35.02), (0.7286, 36.38),
    (0.8067, 37.04), (0.9140, 37.84), (1.0800, 38.98), (1.4093, 40.85),
)
COOLCHIC_TSV = "coolchic34_kodak.tsv"


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


def load_anchors(anchor_dir: str | os.PathLike) -> dict[str, list[tuple[float, float]]]:
  """Published anchor RD curves, each a list of ``(bpp, psnr_db)`` sorted by bpp.

  Keys:
    ``"c3"``: C3's Kodak average curve (``C3_KODAK_AVERAGE``, hard-coded here).
    ``"coolchic34"``: Cool-chic 3.4 on Kodak, mean bpp and mean PSNR over the images at each
      lambda (from ``anchor_dir/coolchic34_kodak.tsv``; lambdas present for only some images
      are averaged over those images).
    ``"coolchic34/<image>"``: Cool-chic's per-image curve, e.g. ``"coolchic34/kodim23"``.

  Raises:
    FileNotFoundError: ``coolchic34_kodak.tsv`` is missing from ``anchor_dir``.
    ValueError: the TSV lacks the expected columns.
  """
  path = Path(anchor_dir) / COOLCHIC_TSV
  per_image: dict[str, list[tuple[float, float]]] = defaultdict(list)
  per_lambda: dict[float, list[tuple[float, float]]] = defaultdict(list)
  with open(path, newline="") as f:
    reader = csv.DictReader(f, delimiter="\t")
    needed = {"seq_name", "lmbda", "rate_bpp", "psnr_db"}
    if not needed <= set(reader.fieldnames or ()):
      raise ValueError(f"{path}: expected columns {sorted(needed)}, got {reader.fieldnames}")
    for row in reader:
      point = (float(row["rate_bpp"]), float(row["psnr_db"]))
      per_image[row["seq_name"].strip()].append(point)
      per_lambda[float(row["lmbda"])].append(point)
  anchors: dict[str, list[tuple[float, float]]] = {"c3": list(C3_KODAK_AVERAGE)}
  anchors["coolchic34"] = sorted(
      (float(np.mean([p[0] for p in pts])), float(np.mean([p[1] for p in pts])))
      for pts in per_lambda.values())
  for name in sorted(per_image):
    anchors[f"coolchic34/{name}"] = sorted(per_image[name])
  return anchors


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

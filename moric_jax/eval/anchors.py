"""Published anchor results (Cool-chic 5.0.1 / 4.2 / 3.1, C3), shipped as data.

The tables live in ``moric_jax/data/anchors/`` (sources and citations in its
``SOURCE.md``). A sweep compares itself with an anchor **on the same images**:
``curve_on(name, images)`` averages the anchor's rows of those images lambda by
lambda (only the lambdas every one of them has), and says how many images it used.
C3 publishes only its 24-image Kodak mean: its curve is the same images only when the
sweep ran all 24 (``AnchorCurve.same_images`` says so), and only then may a sweep give a
BD-rate against it (``sweeps.rd.anchor_comparison``).

Pure data access: no plotting, no files written.
"""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Sequence

import numpy as np

ANCHOR_DIR = Path(__file__).resolve().parent.parent / "data" / "anchors"
KODAK = tuple(f"kodim{i:02d}" for i in range(1, 25))


@dataclasses.dataclass(frozen=True)
class Anchor:
  """One published table: ``label`` for plots, ``file`` in ``ANCHOR_DIR``;
  ``mean_of``: the images a mean-only table averages (empty: per-image rows)."""
  label: str
  file: str
  mean_of: tuple[str, ...] = ()


ANCHORS: dict[str, Anchor] = {
    "coolchic50": Anchor("Cool-chic 5.0.1", "coolchic50_kodak.tsv"),
    "coolchic50_clic20": Anchor("Cool-chic 5.0.1", "coolchic50_clic20.tsv"),
    "coolchic42": Anchor("Cool-chic 4.2", "coolchic42_kodak_with_decode_times.tsv"),
    "coolchic31": Anchor("Cool-chic 3.1", "coolchic31_kodak.tsv"),
    "c3": Anchor("C3", "c3_kodak_mean.tsv", mean_of=KODAK),
}
DEFAULT = ("coolchic50", "coolchic50_clic20", "coolchic42", "coolchic31", "c3")
# Names that were wrong and are gone: name -> what to say.
RENAMED = {"coolchic34": "coolchic34 held Cool-chic 3.1's values and is now coolchic31 "
                         "(upstream's 3.4 Kodak table equals its 4.2 one: coolchic42)"}


@dataclasses.dataclass(frozen=True)
class Row:
  image: str
  lmbda: float
  bpp: float
  psnr: float


@dataclasses.dataclass(frozen=True)
class AnchorCurve:
  """An anchor's mean curve over ``images`` (sorted by rate): ``bpps`` [bpp],
  ``psnrs`` [dB]; ``same_images``: it is the mean over exactly the images asked for."""
  name: str
  label: str
  bpps: list[float]
  psnrs: list[float]
  images: list[str]
  same_images: bool


def parse_names(spec: str | Sequence[str] | None) -> tuple[str, ...]:
  """``"coolchic50,c3"`` / a sequence / ``None`` (all) / ``"none"`` -> anchor names;
  ``ValueError`` naming the known ones for an unknown name."""
  if spec is None:
    return DEFAULT
  items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
  items = [s for s in items if s]
  if items in (["none"], []):
    return ()
  if items == ["all"]:
    return DEFAULT
  bad = [s for s in items if s not in ANCHORS]
  for s in bad:
    if s in RENAMED:
      raise ValueError(f"unknown anchor {s!r}: {RENAMED[s]}")
  if bad:
    raise ValueError(f"unknown anchor(s) {bad}; known: {', '.join(ANCHORS)}, all, none")
  return tuple(dict.fromkeys(items))


def rows(name: str, anchor_dir: Path = ANCHOR_DIR) -> list[Row]:
  """Every row of anchor ``name``'s table."""
  path = Path(anchor_dir) / ANCHORS[name].file
  with open(path, newline="") as f:
    reader = csv.DictReader(f, delimiter="\t")
    need = {"seq_name", "lmbda", "rate_bpp", "psnr_db"}
    if not need <= set(reader.fieldnames or ()):
      raise ValueError(f"{path}: expected columns {sorted(need)}, got {reader.fieldnames}")
    return [Row(r["seq_name"].strip(), float(r["lmbda"]), float(r["rate_bpp"]),
                float(r["psnr_db"])) for r in reader]


def curve_on(name: str, images: Sequence[str], anchor_dir: Path = ANCHOR_DIR
             ) -> AnchorCurve | None:
  """Anchor ``name``'s mean curve over those of ``images`` (names without extension)
  it has, lambda by lambda, keeping only lambdas that all those images have; ``None``
  when it has none of them."""
  a = ANCHORS[name]
  table = rows(name, anchor_dir)
  wanted = list(dict.fromkeys(images))
  if a.mean_of:   # a published mean only: usable when we ran at least one of its images
    if not set(wanted) & set(a.mean_of):
      return None
    pts = sorted((r.bpp, r.psnr) for r in table)
    return AnchorCurve(name, a.label, [p[0] for p in pts], [p[1] for p in pts],
                       list(a.mean_of), set(wanted) == set(a.mean_of))
  have = {r.image for r in table}
  used = [i for i in wanted if i in have]
  if not used:
    return None
  by_lmbda: dict[float, dict[str, Row]] = {}
  for r in table:
    if r.image in used:
      by_lmbda.setdefault(r.lmbda, {})[r.image] = r
  pts = sorted((float(np.mean([g[i].bpp for i in used])),
                float(np.mean([g[i].psnr for i in used])))
               for g in by_lmbda.values() if len(g) == len(used))
  return AnchorCurve(name, a.label, [p[0] for p in pts], [p[1] for p in pts], used,
                     set(used) == set(wanted))


def psnr_overlap(a_psnrs: Sequence[float], b_psnrs: Sequence[float]
                 ) -> tuple[float, float, float] | None:
  """``(low, high, fraction)``: the PSNR range both curves cover [dB] and its share of
  the range either covers; ``None`` if they do not overlap."""
  lo, hi = max(min(a_psnrs), min(b_psnrs)), min(max(a_psnrs), max(b_psnrs))
  if hi <= lo:
    return None
  union = max(max(a_psnrs), max(b_psnrs)) - min(min(a_psnrs), min(b_psnrs))
  return float(lo), float(hi), float((hi - lo) / union)

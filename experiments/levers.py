"""One RD sweep per recipe lever, then a table of what each lever buys (issue 12).

  python -m experiments.levers --config=configs/levers.py --config.output_dir=runs/levers
  python -m experiments.levers --config=configs/levers.py --config.only=base,soap

Each lever is ``config.base`` (a sweep config) with ``config.base_overrides`` (levers
already kept, "" for none) and the lever's own overrides
(``"train.optimizer=soap;model.lsn.hidden=(48,)"``), swept in this process
(``sweeps.rd.run``) in ``<output_dir>/<lever>/`` (real files; rerunning skips
finished rows). Writes
``<output_dir>/levers.md`` and ``levers.json``: per lever, the mean bpp and PSNR per
lambda, BD-rate against the ``base`` lever and against AVIF and WebP (same crops),
the PSNR interpolated at ``report_bpp``, and the encode seconds per file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from absl import app
from ml_collections import config_flags

from moric_jax import image_io
from moric_jax.eval import bdrate
from moric_jax.sweeps import launch, rd

_CONFIG = config_flags.DEFINE_config_file("config", "configs/levers.py", "Levers config.")


def lever_config(base, out: Path, overrides: str):
  """The sweep config of one lever: a copy of ``base`` (every field of it: nothing is
  lost on the way) with ``output_dir=out`` and ``overrides`` applied
  (``"train.optimizer=soap;model.lsn.hidden=(48,)"``, ``rd.apply_overrides``).
  ``ValueError`` for an item that is not ``key=value`` or names no field."""
  cfg = base.copy_and_resolve_references()
  cfg.output_dir = str(out)
  rd.apply_overrides(cfg, [x for x in overrides.split(";")])
  return cfg


def interpolate_psnr(bpps, psnrs, at: float) -> float | None:
  """PSNR of the curve at ``at`` bpp, piecewise linear in log-rate between the
  neighbouring points (as WORKSPACE's tables state); None outside the curve."""
  order = np.argsort(bpps)
  b, p = np.asarray(bpps, np.float64)[order], np.asarray(psnrs)[order]
  if not b[0] <= at <= b[-1]:
    return None
  return float(np.interp(np.log(at), np.log(b), p))


def summarise(out: Path, names: list[str], report_bpp: float) -> list[dict]:
  """Rows of ``levers.md`` from each lever's ``results.csv`` / ``baselines.csv``."""
  curves, secs = {}, {}
  for name in names:
    rows = launch.read_csv(out / name / "results.csv")
    if rows:
      curves[name] = rd.mean_curve(rows, "lmbda")
      secs[name] = float(np.mean([float(r["encode_seconds"]) for r in rows]))
  base_rows = []
  for name in names:
    base_rows = launch.read_csv(out / name / "baselines.csv") or base_rows
    if base_rows:
      break
  anchors = {c: rd.mean_curve([r for r in base_rows if r["codec"] == c], "quality")
             for c in sorted({r["codec"] for r in base_rows})}
  table = []
  for name in names:
    if name not in curves:
      continue
    bpp, psnr = curves[name]
    row = {"lever": name, "bpp": bpp, "psnr": psnr, "encode_seconds": secs[name],
           "psnr_at": interpolate_psnr(bpp, psnr, report_bpp)}
    refs = dict(anchors)
    if "base" in curves and name != "base":
      refs["base"] = curves["base"]
    for ref, (rb, rp) in refs.items():
      try:
        row[f"bd_vs_{ref}"] = bdrate.bd_rate_auto(rb, rp, bpp, psnr)[0]
      except ValueError:
        row[f"bd_vs_{ref}"] = None
    table.append(row)
  return table


def markdown(table: list[dict], report_bpp: float) -> str:
  refs = sorted({k[6:] for r in table for k in r if k.startswith("bd_vs_")},
                key=lambda x: (x != "base", x))
  head = (["lever", "bpp per lambda", "PSNR per lambda", f"PSNR @ {report_bpp} bpp"]
          + [f"BD-rate vs {r}" for r in refs] + ["encode s / file"])
  fmt = lambda v, f: "n/a" if v is None else f.format(v)
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in table:
    cells = [r["lever"], " ".join(f"{b:.3f}" for b in r["bpp"]),
             " ".join(f"{p:.2f}" for p in r["psnr"]), fmt(r["psnr_at"], "{:.2f}")]
    cells += [fmt(r.get(f"bd_vs_{ref}"), "{:+.1f}%") for ref in refs]
    cells.append(f"{r['encode_seconds']:.0f}")
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv):
  del argv
  config = _CONFIG.value
  out = Path(config.output_dir)
  out.mkdir(parents=True, exist_ok=True)
  levers = dict(config.levers)
  only = [x.strip() for x in str(config.only).split(",") if x.strip()]
  unknown = [x for x in only if x not in levers]
  if unknown:
    sys.exit(f"error: unknown lever(s) {unknown}; known: {', '.join(levers)}")
  names = only or list(levers)
  for name in names:
    overrides = f"{config.base_overrides};{levers[name]}"
    try:
      cfg = lever_config(config.base, out / name, overrides)
    except ValueError as e:
      sys.exit(f"error: lever {name}: {e}")
    print(f"== lever {name}: {overrides.strip(';') or '(base)'}", flush=True)
    try:   # in this process: the lever's config is the object the sweep runs
      rd.run(cfg, echo=lambda line: print(line, flush=True))
    except rd.SweepError as e:
      sys.exit(f"error: the sweep of lever {name} failed (rerun to resume): {e}")
  all_names = [n for n in levers if (out / n / "results.csv").exists()]
  report_bpp = float(config.report_bpp)
  table = summarise(out, all_names, report_bpp)
  image_io.atomic_write_bytes(out / "levers.json", json.dumps(table, indent=1).encode())
  image_io.atomic_write_bytes(out / "levers.md", markdown(table, report_bpp).encode())
  print(markdown(table, report_bpp))


if __name__ == "__main__":
  app.run(main)

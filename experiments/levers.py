"""One RD sweep per recipe lever, then a table of what each lever buys (issue 12).

  python -m experiments.levers --config=configs/levers.py --config.output_dir=runs/levers
  python -m experiments.levers --config=configs/levers.py --config.only=base,soap

Each lever is ``config.base`` (a sweep config) with ``config.base_overrides`` (levers
already kept, "" for none) and the lever's own overrides
(``"train.optimizer=soap;model.lsn.hidden=(48,)"``), run by ``experiments.sweep`` in
``<output_dir>/<lever>/`` (real files; rerunning skips finished rows). Writes
``<output_dir>/levers.md`` and ``levers.json``: per lever, the mean bpp and PSNR per
lambda, BD-rate against the ``base`` lever and against AVIF and WebP (same crops),
the PSNR interpolated at ``report_bpp``, and the encode seconds per file.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from absl import app
from ml_collections import config_flags

from configs import sweep as sweep_config
from moric_jax import image_io
from moric_jax.eval import bdrate
from moric_jax.sweeps import launch, rd

_CONFIG = config_flags.DEFINE_config_file("config", "configs/levers.py", "Levers config.")


def _flag(value) -> str:
  if isinstance(value, (list, tuple)):
    return repr(tuple(value))     # parsed back as a tuple by config_flags
  return str(value)


def _leaves(config, prefix: str = "") -> dict:
  """``{"train.clip_norm": 1.0, ...}``: every leaf of a (nested) ConfigDict."""
  out = {}
  for key, value in config.items():
    if hasattr(value, "items"):
      out.update(_leaves(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def sweep_command(base, out: Path, overrides: str) -> list[str]:
  """``python -m experiments.sweep`` for the base config plus ``overrides``: the
  base's images, crop, lambdas, steps and baselines, and every other field where it
  differs from ``configs/sweep.py`` (``--config.base.seed=1`` reaches the sweeps)."""
  cmd = [sys.executable, "-m", "experiments.sweep", "--config=configs/sweep.py",
         f"--config.output_dir={out}"]
  always = ("images", "crop", "lmbdas", "num_steps", "baselines")
  for key in always:
    cmd.append(f"--config.{key}={_flag(base[key])}")
  defaults = _leaves(sweep_config.get_config())
  for key, value in _leaves(base).items():
    if key in always or key == "output_dir" or value is None:
      continue
    if key not in defaults or defaults[key] != value:
      cmd.append(f"--config.{key}={_flag(value)}")
  for item in filter(None, (x.strip() for x in overrides.split(";"))):
    if "=" not in item:
      raise ValueError(f"lever override {item!r} is not key=value")
    cmd.append(f"--config.{item}")
  return cmd


def interpolate_psnr(bpps, psnrs, at: float) -> float | None:
  """PSNR of the piecewise-linear curve at ``at`` bpp (None outside the curve)."""
  order = np.argsort(bpps)
  b, p = np.asarray(bpps)[order], np.asarray(psnrs)[order]
  if not b[0] <= at <= b[-1]:
    return None
  return float(np.interp(at, b, p))


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
    try:
      cmd = sweep_command(config.base, out / name,
                          f"{config.get('base_overrides', '')};{levers[name]}")
    except ValueError as e:
      sys.exit(f"error: lever {name}: {e}")
    print(f"== lever {name}: {' '.join(cmd[3:])}", flush=True)
    if subprocess.run(cmd).returncode != 0:
      sys.exit(f"error: the sweep of lever {name} failed (rerun to resume)")
  all_names = [n for n in levers if (out / n / "results.csv").exists()]
  report_bpp = float(config.get("report_bpp", 0.49))
  table = summarise(out, all_names, report_bpp)
  image_io.atomic_write_bytes(out / "levers.json", json.dumps(table, indent=1).encode())
  image_io.atomic_write_bytes(out / "levers.md", markdown(table, report_bpp).encode())
  print(markdown(table, report_bpp))


if __name__ == "__main__":
  app.run(main)

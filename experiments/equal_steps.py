"""Our side of the equal-iteration comparison with Cool-chic 5 on the bench crops.

  python -m experiments.equal_steps --config=configs/equal_steps.py [--config.sweep.images=...]

Runs ``experiments.sweep`` with the same command line (the config is a sweep config;
real files, resumable), then prints for
every image with a reference point (``config.sweep.reference_points``: bpp, PSNR, label)
our PSNR at the reference's bpp and the bpp we need for the reference's PSNR
(piecewise-linear on our RD points; "n/a" outside them), and writes
``equal_steps.md`` in the output directory.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from absl import app
from ml_collections import config_flags

from moric_jax import image_io
from moric_jax.sweeps import launch

_CONFIG = None   # the --config flag, defined when run as a script (importable for tests)


def compare(rows: list[dict], references: dict) -> list[dict]:
  """One line per image with a reference: ours at its bpp and for its PSNR."""
  out = []
  for name, (ref_bpp, ref_psnr, label) in references.items():
    mine = sorted((float(r["bpp"]), float(r["psnr"])) for r in rows if r["image"] == name)
    if not mine:
      continue
    b, p = np.array(mine).T
    at_bpp = float(np.interp(ref_bpp, b, p)) if b[0] <= ref_bpp <= b[-1] else None
    order = np.argsort(p)
    bpp_for = (float(np.interp(ref_psnr, p[order], b[order]))
               if p.min() <= ref_psnr <= p.max() else None)
    out.append({"image": name, "reference": label, "ref_bpp": ref_bpp,
                "ref_psnr": ref_psnr, "psnr_at_ref_bpp": at_bpp,
                "bpp_for_ref_psnr": bpp_for, "points": mine})
  return out


def markdown(lines: list[dict], steps: int) -> str:
  fmt = lambda v, f: "n/a" if v is None else f.format(v)
  md = [f"| image | reference | ours at its bpp ({steps} steps) | our bpp for its PSNR | "
        "our points (bpp, dB) |", "|---|---|---|---|---|"]
  for x in lines:
    pts = ", ".join(f"({b:.3f}, {p:.2f})" for b, p in x["points"])
    md.append(f"| {x['image']} | {x['reference']}: {x['ref_psnr']:.2f} dB @ "
              f"{x['ref_bpp']:.3f} | {fmt(x['psnr_at_ref_bpp'], '{:.2f} dB')} | "
              f"{fmt(x['bpp_for_ref_psnr'], '{:.3f}')} | {pts} |")
  return "\n".join(md) + "\n"


def main(argv):
  del argv
  config = _CONFIG.value
  out = Path(config.output_dir)
  # The config is a sweep config: the sweep gets the same command line.
  cmd = [sys.executable, "-m", "experiments.sweep", *sys.argv[1:]]
  if not any(a.startswith("--config=") for a in sys.argv[1:]):
    cmd.append("--config=configs/equal_steps.py")
  if subprocess.run(cmd).returncode != 0:
    sys.exit("error: the sweep failed (rerun the same command to resume)")
  lines = compare(launch.read_csv(out / "results.csv"), dict(config.sweep.reference_points))
  text = markdown(lines, int(config.num_steps))
  image_io.atomic_write_bytes(out / "equal_steps.md", text.encode())
  print(text)


if __name__ == "__main__":
  _CONFIG = config_flags.DEFINE_config_file("config", "configs/equal_steps.py",
                                            "Sweep config with reference_points.")
  app.run(main)

r"""Decoder speed: warm in-process decode, cold ``moric decode`` CLI, Cool-chic anchor.

  python -m experiments.bench_decode                      # runs/regions/*/*.moric
  python -m experiments.bench_decode a.moric b.moric --runs 9 --cold_runs 5
  python -m experiments.bench_decode --compose --cold_runs 0   # region-aware synthesis

Files: the given ``.moric`` files, else every ``runs/regions/*/*.moric``, else a
synthetic 768x512 file of the test suite's architecture
(``tests.test_bitstream.synthetic_file(512, 768)``). Per file it prints

* warm: ``decode.decode_file`` in this process after one warm-up call, min and median
  over ``--runs`` of the wall time, its parse / entropy / synthesis split and the
  thread's CPU time (on a loaded machine wall time includes waiting for a core);
* cold: wall time of a fresh ``python -m moric_jax decode FILE -o x.png`` subprocess
  (interpreter start, imports, first decode, PNG write), min and median;
* the ratio of the warm minimum to Cool-chic 4.2's published C++ decode time for the
  same Kodak image (``moric_jax/data/anchors/coolchic42_kodak_with_decode_times.tsv``,
  the row of that image with the nearest rate), else to its 74 ms mean.

Compare figures measured in the same run: ratios hold up under load, absolute times
do not. ``--json PATH`` also writes the figures.
"""
from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from moric_jax.eval import anchors

ROOT = Path(__file__).resolve().parent.parent
ANCHORS = anchors.ANCHOR_DIR / anchors.ANCHORS["coolchic42"].file
COOLCHIC_MEAN_S = 0.074     # published mean over the 24 Kodak images (one CPU core)


def anchor_rows(path: Path) -> dict[str, list[tuple[float, float]]]:
  """``seq_name -> [(rate_bpp, dec_time_all_sec), ...]``."""
  out: dict[str, list[tuple[float, float]]] = {}
  if not path.exists():
    return out
  with open(path) as f:
    for row in csv.DictReader(f, delimiter="\t"):
      out.setdefault(row["seq_name"], []).append((float(row["rate_bpp"]),
                                                  float(row["dec_time_all_sec"])))
  return out


def anchor_for(path: str, bpp: float, anchors) -> tuple[float, str]:
  m = re.search(r"kodim\d\d", path)
  if m and m.group(0) in anchors:
    rate, secs = min(anchors[m.group(0)], key=lambda r: abs(r[0] - bpp))
    return secs, f"Cool-chic 4.2 {m.group(0)} @ {rate:.3f} bpp"
  return COOLCHIC_MEAN_S, "Cool-chic 4.2 Kodak mean"


def stats(xs: list[float]) -> tuple[float, float]:
  return min(xs), statistics.median(xs)


def warm(data: bytes, runs: int) -> dict:
  from moric_jax.decoder import decode
  d = decode.decode_file(data)                       # warm-up (page faults, tables)
  rec = {k: [] for k in ("wall", "cpu", "parse", "entropy", "synthesis")}
  for _ in range(runs):
    t, c = time.perf_counter(), time.thread_time()
    d = decode.decode_file(data)
    rec["wall"].append(time.perf_counter() - t)
    rec["cpu"].append(time.thread_time() - c)
    rec["parse"].append(d.parse_seconds)
    rec["entropy"].append(d.entropy_seconds)
    rec["synthesis"].append(d.synthesis_seconds)
  out = {k: stats(v) for k, v in rec.items()}
  out["regions"] = d.file.num_regions
  out["layers"] = d.layers
  out["size"] = (d.file.width, d.file.height)
  return out


def cold(path: str, runs: int) -> tuple[float, float]:
  times = []
  with tempfile.TemporaryDirectory() as tmp:
    for _ in range(runs):
      t = time.perf_counter()
      subprocess.run([sys.executable, "-m", "moric_jax", "decode", path, "-o",
                      os.path.join(tmp, "x.png")], check=True, capture_output=True, cwd=ROOT)
      times.append(time.perf_counter() - t)
  return stats(times)


def default_files(tmp: str) -> list[str]:
  files = sorted(glob.glob(str(ROOT / "runs" / "regions" / "*" / "*.moric")))
  if files:
    return files
  sys.path.insert(0, str(ROOT))
  from tests.test_bitstream import synthetic_file
  path = os.path.join(tmp, "synthetic_768x512.moric")
  Path(path).write_bytes(synthetic_file(512, 768)[0])
  return [path]


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("files", nargs="*", help=".moric files (default: runs/regions/*/*.moric)")
  ap.add_argument("--runs", type=int, default=7, help="warm decodes per file (>= 5)")
  ap.add_argument("--cold_runs", type=int, default=5, help="cold CLI calls per file")
  ap.add_argument("--anchors", default=str(ANCHORS), help="Cool-chic 4.2 decode-time TSV")
  ap.add_argument("--json", default=None, help="also write the figures here")
  ap.add_argument("--compose", action="store_true",
                  help="warm decodes with decoder.compose.synthesize_float (each LSN only "
                       "where it shows) in place of decode.synthesize_float (preview; the "
                       "cold CLI runs the installed decoder)")
  args = ap.parse_args(argv)
  if args.compose:
    from moric_jax.decoder import compose, decode
    decode.synthesize_float = compose.synthesize_float
  from moric_jax.coding import fast_ans
  from moric_jax.decoder import networks
  anchors = anchor_rows(Path(args.anchors))
  results = []
  with tempfile.TemporaryDirectory() as tmp:
    files = args.files or default_files(tmp)
    files.sort(key=lambda p: (os.path.dirname(p), "regions" in os.path.basename(p), p))
    backend = getattr(fast_ans, "backend", lambda: "numba")()
    compiled = getattr(networks, "compiled", lambda: False)()
    print(f"entropy kernels: {backend}, compiled synthesis: {compiled}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs, "
          f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}")
    print(f"{'file':52s} {'reg':>3s} {'warm min/med ms':>16s} {'parse':>5s} {'entropy':>7s} "
          f"{'synth':>5s} {'cpu':>4s} {'cold min/med s':>15s} {'x anchor':>8s}  anchor")
    for path in files:
      data = Path(path).read_bytes()
      w = warm(data, max(5, args.runs))
      c = cold(path, args.cold_runs) if args.cold_runs > 0 else (float("nan"),) * 2
      width, height = w["size"]
      bpp = 8 * len(data) / (width * height)
      a_s, a_name = anchor_for(path, bpp, anchors)
      ms = lambda k, i=0: 1e3 * w[k][i]
      name = os.path.relpath(path, ROOT) if path.startswith(str(ROOT)) else path
      print(f"{name[-52:]:52s} {w['regions']:3d} {ms('wall'):7.1f}/{ms('wall', 1):7.1f}  "
            f"{ms('parse'):5.1f} {ms('entropy'):7.1f} {ms('synthesis'):5.1f} {ms('cpu'):4.0f} "
            f"{c[0]:7.3f}/{c[1]:7.3f} {w['wall'][0] / a_s:8.2f}  {a_name} ({1e3 * a_s:.0f} ms)")
      results.append({"file": name, "bytes": len(data), "bpp": bpp, "width": width,
                      "height": height, "regions": w["regions"], "layers": w["layers"],
                      **{f"warm_{k}_min_s": w[k][0] for k in ("wall", "cpu", "parse",
                                                             "entropy", "synthesis")},
                      **{f"warm_{k}_median_s": w[k][1] for k in ("wall", "cpu", "parse",
                                                                "entropy", "synthesis")},
                      "cold_cli_min_s": c[0], "cold_cli_median_s": c[1],
                      "anchor": a_name, "anchor_s": a_s,
                      "ratio_warm_min_to_anchor": w["wall"][0] / a_s})
  if args.json:
    Path(args.json).write_text(json.dumps(results, indent=1))
  return 0


if __name__ == "__main__":
  sys.exit(main())

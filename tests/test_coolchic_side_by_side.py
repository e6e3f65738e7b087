"""experiments.coolchic_side_by_side against a FAKE Cool-chic checkout: two tiny scripts
with Cool-chic 5.0.1's command lines (cc_encode.py, cc_decode.py) that write a bitstream
of a known size and a decoded PNG of a known error, so bpp, PSNR, the tables, the
plots, resuming and the error lines are checked without torch or a real encode."""
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from experiments import coolchic_side_by_side as sbs
from moric_jax.sweeps import launch, rd

ROOT = Path(__file__).resolve().parents[1]

# Bitstream bytes = 2 / lambda; decoded pixels = crop + round(1000 lambda) (lambda 0.5 fails).
FAKE_ENCODE = '''
"""Fake Cool-chic: version 5.0.1 (test double)."""
import argparse, json, os, sys
import numpy as np
from PIL import Image
ap = argparse.ArgumentParser()
for a in ("--input", "--output", "--workdir", "--dec_cfg_residue"):
  ap.add_argument(a)
ap.add_argument("--lmbda", type=float)
ap.add_argument("--n_itr", type=int)
args, rest = ap.parse_known_args()
with open(os.path.join(os.path.dirname(__file__), "calls.txt"), "a") as f:
  f.write(json.dumps(sys.argv[1:]) + "\\n")
print("iteration 1 ... fake training")
if args.lmbda == 0.5:
  print("Some earlier line", file=sys.stderr)
  print("boom: fake Cool-chic ran out of memory", file=sys.stderr)
  sys.exit(3)
json.dump({"argv": sys.argv[1:], "cwd": os.getcwd()},
          open(os.path.join(args.workdir, "args.json"), "w"))
x = np.asarray(Image.open(args.input).convert("RGB"))
head = json.dumps({"h": x.shape[0], "w": x.shape[1], "delta": round(1000 * args.lmbda)})
data = head.encode() + b"\\n" + x.tobytes()
size = round(2 / args.lmbda)
assert len(data) <= size
open(args.output, "wb").write(data + bytes(size - len(data)))
'''
FAKE_DECODE = '''
import argparse, json
import numpy as np
from PIL import Image
ap = argparse.ArgumentParser()
ap.add_argument("--input", "-i")
ap.add_argument("--output", "-o")
args = ap.parse_args()
raw = open(args.input, "rb").read()
head, _, body = raw.partition(b"\\n")
h = json.loads(head)
x = np.frombuffer(body[:h["h"] * h["w"] * 3], np.uint8).reshape(h["h"], h["w"], 3)
Image.fromarray((x.astype(int) + h["delta"]).astype(np.uint8)).save(args.output)
'''


def fake_checkout(root: Path) -> Path:
  d = root / "Cool-Chic"
  (d / "cfg" / "dec" / "intra").mkdir(parents=True)
  (d / "cfg" / "dec" / "intra" / "hop.cfg").write_text("arm_residue = 14,2/stabiliser\n")
  (d / "cc_encode.py").write_text(textwrap.dedent(FAKE_ENCODE))
  (d / "cc_decode.py").write_text(textwrap.dedent(FAKE_DECODE))
  (d / "venv" / "bin").mkdir(parents=True)
  python = d / "venv" / "bin" / "python"
  python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
  python.chmod(0o755)
  return d


def kodak(root: Path) -> Path:
  """Two 20x24 images with values in [10, 240] (no clipping after the fake's error)."""
  k = root / "kodak"
  k.mkdir()
  rng = np.random.default_rng(0)
  for name in ("kodim01", "kodim02"):
    Image.fromarray(rng.integers(10, 241, (20, 24, 3), dtype=np.uint8)).save(k / f"{name}.png")
  return k


def settings(tmp_path, d, k, **kw):
  base = dict(images=["kodim01"], out_dir=tmp_path / "out", coolchic_dir=d, kodak_dir=k,
              crop=16, steps=7, lmbdas=(0.001, 0.002), seeds=(0,), codecs=("coolchic",),
              heartbeat_s=30.0)
  return sbs.Settings(**{**base, **kw})


def calls(d: Path) -> int:
  p = d / "calls.txt"
  return len(p.read_text().splitlines()) if p.exists() else 0


def test_coolchic_rows_from_its_files_tables_plots_and_resume(tmp_path):
  d, k = fake_checkout(tmp_path), kodak(tmp_path)
  s = settings(tmp_path, d, k)
  lines = []
  res = sbs.run(s, echo=lines.append)
  rows = sorted(res["rows"].values(), key=lambda r: r["lmbda"])
  assert [r["codec"] for r in rows] == ["coolchic", "coolchic"]
  # bpp from the bitstream's size (2 / lambda bytes over the 16x16 crop) ...
  assert [r["bytes"] for r in rows] == [2000, 1000]
  assert [r["bpp"] for r in rows] == pytest.approx([8 * 2000 / 256, 8 * 1000 / 256])
  # ... PSNR from the decoded PNG against the centre crop (errors of 1 and 2 levels).
  assert [r["psnr"] for r in rows] == pytest.approx(
      [20 * math.log10(255 / 1), 20 * math.log10(255 / 2)], abs=1e-9)
  assert all(0.9 < r["ms_ssim"] <= 1 and r["encode_seconds"] > 0 for r in rows)
  # Cool-chic got the centre crop, the iterations, the lambda and its HOP config.
  full = np.asarray(Image.open(k / "kodim01.png"))
  crop = np.asarray(Image.open(tmp_path / "out" / "crops" / "kodim01_crop16.png"))
  assert np.array_equal(crop, full[2:18, 4:20])
  argv = [json.loads(x) for x in (d / "calls.txt").read_text().splitlines()]
  assert {a for a in argv[0] if a.startswith(("--n_itr", "--dec_cfg"))} == {
      "--n_itr=7", f"--dec_cfg_residue={d / 'cfg/dec/intra/hop.cfg'}"}
  assert sorted(next(a for a in v if a.startswith("--lmbda")) for v in argv) == [
      "--lmbda=0.001", "--lmbda=0.002"]
  out = tmp_path / "out"
  md = (out / "results.md").read_text()
  assert "## Cool-chic 5.0.1 (2 points)" in md and "| image | lmbda | seed | bpp |" in md
  assert "| kodim01 | 0.001 | 0 | 62.5 | 48.13 |" in md and "**mean of 1**" in md
  assert (out / "rd.png").stat().st_size > 0 and (out / "rd_kodim01.png").exists()
  assert len((out / "results.jsonl").read_text().splitlines()) == 2
  assert any(l.startswith("[1/2] Cool-chic 5.0.1 kodim01 16x16 lambda=0.001") for l in lines)
  # Resume: nothing runs again; a new seed and image run only their own points.
  sbs.run(s, echo=lines.append)
  assert calls(d) == 2
  res = sbs.run(settings(tmp_path, d, k, images=["kodim01", "kodim02"], seeds=(0, 1)),
                echo=lines.append)
  assert calls(d) == 2 + 6 and len(res["rows"]) == 8
  # A torn last line (killed mid-write) is skipped: that point runs again.
  with (out / "results.jsonl").open("a") as f:
    f.write('{"key": "coolchic|kodim0')
  assert len(rd.read_jsonl(out / "results.jsonl", "row")) == 8


def test_ours_on_the_same_points_gap_and_bd_rate(tmp_path, monkeypatch):
  """Our rows come from ``sweeps.rd.run`` (faked here: no encode) on the same crop,
  lambdas, steps and seed; the table gives our gap at Cool-chic's rates."""
  d, k = fake_checkout(tmp_path), kodak(tmp_path)
  seen = []

  def fake_sweep(config, echo):
    seen.append(config)
    out = Path(config.output_dir)
    rows = [{"image": "kodim01", "lmbda": l, "height": 16, "width": 16, "bytes": b,
             "bpp": 8 * b / 256, "psnr": p, "ms_ssim": 0.99, "encode_seconds": 3.0,
             "decode_seconds": 0.1, "config_hash": rd.config_hash(config)}
            for l, b, p in ((0.001, 2080, 47.0), (0.002, 960, 41.0))]
    launch.write_csv(out / "results.csv", rows, rd.FIELDS)

  monkeypatch.setattr(rd, "run", fake_sweep)
  monkeypatch.chdir(tmp_path)   # a checkout given relative to the working directory
  s = settings(tmp_path, Path("Cool-Chic"), k, codecs=("coolchic", "moric_jax"),
               overrides=("quant.rdoq=True",))
  res = sbs.run(s, echo=lambda m: None)
  (config,) = seen
  assert (config.sweep.crop, config.num_steps, config.seed, tuple(config.sweep.lmbdas)) == (
      16, 7, 0, (0.001, 0.002))
  assert config.sweep.images.endswith("kodim01.png") and config.quant.rdoq is True
  assert config.sweep.baselines == () and config.sweep.anchors == "none"
  (x,) = res["comparison"]
  ours_b, ours_p = np.log([30.0, 65.0]), np.array([41.0, 47.0])
  want = [float(np.interp(np.log(b), ours_b, ours_p)) - p
          for b, p in ((31.25, 20 * math.log10(127.5)), (62.5, 20 * math.log10(255)))]
  assert [g for g, _ in x["gaps"]] == pytest.approx(want)
  assert x["bd"] is not None
  md = (tmp_path / "out" / "results.md").read_text()
  assert "## moric_jax (2 points)" in md and "Mean PSNR gap at Cool-chic's rates: **" in md
  assert f"{np.mean(want):+.2f} dB** over 2 of 2 points" in md
  # Rerun: both codecs' points are in results.jsonl, neither runs again.
  sbs.run(s, echo=lambda m: None)
  assert len(seen) == 1 and calls(d) == 2


def test_gap_interpolates_in_log_rate_and_extrapolates_a_little():
  ours = ([0.2, 0.4], [30.0, 33.0])
  assert sbs.gap_at(ours, 0.2 * 2 ** 0.5) == (pytest.approx(31.5), False)
  v, extra = sbs.gap_at(ours, 0.45)            # 12.5% past our last point
  assert extra and v == pytest.approx(33.0 + 3.0 * math.log2(0.45 / 0.4))
  assert sbs.gap_at(ours, 0.6) == (None, False)   # 50% past: not a gap
  assert sbs.gap_at(([0.2], [30.0]), 0.2) == (None, False)


def test_mistakes_are_one_line(tmp_path):
  d, k = fake_checkout(tmp_path), kodak(tmp_path)
  err = lambda **kw: pytest.raises(sbs.SideBySideError, match=kw.pop("match"))
  with err(match="is not a directory"):
    sbs.run(settings(tmp_path, tmp_path / "nowhere", k))
  empty = tmp_path / "empty"
  empty.mkdir()
  with err(match="has no cc_encode.py .*tag v5.0.1"):
    sbs.run(settings(tmp_path, empty, k))
  with err(match="no Python for Cool-chic"):
    os.unlink(d / "venv" / "bin" / "python")
    sbs.run(settings(tmp_path, d, k))
  s = settings(tmp_path, d, k, coolchic_python=Path(sys.executable))
  with err(match="image .*kodim99.png does not exist"):
    sbs.run(settings(tmp_path, d, k, images=["kodim99"], coolchic_python=Path(sys.executable)))
  with pytest.raises(sbs.SideBySideError) as e:
    sbs.run(settings(tmp_path, d, k, lmbdas=(0.001, 0.5), coolchic_python=Path(sys.executable)),
            echo=lambda m: None)
  msg = str(e.value)
  assert msg.startswith("Cool-chic on kodim01 lambda=0.5 seed 0 failed (exit 3; logs ")
  assert msg.endswith("its stderr ends:\nSome earlier line\nboom: fake Cool-chic ran out "
                      "of memory")
  # The point before the failure was kept.
  assert len(rd.read_jsonl(tmp_path / "out" / "results.jsonl", "row")) == 1
  del s
  # The command line: one error line, no traceback.
  p = subprocess.run([sys.executable, "-m", "experiments.coolchic_side_by_side",
                      f"--coolchic_dir={empty}", f"--kodak_dir={k}", "--images=kodim01",
                      f"--out_dir={tmp_path / 'cli'}"], cwd=ROOT, capture_output=True,
                     text=True, timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert p.returncode == 1 and "Traceback" not in p.stderr
  assert p.stderr.strip().splitlines()[-1].startswith(f"error: {empty} has no cc_encode.py")

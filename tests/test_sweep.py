import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]


def _run(args, timeout=900):
  import os
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return subprocess.run([sys.executable, "-m", "experiments.sweep", *args], cwd=ROOT,
                        capture_output=True, text=True, timeout=timeout, env=env)


def test_tiny_sweep_writes_results_plot_and_bd_and_resumes(tmp_path):
  """The inline launcher (one process, the same job code as local/SLURM jobs)."""
  for i in range(2):
    img = (smooth_image(32, 32, seed=i, noise=0.0) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"img{i}.png")
  out = tmp_path / "sweep"
  args = ["--config=configs/sweep.py", f"--config.sweep.images={tmp_path}/img*.png",
          "--config.sweep.lmbdas=0.0005,0.02", f"--config.output_dir={out}",
          "--config.num_steps=40", "--config.train.chunk_size=20",
          "--config.quant.num_deltas=7", "--config.sweep.baselines=('jpeg','webp')",
          "--config.train.warmup.candidates=()"]   # (tests/test_warmup.py)
  proc = _run(args)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with (out / "results.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert len(rows) == 4
  assert {r["image"] for r in rows} == {"img0", "img1"}
  for r in rows:
    assert float(r["bpp"]) > 0 and np.isfinite(float(r["psnr"]))
    assert 0 < float(r["ms_ssim"]) <= 1
    assert r["git_commit"] is not None and r["config_hash"]
    f = out / "files" / f"{r['image']}_lmbda{float(r['lmbda']):g}.moric"
    assert f.stat().st_size == int(r["bytes"])
  # Higher lambda -> fewer bits on each image.
  for name in ("img0", "img1"):
    by = {float(r["lmbda"]): float(r["bpp"]) for r in rows if r["image"] == name}
    assert by[0.02] < by[0.0005]
  bd = json.loads((out / "bd.json").read_text())
  assert set(bd) == {"jpeg", "webp"}
  assert any(v["bd_rate_percent"] is not None and np.isfinite(v["bd_rate_percent"])
             for v in bd.values()), bd
  assert (out / "rd.png").stat().st_size > 1000
  assert "mean of 2" in (out / "results.md").read_text()
  assert json.loads((out / "sweep.json").read_text())["images"] == [
      f"{tmp_path}/img0.png", f"{tmp_path}/img1.png"]
  # A rerun finds every row done and trains nothing.
  again = _run(args)
  assert again.returncode == 0, again.stderr[-3000:]
  assert "4 rows already done" in again.stdout
  with (out / "results.csv").open() as f:
    assert len(list(csv.DictReader(f))) == 4


def test_sweep_bad_glob_is_one_line(tmp_path):
  proc = _run(["--config=configs/sweep.py", f"--config.sweep.images={tmp_path}/none*.png",
               f"--config.output_dir={tmp_path}/o"], timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "no image matches" in proc.stderr


def test_sweep_unknown_launcher_is_one_line(tmp_path):
  proc = _run(["--config=configs/sweep.py", "--config.launch.launcher=cloud",
               f"--config.output_dir={tmp_path}/o"], timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "inline, local, slurm" in proc.stderr


def test_slurm_launcher_without_slurm_is_one_line(tmp_path):
  img = (smooth_image(16, 16) * 255).astype(np.uint8)
  Image.fromarray(img).save(tmp_path / "a.png")
  proc = _run(["--config=configs/sweep.py", "--config.launch.launcher=slurm",
               f"--config.sweep.images={tmp_path}/a.png", f"--config.output_dir={tmp_path}/o"],
              timeout=120)
  assert proc.returncode != 0
  assert "Traceback" not in proc.stderr and "slurm" in proc.stderr.lower()


def _fake_sweep(out, images, rows, crop=0, anchors="all"):
  """A sweep directory with finished rows and no baselines (what collect reads)."""
  from configs import sweep
  from moric_jax.sweeps import launch, rd
  cfg = sweep.get_config().to_dict()
  cfg["sweep"].update(crop=crop, baselines=(), anchors=anchors)
  plan = {"config": cfg, "images": [f"/nowhere/{i}.png" for i in images],
          "lmbdas": sorted({r["lmbda"] for r in rows}), "config_hash": "c0ffee",
          "git_commit": ""}
  out.mkdir(parents=True)
  (out / "sweep.json").write_text(json.dumps(plan, default=str))
  for r in rows:
    row = dict(r, config_hash="c0ffee", psnr=r["psnr"], ms_ssim=0.9, bytes=1,
               bpp_estimated=r["bpp"], encode_seconds=1, decode_seconds=0.1, steps=10,
               seed=0, git_commit="")
    launch.write_row_file(out, rd.key_of({k: str(v) for k, v in row.items()}), row)


def test_collect_compares_with_anchors_on_the_same_images(tmp_path):
  """Our rows = Cool-chic 5.0's own rows of two images with 20% more bits: BD-rate vs
  Cool-chic 5.0 is +20% on those two images; every Kodak anchor is drawn on rd.png."""
  from moric_jax.eval import anchors
  from moric_jax.sweeps import rd
  images = ["kodim01", "kodim23"]
  rows = [{"image": r.image, "lmbda": r.lmbda, "bpp": 1.2 * r.bpp, "psnr": r.psnr}
          for r in anchors.rows("coolchic50") if r.image in images]
  out = tmp_path / "sweep"
  _fake_sweep(out, images, rows)
  summary = rd.collect(out, echo=lambda *_: None)
  bd = json.loads((out / "bd.json").read_text())["anchors"]
  assert summary["bd"]["anchors"] == bd
  assert set(bd) == {"coolchic50", "coolchic42", "coolchic31", "c3"}   # no CLIC rows
  e = bd["coolchic50"]
  assert e["images"] == 2 and e["same_images"] and e["overlap_fraction"] == 1.0
  assert abs(e["bd_rate_percent"] - 20.0) < 0.05, e
  assert bd["c3"]["images"] == 24 and not bd["c3"]["same_images"]
  assert bd["c3"]["bd_rate_percent"] is None and "mean of 24" in bd["c3"]["error"]
  assert bd["coolchic42"]["bd_rate_percent"] is not None
  md = (out / "results.md").read_text()
  assert "BD-rate vs published anchors" in md and "+20.0%" in md
  assert (out / "rd.png").stat().st_size > 1000
  # --anchors picks; crops are not compared with full-image results.
  rd.collect(out, echo=lambda *_: None, anchor_names="coolchic50")
  assert set(json.loads((out / "bd.json").read_text())["anchors"]) == {"coolchic50"}
  crop = tmp_path / "crop"
  _fake_sweep(crop, images, rows, crop=256)
  rd.collect(crop, echo=lambda *_: None)
  e = json.loads((crop / "bd.json").read_text())["anchors"]["coolchic50"]
  assert e["bd_rate_percent"] is None and "crops" in e["error"]



def test_collect_mean_only_anchor_needs_all_its_images_and_incomplete_sweeps_say_so(
    tmp_path):
  """C3 publishes a 24-image mean: a BD-rate against it only for a sweep with every
  Kodak image at every lambda. An incomplete sweep compares only its complete images
  (no mean curve mixes image sets) and says so in results.md, bd.json and the plot."""
  from moric_jax.eval import anchors
  from moric_jax.sweeps import rd
  kodak = list(anchors.KODAK)
  rows = [{"image": r.image, "lmbda": r.lmbda, "bpp": 1.2 * r.bpp, "psnr": r.psnr}
          for r in anchors.rows("coolchic50")]
  full = tmp_path / "full"
  _fake_sweep(full, kodak, rows, anchors="coolchic50,c3")
  summary = rd.collect(full, echo=lambda *_: None)
  assert not summary["missing"]
  bd = json.loads((full / "bd.json").read_text())
  assert "incomplete" not in bd
  c3 = bd["anchors"]["c3"]
  assert c3["same_images"] and c3["images"] == 24 and c3["bd_rate_percent"] is not None
  assert abs(bd["anchors"]["coolchic50"]["bd_rate_percent"] - 20.0) < 0.05
  assert "Incomplete" not in (full / "results.md").read_text()
  # kodim01 misses its highest lambda: C3 gets no BD-rate; Cool-chic 5.0.1 is
  # compared on the 23 complete images, both curves over those 23.
  top = max(r["lmbda"] for r in rows)
  part = tmp_path / "part"
  _fake_sweep(part, kodak, [r for r in rows if (r["image"], r["lmbda"]) != ("kodim01", top)],
              anchors="coolchic50,c3")
  lines = []
  summary = rd.collect(part, echo=lines.append)
  assert len(summary["missing"]) == 1 and any("1 of 120 rows missing" in l for l in lines)
  bd = json.loads((part / "bd.json").read_text())
  assert bd["incomplete"]["rows_missing"] == 1
  assert bd["incomplete"]["images_compared"] == kodak[1:]
  c3, cc = bd["anchors"]["c3"], bd["anchors"]["coolchic50"]
  assert c3["bd_rate_percent"] is None and not c3["same_images"]
  assert "23 of them have every lambda" in c3["error"]
  assert cc["same_images"] and cc["images"] == 23 and not cc["complete"]
  assert abs(cc["bd_rate_percent"] - 20.0) < 0.05
  md = (part / "results.md").read_text()
  assert md.startswith("**Incomplete sweep**: 1 of 120 rows missing; 23 of 24 images")
  assert "compared on the 23 of 24 images with every lambda" in md
  c3_line = next(l for l in md.splitlines() if l.startswith("| C3"))
  assert "| no |" in c3_line and "%" not in c3_line.split("|")[4]
  # No image complete yet: nothing claims "same images".
  none = tmp_path / "none"
  _fake_sweep(none, ["kodim01", "kodim23"],
              [r for r in rows if r["image"] in ("kodim01", "kodim23") and r["lmbda"] != top],
              anchors="coolchic50")
  plan = json.loads((none / "sweep.json").read_text())
  plan["lmbdas"].append(top)
  (none / "sweep.json").write_text(json.dumps(plan))
  rd.collect(none, echo=lambda *_: None)
  e = json.loads((none / "bd.json").read_text())["anchors"]["coolchic50"]
  assert not e["same_images"] and e["bd_rate_percent"] is None
  assert "none yet" in (none / "results.md").read_text()

def test_collect_unknown_anchor_is_one_line(tmp_path):
  images = ["kodim23"]
  _fake_sweep(tmp_path / "s", images, [{"image": "kodim23", "lmbda": 0.001, "bpp": 0.3,
                                        "psnr": 35.0}])
  proc = subprocess.run([sys.executable, "-m", "experiments.collect",
                         f"--dir={tmp_path / 's'}", "--anchors=coolchic99"], cwd=ROOT,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown anchor")
  assert "Traceback" not in proc.stderr


def test_batch_images_groups_same_shapes_into_one_job(tmp_path):
  """--config.sweep.batch_images=2: same-shape images share a job (one image x lambda
  stack), another shape gets its own; every row is a real file's."""
  from configs import sweep as sweep_cfg
  from moric_jax.sweeps import rd
  for name, (h, w), seed in (("a", (16, 16), 0), ("b", (16, 16), 1), ("c", (16, 20), 2),
                             ("d", (16, 16), 3)):
    img = (smooth_image(h, w, seed=seed) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"{name}.png")
  cfg = sweep_cfg.get_config()
  cfg.sweep.batch_images = 2
  cfg.sweep.lmbdas = (0.001, 0.02)
  paths = [str(tmp_path / f"{n}.png") for n in "abcd"]
  jobs = rd.make_jobs(cfg, paths, set(), "h", "")
  assert sorted(j.args.get("names", [j.args.get("name")]).__repr__() for j in jobs) == [
      "['a', 'b']", "['c']", "['d']"]
  assert rd.config_hash(cfg) == rd.config_hash(sweep_cfg.get_config())
  out = tmp_path / "sweep"
  proc = _run(["--config=configs/sweep.py", f"--config.sweep.images={tmp_path}/[ab].png",
               "--config.sweep.lmbdas=0.001,0.02", f"--config.output_dir={out}",
               "--config.num_steps=20", "--config.train.chunk_size=10",
               "--config.quant.num_deltas=5", "--config.sweep.baselines=()",
               "--config.train.warmup.candidates=()", "--config.sweep.batch_images=2"])
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert "1 job(s)" in proc.stdout
  with (out / "results.csv").open() as f:
    rows = list(csv.DictReader(f))
  assert {(r["image"], float(r["lmbda"])) for r in rows} == {
      (i, l) for i in "ab" for l in (0.001, 0.02)}
  for r in rows:
    f = out / "files" / f"{r['image']}_lmbda{float(r['lmbda']):g}.moric"
    assert f.stat().st_size == int(r["bytes"]) and np.isfinite(float(r["psnr"]))
  by = {(r["image"], float(r["lmbda"])): float(r["psnr"]) for r in rows}
  assert by[("a", 0.001)] != by[("b", 0.001)]   # each trained on its own pixels

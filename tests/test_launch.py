"""Sweeps through submitit: local jobs, one writer of results.csv, preemption/resume."""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import sweep_faults
from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--config.train.chunk_size=10", "--config.quant.num_deltas=5",
        "--config.train.warmup.candidates=()",
        "--config.sweep.baselines=()", "--config.launch.slurm.gpus_per_task=0"]


def _env(**extra):
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT),
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  env.pop("MORIC_SWEEP_FAULT", None)
  env.pop("MORIC_SWEEP_HOOK", None)
  env.update(extra)
  return env


def _sweep(args, env, timeout=300):
  return subprocess.run([sys.executable, "-m", "experiments.sweep",
                         "--config=configs/sweep.py", *TINY, *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=timeout)


def _rows(out):
  with (out / "results.csv").open() as f:
    return list(csv.DictReader(f))


def _images(tmp_path, names_seeds):
  for name, seed in names_seeds:
    img = (smooth_image(16, 16, seed=seed, noise=0.0) * 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / f"{name}.png")


def test_local_executor_sweep_2_images_x_2_lambdas(tmp_path):
  """Two local submitit jobs (one per image, lambdas batched) -> 4 merged rows."""
  _images(tmp_path, [("img0", 0), ("img1", 1)])
  out = tmp_path / "sweep"
  args = [f"--config.sweep.images={tmp_path}/img*.png", "--config.sweep.lmbdas=0.0005,0.02",
          f"--config.output_dir={out}", "--config.num_steps=20",
          "--config.launch.launcher=local", "--config.launch.local_parallelism=2"]
  p = _sweep(args, _env())
  assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
  assert "started 2 local jobs" in p.stdout
  rows = _rows(out)
  assert len(rows) == 4
  assert {(r["image"], float(r["lmbda"])) for r in rows} == {
      (i, l) for i in ("img0", "img1") for l in (0.0005, 0.02)}
  for r in rows:   # the row's bpp is the real file's size
    f = out / "files" / f"{r['image']}_lmbda{float(r['lmbda']):g}.moric"
    assert int(r["bytes"]) == f.stat().st_size
    assert float(r["bpp"]) == pytest.approx(8 * f.stat().st_size / (16 * 16))
  assert len(list((out / "jobs").glob("*.json"))) == 4   # one result file per row
  assert not list((out / "jobs").glob("*.running.json"))
  assert list((out / "submitit").glob("*_log.out"))
  assert (out / "rd.png").stat().st_size > 1000 and (out / "results.md").exists()
  assert json.loads((out / "bd.json").read_text()) == {}
  # A rerun submits nothing; collect alone rewrites the same table.
  again = _sweep(args, _env())
  assert again.returncode == 0, again.stderr[-2000:]
  assert "0 job(s); 4 rows already done" in again.stdout
  c = subprocess.run([sys.executable, "-m", "experiments.collect", f"--dir={out}"],
                     cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
  assert c.returncode == 0, c.stderr[-2000:]
  assert _rows(out) == rows


def test_preempted_job_is_requeued_and_resumes_to_the_same_row(tmp_path):
  """Two encodes of the same pixels in one local sweep (one job per (image, lambda));
  ``twin`` sends itself SIGUSR2 (submitit's preemption signal) right after its first
  checkpoint: submitit checkpoints/requeues it, it resumes from the orbax checkpoint
  at step 10 and ends with the same file as the uninterrupted ``ref``."""
  _images(tmp_path, [("ref", 0), ("twin", 0)])
  out = tmp_path / "sweep"
  args = [f"--config.sweep.images={tmp_path}/ref.png,{tmp_path}/twin.png",
          "--config.sweep.lmbdas=0.02,", f"--config.output_dir={out}", "--config.num_steps=40",
          "--config.checkpoint.every_steps=10", "--config.sweep.batch_lmbdas=False",
          "--config.launch.launcher=local", "--config.launch.local_parallelism=2"]
  p = _sweep(args, _env(**sweep_faults.env("preempt:twin__*")))
  assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
  logs = {f.name: f.read_text() for f in (out / "submitit").glob("*_log.*")}
  twin_out = [t for n, t in logs.items() if n.endswith(".out") and "job twin__" in t]
  assert len(twin_out) == 1, logs.keys()
  assert "attempt 0" in twin_out[0] and "attempt 1" in twin_out[0]
  assert "fault injection" in twin_out[0]
  assert "Requeued job" in "".join(logs.values())
  assert "resuming from checkpoint at step 10" in "".join(logs.values())
  rows = {r["image"]: r for r in _rows(out)}
  assert set(rows) == {"ref", "twin"}
  for k in ("bpp", "psnr", "bytes", "bpp_estimated", "ms_ssim"):
    assert rows["twin"][k] == rows["ref"][k], k
  assert ((out / "files" / "twin_lmbda0.02.moric").read_bytes()
          == (out / "files" / "ref_lmbda0.02.moric").read_bytes())


def test_killed_job_fails_then_rerun_resumes_from_its_checkpoint(tmp_path):
  """SIGKILL after the first checkpoint (no requeue possible): the sweep reports the
  failure in one line and keeps the other row; the rerun resumes the killed encode
  (inline launcher: the same job code in this process tree) to the same row."""
  _images(tmp_path, [("ref", 0), ("twin", 0)])
  out = tmp_path / "sweep"
  args = [f"--config.sweep.images={tmp_path}/ref.png,{tmp_path}/twin.png",
          "--config.sweep.lmbdas=0.02,", f"--config.output_dir={out}", "--config.num_steps=40",
          "--config.checkpoint.every_steps=10", "--config.sweep.batch_lmbdas=False",
          "--config.launch.local_parallelism=2"]
  p = _sweep(args + ["--config.launch.launcher=local"],
             _env(**sweep_faults.env("kill:twin__*")))
  assert p.returncode != 0
  assert "1 job(s) failed" in p.stderr and "Traceback" not in p.stderr
  assert [r["image"] for r in _rows(out)] == ["ref"]
  ckpt = list((out / "ckpt").glob("twin__*"))
  assert len(ckpt) == 1 and list(ckpt[0].glob("step_*"))
  again = _sweep(args + ["--config.launch.launcher=inline"], _env())
  assert again.returncode == 0, again.stderr[-3000:]
  assert "1 job(s); 1 rows already done" in again.stdout
  assert "resuming from checkpoint at step" in again.stderr
  rows = {r["image"]: r for r in _rows(out)}
  for k in ("bpp", "psnr", "bytes", "bpp_estimated"):
    assert rows["twin"][k] == rows["ref"][k], k


def test_merge_rows_is_one_atomic_writer(tmp_path):
  from moric_jax.sweeps import launch, rd
  out = tmp_path
  base = dict(image="a", bpp=1.0, psnr=30.0, config_hash="h", steps=10)
  launch.write_csv(out / "results.csv", [dict(base, lmbda=0.001)], rd.FIELDS)
  launch.write_row_file(out, rd.row_key("a", 0.001, "h"), dict(base, lmbda=0.001, bpp=9))
  launch.write_row_file(out, rd.row_key("a", 0.002, "h"), dict(base, lmbda=0.002))
  (out / "jobs" / "x.running.json").write_text("{}")
  rows, added = launch.merge_rows(out, out / "results.csv", rd.FIELDS, rd.key_of)
  assert added == 1 and len(rows) == 2
  assert [float(r["bpp"]) for r in rows] == [1.0, 1.0]   # existing row kept as is
  assert launch.merge_rows(out, out / "results.csv", rd.FIELDS, rd.key_of)[1] == 0
  assert not list(out.glob(".results.csv.*"))            # no temp file left behind


def test_slurm_executor_gets_the_config_knobs(tmp_path, monkeypatch):
  """The SLURM job array's sbatch file carries the config's knobs (no cluster needed)."""
  import submitit
  from configs import bench_kodak_gpu
  monkeypatch.setattr(submitit.SlurmExecutor, "affinity", staticmethod(lambda: 1))
  from moric_jax.sweeps import launch
  config = bench_kodak_gpu.get_config()
  config.launch.launcher = "slurm"
  config.launch.slurm.partition = "gpu"
  config.launch.slurm.account = "proj1"
  config.launch.slurm.qos = "normal"
  ex = launch.make_executor(config.launch, tmp_path / "submitit")
  text = ex._make_submission_file_text("python job.py", "uid")
  for line in ("--partition=gpu", "--gpus-per-node=1", "--cpus-per-task=8",
               "--time=240", "--mem=32GB", "--account=proj1", "--qos=normal",
               "--signal=USR2@120"):
    assert f"#SBATCH {line}" in text, (line, text)
  assert ex.parameters["array_parallelism"] == 48
  assert ex.max_num_timeout == 20
  assert isinstance(launch.JobRunner(tmp_path).checkpoint(None).function,
                    launch.JobRunner)


def test_wait_without_accounting_finds_done_and_lost_jobs(tmp_path, monkeypatch):
  """Without SLURM accounting (no sacct) a job is done when its result file exists and
  failed once squeue has stopped listing it without a result."""
  from moric_jax.sweeps import launch

  class FakeJob:
    def __init__(self, job_id, result):
      self.job_id = job_id
      self.paths = type("P", (), {"result_pickle": tmp_path / f"{job_id}.pkl",
                                  "stderr": tmp_path / f"{job_id}.err"})()
      self._result = result

    def result(self):
      if isinstance(self._result, Exception):
        raise self._result
      return self._result

  ok, bad, lost = FakeJob("7_0", ["row"]), FakeJob("7_1", ValueError("boom")), FakeJob("7_2", 0)
  for j in (ok, bad):
    j.paths.result_pickle.write_bytes(b"x")
  monkeypatch.setattr(launch, "_squeue_ids", lambda: {"7_0"})   # 7_2 is not listed
  jobs = [launch.Job(n, "m:f", {}, 1) for n in ("ok", "bad", "lost")]
  said = []
  failed = launch._wait_without_accounting(list(zip(jobs, (ok, bad, lost))), said.append,
                                           poll_s=0.01, grace_s=0.05)
  assert [(f[0], f[1]) for f in failed] == [
      ("bad", "ValueError: boom"), ("lost", "left the SLURM queue without a result")]
  assert "job ok done (1/3)" in said

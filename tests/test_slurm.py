"""Sweeps and the modulation ablation on a real SLURM scheduler, with a requeue.

A one-node cluster on localhost (``.ci/slurm/cluster.sh``: munged, slurmctld, slurmd,
accounting off) runs ``--config.launch.launcher=slurm`` job arrays end to end. One job is
held right after its first orbax checkpoint (``MORIC_SWEEP_FAULT=hold:...``) and
requeued from outside with ``scontrol requeue``, as an administrator or a preemption
would; it resumes from its checkpoint and its row equals an uninterrupted run's.

Skipped, with the reason, where SLURM cannot run: not root, or Debian's packages not
installed (``bash .ci/slurm/cluster.sh install``, which ``.ci/run`` runs).
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests import sweep_faults
from tests.conftest import smooth_image

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / ".ci" / "slurm" / "cluster.sh"
TINY = ["--config.train.chunk_size=10", "--config.quant.num_deltas=5",
        "--config.train.warmup.candidates=()",
        "--config.launch.slurm.gpus_per_task=0", "--config.launch.slurm.cpus_per_task=1",
        "--config.launch.slurm.timeout_min=20", "--config.checkpoint.every_steps=10"]


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
  """``SLURM_CONF`` of a running one-node cluster (stopped after the module)."""
  if os.geteuid() != 0:
    pytest.skip("real-SLURM tests need root (they start munged, slurmctld, slurmd)")
  missing = [b for b in ("slurmctld", "slurmd", "munged", "sbatch", "scontrol")
             if shutil.which(b) is None and not Path(f"/usr/sbin/{b}").exists()]
  if missing:
    pytest.skip(f"SLURM not installed ({', '.join(missing)} missing): "
                f"`bash .ci/slurm/cluster.sh install` installs Debian's packages")
  d = tmp_path_factory.mktemp("slurm")
  p = subprocess.run(["bash", str(CLUSTER), "start", str(d)], capture_output=True,
                     text=True, timeout=120)
  if p.returncode != 0:
    pytest.fail(f"the SLURM cluster did not start:\n{p.stderr[-3000:]}")
  yield str(d / "slurm.conf")
  subprocess.run(["bash", str(CLUSTER), "stop", str(d)], capture_output=True, timeout=60)


def _env(conf, **extra):
  import jax
  env = dict(os.environ, PYTHONPATH=str(ROOT), SLURM_CONF=conf,
             JAX_COMPILATION_CACHE_DIR=str(jax.config.jax_compilation_cache_dir),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  env.pop("MORIC_SWEEP_FAULT", None)
  env.pop("MORIC_SWEEP_HOOK", None)
  env.update(extra)
  return env


def _rows(path):
  with open(path) as f:
    return list(csv.DictReader(f))


def _requeue_when_held(conf, out: Path, pattern: str, proc: subprocess.Popen,
                       timeout: float = 300) -> str:
  """Waits for the held job's fault marker, then ``scontrol requeue`` s it."""
  t0 = time.time()
  while time.time() - t0 < timeout:
    if proc.poll() is not None:
      raise AssertionError(f"launcher ended before the hold:\n{proc.stdout.read()[-3000:]}")
    held = list(out.glob(f"ckpt/{pattern}/.fault_fired"))
    status = list(out.glob(f"jobs/{pattern}.running.json"))
    if held and status:
      job_id = json.loads(status[0].read_text())["slurm_job_id"]
      assert job_id, status[0].read_text()
      r = subprocess.run(["scontrol", "requeue", job_id], env=_env(conf),
                         capture_output=True, text=True, timeout=30)
      assert r.returncode == 0, r.stderr
      return job_id
    time.sleep(0.5)
  raise AssertionError(f"no job matching {pattern} reached its first checkpoint")


def _finish(proc: subprocess.Popen, timeout: float = 600) -> str:
  try:
    out, _ = proc.communicate(timeout=timeout)
  except subprocess.TimeoutExpired:
    proc.kill()
    raise
  assert proc.returncode == 0, out[-4000:]
  return out


def _logs(out: Path) -> str:
  return "".join(f.read_text() for f in (out / "submitit").glob("*_log.*"))


def test_sweep_job_array_survives_scontrol_requeue(slurm, tmp_path):
  """Two encodes of the same pixels as one SLURM array; ``twin`` is requeued mid-run
  and ends with the file and row of the uninterrupted ``ref``."""
  img = (smooth_image(16, 16, seed=0, noise=0.0) * 255).astype(np.uint8)
  for name in ("ref", "twin"):
    Image.fromarray(img).save(tmp_path / f"{name}.png")
  out = tmp_path / "sweep"
  cmd = [sys.executable, "-m", "experiments.sweep", "--config=configs/sweep.py", *TINY,
         f"--config.sweep.images={tmp_path}/ref.png,{tmp_path}/twin.png",
         "--config.sweep.lmbdas=0.02,", f"--config.output_dir={out}", "--config.num_steps=40",
         "--config.sweep.batch_lmbdas=False", "--config.sweep.baselines=()", "--config.sweep.anchors=none",
         "--config.launch.launcher=slurm"]
  proc = subprocess.Popen(cmd, cwd=ROOT,
                          env=_env(slurm, **sweep_faults.env("hold:twin__*")),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  job_id = _requeue_when_held(slurm, out, "twin__*", proc)
  text = _finish(proc)
  assert "submitted 2 jobs to SLURM" in text
  assert text.count("SLURM accounting is off") == 1 and "Bypassing sacct" not in text, text[-3000:]
  rows = {r["image"]: r for r in _rows(out / "results.csv")}
  assert set(rows) == {"ref", "twin"}
  for k in ("bpp", "psnr", "bytes", "bpp_estimated", "ms_ssim", "steps"):
    assert rows["twin"][k] == rows["ref"][k], k
  assert ((out / "files" / "twin_lmbda0.02.moric").read_bytes()
          == (out / "files" / "ref_lmbda0.02.moric").read_bytes())
  logs = _logs(out)
  assert "attempt 1" in logs and "resuming from checkpoint at step 10" in logs, logs[-3000:]
  assert job_id in logs or job_id.split("_")[0] in logs
  assert not list((out / "jobs").glob("*.running.json"))


def test_modulation_ablation_on_slurm_survives_scontrol_requeue(slurm, tmp_path):
  """The ablation launcher's SLURM array: the ``film`` job is requeued mid-run; its row
  equals the same run made inline without interruption."""
  img = smooth_image(16, 16, seed=3, noise=0.0)
  src, mask = tmp_path / "in.png", tmp_path / "mask.png"
  Image.fromarray((img * 255).round().astype(np.uint8)).save(src)
  labels = np.zeros((16, 16), np.uint8)
  labels[3:10, 4:12] = 1
  Image.fromarray(labels * 255).save(mask)
  common = ["--config=configs/ablation.py", f"--config.image_path={src}", "--config.sweep.crop=0",
            "--config.num_steps=40", f"--config.regions.masks={mask}",
            "--config.regions.auto=", "--config.sweep.lmbdas=0.002,",
            "--config.sweep.include_single=False", *TINY]
  out = tmp_path / "slurm"
  proc = subprocess.Popen(
      [sys.executable, "-m", "experiments.ablate_modulation", *common,
       "--config.sweep.schemes=none,film", f"--config.output_dir={out}",
       "--config.launch.launcher=slurm"],
      cwd=ROOT, env=_env(slurm, **sweep_faults.env("hold:film*")), stdout=subprocess.PIPE,
      stderr=subprocess.STDOUT, text=True)
  _requeue_when_held(slurm, out, "film*", proc)
  _finish(proc)
  ref = tmp_path / "inline"
  p = subprocess.run([sys.executable, "-m", "experiments.ablate_modulation", *common,
                      "--config.sweep.schemes=film,", f"--config.output_dir={ref}"],
                     cwd=ROOT, env=_env(slurm), capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  rows = {r["scheme"]: r for r in _rows(out / "results.csv")}
  assert set(rows) == {"none", "film"}
  want = _rows(ref / "results.csv")[0]
  for k in ("bpp", "psnr", "bytes"):
    assert rows["film"][k] == want[k], k
  logs = _logs(out)
  assert "attempt 1" in logs and "resuming from checkpoint at step 10" in logs, logs[-3000:]

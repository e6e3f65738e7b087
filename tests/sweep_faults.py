"""Fault injection for the launcher tests, loaded in each sweep job through the
library's progress hook (``MORIC_SWEEP_HOOK=<this file>:after_chunk``).

``MORIC_SWEEP_FAULT="preempt:PATTERN"`` (or ``"kill:PATTERN"``) makes the jobs whose
name matches ``PATTERN`` (fnmatch) send themselves SIGUSR2 (submitit's
preemption/timeout signal: checkpoint and requeue) or SIGKILL right after their first
orbax checkpoint is on disk, once per job; ``"hold:PATTERN"`` makes them wait there (up
to 10 minutes) for something outside, e.g. ``scontrol requeue``, to stop them. Each
writes ``<checkpoint dir>/.fault_fired`` first.
"""
import fnmatch
import os
import signal
import time
from pathlib import Path

FAULT_ENV = "MORIC_SWEEP_FAULT"
HOOK = f"{Path(__file__).resolve()}:after_chunk"


def env(fault: str) -> dict:
  """The environment entries that inject ``fault`` (``"kill:twin__*"``)."""
  return {"MORIC_SWEEP_HOOK": HOOK, FAULT_ENV: fault}


def _fault(job_name: str) -> str:
  kind, _, pattern = os.environ.get(FAULT_ENV, "").partition(":")
  ok = kind in ("preempt", "kill", "hold") and fnmatch.fnmatchcase(job_name, pattern)
  return kind if ok else ""


def after_chunk(job_name: str, ckpt_dir: Path) -> None:
  from moric_jax.sweeps.launch import finished_steps
  fault = _fault(job_name)
  marker = ckpt_dir / ".fault_fired"
  if not fault or marker.exists() or not finished_steps(ckpt_dir):
    return
  marker.write_text(fault)
  print(f"fault injection ({FAULT_ENV}): {fault} after checkpoint step "
        f"{finished_steps(ckpt_dir)[-1]}", flush=True)
  if fault == "hold":
    time.sleep(600)   # until the scheduler stops this attempt
    return
  os.kill(os.getpid(), signal.SIGKILL if fault == "kill" else signal.SIGUSR2)
  time.sleep(5)   # the signal handler runs here (USR2: checkpoint + requeue)

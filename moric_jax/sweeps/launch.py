"""Runs a sweep's jobs in process, as local processes or as a SLURM job array.

One code path for every launcher: a sweep is a list of ``Job`` s; each job is run by
``JobRunner`` (in this process for ``launcher="inline"``, in a ``submitit`` job for
``"local"`` and ``"slurm"``), which calls the job's work function with a
``JobContext``. The work function writes one result file per finished row,
``<out>/jobs/<row key>.json`` (temp file + ``os.replace``: never half-written), and
trains with ``ctx.checkpoint_dir(key)`` as its orbax checkpoint directory, so a job
that is preempted, times out or is killed resumes from its last checkpoint when it is
requeued (``JobRunner.checkpoint``: submitit's ``Checkpointable`` protocol) or rerun.
Only ``merge_rows`` writes ``results.csv`` (under a lock, atomically): jobs never
append to a shared file.

Config fields, the ``launch`` sub-dict of a sweep config (``launch_fields``; none of
them changes a result, so they are left out of config hashes and checkpoint run ids):

- ``launcher``: ``"inline"`` (one process, progress bars), ``"local"`` (``submitit``
  ``LocalExecutor``: one process per job, at most ``local_parallelism`` at a time),
  ``"slurm"`` (``submitit`` ``SlurmExecutor``: one job array).
- ``wait``: wait for the jobs and merge their rows (``False``: submit and return;
  collect later with ``python -m experiments.collect --dir=OUT``).
- ``slurm.*``: ``partition``, ``gpus_per_task``, ``cpus_per_task``, ``mem_gb``
  (0 = the partition's default), ``timeout_min`` (per attempt), ``array_parallelism``,
  ``account``, ``qos``, ``constraint``, ``setup`` (shell lines run before the job,
  e.g. ``("module load cuda",)``), ``max_num_timeout`` (requeues after timeouts),
  ``signal_delay_s`` (USR2 this long before the time limit: checkpoint and requeue).
  ``timeout_min`` and ``gpus_per_task`` also apply to ``local`` jobs.

Progress hook: ``MORIC_SWEEP_HOOK="FILE.py:FUNCTION"`` loads ``FUNCTION`` from ``FILE.py``
in each job and calls it as ``FUNCTION(job_name, ckpt_dir)`` after every training chunk
of an encode that checkpoints (``ckpt_dir`` a ``Path``). The tests inject preemptions
and kills with it (``tests/sweep_faults.py``); the library itself has no fault code.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib
import importlib.util
import json
import logging
import os
import re
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Sequence

import ml_collections

from moric_jax import image_io

logger = logging.getLogger("moric_jax")

LAUNCHERS = ("inline", "local", "slurm")
HOOK_ENV = "MORIC_SWEEP_HOOK"
_STEP_DIR = re.compile(r"^step_\d+$")


def launch_fields() -> ml_collections.ConfigDict:
  """The launcher fields (module docstring): a sweep config's ``launch`` sub-dict, apart
  from the codec fields (``--config.launch.launcher=slurm``,
  ``--config.launch.slurm.partition=gpu``). They say how jobs run, never what they
  compute."""
  return ml_collections.ConfigDict(dict(
      launcher="inline", wait=True, local_parallelism=1,
      slurm=dict(partition="", gpus_per_task=1, cpus_per_task=8, mem_gb=0,
                 timeout_min=240, array_parallelism=64, account="", qos="", constraint="",
                 setup=(), max_num_timeout=20, signal_delay_s=120, job_name="moric")))


@dataclasses.dataclass
class Job:
  """One unit of work: ``fn`` (``"module:function"``) called as ``fn(args, ctx)``.

  ``name`` is unique in the sweep and safe in file names; ``args`` is plain data
  (pickled to the job); ``steps`` is the training steps it runs (progress).
  """
  name: str
  fn: str
  args: dict
  steps: int = 0


def safe_name(s: str) -> str:
  return re.sub(r"[^A-Za-z0-9._=+-]+", "_", s)


def row_path(out_dir: Path, key: str) -> Path:
  return Path(out_dir) / "jobs" / f"{safe_name(key)}.json"


def write_row_file(out_dir: Path, key: str, row: dict) -> Path:
  """Writes one finished row atomically (temp file + ``os.replace``)."""
  path = row_path(out_dir, key)
  image_io.atomic_write_bytes(path, json.dumps({"key": key, "row": row}, indent=1,
                                               default=str).encode())
  return path


def finished_steps(directory: Path) -> list[int]:
  """Steps of the complete orbax checkpoints in ``directory`` (temp dirs excluded)."""
  if not Path(directory).is_dir():
    return []
  return sorted(int(p.name.split("_")[1]) for p in Path(directory).iterdir()
                if _STEP_DIR.match(p.name) and p.is_dir())


class JobContext:
  """What a work function gets: where to write rows and checkpoints, progress."""

  def __init__(self, out_dir: Path, job: Job, interactive: bool):
    self.out_dir = Path(out_dir)
    self.job = job
    self.interactive = interactive
    self.keys: list[str] = []
    self._hook = _load_hook()
    self._bar = None
    self._last_log = 0.0

  def checkpoint_dir(self, key: str) -> str:
    """The orbax checkpoint directory of one row (stable across reruns)."""
    return str((self.out_dir / "ckpt" / safe_name(key)).absolute())

  def emit(self, key: str, row: dict) -> None:
    """Records one finished row (``jobs/<key>.json``)."""
    write_row_file(self.out_dir, key, row)
    self.keys.append(key)

  def progress(self, done: int, total: int, desc: str = "", ckpt_dir: str | None = None,
               **postfix) -> None:
    """Called after each training chunk: progress bar (inline) or a log line every
    ~30 s (jobs), and the progress hook (``HOOK_ENV``)."""
    if self.interactive:
      if self._bar is None or self._bar.total != total or done < self._bar.n:
        self.close_bar()
        from tqdm import tqdm
        self._bar = tqdm(total=total, desc=desc or self.job.name, unit="step",
                         dynamic_ncols=True)
      if postfix:
        self._bar.set_postfix(refresh=False, **postfix)
      self._bar.update(done - self._bar.n)
    elif time.monotonic() - self._last_log > 30 or done >= total:
      self._last_log = time.monotonic()
      extra = " ".join(f"{k}={v}" for k, v in postfix.items())
      print(f"[{desc or self.job.name}] step {done}/{total} {extra}", flush=True)
    if self._hook is not None and ckpt_dir is not None:
      self._hook(self.job.name, Path(ckpt_dir))

  def close_bar(self) -> None:
    if self._bar is not None:
      self._bar.close()
      self._bar = None


def _load_hook() -> Callable[[str, Path], None] | None:
  """The function ``HOOK_ENV`` names (``FILE.py:FUNCTION``), or ``None``."""
  spec = os.environ.get(HOOK_ENV, "")
  if not spec:
    return None
  path, _, name = spec.rpartition(":")
  module_spec = importlib.util.spec_from_file_location("moric_sweep_hook", path)
  if not path or module_spec is None:
    raise ValueError(f"{HOOK_ENV}={spec!r}: expected FILE.py:FUNCTION")
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return getattr(module, name)


class JobRunner:
  """Runs one ``Job``; requeued with the same job on preemption/timeout.

  ``checkpoint`` makes it a submitit ``Checkpointable``: on SIGUSR2 submitit calls it
  and requeues ``self(job)``; the work function then resumes from the orbax
  checkpoints under ``ckpt/`` (rows already written are kept and skipped).
  """

  def __init__(self, out_dir: str | Path, interactive: bool = False):
    self.out_dir = str(Path(out_dir).absolute())
    self.interactive = interactive

  def __call__(self, job: Job) -> list[str]:
    out = Path(self.out_dir)
    status = out / "jobs" / f"{safe_name(job.name)}.running.json"
    attempt = 0
    if status.exists():
      with contextlib.suppress(ValueError, OSError):
        attempt = int(json.loads(status.read_text()).get("attempt", -1)) + 1
    image_io.atomic_write_bytes(status, json.dumps({
        "job": job.name, "pid": os.getpid(), "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID", ""), "attempt": attempt,
        "started": time.time()}).encode())
    if not self.interactive:
      if not logger.handlers:   # our INFO lines (resume, ...) in the job log
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
      print(f"job {job.name} attempt {attempt} on {socket.gethostname()} "
            f"pid {os.getpid()}", flush=True)
    module, _, fn_name = job.fn.partition(":")
    fn = getattr(importlib.import_module(module), fn_name)
    ctx = JobContext(out, job, self.interactive)
    try:
      fn(job.args, ctx)
    finally:
      ctx.close_bar()
    status.unlink(missing_ok=True)
    (out / "jobs" / f"{safe_name(job.name)}.error.txt").unlink(missing_ok=True)
    return ctx.keys

  def checkpoint(self, *args, **kwargs):
    import submitit
    return submitit.helpers.DelayedSubmission(self, *args, **kwargs)


@dataclasses.dataclass
class LaunchReport:
  launcher: str
  submitted: int
  failed: list[tuple[str, str, str]]   # (job name, one-line reason, log path)
  job_ids: list[str]
  waited: bool


def default_compile_cache() -> None:
  """Points JAX's persistent compilation cache at ``~/.cache/moric_jax/xla`` unless
  the environment names one (called by the launch commands before any job starts:
  local and SLURM jobs inherit the environment, so the jobs of a sweep, which compile
  the same programs, share it)."""
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    os.environ["JAX_COMPILATION_CACHE_DIR"] = os.path.join(
        os.path.expanduser("~"), ".cache", "moric_jax", "xla")
    # Also the many small programs (each < 0.1 s to compile, hundreds per encode).
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")


def make_executor(launch_config, folder: Path):
  """The submitit executor for ``launch_config.launcher`` (``local`` or ``slurm``);
  ``launch_config`` is a sweep config's ``launch`` sub-dict (``launch_fields``)."""
  import submitit
  s = launch_config.slurm
  launcher = launch_config.launcher
  if launcher == "slurm":
    ex = submitit.SlurmExecutor(folder=folder, max_num_timeout=int(s.max_num_timeout))
    params = dict(time=int(s.timeout_min), nodes=1, ntasks_per_node=1,
                  cpus_per_task=int(s.cpus_per_task), job_name=str(s.job_name),
                  array_parallelism=int(s.array_parallelism),
                  signal_delay_s=int(s.signal_delay_s))
    if int(s.gpus_per_task):
      params["gpus_per_node"] = int(s.gpus_per_task)
    if int(s.mem_gb):
      params["mem"] = f"{int(s.mem_gb)}GB"
    for k in ("partition", "account", "qos", "constraint"):
      if s.get(k):
        params[k] = str(s[k])
    if s.setup:
      params["setup"] = [str(x) for x in s.setup]
    ex.update_parameters(**params)
    return ex
  if launcher == "local":
    ex = submitit.LocalExecutor(folder=folder, max_num_timeout=int(s.max_num_timeout))
    ex.update_parameters(timeout_min=float(s.timeout_min),
                         gpus_per_node=int(s.gpus_per_task),
                         signal_delay_s=min(int(s.signal_delay_s),
                                            int(60 * float(s.timeout_min) // 2)))
    return ex
  raise ValueError(f"launcher {launcher!r} is not one of {LAUNCHERS}")


def _one_line(e: BaseException) -> str:
  lines = [l for l in str(e).strip().splitlines() if l.strip()]
  return f"{type(e).__name__}: {lines[-1] if lines else ''}"


def run_jobs(jobs: Sequence[Job], out_dir: str | Path, launch_config,
             echo: Callable[[str], None] = print) -> LaunchReport:
  """Runs ``jobs`` with ``launch_config.launcher`` (a sweep config's ``launch``
  sub-dict, ``launch_fields``); returns what ran and what failed.

  Failures do not stop the other jobs; their rows are simply missing (a rerun of the
  sweep retries them, resuming from their checkpoints).
  """
  launcher = str(launch_config.launcher)
  if launcher not in LAUNCHERS:
    raise ValueError(f"config.launch.launcher={launcher!r} is not one of {', '.join(LAUNCHERS)}")
  out = Path(out_dir).absolute()
  (out / "jobs").mkdir(parents=True, exist_ok=True)
  failed: list[tuple[str, str, str]] = []
  if launcher == "inline":
    runner = JobRunner(out, interactive=True)
    for job in jobs:
      try:
        runner(job)
      except Exception as e:  # one job's failure does not stop the sweep
        log = out / "jobs" / f"{safe_name(job.name)}.error.txt"
        image_io.atomic_write_bytes(log, traceback.format_exc().encode())
        failed.append((job.name, _one_line(e), str(log)))
        echo(f"job {job.name} failed: {_one_line(e)} (traceback: {log})")
    return LaunchReport(launcher, len(jobs), failed, [], True)

  folder = out / "submitit"
  executor = make_executor(launch_config, folder)
  runner = JobRunner(out, interactive=False)
  submitted = []
  wait = bool(launch_config.wait)
  if launcher == "slurm":
    try:
      with executor.batch():
        submitted = [executor.submit(runner, job) for job in jobs]
    except Exception as e:  # no sbatch, or sbatch but no cluster: one line that says so
      detail = getattr(e, "stderr", None) or str(e)
      if isinstance(detail, bytes):
        detail = detail.decode(errors="replace")
      lines = [l for l in str(detail).splitlines() if l.strip()]
      raise RuntimeError(f"SLURM did not accept the jobs: {lines[-1] if lines else e}") from None
    pairs = list(zip(jobs, submitted))
    echo(f"submitted {len(jobs)} jobs to SLURM (array {submitted[0].job_id.split('_')[0]}"
         f"; logs in {folder})" if submitted else "nothing to submit")
  else:
    limit = max(1, int(launch_config.local_parallelism))
    pairs = []
    for job in jobs:
      while sum(not j.done() for _, j in pairs) >= limit:
        time.sleep(0.2)
      pairs.append((job, executor.submit(runner, job)))
    echo(f"started {len(jobs)} local jobs (logs in {folder})")
  ids = [j.job_id for _, j in pairs]
  if not wait:
    return LaunchReport(launcher, len(jobs), [], ids, False)
  if launcher == "slurm" and pairs and not slurm_accounting_on():
    echo("SLURM accounting is off on this cluster: job states come from squeue and the "
         "jobs' result files, not sacct; a job that leaves the queue without a result "
         "counts as failed (its log says why)")
    failed = _wait_without_accounting(pairs, echo)
    return LaunchReport(launcher, len(jobs), failed, ids, True)
  for done_count, (job, sj) in enumerate(pairs, 1):
    try:
      sj.result()
      echo(f"job {job.name} done ({done_count}/{len(pairs)})")
    except Exception as e:  # submitit re-raises the job's error (or its death)
      failed.append((job.name, _one_line(e), str(sj.paths.stderr)))
      echo(f"job {job.name} failed: {_one_line(e)} (log: {sj.paths.stderr})")
  return LaunchReport(launcher, len(jobs), failed, ids, True)


def slurm_accounting_on() -> bool:
  """Whether this SLURM cluster keeps job accounting (what ``sacct`` reads)."""
  import subprocess
  try:
    out = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True,
                         timeout=30).stdout
  except (OSError, subprocess.SubprocessError):
    return True   # let submitit try sacct as usual
  m = re.search(r"^AccountingStorageType\s*=\s*(\S+)", out, re.MULTILINE)
  return not (m and m.group(1).endswith("/none"))


def _squeue_ids() -> set[str] | None:
  """Job ids SLURM still lists (array tasks one by one); ``None`` if squeue fails."""
  import subprocess
  try:
    p = subprocess.run(["squeue", "-h", "-r", "-o", "%i"], capture_output=True, text=True,
                       timeout=60)
  except (OSError, subprocess.SubprocessError):
    return None
  return set(p.stdout.split()) if p.returncode == 0 else None


def _wait_without_accounting(pairs, echo: Callable[[str], None], poll_s: float = 2.0,
                             grace_s: float = 20.0) -> list[tuple[str, str, str]]:
  """Waits for submitit jobs on a cluster without accounting: a job is done when its
  result file exists, and failed when squeue has not listed it for ``grace_s``
  seconds and it still has no result. Never calls sacct."""
  failed, left, gone_since, n_done = [], list(pairs), {}, 0
  while left:
    listed = _squeue_ids()
    still = []
    for job, sj in left:
      if sj.paths.result_pickle.exists():
        n_done += 1
        try:
          sj.result()
          echo(f"job {job.name} done ({n_done}/{len(pairs)})")
        except Exception as e:  # the job raised: submitit pickled its error
          failed.append((job.name, _one_line(e), str(sj.paths.stderr)))
          echo(f"job {job.name} failed: {_one_line(e)} (log: {sj.paths.stderr})")
        continue
      if listed is not None and sj.job_id not in listed:
        first = gone_since.setdefault(sj.job_id, time.time())
        if time.time() - first > grace_s:
          n_done += 1
          reason = "left the SLURM queue without a result"
          failed.append((job.name, reason, str(sj.paths.stderr)))
          echo(f"job {job.name} failed: {reason} (log: {sj.paths.stderr})")
          continue
      else:
        gone_since.pop(sj.job_id, None)
      still.append((job, sj))
    left = still
    if left:
      time.sleep(poll_s)
  return failed


# --- the one writer of results.csv ------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path):
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def read_csv(path: Path) -> list[dict]:
  import csv
  if not Path(path).exists():
    return []
  with open(path, newline="") as f:
    return list(csv.DictReader(f))


def write_csv(path: Path, rows: Sequence[dict], fields: Sequence[str]) -> None:
  """Writes ``rows`` to ``path`` atomically (temp file + ``os.replace``)."""
  import csv
  import io
  buf = io.StringIO()
  w = csv.DictWriter(buf, fieldnames=list(fields), extrasaction="ignore",
                     lineterminator="\n")
  w.writeheader()
  for r in rows:
    w.writerow({k: r.get(k, "") for k in fields})
  image_io.atomic_write_bytes(path, buf.getvalue().encode())


def merge_rows(out_dir: str | Path, csv_path: str | Path, fields: Sequence[str],
               key_of: Callable[[dict], str]) -> tuple[list[dict], int]:
  """Merges ``jobs/*.json`` into ``csv_path``; returns ``(all rows, rows added)``.

  Rows already in the CSV (same ``key_of(row)``) are kept as they are; the CSV is
  rewritten atomically under a lock, so concurrent collects never interleave.
  """
  out = Path(out_dir)
  csv_path = Path(csv_path)
  with _locked(out / ".merge.lock"):
    rows = read_csv(csv_path)
    have = {key_of(r) for r in rows}
    new = []
    for p in sorted((out / "jobs").glob("*.json")):
      if p.name.endswith(".running.json"):
        continue
      try:
        rec = json.loads(p.read_text())
      except (OSError, ValueError):
        continue
      row = {k: ("" if v is None else str(v)) for k, v in rec["row"].items()}
      if key_of(row) not in have:
        have.add(key_of(row))
        new.append(row)
    if new or not csv_path.exists():
      write_csv(csv_path, rows + new, fields)
    return rows + new, len(new)

"""Resumable training state with orbax (DESIGN §3 train/checkpoints).

A checkpoint directory belongs to one run: its ``run_id`` (a hash of the image and
the config fields that shape training) is stored beside the checkpoints, and a
directory holding another run's state is never resumed from.
"""
from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

logger = logging.getLogger("moric_jax")

# Fields that do not change the training trajectory (may differ on resume).
_IGNORED = ("image_path", "output_dir", "checkpoint", "max_pixels")


def run_id(image: np.ndarray, config: ml_collections.ConfigDict) -> str:
  """Hash of the image pixels and the training-relevant config."""
  cfg = {k: v for k, v in config.to_dict().items() if k not in _IGNORED}
  h = hashlib.sha256(np.ascontiguousarray(image, np.float32).tobytes())
  h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
  return h.hexdigest()[:16]


def from_config(config: ml_collections.ConfigDict, data: np.ndarray
                ) -> "TrainCheckpointer | None":
  """The checkpointer ``config.checkpoint`` asks for (``None`` when off); ``data`` is
  what identifies the run besides the config (the image, plus labels if any)."""
  if not config.checkpoint.dir:
    return None
  return TrainCheckpointer(config.checkpoint.dir, run_id(data, config),
                           config.checkpoint.every_steps)


class CheckpointMismatchError(ValueError):
  """The checkpoint directory holds the state of another run."""


class TrainCheckpointer:
  """Saves and restores the training carry every ``every_steps`` steps."""

  def __init__(self, directory: str | Path, rid: str, every_steps: int):
    self.directory = Path(directory).absolute()
    self.every_steps = max(1, int(every_steps))
    self.directory.mkdir(parents=True, exist_ok=True)
    meta = self.directory / "run.json"
    if meta.exists():
      old = json.loads(meta.read_text()).get("run_id")
      if old != rid:
        raise CheckpointMismatchError(
            f"checkpoint directory {self.directory} holds another run ({old}); "
            "use an empty directory or delete it")
    else:
      meta.write_text(json.dumps({"run_id": rid}))
    self._checkpointer = ocp.StandardCheckpointer()

  def _steps(self) -> list[int]:
    """Steps of the finished checkpoints (orbax writes to a temp dir, then renames)."""
    steps = []
    for p in self.directory.glob("step_*"):
      if p.is_dir() and p.name[5:].isdigit():
        steps.append(int(p.name[5:]))
    return sorted(steps)

  def restore(self, carry_like):
    """Returns ``(step, carry)`` of the latest checkpoint, or ``(0, None)``."""
    steps = self._steps()
    if not steps:
      return 0, None
    step = steps[-1]
    abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, carry_like)
    carry = self._checkpointer.restore(self.directory / f"step_{step:09d}", abstract)
    logger.warning("resuming from checkpoint at step %d (%s)", step, self.directory)
    return step, carry

  def maybe_save(self, step: int, carry, force: bool = False) -> None:
    """Saves the carry when ``step`` is a multiple of ``every_steps`` (or forced).

    Older checkpoints are removed once the new one is complete (keep one).
    """
    if not (force or step % self.every_steps == 0):
      return
    old = self._steps()
    self._checkpointer.save(self.directory / f"step_{step:09d}", carry, force=True)
    self._checkpointer.wait_until_finished()
    for s in old:
      if s != step:
        shutil.rmtree(self.directory / f"step_{s:09d}", ignore_errors=True)

  def close(self) -> None:
    self._checkpointer.wait_until_finished()
    self._checkpointer.close()

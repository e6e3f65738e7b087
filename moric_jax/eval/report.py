"""The one report of an encode: ``moric encode --json``, ``metrics.json``, a sweep row.

``build`` turns what ``api.encode`` returns (``info``) and the config into the report:
the ``FIELDS`` below, always all of them, with the same names and units in every
front end, plus ``config`` (the full config). A front end may add keys of its own
(the CLI: per-region figures, notes; ``metrics.json``: file paths), never rename or
drop one of ``FIELDS``. A sweep row (``results.csv``) is ``row(report)``: the
``FIELDS`` alone, flat.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from moric_jax.eval import metrics

# name -> what it is (units). The order is the CSV column order.
FIELDS: dict[str, str] = {
    "image": "image name (file stem)",
    "lmbda": "lambda of the base region (loss = MSE + lambda * bpp)",
    "height": "pixels", "width": "pixels",
    "bytes": "file size in bytes",
    "bpp": "8 x file bytes / pixels (the real rate)",
    "bpp_estimated": "entropy coder's ideal bits / pixels (latents + weights + contours)",
    "bpp_latents": "latent bits / pixels", "bpp_weights": "network weight bits / pixels",
    "bpp_contours": "C* contour bits / pixels", "bpp_header": "header bits / pixels",
    "psnr": "dB, 8-bit decoded image vs input",
    "ms_ssim": "MS-SSIM of the decoded image (None below 11 px)",
    "macs_per_pixel": "decoder multiply-accumulates per pixel",
    "steps": "training steps (config.num_steps)",
    "steps_per_second": "median training steps per second",
    "seed": "config.seed",
    "encode_seconds": "wall seconds of the encode (training, search, coding)",
    "decode_seconds": "wall seconds of decoding the file's bytes",
    "git_commit": "short commit of the code that encoded",
    "config_hash": "hash of the config less its per-run fields",
}
# Config fields that say where or how a run is launched, not what an encode computes
# (a sweep's ``sweep`` and ``launch`` sub-dicts among them).
PER_RUN = ("lmbda", "output_dir", "image_path", "checkpoint", "sweep", "launch")


def config_hash(config, exclude: tuple[str, ...] = PER_RUN) -> str:
  """10 hex digits identifying ``config`` less the ``exclude`` fields."""
  d = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  cfg = {k: v for k, v in d.items() if k not in exclude}
  return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:10]


def git_commit() -> str:
  """Short commit of this checkout ("" outside git)."""
  try:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, timeout=5, cwd=Path(__file__).parent).stdout.strip()
  except (OSError, subprocess.SubprocessError):
    return ""


def _ms_ssim(decoded: np.ndarray, target: np.ndarray) -> float | None:
  if min(target.shape[:2]) < 11:
    return None
  return float(metrics.ms_ssim_uint8(decoded, target))


def extras(info: dict, report: dict) -> dict[str, Any]:
  """``info``'s other JSON-able figures (per region, modes, weight steps, ...): what a
  front end may add to the report."""
  return {k: v for k, v in info.items() if k not in report and k != "reconstruction"}


def build(info: dict, config, *, image: str, target: np.ndarray,
          decoded: np.ndarray | None = None, decode_seconds: float | None = None,
          encode_seconds: float | None = None, chash: str | None = None,
          commit: str | None = None, lmbda: float | None = None) -> dict[str, Any]:
  """The report of one encode.

  ``info``: ``api.encode``'s second value; ``target``: the input as ``uint8``
  ``(H, W[, 3])``; ``decoded``: the image decoded from the file's bytes (default
  ``info["reconstruction"]``, which the decoder reproduces bit for bit): MS-SSIM is
  measured on it; PSNR is ``info``'s (over the shown pixels).
  ``decode_seconds`` / ``encode_seconds`` replace ``info``'s; ``chash`` / ``commit``
  default to ``config_hash(config)`` / ``git_commit()``; ``lmbda`` to ``config.lmbda``
  (a lambda-batched encode shares one config: its rows pass their own).
  """
  decoded = info["reconstruction"] if decoded is None else np.asarray(decoded)
  if decoded.ndim == 2 and target.ndim == 3:
    from moric_jax import image_io
    target = image_io.rgb_to_grey(target)
  rep = {
      "image": image, "lmbda": float(config.lmbda if lmbda is None else lmbda),
      "height": int(info["height"]), "width": int(info["width"]),
      "bytes": int(info["bytes"]), "bpp": float(info["bpp"]),
      "bpp_estimated": float(info["bpp_estimated"]),
      "bpp_latents": float(info["bpp_latents"]), "bpp_weights": float(info["bpp_weights"]),
      "bpp_contours": float(info["bpp_contours"]), "bpp_header": float(info["bpp_header"]),
      "psnr": float(info["psnr"]), "ms_ssim": _ms_ssim(decoded, target),
      "macs_per_pixel": float(info["macs_per_pixel"]),
      "steps": int(config.num_steps),
      "steps_per_second": (None if info.get("steps_per_second") is None
                           else float(info["steps_per_second"])),
      "seed": int(config.seed),
      "encode_seconds": float(info["encode_seconds"] if encode_seconds is None
                              else encode_seconds),
      "decode_seconds": float(info["decode_seconds"] if decode_seconds is None
                              else decode_seconds),
      "git_commit": git_commit() if commit is None else commit,
      "config_hash": config_hash(config) if chash is None else chash,
  }
  rep["config"] = config.to_dict() if hasattr(config, "to_dict") else dict(config)
  return rep


def row(report: dict) -> dict[str, Any]:
  """The flat sweep row of a report: ``FIELDS`` only."""
  return {k: report[k] for k in FIELDS}

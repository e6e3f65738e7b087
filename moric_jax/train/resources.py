"""Memory and time an encode will need, estimated before training (and refused early).

Peak resident memory of ``moric encode`` is modelled as ``BASE_BYTES`` (Python, JAX,
compiled programs) plus a cost per pixel that depends on whether the image is above
the memory bounds of ``config.train`` (``band_pixels`` / ``arm_chunk``: rematerialised
LSN bands and ARM chunks, ``Codec.render`` / ``arm.grids_bits``). The constants are
measured on this project's reference CPU (``/usr/bin/time -v moric encode IMG --steps
10``; WORKSPACE.md, "Large photos") and rounded up; the step time is the measured
seconds per pixel per step of the default model.
"""
from __future__ import annotations

import os

import ml_collections

from moric_jax.errors import ResourceError

BASE_BYTES = 1.2e9
BYTES_PER_PIXEL_WHOLE = 2600.0      # below the bounds: everything kept for backward
BYTES_PER_PIXEL_BANDED = 600.0      # above them: O(P) state, one band's activations
SECONDS_PER_PIXEL_STEP = 1.2e-6     # default model, 1 region, 2 CPU cores
REGION_SLOWDOWN = 0.5               # extra step time per object region (its box)


def available_bytes() -> int:
  """Memory the encode may use: ``MemAvailable`` of /proc/meminfo, else physical."""
  try:
    with open("/proc/meminfo") as fh:
      for line in fh:
        if line.startswith("MemAvailable:"):
          return int(line.split()[1]) * 1024
  except OSError:
    pass
  return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def estimate(height: int, width: int, config: ml_collections.ConfigDict,
             num_regions: int = 1) -> dict:
  """``{"bytes", "seconds", "banded"}``: peak memory and training time of an encode."""
  pixels = height * width
  bounds = [int(config.train[k]) for k in ("band_pixels", "arm_chunk")]
  banded = all(b > 0 for b in bounds) and pixels > min(bounds)
  per_px = BYTES_PER_PIXEL_BANDED if banded else BYTES_PER_PIXEL_WHOLE
  seconds = (SECONDS_PER_PIXEL_STEP * pixels * int(config.num_steps)
             * (1.0 + REGION_SLOWDOWN * (num_regions - 1)))
  return {"bytes": BASE_BYTES + per_px * pixels, "seconds": seconds, "banded": banded}


def check(height: int, width: int, config: ml_collections.ConfigDict,
          num_regions: int = 1) -> dict:
  """``estimate`` plus ``available``; raises ``ResourceError`` (one line) when the
  estimate exceeds ``config.max_memory_bytes`` (if set) or the machine's memory."""
  est = estimate(height, width, config, num_regions)
  limit = int(config.max_memory_bytes) or available_bytes()
  est["available"] = limit
  if est["bytes"] > limit:
    raise ResourceError(
        f"a {width}x{height} encode needs about {est['bytes'] / 1e9:.1f} GB of memory, "
        f"only {limit / 1e9:.1f} GB are available (use a smaller image, or set "
        f"config.max_memory_bytes / free memory)")
  return est

"""Fuzz the ``.moric`` decoder with mutated files; print counts per outcome.

  python -m experiments.fuzz_decoder --count=100000 --seed=0 [--time-limit=20]
      [--files a.moric b.moric ...] [--steps=10]

Base files: the given ``--files``, or tiny images encoded here with very few steps
(8x8 RGB, 6x10 grey, 5x7 with an explicit small architecture, and a 12x12 3-region
file with a GMN: contours, GMN weights, object layers). Each case mutates one of them
(bit flips, byte changes, truncations, insertions, deletions, duplicated or spliced
sections, random bytes, crafted headers with absurd fields) and, for most byte-level
mutations, refits the CRC of the section it changed (every section of a file has its
own CRC) so that the parser's own checks are exercised.
Every case must end in a normal decode or ``BitstreamError`` within ``--time-limit``
seconds; anything else (another exception, a hang) is printed and makes the exit
status 1.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import re
import resource
import signal
import struct
import sys
import time
import zlib

import numpy as np

from moric_jax.coding import bitstream
from moric_jax.errors import BitstreamError

BYTE_KINDS = ("bitflip", "byteset", "truncate", "insert", "delete", "duplicate", "splice")
KINDS = BYTE_KINDS + ("random", "header")


class Hang(Exception):
  """Raised by the alarm when one decode runs past the time limit."""


def refit_crc(body: bytes) -> bytes:
  """``body`` (a section without its CRC) + a matching CRC32."""
  return bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    b, n = n & 0x7F, n >> 7
    out.append(b | (0x80 if n else 0))
    if not n:
      return bytes(out)


def craft(f: bitstream.MoricFile, *, height=None, width=None, mode=None,
          num_regions=None, regions_byte=None, arch_id=None, arch_bytes=None,
          frac_bits=None, deltas=None, scales=None, payload=None, payload_len=None,
          modulation_bytes=None, contours=None, layer_sizes=None,
          layers: list[bytes] | None = None, factors=None) -> bytes:
  """A file with arbitrary (possibly absurd) fields and valid CRCs.

  Unlike ``bitstream.write`` nothing is checked: varints may be huge, counts may
  disagree with the data, ``arch_bytes`` replaces the explicit architecture block,
  ``layers`` the object layers' bytes (each CRC'd as given).
  """
  out = bytearray(bitstream.MAGIC)
  out.append(bitstream.MORIC_VERSION if f.modulation == "moric" else 5)   # as bitstream.write
  out += _varint(f.height if height is None else height)
  out += _varint(f.width if width is None else width)
  out.append((f.mode if mode is None else mode) & 0xFF)
  r = f.num_regions if num_regions is None else num_regions
  rb = (r | (0x80 if f.object_only else 0)) if regions_byte is None else regions_byte
  out.append(rb & 0xFF)
  builtin = next((i for i, b in bitstream.BUILTIN_ARCHS.items() if b == f.arch), 0)
  aid = builtin if arch_id is None else arch_id
  out.append(aid & 0xFF)
  if arch_bytes is not None:
    out += arch_bytes
  elif aid == 0:
    out += _explicit_block(f.arch)
  if modulation_bytes is not None:
    out += modulation_bytes
  elif f.num_regions > 1:
    out.append(bitstream.MODULATIONS.index(f.modulation))
    if f.has_gmn:
      out += bytes([f.gmn_width, f.mod_width, bitstream.ACTIVATIONS.index(f.gmn_activation)])
  out.append((f.arm_frac_bits if frac_bits is None else frac_bits) & 0xFF)
  d = (f.delta_arm, f.delta_lsn0) if deltas is None else deltas
  out += struct.pack("<f", d[0])
  if f.has_gmn:
    out += struct.pack("<f", f.delta_gmn)
  if f.has_upsampling:
    out += struct.pack("<f", f.delta_upsampling)
  layer_bytes = ([bitstream.layer_bytes(l) for l in f.layers] if layers is None
                 else [refit_crc(l) for l in layers])
  if f.num_regions > 1:
    for c in (f.contours if contours is None else contours):
      out += _varint(len(c)) + c
    out += struct.pack("<f", f.lmbda0)
    for n in ([len(b) for b in layer_bytes] if layer_sizes is None else layer_sizes):
      out += _varint(n)
  if not f.object_only:
    out += struct.pack("<f", d[1])
  sc = list(f.base_scales) if scales is None else list(scales)
  out.append(len(sc) & 0xFF)
  out += bytes(s & 0xFF for s in sc)
  fs = list(bitstream.resolve_factors(f.base_factors, len(f.base_scales)))
  fs = fs[:len(sc)] + [16] * (len(sc) - len(fs)) if factors is None else list(factors)
  out += bytes(j & 0xFF for j in fs)
  pl = f.base_payload if payload is None else payload
  out += _varint(len(pl) if payload_len is None else payload_len)
  out += pl
  return refit_crc(bytes(out)) + b"".join(layer_bytes)


def _explicit_block(a: bitstream.Architecture) -> bytes:
  return bitstream.explicit_arch_fields(a)


def _absurd_int(rng: np.random.Generator, typical: int) -> int:
  choices = [0, 1, 2, 3, typical, typical + 1, typical - 1, 2 * typical, 255, 256,
             4095, 4096, 4097, 1 << 12, (1 << 15) - 1, 1 << 15, (1 << 15) + 1,
             1 << 16, 1 << 20, 1 << 28, (1 << 31) - 1, 1 << 31, 1 << 40, 1 << 63,
             int(rng.integers(1, 64)), int(rng.integers(1, 1024)),
             int(np.exp(rng.uniform(0, np.log(1 << 15))))]
  return max(0, choices[int(rng.integers(len(choices)))])


def _absurd_float(rng: np.random.Generator, typical: float) -> float:
  choices = [0.0, -typical, typical, typical * 2, 1e-9, 1e-30, 1e3, 1e30, float("inf"),
             float("nan"), -0.0, 2.0**-149, 3.4e38]
  return float(choices[int(rng.integers(len(choices)))])


def header_mutation(rng: np.random.Generator, data: bytes) -> bytes:
  """Rewrites 1-3 header fields of a valid file to odd values (CRC refitted)."""
  header = bitstream.read(data)
  payload = header.base_payload
  fields = {}
  for _ in range(int(rng.integers(1, 4))):
    f = int(rng.integers(11))
    if f == 0:
      fields["height"] = _absurd_int(rng, header.height)
    elif f == 1:
      fields["width"] = _absurd_int(rng, header.width)
    elif f == 2:  # both sides: a large image claimed by a small payload
      side = _absurd_int(rng, 1024)
      fields["height"], fields["width"] = side, _absurd_int(rng, side)
    elif f == 3:
      fields["mode"] = int(rng.integers(4)) if rng.random() < 0.7 else int(rng.integers(256))
    elif f == 4:
      if rng.random() < 0.5:
        fields["regions_byte"] = int(rng.integers(256))
      elif header.num_regions > 1:
        k = int(rng.integers(4))
        if k == 0:
          fields["layer_sizes"] = [_absurd_int(rng, 40) for _ in header.layers]
        elif k == 1:
          fields["contours"] = [bytes(rng.integers(0, 256, int(rng.integers(0, 40)),
                                                   dtype=np.uint8)) for _ in header.contours]
        elif k == 2:
          fields["modulation_bytes"] = bytes(rng.integers(0, 256, int(rng.integers(0, 5)),
                                                          dtype=np.uint8))
        else:
          fields["layers"] = [bytes(rng.integers(0, 256, int(rng.integers(0, 60)),
                                                 dtype=np.uint8)) for _ in header.layers]
      else:
        fields["num_regions"] = int(rng.integers(256))
    elif f == 5:
      fields["arch_id"] = (int(rng.integers(len(bitstream.BUILTIN_ARCHS) + 1))
                           if rng.random() < 0.7 else int(rng.integers(256)))
      if rng.random() < 0.5:
        fields["arch_id"] = 0
        a = header.arch
        a = dataclasses.replace(
            a, num_grids=int(rng.integers(0, 20)) if rng.random() < 0.5 else a.num_grids,
            context_rows=int(rng.integers(0, 10)) if rng.random() < 0.3 else a.context_rows,
            context_cols=int(rng.integers(0, 10)) if rng.random() < 0.3 else a.context_cols,
            arm_hidden=tuple(int(x) for x in rng.integers(0, 256, int(rng.integers(0, 10))))
            if rng.random() < 0.3 else a.arm_hidden,
            lsn_hidden=tuple(int(x) for x in rng.integers(0, 256, int(rng.integers(0, 10))))
            if rng.random() < 0.3 else a.lsn_hidden,
            lsn_num_res_convs=int(rng.integers(0, 12)) if rng.random() < 0.3
            else a.lsn_num_res_convs,
            lsn_kernel_size=int(rng.integers(0, 9)) if rng.random() < 0.3
            else a.lsn_kernel_size,
            q_step=_absurd_float(rng, a.q_step) if rng.random() < 0.2 else a.q_step,
            base_gain=_absurd_float(rng, a.base_gain) if rng.random() < 0.2 else a.base_gain,
            gain_growth=_absurd_float(rng, a.gain_growth) if rng.random() < 0.2
            else a.gain_growth,
            upsampling=str(rng.choice(bitstream.UPSAMPLINGS)) if rng.random() < 0.3
            else a.upsampling)
        try:
          fields["arch_bytes"] = _explicit_block(a)
        except (ValueError, struct.error):
          fields["arch_bytes"] = bytes(rng.integers(0, 256, int(rng.integers(0, 64)),
                                                    dtype=np.uint8))
    elif f == 6:
      fields["frac_bits"] = int(rng.integers(256))
    elif f == 7:
      fields["deltas"] = (_absurd_float(rng, header.delta_arm),
                          _absurd_float(rng, header.delta_lsn0))
    elif f == 8:
      n = int(rng.integers(256)) if rng.random() < 0.5 else len(header.base_scales)
      fields["scales"] = [int(x) for x in rng.integers(0, 256 if rng.random() < 0.3 else 88, n)]
    elif f == 9:
      fields["payload_len"] = _absurd_int(rng, len(payload))
    else:
      cut = int(rng.integers(0, len(payload) + 1))
      payload = payload[:cut] if rng.random() < 0.5 else (
          payload + bytes(rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8)))
      fields["payload"] = payload
  return craft(header, **fields)


def mutate(rng: np.random.Generator, data: bytes, others: list[bytes]
           ) -> tuple[str, bytes]:
  """One random mutation of ``data`` -> ``(kind, bytes)``."""
  kind = KINDS[int(rng.integers(len(KINDS)))]
  if kind == "header":
    return kind, header_mutation(rng, data)
  if kind == "random":
    n = int(rng.integers(0, 700))
    body = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if rng.random() < 0.5:
      body = bitstream.MAGIC + bytes([bitstream.VERSION]) + body
    if rng.random() < 0.5:
      return kind + "+crc", refit_crc(body)
    return kind, body
  refit = rng.random() < 0.7
  spans = bitstream.section_spans(data)
  lo, hi = spans[int(rng.integers(len(spans)))] if refit else (0, len(data))
  b = bytearray(data[lo:hi - 4] if refit else data)
  n = len(b)
  if kind == "bitflip":
    for _ in range(int(rng.integers(1, 5))):
      i = int(rng.integers(n))
      b[i] ^= 1 << int(rng.integers(8))
  elif kind == "byteset":
    for _ in range(int(rng.integers(1, 5))):
      b[int(rng.integers(n))] = int(rng.integers(256))
  elif kind == "truncate":
    del b[int(rng.integers(n)):]
  elif kind == "insert":
    i = int(rng.integers(n + 1))
    b[i:i] = rng.integers(0, 256, int(rng.integers(1, 17)), dtype=np.uint8).tobytes()
  elif kind == "delete":
    i = int(rng.integers(n))
    del b[i:i + int(rng.integers(1, 17))]
  elif kind == "duplicate":
    i = int(rng.integers(n))
    seg = b[i:i + int(rng.integers(1, 65))]
    j = int(rng.integers(n + 1))
    b[j:j] = seg
  elif kind == "splice":
    other = others[int(rng.integers(len(others)))]
    other = other[:-4] if refit else other
    i, j = int(rng.integers(n + 1)), int(rng.integers(len(other) + 1))
    b = b[:i] + bytearray(other[j:])
  if refit:
    return kind + "+crc", data[:lo] + refit_crc(bytes(b)) + data[hi:]
  return kind, bytes(b)


def _category(message: str) -> str:
  """A BitstreamError message without its numbers (for counting)."""
  m = re.sub(r"-?\d+(\.\d+)?(e[-+]?\d+)?", "N", message)
  m = re.sub(r"\(.*\)", "(...)", m)
  return m[:70]


def decode_case(data: bytes, time_limit: float, decode_fn=None) -> tuple[str, float]:
  """Decodes ``data`` -> ``(outcome, seconds)``; outcome "ok", "BitstreamError: ..."
  or "UNEXPECTED ..." (another exception or a hang past ``time_limit``)."""
  if decode_fn is None:
    from moric_jax import api
    decode_fn = api.decode

  def on_alarm(signum, frame):
    raise Hang(f"decode ran past {time_limit} s")

  old = signal.signal(signal.SIGALRM, on_alarm)
  signal.setitimer(signal.ITIMER_REAL, time_limit)
  t0 = time.perf_counter()
  try:
    decode_fn(data)
    outcome = "ok"
  except BitstreamError as e:
    outcome = "BitstreamError: " + _category(str(e))
  except Hang as e:
    outcome = f"UNEXPECTED hang: {e}"
  except Exception as e:  # noqa: BLE001 - that is what we look for
    outcome = f"UNEXPECTED {type(e).__name__}: {e}"
  finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, old)
  return outcome, time.perf_counter() - t0


@dataclasses.dataclass
class Report:
  count: int = 0
  by_outcome: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  by_kind: collections.Counter = dataclasses.field(default_factory=collections.Counter)
  unexpected: list = dataclasses.field(default_factory=list)
  max_seconds: float = 0.0
  slowest_kind: str = ""
  seconds: float = 0.0


def run(files: list[bytes], count: int, seed: int, time_limit: float = 20.0,
        progress_every: int = 0, keep_failures: int = 50,
        max_seconds: float | None = None) -> Report:
  """``count`` mutations of ``files`` (fewer if ``max_seconds`` runs out); the tally."""
  rng = np.random.default_rng(seed)
  rep = Report()
  t0 = time.perf_counter()
  for n in range(count):
    if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
      print(f"  stopping after {n} cases: --max-minutes reached", flush=True)
      break
    k = int(rng.integers(len(files)))
    kind, data = mutate(rng, files[k], files)
    outcome, secs = decode_case(data, time_limit)
    rep.count += 1
    rep.by_outcome[outcome if not outcome.startswith("UNEXPECTED") else
                   outcome.split(":")[0]] += 1
    rep.by_kind[(kind, "ok" if outcome == "ok" else outcome.split(":")[0])] += 1
    if secs > rep.max_seconds:
      rep.max_seconds, rep.slowest_kind = secs, f"{kind} -> {outcome}"
    if outcome.startswith("UNEXPECTED") and len(rep.unexpected) < keep_failures:
      rep.unexpected.append((n, kind, outcome, data))
    if progress_every and (n + 1) % progress_every == 0:
      print(f"  {n + 1}/{count} cases, {time.perf_counter() - t0:.0f} s, "
            f"unexpected {sum(v for o, v in rep.by_outcome.items() if o.startswith('UNEXPECTED'))}",
            flush=True)
  rep.seconds = time.perf_counter() - t0
  return rep


def make_base_files(steps: int = 10) -> list[bytes]:
  """Tiny real encodes: 8x8 RGB, 6x10 grey, 5x7 with an explicit small architecture,
  12x12 with two objects (3 regions, progressive concatenation: contours, GMN)."""
  from moric_jax import api, presets
  rng = np.random.default_rng(0)
  files = []
  for (h, w, grey, small) in [(8, 8, False, False), (6, 10, True, False),
                              (5, 7, False, True)]:
    config = presets.fast()
    config.num_steps = steps
    if small:
      config.model.latents = dict(num_grids=3, q_step=0.3, base_gain=1.0, gain_growth=2.0)
      config.model.arm_context = dict(rows=2, cols=1)
      config.model.arm = dict(hidden=(8,), activation="relu")
      config.model.lsn = dict(hidden=(6,), num_res_convs=1, kernel_size=3,
                              activation="gelu")
      config.model.upsampling = "bilinear"   # the other files use learned filters
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([0.5 + 0.4 * np.sin(5 * x), 0.5 + 0.4 * np.cos(4 * y + x),
                    0.5 + 0.2 * rng.random((h, w))], -1).astype(np.float32)
    data, _ = api.encode(img[..., 0] if grey else img, config)
    files.append(data)
  files.append(multi_region_file(steps))
  return files


def multi_region_file(steps: int = 10) -> bytes:
  """A 12x12 3-region file (two objects, progressive concatenation)."""
  from moric_jax import api, presets
  config = presets.fast()
  config.num_steps = steps
  config.model.modulation = "progressive_concat"
  y, x = np.mgrid[0:12, 0:12] / 12
  img = np.stack([0.5 + 0.4 * np.sin(5 * x), 0.5 + 0.4 * np.cos(4 * y + x),
                  0.5 + 0.3 * y], -1).astype(np.float32)
  labels = np.zeros((12, 12), np.int32)
  labels[1:6, 2:8] = 1
  labels[6:11, 5:11] = 2
  return api.encode(img, config, labels=labels)[0]


def print_report(rep: Report) -> None:
  print(f"{rep.count} cases in {rep.seconds:.0f} s "
        f"({rep.count / max(rep.seconds, 1e-9):.0f}/s); slowest {rep.max_seconds:.2f} s "
        f"({rep.slowest_kind[:120]})")
  print("outcomes:")
  for o, v in rep.by_outcome.most_common():
    print(f"  {v:7d}  {o}")
  print("by mutation kind (kind, outcome):")
  for (k, o), v in sorted(rep.by_kind.items()):
    print(f"  {v:7d}  {k:16s} {o}")
  if rep.unexpected:
    print(f"UNEXPECTED outcomes ({len(rep.unexpected)} shown):")
    for n, kind, outcome, data in rep.unexpected:
      print(f"  case {n} [{kind}] {outcome[:300]}  file={data[:64].hex()}...")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--count", type=int, default=10000)
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--time-limit", type=float, default=20.0,
                 help="seconds one decode may take before it counts as a hang")
  p.add_argument("--steps", type=int, default=10, help="training steps of the base files")
  p.add_argument("--files", nargs="*", help=".moric files to mutate (default: encode)")
  p.add_argument("--progress-every", type=int, default=5000)
  p.add_argument("--max-minutes", type=float, default=None,
                 help="stop early (and report) after this much fuzzing wall time")
  args = p.parse_args(argv)
  rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  if args.files:
    from pathlib import Path
    files = [Path(f).read_bytes() for f in args.files]
  else:
    t = time.perf_counter()
    files = make_base_files(args.steps)
    print(f"encoded {len(files)} base files ({[len(f) for f in files]} bytes) in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
  from moric_jax import api
  for f in files:
    api.decode(f)  # valid, and compiles the synthesis of each size
  rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  rep = run(files, args.count, args.seed, args.time_limit, args.progress_every,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes)
  rss2 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  print_report(rep)
  print(f"peak RSS: {rss1 / 1024:.0f} MiB before fuzzing, {rss2 / 1024:.0f} MiB after "
        f"(start {rss0 / 1024:.0f} MiB)")
  bad = sum(v for o, v in rep.by_outcome.items() if o.startswith("UNEXPECTED"))
  print("RESULT:", "FAIL" if bad else "PASS", f"({bad} unexpected)")
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())

"""The ``.moric`` container: header fields, one entropy-coded payload, CRC32.

Layout (version 1; integers little-endian, ``varint`` = LEB128)::

  magic  b"MRC"                         3 bytes
  version                               u8  (= 1)
  height, width                         varint, varint
  mode                                  u8  (0 = RGB, 1 = grey; 8 bits per channel)
  num_regions                           u8  (= 1: single region / background)
  arch_id                               u8  (1, 2 = built-in architectures, 0 = explicit)
  [explicit architecture, arch_id 0]:
    num_grids u8, q_step f64, base_gain f64, gain_growth f64,
    context rows u8, cols u8,
    arm: n u8, widths n*u8, activation u8,
    lsn: n u8, widths n*u8, num_res_convs u8, kernel_size u8, activation u8
  arm_weight_frac_bits                  u8  (integer ARM: W_int = round(w * 2**F))
  delta_arm, delta_lsn                  f32, f32 (weight quantization steps)
  num_tensors                           u8, then one u8 table scale index per tensor
  payload length                        varint, then the payload (ANS words, u32 LE)
  crc32                                 u32 over every byte before it

The payload holds, in decode order: ARM tensors, LSN tensors, then the latents front
by front (``wavefront.py``). Every field is checked against sane limits and the file
length before anything is allocated; any problem raises ``BitstreamError``.

Grey images (mode 1) are coded like RGB images whose three channels are equal; the
decoder returns the rounded mean of the three synthesized channels as ``(H, W)``.

Limits: ``read`` refuses sides above ``MAX_SIDE`` and sizes above ``MAX_PIXELS`` (what
the format can hold); the decoder (``api.decode``) additionally refuses images above
``DEFAULT_DECODE_MAX_PIXELS`` unless asked for more, and payloads too short to hold the
claimed number of symbols (``min_payload_bits``), before allocating anything sized by
the image.
"""
from __future__ import annotations

import dataclasses
import struct
import zlib

import numpy as np

from moric_jax.coding import integer_arm, tables
from moric_jax.errors import BitstreamError

MAGIC = b"MRC"
VERSION = 1
MODE_RGB8 = 0
MODE_L8 = 1
MODE_NAMES = {MODE_RGB8: "RGB8", MODE_L8: "L8"}
ACTIVATIONS = ("relu", "gelu")
MAX_SIDE = 1 << 15
MAX_PIXELS = 1 << 28
MAX_PAYLOAD = 1 << 31
DEFAULT_DECODE_MAX_PIXELS = 4096 * 4096


@dataclasses.dataclass(frozen=True)
class Architecture:
  """What the decoder needs to rebuild the networks (mirrors ``config.model``)."""
  num_grids: int = 7
  q_step: float = 0.4
  base_gain: float = 1.0
  gain_growth: float = 2.0
  context_rows: int = 3
  context_cols: int = 3
  arm_hidden: tuple[int, ...] = (18, 18)
  arm_activation: str = "relu"
  lsn_hidden: tuple[int, ...] = (18, 18)
  lsn_num_res_convs: int = 2
  lsn_kernel_size: int = 3
  lsn_activation: str = "gelu"

  def model_config(self):
    """``config.model`` ConfigDict for ``Codec.from_config``."""
    import ml_collections
    c = ml_collections.ConfigDict()
    c.latents = dict(num_grids=self.num_grids, q_step=self.q_step,
                     base_gain=self.base_gain, gain_growth=self.gain_growth)
    c.arm_context = dict(rows=self.context_rows, cols=self.context_cols)
    c.arm = dict(hidden=tuple(self.arm_hidden), activation=self.arm_activation)
    c.lsn = dict(hidden=tuple(self.lsn_hidden), num_res_convs=self.lsn_num_res_convs,
                 kernel_size=self.lsn_kernel_size, activation=self.lsn_activation)
    return c

  @classmethod
  def from_model_config(cls, model) -> "Architecture":
    """``config.model`` -> Architecture; ValueError for settings a file cannot hold."""
    known = {"latents": {"num_grids", "q_step", "base_gain", "gain_growth"},
             "arm_context": {"rows", "cols"}, "arm": {"hidden", "activation"},
             "lsn": {"hidden", "num_res_convs", "kernel_size", "activation"}}
    for part, keys in known.items():
      extra = set(dict(model[part]).keys()) - keys
      if extra:
        raise ValueError(f"config.model.{part} has settings the bitstream cannot "
                         f"store: {sorted(extra)}")
    lat, arm, lsn = model.latents, model.arm, model.lsn
    arch = cls(num_grids=int(lat.num_grids), q_step=float(lat.q_step),
               base_gain=float(lat.base_gain), gain_growth=float(lat.gain_growth),
               context_rows=int(model.arm_context.rows),
               context_cols=int(model.arm_context.cols),
               arm_hidden=tuple(int(w) for w in arm.hidden),
               arm_activation=str(arm.get("activation", "relu")),
               lsn_hidden=tuple(int(w) for w in lsn.hidden),
               lsn_num_res_convs=int(lsn.get("num_res_convs", 2)),
               lsn_kernel_size=int(lsn.get("kernel_size", 3)),
               lsn_activation=str(lsn.get("activation", "gelu")))
    if arch.arm_activation != "relu":
      raise ValueError("the integer ARM needs activation 'relu'")
    arch.validate(ValueError)
    return arch

  def validate(self, error=BitstreamError) -> None:
    checks = [
        (1 <= self.num_grids <= 12, f"num_grids {self.num_grids}"),
        (0 < self.q_step < 1e3, f"q_step {self.q_step}"),
        (0 < self.base_gain < 1e6 and 0 < self.gain_growth < 1e3, "latent gains"),
        (0 <= self.context_rows <= 8 and 0 <= self.context_cols <= 8
         and self.context_rows * (2 * self.context_cols + 1) + self.context_cols >= 1
         and self.context_rows * (2 * self.context_cols + 1) + self.context_cols
         <= integer_arm.MAX_WIDTH, f"context {self.context_rows}/{self.context_cols}"),
        (len(self.arm_hidden) <= 8 and all(1 <= w <= integer_arm.MAX_WIDTH
                                            for w in self.arm_hidden),
         f"ARM widths {self.arm_hidden}"),
        (self.arm_activation == "relu", f"ARM activation {self.arm_activation}"),
        (len(self.lsn_hidden) <= 8 and all(1 <= w <= 255 for w in self.lsn_hidden),
         f"LSN widths {self.lsn_hidden}"),
        (0 <= self.lsn_num_res_convs <= 8, f"LSN res convs {self.lsn_num_res_convs}"),
        (self.lsn_kernel_size in (1, 3, 5, 7), f"LSN kernel {self.lsn_kernel_size}"),
        (self.lsn_activation in ACTIVATIONS, f"LSN activation {self.lsn_activation}"),
    ]
    for ok, what in checks:
      if not ok:
        raise error(f"unsupported architecture: {what}")


# Built-in architectures (a file names one with a single byte). Never change an
# entry: add a new id. 1: C3-sized with gains 2^k; 2: the same with a flat gain of 20
# (the default preset since it was measured better, WORKSPACE.md).
BUILTIN_ARCHS = {1: Architecture(), 2: Architecture(base_gain=20.0, gain_growth=1.0)}


@dataclasses.dataclass(frozen=True)
class Header:
  height: int
  width: int
  arch: Architecture
  arm_frac_bits: int
  delta_arm: float      # float32 values (as stored)
  delta_lsn: float
  scales: tuple[int, ...]   # table scale index per weight tensor (ARM then LSN)
  mode: int = MODE_RGB8
  num_regions: int = 1


def f32(x: float) -> float:
  """The value a float takes after a round trip through the header (float32)."""
  return struct.unpack("<f", struct.pack("<f", x))[0]


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    out.append(b | (0x80 if n else 0))
    if not n:
      return bytes(out)


def write_arch(a: Architecture) -> bytes:
  """Architecture field: a built-in id, or 0 and the explicit fields."""
  arch_id = next((i for i, b in BUILTIN_ARCHS.items() if b == a), 0)
  out = bytearray([arch_id])
  if arch_id == 0:
    out.append(a.num_grids)
    out += struct.pack("<ddd", a.q_step, a.base_gain, a.gain_growth)
    out += bytes([a.context_rows, a.context_cols, len(a.arm_hidden), *a.arm_hidden,
                  ACTIVATIONS.index(a.arm_activation), len(a.lsn_hidden), *a.lsn_hidden,
                  a.lsn_num_res_convs, a.lsn_kernel_size,
                  ACTIVATIONS.index(a.lsn_activation)])
  return bytes(out)


def read_arch(r: "_Reader") -> Architecture:
  """Parses and validates the field ``write_arch`` writes."""
  arch_id = r.u8("architecture id")
  if arch_id == 0:
    num_grids = r.u8("num_grids")
    q_step, base_gain, growth = (r.f64("q_step"), r.f64("base_gain"),
                                 r.f64("gain_growth"))
    rows, cols = r.u8("context rows"), r.u8("context cols")
    arm_hidden = tuple(r.take(r.u8("ARM depth"), "ARM widths"))
    arm_act = r.u8("ARM activation")
    lsn_hidden = tuple(r.take(r.u8("LSN depth"), "LSN widths"))
    res, ks, lsn_act = r.u8("LSN res convs"), r.u8("LSN kernel"), r.u8("LSN activation")
    if arm_act >= len(ACTIVATIONS) or lsn_act >= len(ACTIVATIONS):
      raise BitstreamError("unknown activation id")
    arch = Architecture(num_grids, q_step, base_gain, growth, rows, cols, arm_hidden,
                        ACTIVATIONS[arm_act], lsn_hidden, res, ks, ACTIVATIONS[lsn_act])
  elif arch_id in BUILTIN_ARCHS:
    arch = BUILTIN_ARCHS[arch_id]
  else:
    raise BitstreamError(f"unknown built-in architecture id {arch_id}")
  arch.validate(BitstreamError)
  return arch


def varint(n: int) -> bytes:
  """LEB128 encoding of ``n >= 0``."""
  return _varint(n)


def check_container(data, version: int) -> None:
  """Magic, ``version`` and CRC32 of ``.moric`` bytes; ``BitstreamError`` otherwise."""
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise BitstreamError("expected bytes")
  data = bytes(data)
  if len(data) < len(MAGIC) + 1 + 4:
    raise BitstreamError(f"file too short ({len(data)} bytes) to be a .moric file")
  if data[:len(MAGIC)] != MAGIC:
    raise BitstreamError("not a .moric file (bad magic bytes)")
  if data[len(MAGIC)] != version:
    raise BitstreamError(f"unsupported .moric version {data[len(MAGIC)]} (this decoder "
                         f"reads version {version})")
  crc_stored = struct.unpack("<I", data[-4:])[0]
  if zlib.crc32(data[:-4]) & 0xFFFFFFFF != crc_stored:
    raise BitstreamError("CRC mismatch: the file is corrupt or truncated")


def file_version(data) -> int:
  """The version byte of ``.moric`` bytes; ``VERSION`` when there is none to read
  (the version-1 reader then says what is wrong with the bytes)."""
  if not isinstance(data, (bytes, bytearray, memoryview)):
    return VERSION
  head = bytes(data[:len(MAGIC) + 1])
  if len(head) < len(MAGIC) + 1 or head[:len(MAGIC)] != MAGIC:
    return VERSION
  return head[len(MAGIC)]


def write(header: Header, payload: bytes) -> bytes:
  """Serializes a header and payload into ``.moric`` bytes."""
  a = header.arch
  out = bytearray(MAGIC)
  out.append(VERSION)
  out += _varint(header.height) + _varint(header.width)
  out += bytes([header.mode, header.num_regions])
  out += write_arch(a)
  out.append(header.arm_frac_bits)
  out += struct.pack("<ff", header.delta_arm, header.delta_lsn)
  out.append(len(header.scales))
  out += bytes(header.scales)
  out += _varint(len(payload))
  out += payload
  out += struct.pack("<I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
  return bytes(out)


class _Reader:
  def __init__(self, data: bytes, end: int):
    self.data, self.pos, self.end = data, 0, end

  def take(self, n: int, what: str) -> bytes:
    if n < 0 or self.pos + n > self.end:
      raise BitstreamError(f"truncated file: cannot read {what}")
    b = self.data[self.pos:self.pos + n]
    self.pos += n
    return b

  def u8(self, what: str) -> int:
    return self.take(1, what)[0]

  def varint(self, what: str, limit: int) -> int:
    n, shift = 0, 0
    for _ in range(10):
      b = self.u8(what)
      n |= (b & 0x7F) << shift
      shift += 7
      if not b & 0x80:
        if n > limit:
          raise BitstreamError(f"{what} = {n} exceeds the limit {limit}")
        return n
    raise BitstreamError(f"malformed {what}")

  def f32(self, what: str) -> float:
    return struct.unpack("<f", self.take(4, what))[0]

  def f64(self, what: str) -> float:
    return struct.unpack("<d", self.take(8, what))[0]


def read(data: bytes) -> tuple[Header, bytes]:
  """Parses and validates ``.moric`` bytes -> ``(Header, payload)``."""
  check_container(data, VERSION)
  data = bytes(data)
  r = _Reader(data, len(data) - 4)
  r.pos = len(MAGIC) + 1
  height = r.varint("height", MAX_SIDE)
  width = r.varint("width", MAX_SIDE)
  if height < 1 or width < 1 or height * width > MAX_PIXELS:
    raise BitstreamError(f"bad image size {width}x{height}")
  mode = r.u8("mode")
  if mode not in MODE_NAMES:
    raise BitstreamError(f"unsupported image mode {mode}")
  num_regions = r.u8("num_regions")
  if num_regions != 1:
    raise BitstreamError(f"unsupported number of regions {num_regions}")
  arch = read_arch(r)
  frac_bits = r.u8("ARM fraction bits")
  if not integer_arm.MIN_FRAC_BITS <= frac_bits <= integer_arm.MAX_FRAC_BITS:
    raise BitstreamError(f"bad ARM fraction bits {frac_bits}")
  delta_arm, delta_lsn = r.f32("ARM step"), r.f32("LSN step")
  for d in (delta_arm, delta_lsn):
    if not 1e-8 < d < 1e3:
      raise BitstreamError(f"bad weight quantization step {d}")
  num_tensors = r.u8("number of tensors")
  scales = tuple(r.take(num_tensors, "tensor scales"))
  if any(s >= tables.NUM_WEIGHT_SCALES for s in scales):
    raise BitstreamError("weight scale index out of range")
  n_payload = r.varint("payload length", MAX_PAYLOAD)
  payload = r.take(n_payload, "payload")
  if r.pos != r.end:
    raise BitstreamError(f"{r.end - r.pos} unexpected bytes after the payload")
  header = Header(height, width, arch, frac_bits, delta_arm, delta_lsn, scales, mode,
                  num_regions)
  return header, payload


def header_size(data: bytes) -> int:
  """Bytes of ``data`` that are not entropy-coded payload (header + length + CRC)."""
  _, payload = read(data)
  return len(data) - len(payload)


def min_payload_bits(scales, tensor_sizes, num_latents: int) -> float:
  """A lower bound on the payload bits of a valid file (for refusing bombs early).

  Every coded symbol costs at least ``-log2(p_max)`` bits, ``p_max`` the largest
  probability in its table (weights: the tensor's own scale row; latents: any latent
  row). ANS spends at least that many bits of its state per decoded symbol, so a
  payload shorter than this bound cannot hold the claimed weights and latents. The
  result is scaled down by 1% (and 64 bits) to stay clear of rounding in the coder.
  """
  counts = tables.load_counts()
  one = float(1 << tables.TABLE_PRECISION)
  weight_max = counts["weight"].max(axis=1).astype(np.float64)
  latent_max = float(counts["latent"].max())
  bits = 0.0
  for s, n in zip(scales, tensor_sizes):
    bits += n * -np.log2(weight_max[s] / one)
  bits += num_latents * -np.log2(latent_max / one)
  return max(0.0, 0.99 * bits - 64.0)

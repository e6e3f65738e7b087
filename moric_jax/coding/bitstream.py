"""The ``.moric`` file (versions 5 and 6, one format for one region or many; DESIGN §2.7).

Layout (integers little-endian, ``varint`` = LEB128; ``scales`` = ``u8`` count, then
one ``u8`` weight-table scale index per tensor, then one ``u8`` step factor per tensor:
tensor ``t`` of a network with step ``delta`` is coded on
``weights_coding.tensor_steps``: ``delta * factor_t / 16``)::

  base section
    magic b"MRC", version u8 (6 with the ``moric`` modulation, else 5)
    height, width                    varint, varint
    mode                             u8  (0 = RGB, 1 = grey; 8 bits per channel)
    regions                          u8  (bits 0-6: R = 1..16 regions, background
                                          included; bit 7: object-only, no background)
    architecture                     u8 built-in id (1, 2, 3), or 0 + explicit fields
                                     (the last: upsampling u8, 0 bilinear, 1 learned)
    [R > 1] modulation u8 (index in modulation.SCHEMES)
            [modulation != none] GMN width u8, modulation width u8, GMN activation u8
    arm_weight_frac_bits             u8  (integer ARM: W_int = round(w * 2**F))
    delta_arm                        f32 (weight quantization step)
    [GMN] delta_gmn                  f32
    [learned upsampling] delta_ups   f32
    [R > 1] per object r = 1..R-1: contour varint length + C* bytes;
            then lambda_0 f32, then per object its layer's length (varint)
    [not object-only] delta_lsn_0    f32
    scales                           ARM, GMN, upsampling, LSN 0 tensors
    payload                          varint length + ANS words (u32 LE): ARM, GMN,
                                     upsampling, LSN 0 weights, then the latents
                                     front by front
    crc32                            u32 over every byte of the base section before it
  per object layer r = 1..R-1 (exactly the length the base section gives)
    lambda_r f32, delta_lsn_r f32, scales, ANS payload (the rest), crc32 u32 (over
    the layer's bytes before it)

Version 6 is 5 with the ``moric`` modulation (scheme id 4: the GMN is the synthesis
trunk plus the shared aggregator, each LSN a tiny coordinate network,
``model.region_net``; modulation width 3); the writer writes 5 for every other file,
so they stay readable by version-5 decoders. Version 4 is 5 without the step factors (every tensor on its network's step, factor
16); version 3 is 4 without learned upsampling. Both still decode.

A one-region file is the base section alone (its header as short as a plain
single-region codec's). The contours sit in the base section because every layer's
box and, in object-only files, the set of coded latents depend on all masks; a layer
then costs its LSN (its contour is in the base). Each section carries its own CRC32:
corruption anywhere is a ``BitstreamError``; a file cut inside layer ``k`` parses to
its complete layers (``MoricFile.truncated``). Every field is checked against sane
limits and the data length before anything is allocated.

Grey images (mode 1) are coded like RGB images whose three channels are equal; the
decoder returns the rounded mean of the three synthesized channels.

Limits: ``read`` refuses sides above ``MAX_SIDE`` and sizes above ``MAX_PIXELS`` (what
the format can hold); the decoder additionally refuses images above
``DEFAULT_DECODE_MAX_PIXELS`` unless asked for more, and payloads too short to hold the
claimed number of symbols (``min_payload_bits``), before allocating anything sized by
the image. This module imports no JAX.
"""
from __future__ import annotations

import dataclasses
import math
import struct
import zlib

import numpy as np

from moric_jax.coding import integer_arm, tables, weights_coding
from moric_jax.errors import BitstreamError
from moric_jax.model.modulation import SCHEMES as MODULATIONS
from moric_jax.model import upsampling as upsampling_lib
from moric_jax.model.upsampling import KINDS as UPSAMPLINGS

MAGIC = b"MRC"
VERSION = 6
# The version a file is written with: the lowest that holds it (``moric`` needs 6).
MORIC_VERSION = 6
# Versions the reader accepts: 4 is 5 without per-tensor step factors (all 16); 3 is 4
# without learned upsampling (no upsampling byte in the explicit architecture fields,
# built-in ids 1 and 2 only).
READABLE_VERSIONS = (3, 4, 5, 6)
MAX_REGIONS = 16
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
  upsampling: str = "bilinear"     # model.upsampling.KINDS

  @property
  def has_upsampling_filters(self) -> bool:
    """Learned upsampling with at least one 2x step (one grid has no filters)."""
    return upsampling_lib.has_filters(self.upsampling, self.num_grids)

  def model_config(self):
    """``config.model`` ConfigDict for ``Codec.from_config`` (imports ml_collections)."""
    import ml_collections
    c = ml_collections.ConfigDict()
    c.latents = dict(num_grids=self.num_grids, q_step=self.q_step,
                     base_gain=self.base_gain, gain_growth=self.gain_growth)
    c.arm_context = dict(rows=self.context_rows, cols=self.context_cols)
    c.arm = dict(hidden=tuple(self.arm_hidden), activation=self.arm_activation)
    c.lsn = dict(hidden=tuple(self.lsn_hidden), num_res_convs=self.lsn_num_res_convs,
                 kernel_size=self.lsn_kernel_size, activation=self.lsn_activation)
    c.upsampling = self.upsampling
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
               lsn_activation=str(lsn.get("activation", "gelu")),
               upsampling=str(model.get("upsampling", "bilinear")))
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
        (self.upsampling in UPSAMPLINGS, f"upsampling {self.upsampling}"),
    ]
    for ok, what in checks:
      if not ok:
        raise error(f"unsupported architecture: {what}")


# Built-in architectures (a file names one with a single byte). Never change an
# entry: add a new id. 1: C3-sized with gains 2^k; 2: the same with a flat gain of 20
# (the default preset since it was measured better, WORKSPACE.md); 3: 2 with learned
# upsampling filters.
BUILTIN_ARCHS = {1: Architecture(), 2: Architecture(base_gain=20.0, gain_growth=1.0),
                 3: Architecture(base_gain=20.0, gain_growth=1.0, upsampling="learned")}


def shared_networks(has_gmn: bool, arch: Architecture) -> list[str]:
  """Coding order of the shared networks in the base payload (writer and reader)."""
  return (["arm"] + (["gmn"] if has_gmn else [])
          + (["upsampling"] if arch.has_upsampling_filters else []))


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


def explicit_arch_fields(a: Architecture) -> bytes:
  """The explicit architecture fields (after id 0), unchecked."""
  return (bytes([a.num_grids]) + struct.pack("<ddd", a.q_step, a.base_gain, a.gain_growth)
          + bytes([a.context_rows, a.context_cols, len(a.arm_hidden), *a.arm_hidden,
                   ACTIVATIONS.index(a.arm_activation), len(a.lsn_hidden), *a.lsn_hidden,
                   a.lsn_num_res_convs, a.lsn_kernel_size,
                   ACTIVATIONS.index(a.lsn_activation), UPSAMPLINGS.index(a.upsampling)]))


def write_arch(a: Architecture) -> bytes:
  """Architecture field: a built-in id, or 0 and the explicit fields."""
  arch_id = next((i for i, b in BUILTIN_ARCHS.items() if b == a), 0)
  return bytes([arch_id]) + (explicit_arch_fields(a) if arch_id == 0 else b"")


def read_arch(r: "_Reader", version: int = VERSION) -> Architecture:
  """Parses and validates the field ``write_arch`` writes (or version 3's)."""
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
    ups = r.u8("upsampling") if version >= 4 else 0
    if ups >= len(UPSAMPLINGS):
      raise BitstreamError(f"unknown upsampling id {ups}")
    arch = Architecture(num_grids, q_step, base_gain, growth, rows, cols, arm_hidden,
                        ACTIVATIONS[arm_act], lsn_hidden, res, ks, ACTIVATIONS[lsn_act],
                        UPSAMPLINGS[ups])
  elif arch_id in BUILTIN_ARCHS and (version >= 4 or arch_id <= 2):
    arch = BUILTIN_ARCHS[arch_id]
  else:
    raise BitstreamError(f"unknown built-in architecture id {arch_id}")
  arch.validate(BitstreamError)
  return arch


def varint(n: int) -> bytes:
  """LEB128 encoding of ``n >= 0``."""
  return _varint(n)


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


@dataclasses.dataclass(frozen=True)
class Layer:
  """An object layer: its region's lambda (informative), LSN step, scales, payload,
  and the LSN's per-tensor step factors (empty: all 16)."""
  lmbda: float
  delta_lsn: float
  scales: tuple[int, ...]
  payload: bytes
  factors: tuple[int, ...] = ()

  @property
  def steps(self) -> list[float]:
    """Per-tensor steps of the layer's LSN (``weights_coding.tensor_steps``)."""
    return weights_coding.tensor_steps(self.delta_lsn,
                                       resolve_factors(self.factors, len(self.scales)))


@dataclasses.dataclass(frozen=True)
class MoricFile:
  """A parsed ``.moric`` file.

  ``layers``: the complete object layers present (``layers[i]`` is region ``i + 1``);
  fewer than ``num_regions - 1`` when the file was cut (``truncated``). ``base_scales``
  and ``base_payload`` hold the ARM, GMN, upsampling and LSN-0 weights and all latents.
  """
  height: int
  width: int
  mode: int
  num_regions: int
  object_only: bool
  arch: Architecture
  modulation: str
  gmn_width: int
  mod_width: int
  gmn_activation: str
  arm_frac_bits: int
  delta_arm: float
  delta_gmn: float
  contours: tuple[bytes, ...]
  lmbda0: float
  delta_lsn0: float
  base_scales: tuple[int, ...]
  base_payload: bytes
  layers: tuple[Layer, ...]
  truncated: bool = False
  delta_upsampling: float = 1.0    # weight step of the learned upsampling filters
  version: int = VERSION           # the file's format version (READABLE_VERSIONS)
  base_factors: tuple[int, ...] = ()   # per-tensor step factors (empty: all 16)

  def base_steps(self, tensors_per_network: list[int]) -> list[list[float]]:
    """Per-tensor steps of the base section's networks (``shared_networks`` then LSN 0
    unless object-only), given each one's tensor count."""
    deltas = ([{"arm": self.delta_arm, "gmn": self.delta_gmn,
                "upsampling": self.delta_upsampling}[n] for n in self.shared_networks]
              + ([] if self.object_only else [self.delta_lsn0]))
    factors = resolve_factors(self.base_factors, sum(tensors_per_network))
    out, i = [], 0
    for d, n in zip(deltas, tensors_per_network):
      out.append(weights_coding.tensor_steps(d, factors[i:i + n]))
      i += n
    return out

  @property
  def has_gmn(self) -> bool:
    return self.modulation != "none"

  @property
  def has_upsampling(self) -> bool:
    """Whether the file codes learned upsampling filters."""
    return self.arch.has_upsampling_filters

  @property
  def shared_networks(self) -> list[str]:
    """The shared networks in the base payload, in coding order."""
    return shared_networks(self.has_gmn, self.arch)

  @property
  def rendered(self) -> tuple[int, ...]:
    """Regions that have an LSN in a complete file."""
    return tuple(range(1 if self.object_only else 0, self.num_regions))

  @property
  def complete_layers(self) -> int:
    """Rendered layers whose LSN is in the bytes (the background's counts as one)."""
    return (0 if self.object_only else 1) + len(self.layers)


def resolve_factors(factors, num_tensors: int) -> tuple[int, ...]:
  """A section's step factors, ``factors`` or all 16 when empty."""
  return tuple(factors) if len(factors) else weights_coding.unit_factors(num_tensors)


def _scales_bytes(scales, factors=()) -> bytes:
  if len(scales) > 255:
    raise ValueError("too many weight tensors in one section")
  factors = resolve_factors(factors, len(scales))
  if len(factors) != len(scales) or not all(1 <= int(j) <= 255 for j in factors):
    raise ValueError("one step factor in 1..255 per weight tensor")
  return bytes([len(scales), *scales, *(int(j) for j in factors)])


def _crc(b: bytes) -> bytes:
  return struct.pack("<I", zlib.crc32(b) & 0xFFFFFFFF)


def layer_bytes(layer: Layer) -> bytes:
  """One object layer's bytes, CRC included."""
  body = (struct.pack("<ff", layer.lmbda, layer.delta_lsn)
          + _scales_bytes(layer.scales, layer.factors) + layer.payload)
  return body + _crc(body)


def write(f: MoricFile) -> bytes:
  """Serializes a complete file (all ``num_regions - 1`` object layers)."""
  if not 1 <= f.num_regions <= MAX_REGIONS:
    raise ValueError(f"a file holds 1..{MAX_REGIONS} regions")
  if f.object_only and f.num_regions < 2:
    raise ValueError("an object-only file needs an object")
  if len(f.layers) != f.num_regions - 1 or len(f.contours) != f.num_regions - 1:
    raise ValueError("one contour and one layer per object")
  if f.num_regions == 1 and f.has_gmn:
    raise ValueError("a one-region file has no GMN")
  out = bytearray(MAGIC)
  out.append(MORIC_VERSION if f.modulation == "moric" else 5)
  out += _varint(f.height) + _varint(f.width)
  out += bytes([f.mode, f.num_regions | (0x80 if f.object_only else 0)])
  out += write_arch(f.arch)
  if f.num_regions > 1:
    out.append(MODULATIONS.index(f.modulation))
    if f.has_gmn:
      out += bytes([f.gmn_width, f.mod_width, ACTIVATIONS.index(f.gmn_activation)])
  out.append(f.arm_frac_bits)
  out += struct.pack("<f", f.delta_arm)
  if f.has_gmn:
    out += struct.pack("<f", f.delta_gmn)
  if f.has_upsampling:
    out += struct.pack("<f", f.delta_upsampling)
  layers = [layer_bytes(layer) for layer in f.layers]
  if f.num_regions > 1:
    for c in f.contours:
      out += _varint(len(c)) + c
    out += struct.pack("<f", f.lmbda0)
    for b in layers:
      out += _varint(len(b))
  if not f.object_only:
    out += struct.pack("<f", f.delta_lsn0)
  out += (_scales_bytes(f.base_scales, f.base_factors) + _varint(len(f.base_payload))
          + f.base_payload)
  out += _crc(bytes(out))
  for b in layers:
    out += b
  return bytes(out)


def version_of(data) -> int | None:
  """The version byte of ``.moric`` bytes, or ``None`` if they are not ``.moric``."""
  if not isinstance(data, (bytes, bytearray, memoryview)):
    return None
  head = bytes(data[:len(MAGIC) + 1])
  if len(head) < len(MAGIC) + 1 or head[:len(MAGIC)] != MAGIC:
    return None
  return head[len(MAGIC)]


def _step(r: "_Reader", what: str) -> float:
  d = r.f32(what)
  if not 1e-8 < d < 1e3:
    raise BitstreamError(f"bad weight quantization step {d} ({what})")
  return d


def _lmbda(r: "_Reader", what: str) -> float:
  lmbda = r.f32(what)
  if not (math.isfinite(lmbda) and lmbda >= 0.0):
    raise BitstreamError(f"bad {what}")
  return lmbda


def _scales(r: "_Reader", what: str, version: int) -> tuple[tuple[int, ...],
                                                           tuple[int, ...]]:
  """``(scales, step factors)`` of a section (factors all 16 before version 5)."""
  n = r.u8(f"{what} tensor count")
  scales = tuple(r.take(n, f"{what} scales"))
  if any(s >= tables.NUM_WEIGHT_SCALES for s in scales):
    raise BitstreamError(f"{what}: weight scale index out of range")
  if version < 5:
    return scales, weights_coding.unit_factors(n)
  factors = tuple(r.take(n, f"{what} step factors"))
  if any(j == 0 for j in factors):
    raise BitstreamError(f"{what}: step factor 0")
  return scales, factors


def read(data) -> MoricFile:
  """Parses and validates ``.moric`` bytes; ``BitstreamError`` on any problem.

  A file cut inside its object layers parses to the complete ones (``truncated``);
  a cut inside the base section, or any corrupt byte, is an error.
  """
  if not isinstance(data, (bytes, bytearray, memoryview)):
    raise BitstreamError("expected bytes")
  data = bytes(data)
  if len(data) < len(MAGIC) + 1 + 4:
    raise BitstreamError(f"file too short ({len(data)} bytes) to be a .moric file")
  if data[:len(MAGIC)] != MAGIC:
    raise BitstreamError("not a .moric file (bad magic bytes)")
  version = data[len(MAGIC)]
  if version not in READABLE_VERSIONS:
    raise BitstreamError(f"unsupported .moric version {version} (this decoder reads "
                         f"versions {', '.join(map(str, READABLE_VERSIONS))})")
  r = _Reader(data, len(data))
  r.pos = len(MAGIC) + 1
  height = r.varint("height", MAX_SIDE)
  width = r.varint("width", MAX_SIDE)
  if height < 1 or width < 1 or height * width > MAX_PIXELS:
    raise BitstreamError(f"bad image size {width}x{height}")
  mode = r.u8("mode")
  if mode not in MODE_NAMES:
    raise BitstreamError(f"unsupported image mode {mode}")
  regions_byte = r.u8("regions")
  num_regions, object_only = regions_byte & 0x7F, bool(regions_byte & 0x80)
  if not 1 <= num_regions <= MAX_REGIONS or (object_only and num_regions < 2):
    raise BitstreamError(f"unsupported number of regions {num_regions}")
  arch = read_arch(r, version)
  scheme, gmn_width, mod_width, gmn_act = "none", 0, 0, ACTIVATIONS[0]
  if num_regions > 1:
    scheme_id = r.u8("modulation")
    if scheme_id >= len(MODULATIONS):
      raise BitstreamError(f"unknown modulation scheme id {scheme_id}")
    scheme = MODULATIONS[scheme_id]
    if scheme == "moric" and version < MORIC_VERSION:
      raise BitstreamError(f"modulation moric in a version {version} file")
    if scheme != "none":
      gmn_width, mod_width, act = r.u8("GMN width"), r.u8("modulation width"), r.u8(
          "GMN activation")
      if act >= len(ACTIVATIONS):
        raise BitstreamError("unknown GMN activation id")
      if not (1 <= gmn_width <= 64 and 1 <= mod_width <= 64):
        raise BitstreamError(f"bad GMN widths {gmn_width}/{mod_width}")
      if scheme == "moric" and mod_width != 3:
        raise BitstreamError(f"bad moric stage width {mod_width}")
      gmn_act = ACTIVATIONS[act]
  frac_bits = r.u8("ARM fraction bits")
  if not integer_arm.MIN_FRAC_BITS <= frac_bits <= integer_arm.MAX_FRAC_BITS:
    raise BitstreamError(f"bad ARM fraction bits {frac_bits}")
  delta_arm = _step(r, "ARM step")
  delta_gmn = _step(r, "GMN step") if scheme != "none" else 1.0
  delta_ups = _step(r, "upsampling step") if arch.has_upsampling_filters else 1.0
  contours, lmbda0, layer_sizes = [], 0.0, []
  if num_regions > 1:
    for i in range(1, num_regions):
      contours.append(r.take(r.varint(f"region {i} contour length", MAX_PAYLOAD),
                             f"region {i} contour"))
    lmbda0 = _lmbda(r, "region 0 lambda")
    layer_sizes = [r.varint(f"layer {i} length", MAX_PAYLOAD)
                   for i in range(1, num_regions)]
  delta_lsn0 = 1.0 if object_only else _step(r, "LSN step")
  base_scales, base_factors = _scales(r, "base", version)
  base_payload = r.take(r.varint("payload length", MAX_PAYLOAD), "payload")
  crc = struct.unpack("<I", r.take(4, "base CRC"))[0]
  if zlib.crc32(data[:r.pos - 4]) & 0xFFFFFFFF != crc:
    raise BitstreamError("CRC mismatch in the base section: the file is corrupt or "
                         "truncated")
  rest = len(data) - r.pos
  if rest > sum(layer_sizes):
    raise BitstreamError(f"{rest - sum(layer_sizes)} unexpected bytes after the last "
                         "layer")
  layers = []
  for i, size in enumerate(layer_sizes, start=1):
    if r.pos + size > len(data):
      break   # The file was cut inside this layer: keep the complete ones.
    if size < 8 + 1 + 4:
      raise BitstreamError(f"layer {i} is too short")
    body, crc = data[r.pos:r.pos + size - 4], data[r.pos + size - 4:r.pos + size]
    if _crc(body) != crc:
      raise BitstreamError(f"CRC mismatch in layer {i}: the file is corrupt")
    lr = _Reader(body, len(body))
    lmbda = _lmbda(lr, f"region {i} lambda")
    delta = _step(lr, f"region {i} LSN step")
    scales, factors = _scales(lr, f"region {i} LSN", version)
    layers.append(Layer(lmbda, delta, scales, body[lr.pos:], factors))
    r.pos += size
  return MoricFile(height, width, mode, num_regions, object_only, arch, scheme,
                   gmn_width, mod_width, gmn_act, frac_bits, delta_arm, delta_gmn,
                   tuple(contours), lmbda0, delta_lsn0, base_scales, base_payload,
                   tuple(layers), len(layers) < num_regions - 1, delta_ups, version,
                   base_factors)


def section_spans(data: bytes, f: MoricFile | None = None) -> list[tuple[int, int]]:
  """``[start, end)`` byte spans of the base section and each complete layer (CRCs
  included) of a file that parses (for fuzzing and tests)."""
  f = read(data) if f is None else f
  sizes = [len(layer_bytes(layer)) for layer in f.layers]
  end = len(data) - sum(sizes)
  if f.truncated:   # the cut layer's bytes follow the complete ones
    raise ValueError("section_spans needs a complete file")
  spans, start = [(0, end)], end
  for n in sizes:
    spans.append((start, start + n))
    start += n
  return spans

"""Multi-region ``.moric`` files (version 2): one section per region layer.

Layout (integers little-endian, ``varint`` = LEB128; ``section`` = ``num_tensors u8``,
one table scale index (u8) per tensor, ``varint`` length, the ANS payload)::

  magic b"MRC", version u8 (= 2)
  height, width                     varint, varint
  mode                              u8   (0 = RGB, 1 = grey)
  num_regions                       u8   (R >= 2: background + objects)
  architecture                      as version 1 (``bitstream.write_arch``)
  modulation u8 (index in modulation.SCHEMES), gmn width u8, mod width u8,
  gmn activation u8
  arm_weight_frac_bits              u8
  delta_arm, delta_gmn              f32, f32
  ARM weights                       section
  GMN weights                       section (absent for modulation "none")
  per region r = 0 .. R-1 (layer order):
    lmbda                           f32  (the region's RD trade-off, informative)
    [r >= 1] contour                varint length + C* bytes of the region's mask
    delta_lsn                       f32
    LSN weights                     section
    latents                         varint length + ANS payload (coded latents only)
  crc32                             u32 over every byte before it

Every section is length-prefixed: a layered decode entropy-decodes only the sections
of the layers it renders (the whole file is still read and CRC-checked, and all
contours are decoded, since later masks shape earlier regions' layouts). ``moric
info`` reports each region's bits from its section sizes (payloads plus their scale
bytes; the few bytes of length prefixes, lambda and step fields are not counted).
"""
from __future__ import annotations

import dataclasses
import math
import struct
import zlib

from moric_jax.coding import bitstream, integer_arm, tables
from moric_jax.errors import BitstreamError
from moric_jax.model import modulation as modulation_lib

VERSION = 2
MAX_REGIONS = 16


@dataclasses.dataclass(frozen=True)
class Section:
  """Entropy-coded weights of one network: per-tensor scale index + ANS payload."""
  scales: tuple[int, ...]
  payload: bytes


@dataclasses.dataclass(frozen=True)
class RegionSection:
  lmbda: float
  contour: bytes          # C* bytes (empty for the background)
  delta_lsn: float
  lsn: Section
  latents: bytes          # ANS payload of the region's coded latents


@dataclasses.dataclass(frozen=True)
class LayeredFile:
  height: int
  width: int
  mode: int
  arch: bitstream.Architecture
  modulation: str
  gmn_width: int
  mod_width: int
  gmn_activation: str
  arm_frac_bits: int
  delta_arm: float
  delta_gmn: float
  arm: Section
  gmn: Section | None
  regions: tuple[RegionSection, ...]

  @property
  def num_regions(self) -> int:
    return len(self.regions)

  def model_config(self):
    """``config.model`` for ``MultiCodec.from_config``."""
    c = self.arch.model_config()
    c.modulation = self.modulation
    c.gmn = dict(width=self.gmn_width, mod_width=self.mod_width,
                 activation=self.gmn_activation)
    return c


def _section(s: Section) -> bytes:
  if len(s.scales) > 255:
    raise ValueError("too many weight tensors in one section")
  return (bytes([len(s.scales), *s.scales]) + bitstream.varint(len(s.payload))
          + s.payload)


def write(f: LayeredFile) -> bytes:
  """Serializes a multi-region file."""
  if not 2 <= f.num_regions <= MAX_REGIONS:
    raise ValueError(f"a layered file holds 2..{MAX_REGIONS} regions")
  out = bytearray(bitstream.MAGIC)
  out.append(VERSION)
  out += bitstream.varint(f.height) + bitstream.varint(f.width)
  out += bytes([f.mode, f.num_regions])
  out += bitstream.write_arch(f.arch)
  out += bytes([modulation_lib.SCHEMES.index(f.modulation), f.gmn_width, f.mod_width,
                bitstream.ACTIVATIONS.index(f.gmn_activation), f.arm_frac_bits])
  out += struct.pack("<ff", f.delta_arm, f.delta_gmn)
  out += _section(f.arm)
  if f.modulation != "none":
    out += _section(f.gmn)
  for r, reg in enumerate(f.regions):
    out += struct.pack("<f", reg.lmbda)
    if r >= 1:
      out += bitstream.varint(len(reg.contour)) + reg.contour
    out += struct.pack("<f", reg.delta_lsn)
    out += _section(reg.lsn)
    out += bitstream.varint(len(reg.latents)) + reg.latents
  out += struct.pack("<I", zlib.crc32(bytes(out)) & 0xFFFFFFFF)
  return bytes(out)


def _read_section(r, what: str) -> Section:
  n = r.u8(f"{what} tensor count")
  scales = tuple(r.take(n, f"{what} scales"))
  if any(s >= tables.NUM_WEIGHT_SCALES for s in scales):
    raise BitstreamError(f"{what}: weight scale index out of range")
  payload = r.take(r.varint(f"{what} length", bitstream.MAX_PAYLOAD), f"{what} payload")
  return Section(scales, payload)


def _step(r, what: str) -> float:
  d = r.f32(what)
  if not 1e-8 < d < 1e3:
    raise BitstreamError(f"bad weight quantization step {d} ({what})")
  return d


def read(data: bytes) -> LayeredFile:
  """Parses and validates version-2 bytes; ``BitstreamError`` on any problem."""
  bitstream.check_container(data, VERSION)
  data = bytes(data)
  r = bitstream._Reader(data, len(data) - 4)
  r.pos = len(bitstream.MAGIC) + 1
  height = r.varint("height", bitstream.MAX_SIDE)
  width = r.varint("width", bitstream.MAX_SIDE)
  if height < 1 or width < 1 or height * width > bitstream.MAX_PIXELS:
    raise BitstreamError(f"bad image size {width}x{height}")
  mode = r.u8("mode")
  if mode not in bitstream.MODE_NAMES:
    raise BitstreamError(f"unsupported image mode {mode}")
  num_regions = r.u8("num_regions")
  if not 2 <= num_regions <= MAX_REGIONS:
    raise BitstreamError(f"unsupported number of regions {num_regions}")
  arch = bitstream.read_arch(r)
  scheme_id, gmn_width, mod_width, gmn_act = (r.u8("modulation"), r.u8("GMN width"),
                                              r.u8("modulation width"),
                                              r.u8("GMN activation"))
  if scheme_id >= len(modulation_lib.SCHEMES):
    raise BitstreamError(f"unknown modulation scheme id {scheme_id}")
  if gmn_act >= len(bitstream.ACTIVATIONS):
    raise BitstreamError("unknown GMN activation id")
  scheme = modulation_lib.SCHEMES[scheme_id]
  if scheme != "none" and not (1 <= gmn_width <= 64 and 1 <= mod_width <= 64):
    raise BitstreamError(f"bad GMN widths {gmn_width}/{mod_width}")
  frac_bits = r.u8("ARM fraction bits")
  if not integer_arm.MIN_FRAC_BITS <= frac_bits <= integer_arm.MAX_FRAC_BITS:
    raise BitstreamError(f"bad ARM fraction bits {frac_bits}")
  delta_arm, delta_gmn = _step(r, "ARM step"), _step(r, "GMN step")
  arm = _read_section(r, "ARM")
  gmn = _read_section(r, "GMN") if scheme != "none" else None
  regions = []
  for i in range(num_regions):
    lmbda = r.f32(f"region {i} lambda")
    if not (math.isfinite(lmbda) and lmbda >= 0.0):
      raise BitstreamError(f"bad lambda for region {i}")
    contour = b""
    if i >= 1:
      contour = r.take(r.varint(f"region {i} contour length", bitstream.MAX_PAYLOAD),
                       f"region {i} contour")
    delta = _step(r, f"region {i} LSN step")
    lsn = _read_section(r, f"region {i} LSN")
    latents = r.take(r.varint(f"region {i} latents length", bitstream.MAX_PAYLOAD),
                     f"region {i} latents")
    regions.append(RegionSection(lmbda, contour, delta, lsn, latents))
  if r.pos != r.end:
    raise BitstreamError(f"{r.end - r.pos} unexpected bytes after the last region")
  return LayeredFile(height, width, mode, arch, scheme, gmn_width, mod_width,
                     bitstream.ACTIVATIONS[gmn_act], frac_bits, delta_arm, delta_gmn,
                     arm, gmn, tuple(regions))

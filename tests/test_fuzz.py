"""Decoder fuzzing: mutated files end in BitstreamError (or a normal decode), quickly.

The long run is ``python -m experiments.fuzz_decoder --count=100000 --seed=0``.
"""
import dataclasses
import time
import tracemalloc

import pytest

import moric_jax
from experiments import fuzz_decoder as fz
from moric_jax import api
from moric_jax.coding import bitstream
from tests.test_bitstream import synthetic_file
from tests.test_odd_inputs import encode_tiny

TIME_LIMIT = 60.0      # a decode past this counts as a hang
CASE_BOUND = 30.0      # every case must finish within this (2 busy CPU cores,
                       # tests running in parallel: a bomb would take minutes)
SMALL_ARCH = bitstream.Architecture(num_grids=4, q_step=0.3, context_rows=2,
                                    context_cols=2, arm_hidden=(8,), lsn_hidden=(6,),
                                    lsn_num_res_convs=1)


@pytest.fixture(scope="session")
def base_files():
  """Two tiny real encodes (RGB, grey), an untrained file with an explicit arch and
  an untrained 3-region file with a GMN (contours, object layers)."""
  from tests.test_bitstream import _object_masks
  files = [encode_tiny(8, 8)[1], encode_tiny(8, 8, grey=True)[1],
           synthetic_file(9, 7, SMALL_ARCH)[0],
           synthetic_file(12, 10, masks=_object_masks(), modulation="progressive_concat")[0]]
  for f in files:
    moric_jax.decode(f)
  return files


def test_craft_without_changes_is_the_valid_file(base_files):
  for f in base_files:
    assert fz.craft(bitstream.read(f)) == f


def test_fuzz_decoder_fast(base_files):
  rep = fz.run(base_files, count=2500, seed=0, time_limit=TIME_LIMIT)
  fz.print_report(rep)
  assert not rep.unexpected, rep.unexpected[:5]
  assert rep.max_seconds < CASE_BOUND, rep.slowest_kind
  assert sum(v for o, v in rep.by_outcome.items() if o.startswith("BitstreamError")) > 2000
  # The parser's own limits were reached, not just the CRC check.
  assert sum(v for o, v in rep.by_outcome.items() if "CRC" not in o) > 1500


HUGE = [(32768, 32768), (32768, 8192), (32768, 512), (32768, 100), (32768, 1),
        (1, 32768), (4096, 4096), (4097, 4096), (16000, 100), (2000, 2000),
        (1000, 1000), (300, 300), (1 << 20, 1), (1 << 40, 1 << 40)]


@pytest.mark.parametrize("h,w", HUGE)
def test_crafted_sizes_refused_before_allocating(base_files, h, w):
  """A valid CRC and a claimed size up to MAX_SIDE: refused fast, small memory."""
  data = fz.craft(bitstream.read(base_files[0]), height=h, width=w)
  tracemalloc.start()
  t0 = time.perf_counter()
  try:
    with pytest.raises(moric_jax.BitstreamError):
      api.decode(data)
    seconds = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert seconds < CASE_BOUND
  assert peak < 400 * 2**20, f"{peak / 2**20:.0f} MiB traced"


def test_absurd_counts_and_fields(base_files):
  header = bitstream.read(base_files[0])
  multi = bitstream.read(base_files[3])
  cases = [dict(payload_len=1 << 31), dict(payload_len=(1 << 31) + 1),
           dict(payload_len=1 << 60), dict(payload_len=0), dict(scales=[0] * 255),
           dict(scales=[]), dict(scales=[87] * len(header.base_scales)), dict(mode=2),
           dict(mode=255), dict(num_regions=0), dict(num_regions=17),
           dict(regions_byte=0x81), dict(arch_id=7),
           dict(arch_id=0, arch_bytes=b""), dict(arch_id=0, arch_bytes=b"\xff" * 40),
           dict(frac_bits=255), dict(deltas=(float("nan"), 1.0)),
           dict(deltas=(1.0, float("inf"))), dict(deltas=(0.0, 0.0)),
           dict(factors=[0] * len(header.base_scales))]
  for fields in cases:
    with pytest.raises(moric_jax.BitstreamError):
      api.decode(fz.craft(header, **fields))
  multi_cases = [dict(layer_sizes=[1 << 40, 3]), dict(layer_sizes=[0, 0]),
                 dict(contours=[b"", b""]), dict(contours=[b"\xff" * 30] * 2),
                 dict(modulation_bytes=b"\x09"), dict(modulation_bytes=b"\x03\x00\x04\x01"),
                 dict(modulation_bytes=b"\x03\x08\x04\x07"),
                 dict(layers=[b"\x00" * 12, b"\x00" * 12]), dict(num_regions=2),
                 dict(num_regions=4)]
  for fields in multi_cases:
    with pytest.raises(moric_jax.BitstreamError):
      api.decode(fz.craft(multi, **fields))
  big = dataclasses.replace(SMALL_ARCH, num_grids=12, arm_hidden=(255,) * 8,
                            lsn_hidden=(255,) * 8, lsn_num_res_convs=8, lsn_kernel_size=7)
  with pytest.raises(moric_jax.BitstreamError):
    api.decode(fz.craft(header, arch_id=0, arch_bytes=fz._explicit_block(big)))


def test_mode_flag_is_only_presentation(base_files):
  """Switching RGB8 <-> L8 in a valid file (CRC refitted) still decodes sanely."""
  grey = api.decode(fz.craft(bitstream.read(base_files[0]), mode=bitstream.MODE_L8))
  rgb = api.decode(base_files[0])
  assert grey.shape == rgb.shape[:2]
  assert (abs(grey.astype(int) - rgb.mean(-1)) <= 1).all()


def test_info_never_allocates_by_size(base_files):
  data = fz.craft(bitstream.read(base_files[0]), height=32768, width=8192)
  with pytest.raises(moric_jax.BitstreamError, match="too short"):
    moric_jax.info(data)      # refused before anything sized by the image exists

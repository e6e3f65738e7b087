"""The .moric container: round trips, corruption/truncation, real-encode rate check."""
import jax
import numpy as np
import pytest

import moric_jax
from moric_jax import api, presets
from moric_jax.coding import bitstream
from moric_jax.model import latents as latents_lib
from tests.conftest import smooth_image

ARCH = bitstream.Architecture()


def synthetic_file(height=12, width=10, arch=ARCH, seed=0):
  """A valid file from random integer weights and symbols (no training)."""
  rng = np.random.default_rng(seed)
  templates = api._templates(arch, height, width)
  int_weights = {}
  for n in api.NETWORKS:
    treedef, shapes = templates[n]
    leaves = [np.round(rng.laplace(0, 3.0, s)).astype(np.int32) for s in shapes]
    int_weights[n] = jax.tree_util.tree_unflatten(treedef, leaves)
  symbols = [np.round(rng.laplace(0, 0.7, s)).astype(np.int32)
             for s in latents_lib.grid_shapes(height, width, arch.num_grids)]
  data, bits = api.write_file(height, width, arch, {"arm": 1 / 64, "lsn": 1 / 200},
                              int_weights, symbols)
  return data, bits, int_weights, symbols


def test_synthetic_round_trip():
  data, bits, int_weights, symbols = synthetic_file()
  dec = api.decode_full(data)
  for a, b in zip(dec.symbols, symbols):
    assert np.array_equal(a, b)
  for n in api.NETWORKS:
    for a, b in zip(jax.tree_util.tree_leaves(dec.int_weights[n]),
                    jax.tree_util.tree_leaves(int_weights[n])):
      assert np.array_equal(a, b)
  assert dec.image.shape == (12, 10, 3) and dec.image.dtype == np.uint8
  payload = len(bitstream.read(data)[1])
  assert 8 * payload <= bits["latents"] + bits["weights"] + 64


def test_explicit_architecture_round_trip():
  arch = bitstream.Architecture(num_grids=4, q_step=0.3, context_rows=2, context_cols=2,
                                arm_hidden=(8,), lsn_hidden=(6,), lsn_num_res_convs=1)
  data, _, _, symbols = synthetic_file(9, 7, arch)
  header, _ = bitstream.read(data)
  assert header.arch == arch
  dec = api.decode_full(data)
  assert all(np.array_equal(a, b) for a, b in zip(dec.symbols, symbols))


def test_every_byte_change_and_truncation_raises():
  data, *_ = synthetic_file(6, 5)
  assert len(data) < 2000
  for i in range(len(data)):
    for v in range(256):
      if v == data[i]:
        continue
      bad = data[:i] + bytes([v]) + data[i + 1:]
      with pytest.raises(moric_jax.BitstreamError):
        api.decode(bad)
  for n in range(len(data)):
    with pytest.raises(moric_jax.BitstreamError):
      api.decode(data[:n])
  with pytest.raises(moric_jax.BitstreamError):
    api.decode(data + b"\0")


def test_clear_messages():
  data, *_ = synthetic_file(6, 5)
  with pytest.raises(moric_jax.BitstreamError, match="version"):
    api.decode(data[:3] + b"\x07" + data[4:])
  with pytest.raises(moric_jax.BitstreamError, match="magic"):
    api.decode(b"PNG" + data[3:])
  with pytest.raises(moric_jax.BitstreamError, match="too short"):
    api.decode(b"MR")
  assert issubclass(moric_jax.BitstreamError, ValueError)


def _refit_crc(body: bytes) -> bytes:
  import struct
  import zlib
  return body + struct.pack("<I", zlib.crc32(body))


def test_absurd_header_with_valid_crc_is_refused():
  data, *_ = synthetic_file(6, 5)
  # height varint (byte 4) -> 2**21 via a 4-byte varint: refused before allocating.
  body = data[:4] + bytes([0x80, 0x80, 0x80, 0x01]) + data[5:-4]
  with pytest.raises(moric_jax.BitstreamError, match="height"):
    api.decode(_refit_crc(body))
  # Payload content altered but CRC refitted: still an error, never a crash.
  body = bytearray(data[:-4])
  body[-3] ^= 0x55
  try:
    api.decode(_refit_crc(bytes(body)))
  except moric_jax.BitstreamError:
    pass


@pytest.fixture(scope="module")
def encoded64():
  image = smooth_image(64, 64, seed=3)
  config = presets.fast()
  config.num_steps = 40
  config.train.chunk_size = 20
  data, info = moric_jax.encode(image, config)
  return image, data, info


def test_real_encode_round_trip_and_rate(encoded64):
  image, data, info = encoded64
  decoded = moric_jax.decode(data)
  assert np.array_equal(decoded, info["reconstruction"])
  from moric_jax.eval import metrics
  from moric_jax.image_io import to_uint8
  assert metrics.psnr_uint8(decoded, to_uint8(image)) == info["psnr"]
  pixels = 64 * 64
  assert info["bpp"] == 8 * len(data) / pixels
  payload_bits = 8 * info["payload_bytes"]
  est_bits = info["bpp_estimated"] * pixels
  print(f"64px: {len(data)} B (header {info['header_bytes']} B), payload {payload_bits} "
        f"bits vs estimated {est_bits:.0f}; file/est {info['bpp'] / info['bpp_estimated']:.4f}")
  assert payload_bits <= 1.02 * est_bits
  assert payload_bits <= est_bits + 64
  assert info["bpp"] <= info["bpp_estimated"] + 8 * (info["header_bytes"] + 8) / pixels
  meta = moric_jax.info(data)
  assert meta["height"] == 64 and meta["bytes"] == len(data)


def test_default_preset_uses_a_builtin_architecture():
  from moric_jax import presets
  from moric_jax.coding import bitstream
  arch = bitstream.Architecture.from_model_config(presets.default().model)
  assert arch in bitstream.BUILTIN_ARCHS.values()

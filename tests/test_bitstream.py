"""The .moric file: round trips, corruption/truncation, real-encode rate check."""
import dataclasses

import numpy as np
import pytest

import moric_jax
from moric_jax import api, presets
from moric_jax.coding import bitstream, network_layout, writer
from tests.conftest import smooth_image

ARCH = bitstream.Architecture()


def random_tree(template, rng, scale=3.0):
  return network_layout.unflatten(template, [np.round(rng.laplace(0, scale, s)).astype(np.int32)
                                       for s in network_layout.flatten(template)])


def synthetic_file(height=12, width=10, arch=ARCH, seed=0, masks=(),
                   modulation="none", gmn=None, object_only=False, mode=0,
                   factors=None):
  """A valid file from random integer weights and symbols (no training, no JAX);
  ``masks``: object masks (C*-coded); ``factors``: per-tensor step factors
  (``writer.write``)."""
  from moric_jax.model import region_layout
  from moric_jax.regions import cstar
  rng = np.random.default_rng(seed)
  contours = [cstar.encode_mask(m) for m in masks]
  masks = [cstar.decode_mask(c, (height, width)) for c in contours]
  layout = region_layout.make_layout(masks, height, width, arch.num_grids, object_only)
  g = gmn or ({"width": 3, "mod_width": 3, "activation": "gelu"} if modulation == "moric"
              else {"width": 8, "mod_width": 4, "activation": "gelu"})
  tpl_lsn = network_layout.lsn_template(arch, modulation, g["mod_width"], g["width"])
  ints = {"arm": random_tree(network_layout.arm_template(arch), rng),
          "lsn": [random_tree(tpl_lsn, rng) for _ in layout.rendered]}
  deltas = {"arm": 1 / 64, "lsn": [1 / 200] * len(layout.rendered)}
  if modulation != "none":
    ints["gmn"] = random_tree(network_layout.gmn_template(arch, modulation, g["width"],
                                                    g["mod_width"]), rng)
    deltas["gmn"] = 1 / 100
  if arch.upsampling == "learned":
    ints["upsampling"] = random_tree(network_layout.upsampling_template(arch), rng)
    deltas["upsampling"] = 1 / 256
  symbols = [np.where(c, np.round(rng.laplace(0, 0.7, c.shape)), 0).astype(np.int32)
             for c in layout.coded]
  data, bits = writer.write(height, width, arch, mode=mode, modulation=modulation,
                            gmn=g, contours=list(contours),
                            lmbdas=np.full(layout.num_regions, 0.002), deltas=deltas,
                            int_weights=ints, symbols=symbols, owners=layout.owner_ids(),
                            coded=None if layout.all_coded else list(layout.coded),
                            object_only=object_only, factors=factors)
  return data, bits, ints, symbols


def as_version_4(data: bytes) -> bytes:
  """A one-region version-5 file whose step factors are all 16, rewritten as the
  version-4 file it equals (the same bytes without the factor bytes)."""
  f = bitstream.read(data)
  n = len(f.base_scales)
  assert f.num_regions == 1 and f.base_factors == (16,) * n
  block = bytes([n, *f.base_scales, *([16] * n)])
  at = data.rindex(block, 0, len(data) - len(f.base_payload))
  return _refit_crc(data[:3] + b"\x04" + data[4:at + 1 + n] + data[at + 1 + 2 * n:-4])


def test_synthetic_round_trip():
  data, bits, int_weights, symbols = synthetic_file()
  dec = api.decode_file(data)
  for a, b in zip(dec.symbols, symbols):
    assert np.array_equal(a, b)
  for n in ("arm", "lsn"):
    got = dec.int_weights[n] if n == "arm" else dec.int_weights[n][0]
    want = int_weights[n] if n == "arm" else int_weights[n][0]
    for a, b in zip(network_layout.flatten(got), network_layout.flatten(want)):
      assert np.array_equal(a, b)
  assert dec.image.shape == (12, 10, 3) and dec.image.dtype == np.uint8
  payload = len(dec.file.base_payload)
  est = bits["latents"] + bits["shared"] + sum(bits["lsn"])
  assert 8 * payload <= est + 64
  assert abs(bits["region_latents"].sum() - bits["latents"]) < 1e-6 * bits["latents"] + 1


def test_explicit_architecture_round_trip():
  arch = bitstream.Architecture(num_grids=4, q_step=0.3, context_rows=2, context_cols=2,
                                arm_hidden=(8,), lsn_hidden=(6,), lsn_num_res_convs=1)
  data, _, _, symbols = synthetic_file(9, 7, arch)
  assert bitstream.read(data).arch == arch
  dec = api.decode_file(data)
  assert all(np.array_equal(a, b) for a, b in zip(dec.symbols, symbols))


@pytest.mark.parametrize("arch", [
    bitstream.BUILTIN_ARCHS[3],
    bitstream.Architecture(num_grids=3, lsn_hidden=(5,), upsampling="learned")])
def test_learned_upsampling_file_round_trip(arch):
  """The filters' step and integers travel in the base section and shape the image."""
  data, bits, ints, symbols = synthetic_file(11, 13, arch, seed=4)
  f = bitstream.read(data)
  assert f.arch == arch and f.has_upsampling and f.delta_upsampling == bitstream.f32(1 / 256)
  dec = api.decode_file(data)
  for a, b in zip(network_layout.flatten(dec.int_weights["upsampling"]),
                  network_layout.flatten(ints["upsampling"])):
    assert np.array_equal(a, b)
  assert all(np.array_equal(a, b) for a, b in zip(dec.symbols, symbols))
  meta = moric_jax.info(data)
  assert meta["delta_upsampling"] == f.delta_upsampling
  assert meta["bits_shared_weights"] == pytest.approx(bits["shared"])
  # The filters shape the pixels: bilinear upsampling of the same content differs.
  from moric_jax.decoder import decode as decode_lib
  plain = dataclasses.replace(f, arch=dataclasses.replace(arch, upsampling="bilinear"))
  pixels = [decode_lib.synthesize_float(g, dec.layout, dec.int_weights, [f.delta_lsn0],
                                        dec.symbols, 1) for g in (f, plain)]
  assert np.abs(pixels[0] - pixels[1]).max() > 1e-5   # float noise: ~1e-7
  other, *_ = synthetic_file(11, 13, plain.arch, seed=4)
  assert len(other) < len(data)


@pytest.mark.parametrize("arch", [bitstream.BUILTIN_ARCHS[2],
                                  bitstream.Architecture(num_grids=3, lsn_hidden=(5,))])
def test_version_3_files_still_decode(arch):
  """Version 3 = version 4 without the upsampling byte (bilinear only)."""
  data = as_version_4(synthetic_file(7, 9, arch, seed=5)[0])
  field = bitstream.write_arch(arch)
  at = data.index(field)
  old_field = field[:-1] if field[0] == 0 else field    # explicit: drop the last byte
  old = data[:3] + b"\x03" + data[4:at] + old_field + data[at + len(field):-4]
  old = _refit_crc(old)
  f = bitstream.read(old)
  assert f.version == 3 and f.arch == arch and moric_jax.info(old)["version"] == 3
  np.testing.assert_array_equal(api.decode(old), api.decode(data))
  # Built-in id 3 (learned upsampling) does not exist in version 3.
  with pytest.raises(moric_jax.BitstreamError, match="architecture"):
    api.decode(_refit_crc(old[:at] + b"\x03" + old[at + 1:-4]))


def test_version_4_files_still_decode():
  """Version 4 = version 5 with every tensor on its network's step (factor 16)."""
  data, *_ = synthetic_file(9, 8, bitstream.BUILTIN_ARCHS[3], seed=2)
  old = as_version_4(data)
  f = bitstream.read(old)
  assert f.version == 4 and len(old) == len(data) - len(f.base_scales)
  assert f.base_factors == bitstream.read(data).base_factors
  np.testing.assert_array_equal(api.decode(old), api.decode(data))


def test_per_tensor_steps_round_trip_and_shape_the_image():
  """Step factors travel per tensor (base section and object layers), the decoder
  dequantizes each tensor on its own step, and the ARM's steps change the parse."""
  arch = bitstream.BUILTIN_ARCHS[3]
  tpl = {"arm": network_layout.arm_template(arch), "lsn": network_layout.lsn_template(arch, "none", 4),
         "upsampling": network_layout.upsampling_template(arch)}
  rng = np.random.default_rng(3)
  factors = {n: tuple(int(j) for j in rng.integers(4, 65, len(network_layout.flatten(t))))
             for n, t in tpl.items()}
  factors["lsn"] = [factors["lsn"]]
  data, bits, ints, symbols = synthetic_file(11, 13, arch, seed=4, factors=factors)
  plain, *_ = synthetic_file(11, 13, arch, seed=4)
  f = bitstream.read(data)
  assert f.base_factors == factors["arm"] + factors["upsampling"] + factors["lsn"][0]
  steps = network_layout.base_steps(f)
  assert steps["lsn"] == [bitstream.f32(bitstream.f32(1 / 200) * j / 16)
                          for j in factors["lsn"][0]]
  dec = api.decode_file(data)
  assert all(np.array_equal(a, b) for a, b in zip(dec.symbols, symbols))
  assert not np.array_equal(dec.image, api.decode(plain))
  meta = moric_jax.info(data)
  assert meta["step_factors"]["base"] == list(f.base_factors)
  assert meta["bits_shared_weights"] == pytest.approx(bits["shared"])
  # Object layers carry their own factors.
  mask = np.zeros((11, 13), bool)
  mask[2:8, 3:9] = True
  obj = {"arm": factors["arm"], "upsampling": factors["upsampling"],
         "lsn": [factors["lsn"][0], tuple(reversed(factors["lsn"][0]))]}
  data2, _, ints2, symbols2 = synthetic_file(11, 13, arch, seed=6, masks=[mask],
                                             factors=obj)
  f2 = bitstream.read(data2)
  assert f2.layers[0].factors == obj["lsn"][1]
  dec2 = api.decode_file(data2)
  for a, b in zip(network_layout.flatten(dec2.int_weights["lsn"][1]),
                  network_layout.flatten(ints2["lsn"][1])):
    assert np.array_equal(a, b)


def test_unknown_upsampling_id_is_refused():
  arch = bitstream.Architecture(num_grids=3, upsampling="learned")
  data, *_ = synthetic_file(6, 5, arch)
  at = data.index(bitstream.write_arch(arch)) + len(bitstream.write_arch(arch)) - 1
  body = data[:at] + b"\x05" + data[at + 1:-4]
  with pytest.raises(moric_jax.BitstreamError, match="upsampling"):
    api.decode(_refit_crc(body))


def test_one_region_file_is_one_section_as_small_as_before():
  """Header: magic+version 4, sizes 2, mode+regions 2, arch id 1, frac 1, two f32
  steps 8, tensor count + scales + step factors, payload length, CRC 4 (the old v1
  layout and one factor byte per tensor)."""
  data, *_ = synthetic_file(12, 10)
  f = bitstream.read(data)
  assert bitstream.section_spans(data) == [(0, len(data))]
  n_tensors = len(f.base_scales)
  varint = len(bitstream.varint(len(f.base_payload)))
  assert len(data) == 4 + 2 + 2 + 1 + 1 + 8 + 1 + 2 * n_tensors + varint + \
      len(f.base_payload) + 4


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
  config.train.warmup.candidates = ()
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


def _object_masks(h=12, w=10):
  m1 = np.zeros((h, w), bool)
  m1[1:6, 1:5] = True
  m2 = np.zeros((h, w), bool)
  m2[5:11, 4:9] = True
  return [m1, m2]


@pytest.fixture(scope="module", params=["progressive_concat", "moric"])
def three_layer_file(request):
  return synthetic_file(12, 10, masks=_object_masks(), modulation=request.param)


def test_moric_files_are_version_6_and_others_stay_5():
  """The ``moric`` layout needs version 6; every other file is still written as 5
  (readable by version-5 decoders), and a version-5 file naming ``moric`` is refused."""
  data, bits, ints, _ = synthetic_file(12, 10, masks=_object_masks(), modulation="moric")
  assert data[3] == 6 and bitstream.read(data).modulation == "moric"
  dec = api.decode_file(data)
  for j in range(3):   # every region network back exactly (objects: relative to LSN 0)
    for a, b in zip(network_layout.flatten(dec.int_weights["lsn"][j]),
                    network_layout.flatten(ints["lsn"][j])):
      assert np.array_equal(a, b)
  assert sum(np.asarray(k).size for k in network_layout.flatten(ints["lsn"][1])) == 57
  for other in ("none", "progressive_concat"):
    masks = _object_masks() if other != "none" else ()
    assert synthetic_file(12, 10, masks=masks, modulation=other)[0][3] == 5
  as_v5 = _refit_crc(data[:3] + b"\x05" + data[4:bitstream.section_spans(data)[0][1] - 4])
  with pytest.raises(moric_jax.BitstreamError, match="moric in a version 5"):
    bitstream.read(as_v5)


def test_multi_region_sections_and_truncation(three_layer_file):
  data, _, _, symbols = three_layer_file
  spans = bitstream.section_spans(data)
  assert len(spans) == 3 and spans[-1][1] == len(data)
  full = api.decode_file(data)
  assert full.layers == 3 and not full.file.truncated
  assert all(np.array_equal(a, b) for a, b in zip(full.symbols, symbols))
  for k in (1, 2):
    want = api.decode(data, layers=k)
    for cut in (spans[k][0], spans[k][0] + 3, spans[k][1] - 1):
      d = api.decode_file(data[:cut])
      assert d.file.truncated and d.layers == k
      assert np.array_equal(d.image, want)
      with pytest.raises(ValueError, match="truncated"):
        api.decode_file(data[:cut], layers=3)
  for cut in (1, spans[0][1] // 2, spans[0][1] - 1):   # inside the base section
    with pytest.raises(moric_jax.BitstreamError):
      api.decode(data[:cut])
  with pytest.raises(moric_jax.BitstreamError, match="unexpected bytes"):
    api.decode(data + b"\0")


def test_multi_region_every_section_is_crc_checked(three_layer_file):
  data, *_ = three_layer_file
  for i in range(len(data)):
    for bit in (0x01, 0x80):
      bad = bytearray(data)
      bad[i] ^= bit
      with pytest.raises(moric_jax.BitstreamError):
        api.decode(bytes(bad))


def test_object_only_file_codes_only_object_latents():
  masks = _object_masks()
  data, bits, _, symbols = synthetic_file(12, 10, masks=masks, object_only=True,
                                          modulation="film")
  d = api.decode_file(data)
  assert d.file.object_only and d.image.shape == (12, 10, 4)
  assert np.array_equal(d.image[..., 3] > 0, masks[0] | masks[1])
  assert all(np.array_equal(a, b) for a, b in zip(d.symbols, symbols))
  assert sum(int(c.sum()) for c in d.layout.coded) < sum(c.size for c in d.layout.coded)
  assert api.decode(data, layers=1)[..., 3].sum() < d.image[..., 3].sum()
  info = api.info(data)
  assert info["regions"][1]["bits_weights"] > 0 and info["regions"][0]["bits_weights"] == 0

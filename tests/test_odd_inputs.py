"""Odd inputs: tiny/elongated sizes, image modes, bit depths, EXIF, pixel limits.

Real encodes use the fast preset with 10 steps (as ``moric encode --preset fast
--steps 10``) and share a few image sizes, because every new size compiles a new
training program (~30 s on 2 CPU cores). The other sizes go through the real decoder
with synthetic (untrained) files. ``MORIC_SLOW_TESTS=1`` also trains every size.
"""
import functools
import io
import os

import numpy as np
import pytest
from PIL import Image

import moric_jax
from moric_jax import api, image_io, presets
from moric_jax.coding import bitstream
from tests.conftest import smooth_image
from tests.test_bitstream import synthetic_file
from tests.test_cli import _one_line_error, run

SLOW = os.environ.get("MORIC_SLOW_TESTS") == "1"


def fast_config(steps: int = 10):
  """What ``moric encode --preset fast --steps N`` uses."""
  config = presets.fast()
  config.num_steps = steps
  return config


def u8(h, w, seed=0):
  return image_io.to_uint8(smooth_image(h, w, seed=seed))


@functools.lru_cache(maxsize=None)
def encode_tiny(h: int, w: int, grey: bool = False, seed: int = 0):
  """``(uint8 image, .moric bytes, info)`` of a tiny real encode (cached per session)."""
  img = u8(h, w, seed)
  if grey:
    img = img[..., 1]
  data, info = moric_jax.encode(img, fast_config())
  return img, data, info


# ----------------------------------------------------------------------------------
# Sizes.

@pytest.mark.parametrize("h,w", [(1, 1)] + (
    [(3, 41), (1, 9), (9, 1), (17, 33), (2, 200)] if SLOW else []))
def test_real_encode_odd_sizes(h, w):
  """1x1: the default 7-grid pyramid has seven 1x1 grids, which is fine."""
  img, data, info = encode_tiny(h, w)
  dec = moric_jax.decode(data)
  assert dec.shape == (h, w, 3) and dec.dtype == np.uint8
  assert np.array_equal(dec, info["reconstruction"])
  assert np.isfinite(info["bpp"]) and info["psnr"] > 5
  assert moric_jax.info(data)["num_wavefronts"] >= 1


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (17, 33), (2, 200), (200, 2)])
def test_decoder_handles_odd_sizes(h, w):
  data, _, _, symbols = synthetic_file(h, w)
  dec = api.decode_file(data)
  assert dec.image.shape == (h, w, 3)
  assert all(np.array_equal(a, b) for a, b in zip(dec.symbols, symbols))
  meta = moric_jax.info(data)
  from moric_jax.coding import wavefront
  from moric_jax.model import latents as latents_lib
  order = wavefront.front_order(tuple(latents_lib.grid_shapes(h, w, 7)), 3, 3)
  assert meta["num_wavefronts"] == order.num_fronts


# ----------------------------------------------------------------------------------
# Modes: load_image conversions (no training).

def _save(tmp_path, name, im, **kw):
  p = tmp_path / name
  im.save(p, **kw)
  return p


def test_grey_modes_keep_grey(tmp_path):
  g = u8(5, 7)[..., 0]
  for name, im in [("l.png", Image.fromarray(g)),
                   ("la.png", Image.fromarray(np.stack([g, np.full_like(g, 255)], -1), "LA")),
                   ("bw.png", Image.fromarray(g > 128))]:
    p = _save(tmp_path, name, im)
    arr = image_io.load_image(p, keep_grey=True)
    assert arr.shape == (5, 7), name
    rgb = image_io.load_image(p)
    assert rgb.shape == (5, 7, 3) and np.array_equal(rgb[..., 0], arr)
  np.testing.assert_array_equal(
      image_io.to_uint8(image_io.load_image(tmp_path / "l.png", keep_grey=True)), g)


def test_alpha(tmp_path):
  rgb = u8(4, 6)
  rgba = np.concatenate([rgb, np.full((4, 6, 1), 255, np.uint8)], -1)
  p = _save(tmp_path, "opaque.png", Image.fromarray(rgba))
  np.testing.assert_array_equal(image_io.to_uint8(image_io.load_image(p)), rgb)
  rgba[1, 2, 3] = 0
  p = _save(tmp_path, "holes.png", Image.fromarray(rgba))
  with pytest.raises(image_io.ImageError, match="non-opaque alpha"):
    image_io.load_image(p)
  la = np.stack([rgb[..., 0], np.full((4, 6), 255, np.uint8)], -1)
  la[0, 0, 1] = 7
  p = _save(tmp_path, "la.png", Image.fromarray(la, "LA"))
  with pytest.raises(image_io.ImageError, match="non-opaque alpha"):
    image_io.load_image(p, keep_grey=True)


def test_palette(tmp_path):
  rgb = u8(6, 6)
  pal = Image.fromarray(rgb).quantize(8)
  expected = np.asarray(pal.convert("RGB"))
  p = _save(tmp_path, "p.png", pal)
  np.testing.assert_array_equal(image_io.to_uint8(image_io.load_image(p)), expected)
  # Transparency on an index that is used: refused; on an unused index: opaque.
  used = int(np.asarray(pal)[0, 0])
  p = _save(tmp_path, "pt.png", pal, transparency=used)
  with pytest.raises(image_io.ImageError, match="alpha"):
    image_io.load_image(p)
  unused = next(i for i in range(256) if i not in set(np.asarray(pal).ravel().tolist()))
  p = _save(tmp_path, "pu.png", pal, transparency=unused)
  np.testing.assert_array_equal(image_io.to_uint8(image_io.load_image(p)), expected)


def test_16_bit(tmp_path):
  g16 = (np.arange(20).reshape(4, 5) * 3000).astype(np.uint16)
  p = _save(tmp_path, "g16.png", Image.fromarray(g16))
  notes = []
  arr = image_io.load_image(p, keep_grey=True, notes=notes)
  assert arr.shape == (4, 5)
  np.testing.assert_allclose(arr, g16 / 65535.0, atol=1e-6)
  assert any("16-bit" in n for n in notes)
  imagecodecs = pytest.importorskip("imagecodecs")
  rgb16 = (np.arange(60).reshape(4, 5, 3) * 1000).astype(np.uint16)
  p = tmp_path / "rgb16.png"
  p.write_bytes(imagecodecs.png_encode(rgb16))
  notes = []
  arr = image_io.load_image(p, notes=notes)
  assert arr.shape == (4, 5, 3)
  assert np.abs(arr * 65535.0 - rgb16).max() <= 256   # 8 bits kept
  assert any("16-bit" in n for n in notes)


def test_cmyk_jpeg(tmp_path):
  im = Image.fromarray(u8(8, 8)).convert("CMYK")
  p = _save(tmp_path, "cmyk.jpg", im, quality=95)
  assert Image.open(p).mode == "CMYK"
  notes = []
  arr = image_io.load_image(p, notes=notes)
  assert arr.shape == (8, 8, 3) and any("CMYK" in n for n in notes)
  assert np.abs(image_io.to_uint8(arr).astype(int) - u8(8, 8)).mean() < 20


def test_exif_orientation(tmp_path):
  rgb = u8(4, 7)
  exif = Image.Exif()
  exif[0x0112] = 6  # rotate 90 degrees clockwise to display
  p = _save(tmp_path, "o.png", Image.fromarray(rgb), exif=exif)
  arr = image_io.to_uint8(image_io.load_image(p))
  np.testing.assert_array_equal(arr, np.rot90(rgb, k=-1))
  p = _save(tmp_path, "o.jpg", Image.fromarray(rgb), exif=exif, quality=95)
  assert image_io.load_image(p).shape == (7, 4, 3)


def test_unsupported_modes(tmp_path):
  p = _save(tmp_path, "f.tif", Image.fromarray(np.zeros((3, 3), np.float32), "F"))
  with pytest.raises(image_io.ImageError, match="float"):
    image_io.load_image(p)
  p = tmp_path / "trunc.png"
  buf = io.BytesIO()
  Image.fromarray(u8(16, 16)).save(buf, format="PNG")
  p.write_bytes(buf.getvalue()[:60])
  with pytest.raises(image_io.ImageError):
    image_io.load_image(p)


def test_pixel_limit_checked_before_decoding(tmp_path, monkeypatch):
  p = _save(tmp_path, "big.png", Image.new("RGB", (300, 200)))
  from PIL import ImageFile
  loaded = []
  monkeypatch.setattr(ImageFile.ImageFile, "load",
                      lambda self, *a, **k: loaded.append(1) or None)
  with pytest.raises(image_io.ImageError, match="60000 pixels, above the limit of 1000"):
    image_io.load_image(p, max_pixels=1000)
  assert not loaded


# ----------------------------------------------------------------------------------
# Round trips through the codec.

def test_rgb_and_grey_round_trip():
  img, data, info = encode_tiny(8, 8)
  assert moric_jax.info(data)["mode"] == "RGB8" and info["mode"] == "RGB8"
  assert moric_jax.decode(data).shape == (8, 8, 3)
  g, data_g, info_g = encode_tiny(8, 8, grey=True)
  assert moric_jax.info(data_g)["mode"] == "L8" and info_g["mode"] == "L8"
  dec = moric_jax.decode(data_g)
  assert dec.shape == (8, 8) and dec.dtype == np.uint8
  assert np.array_equal(dec, info_g["reconstruction"])
  from moric_jax.eval import metrics
  assert metrics.psnr_uint8(dec, g) == info_g["psnr"]
  # (H, W, 1) input is grey too.
  assert bitstream.read(data_g).mode == bitstream.MODE_L8


def test_api_pixel_limits():
  config = fast_config()
  config.max_pixels = 63
  with pytest.raises(image_io.ImageError, match="above the limit of 63"):
    moric_jax.encode(u8(8, 8), config)
  _, data, _ = encode_tiny(8, 8)
  with pytest.raises(moric_jax.BitstreamError, match="decoder limit of 63"):
    moric_jax.decode(data, max_pixels=63)
  assert moric_jax.decode(data, max_pixels=64).shape == (8, 8, 3)
  assert moric_jax.decode(data, max_pixels=None).shape == (8, 8, 3)


def test_cli_grey_round_trip_and_limits(tmp_path):
  g = u8(8, 8)[..., 1]
  src = _save(tmp_path, "g.png", Image.fromarray(g))
  out = tmp_path / "g.moric"
  run("encode", src, "-o", out, "--preset", "fast", "--steps", "10", "--json", check_rc=0)
  png = tmp_path / "g_dec.png"
  run("decode", out, "-o", png, check_rc=0)
  dec = Image.open(png)
  assert dec.mode == "L" and dec.size == (8, 8)
  _one_line_error(p := run("decode", out, "-o", tmp_path / "x.png", "--max-pixels", "10"))
  assert "limit of 10" in p.stderr and not (tmp_path / "x.png").exists()
  _one_line_error(p := run("encode", src, "-o", tmp_path / "y.moric", "--max-pixels", "10"))
  assert "above the limit of 10" in p.stderr
  rgba = np.concatenate([u8(8, 8), np.zeros((8, 8, 1), np.uint8)], -1)
  _one_line_error(p := run("encode", _save(tmp_path, "a.png", Image.fromarray(rgba)), "-o",
                           tmp_path / "y.moric"))
  assert "alpha" in p.stderr
  p = run("encode", src, "-o", tmp_path / "y.moric", "--max-pixels", "0")
  assert p.returncode != 0 and "Traceback" not in p.stderr
  assert not (tmp_path / "y.moric").exists()

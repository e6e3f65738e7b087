import numpy as np
import pytest
from PIL import Image

from moric_jax import image_io


def test_missing_file(tmp_path):
  with pytest.raises(image_io.ImageError, match="not found"):
    image_io.load_image(tmp_path / "nope.png")


def test_not_an_image(tmp_path):
  p = tmp_path / "x.png"
  p.write_text("hello")
  with pytest.raises(image_io.ImageError, match="not a readable image"):
    image_io.load_image(p)


def test_directory_is_rejected(tmp_path):
  with pytest.raises(image_io.ImageError, match="not a file"):
    image_io.load_image(tmp_path)


def test_empty_array_rejected():
  with pytest.raises(image_io.ImageError, match="empty"):
    image_io.validate_image(np.zeros((0, 5, 3), np.uint8))


def test_bad_float_range_rejected():
  with pytest.raises(image_io.ImageError):
    image_io.validate_image(np.full((4, 4, 3), 2.0))


def test_pixel_limit(tmp_path):
  p = tmp_path / "big.png"
  Image.new("RGB", (40, 30)).save(p)
  with pytest.raises(image_io.ImageError, match="limit"):
    image_io.load_image(p, max_pixels=1000)


def test_modes_become_rgb(tmp_path):
  rgb = (np.arange(5 * 7 * 3).reshape(5, 7, 3) % 256).astype(np.uint8)
  Image.fromarray(rgb).save(tmp_path / "rgb.png")
  out = image_io.load_image(tmp_path / "rgb.png")
  assert out.shape == (5, 7, 3) and out.dtype == np.float32
  np.testing.assert_array_equal(image_io.to_uint8(out), rgb)
  Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
  g = image_io.load_image(tmp_path / "grey.png")
  np.testing.assert_array_equal(g[..., 0], g[..., 1])
  rgba = np.concatenate([rgb, np.full((5, 7, 1), 255, np.uint8)], axis=-1)
  Image.fromarray(rgba).save(tmp_path / "rgba.png")
  np.testing.assert_array_equal(image_io.to_uint8(image_io.load_image(tmp_path / "rgba.png")),
                                rgb)
  rgba[0, 0, 3] = 10
  Image.fromarray(rgba).save(tmp_path / "alpha.png")
  with pytest.raises(image_io.ImageError, match="alpha"):
    image_io.load_image(tmp_path / "alpha.png")


def test_save_png_is_atomic_and_round_trips(tmp_path):
  img = (np.random.default_rng(0).random((6, 9, 3)) * 255).astype(np.uint8)
  p = tmp_path / "out" / "r.png"
  image_io.save_png(p, img)
  np.testing.assert_array_equal(np.asarray(Image.open(p)), img)
  assert [f.name for f in p.parent.iterdir()] == ["r.png"]

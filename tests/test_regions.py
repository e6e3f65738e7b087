"""Tests for region label maps (moric_jax.regions.masks) and proposals (.proposals)."""
import numpy as np
import pytest
from PIL import Image
from skimage import draw

from moric_jax.image_io import ImageError
from moric_jax.regions import cstar, masks, proposals
from moric_jax.regions.masks import MAX_REGIONS


def _save(tmp_path, arr, mode=None, name="mask.png"):
  path = tmp_path / name
  Image.fromarray(arr, mode).save(path) if mode else Image.fromarray(arr).save(path)
  return path


def _two_values(h=12, w=20, lo=50, hi=200, dtype=np.uint8):
  """``(h, w)`` array: 0 background, ``lo`` in a top-left box, ``hi`` in a bottom-right box."""
  a = np.zeros((h, w), dtype)
  a[1:5, 2:8] = lo
  a[6:11, 10:18] = hi
  return a


# ----------------------------------------------------------------------------- load_label_map
def test_load_grey_renumbers_by_increasing_value(tmp_path):
  a = _two_values()
  labels = masks.load_label_map(_save(tmp_path, a), (12, 20))
  assert labels.dtype == np.int32 and labels.shape == (12, 20)
  np.testing.assert_array_equal(labels, np.select([a == 50, a == 200], [1, 2], 0))


def test_load_binary_mask_gives_one_object(tmp_path):
  a = np.zeros((10, 16), np.uint8)
  a[2:7, 3:12] = 255
  labels = masks.load_label_map(_save(tmp_path, a), (10, 16))
  np.testing.assert_array_equal(labels, (a > 0).astype(np.int32))
  # mode "1" (1-bit) PNG reads the same
  labels1 = masks.load_label_map(_save(tmp_path, a > 0, name="m1.png"), (10, 16))
  np.testing.assert_array_equal(labels1, labels)


def test_load_rgb_with_equal_channels_is_grey(tmp_path):
  a = _two_values()
  rgb = np.repeat(a[:, :, None], 3, axis=2)
  labels = masks.load_label_map(_save(tmp_path, rgb), (12, 20))
  np.testing.assert_array_equal(labels, masks.load_label_map(_save(tmp_path, a, name="g.png"),
                                                             (12, 20)))
  assert labels.max() == 2


def test_load_colour_labels_sorted_by_colour(tmp_path):
  rgb = np.zeros((12, 20, 3), np.uint8)
  rgb[1:5, 2:8] = (255, 0, 0)  # red
  rgb[6:11, 10:18] = (0, 0, 255)  # blue: sorts before red
  rgb[0, 19] = (0, 255, 0)  # green single pixel: between
  labels = masks.load_label_map(_save(tmp_path, rgb), (12, 20))
  assert labels[2, 3] == 3 and labels[7, 12] == 1 and labels[0, 19] == 2
  assert labels[0, 0] == 0 and labels.max() == 3


def test_load_rgba_transparent_is_background(tmp_path):
  rgba = np.zeros((8, 8, 4), np.uint8)
  rgba[..., 3] = 255
  rgba[2:6, 2:6, :3] = 255
  rgba[:, :2] = (200, 10, 10, 0)  # transparent colour: background
  labels = masks.load_label_map(_save(tmp_path, rgba), (8, 8))
  expected = np.zeros((8, 8), np.int32)
  expected[2:6, 2:6] = 1
  np.testing.assert_array_equal(labels, expected)


def test_load_palette_uses_indices(tmp_path):
  a = _two_values(lo=3, hi=1)
  im = Image.fromarray(a, "P")
  im.putpalette([0, 0, 0, 255, 255, 255, 9, 9, 9, 200, 100, 50] + [0] * (256 * 3 - 12))
  im.save(tmp_path / "p.png")
  labels = masks.load_label_map(tmp_path / "p.png", (12, 20))
  np.testing.assert_array_equal(labels, np.select([a == 1, a == 3], [1, 2], 0))


def test_load_size_mismatch_names_both_sizes(tmp_path):
  path = _save(tmp_path, _two_values())
  with pytest.raises(ImageError, match=r"20x12 but the image is 21x12"):
    masks.load_label_map(path, (12, 21))


def test_load_too_many_regions(tmp_path):
  a = np.zeros((4, 16), np.uint8)
  a[1, :MAX_REGIONS - 1] = np.arange(1, MAX_REGIONS) * 10
  assert masks.load_label_map(_save(tmp_path, a), (4, 16)).max() == MAX_REGIONS - 1
  a[2, 0] = 255  # one more object
  with pytest.raises(ImageError, match=f"{MAX_REGIONS} objects.*at most {MAX_REGIONS - 1}"):
    masks.load_label_map(_save(tmp_path, a, name="m2.png"), (4, 16))


def test_load_empty_missing_and_unreadable(tmp_path):
  with pytest.raises(ImageError, match="no object pixel"):
    masks.load_label_map(_save(tmp_path, np.zeros((5, 5), np.uint8)), (5, 5))
  with pytest.raises(ImageError, match="not found"):
    masks.load_label_map(tmp_path / "nope.png", (5, 5))
  (tmp_path / "junk.png").write_bytes(b"not an image at all")
  with pytest.raises(ImageError, match="not a readable image"):
    masks.load_label_map(tmp_path / "junk.png", (5, 5))


# ----------------------------------------------------------------------------- validate_label_map
def test_validate_renumbers_contiguously():
  a = np.array([[0, 7, 7], [42, 0, 3]], np.int64)
  out = masks.validate_label_map(a, (2, 3))
  assert out.dtype == np.int32
  np.testing.assert_array_equal(out, [[0, 2, 2], [3, 0, 1]])
  # no background at all: objects still start at 1
  np.testing.assert_array_equal(masks.validate_label_map(np.array([[5, 9]], np.uint16), (1, 2)),
                                [[1, 2]])
  np.testing.assert_array_equal(masks.validate_label_map(np.array([[True, False]]), (1, 2)),
                                [[1, 0]])


@pytest.mark.parametrize("labels, shape, match", [
    (np.ones((2, 3), np.float32), (2, 3), "integer or bool"),
    (np.array([[0, -1]]), (1, 2), "negative"),
    (np.ones((2, 3), np.int32), (3, 2), "3x2 but the image is 2x3"),
    (np.ones((2, 3, 1), np.int32), (2, 3), "2-D"),
    (np.zeros((2, 3), np.int32), (2, 3), "no object pixel"),
    (np.arange(MAX_REGIONS + 1).reshape(1, -1), (1, MAX_REGIONS + 1), "at most"),
])
def test_validate_errors(labels, shape, match):
  with pytest.raises(ImageError, match=match):
    masks.validate_label_map(labels, shape)


# ----------------------------------------------------------------------------- option parsing
def test_parse_region_lmbdas_good():
  assert masks.parse_region_lmbdas("", 3) == {}
  assert masks.parse_region_lmbdas("1=0.002,2=0.01", 3) == {1: 0.002, 2: 0.01}
  assert masks.parse_region_lmbdas(" 0 = 1e-3 , 2=5 ", 3) == {0: 1e-3, 2: 5.0}


@pytest.mark.parametrize("spec, match", [
    ("1:0.1", "REGION=LAMBDA"),
    ("1=0.1,", "REGION=LAMBDA"),
    ("x=0.1", "REGION=LAMBDA"),
    ("1=abc", "not a number"),
    ("1=0", "positive"),
    ("1=-2", "positive"),
    ("1=nan", "positive"),
    ("1=inf", "positive"),
    ("3=0.1", "regions 0..2"),
    ("1=0.1,1=0.2", "twice"),
])
def test_parse_region_lmbdas_bad(spec, match):
  with pytest.raises(ValueError, match=match):
    masks.parse_region_lmbdas(spec, 3)


def test_parse_regions_spec():
  assert masks.parse_regions_spec("") == 0
  assert masks.parse_regions_spec("none") == 0
  assert masks.parse_regions_spec("auto:2") == 2
  assert masks.parse_regions_spec(f"auto:{MAX_REGIONS}") == MAX_REGIONS
  for bad in ("auto", "auto:1", f"auto:{MAX_REGIONS + 1}", "auto:x", "3", "kmeans:3"):
    with pytest.raises(ValueError, match="regions option"):
      masks.parse_regions_spec(bad)


# ----------------------------------------------------------------------------- propose_regions
def _blobs(n=64, noise=0.02, seed=0):
  """Green background with a red disk and a blue ellipse; returns (image, disk, ellipse)."""
  rng = np.random.default_rng(seed)
  img = np.zeros((n, n, 3), np.float32) + np.array([0.2, 0.6, 0.3], np.float32)
  disk = np.zeros((n, n), bool)
  disk[draw.disk((20, 21), 11, shape=disk.shape)] = True
  ell = np.zeros((n, n), bool)
  ell[draw.ellipse(44, 41, 9, 14, shape=ell.shape, rotation=0.4)] = True
  img[disk] = (0.9, 0.2, 0.2)
  img[ell] = (0.2, 0.2, 0.9)
  img = np.clip(img + noise * rng.standard_normal(img.shape), 0, 1).astype(np.float32)
  return img, disk, ell


def _iou(a, b):
  return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("method", ["ward", "kmeans"])
def test_propose_finds_two_blobs(method):
  img, disk, ell = _blobs()
  labels = proposals.propose_regions(img, 3, method=method)
  assert labels.shape == (64, 64) and labels.dtype == np.int32
  assert sorted(np.unique(labels)) == [0, 1, 2]
  for truth in (disk, ell):
    assert max(_iou(labels == i, truth) for i in (1, 2)) > 0.8
  areas = np.bincount(labels.ravel())[1:]  # disjoint objects: by decreasing area
  assert areas[0] >= areas[1]


def test_propose_is_deterministic_and_contiguous():
  img, _, _ = _blobs(noise=0.05, seed=3)
  for method in ("ward", "kmeans"):
    a = proposals.propose_regions(img, 5, seed=7, method=method)
    b = proposals.propose_regions(img, 5, seed=7, method=method)
    np.testing.assert_array_equal(a, b)
    present = np.unique(a)
    np.testing.assert_array_equal(present, np.arange(len(present)))
    assert a.max() <= 4


def test_propose_respects_num_regions_and_tiny_images():
  rng = np.random.default_rng(0)
  busy = rng.random((32, 32, 3)).astype(np.float32)
  for k in (2, 3, 6):
    assert proposals.propose_regions(busy, k).max() <= k - 1
  for shape in ((16, 16, 3), (1, 20, 3), (2, 2, 3), (16, 16)):
    out = proposals.propose_regions(rng.random(shape).astype(np.float32), 4)
    assert out.shape == shape[:2] and out.dtype == np.int32
  with pytest.raises(ValueError, match="num_regions"):
    proposals.propose_regions(busy, MAX_REGIONS + 1)
  with pytest.raises(ValueError, match="method"):
    proposals.propose_regions(busy, 3, method="magic")


def test_propose_flat_image_gives_background_only():
  flat = np.full((32, 48, 3), 0.4, np.float32)
  assert not proposals.propose_regions(flat, 4).any()
  rng = np.random.default_rng(1)
  noisy = np.clip(flat + 0.02 * rng.standard_normal(flat.shape), 0, 1).astype(np.float32)
  for method in ("ward", "kmeans"):
    assert not proposals.propose_regions(noisy, 4, method=method).any()
  img, _, _ = _blobs()
  assert not proposals.propose_regions(img, 1).any()


def test_propose_drops_small_parts_and_keeps_nested_object_visible():
  img = np.zeros((64, 64, 3), np.float32) + np.array([0.2, 0.6, 0.3], np.float32)
  outer = np.zeros((64, 64), bool)
  outer[draw.disk((30, 30), 20, shape=outer.shape)] = True
  inner = np.zeros((64, 64), bool)
  inner[draw.disk((30, 30), 8, shape=inner.shape)] = True
  img[outer] = (0.9, 0.2, 0.2)
  img[inner] = (0.2, 0.2, 0.9)
  img[58:61, 58:61] = (0.9, 0.9, 0.1)  # 9 px yellow speck, < 2% of the image
  labels = proposals.propose_regions(img, 4)
  assert labels.max() == 2
  assert _iou(labels >= 1, outer) > 0.9  # the outer object's hole is filled ...
  assert _iou(labels == 2, inner) > 0.8  # ... and the enclosed one comes after it
  assert not labels[58:61, 58:61].any()


def test_proposal_survives_cstar_round_trip_with_coverage():
  img, disk, ell = _blobs()
  labels = proposals.propose_regions(img, 3)
  shape = labels.shape
  data = cstar.encode_label_map(labels)
  decoded = cstar.decode_label_map(data, shape)
  assert decoded.max() == labels.max() == 2
  for i in range(1, labels.max() + 1):
    # every pixel of region i is in its decoded region or a later one
    assert np.all(decoded[labels == i] >= i)
    truth = disk if _iou(labels == i, disk) > _iou(labels == i, ell) else ell
    assert _iou(decoded == i, truth) > 0.7
  for i, m in enumerate(cstar.decode_label_masks(data, shape), start=1):
    assert m[labels == i].all()

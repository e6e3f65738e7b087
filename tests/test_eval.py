"""Evaluation layer: metrics, baseline codecs, BD-rate, anchors, RD plots."""
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from moric_jax.eval import baselines, bdrate, metrics, plots



def _image(h=64, w=64, seed=0):
  from tests.conftest import smooth_image
  return np.floor(smooth_image(h, w, seed) * 255 + 0.5).astype(np.uint8)


def _noisy(img, sigma, seed=1):
  rng = np.random.default_rng(seed)
  return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def test_psnr_and_ms_ssim_identities():
  img = _image()
  assert metrics.psnr_uint8(img, img) == float("inf")
  assert metrics.ms_ssim_uint8(img, img) == pytest.approx(1.0)
  a, b = _noisy(img, 3), _noisy(img, 12)
  assert metrics.psnr_uint8(img, a) > metrics.psnr_uint8(img, b)
  assert 1.0 > metrics.ms_ssim_uint8(img, a) > metrics.ms_ssim_uint8(img, b) > 0.0


def test_ms_ssim_single_scale_matches_skimage_ssim():
  from skimage.metrics import structural_similarity
  img = _image(48, 40)
  noisy = _noisy(img, 10)
  ref = structural_similarity(img, noisy, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False, data_range=255)
  assert metrics.ms_ssim_uint8(img, noisy, max_scales=1) == pytest.approx(ref, abs=1e-9)


def test_ms_ssim_scales_for_small_images():
  assert metrics.ms_ssim_num_scales(512, 768) == 5
  assert metrics.ms_ssim_num_scales(64, 64) == 3
  assert metrics.ms_ssim_num_scales(11, 30) == 1
  with pytest.raises(ValueError, match="too small"):
    metrics.ms_ssim_uint8(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8))


def test_bpp_from_bytes():
  assert metrics.bpp_from_bytes(1024, 64, 128) == 1.0
  with pytest.raises(ValueError):
    metrics.bpp_from_bytes(10, 0, 5)


@pytest.mark.parametrize("codec", list(baselines.CODECS))
def test_baseline_sweep_is_monotone_and_finite(codec):
  if not baselines.is_available(codec):
    pytest.skip(f"{codec} not in this imagecodecs build")
  img = _image()
  grid = baselines.default_qualities(codec)
  qualities = [grid[1], grid[len(grid) // 2], grid[-1]]
  options = {"speed": 10} if codec == "avif" else {}     # fastest AV1 preset for the test
  rows = baselines.sweep(img, codec, qualities, **options)
  assert [r["quality"] for r in rows] == qualities
  bpps = [r["bpp"] for r in rows]
  assert bpps == sorted(bpps) and bpps[0] < bpps[-1]
  for r in rows:
    assert r["codec"] == codec
    assert r["bpp"] == pytest.approx(8 * r["num_bytes"] / (64 * 64))
    assert math.isfinite(r["psnr"]) and r["psnr"] > 15
    assert 0 < r["ms_ssim"] <= 1


def test_encode_decode_errors():
  with pytest.raises(ValueError, match="unknown codec"):
    baselines.encode_decode("bpg", _image(), 50)
  with pytest.raises(ValueError, match="uint8"):
    baselines.encode_decode("jpeg", _image().astype(np.float32), 50)
  assert baselines.canonical_name("JXL") == "jpegxl"


def test_unavailable_codec_is_skipped_with_warning(monkeypatch):
  monkeypatch.setattr(baselines, "is_available", lambda name: False)
  with pytest.warns(RuntimeWarning, match="skipping webp"):
    assert baselines.sweep(_image(), "webp") == []
  with pytest.raises(baselines.CodecUnavailableError):
    baselines.encode_decode("webp", _image(), 50)


def test_bd_rate_identity_and_shift():
  bpp = [0.1, 0.2, 0.4, 0.8, 1.6]
  psnr = [28.0, 30.5, 33.0, 35.8, 38.9]
  assert bdrate.bd_rate(bpp, psnr, bpp, psnr) == pytest.approx(0.0, abs=1e-9)
  assert bdrate.bd_psnr(bpp, psnr, bpp, psnr) == pytest.approx(0.0, abs=1e-9)
  more_bits = [1.1 * b for b in bpp]
  for method in bdrate.METHODS:
    assert bdrate.bd_rate(bpp, psnr, more_bits, psnr, method=method) == pytest.approx(10.0,
                                                                                     abs=0.1)
  assert bdrate.bd_psnr(bpp, psnr, more_bits, psnr) < 0
  # Unsorted input is sorted first.
  assert bdrate.bd_rate(bpp[::-1], psnr[::-1], more_bits, psnr) == pytest.approx(10.0, abs=0.1)


def test_bd_rate_rejects_bad_curves():
  bpp = [0.1, 0.2, 0.4, 0.8]
  with pytest.raises(ValueError, match="at least 4"):
    bdrate.bd_rate(bpp[:3], [28, 30, 32], bpp, [28, 30, 32, 34])
  with pytest.raises(ValueError, match="strictly increasing"):
    bdrate.bd_rate(bpp, [28, 31, 30, 34], bpp, [28, 30, 32, 34])
  with pytest.raises(ValueError, match="do not overlap"):
    bdrate.bd_rate(bpp, [20, 21, 22, 23], bpp, [30, 31, 32, 33])
  assert bdrate.pareto_front([0.1, 0.2, 0.3, 0.4], [28, 31, 30, 34]) == (
      [0.1, 0.2, 0.4], [28.0, 31.0, 34.0])


def test_shipped_anchors():
  """The published tables ship with the package; curves are means over the images asked
  for, lambda by lambda."""
  from moric_jax.eval import anchors
  c3 = anchors.curve_on("c3", list(anchors.KODAK))
  assert len(c3.bpps) == 14 and (c3.bpps[0], c3.psnrs[0]) == (0.0926, 27.06)
  assert c3.same_images and len(c3.images) == 24
  assert not anchors.curve_on("c3", ["kodim23"]).same_images
  assert anchors.curve_on("c3", ["alberto-montalesi-176097"]) is None
  k23 = anchors.curve_on("coolchic50", ["kodim23", "not_kodak"])
  assert k23.images == ["kodim23"] and not k23.same_images
  rows = [r for r in anchors.rows("coolchic50") if r.image == "kodim23"]
  assert sorted(zip(k23.bpps, k23.psnrs)) == sorted((r.bpp, r.psnr) for r in rows)
  two = anchors.curve_on("coolchic50", ["kodim01", "kodim23"])
  want = np.mean([[r.bpp for r in anchors.rows("coolchic50")
                   if r.image == i and r.lmbda == 0.001][0] for i in ("kodim01", "kodim23")])
  assert min(abs(b - want) for b in two.bpps) < 1e-12
  assert anchors.curve_on("coolchic50_clic20", ["kodim23"]) is None
  assert len(anchors.curve_on("coolchic31", list(anchors.KODAK)).images) == 24
  assert anchors.parse_names("coolchic50, c3") == ("coolchic50", "c3")
  assert anchors.parse_names("none") == () and anchors.parse_names(None) == anchors.DEFAULT
  with pytest.raises(ValueError, match="coolchic99"):
    anchors.parse_names("coolchic99")
  with pytest.raises(ValueError, match="Cool-chic 3.1's values and is now coolchic31"):
    anchors.parse_names("coolchic34")
  # Cool-chic 5.0.1 beats 3.1 on the Kodak means (SOURCE.md: about -11%).
  cc50 = anchors.curve_on("coolchic50", list(anchors.KODAK))
  cc31 = anchors.curve_on("coolchic31", list(anchors.KODAK))
  value, _ = bdrate.bd_rate_auto(cc31.bpps, cc31.psnrs, cc50.bpps, cc50.psnrs)
  assert -15 < value < -7


def test_rd_plot_writes_png(tmp_path):
  path = tmp_path / "sub" / "rd.png"
  out = plots.rd_plot({"a": ([0.1, 0.5, 1.0], [28, 33, 37]),
                       "b": ([0.2, 0.6], [27, float("inf")])}, path, title="t",
                      styles={"b": {"linestyle": "--"}})
  assert out == str(path)
  data = path.read_bytes()
  assert data.startswith(b"\x89PNG") and len(data) > 1000
  assert not [p for p in path.parent.iterdir() if p.name != "rd.png"]   # no temp files left


def test_bd_rate_linear_on_two_point_curves():
  from moric_jax.eval import bdrate
  r = [0.2, 0.8]
  d = [28.0, 34.0]
  assert abs(bdrate.bd_rate_linear(r, d, r, d)) < 1e-9
  more = [x * 1.2 for x in r]
  assert abs(bdrate.bd_rate_linear(r, d, more, d) - 20.0) < 1e-6
  value, method = bdrate.bd_rate_auto(r, d, more, d)
  assert method == "linear" and abs(value - 20.0) < 1e-6
  import pytest
  with pytest.raises(ValueError, match="overlap"):
    bdrate.bd_rate_linear(r, d, r, [40.0, 45.0])


def test_shipped_anchors_follow_the_shared_copy():
  """Every table of ../shared/data/anchors/ ships byte for byte, under its name, with
  the label its SOURCE.md gives (the shared copy is upstream's at Cool-chic v5.0.1)."""
  from moric_jax.eval import anchors
  shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "anchors"
  if not shared.is_dir():
    pytest.skip(f"{shared} not here")
  names = sorted(p.name for p in shared.glob("*.tsv"))
  assert names and all((anchors.ANCHOR_DIR / n).read_bytes() == (shared / n).read_bytes()
                       for n in names)
  shipped = {a.file: a.label for a in anchors.ANCHORS.values()}
  assert set(names) <= set(shipped) and set(shipped) - set(names) == {"c3_kodak_mean.tsv"}
  assert shipped["coolchic31_kodak.tsv"] == "Cool-chic 3.1"
  assert shipped["coolchic50_kodak.tsv"] == shipped["coolchic50_clic20.tsv"] == "Cool-chic 5.0.1"
  assert sorted(p.name for p in anchors.ANCHOR_DIR.glob("*.tsv")) == sorted(shipped)
  # C3's shipped points are the ones the shared SOURCE.md lists.
  text = (shared / "SOURCE.md").read_text()
  for r in anchors.rows("c3"):
    assert f"{r.bpp:.4f}\u2192{r.psnr:.2f}" in text, r

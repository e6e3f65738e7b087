"""Regions (MoRIC): layouts, latent ownership, layered files, per-region lambda.

All encodes here share one image size and config, so the few XLA programs compile once
(persistent cache) and are reused.
"""
import json

import numpy as np
import pytest
from PIL import Image

from moric_jax import api
from moric_jax.coding import bitstream
from moric_jax.coding import integer_arm, rans, wavefront
from moric_jax.model import latents as latents_lib
from moric_jax.model import region_layout
from tests.conftest import smooth_image

H = W = 32


def _config(steps=40):
  from moric_jax import presets
  config = presets.default()
  config.num_steps = steps
  config.quant.num_deltas = 5
  config.train.warmup.candidates = ()   # warm-up has its own tests (test_warmup.py)
  config.train.optimizer = "adam"       # compiles faster than SOAP (test_soap.py)
  return config


def _labels(n_objects):
  labels = np.zeros((H, W), np.int32)
  labels[3:17, 4:20] = 1
  if n_objects >= 2:
    labels[14:30, 16:29] = 2
  return labels


@pytest.fixture(scope="module")
def image():
  return smooth_image(H, W, seed=3, noise=0.02)


@pytest.fixture(scope="module")
def three_regions(image):
  return api.encode(image, _config(), labels=_labels(2))


@pytest.fixture(scope="module")
def two_regions_lmbda(image):
  """The same 2-region image with a low and a high lambda on the object."""
  out = {}
  for name, lam in (("low", 2e-4), ("high", 5e-2)):
    config = _config()
    config.regions.lmbdas = f"1={lam}"
    out[name] = api.encode(image, config, labels=_labels(1))
  return out


def test_coded_latents_cover_exactly_the_footprint():
  rng = np.random.default_rng(0)
  mask = np.zeros((20, 27), bool)
  mask[4:13, 9:22] = rng.random((9, 13)) > 0.3
  coded = region_layout.coded_latents(mask, 5)
  for k, c in enumerate(coded):
    gh, gw = c.shape
    uh = latents_lib.upsampling_matrix(20, gh)
    uw = latents_lib.upsampling_matrix(27, gw)
    for a in range(gh):
      for b in range(gw):
        impulse = np.zeros((gh, gw), np.float32)
        impulse[a, b] = 1.0
        touches = np.abs(uh @ impulse @ uw.T)[mask].max() > 1e-6
        assert touches == c[a, b], (k, a, b)


def test_layout_partition_last_region_wins_and_latents_have_one_owner():
  m1 = np.zeros((H, W), bool)
  m1[2:20, 2:20] = True
  m2 = np.zeros((H, W), bool)
  m2[10:25, 10:25] = True
  lay = region_layout.make_layout([m1, m2], H, W, 7)
  assert lay.num_regions == 3 and lay.boxes[0] == (0, 0, H, W)
  labels = lay.labels
  assert (labels[m2] == 2).all() and (labels[m1 & ~m2] == 1).all()
  assert lay.boxes[1] == (2, 2, 18, 18) and lay.boxes[2] == (10, 10, 15, 15)
  assert lay.box_mask(1).sum() == (m1 & ~m2).sum()
  # One pyramid: every latent owned by exactly one region, the one at its centre.
  shapes = latents_lib.grid_shapes(H, W, 7)
  assert [o.shape for o in lay.owners] == shapes and lay.all_coded
  for (gh, gw), o in zip(shapes, lay.owners):
    for i in range(gh):
      for j in range(gw):
        cy, cx = min((2 * i + 1) * H // (2 * gh), H - 1), min((2 * j + 1) * W // (2 * gw),
                                                               W - 1)
        assert o[i, j] == labels[cy, cx]
  assert np.bincount(lay.owner_ids(), minlength=3).sum() == sum(h * w for h, w in shapes)
  with pytest.raises(ValueError, match="no pixel"):
    region_layout.make_layout([m2, m1 | m2], H, W, 7)
  only = region_layout.make_layout([m1, m2], H, W, 7, object_only=True)
  assert only.rendered == (1, 2) and not only.all_coded
  assert all((o[c] > 0).all() for o, c in zip(only.owners, only.coded))


def test_wavefront_skips_uncoded_latents():
  rng = np.random.default_rng(1)
  from moric_jax.model.arm import ARM
  import jax
  import jax.numpy as jnp
  params = ARM().init(jax.random.PRNGKey(0), jnp.zeros((1, 24)))
  ints = jax.tree_util.tree_map(lambda w: np.round(np.asarray(w) / 0.01).astype(np.int32),
                                params)
  iarm = integer_arm.from_quantized(integer_arm.dense_layers(ints), 0.01, 10)
  shapes = [(9, 11), (5, 6), (3, 3)]
  coded = [rng.random(s) > 0.5 for s in shapes]
  grids = [np.where(c, rng.integers(-5, 6, s), 0).astype(np.int32)
           for s, c in zip(shapes, coded)]
  enc = rans.new_encoder()
  bits = wavefront.encode_latents(enc, iarm, grids, 3, 3, coded)
  payload = rans.payload_bytes(enc)
  got = wavefront.decode_latents(rans.new_decoder(payload), iarm, shapes, 3, 3,
                                 coded=coded)
  assert all(np.array_equal(a, b) for a, b in zip(got, grids))
  enc_all = rans.new_encoder()
  bits_all = wavefront.encode_latents(enc_all, iarm, grids, 3, 3)
  assert bits < bits_all   # uncoded zeros cost nothing
  bad = [g.copy() for g in grids]
  bad[0][~coded[0]] = 1
  with pytest.raises(ValueError, match="coded"):
    wavefront.encode_latents(rans.new_encoder(), iarm, bad, 3, 3, coded)


def test_three_region_round_trip_and_layers(three_regions):
  data, info = three_regions
  assert info["num_regions"] == 3 and len(info["regions"]) == 3
  decoded = api.decode_file(data)
  np.testing.assert_array_equal(decoded.image, info["reconstruction"])
  np.testing.assert_array_equal(api.decode(data), info["reconstruction"])
  labels = decoded.layout.labels
  renders = [api.decode(data, layers=k) for k in (1, 2, 3)]
  np.testing.assert_array_equal(renders[2], info["reconstruction"])
  for k, img in enumerate(renders, start=1):
    # Layers already drawn show their final pixels; the rest still show layer 0.
    np.testing.assert_array_equal(img[labels < k], renders[2][labels < k])
    np.testing.assert_array_equal(img[labels >= k], renders[0][labels >= k])
  assert not np.array_equal(renders[0], renders[2])
  with pytest.raises(ValueError, match="layers"):
    api.decode(data, layers=4)
  # The layer-0 image is a usable preview of the whole frame.
  assert np.abs(renders[0].astype(float) - info["reconstruction"]).mean() < 40
  # A file cut after layer k decodes to layer k.
  spans = bitstream.section_spans(data)
  for k in (1, 2):
    np.testing.assert_array_equal(api.decode(data[:spans[k][0]]), renders[k - 1])


def test_region_bits_match_the_file(three_regions):
  data, info = three_regions
  meta = api.info(data)
  f = bitstream.read(data)
  assert meta["num_regions"] == 3 and meta["modulation"] == "moric"
  total = meta["bits_shared_weights"]
  for r, m in enumerate(meta["regions"]):
    enc = info["regions"][r]
    assert m["pixels"] == enc["pixels"] and m["lmbda"] == pytest.approx(enc["lmbda"])
    assert m["bits_contour"] == enc["bits_contour"]
    assert m["bits_latents"] == pytest.approx(enc["bits_latents"])
    assert m["bits_weights"] == pytest.approx(enc["bits_weights"])
    total += m["bits_contour"] + m["bits_latents"] + m["bits_weights"]
  assert meta["regions"][0]["bits_contour"] == 0 and meta["regions"][1]["bits_contour"] > 0
  assert sum(m["pixels"] for m in meta["regions"]) == H * W
  # Ideal code lengths vs the real bytes: payloads within a few words of the estimate.
  payload_bits = 8 * (len(f.base_payload) + sum(len(l.payload) for l in f.layers))
  est = total - sum(m["bits_contour"] for m in meta["regions"])
  assert est - 64 <= payload_bits <= est + 64 * (1 + len(f.layers))
  assert 8 * len(data) / (H * W) == pytest.approx(info["bpp"])
  assert np.isfinite(info["psnr"]) and info["psnr"] > 15
  assert 0 < info["macs_per_pixel"] < 5000


def test_object_only_encode(image):
  config = _config()
  config.regions.object_only = True
  labels = _labels(1)
  data, info = api.encode(image, config, labels=labels)
  dec = api.decode(data)
  assert dec.shape == (H, W, 4)
  np.testing.assert_array_equal(dec, info["reconstruction"])
  obj = dec[..., 3] > 0
  assert obj.sum() == info["pixels"] and obj[labels == 1].all()   # C* covers the object
  assert info["bpp"] == pytest.approx(8 * len(data) / info["pixels"])
  from moric_jax.eval import metrics
  from moric_jax.image_io import to_uint8
  assert info["psnr"] == metrics.psnr_uint8(dec[..., :3][obj], to_uint8(image)[obj])
  assert (dec[..., :3][~obj] == 0).all()


def test_lower_region_lambda_raises_its_psnr_and_bit_share(two_regions_lmbda):
  low, high = (two_regions_lmbda[k][1] for k in ("low", "high"))
  for data, info in two_regions_lmbda.values():
    assert info["num_regions"] == 2
    np.testing.assert_array_equal(api.decode(data), info["reconstruction"])

  def share(info):
    bits = [r["bits_latents"] + r["bits_weights"] for r in info["regions"]]
    return bits[1] / sum(bits)

  assert low["regions"][1]["psnr"] > high["regions"][1]["psnr"] + 1.0
  assert share(low) > share(high)
  assert low["regions"][1]["lmbda"] == pytest.approx(2e-4)
  assert high["regions"][1]["lmbda"] == pytest.approx(5e-2)


def test_cli_masks_layers_info(tmp_path, image, monkeypatch, capsys):
  from moric_jax import cli
  from tests.conftest import __file__ as _conf  # noqa: F401 (cache dir is set there)
  import jax
  monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", jax.config.jax_compilation_cache_dir)
  src, mask = tmp_path / "in.png", tmp_path / "mask.png"
  Image.fromarray((image * 255).round().astype(np.uint8)).save(src)
  Image.fromarray((_labels(2) * 100).astype(np.uint8)).save(mask)
  out = tmp_path / "out.moric"
  # The fixtures' config (so the three_regions programs are reused from the cache).
  cfg = tmp_path / "cfg.py"
  cfg.write_text("from tests.test_multi_region import _config\n\n\n"
                 "def get_config():\n  return _config()\n")
  assert cli.main(["encode", str(src), "-o", str(out), "--config", str(cfg), "--masks",
                   str(mask), "--json"]) == 0
  enc = json.loads(capsys.readouterr().out)
  assert enc["num_regions"] == 3 and len(enc["regions"]) == 3
  png = tmp_path / "l1.png"
  assert cli.main(["decode", str(out), "-o", str(png), "--layers", "1", "--json"]) == 0
  assert json.loads(capsys.readouterr().out)["layers"] == 1
  assert np.asarray(Image.open(png)).shape == (H, W, 3)
  assert cli.main(["info", str(out), "--json"]) == 0
  meta = json.loads(capsys.readouterr().out)
  assert [r["region"] for r in meta["regions"]] == [0, 1, 2]
  # User mistakes: one line, status 1.
  assert cli.main(["decode", str(out), "-o", str(png), "--layers", "5"]) == 1
  assert cli.main(["encode", str(src), "-o", str(out), "--masks", str(tmp_path / "no.png")]) == 1
  assert cli.main(["encode", str(src), "-o", str(out), "--regions", "auto:99"]) == 1
  assert cli.main(["encode", str(src), "-o", str(out), "--steps", "2", "--masks",
                   str(mask), "--region-lmbda", "7=0.1"]) == 1
  err = capsys.readouterr().err
  assert "Traceback" not in err and err.count("error:") == 4


def test_ablation_launcher_writes_table_and_plot(tmp_path, image):
  """One scheme, one lambda (the program is the fixture's, cached; scheme forward
  passes are tested in test_every_modulation_scheme_uses_the_gmn)."""
  import subprocess
  import sys
  from pathlib import Path
  import jax
  root = Path(__file__).resolve().parents[1]
  src, mask = tmp_path / "in.png", tmp_path / "mask.png"
  Image.fromarray((image * 255).round().astype(np.uint8)).save(src)
  Image.fromarray((_labels(2) * 100).astype(np.uint8)).save(mask)
  out = tmp_path / "abl"
  env = dict(__import__("os").environ, JAX_COMPILATION_CACHE_DIR=str(
      jax.config.jax_compilation_cache_dir), PYTHONPATH=str(root))
  cmd = [sys.executable, "-m", "experiments.ablate_modulation",
         "--config=configs/ablation.py", f"--config.image_path={src}",
         f"--config.output_dir={out}", "--config.sweep.crop=0", "--config.num_steps=40",
         f"--config.regions.masks={mask}", "--config.regions.auto=",
         "--config.sweep.lmbdas=0.002,", "--config.sweep.schemes=progressive_concat",
         "--config.sweep.include_single=False", "--config.quant.num_deltas=5",
         "--config.train.warmup.candidates=()"]
  p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0, p.stderr[-2000:]
  import csv
  rows = list(csv.DictReader(open(out / "results.csv")))
  assert [r["scheme"] for r in rows] == ["progressive_concat"]
  for r in rows:
    assert int(r["num_regions"]) == 3 and float(r["bpp"]) > 0
    assert np.isfinite(float(r["psnr"])) and float(r["steps_per_second"]) > 0
  assert (out / "rd.png").stat().st_size > 1000
  assert "progressive_concat" in (out / "results.md").read_text()
  # Rerun: finished rows are skipped.
  p = subprocess.run(cmd, cwd=root, env=env, capture_output=True, text=True, timeout=900)
  assert p.returncode == 0 and "(1 done)" in p.stdout
  assert len(list(csv.DictReader(open(out / "results.csv")))) == 1


@pytest.mark.parametrize("scheme", ["none", "film", "concat_input", "progressive_concat",
                                    "moric"])
def test_every_modulation_scheme_uses_the_gmn(scheme):
  import jax
  import jax.numpy as jnp
  from moric_jax import presets
  from moric_jax.model.codec import Codec
  config = presets.default()
  config.model.modulation = scheme
  m = np.zeros((16, 16), bool)
  m[2:9, 3:12] = True
  codec = Codec.from_config(config.model, 16, 16, [m])
  params = codec.init(jax.random.PRNGKey(0))
  assert ("gmn" in params) == (scheme != "none") and len(params["lsn"]) == 2
  rng = np.random.default_rng(0)
  sym = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in codec.grid_shapes]
  x, out0 = codec.synthesize(params, sym)
  assert x.shape == out0.shape == (16, 16, 3) and np.isfinite(np.asarray(x)).all()
  mask1 = codec.labels() == 1
  if scheme != "none":   # changing the shared GMN changes every region's output
    bumped = dict(params, gmn=jax.tree_util.tree_map(lambda w: w + 0.3, params["gmn"]))
    x2, _ = codec.synthesize(bumped, sym)
    assert not np.allclose(np.asarray(x2)[mask1], np.asarray(x)[mask1])
    assert not np.allclose(np.asarray(x2)[~mask1], np.asarray(x)[~mask1])
  # One region is the same codec: no GMN, one LSN.
  single = Codec.from_config(config.model, 16, 16)
  assert single.gmn is None and len(single.init(jax.random.PRNGKey(0))["lsn"]) == 1


def test_auto_regions_keep_the_lower_rd_cost(image):
  """``auto:K``: the proposal and one region are both coded; the file kept is the one
  with the lower D + lambda R, and the choice is reported."""
  config = _config()
  config.regions.auto = "auto:3"
  data, info = api.encode(image, config)
  choice = info["region_choice"]
  assert choice["kept"] in ("regions", "single") and choice["proposal_regions"] >= 2
  kept_cost = min(choice["rd_cost_regions"], choice["rd_cost_single"])
  assert info["rd_cost"] == pytest.approx(kept_cost)
  assert (info["num_regions"] > 1) == (choice["kept"] == "regions")
  np.testing.assert_array_equal(api.decode(data), info["reconstruction"])
  d = np.asarray(info["reconstruction"], np.float64) / 255.0
  from moric_jax.image_io import to_uint8
  mse = np.mean((d - to_uint8(image) / 255.0) ** 2)
  assert info["rd_cost"] == pytest.approx(mse + config.lmbda * 8 * len(data) / (H * W),
                                          rel=1e-6)

"""MoRIC's modular layout (modulation ``moric``): one shared trunk, a tiny network per
region joined to it by a shared aggregator (``model/region_net.py``)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax import api, presets
from moric_jax.coding import bitstream
from moric_jax.eval import complexity
from moric_jax.model import region_net
from moric_jax.model.codec import Codec
from tests.conftest import smooth_image

H = W = 32


def _labels():
  labels = np.zeros((H, W), np.int32)
  yy, xx = np.mgrid[0:H, 0:W]
  labels[(yy - 15) ** 2 + (xx - 17) ** 2 < 64] = 1   # a disk
  return labels


def _image():
  """A background gradient with a differently coloured textured disk on it."""
  img = smooth_image(H, W, seed=4, noise=0.02)
  disk = _labels() == 1
  img[disk] = np.clip(img[disk][:, ::-1] * 0.6 + 0.3, 0, 1)
  return img


def _config(steps=80):
  config = presets.default()
  config.num_steps = steps
  config.train.chunk_size = 40
  config.quant.num_deltas = 9
  config.train.warmup.candidates = ()
  config.train.optimizer = "adam"       # compiles faster than SOAP (test_soap.py)
  config.lmbda = 1e-3
  return config


@pytest.fixture(scope="module")
def trained():
  image = _image()
  return image, api.encode(image, _config(), labels=_labels())


def _codec(scheme="moric", labels=None):
  config = presets.default().model
  config.modulation = scheme
  masks = [] if labels is None else [labels == 1]
  return Codec.from_config(config, H, W, masks)


def test_default_region_layout_is_moric_with_tiny_region_networks():
  codec = _codec(labels=_labels())
  assert codec.scheme == "moric" and codec.modular.stages == 3
  params = codec.init(jax.random.PRNGKey(0))
  size = lambda t: sum(np.size(x) for x in jax.tree_util.tree_leaves(t))
  assert [size(p) for p in params["lsn"]] == [57, 57]
  gmn = params["gmn"]
  assert size({k: v for k, v in gmn.items() if k != "trunk"}) == 90
  assert size(gmn["trunk"]) == size(_codec().init(jax.random.PRNGKey(0))["lsn"][0])
  # One region: the plain single-region codec (no GMN, one full LSN).
  single = _codec()
  assert single.scheme == "none" and single.modular is None and single.gmn is None


def test_a_new_region_starts_as_the_trunk_and_its_network_only_moves_its_pixels():
  codec = _codec(labels=_labels())
  params = codec.init(jax.random.PRNGKey(1))
  rng = np.random.default_rng(0)
  sym = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in codec.grid_shapes]
  x, out0 = codec.synthesize(params, sym)
  stack = codec.upsample([codec.q_step * s for s in sym], params.get("upsampling"))
  trunk = codec.lsn.apply(params["gmn"]["trunk"], stack)
  np.testing.assert_allclose(np.asarray(x), np.asarray(trunk), atol=1e-6)
  np.testing.assert_allclose(np.asarray(out0), np.asarray(trunk), atol=1e-6)
  disk = codec.labels() == 1
  bump = lambda t: jax.tree_util.tree_map(lambda w: w + 0.2, t)
  moved, _ = codec.synthesize(dict(params, lsn=[params["lsn"][0], bump(params["lsn"][1])]),
                              sym)
  diff = np.abs(np.asarray(moved) - np.asarray(x)).max(-1)
  assert (diff[~disk] == 0).all() and (diff[disk] > 1e-3).all()
  # The aggregator is shared: bumping it (and a head) moves both regions' pixels.
  lsn = [bump(p) for p in params["lsn"]]
  a, _ = codec.synthesize(dict(params, lsn=lsn), sym)
  gmn = {k: (v if k == "trunk" else bump(v)) for k, v in params["gmn"].items()}
  b, _ = codec.synthesize(dict(params, lsn=lsn, gmn=gmn), sym)
  d = np.abs(np.asarray(a) - np.asarray(b)).max(-1)
  assert d[disk].max() > 1e-3 and d[~disk].max() > 1e-3


def test_a_region_layout_starts_as_the_single_region_codec_of_the_same_seed():
  """Paired comparisons: with one key, the 2-region codec's first image is the 1-region
  codec's, pixel for pixel (same trunk, same ARM, zero region heads)."""
  two, one = _codec(labels=_labels()), _codec()
  rng = np.random.default_rng(1)
  sym = [jnp.asarray(rng.normal(size=s), jnp.float32) for s in one.grid_shapes]
  for seed in (0, 3):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 2)   # a warm-up candidate's key
    p2, p1 = two.init(key), one.init(key)
    x2, _ = two.synthesize(p2, sym)
    x1, _ = one.synthesize(p1, sym)
    np.testing.assert_array_equal(np.asarray(x2), np.asarray(x1))
    for a, b in zip(jax.tree_util.tree_leaves(p2["arm"]), jax.tree_util.tree_leaves(p1["arm"])):
      np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_macs_of_the_modular_layout():
  codec = _codec(labels=_labels())
  macs = complexity.macs_per_pixel(codec)
  trunk = 7 * 18 + 18 * 18 + 18 * 3 + 2 * 81
  per_region_pixel = region_net.macs(3, 3)
  assert per_region_pixel == 2 * 3 + 3 * 3 + 3 * (3 * 3) + (6 + 9 + 12) * 3
  assert macs["synthesis"] == pytest.approx(trunk + per_region_pixel)
  assert macs["total"] < 2000


def test_trained_round_trip_layers_and_cut_file(trained):
  image, (data, info) = trained
  assert data[3] == 6 and info["modulation"] == "moric" and info["num_regions"] == 2
  full = api.decode(data)
  np.testing.assert_array_equal(full, info["reconstruction"])
  layer0 = api.decode(data, layers=1)
  disk = api.decode_file(data).layout.labels == 1   # the decoded (dilated) contour
  assert disk.sum() >= (_labels() == 1).sum()
  np.testing.assert_array_equal(layer0[~disk], full[~disk])   # composition by the mask
  assert not np.array_equal(layer0[disk], full[disk])
  cut = data[:bitstream.section_spans(data)[1][0]]
  np.testing.assert_array_equal(api.decode(cut), layer0)
  meta = api.info(data)
  assert meta["modulation"] == "moric" and meta["gmn"]["width"] == 3
  obj = meta["regions"][1]
  assert 0 < obj["bits_weights"] < 57 * 16 and obj["bits_contour"] > 0


def test_object_layer_never_makes_the_image_worse_than_layer_0(trained):
  """Decoding the object's layer lowers the error on the object and over the frame."""
  image, (data, _) = trained
  target = np.floor(image * 255 + 0.5)
  disk = _labels() == 1
  mse = lambda a, m: np.mean((a.astype(np.float64)[m] - target[m]) ** 2)
  full, layer0 = api.decode(data), api.decode(data, layers=1)
  every = np.ones_like(disk)
  assert mse(full, disk) < mse(layer0, disk)
  assert mse(full, every) < mse(layer0, every)


def test_frozen_region_networks_render_the_trunk_everywhere():
  """``regions.frozen_networks`` (a diagnostic): the region networks and the aggregator
  keep their initial values, so every region shows the trunk's image and the object's
  layer changes no pixel."""
  from moric_jax.decoder import decode as decoder
  config = _config(steps=40)
  config.regions.frozen_networks = True
  data, info = api.encode(_image(), config, labels=_labels())
  full = api.decode(data)
  np.testing.assert_array_equal(full, info["reconstruction"])
  np.testing.assert_array_equal(api.decode(data, layers=1), full)
  for net in decoder.decode_entropy(data).int_weights["lsn"]:
    assert not np.any(net["Head"]["kernel"]) and not np.any(net["Head"]["bias"])


def test_object_only_moric_file():
  image = _image()
  config = _config(steps=40)
  config.regions.object_only = True
  data, info = api.encode(image, config, labels=_labels())
  assert data[3] == 6
  out = api.decode(data)
  np.testing.assert_array_equal(out, info["reconstruction"])
  assert out.shape == (H, W, 4)
  np.testing.assert_array_equal(out[..., 3] > 0, api.decode_file(data).layout.labels == 1)


def test_lambda_batched_regions_equal_their_own_files():
  """``compress_image_batched`` trains a region layout's lambdas together; every file
  decodes to what the encoder reports, and the lower lambda spends more bits."""
  from moric_jax.train.batched import compress_image_batched
  image, config = _image(), _config(steps=40)
  results = compress_image_batched(image, config, [5e-4, 2e-2], labels=_labels())
  files = []
  for lmbda, result in zip((5e-4, 2e-2), results):
    cfg = config.copy_and_resolve_references()
    cfg.lmbda = lmbda
    data, info = api.package(image, result, cfg)
    assert info["num_regions"] == 2 and info["modulation"] == "moric"
    np.testing.assert_array_equal(api.decode(data), info["reconstruction"])
    files.append(data)
  assert len(files[0]) > len(files[1])
  config.regions.lmbdas = "1=0.001"
  with pytest.raises(ValueError, match="per-region"):
    compress_image_batched(image, config, [1e-3, 2e-3], labels=_labels())

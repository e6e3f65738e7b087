"""The JAX-free decoder: no JAX import, NumPy networks equal to the Flax forward."""
import subprocess
import sys

import jax
import numpy as np
import pytest

from moric_jax import presets
from moric_jax.coding import bitstream, network_layout
from moric_jax.decoder import decode as decoder
from moric_jax.decoder import networks
from moric_jax.model import weights as weights_lib
from moric_jax.model.codec import Codec
from tests.test_bitstream import synthetic_file, _object_masks


def test_decoder_imports_no_jax(tmp_path):
  data, *_ = synthetic_file(12, 10, masks=_object_masks(), modulation="progressive_concat")
  path = tmp_path / "x.moric"
  path.write_bytes(data)
  code = ("import sys; from moric_jax import api, cli; "
          f"img = api.decode(open({str(path)!r}, 'rb').read()); api.info(open({str(path)!r}, 'rb').read()); "
          f"cli.main(['decode', {str(path)!r}, '-o', {str(tmp_path / 'x.png')!r}]); "
          "bad = [m for m in ('jax', 'jaxlib', 'flax', 'optax', 'orbax') if m in sys.modules "
          "or any(k.startswith(m + '.') for k in sys.modules)]; "
          "bad += [k for k in sys.modules if k.startswith('moric_jax.train')]; "
          "print('BAD', bad) if bad else print('CLEAN')")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120)
  assert out.returncode == 0, out.stderr
  assert "CLEAN" in out.stdout, out.stdout


def _model_config(scheme):
  config = presets.default().model
  config.modulation = scheme
  return config


@pytest.mark.parametrize("scheme", ["none", "film", "concat_input", "progressive_concat",
                                    "moric"])
def test_numpy_synthesis_matches_flax(scheme):
  h, w = 20, 18
  m = np.zeros((h, w), bool)
  m[4:15, 3:11] = True
  codec = Codec.from_config(_model_config(scheme), h, w, [m])
  params = codec.init(jax.random.PRNGKey(1))
  rng = np.random.default_rng(0)
  # Random (not zero-initialised) weights so every layer matters.
  delta = 1 / 64
  perturb = lambda t: jax.tree_util.tree_map(
      lambda x: np.round(rng.normal(0, 20, np.shape(x))).astype(np.int32), t)
  ints = {"arm": perturb(params["arm"]), "lsn": [perturb(p) for p in params["lsn"]]}
  net = {"arm": weights_lib.dequantize_tree(ints["arm"], delta),
         "lsn": [weights_lib.dequantize_tree(k, delta) for k in ints["lsn"]]}
  for name in codec.shared_networks[1:]:   # GMN, learned upsampling
    ints[name] = perturb(params[name])
    net[name] = weights_lib.dequantize_tree(ints[name], delta)
  assert codec.upsampling == "learned"     # the default preset's
  symbols = [rng.integers(-3, 4, s).astype(np.int32) for s in codec.grid_shapes]
  want, _ = codec.synthesize(net, [np.asarray(s, np.float32) for s in symbols])
  arch = bitstream.Architecture.from_model_config(_model_config(scheme))
  g = codec.header_gmn() or {"width": 8, "mod_width": 4}
  f = bitstream.MoricFile(h, w, 0, 2, False, arch, scheme, g["width"], g["mod_width"],
                          "gelu", 10, delta, delta,
                          (b"",), 0.0, delta, (), b"", (), delta_upsampling=delta)
  # Templates list the tensors in Flax's leaf order and shapes.
  for name in codec.networks:
    tree = params[name] if name != "lsn" else params["lsn"][0]
    tpl = network_layout.file_templates(f)[name]
    assert network_layout.leaf_shapes(tpl) == [tuple(x.shape) for x in
                                         jax.tree_util.tree_leaves(tree)]
  got = decoder.synthesize_float(f, codec.layout, ints, [delta, delta], symbols, 2)
  np.testing.assert_allclose(got, np.asarray(want), atol=2e-4, rtol=1e-4)


def test_compiled_synthesis_is_built():
  """``pip install -e .`` builds ``decoder/_synth``; without it decoding is ~15x slower."""
  import os
  if os.environ.get("MORIC_SYNTHESIS", "").lower() == "numpy":
    pytest.skip("NumPy synthesis forced")
  assert networks.compiled(), "moric_jax.decoder._synth is not built (pip install -e .)"


def _random_params(tpl, rng, scale=0.4):
  if isinstance(tpl, dict):
    return {k: _random_params(v, rng, scale) for k, v in tpl.items()}
  return (rng.normal(0, scale, tpl)).astype(np.float32)


@pytest.mark.skipif(not networks.compiled(), reason="compiled synthesis not built")
@pytest.mark.parametrize("scheme", ["none", "film", "concat_input", "progressive_concat"])
@pytest.mark.parametrize("act,hidden,convs,ksize,h,w",
                         [("gelu", (18, 18), 2, 3, 37, 45),   # default widths, odd sizes
                          ("relu", (5, 9, 3), 1, 5, 1, 70),   # tail blocks, 5x5 convs
                          ("gelu", (16,), 0, 3, 33, 2)])
def test_compiled_synthesis_matches_reference(scheme, act, hidden, convs, ksize, h, w):
  import dataclasses
  arch = dataclasses.replace(bitstream.Architecture(), num_grids=5, lsn_hidden=hidden,
                             lsn_activation=act, lsn_num_res_convs=convs,
                             lsn_kernel_size=ksize)
  rng = np.random.default_rng(3)
  grids = [rng.integers(-6, 7, s).astype(np.int32)
           for s in networks.grids.grid_shapes(h, w, arch.num_grids)]
  stack = networks.upsample_stack(grids, arch.q_step, h, w)
  want_stack = networks.upsample_stack_reference(grids, arch.q_step, h, w)
  np.testing.assert_allclose(stack, want_stack, rtol=1e-6, atol=1e-6)
  sig = want_sig = None
  if scheme != "none":
    gmn = _random_params(network_layout.gmn_template(arch, scheme, 8, 4), rng)
    sig = networks.gmn_forward(gmn, want_stack, arch, scheme, 4, act)
    want_sig = networks.gmn_forward_reference(gmn, want_stack, arch, scheme, 4, act)
    for a, b in zip(sig, want_sig):
      np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  lsn = _random_params(network_layout.lsn_template(arch, scheme, 4), rng)
  got = networks.lsn_forward(lsn, want_stack, want_sig, h, w, arch, scheme)
  want = networks.lsn_forward_reference(lsn, want_stack, want_sig, h, w, arch, scheme)
  assert got.shape == want.shape == (h, w, 3) and got.dtype == np.float32
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
  # Strided inputs (decode.py passes gathered boxes) and repeated calls: same pixels.
  again = networks.lsn_forward(lsn, np.asfortranarray(want_stack),
                               None if want_sig is None else [s.T.copy().T for s in want_sig],
                               h, w, arch, scheme)
  assert np.array_equal(again, got)


@pytest.mark.skipif(not networks.compiled(), reason="compiled synthesis not built")
@pytest.mark.parametrize("convs", [2, 0])
def test_compiled_trunk_stages_and_modular_compose_match_reference(convs):
  """The ``moric`` trunk's stages (compiled) equal the NumPy reference's; a region
  network shows only at its own pixels, later layers win, undrawn pixels are 0."""
  import dataclasses
  from moric_jax.model import region_net
  h, w = 23, 31
  arch = dataclasses.replace(bitstream.Architecture(), num_grids=5, lsn_num_res_convs=convs)
  rng = np.random.default_rng(5)
  grids = [rng.integers(-6, 7, s).astype(np.int32)
           for s in networks.grids.grid_shapes(h, w, arch.num_grids)]
  stack = networks.upsample_stack_reference(grids, arch.q_step, h, w)
  gmn = _random_params(network_layout.gmn_template(arch, "moric", 3, 3), rng)
  got = networks.trunk_stages(gmn["trunk"], stack, h, w, arch)
  want = networks.lsn_forward_reference(gmn["trunk"], stack, None, h, w, arch, "none",
                                        stages=True)
  assert got.shape == want.shape == (1 + convs, 3, h, w)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=2e-5)
  np.testing.assert_allclose(np.transpose(got[-1], (1, 2, 0)),
                             networks.lsn_forward(gmn["trunk"], stack, None, h, w, arch,
                                                  "none"), rtol=1e-6, atol=1e-6)
  nets = [_random_params(network_layout.lsn_template(arch, "moric", 3, 3), rng)
          for _ in range(2)]
  m = np.zeros((10, 12), bool)
  m[2:8, 3:9] = True
  layers = [(nets[0], (0, 0, h, w), None), (nets[1], (5, 7, 10, 12), m)]
  x = networks.compose_modular(got, gmn, layers, h, w, "gelu")
  agg = {k: v for k, v in gmn.items() if k != "trunk"}
  feats = [got[k].reshape(3, -1).T for k in range(got.shape[0])]
  coords = region_net.coordinates(0, 0, h, w, h, w)
  every = [region_net.apply(n, agg, coords, feats, "gelu", np).reshape(h, w, 3)
           for n in nets]
  obj = np.zeros((h, w), bool)
  obj[5:15, 7:19] = m
  np.testing.assert_allclose(x[obj], every[1][obj], rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(x[~obj], every[0][~obj], rtol=1e-5, atol=1e-5)
  only_object = networks.compose_modular(got, gmn, layers[1:], h, w, "gelu")
  assert (only_object[~obj] == 0).all()


@pytest.mark.skipif(not networks.compiled(), reason="compiled synthesis not built")
@pytest.mark.parametrize("zero", [(), ("Res_0", "Res_1", "Res_2"), ("Agg_0",),
                                  ("Agg_0", "Agg_1", "Res_1"), ("Agg_2",), ("Head",),
                                  ("Agg_1", "Res_2@kernel")])
def test_pruned_region_program_gives_the_same_pixels(zero):
  """A region program without its all-zero layers (trained region networks are sparse)
  writes exactly the unpruned program's values, and runs fewer dense layers."""
  import dataclasses
  arch = dataclasses.replace(bitstream.Architecture(), num_grids=5, lsn_num_res_convs=2)
  rng = np.random.default_rng(11)
  gmn = _random_params(network_layout.gmn_template(arch, "moric", 3, 3), rng)
  net = _random_params(network_layout.lsn_template(arch, "moric", 3, 3), rng)
  agg = {k: v for k, v in gmn.items() if k != "trunk"}
  for name in zero:
    name, _, part = name.partition("@")
    tree = agg if name.startswith("Agg") else net
    for k in ((part,) if part else ("kernel", "bias")):
      tree[name][k] = np.zeros_like(tree[name][k])
  n = 300
  coords = rng.uniform(-1, 1, (n, 2)).astype(np.float32)
  stages = [rng.normal(size=(n, 3)).astype(np.float32) for _ in range(3)]
  outs = []
  for prune in (False, True):
    prog = networks._region_program(net, agg, 3, "gelu", prune=prune)
    out = np.full((n, 3), np.nan, np.float32)
    prog.run([coords] + stages, [out], n)
    outs.append((out, len(prog.dense_at)))
  (full, dense_full), (pruned, dense_pruned) = outs
  assert np.isfinite(full).all()
  np.testing.assert_array_equal(pruned, full)
  assert dense_pruned < dense_full if zero else dense_pruned == dense_full
  if zero == ("Head",):
    np.testing.assert_array_equal(pruned, stages[-1])


@pytest.mark.skipif(not networks.compiled(), reason="compiled synthesis not built")
def test_compiled_synthesis_rejects_bad_programs():
  from moric_jax.decoder import _synth
  x = np.zeros((4, 2), np.float32)
  with pytest.raises(ValueError):
    _synth.mlp(np.array([1, 5, 2, 0, 0], np.int32), np.zeros(1, np.float32), [x], [x], 4)
  with pytest.raises(ValueError):
    _synth.mlp(np.array([1, 0, 2, 0, 5, 0, 3, 0, 0], np.int32), np.zeros(1, np.float32),
               [x], [x], 4)
  with pytest.raises(ValueError):    # more rows than the arrays have
    _synth.mlp(np.array([0], np.int32), np.zeros(1, np.float32), [x], [x], 5)
  with pytest.raises(TypeError):
    _synth.mlp(np.array([0], np.int32), np.zeros(1, np.float32), [x.astype(np.float64)],
               [x], 4)


@pytest.mark.parametrize("out_size,in_size", [(1, 1), (2, 1), (5, 3), (7, 4), (512, 8),
                                              (768, 384), (999, 500), (13, 13), (10, 1)])
def test_two_taps_are_the_upsampling_matrix(out_size, in_size):
  i0, i1, w0, w1 = networks.grids.two_taps(out_size, in_size)
  dense = np.zeros((out_size, in_size), np.float32)
  rows = np.arange(out_size)
  dense[rows, i0] += w0
  dense[rows, i1] += w1
  assert np.array_equal(dense, networks.grids.upsampling_matrix(out_size, in_size))


def _render_boxes(f, layout, ints, deltas, symbols, layers):
  """Every LSN over its whole box, pasted inside its mask (the plain composition)."""
  h, w, a = f.height, f.width, f.arch
  stack = networks.upsample_stack(symbols, a.q_step, h, w)
  sig = None
  if f.has_gmn:
    sig = networks.gmn_forward(network_layout.dequantize(ints["gmn"], f.delta_gmn), stack, a,
                               f.modulation, f.mod_width, f.gmn_activation)
  x = np.zeros((h, w, 3), np.float32)
  for j, r in enumerate(layout.rendered[:layers]):
    p = network_layout.dequantize(ints["lsn"][j], deltas[j])
    t, l, bh, bw = layout.boxes[r]
    idx = ((np.arange(t, t + bh)[:, None] * w) + np.arange(l, l + bw)[None, :]).ravel()
    out = networks.lsn_forward(p, stack[idx], None if sig is None else [s[idx] for s in sig],
                               bh, bw, a, f.modulation)
    m = np.ones((bh, bw), bool) if r == 0 else layout.box_mask(r)
    x[t:t + bh, l:l + bw][m] = out[m]
  return x


@pytest.mark.parametrize("scheme,object_only", [("progressive_concat", False),
                                                ("film", False), ("none", False),
                                                ("concat_input", True)])
def test_compose_equals_box_rendering(scheme, object_only, monkeypatch):
  """compose.synthesize_float (each LSN only where it shows) == every LSN over its whole
  box, bit for bit, for every layer count (and decode.synthesize_float, whichever it
  uses); also without the compiled kernels."""
  from moric_jax.decoder import compose
  h, w = 41, 37
  m1 = np.zeros((h, w), bool)
  m1[5:30, 4:20] = True
  m2 = np.zeros((h, w), bool)
  m2[18:40, 12:36] = True
  m2[0:3, 30:37] = True
  data, *_ = synthetic_file(h, w, masks=[m1, m2], modulation=scheme,
                            object_only=object_only)
  f, masks, layout = decoder.parse(data)
  ints, deltas, symbols = decoder.decode_payloads(f, layout, len(f.layers))
  for n in range(1, len(layout.rendered) + 1):
    want = _render_boxes(f, layout, ints, deltas, symbols, n)
    assert np.array_equal(decoder.synthesize_float(f, layout, ints, deltas, symbols, n), want)
    got = compose.synthesize_float(f, layout, ints, deltas, symbols, n)
    assert got.shape == want.shape == (h, w, 3)
    assert np.array_equal(got, want)
  monkeypatch.setattr(networks, "_synth", None)
  ref = compose.synthesize_float(f, layout, ints, deltas, symbols, len(layout.rendered))
  np.testing.assert_allclose(ref, want, atol=2e-5)


@pytest.mark.skipif(not networks.compiled(), reason="compiled synthesis not built")
@pytest.mark.parametrize("c,k,h,w", [(3, 3, 1, 1), (3, 5, 6, 40), (2, 3, 7, 9), (4, 4, 5, 17)])
def test_compiled_res_convs_match_reference(c, k, h, w):
  from moric_jax.decoder import _synth
  rng = np.random.default_rng(c * 100 + k)
  x = rng.normal(size=(c, h, w)).astype(np.float32)
  kernels = rng.normal(0, 0.3, (2, k, k, c, c)).astype(np.float32)
  biases = rng.normal(0, 0.3, (2, c)).astype(np.float32)
  want = x.copy()
  for kern, b in zip(kernels, biases):
    want = want + networks._shifted_conv(networks._act("gelu", want.copy()), kern) + b[:, None, None]
  got = x.copy()
  _synth.res_convs(got, kernels, biases, 1)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

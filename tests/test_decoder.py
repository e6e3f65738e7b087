"""The JAX-free decoder: no JAX import, NumPy networks equal to the Flax forward."""
import subprocess
import sys

import jax
import numpy as np
import pytest

from moric_jax import presets
from moric_jax.coding import bitstream
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


@pytest.mark.parametrize("scheme", ["none", "film", "concat_input", "progressive_concat"])
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
  if codec.gmn is not None:
    ints["gmn"] = perturb(params["gmn"])
    net["gmn"] = weights_lib.dequantize_tree(ints["gmn"], delta)
  symbols = [rng.integers(-3, 4, s).astype(np.int32) for s in codec.grid_shapes]
  want, _ = codec.synthesize(net, [np.asarray(s, np.float32) for s in symbols])
  arch = bitstream.Architecture.from_model_config(_model_config(scheme))
  f = bitstream.MoricFile(h, w, 0, 2, False, arch, scheme, 8, 4, "gelu", 10, delta, delta,
                          (b"",), 0.0, delta, (), b"", ())
  # Templates list the tensors in Flax's leaf order and shapes.
  for name in codec.networks:
    tree = params[name] if name != "lsn" else params["lsn"][0]
    tpl = decoder.templates(f)[name]
    assert networks.leaf_shapes(tpl) == [tuple(x.shape) for x in
                                         jax.tree_util.tree_leaves(tree)]
  got = decoder.synthesize_float(f, codec.layout, ints, [delta, delta], symbols, 2)
  np.testing.assert_allclose(got, np.asarray(want), atol=2e-4, rtol=1e-4)

"""Integer entropy model: tables, fixed-point ARM (NumPy vs JAX int32), wavefronts."""
import jax
import numpy as np
import pytest

from moric_jax.coding import integer_arm, rans, tables, wavefront
from moric_jax.model import arm as arm_lib
from moric_jax.model import latents as latents_lib


def random_layers(rng, widths=(24, 18, 18, 2), scale=0.5):
  return [(rng.normal(0, scale, (a, b)), rng.normal(0, 0.2, b))
          for a, b in zip(widths[:-1], widths[1:])]


def test_tables_regenerate_identically():
  fresh = tables.generate_tables()
  stored = tables.load_counts()
  for k in tables.TABLE_KEYS:
    assert np.array_equal(fresh[k], stored[k]), k
    assert np.all(stored[k].sum(-1) == 2**tables.TABLE_PRECISION)
    assert stored[k].min() >= 1


def test_tables_match_laplace_bits():
  """Table bits follow the float model's Laplace bin bits for typical symbols."""
  import jax.numpy as jnp
  bits = tables.load_bits()["latent"]
  for s in (10, 30, 50):
    b = float(tables.table_scale(s))
    for q in (0, 8, 15):
      mu = float(tables.mu_bucket_centre(q))
      r = np.arange(-3, 4)
      ref = np.asarray(arm_lib.laplace_bin_bits(jnp.asarray(r, jnp.float32), mu, b))
      got = bits[s, q, r + tables.LATENT_RADIUS]
      assert np.allclose(got[ref < 8], ref[ref < 8], atol=0.02)
      assert np.allclose(got, ref, atol=0.1)


def test_integer_arm_numpy_int64_jax_agree():
  rng = np.random.default_rng(0)
  layers = random_layers(rng)
  layers[0][0][0, 0] = 50.0  # forces a small fraction-bit count and clipping
  for fb in (integer_arm.choose_frac_bits(layers), integer_arm.MAX_FRAC_BITS):
    iarm = integer_arm.from_float(layers, fb)
    ctx = rng.integers(-40, 41, (5000, 24))
    ctx[:50] = rng.choice([-5000, -1024, 1024, 3000], (50, 24))  # context clipping
    mu_f, ls_f = integer_arm.apply_numpy(iarm, ctx)
    mu_i, ls_i = integer_arm.apply_int64(iarm, ctx)
    mu_j, ls_j = jax.jit(lambda c: integer_arm.apply_jax(iarm, c))(ctx)
    assert np.array_equal(mu_f, mu_i) and np.array_equal(ls_f, ls_i)
    assert np.array_equal(mu_f, np.asarray(mu_j)) and np.array_equal(ls_f, np.asarray(ls_j))
    idx_np = integer_arm.table_indices(mu_f, ls_f)
    import jax.numpy as jnp
    idx_jx = integer_arm.table_indices(mu_j, ls_j, xp=jnp)
    for a, b in zip(idx_np, idx_jx):
      assert np.array_equal(a, np.asarray(b))


def test_integer_arm_worst_case_fits_int32():
  """Extreme weights/contexts: int32 (JAX) equals int64, i.e. no overflow."""
  w = [(np.full((24, 48), 100.0), np.full(48, 1e9)),
       (np.full((48, 48), 100.0), np.full(48, 1e9)),
       (np.full((48, 2), -100.0), np.full(2, -1e9))]
  iarm = integer_arm.from_float(w, integer_arm.MAX_FRAC_BITS)
  ctx = np.full((3, 24), 10**6)
  assert np.array_equal(integer_arm.apply_int64(iarm, ctx)[0],
                        np.asarray(integer_arm.apply_jax(iarm, ctx)[0]))
  assert np.array_equal(integer_arm.apply_int64(iarm, ctx)[0],
                        integer_arm.apply_numpy(iarm, ctx)[0])


def test_dense_layers_of_flax_arm():
  arm = arm_lib.ARM(hidden=(18, 18))
  params = arm.init(jax.random.PRNGKey(0), np.zeros((1, 24), np.float32))
  layers = integer_arm.dense_layers(params)
  assert [w.shape for w, _ in layers] == [(24, 18), (18, 18), (18, 2)]


@pytest.mark.parametrize("hw", [(20, 23), (9, 40)])
def test_wavefront_round_trip_numpy_and_jax(hw):
  rng = np.random.default_rng(1)
  shapes = latents_lib.grid_shapes(*hw, 5)
  grids = [np.round(rng.laplace(0, 0.5 * 2**k, s)).astype(np.int32)
           for k, s in enumerate(shapes)]
  grids[0][2, 3] = 700      # escapes, both signs, large classes
  grids[1][0, 0] = -45
  grids[2][1, 1] = 100000
  iarm = integer_arm.from_float(random_layers(rng, scale=0.3), 10)
  enc = rans.new_encoder()
  bits = wavefront.encode_latents(enc, iarm, grids, 3, 3)
  data = rans.payload_bytes(enc)
  assert 8 * len(data) <= bits + 64
  outs = []
  for arm_fn in (None, integer_arm.apply_jax):
    dec = rans.new_decoder(data)
    outs.append(wavefront.decode_latents(dec, iarm, shapes, 3, 3, arm_fn=arm_fn))
    assert dec.is_empty()
  for a, b, g in zip(*outs, grids):
    assert np.array_equal(a, g) and np.array_equal(b, g)


def test_front_order_is_causal():
  shapes = ((7, 11), (4, 6))
  for rows, cols in ((3, 3), (2, 2), (1, 0)):
    order = wavefront.front_order(shapes, rows, cols)
    rank = np.full(order.canvas_shape[0] * order.canvas_shape[1], -1)
    for f in range(order.num_fronts):
      rank[order.positions[order.starts[f]:order.starts[f + 1]]] = f
    for f in range(order.num_fronts):
      pos = order.positions[order.starts[f]:order.starts[f + 1]]
      ctx = rank[pos[:, None] + order.offsets]
      assert np.all(ctx < f)   # -1 = padding, else decoded in an earlier front

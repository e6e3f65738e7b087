"""Compiled ANS decoder (fast_ans) against constriction and the reference wavefront path."""
import subprocess
import sys

import constriction
import numpy as np
import pytest

from moric_jax.coding import fast_ans, integer_arm, rans, tables, wavefront, weights_coding
from moric_jax.errors import BitstreamError
from moric_jax.model import grids as grids_lib


def random_layers(rng, widths=(24, 18, 18, 2), scale=0.3):
  return [(rng.normal(0, scale, (a, b)), rng.normal(0, 0.2, b))
          for a, b in zip(widths[:-1], widths[1:])]


def encoded(rows_probs, symbols):
  enc = constriction.stream.stack.AnsCoder()
  enc.encode_reverse(symbols.astype(np.int32), rans.CATEGORICAL,
                     np.ascontiguousarray(rows_probs))
  return enc.get_compressed().astype(np.uint32)


@pytest.mark.parametrize("key", list(tables.TABLE_KEYS) + ["random", "random_f32"])
def test_categorical_bit_exact_with_constriction(key):
  rng = np.random.default_rng(0)
  if key.startswith("random"):
    p = rng.random((300, 37)) ** 3
    p[:, 5] = 0.0
    if key == "random_f32":
      p = p.astype(np.float32).astype(np.float64)
  else:
    p = tables.load_probabilities()[key]
    p = p.reshape(-1, p.shape[-1])
  rows = rng.integers(0, p.shape[0], 6000)
  sym = rng.integers(0, p.shape[1], rows.size)
  sym[:1000] = [rng.choice(p.shape[1], p=p[r] / p[r].sum()) for r in rows[:1000]]
  words = encoded(p[rows], sym)
  st = fast_ans.open_stream(words)
  out = np.zeros(rows.size, np.int64)
  assert fast_ans.decode_categorical(words, st, fast_ans.fixed_point_cdf(p), rows, out) == 0
  assert np.array_equal(out, sym) and st[0] == 0
  if not key.startswith("random"):        # the table LUT path
    cdf, lut = fast_ans.load_cdfs()[key]
    assert np.array_equal(cdf, fast_ans.fixed_point_cdf(p))
    if key in ("weight", "latent"):
      radius = tables.WEIGHT_RADIUS if key == "weight" else tables.LATENT_RADIUS
      keep = sym <= 2 * radius                # no escapes in this stream
      words = encoded(p[rows[keep]], sym[keep])
      dec = rans.GuardedDecoder(words.astype("<u4").tobytes())
      r = dec.decode_residuals(key, rows[keep], np.zeros(keep.sum(), np.int64), radius)
      assert np.array_equal(r, sym[keep] - radius) and dec.is_empty()


def test_uniform_and_partial_decode_state():
  rng = np.random.default_rng(1)
  sizes = (1 << rng.integers(1, 24, 3000)).astype(np.int32)
  sizes[:50] = rng.integers(2, 1 << 20, 50)
  sym = (rng.random(sizes.size) * sizes).astype(np.int32)
  enc = constriction.stream.stack.AnsCoder()
  enc.encode_reverse(sym, rans.UNIFORM, sizes)
  data = rans.payload_bytes(enc)
  ref = rans.new_decoder(data)
  dec = rans.GuardedDecoder(data)
  for a, b in ((0, 1000), (1000, 1001), (1001, 3000)):
    assert np.array_equal(dec.decode(rans.UNIFORM, sizes[a:b]), sym[a:b])
    assert np.array_equal(ref.decode(rans.UNIFORM, sizes[a:b]), sym[a:b])
    assert np.array_equal(dec.remaining_words(), ref.get_compressed())
  assert dec.is_empty()
  dec.finish()


def test_guarded_decoder_payload_checks():
  with pytest.raises(BitstreamError):
    rans.GuardedDecoder(b"\x01\x02\x03")
  with pytest.raises(BitstreamError):
    rans.GuardedDecoder(b"\x01\x00\x00\x00\x00\x00\x00\x00")   # zero last word
  dec = rans.GuardedDecoder(b"")
  assert dec.is_empty()
  with pytest.raises(BitstreamError, match="truncated"):
    dec.decode(rans.CATEGORICAL, np.full((1, 4), 0.25))
  dec = rans.GuardedDecoder(b"\x05\x00\x00\x00")
  with pytest.raises(BitstreamError, match="data left"):
    dec.finish()


def make_latents(rng, shapes, scale=0.7, coded=None):
  grids = [np.round(rng.laplace(0, scale * (1 + k), s)).astype(np.int32)
           for k, s in enumerate(shapes)]
  for g in grids:
    if g.size > 4:
      flat = g.reshape(-1)
      flat[rng.integers(0, g.size, 3)] = rng.choice([-45, 33, 700, -100000, 40000], 3)
  if coded is not None:
    grids = [np.where(c, g, 0).astype(np.int32) for g, c in zip(grids, coded)]
  return grids


def _backends():
  """Compiled kernels to check: C with every ARM SIMD level this CPU has (2 AVX-512 VNNI,
  1 AVX2, 0 plain integers), numba."""
  out = []
  try:
    from moric_jax.coding import _ans
    out += [("c", level) for level in range(_ans.has_simd(), -1, -1)]
  except ImportError:
    pass
  try:
    import numba  # noqa: F401
    out.append(("numba", 0))
  except ImportError:
    pass
  return out


BACKENDS = _backends()


def test_compiled_ans_is_built():
  """``pip install -e .`` builds ``coding/_ans`` (the cold path never imports numba)."""
  assert fast_ans.backend() == "c", "moric_jax.coding._ans is not built (pip install -e .)"


def decode_all(data, iarm, shapes, rows, cols, coded):
  """(compiled kernels of every backend, reference on the guarded decoder, reference on
  constriction) -> results."""
  out = []
  for kind in [f"fast_{b}_{s}" for b, s in BACKENDS] + ["ref_guarded", "ref_constriction"]:
    try:
      if kind == "ref_constriction":
        dec = rans.new_decoder(data)
      else:
        dec = rans.GuardedDecoder(data, "latents")
      if kind.startswith("fast"):
        _, backend, simd = kind.split("_")
        with fast_ans.forced(backend, int(simd)):
          g = wavefront.decode_latents(dec, iarm, shapes, rows, cols, coded=coded)
      else:
        g = wavefront.decode_latents_reference(dec, iarm, shapes, rows, cols, coded=coded)
      rest = dec.get_compressed() if kind == "ref_constriction" else dec.remaining_words()
      out.append(("ok", g, np.asarray(rest, np.uint32)))
    except BitstreamError as e:
      out.append(("error", str(e), None))
  return out


def assert_same(results):
  (k0, g0, w0), *others = results
  for k, g, w in others:
    assert k == k0
    if k == "ok":
      assert all(np.array_equal(a, b) for a, b in zip(g, g0))
      assert np.array_equal(w, w0)


CASES = [
    ((1, 1), 1, 3, 3, (24, 18, 18, 2)),
    ((1, 9), 3, 3, 3, (24, 18, 18, 2)),
    ((13, 1), 3, 3, 3, (24, 18, 18, 2)),
    ((17, 23), 5, 3, 3, (24, 18, 18, 2)),
    ((31, 20), 7, 3, 3, (24, 18, 18, 2)),
    ((12, 19), 4, 2, 1, (7, 5, 3, 2)),        # generic layer widths
    ((9, 14), 3, 1, 2, (7, 18, 2)),
]


@pytest.mark.parametrize("hw,num_grids,rows,cols,widths", CASES)
@pytest.mark.parametrize("masked", [False, True])
def test_fast_latents_match_reference(hw, num_grids, rows, cols, widths, masked):
  rng = np.random.default_rng(hash((hw, num_grids, rows, masked)) % 2**32)
  shapes = grids_lib.grid_shapes(*hw, num_grids)
  coded = [rng.random(s) < 0.6 for s in shapes] if masked else None
  grids = make_latents(rng, shapes, coded=coded)
  iarm = integer_arm.from_float(random_layers(rng, widths), int(rng.integers(6, 13)))
  enc = rans.new_encoder()
  wavefront.encode_latents(enc, iarm, grids, rows, cols, coded)
  data = rans.payload_bytes(enc)
  res = decode_all(data, iarm, shapes, rows, cols, coded)
  assert res[0][0] == "ok"
  assert all(np.array_equal(a, b) for a, b in zip(res[0][1], grids))
  assert res[0][2].size == 0
  assert_same(res)
  # Truncated (words decoded last dropped) and corrupted payloads: same behaviour.
  words = np.frombuffer(data, "<u4")
  for cut in sorted({1, 2, max(1, words.size // 3), words.size - 1}):
    if 0 < cut < words.size:
      res = decode_all(words[cut:].tobytes(), iarm, shapes, rows, cols, coded)
      assert_same(res)
      if res[0][0] == "ok":    # ran through: then data is left over or symbols differ
        assert res[0][2].size or not all(np.array_equal(a, b)
                                         for a, b in zip(res[0][1], grids))
  if words.size == 0:
    return
  for _ in range(3):
    bad = words.copy()
    bad[rng.integers(0, bad.size)] ^= np.uint32(1 << int(rng.integers(0, 32)))
    if bad[-1] != 0:
      assert_same(decode_all(bad.tobytes(), iarm, shapes, rows, cols, coded))
  end = words[: max(1, words.size // 2)]       # words decoded first dropped
  if end[-1] != 0:
    assert_same(decode_all(end.tobytes(), iarm, shapes, rows, cols, coded))


def test_truncated_latents_raise():
  rng = np.random.default_rng(5)
  shapes = grids_lib.grid_shapes(24, 30, 5)
  grids = make_latents(rng, shapes)
  iarm = integer_arm.from_float(random_layers(rng), 10)
  enc = rans.new_encoder()
  wavefront.encode_latents(enc, iarm, grids, 3, 3)
  words = np.frombuffer(rans.payload_bytes(enc), "<u4")
  for cut in (1, words.size // 2, words.size - 1):
    for fn in (wavefront.decode_latents, wavefront.decode_latents_reference):
      dec = rans.GuardedDecoder(words[cut:].tobytes(), "latents")
      with pytest.raises(BitstreamError):
        fn(dec, iarm, shapes, 3, 3)
        dec.finish()


def test_wide_arm_int64_path_matches_reference():
  """Weights beyond integer_arm's limits take the int64 kernel; still exact."""
  rng = np.random.default_rng(7)
  shapes = grids_lib.grid_shapes(15, 21, 4)
  grids = make_latents(rng, shapes)
  base = integer_arm.from_float(random_layers(rng), 10)
  layers = [(w * 64, b * 64) for w, b in base.layers]
  iarm = integer_arm.IntegerARM(tuple(layers), 10)
  assert wavefront.fast_ans_arm(iarm, 24)[0].dtype == np.int64
  enc = rans.new_encoder()
  wavefront.encode_latents(enc, iarm, grids, 3, 3)
  res = decode_all(rans.payload_bytes(enc), iarm, shapes, 3, 3, None)
  assert res[0][0] == "ok" and all(np.array_equal(a, b) for a, b in zip(res[0][1], grids))
  assert_same(res)


def test_weights_then_latents_one_stream():
  rng = np.random.default_rng(3)
  shapes = grids_lib.grid_shapes(20, 26, 5)
  grids = make_latents(rng, shapes)
  iarm = integer_arm.from_float(random_layers(rng), 11)
  tensors = [np.round(rng.laplace(0, b, n)).astype(np.int64)
             for b, n in ((3, 432), (40, 18), (0.5, 324), (300, 36), (2, 0), (9000, 7))]
  tensors[0][5] = 5000
  enc = rans.new_encoder()
  wavefront.encode_latents(enc, iarm, grids, 3, 3)
  scales, _ = weights_coding.encode_tensors(enc, tensors)
  data = rans.payload_bytes(enc)
  sizes = [t.size for t in tensors]
  fast = rans.GuardedDecoder(data)
  ref = rans.new_decoder(data)
  wf = weights_coding.decode_tensors(fast, sizes, scales)
  wr = weights_coding.decode_tensors_reference(ref, sizes, scales)
  for a, b, t in zip(wf, wr, tensors):
    assert np.array_equal(a, t) and np.array_equal(b, t)
  assert np.array_equal(fast.remaining_words(), ref.get_compressed())
  gf = wavefront.decode_latents(fast, iarm, shapes, 3, 3)
  gr = wavefront.decode_latents_reference(ref, iarm, shapes, 3, 3)
  for a, b, g in zip(gf, gr, grids):
    assert np.array_equal(a, g) and np.array_equal(b, g)
  fast.finish()
  assert ref.is_empty()


def test_decoder_modules_do_not_import_jax():
  init = open(__import__("moric_jax").__file__).read()
  assert "import jax" not in init and "from jax" not in init
  code = ("import sys; import moric_jax.coding.wavefront, moric_jax.coding.rans, "
          "moric_jax.coding.weights_coding, moric_jax.coding.fast_ans, "
          "moric_jax.coding.integer_arm, moric_jax.coding.tables, "
          "moric_jax.model.context; "
          "bad = [m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'jaxlib')]; "
          "assert not bad, bad")
  subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.skipif(fast_ans.backend() != "c", reason="C kernels not built")
def test_c_kernels_reject_bad_arguments():
  """The C kernels check sizes, table rows and canvas bounds before reading anything."""
  from moric_jax.coding import _ans
  rng = np.random.default_rng(0)
  iarm = integer_arm.from_float(random_layers(rng), 10)
  shapes = grids_lib.grid_shapes(6, 7, 2)
  enc = rans.new_encoder()
  wavefront.encode_latents(enc, iarm, make_latents(rng, shapes), 3, 3)
  words = np.frombuffer(rans.payload_bytes(enc), "<u4").astype(np.uint32)
  (hc, wc), places = wavefront.context.canvas_layout(list(shapes), 3, 3)
  offsets = np.array([dy * wc + dx for dy, dx in wavefront.context.context_offsets(3, 3)],
                     np.int64)
  arm = wavefront.fast_ans_arm(iarm, offsets.size)
  cdfs = fast_ans.load_cdfs()
  consts = np.array([1 << 7, 8, 4, 16, 0, 1, 59], np.int64)

  def call(shapes_=np.array(shapes, np.int64), places_=np.array(places, np.int64),
           offsets_=offsets, canvas=None, keep=np.zeros(0, np.uint8), consts_=consts,
           st=None):
    canvas = np.zeros(hc * wc, np.int64) if canvas is None else canvas
    st = fast_ans.open_stream(words) if st is None else st
    return _ans.decode_latents(words, st, shapes_, places_, wc, 3, offsets_, keep, *arm,
                               integer_arm.HIDDEN_LIMIT, integer_arm.CONTEXT_LIMIT, consts_,
                               *cdfs["latent"], *cdfs["latent_escape"], tables.LATENT_RADIUS,
                               canvas)
  assert call() == fast_ans.OK
  with pytest.raises(ValueError):
    call(canvas=np.zeros(hc * wc // 2, np.int64))          # grids outside the canvas
  with pytest.raises(ValueError):
    call(offsets_=-offsets)                                  # non-causal contexts
  with pytest.raises(ValueError):
    call(places_=np.array(places, np.int64) + [[0, wc]])     # grid beyond the width
  with pytest.raises(ValueError):
    call(keep=np.zeros(5, np.uint8))
  with pytest.raises(ValueError):
    call(consts_=consts * [1, 1, 1, 1, 1, 1, 10])            # scale rows beyond the table
  with pytest.raises(ValueError):
    call(st=np.array([1, words.size + 1], np.uint64))        # position beyond the payload
  with pytest.raises(TypeError):
    call(canvas=np.zeros(hc * wc, np.int32))
  out = np.zeros(3, np.int64)
  with pytest.raises(ValueError):
    _ans.decode_categorical(words, fast_ans.open_stream(words), cdfs["weight"][0],
                            np.array([0, 1, 10 ** 6]), out)
  with pytest.raises(ValueError):
    _ans.decode_uniform(words, fast_ans.open_stream(words), np.array([2, 1, 4]), out)

"""The in-step driver of many codecs' weight searches (train/search_batches.py)."""
import jax
import jax.numpy as jnp
import numpy as np

from moric_jax.train import search_batches, weight_search


def _tree(seed):
  rng = np.random.default_rng(seed)
  return {"net": {"a": {"kernel": rng.normal(0, 0.1, (6, 4)).astype(np.float32),
                        "bias": rng.normal(0, 0.01, (4,)).astype(np.float32)},
                  "b": rng.normal(0, 0.3, (3,)).astype(np.float32)}}


class _Evaluator:
  """A fake ``overfit.Evaluator``: weighted squared error of ``params["net"]`` to the
  codec's own target (its "image"); ``.many`` evaluates a stack entry by entry, so a
  batch gives bit for bit what single calls give. Records the sizes of its calls."""

  def __init__(self, key, image, calls):
    self.key, self.image, self.calls = key, jnp.asarray(image), calls

  def _one(self, net_leaves, image):
    w = np.asarray(image)
    err = sum(float(w[i]) * float(np.sum(np.asarray(leaf, np.float64) ** 2))
              for i, leaf in enumerate(net_leaves))
    return {self.key: np.float32(err)}

  def __call__(self, params):
    self.calls.append(1)
    return self._one(jax.tree_util.tree_leaves(params["net"]), self.image)

  def many(self, params, images):
    self.calls.append(len(images))
    leaves = jax.tree_util.tree_leaves(params["net"])
    outs = [self._one([leaf[i] for leaf in leaves], images[i]) for i in range(len(images))]
    return {self.key: np.stack([o[self.key] for o in outs])}


def _chain(params, which):
  """search -> per-tensor refinement -> RDOQ of ``params["net"]``, as finalize does."""
  key = "mse" if which == "dist" else "bpp_latents"
  kw = dict(lmbda=1e-3, num_pixels=1, distortion_key=key)
  choice = yield from search_batches.tagged(which, weight_search.search_network(
      params, "net", weight_search.candidate_deltas(1e-4, 0.5, 7), **kw))
  choice = yield from search_batches.tagged(which, weight_search.refine_tensor_steps(
      params, "net", choice, **kw))
  choice = yield from search_batches.tagged(which, weight_search.round_towards_zero(
      params, "net", choice, **kw))
  return choice


def _run(batch):
  calls = []
  codecs = [(_tree(k), np.array([1e4, 1e2 * (k + 1), 3e3]), "dist" if k % 2 else "rate")
            for k in range(5)]
  evaluators = [{"dist": _Evaluator("mse", img, calls),
                 "rate": _Evaluator("bpp_latents", img, calls)} for _, img, _ in codecs]
  got = search_batches.run_in_step([_chain(p, w) for p, _, w in codecs], evaluators, batch)
  return got, calls, codecs, evaluators


def _same(a, b):
  assert (a.delta, a.factors, a.costs) == (b.delta, b.factors, b.costs)
  for x, y in zip(jax.tree_util.tree_leaves(a.int_params),
                  jax.tree_util.tree_leaves(b.int_params)):
    np.testing.assert_array_equal(x, y)


def test_batches_choose_what_one_trial_at_a_time_chooses():
  """Five codecs (three on one evaluator, two on the other, each its own target),
  searched in step 3 trials per call, choose exactly what they choose one trial at a
  time; calls are padded only up to a power of two or 3."""
  one, calls_one, _, _ = _run(batch=1)
  three, calls_three, _, _ = _run(batch=3)
  for a, b in zip(one, three):
    _same(a, b)
  assert set(calls_one) == {1}
  assert set(calls_three) <= {1, 2, 3} and 3 in calls_three
  assert len(calls_three) < len(calls_one) / 2


def test_one_codec_alone_equals_the_same_in_step():
  """A codec driven alone by ``run_search`` (plain searches) ends where it ends in a
  stack of five evaluated in batches."""
  three, _, codecs, evaluators = _run(batch=3)
  params, _, which = codecs[2]
  key = "mse" if which == "dist" else "bpp_latents"
  ev = evaluators[2][which]
  kw = dict(lmbda=1e-3, num_pixels=1, distortion_key=key)
  run = weight_search.run_search
  choice = run(weight_search.search_network(
      params, "net", weight_search.candidate_deltas(1e-4, 0.5, 7), **kw), ev)
  choice = run(weight_search.refine_tensor_steps(params, "net", choice, **kw), ev)
  choice = run(weight_search.round_towards_zero(params, "net", choice, **kw), ev)
  _same(choice, three[2])

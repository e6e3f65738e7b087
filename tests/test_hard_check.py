"""Hard-loss checks of the soft phase and the reload of the best model (Cool-chic 5)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from moric_jax.model.codec import Codec
from moric_jax.train import hard_check, loop, overfit
from moric_jax.train.state import TrainState


def test_chunks_stop_at_the_soft_end_and_checks_fall_on_multiples():
  # Off: chunks as before.
  assert hard_check.stop_at(80, 40, 100, 120, 0) == 120
  assert not hard_check.due(80, 120, 100, 0)
  # On: the chunk that would cross the soft end stops there, and is checked.
  assert hard_check.stop_at(80, 40, 100, 120, 30) == 100
  assert hard_check.stop_at(100, 40, 100, 120, 30) == 120
  assert hard_check.due(80, 100, 100, 30)
  assert hard_check.due(40, 80, 100, 30)        # crosses 60
  assert not hard_check.due(60, 80, 100, 50)    # no multiple of 50 crossed
  assert not hard_check.due(100, 120, 100, 30)  # final phase: no check
  # The cut chunk stops by its total_steps; whole chunks and the last keep the hyper.
  hyper = {"total_steps": jnp.full((2,), 120, jnp.int32), "lmbda": jnp.ones(2)}
  assert hard_check.chunk_hyper(hyper, 60, 100, 40, 120) is hyper
  assert hard_check.chunk_hyper(hyper, 100, 120, 40, 120) is hyper
  cut = hard_check.chunk_hyper(hyper, 80, 100, 40, 120)
  np.testing.assert_array_equal(cut["total_steps"], [100, 100])
  assert cut["total_steps"].dtype == jnp.int32 and cut["lmbda"] is hyper["lmbda"]
  assert int(hard_check.chunk_hyper({"total_steps": jnp.int32(120)}, 80, 100, 40,
                                    120)["total_steps"]) == 100
  with pytest.raises(ValueError, match="hard_check_every"):
    hard_check.every({"hard_check_every": -1})


def test_record_keeps_the_lowest_finite_loss_and_reload_restores_it():
  params = {"w": jnp.arange(6.0).reshape(3, 2)}
  state = TrainState(params, None, 0, None, jax.tree_util.tree_map(jnp.zeros_like, params),
                     jnp.full((3,), jnp.inf), 1.0)
  state = hard_check.record(state, np.array([2.0, np.nan, 5.0]))
  np.testing.assert_array_equal(state.best_loss, [2.0, np.inf, 5.0])
  moved = state._replace(params={"w": params["w"] + 100.0})
  moved = hard_check.record(moved, np.array([3.0, 1.0, 4.0]))   # 0 worse, 1, 2 better
  np.testing.assert_array_equal(moved.best_loss, [2.0, 1.0, 4.0])
  out = hard_check.reload(moved)
  np.testing.assert_array_equal(out.params["w"], [[0, 1], [102, 103], [104, 105]])
  assert np.isinf(np.asarray(out.best_loss)).all() and out.lr_scale == 1.0


def _recording(evaluate, losses_by_call=None):
  """``evaluate`` that records each (params, real loss); ``losses_by_call(lmbda, n)``
  may replace the loss it answers (the n-th call for that lambda)."""
  calls = []

  def ev(params, lmbda=None):
    out = evaluate(params, lmbda)
    key = None if lmbda is None else float(np.ravel(np.asarray(lmbda))[0])
    n = sum(1 for c in calls if c[0] == key)
    calls.append((key, jax.device_get(params), float(out[0])))
    fake = None if losses_by_call is None else losses_by_call(key, n)
    return out if fake is None else (jnp.float32(fake),) + tuple(out[1:])
  ev.on, ev.many, ev.image = evaluate.on, evaluate.many, evaluate.image
  return ev, calls


def _config(tiny_config):
  cfg = tiny_config
  cfg.num_steps = 60
  cfg.train.chunk_size = 25          # chunks end at 25, 50 -> cut at 48 (the soft end)
  cfg.train.ste_fraction = 0.2       # soft phase: 48 steps, final: 12
  cfg.train.hard_check_every = 20
  return cfg


def _equal(a, b):
  return all(np.array_equal(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),
                                                   jax.tree_util.tree_leaves(b)))


def test_the_soft_phase_ends_on_the_best_checked_model(image32, tiny_config):
  cfg = _config(tiny_config)
  cfg.train.ste_fraction = 0.0       # no final phase: the result is the reloaded model
  cfg.num_steps = 48
  codec = Codec.from_config(cfg.model, 32, 32)
  real = overfit.Evaluator(codec, jnp.asarray(image32), cfg)
  # The first check (step 25) is declared best: the encode must come back to it.
  ev, calls = _recording(real, lambda lmbda, n: 0.0 if n == 0 else 1.0 + n)
  params = loop.fit(codec, image32, cfg, [cfg.lmbda], jax.random.PRNGKey(0), evaluate=ev)[0]
  assert len(calls) == 2                                 # steps 25 and 48
  assert _equal(params, calls[0][1])
  assert not _equal(calls[0][1], calls[1][1])            # training did move on
  # With the real losses, the result is the checked model of the lowest hard loss.
  ev, calls = _recording(real)
  params = loop.fit(codec, image32, cfg, [cfg.lmbda], jax.random.PRNGKey(0), evaluate=ev)[0]
  best = min(calls, key=lambda c: c[2])
  assert _equal(params, best[1])


def test_final_phase_starts_from_the_reloaded_model(image32, tiny_config):
  cfg = _config(tiny_config)
  codec = Codec.from_config(cfg.model, 32, 32)
  real = overfit.Evaluator(codec, jnp.asarray(image32), cfg)
  # The two checks (steps 25, 48) answer made-up losses; the end's evaluation the real.
  first_best, calls_a = _recording(real, lambda lmbda, n: (0.0, 1.0)[n] if n < 2 else None)
  last_best, calls_b = _recording(real, lambda lmbda, n: (1.0, 0.0)[n] if n < 2 else None)
  a = loop.fit(codec, image32, cfg, [cfg.lmbda], jax.random.PRNGKey(0), evaluate=first_best)[0]
  b = loop.fit(codec, image32, cfg, [cfg.lmbda], jax.random.PRNGKey(0), evaluate=last_best)[0]
  # Both runs are identical up to the soft end (step 48); only what they reload differs.
  assert _equal(calls_a[0][1], calls_b[0][1]) and _equal(calls_a[1][1], calls_b[1][1])
  # The final phase freezes the latents: each result keeps its reloaded model's, and
  # trained its networks from there.
  nets = lambda p: {k: v for k, v in p.items() if k != "latents"}
  for out, start in ((a, calls_a[0][1]), (b, calls_b[1][1])):
    assert _equal(out["latents"], start["latents"])
    assert not _equal(nets(out), nets(start))
  assert not _equal(a["latents"], b["latents"])


def test_batched_checks_reload_each_entry_on_its_own(image32, tiny_config):
  cfg = _config(tiny_config)
  cfg.train.ste_fraction = 0.0
  cfg.num_steps = 48
  cfg.train.optimizer = "adam"
  codec = Codec.from_config(cfg.model, 32, 32)
  real = overfit.Evaluator(codec, jnp.asarray(image32), cfg)
  lmbdas = [1e-4, 1e-3]
  # lambda 1e-4: the first check is best; lambda 1e-3: the last one.
  ev, calls = _recording(real, lambda lmbda, n: (0.0 if n == 0 else 1.0 + n)
                         if lmbda == pytest.approx(1e-4) else -float(n))
  out = loop.fit(codec, image32, cfg, lmbdas, jax.random.PRNGKey(0), evaluate=ev)
  by_lmbda = {l: [c for c in calls if c[0] == pytest.approx(l)] for l in lmbdas}
  assert [len(v) for v in by_lmbda.values()] == [2, 2]
  assert _equal(out[0], by_lmbda[1e-4][0][1])
  assert _equal(out[1], by_lmbda[1e-3][1][1])
  assert not _equal(by_lmbda[1e-4][0][1], by_lmbda[1e-4][1][1])

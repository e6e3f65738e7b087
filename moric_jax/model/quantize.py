"""Latent quantization used while overfitting (C3 recipe) and at coding time.

All functions act elementwise on arrays in *symbol units* (one quantization bin = 1).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_round(x: jax.Array, temperature: jax.Array | float) -> jax.Array:
  """Soft-rounding s_alpha (Agustsson & Theis, 2020) with alpha = 1 / temperature.

  Tends to ``round(x)`` as the temperature goes to 0 and to ``x`` as it grows;
  always maps integers (and half-integers) to themselves.
  """
  alpha = 1.0 / temperature
  m = jnp.floor(x) + 0.5
  r = x - m
  return m + jnp.tanh(alpha * r) / (2.0 * jnp.tanh(alpha / 2.0))


def kumaraswamy_noise(key: jax.Array, shape: tuple[int, ...],
                      a: jax.Array | float) -> jax.Array:
  """Noise in [-0.5, 0.5] from a Kumaraswamy(a, b) law with its mode at 0.5.

  ``a = 1`` gives uniform noise; larger ``a`` concentrates the noise near 0.
  """
  a = jnp.asarray(a, jnp.float32)
  b = ((a - 1.0) * jnp.power(2.0, a) + 1.0) / a
  u = jax.random.uniform(key, shape, minval=1e-6, maxval=1.0 - 1e-6)
  sample = jnp.power(1.0 - jnp.power(1.0 - u, 1.0 / b), 1.0 / a)
  return sample - 0.5


def gaussian_noise(key: jax.Array, shape: tuple[int, ...],
                   std: jax.Array | float) -> jax.Array:
  """Zero-mean Gaussian noise of standard deviation ``std`` (symbol units)."""
  return jnp.asarray(std, jnp.float32) * jax.random.normal(key, shape)


NOISES = ("kumaraswamy", "gaussian")


def training_noise(kind: str, key: jax.Array, shape: tuple[int, ...],
                   level: jax.Array | float) -> jax.Array:
  """Noise of the soft phase: ``kumaraswamy`` (``level`` = shape a, 1 = uniform;
  C3's annealed noise) or ``gaussian`` (``level`` = standard deviation; Cool-chic 5)."""
  if kind == "kumaraswamy":
    return kumaraswamy_noise(key, shape, level)
  if kind == "gaussian":
    return gaussian_noise(key, shape, level)
  raise ValueError(f"unknown training noise {kind!r}; expected one of {NOISES}")


def round_ste(x: jax.Array) -> jax.Array:
  """Hard rounding in the forward pass, identity gradient (straight-through)."""
  return x + jax.lax.stop_gradient(jnp.round(x) - x)


PROXIES = ("one_tensor", "two_tensor")


def quantize_for_training(x: jax.Array, *, mode: str, temperature: jax.Array | float,
                          noise_a: jax.Array | float, key: jax.Array | None,
                          noise: str = "kumaraswamy", proxy: str = "two_tensor"
                          ) -> tuple[jax.Array, jax.Array]:
  """Returns ``(for_rate, for_synthesis)`` versions of the latents ``x``; the rate's
  version is also the ARM's context.

  Modes:
    ``soft``: with ``proxy="one_tensor"`` (Cool-chic 5) one tensor ``s(s(x) + n)`` for
      rate, context and synthesis: with small noise it stays near the integers the file
      holds, so the ARM is fitted to values like the ones it will see; with
      ``"two_tensor"`` (C3) the rate and context see ``s(x) + n`` and the synthesis
      ``s(s(x) + n)``. ``n`` is the ``noise`` (``training_noise``) at level ``noise_a``.
    ``ste``: both on hard-rounded values with straight-through gradients.
    ``hard``: both on ``round(x)`` (evaluation; no gradient to x).
  """
  if mode == "soft":
    if proxy not in PROXIES:
      raise ValueError(f"unknown quantization proxy {proxy!r}; expected one of {PROXIES}")
    noisy = soft_round(x, temperature) + training_noise(noise, key, x.shape, noise_a)
    synth = soft_round(noisy, temperature)
    return (synth if proxy == "one_tensor" else noisy), synth
  if mode == "ste":
    q = round_ste(x)
    return q, q
  if mode == "hard":
    q = jnp.round(x)
    return q, q
  raise ValueError(f"unknown quantization mode {mode!r}")

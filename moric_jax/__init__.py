"""moric_jax: a modular region-based implicit image codec in JAX/Flax."""
__version__ = "0.1.0"

from moric_jax.errors import BitstreamError  # noqa: E402  (light: no jax import)

__all__ = ["BitstreamError", "decode", "encode", "info"]


def __getattr__(name):
  # Lazy: importing the package must not import JAX.
  if name in ("encode", "decode", "info"):
    from moric_jax import api
    return getattr(api, name)
  raise AttributeError(f"module 'moric_jax' has no attribute {name!r}")

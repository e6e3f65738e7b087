"""moric_jax: a modular region-based implicit image codec in JAX/Flax."""
__version__ = "0.1.0"

"""Region shape coding for MoRIC (NumPy only, no JAX).

Submodules (import them explicitly, e.g. ``from moric_jax.regions import cstar``):

- :mod:`moric_jax.regions.contours`  -- connected components and their sub-pixel contours.
- :mod:`moric_jax.regions.cstar`     -- C* chain coding of region contours (DESIGN §2.4).
- :mod:`moric_jax.regions.chaincode` -- lossless differential Freeman chain code (baseline).
"""

__all__ = ["contours", "cstar", "chaincode"]

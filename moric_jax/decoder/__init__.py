"""The JAX-free decoder (DESIGN §2.8): ``decode_file``, ``info``."""
from moric_jax.decoder.decode import Decoded, decode_file, info

__all__ = ["Decoded", "decode_file", "info"]

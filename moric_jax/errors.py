"""User-facing error types of the codec."""


class BitstreamError(ValueError):
  """A ``.moric`` file is corrupt, truncated, unsupported or otherwise not decodable."""

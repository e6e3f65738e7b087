"""User-facing error types of the codec."""


class BitstreamError(ValueError):
  """A ``.moric`` file is corrupt, truncated, unsupported or otherwise not decodable."""


class ResourceError(ValueError):
  """An encode would need more memory than the machine (or the set limit) has."""

"""``python -m moric_jax`` = the ``moric`` command."""
import sys

from moric_jax.cli import main

sys.exit(main())

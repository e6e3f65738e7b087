"""Generates the fixed integer probability tables stored in the package.

Usage: python scripts/make_tables.py [--check]

Writes ``moric_jax/coding/laplace_tables.npz``; ``--check`` only compares a fresh
generation with the stored file (exit 1 on any difference).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from moric_jax.coding import tables  # noqa: E402


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--check", action="store_true",
                      help="compare with the stored tables instead of writing them")
  parser.add_argument("--out", default=str(tables.TABLE_FILE))
  args = parser.parse_args()
  fresh = tables.generate_tables()
  if args.check:
    with np.load(args.out) as stored:
      same = all(np.array_equal(stored[k], fresh[k]) for k in tables.TABLE_KEYS)
    print("tables match" if same else "tables DIFFER", file=sys.stderr)
    return 0 if same else 1
  with open(args.out, "wb") as f:
    np.savez_compressed(f, **fresh)
  for k in tables.TABLE_KEYS:
    print(f"{k}: shape {fresh[k].shape}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main())

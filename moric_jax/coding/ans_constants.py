"""Constants of the ANS stack format (constriction's ``stack.AnsCoder`` with 24-bit
models), shared by the kernel front end ``fast_ans`` and its numba twin
``fast_ans_numba``; ``_ans.c`` mirrors them. Format described in ``fast_ans``.
"""
from __future__ import annotations

import numpy as np

PRECISION = 24              # bits of every model's fixed-point CDF
ONE = 1 << PRECISION

_P = np.uint64(PRECISION)
_MASK = np.uint64(ONE - 1)
_W = np.uint64(32)          # bits per payload word
_LOW = np.uint64(1 << 32)   # the state is refilled when it falls below this

OK, DRY = 0, 1              # kernel status codes (DRY: empty at the start of a decode call)
LUT_BITS = 8                # quantile -> first candidate symbol tables
LUT_SHIFT = PRECISION - LUT_BITS

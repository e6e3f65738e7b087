"""numba kernels of ``fast_ans`` (the fallback when ``_ans.c`` is not built).

Same functions, arguments and results as the C extension ``moric_jax.coding._ans``;
``fast_ans`` imports this module only when the extension is missing (or
``MORIC_ANS=numba``), since importing numba and loading its cache costs ~0.5-1 s.
"""
from __future__ import annotations

import numba
import numpy as np

# The coder's constants (one place; the C extension mirrors them).
from moric_jax.coding.ans_constants import (
    _LOW, _MASK, _P, _W, DRY, LUT_BITS, LUT_SHIFT, OK, ONE)


# ----------------------------------------------------------------------------------
# Kernels.

@numba.njit(cache=True, inline="always")
def _search(cdf, r, q):
  """Largest ``s`` with ``cdf[r, s] <= q`` (``cdf[r, 0] == 0``, padded width 2**k)."""
  s = 0
  step = cdf.shape[1] >> 1
  while step > 0:
    if cdf[r, s + step] <= q:
      s += step
    step >>= 1
  return s


@numba.njit(cache=True, inline="always")
def _pop_search(words, state, pos, cdf, r):
  """One categorical symbol from row ``r``: returns ``(symbol, state, pos)``."""
  q = np.int64(state & _MASK)
  s = _search(cdf, r, q)
  lo = np.int64(cdf[r, s])
  state = (state >> _P) * np.uint64(np.int64(cdf[r, s + 1]) - lo) + np.uint64(q - lo)
  if state < _LOW and pos > 0:
    pos -= 1
    state = (state << _W) | np.uint64(words[pos])
  return s, state, pos


@numba.njit(cache=True)
def build_lut(cdf):
  """``lut[r, b]``: the symbol whose interval holds quantile ``b << LUT_SHIFT``."""
  rows = cdf.shape[0]
  lut = np.empty((rows, 1 << LUT_BITS), np.uint16)
  for r in range(rows):
    s = 0
    for b in range(1 << LUT_BITS):
      q = b << LUT_SHIFT
      while cdf[r, s + 1] <= q:
        s += 1
      lut[r, b] = s
  return lut


@numba.njit(cache=True, inline="always")
def _pop(words, state, pos, cdf, lut, r):
  """``_pop_search`` through ``lut`` (a start guess, then a short forward scan)."""
  q = np.int64(state & _MASK)
  s = np.int64(lut[r, q >> LUT_SHIFT])
  while cdf[r, s + 1] <= q:
    s += 1
  lo = np.int64(cdf[r, s])
  state = (state >> _P) * np.uint64(np.int64(cdf[r, s + 1]) - lo) + np.uint64(q - lo)
  if state < _LOW and pos > 0:
    pos -= 1
    state = (state << _W) | np.uint64(words[pos])
  return s, state, pos


@numba.njit(cache=True, inline="always")
def _pop_uniform(words, state, pos, size):
  """One symbol uniform over ``range(size)`` (``2 <= size < 2**24``)."""
  q = np.int64(state & _MASK)
  per = np.int64(ONE) // size
  last = size - 1
  s = q // per
  if s >= last:
    s = last
    prob = np.int64(ONE) - last * per
  else:
    prob = per
  lo = s * per
  state = (state >> _P) * np.uint64(prob) + np.uint64(q - lo)
  if state < _LOW and pos > 0:
    pos -= 1
    state = (state << _W) | np.uint64(words[pos])
  return s, state, pos


@numba.njit(cache=True)
def decode_categorical(words, st, cdf, rows, out):
  """Decodes ``out[i]`` with CDF row ``rows[i]``; status ``DRY`` if empty at the start."""
  state, pos = st[0], np.int64(st[1])
  if rows.size > 0 and state == 0:
    return DRY
  for i in range(rows.size):
    s, state, pos = _pop_search(words, state, pos, cdf, rows[i])
    out[i] = s
  st[0], st[1] = state, np.uint64(pos)
  return OK


@numba.njit(cache=True)
def decode_uniform(words, st, sizes, out):
  state, pos = st[0], np.int64(st[1])
  if sizes.size > 0 and state == 0:
    return DRY
  for i in range(sizes.size):
    s, state, pos = _pop_uniform(words, state, pos, np.int64(sizes[i]))
    out[i] = s
  st[0], st[1] = state, np.uint64(pos)
  return OK


@numba.njit(cache=True, inline="always")
def _escapes(words, state, pos, esc_cdf, esc_lut, esc_rows, r, idx, main, n_esc, radius, tmp):
  """Escape classes then bits of the ``n_esc`` escaped entries ``idx`` (block order).

  ``r[idx[e]]`` gets the signed residual; ``tmp`` (>= n_esc) holds the classes.
  Returns ``(status, state, pos)``.
  """
  if n_esc == 0:
    return OK, state, pos
  if state == 0:
    return DRY, state, pos
  for e in range(n_esc):
    c, state, pos = _pop(words, state, pos, esc_cdf, esc_lut, esc_rows[e])
    tmp[e] = c
  first = True
  for e in range(n_esc):
    c = tmp[e]
    off = 0
    if c >= 1:
      if first:
        if state == 0:
          return DRY, state, pos
        first = False
      off, state, pos = _pop_uniform(words, state, pos, np.int64(1) << c)
    mag = radius + 1 + off + (np.int64(1) << c) - 1
    i = idx[e]
    r[i] = -mag if main[i] == 2 * radius + 1 else mag
  return OK, state, pos


@numba.njit(cache=True)
def decode_residuals(words, st, cdf, lut, rows, esc_cdf, esc_lut, esc_rows_of, radius,
                     out):
  """One block of residuals (``rans.decode_block`` semantics) into ``out`` (int64).

  ``rows[i]``: main CDF row of entry ``i``; ``esc_rows_of[i]``: its escape-class row.
  """
  n = rows.size
  state, pos = st[0], np.int64(st[1])
  if n == 0:
    return OK
  if state == 0:
    return DRY
  main = np.empty(n, np.int64)
  idx = np.empty(n, np.int64)
  n_esc = 0
  for i in range(n):
    s, state, pos = _pop(words, state, pos, cdf, lut, rows[i])
    main[i] = s
    out[i] = s - radius
    if s > 2 * radius:
      idx[n_esc] = i
      n_esc += 1
  esc_rows = np.empty(n_esc, np.int64)
  for e in range(n_esc):
    esc_rows[e] = esc_rows_of[idx[e]]
  tmp = np.empty(n_esc, np.int64)
  status, state, pos = _escapes(words, state, pos, esc_cdf, esc_lut, esc_rows, out, idx,
                                main,
                                n_esc, radius, tmp)
  if status != OK:
    return status
  st[0], st[1] = state, np.uint64(pos)
  return OK


# ----------------------------------------------------------------------------------
# All latent wavefronts in one kernel (see ``wavefront.decode_latents``).
#
# The ARM runs on one front at a time, positions along the vector lanes: ``X[j, q]``
# is input ``j`` of position ``q``. Layers with 24 or 18 inputs (the default
# architecture) have the input loop fully unrolled so that the accumulators stay in
# registers; other widths take the generic loop. Same integers either way.

@numba.njit(cache=True, inline="always")
def _dense24(X, W, B, layer, nout, m, A):
  for o in range(nout):
    w = W[layer, :, o]
    b = B[layer, o]
    for q in range(m):
      acc = b
      for j in range(24):
        acc += w[j] * X[j, q]
      A[o, q] = acc


@numba.njit(cache=True, inline="always")
def _dense18(X, W, B, layer, nout, m, A):
  for o in range(nout):
    w = W[layer, :, o]
    b = B[layer, o]
    for q in range(m):
      acc = b
      for j in range(18):
        acc += w[j] * X[j, q]
      A[o, q] = acc


@numba.njit(cache=True, inline="always")
def _dense(X, W, B, layer, nin, nout, m, A):
  for o in range(nout):
    acc = A[o]
    b = B[layer, o]
    for q in range(m):
      acc[q] = b
    for j in range(nin):
      w = W[layer, j, o]
      if w != 0:
        xj = X[j]
        for q in range(m):
          acc[q] += w * xj[q]


@numba.njit(cache=True, inline="always")
def _arm(X, weights, biases, dims, shifts, hidden_limit, m, A):
  """Integer ARM of columns ``0 .. m-1`` of ``X`` (overwritten by hidden layers);
  ``A[0 / 1, :m]``: the last layer's accumulators (before its shift)."""
  num_layers = dims.shape[0]
  for layer in range(num_layers):
    nin, nout = dims[layer, 0], dims[layer, 1]
    if nin == 24:
      _dense24(X, weights, biases, layer, nout, m, A)
    elif nin == 18:
      _dense18(X, weights, biases, layer, nout, m, A)
    else:
      _dense(X, weights, biases, layer, nin, nout, m, A)
    if layer < num_layers - 1:
      sh = shifts[layer]
      for o in range(nout):
        ao = A[o]
        xo = X[o]
        for q in range(m):
          xo[q] = min(max(ao[q] >> sh, 0), hidden_limit)


@numba.njit(cache=True)
def decode_latents(words, st, shapes, places, wc, cols, offsets, keep, weights, biases,
                   dims, shifts, hidden_limit, context_limit, consts, cdf, lut, esc_cdf,
                   esc_lut, radius, canvas):
  """Decodes every coded latent position front by front into ``canvas`` (flat int64).

  ``shapes``/``places``: ``(G, 2)`` grid shapes and canvas corners; ``wc``: canvas
  width; ``offsets``: ``(C,)`` flat context offsets; ``keep``: flat uint8 mask of
  coded positions (size 0 = all). ARM: ``weights (L, I, O)``, ``biases (L, O)``
  (same integer dtype: the accumulator), ``dims (L, 2)`` = (in, out), ``shifts (L,)``.
  ``consts``: ``(half, frac_bits, bucket_shift, num_buckets, s_add, s_step, s_max)``
  of ``integer_arm.table_indices``. Returns ``OK`` or ``DRY`` (empty at the start of a
  front / escape call, like ``rans.GuardedDecoder``).
  """
  state, pos = st[0], np.int64(st[1])
  g = shapes.shape[0]
  step = cols + 1
  half, abits, bshift, nq, s_add, s_step, s_max = (consts[0], consts[1], consts[2],
                                                   consts[3], consts[4], consts[5],
                                                   consts[6])
  amask = (np.int64(1) << abits) - 1
  num_layers = dims.shape[0]
  n_ctx = offsets.size
  last_shift = shifts[num_layers - 1]
  max_front = 1
  num_fronts = 0
  for k in range(g):
    max_front += shapes[k, 0]
    if shapes[k, 0] > 0 and shapes[k, 1] > 0:
      num_fronts = max(num_fronts, shapes[k, 1] + step * (shapes[k, 0] - 1))
  width = max(weights.shape[1], weights.shape[2])
  X = np.zeros((width, max_front), weights.dtype)
  A = np.zeros((width, max_front), biases.dtype)
  ctx = np.zeros(canvas.size, weights.dtype)
  fpos = np.empty(max_front, np.int64)
  fc = np.empty(max_front, np.int64)
  fs = np.empty(max_front, np.int64)
  fmain = np.empty(max_front, np.int64)
  fr = np.empty(max_front, np.int64)
  idx = np.empty(max_front, np.int64)
  esc_rows = np.empty(max_front, np.int64)
  tmp = np.empty(max_front, np.int64)
  F = np.zeros(max_front, weights.dtype)
  sel = np.empty(max_front, np.int64)
  _arm(X, weights, biases, dims, shifts, hidden_limit, 1, A)    # X[:, 0] == 0
  mu0 = np.int64(A[0, 0]) >> last_shift
  ls0 = np.int64(A[1, 0]) >> last_shift
  use_keep = keep.size > 0
  for t in range(num_fronts):
    n = 0
    for k in range(g):
      hk, wk = shapes[k, 0], shapes[k, 1]
      if hk == 0 or wk == 0:
        continue
      i_lo = max(0, -((wk - 1 - t) // step))    # ceil((t - wk + 1) / step)
      i_hi = min(hk - 1, t // step)
      for i in range(i_lo, i_hi + 1):
        p = (places[k, 0] + i) * wc + places[k, 1] + t - step * i
        if use_keep and keep[p] == 0:
          continue
        fpos[n] = p
        n += 1
    if n == 0:
      continue
    if state == 0:
      return DRY
    # Integer ARM of the whole front (contexts are clipped in ``ctx``).
    for j in range(n_ctx):
      oj = offsets[j]
      xj = X[j]
      for q in range(n):
        xj[q] = ctx[fpos[q] + oj]
    flag = F[:n]
    flag[:] = 0
    for j in range(n_ctx):
      xj = X[j]
      for q in range(n):
        flag[q] |= xj[q]
    m = 0
    for q in range(n):
      if flag[q] != 0:
        sel[m] = q
        m += 1
    if m < n:     # all-zero contexts share one precomputed output: drop their columns
      for j in range(n_ctx):
        xj = X[j]
        for k in range(m):
          xj[k] = xj[sel[k]]
    _arm(X, weights, biases, dims, shifts, hidden_limit, m, A)
    # Table indices (integer_arm.table_indices) and main symbols, in order.
    n_esc = 0
    k = 0
    for q in range(n):
      if flag[q] != 0:
        mu = np.int64(A[0, k]) >> last_shift
        ls = np.int64(A[1, k]) >> last_shift
        k += 1
      else:
        mu, ls = mu0, ls0
      shifted = mu + half
      c = shifted >> abits
      bucket = (shifted & amask) >> bshift
      s = (ls + s_add) // s_step
      s = min(max(s, 0), s_max)
      sym, state, pos = _pop(words, state, pos, cdf, lut, s * nq + bucket)
      fc[q] = c
      fmain[q] = sym
      fr[q] = sym - radius
      if sym > 2 * radius:
        idx[n_esc] = q
        esc_rows[n_esc] = s
        n_esc += 1
    status, state, pos = _escapes(words, state, pos, esc_cdf, esc_lut, esc_rows, fr, idx,
                                  fmain, n_esc, radius, tmp)
    if status != OK:
      return status
    for q in range(n):
      v = fc[q] + fr[q]
      p = fpos[q]
      canvas[p] = v
      ctx[p] = min(max(v, -context_limit), context_limit)
  st[0], st[1] = state, np.uint64(pos)
  return OK

/* Compiled ANS decoding (moric_jax.coding.fast_ans), bit-exact with constriction's
 * stack.AnsCoder: the C twin of fast_ans_numba.py (same functions, arguments, status
 * codes and decoder state `st = [state, pos]`), built ahead of time by
 * `pip install -e .` so that a cold `moric decode` compiles nothing.
 *
 * Integer arithmetic only. The latent ARM runs on whole wavefronts; when its weights,
 * contexts and hidden activations fit int16 (integer_arm's limits: |w| < 2^12,
 * contexts <= 2^10, hidden <= 2^13) and the accumulators int32 (wavefront.fast_ans_arm
 * passes int32 weights only then), it uses pair multiply-adds (AVX-512 VNNI vpdpwssd
 * or AVX2 vpmaddwd, exact: |products| < 2^26) on CPUs that have them, else plain int64
 * loops: the same integers either way. All array arguments are checked (dtype, sizes, table rows, canvas
 * bounds) before anything is read.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#include <immintrin.h>
#define HAVE_AVX2_PATH 1
#else
#define HAVE_AVX2_PATH 0
#endif

#define PRECISION 24
#define ONE (1LL << PRECISION)
#define MASK (ONE - 1)
#define LOW (1ULL << 32)
#define LUT_BITS 8
#define LUT_SHIFT (PRECISION - LUT_BITS)
enum { OK = 0, DRY = 1 };

static int simd_enabled = 2; /* highest SIMD level to use (set_simd) */

/* ------------------------------------------------------------------------------ */
/* Buffers. */

typedef struct {
  Py_buffer v;
  int held;
} Buf;

static void rel(Buf *b) {
  if (b->held) PyBuffer_Release(&b->v);
  b->held = 0;
}

/* C-contiguous buffer of itemsize `size`, kind 'i' (signed), 'u' (unsigned). */
static int get(PyObject *o, Buf *b, char kind, int size, int ndim, int write,
               const char *what) {
  b->held = 0;
  if (PyObject_GetBuffer(o, &b->v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT |
                                       (write ? PyBUF_WRITABLE : 0)) < 0)
    return -1;
  b->held = 1;
  const char *f = b->v.format ? b->v.format : "B";
  if (*f == '<' || *f == '=' || *f == '@') f++;
  int ok = strlen(f) == 1 && b->v.itemsize == size && b->v.ndim == ndim;
  if (ok) {
    const char *sig = "bhilq", *uns = "BHILQ";
    ok = kind == 'i' ? strchr(sig, *f) != NULL : strchr(uns, *f) != NULL;
  }
  if (!ok) {
    PyErr_Format(PyExc_TypeError, "%s: expected a C-contiguous %s%d array of ndim %d",
                 what, kind == 'i' ? "int" : "uint", 8 * size, ndim);
    rel(b);
    return -1;
  }
  return 0;
}

static Py_ssize_t n_elems(const Buf *b) { return b->v.len / b->v.itemsize; }

/* ------------------------------------------------------------------------------ */
/* Coding primitives. */

typedef struct {
  const int32_t *cdf;
  const uint16_t *lut; /* NULL: binary search */
  Py_ssize_t rows, width;
} Table;

static inline __attribute__((always_inline)) int64_t pop_table(const uint32_t *words,
                                                               uint64_t *state,
                                                               int64_t *pos,
                                                               const Table *t, int64_t r) {
  const int32_t *c = t->cdf + r * t->width;
  const int64_t q = (int64_t)(*state & MASK);
  int64_t s;
  if (t->lut) {
    s = t->lut[r << LUT_BITS | (q >> LUT_SHIFT)];
    if (s > t->width - 2) s = t->width - 2; /* memory-safe on any table */
    while (s + 2 < t->width && c[s + 1] <= q) s++;
  } else {
    s = 0;
    for (Py_ssize_t step = t->width >> 1; step > 0; step >>= 1)
      if (c[s + step] <= q) s += step;
    if (s > t->width - 2) s = t->width - 2;
  }
  const int64_t lo = c[s];
  *state = (*state >> PRECISION) * (uint64_t)(c[s + 1] - lo) + (uint64_t)(q - lo);
  if (*state < LOW && *pos > 0) {
    (*pos)--;
    *state = (*state << 32) | words[*pos];
  }
  return s;
}

static inline __attribute__((always_inline)) int64_t pop_uniform(const uint32_t *words,
                                                                 uint64_t *state,
                                                                 int64_t *pos,
                                                                 int64_t size) {
  const int64_t q = (int64_t)(*state & MASK);
  const int64_t per = ONE / size, last = size - 1;
  int64_t s = q / per, prob = per;
  if (s >= last) {
    s = last;
    prob = ONE - last * per;
  }
  *state = (*state >> PRECISION) * (uint64_t)prob + (uint64_t)(q - s * per);
  if (*state < LOW && *pos > 0) {
    (*pos)--;
    *state = (*state << 32) | words[*pos];
  }
  return s;
}

/* Escape classes then bits of the n_esc escaped entries idx (rans.decode_block order). */
static int escapes(const uint32_t *words, uint64_t *state, int64_t *pos, const Table *esc,
                   const int64_t *esc_rows, int64_t *r, const int64_t *idx,
                   const int64_t *main_sym, int64_t n_esc, int64_t radius, int64_t *tmp) {
  if (n_esc == 0) return OK;
  if (*state == 0) return DRY;
  for (int64_t e = 0; e < n_esc; e++) tmp[e] = pop_table(words, state, pos, esc, esc_rows[e]);
  int first = 1;
  for (int64_t e = 0; e < n_esc; e++) {
    int64_t c = tmp[e];
    if (c > PRECISION) c = PRECISION; /* only on a table wider than 25 classes */
    int64_t off = 0;
    if (c >= 1) {
      if (first) {
        if (*state == 0) return DRY;
        first = 0;
      }
      off = pop_uniform(words, state, pos, (int64_t)1 << c);
    }
    const int64_t mag = radius + 1 + off + ((int64_t)1 << c) - 1;
    const int64_t i = idx[e];
    r[i] = main_sym[i] == 2 * radius + 1 ? -mag : mag;
  }
  return OK;
}

/* ------------------------------------------------------------------------------ */
/* Argument helpers. */

typedef struct {
  Buf words, st;
} Stream;

static int get_stream(PyObject *w, PyObject *s, Stream *st) {
  st->words.held = st->st.held = 0;
  if (get(w, &st->words, 'u', 4, 1, 0, "words") < 0) return -1;
  if (get(s, &st->st, 'u', 8, 1, 1, "st") < 0) return -1;
  if (n_elems(&st->st) != 2) {
    PyErr_SetString(PyExc_ValueError, "st must hold [state, pos]");
    return -1;
  }
  const uint64_t *p = st->st.v.buf;
  if (p[1] > (uint64_t)n_elems(&st->words)) {
    PyErr_SetString(PyExc_ValueError, "stream position beyond the payload");
    return -1;
  }
  return 0;
}

static void rel_stream(Stream *s) {
  rel(&s->words);
  rel(&s->st);
}

/* A 2-D int32 CDF table (+ optional uint16 LUT); checks each row is a valid CDF
 * (0 first, non-decreasing, 2^24 last) and the LUT's entries are in range. */
static int get_table(PyObject *co, PyObject *lo, Buf *cb, Buf *lb, Table *t, int check) {
  cb->held = lb->held = 0;
  if (get(co, cb, 'i', 4, 2, 0, "cdf") < 0) return -1;
  t->cdf = cb->v.buf;
  t->rows = cb->v.shape[0];
  t->width = cb->v.shape[1];
  t->lut = NULL;
  if (t->width < 2 || (t->width & (t->width - 1))) {
    PyErr_SetString(PyExc_ValueError, "cdf width must be a power of two >= 2");
    return -1;
  }
  if (check) {
    for (Py_ssize_t r = 0; r < t->rows; r++) {
      const int32_t *c = t->cdf + r * t->width;
      if (c[0] != 0 || c[t->width - 1] != ONE) goto bad;
      for (Py_ssize_t i = 1; i < t->width; i++)
        if (c[i] < c[i - 1]) goto bad;
    }
  }
  if (lo) {
    if (get(lo, lb, 'u', 2, 2, 0, "lut") < 0) return -1;
    if (lb->v.shape[0] != t->rows || lb->v.shape[1] != (1 << LUT_BITS)) {
      PyErr_SetString(PyExc_ValueError, "lut shape does not match its cdf");
      return -1;
    }
    t->lut = lb->v.buf;
    if (check)
      for (Py_ssize_t i = 0; i < n_elems(lb); i++)
        if (t->lut[i] >= t->width - 1) {
          PyErr_SetString(PyExc_ValueError, "lut entry out of range");
          return -1;
        }
  }
  return 0;
bad:
  PyErr_SetString(PyExc_ValueError, "cdf rows must rise from 0 to 2**24");
  return -1;
}

static PyObject *status(int s) { return PyLong_FromLong(s); }

/* ------------------------------------------------------------------------------ */
/* build_lut(cdf, lut_out) */

static PyObject *py_build_lut(PyObject *self, PyObject *args) {
  PyObject *co, *lo;
  if (!PyArg_ParseTuple(args, "OO", &co, &lo)) return NULL;
  Buf cb = {0}, lb = {0}, ob = {0};
  Table t;
  PyObject *ret = NULL;
  if (get_table(co, NULL, &cb, &lb, &t, 1) < 0) goto done;
  if (get(lo, &ob, 'u', 2, 2, 1, "lut") < 0) goto done;
  if (ob.v.shape[0] != t.rows || ob.v.shape[1] != (1 << LUT_BITS)) {
    PyErr_SetString(PyExc_ValueError, "lut shape");
    goto done;
  }
  uint16_t *lut = ob.v.buf;
  for (Py_ssize_t r = 0; r < t.rows; r++) {
    const int32_t *c = t.cdf + r * t.width;
    Py_ssize_t s = 0;
    for (int b = 0; b < (1 << LUT_BITS); b++) {
      const int64_t q = (int64_t)b << LUT_SHIFT;
      while (s + 2 < t.width && c[s + 1] <= q) s++;
      lut[r << LUT_BITS | b] = (uint16_t)s;
    }
  }
  ret = Py_None;
  Py_INCREF(ret);
done:
  rel(&cb);
  rel(&lb);
  rel(&ob);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* decode_categorical(words, st, cdf, rows, out) / decode_uniform(words, st, sizes, out) */

static PyObject *py_decode_categorical(PyObject *self, PyObject *args) {
  PyObject *w, *s, *co, *ro, *oo;
  if (!PyArg_ParseTuple(args, "OOOOO", &w, &s, &co, &ro, &oo)) return NULL;
  Stream st;
  memset(&st, 0, sizeof st);
  Buf cb = {0}, lb = {0}, rb = {0}, ob = {0};
  Table t;
  PyObject *ret = NULL;
  if (get_stream(w, s, &st) < 0 || get_table(co, NULL, &cb, &lb, &t, 1) < 0 ||
      get(ro, &rb, 'i', 8, 1, 0, "rows") < 0 || get(oo, &ob, 'i', 8, 1, 1, "out") < 0)
    goto done;
  const Py_ssize_t n = n_elems(&rb);
  const int64_t *rows = rb.v.buf;
  if (n_elems(&ob) < n) {
    PyErr_SetString(PyExc_ValueError, "out is too short");
    goto done;
  }
  for (Py_ssize_t i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= t.rows) {
      PyErr_SetString(PyExc_ValueError, "cdf row out of range");
      goto done;
    }
  uint64_t *sp = st.st.v.buf, state = sp[0];
  int64_t pos = (int64_t)sp[1];
  if (n > 0 && state == 0) {
    ret = status(DRY);
    goto done;
  }
  int64_t *out = ob.v.buf;
  const uint32_t *words = st.words.v.buf;
  for (Py_ssize_t i = 0; i < n; i++) out[i] = pop_table(words, &state, &pos, &t, rows[i]);
  sp[0] = state;
  sp[1] = (uint64_t)pos;
  ret = status(OK);
done:
  rel_stream(&st);
  rel(&cb);
  rel(&lb);
  rel(&rb);
  rel(&ob);
  return ret;
}

static PyObject *py_decode_uniform(PyObject *self, PyObject *args) {
  PyObject *w, *s, *so, *oo;
  if (!PyArg_ParseTuple(args, "OOOO", &w, &s, &so, &oo)) return NULL;
  Stream st;
  memset(&st, 0, sizeof st);
  Buf sb = {0}, ob = {0};
  PyObject *ret = NULL;
  if (get_stream(w, s, &st) < 0 || get(so, &sb, 'i', 8, 1, 0, "sizes") < 0 ||
      get(oo, &ob, 'i', 8, 1, 1, "out") < 0)
    goto done;
  const Py_ssize_t n = n_elems(&sb);
  const int64_t *sizes = sb.v.buf;
  if (n_elems(&ob) < n) {
    PyErr_SetString(PyExc_ValueError, "out is too short");
    goto done;
  }
  for (Py_ssize_t i = 0; i < n; i++)
    if (sizes[i] < 2 || sizes[i] >= ONE) {
      PyErr_SetString(PyExc_ValueError, "uniform size out of range");
      goto done;
    }
  uint64_t *sp = st.st.v.buf, state = sp[0];
  int64_t pos = (int64_t)sp[1];
  if (n > 0 && state == 0) {
    ret = status(DRY);
    goto done;
  }
  int64_t *out = ob.v.buf;
  const uint32_t *words = st.words.v.buf;
  for (Py_ssize_t i = 0; i < n; i++) out[i] = pop_uniform(words, &state, &pos, sizes[i]);
  sp[0] = state;
  sp[1] = (uint64_t)pos;
  ret = status(OK);
done:
  rel_stream(&st);
  rel(&sb);
  rel(&ob);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* decode_residuals(words, st, cdf, lut, rows, esc_cdf, esc_lut, esc_rows_of, radius, out) */

static int check_rows(const int64_t *rows, Py_ssize_t n, Py_ssize_t limit) {
  for (Py_ssize_t i = 0; i < n; i++)
    if (rows[i] < 0 || rows[i] >= limit) {
      PyErr_SetString(PyExc_ValueError, "table row out of range");
      return -1;
    }
  return 0;
}

static PyObject *py_decode_residuals(PyObject *self, PyObject *args) {
  PyObject *w, *s, *co, *lo, *ro, *eco, *elo, *ero, *oo;
  long long radius;
  if (!PyArg_ParseTuple(args, "OOOOOOOOLO", &w, &s, &co, &lo, &ro, &eco, &elo, &ero, &radius,
                        &oo))
    return NULL;
  Stream st;
  memset(&st, 0, sizeof st);
  Buf cb = {0}, lb = {0}, ecb = {0}, elb = {0}, rb = {0}, erb = {0}, ob = {0};
  Table t, et;
  PyObject *ret = NULL;
  int64_t *scratch = NULL;
  if (get_stream(w, s, &st) < 0 || get_table(co, lo, &cb, &lb, &t, 0) < 0 ||
      get_table(eco, elo, &ecb, &elb, &et, 0) < 0 ||
      get(ro, &rb, 'i', 8, 1, 0, "rows") < 0 || get(ero, &erb, 'i', 8, 1, 0, "esc_rows") < 0 ||
      get(oo, &ob, 'i', 8, 1, 1, "out") < 0)
    goto done;
  const Py_ssize_t n = n_elems(&rb);
  const int64_t *rows = rb.v.buf, *esc_rows_of = erb.v.buf;
  if (n_elems(&erb) < n || n_elems(&ob) < n || radius < 0 || 2 * radius + 3 > t.width - 1) {
    PyErr_SetString(PyExc_ValueError, "decode_residuals: sizes do not match");
    goto done;
  }
  if (check_rows(rows, n, t.rows) < 0 || check_rows(esc_rows_of, n, et.rows) < 0) goto done;
  uint64_t *sp = st.st.v.buf, state = sp[0];
  int64_t pos = (int64_t)sp[1];
  if (n == 0) {
    ret = status(OK);
    goto done;
  }
  if (state == 0) {
    ret = status(DRY);
    goto done;
  }
  scratch = PyMem_Malloc(sizeof(int64_t) * 4 * n);
  if (!scratch) {
    PyErr_NoMemory();
    goto done;
  }
  int64_t *main_sym = scratch, *idx = scratch + n, *erows = scratch + 2 * n,
          *tmp = scratch + 3 * n, *out = ob.v.buf;
  const uint32_t *words = st.words.v.buf;
  int64_t n_esc = 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    const int64_t sym = pop_table(words, &state, &pos, &t, rows[i]);
    main_sym[i] = sym;
    out[i] = sym - radius;
    if (sym > 2 * radius) {
      idx[n_esc] = i;
      erows[n_esc] = esc_rows_of[i];
      n_esc++;
    }
  }
  int stt = escapes(words, &state, &pos, &et, erows, out, idx, main_sym, n_esc, radius, tmp);
  if (stt == OK) {
    sp[0] = state;
    sp[1] = (uint64_t)pos;
  }
  ret = status(stt);
done:
  PyMem_Free(scratch);
  rel_stream(&st);
  rel(&cb); rel(&lb); rel(&ecb); rel(&elb); rel(&rb); rel(&erb); rel(&ob);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* The integer ARM. */

typedef struct {
  int layers;
  const int64_t *dims, *shifts;
  int64_t *w64, *b64;  /* (L, I, O), (L, O) */
  Py_ssize_t wi, wo;   /* padded I, O */
  int64_t hidden_limit;
  /* AVX2 packing: per layer, (out, in pairs) int32 pairs of int16 weights. */
  int packed;
  int32_t *wp, *bp;
  Py_ssize_t npairs; /* max input pairs */
} Arm;

/* Generic ARM of columns 0..m-1 of X (int64 (wi, stride)); mu/ls (after the last shift). */
static void arm_generic(const Arm *a, int64_t *X, int64_t *Y, Py_ssize_t stride, Py_ssize_t m,
                        int64_t *mu, int64_t *ls) {
  for (int l = 0; l < a->layers; l++) {
    const int64_t nin = a->dims[2 * l], nout = a->dims[2 * l + 1], sh = a->shifts[l];
    const int64_t *W = a->w64 + (Py_ssize_t)l * a->wi * a->wo, *B = a->b64 + l * a->wo;
    const int last = l == a->layers - 1;
    for (int64_t o = 0; o < nout; o++) {
      int64_t *y = Y + o * stride;
      for (Py_ssize_t q = 0; q < m; q++) y[q] = B[o];
      for (int64_t j = 0; j < nin; j++) {
        const int64_t wj = W[j * a->wo + o];
        if (wj == 0) continue;
        const int64_t *x = X + j * stride;
        for (Py_ssize_t q = 0; q < m; q++) y[q] += wj * x[q];
      }
      if (!last) {
        for (Py_ssize_t q = 0; q < m; q++) {
          int64_t v = y[q] >> sh;
          y[q] = v < 0 ? 0 : (v > a->hidden_limit ? a->hidden_limit : v);
        }
      }
    }
    if (last) {
      for (Py_ssize_t q = 0; q < m; q++) {
        mu[q] = Y[q] >> sh;
        ls[q] = Y[stride + q] >> sh;
      }
    } else {
      int64_t *t = X;
      X = Y;
      Y = t;
    }
  }
}

#if HAVE_AVX2_PATH
/* XP: int32 (npairs, stride) pairs of int16 inputs; stride a multiple of 8. */
__attribute__((target("avx2"))) static void arm_avx2(const Arm *a, int32_t *XP, int32_t *YP,
                                                     Py_ssize_t stride, Py_ssize_t m,
                                                     int32_t *mu, int32_t *ls) {
  const __m256i zero = _mm256_setzero_si256();
  const __m256i lim = _mm256_set1_epi32((int32_t)a->hidden_limit);
  const Py_ssize_t chunks = (m + 7) / 8;
  for (int l = 0; l < a->layers; l++) {
    const int64_t nin = a->dims[2 * l], nout = a->dims[2 * l + 1];
    const int64_t np_in = (nin + 1) / 2;
    const __m128i sh = _mm_cvtsi32_si128((int)a->shifts[l]);
    const int32_t *WP = a->wp + (Py_ssize_t)l * a->wo * a->npairs;
    const int32_t *BP = a->bp + l * a->wo;
    const int last = l == a->layers - 1;
    for (int64_t o = 0; o < nout; o += 2) {
      const int two = o + 1 < nout;
      const int32_t *w0 = WP + o * a->npairs, *w1 = WP + (o + 1) * a->npairs;
      const __m256i b0 = _mm256_set1_epi32(BP[o]), b1 = _mm256_set1_epi32(two ? BP[o + 1] : 0);
      for (Py_ssize_t c = 0; c < chunks; c++) {
        __m256i acc0 = b0, acc1 = b1;
        const int32_t *x = XP + 8 * c;
        if (two) {
          for (int64_t p = 0; p < np_in; p++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + p * stride));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(xv, _mm256_set1_epi32(w0[p])));
            acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(xv, _mm256_set1_epi32(w1[p])));
          }
        } else {
          for (int64_t p = 0; p < np_in; p++) {
            const __m256i xv = _mm256_loadu_si256((const __m256i *)(x + p * stride));
            acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(xv, _mm256_set1_epi32(w0[p])));
          }
        }
        acc0 = _mm256_sra_epi32(acc0, sh);
        acc1 = _mm256_sra_epi32(acc1, sh);
        if (last) {
          _mm256_storeu_si256((__m256i *)(mu + 8 * c), acc0);
          _mm256_storeu_si256((__m256i *)(ls + 8 * c), acc1);
        } else {
          acc0 = _mm256_min_epi32(_mm256_max_epi32(acc0, zero), lim);
          acc1 = two ? _mm256_min_epi32(_mm256_max_epi32(acc1, zero), lim) : zero;
          const __m256i packed = _mm256_or_si256(acc0, _mm256_slli_epi32(acc1, 16));
          _mm256_storeu_si256((__m256i *)(YP + (o / 2) * stride + 8 * c), packed);
        }
      }
    }
    if (!last) {
      int32_t *t = XP;
      XP = YP;
      YP = t;
    }
  }
}

/* The same on 16 lanes with AVX-512 VNNI (vpdpwssd: pair multiply-add-accumulate). */
__attribute__((target("avx512f,avx512bw,avx512vnni"))) static void arm_vnni(
    const Arm *a, int32_t *XP, int32_t *YP, Py_ssize_t stride, Py_ssize_t m, int32_t *mu,
    int32_t *ls) {
  const __m512i zero = _mm512_setzero_si512();
  const __m512i lim = _mm512_set1_epi32((int32_t)a->hidden_limit);
  const Py_ssize_t chunks = (m + 15) / 16;
  for (int l = 0; l < a->layers; l++) {
    const int64_t nin = a->dims[2 * l], nout = a->dims[2 * l + 1];
    const int64_t np_in = (nin + 1) / 2;
    const __m128i sh = _mm_cvtsi32_si128((int)a->shifts[l]);
    const int32_t *WP = a->wp + (Py_ssize_t)l * a->wo * a->npairs;
    const int32_t *BP = a->bp + l * a->wo;
    const int last = l == a->layers - 1;
    for (int64_t o = 0; o < nout; o += 2) {
      const int two = o + 1 < nout;
      const int32_t *w0 = WP + o * a->npairs, *w1 = WP + (o + 1) * a->npairs;
      const __m512i b0 = _mm512_set1_epi32(BP[o]), b1 = _mm512_set1_epi32(two ? BP[o + 1] : 0);
      for (Py_ssize_t c = 0; c < chunks; c++) {
        __m512i acc0 = b0, acc1 = b1;
        const int32_t *x = XP + 16 * c;
        if (two) {
          for (int64_t p = 0; p < np_in; p++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(x + p * stride));
            acc0 = _mm512_dpwssd_epi32(acc0, xv, _mm512_set1_epi32(w0[p]));
            acc1 = _mm512_dpwssd_epi32(acc1, xv, _mm512_set1_epi32(w1[p]));
          }
        } else {
          for (int64_t p = 0; p < np_in; p++) {
            const __m512i xv = _mm512_loadu_si512((const void *)(x + p * stride));
            acc0 = _mm512_dpwssd_epi32(acc0, xv, _mm512_set1_epi32(w0[p]));
          }
        }
        acc0 = _mm512_sra_epi32(acc0, sh);
        acc1 = _mm512_sra_epi32(acc1, sh);
        if (last) {
          _mm512_storeu_si512((void *)(mu + 16 * c), acc0);
          _mm512_storeu_si512((void *)(ls + 16 * c), acc1);
        } else {
          acc0 = _mm512_min_epi32(_mm512_max_epi32(acc0, zero), lim);
          acc1 = two ? _mm512_min_epi32(_mm512_max_epi32(acc1, zero), lim) : zero;
          const __m512i packed = _mm512_or_si512(acc0, _mm512_slli_epi32(acc1, 16));
          _mm512_storeu_si512((void *)(YP + (o / 2) * stride + 16 * c), packed);
        }
      }
    }
    if (!last) {
      int32_t *t = XP;
      XP = YP;
      YP = t;
    }
  }
}
#endif

/* ------------------------------------------------------------------------------ */
/* decode_latents */

typedef struct {
  const uint32_t *words;
  uint64_t state;
  int64_t pos;
} Coder;

/* Contexts of the front's positions as int16 pairs into column m of XP (positions with
 * a nonzero context only; flag[q] says which, sel their indices). Inlined with a
 * literal n_ctx for the default ARM so that offsets live in registers. */
static inline __attribute__((always_inline)) Py_ssize_t gather_pairs(
    const int32_t *ctx, const int64_t *fpos, Py_ssize_t n, const int64_t *offsets,
    const int64_t n_ctx, int32_t *XP, Py_ssize_t stride, uint8_t *flag, int64_t *sel) {
  Py_ssize_t m = 0;
  for (Py_ssize_t q = 0; q < n; q++) {
    const int32_t *c = ctx + fpos[q];
    int32_t any = 0;
    int32_t *x = XP + m;
    int64_t j = 0;
    for (; j + 1 < n_ctx; j += 2) {
      const int32_t a = c[offsets[j]], b = c[offsets[j + 1]];
      any |= a | b;
      x[(j / 2) * stride] = (int32_t)(((uint32_t)a & 0xFFFFu) | ((uint32_t)b << 16));
    }
    if (j < n_ctx) {
      const int32_t a = c[offsets[j]];
      any |= a;
      x[(j / 2) * stride] = (int32_t)((uint32_t)a & 0xFFFFu);
    }
    flag[q] = any != 0;
    sel[m] = q;
    m += any != 0;
  }
  return m;
}

/* Runs with the GIL released (py_decode_latents): no Python C-API call in here or in
 * anything it calls. Its buffers come from the raw allocator (PyMem_RawCalloc /
 * PyMem_RawFree), the one allocator that does not need the GIL; PyMem_* without the GIL
 * crashes Python 3.12+ (and trips PYTHONMALLOC=debug on 3.11). */
static int run_latents(Coder *cd, const int64_t *shapes, const int64_t *places, int64_t g,
                       int64_t wc, int64_t cols, const int64_t *offsets, int64_t n_ctx,
                       const uint8_t *keep, const Arm *arm, int64_t context_limit,
                       const int64_t *k, const Table *lat, const Table *esc, int64_t radius,
                       int64_t *canvas, Py_ssize_t size, int use_simd) {
  const int64_t step = cols + 1;
  const int64_t half = k[0], abits = k[1], bshift = k[2], nq = k[3], s_add = k[4],
                s_step = k[5], s_max = k[6];
  const int64_t amask = ((int64_t)1 << abits) - 1;
  int64_t max_front = 1, num_fronts = 0;
  for (int64_t i = 0; i < g; i++) {
    max_front += shapes[2 * i];
    if (shapes[2 * i] > 0 && shapes[2 * i + 1] > 0) {
      int64_t f = shapes[2 * i + 1] + step * (shapes[2 * i] - 1);
      if (f > num_fronts) num_fronts = f;
    }
  }
  /* Row stride of the front buffers: a multiple of 8 lanes, +24 so that rows do not
   * fall 4 KiB apart (4K aliasing of the strided context stores). */
  const Py_ssize_t stride = ((max_front + 15) & ~(Py_ssize_t)15) + 24;
  const Py_ssize_t rows = arm->wi > arm->wo ? arm->wi : arm->wo;
  int status_ = OK;
  int32_t *ctx = PyMem_RawCalloc(size ? size : 1, sizeof(int32_t));
  int64_t *ib = PyMem_RawCalloc(10 * stride, sizeof(int64_t));
  int64_t *X = PyMem_RawCalloc(2 * rows * stride, sizeof(int64_t));
  int32_t *XP = PyMem_RawCalloc((2 * arm->npairs + 2) * stride + 16, sizeof(int32_t));
  if (!ctx || !ib || !X || !XP) {
    PyMem_RawFree(ctx); PyMem_RawFree(ib); PyMem_RawFree(X); PyMem_RawFree(XP);
    return -2;
  }
  int64_t *fpos = ib, *fc = ib + stride, *fmain = ib + 2 * stride, *fr = ib + 3 * stride,
          *idx = ib + 4 * stride, *erows = ib + 5 * stride, *tmp = ib + 6 * stride,
          *sel = ib + 7 * stride, *mu = ib + 8 * stride, *ls = ib + 9 * stride;
  int32_t *YP = XP + arm->npairs * stride, *mu32 = YP + arm->npairs * stride,
          *ls32 = mu32 + stride;
  uint8_t *flag = PyMem_RawCalloc(stride, 1);
  if (!flag) {
    PyMem_RawFree(ctx); PyMem_RawFree(ib); PyMem_RawFree(X); PyMem_RawFree(XP);
    return -2;
  }
  /* All-zero contexts share one output. */
  int64_t mu0 = 0, ls0 = 0;
  arm_generic(arm, X, X + rows * stride, stride, 1, &mu0, &ls0);
  uint64_t state = cd->state;
  int64_t pos = cd->pos;
  const uint32_t *words = cd->words;
  for (int64_t t = 0; t < num_fronts; t++) {
    Py_ssize_t n = 0;
    for (int64_t gi = 0; gi < g; gi++) {
      const int64_t hk = shapes[2 * gi], wk = shapes[2 * gi + 1];
      if (hk == 0 || wk == 0) continue;
      int64_t i_lo = t - wk + 1 <= 0 ? 0 : (t - wk + 1 + step - 1) / step;
      int64_t i_hi = t / step < hk - 1 ? t / step : hk - 1;
      for (int64_t i = i_lo; i <= i_hi; i++) {
        const int64_t p = (places[2 * gi] + i) * wc + places[2 * gi + 1] + t - step * i;
        if (keep && !keep[p]) continue;
        fpos[n++] = p;
      }
    }
    if (n == 0) continue;
    if (state == 0) {
      status_ = DRY;
      goto out;
    }
    /* Contexts of the front; the ARM runs on the positions with a nonzero one. */
    Py_ssize_t m = 0;
    if (use_simd) {
      m = n_ctx == 24 ? gather_pairs(ctx, fpos, n, offsets, 24, XP, stride, flag, sel)
                      : gather_pairs(ctx, fpos, n, offsets, n_ctx, XP, stride, flag, sel);
#if HAVE_AVX2_PATH
      if (m && use_simd == 2) arm_vnni(arm, XP, YP, stride, m, mu32, ls32);
      else if (m) arm_avx2(arm, XP, YP, stride, m, mu32, ls32);
#endif
      for (Py_ssize_t q = 0; q < m; q++) {
        mu[q] = mu32[q];
        ls[q] = ls32[q];
      }
    } else {
      for (Py_ssize_t q = 0; q < n; q++) {
        const int32_t *c = ctx + fpos[q];
        int32_t any = 0;
        for (int64_t j = 0; j < n_ctx; j++) {
          const int32_t a = c[offsets[j]];
          any |= a;
          X[j * stride + m] = a;
        }
        flag[q] = any != 0;
        if (any) sel[m++] = q;
      }
      if (m) arm_generic(arm, X, X + rows * stride, stride, m, mu, ls);
    }
    /* Table indices (integer_arm.table_indices) and main symbols, in order. */
    int64_t n_esc = 0, kk = 0;
    for (Py_ssize_t q = 0; q < n; q++) {
      int64_t a_mu, a_ls;
      if (flag[q]) {
        a_mu = mu[kk];
        a_ls = ls[kk];
        kk++;
      } else {
        a_mu = mu0;
        a_ls = ls0;
      }
      const int64_t shifted = a_mu + half;
      const int64_t c = shifted >> abits;
      const int64_t bucket = (shifted & amask) >> bshift;
      int64_t s = a_ls + s_add;
      s = s >= 0 ? s / s_step : -((-s + s_step - 1) / s_step); /* floor division */
      s = s < 0 ? 0 : (s > s_max ? s_max : s);
      const int64_t sym = pop_table(words, &state, &pos, lat, s * nq + bucket);
      fc[q] = c;
      fmain[q] = sym;
      fr[q] = sym - radius;
      if (sym > 2 * radius) {
        idx[n_esc] = q;
        erows[n_esc] = s;
        n_esc++;
      }
    }
    status_ = escapes(words, &state, &pos, esc, erows, fr, idx, fmain, n_esc, radius, tmp);
    if (status_ != OK) goto out;
    for (Py_ssize_t q = 0; q < n; q++) {
      const int64_t v = fc[q] + fr[q], p = fpos[q];
      canvas[p] = v;
      ctx[p] = (int32_t)(v < -context_limit ? -context_limit
                                            : (v > context_limit ? context_limit : v));
    }
  }
  cd->state = state;
  cd->pos = pos;
out:
  PyMem_RawFree(ctx);
  PyMem_RawFree(ib);
  PyMem_RawFree(X);
  PyMem_RawFree(XP);
  PyMem_RawFree(flag);
  (void)sel;
  return status_;
}

/* 0: plain integers, 1: AVX2, 2: AVX-512 VNNI. */
static int cpu_simd_level(void) {
#if HAVE_AVX2_PATH
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni"))
    return 2;
  return __builtin_cpu_supports("avx2") ? 1 : 0;
#else
  return 0;
#endif
}

static PyObject *py_decode_latents(PyObject *self, PyObject *args) {
  PyObject *w, *s, *sho, *plo, *offo, *keepo, *wo, *bo, *dimo, *shfo, *kko, *co, *lo, *eco,
      *elo, *cano;
  long long wc, cols, hidden_limit, context_limit, radius;
  if (!PyArg_ParseTuple(args, "OOOOLLOOOOOOLLOOOOOLO", &w, &s, &sho, &plo, &wc, &cols, &offo,
                        &keepo, &wo, &bo, &dimo, &shfo, &hidden_limit, &context_limit, &kko,
                        &co, &lo, &eco, &elo, &radius, &cano))
    return NULL;
  Stream st;
  memset(&st, 0, sizeof st);
  Buf shb = {0}, plb = {0}, offb = {0}, keepb = {0}, wb = {0}, bb = {0}, dimb = {0},
      shfb = {0}, kkb = {0}, cb = {0}, lb = {0}, ecb = {0}, elb = {0}, canb = {0};
  Table lat, esc;
  Arm arm = {0};
  PyObject *ret = NULL;
#define FAIL(msg) do { PyErr_SetString(PyExc_ValueError, "decode_latents: " msg); goto done; } while (0)
  if (get_stream(w, s, &st) < 0 || get(sho, &shb, 'i', 8, 2, 0, "shapes") < 0 ||
      get(plo, &plb, 'i', 8, 2, 0, "places") < 0 || get(offo, &offb, 'i', 8, 1, 0, "offsets") < 0 ||
      get(keepo, &keepb, 'u', 1, 1, 0, "keep") < 0 || get(dimo, &dimb, 'i', 8, 2, 0, "dims") < 0 ||
      get(shfo, &shfb, 'i', 8, 1, 0, "shifts") < 0 || get(kko, &kkb, 'i', 8, 1, 0, "consts") < 0 ||
      get_table(co, lo, &cb, &lb, &lat, 0) < 0 || get_table(eco, elo, &ecb, &elb, &esc, 0) < 0 ||
      get(cano, &canb, 'i', 8, 1, 1, "canvas") < 0)
    goto done;
  /* Weights: int32 (small, exact in int32 accumulators) or int64. */
  int small = 1;
  if (PyObject_GetBuffer(wo, &wb.v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
  wb.held = 1;
  if (PyObject_GetBuffer(bo, &bb.v, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) goto done;
  bb.held = 1;
  if (wb.v.ndim != 3 || bb.v.ndim != 2 || wb.v.itemsize != bb.v.itemsize ||
      (wb.v.itemsize != 4 && wb.v.itemsize != 8) || !wb.v.format || !bb.v.format ||
      !strchr("ilq", wb.v.format[wb.v.format[0] == '<' || wb.v.format[0] == '=']) ||
      !strchr("ilq", bb.v.format[bb.v.format[0] == '<' || bb.v.format[0] == '=']))
    FAIL("weights (L, I, O) and biases (L, O) must be int32 or int64");
  small = wb.v.itemsize == 4;
  const int64_t L = wb.v.shape[0];
  arm.layers = (int)L;
  arm.wi = wb.v.shape[1];
  arm.wo = wb.v.shape[2];
  if (L < 1 || bb.v.shape[0] != L || bb.v.shape[1] != arm.wo || dimb.v.shape[0] != L ||
      dimb.v.shape[1] != 2 || n_elems(&shfb) != L || n_elems(&kkb) != 7)
    FAIL("ARM array shapes do not match");
  arm.dims = dimb.v.buf;
  arm.shifts = shfb.v.buf;
  arm.hidden_limit = hidden_limit;
  const int64_t n_ctx = n_elems(&offb);
  for (int64_t l = 0; l < L; l++) {
    const int64_t nin = arm.dims[2 * l], nout = arm.dims[2 * l + 1];
    if (nin < 0 || nin > arm.wi || nout < 0 || nout > arm.wo || arm.shifts[l] < 0 ||
        arm.shifts[l] > 62 || (l > 0 && nin != arm.dims[2 * l - 1]))
      FAIL("bad ARM dims or shifts");
  }
  if (arm.dims[0] != n_ctx || arm.dims[2 * L - 1] != 2) FAIL("ARM must map contexts to 2 outputs");
  arm.w64 = PyMem_Malloc(sizeof(int64_t) * (L * arm.wi * arm.wo + L * arm.wo + 1));
  if (!arm.w64) {
    PyErr_NoMemory();
    goto done;
  }
  arm.b64 = arm.w64 + L * arm.wi * arm.wo;
  int fits16 = small && hidden_limit <= 32767 && context_limit <= 32767 && hidden_limit >= 0;
  for (Py_ssize_t i = 0; i < L * arm.wi * arm.wo; i++) {
    int64_t v = small ? ((int32_t *)wb.v.buf)[i] : ((int64_t *)wb.v.buf)[i];
    arm.w64[i] = v;
    if (v < -32767 || v > 32767) fits16 = 0;
  }
  for (Py_ssize_t i = 0; i < L * arm.wo; i++)
    arm.b64[i] = small ? ((int32_t *)bb.v.buf)[i] : ((int64_t *)bb.v.buf)[i];
  arm.npairs = (arm.wi > arm.wo ? arm.wi : arm.wo) / 2 + 1;
  int level = cpu_simd_level();
  if (simd_enabled < level) level = simd_enabled;
  int use_simd = fits16 ? level : 0;
  if (use_simd) {
    arm.wp = PyMem_Calloc(L * arm.wo * arm.npairs + L * arm.wo + 1, sizeof(int32_t));
    if (!arm.wp) {
      PyErr_NoMemory();
      goto done;
    }
    arm.bp = arm.wp + L * arm.wo * arm.npairs;
    for (int64_t l = 0; l < L; l++)
      for (int64_t o = 0; o < arm.dims[2 * l + 1]; o++) {
        for (int64_t j = 0; j < arm.dims[2 * l]; j++) {
          const uint32_t v = (uint32_t)arm.w64[(l * arm.wi + j) * arm.wo + o] & 0xFFFFu;
          arm.wp[(l * arm.wo + o) * arm.npairs + j / 2] |= (int32_t)(v << (16 * (j & 1)));
        }
        arm.bp[l * arm.wo + o] = (int32_t)arm.b64[l * arm.wo + o];
      }
  }
  /* Geometry: every position and context read inside the canvas. */
  const int64_t g = shb.v.shape[0];
  const Py_ssize_t size = n_elems(&canb);
  if (shb.v.shape[1] != 2 || plb.v.shape[0] != g || plb.v.shape[1] != 2 || wc < 1 || cols < 0)
    FAIL("bad grid geometry");
  if (n_elems(&keepb) != 0 && n_elems(&keepb) != size) FAIL("keep must be empty or canvas-sized");
  int64_t omin = 0, omax = 0;
  const int64_t *off = offb.v.buf, *sh = shb.v.buf, *pl = plb.v.buf;
  for (int64_t j = 0; j < n_ctx; j++) {
    if (off[j] < omin) omin = off[j];
    if (off[j] > omax) omax = off[j];
    if (off[j] >= 0) FAIL("context offsets must be causal (negative)");
  }
  for (int64_t i = 0; i < g; i++) {
    const int64_t hk = sh[2 * i], wk = sh[2 * i + 1], t0 = pl[2 * i], l0 = pl[2 * i + 1];
    if (hk < 0 || wk < 0 || t0 < 0 || l0 < 0 || l0 + wk > wc) FAIL("bad grid geometry");
    if (hk == 0 || wk == 0) continue;
    const int64_t pmin = t0 * wc + l0, pmax = (t0 + hk - 1) * wc + l0 + wk - 1;
    if (pmin + omin < 0 || pmax >= size) FAIL("grids or contexts outside the canvas");
  }
  const int64_t *kk = kkb.v.buf;
  if (kk[1] < 1 || kk[1] > 40 || kk[2] < 0 || kk[2] > kk[1] || kk[3] < 1 || kk[5] < 1 ||
      kk[6] < 0 || (((((int64_t)1 << kk[1]) - 1) >> kk[2]) >= kk[3]) ||
      (kk[6] + 1) * kk[3] > lat.rows || kk[6] >= esc.rows || radius < 0 ||
      2 * radius + 3 > lat.width - 1 || context_limit < 0)
    FAIL("table constants do not match the tables");
  Coder cd = {st.words.v.buf, ((uint64_t *)st.st.v.buf)[0], (int64_t)((uint64_t *)st.st.v.buf)[1]};
  int r;
  Py_BEGIN_ALLOW_THREADS
  r = run_latents(&cd, sh, pl, g, wc, cols, off, n_ctx,
                  n_elems(&keepb) ? (const uint8_t *)keepb.v.buf : NULL, &arm, context_limit,
                  kk, &lat, &esc, radius, canb.v.buf, size, use_simd);
  Py_END_ALLOW_THREADS
  if (r == -2) {
    PyErr_NoMemory();
    goto done;
  }
  if (r == OK) {
    ((uint64_t *)st.st.v.buf)[0] = cd.state;
    ((uint64_t *)st.st.v.buf)[1] = (uint64_t)cd.pos;
  }
  ret = status(r);
#undef FAIL
done:
  PyMem_Free(arm.w64);
  PyMem_Free(arm.wp);
  rel_stream(&st);
  rel(&shb); rel(&plb); rel(&offb); rel(&keepb); rel(&wb); rel(&bb); rel(&dimb); rel(&shfb);
  rel(&kkb); rel(&cb); rel(&lb); rel(&ecb); rel(&elb); rel(&canb);
  return ret;
}

static PyObject *py_set_simd(PyObject *self, PyObject *arg) {
  int old = simd_enabled;
  long v = PyLong_AsLong(arg);
  if (v == -1 && PyErr_Occurred()) return NULL;
  simd_enabled = v < 0 ? 0 : (v > 2 ? 2 : (int)v);
  return PyLong_FromLong(old);
}

static PyObject *py_has_simd(PyObject *self, PyObject *unused) {
  return PyLong_FromLong(cpu_simd_level());
}

static PyMethodDef methods[] = {
    {"build_lut", py_build_lut, METH_VARARGS, "build_lut(cdf, lut_out)"},
    {"decode_categorical", py_decode_categorical, METH_VARARGS,
     "decode_categorical(words, st, cdf, rows, out) -> status"},
    {"decode_uniform", py_decode_uniform, METH_VARARGS,
     "decode_uniform(words, st, sizes, out) -> status"},
    {"decode_residuals", py_decode_residuals, METH_VARARGS,
     "decode_residuals(words, st, cdf, lut, rows, esc_cdf, esc_lut, esc_rows_of, radius, out)"},
    {"decode_latents", py_decode_latents, METH_VARARGS,
     "decode_latents(words, st, shapes, places, wc, cols, offsets, keep, weights, biases, "
     "dims, shifts, hidden_limit, context_limit, consts, cdf, lut, esc_cdf, esc_lut, "
     "radius, canvas) -> status"},
    {"set_simd", py_set_simd, METH_O,
     "set_simd(level) -> previous: highest ARM SIMD level (0 plain, 1 AVX2, 2 AVX-512 "
     "VNNI; tests)"},
    {"has_simd", py_has_simd, METH_NOARGS, "the CPU's ARM SIMD level (0, 1, 2)"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_ans",
                                    "Compiled ANS decoding (see _ans.c).", -1, methods};

PyMODINIT_FUNC PyInit__ans(void) { return PyModule_Create(&module); }

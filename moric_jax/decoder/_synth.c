/* Compiled synthesis kernels of the JAX-free decoder (moric_jax.decoder.networks).
 *
 * Built ahead of time by `pip install -e .` (setup.py); plain C + the CPython API,
 * arrays passed through the buffer protocol (no NumPy headers). Three kernels:
 *
 *   upsample_band(grid, q, row_starts, row_weights, col_starts, col_weights, out)
 *       separable resampling of one int32 latent grid with T x U taps per output
 *       into one (strided) float32 column of the (N, L) stack (bilinear: T = U = 2;
 *       the learned upsampling: its composed 2x steps);
 *   mlp(ops, blob, inputs, outputs, n)
 *       a per-pixel network run on blocks of BLOCK pixels held in a small register
 *       file (rows of BLOCK floats, L1-resident): the program `ops` (int32) loads
 *       input columns, applies dense layers (weights/biases in `blob`), FiLM,
 *       ReLU / tanh-GELU, and stores output columns. Python (networks.py) writes the
 *       programs for the GMN and the LSNs;
 *   res_convs(x, kernels, biases, act)
 *       in place on planar (3, H, W): x += conv_same(act(x)) + bias, per conv.
 *
 * Numerics: float32, FMA where the CPU has it (GCC's target clones pick the code
 * path once per process), GELU as x * sigmoid(2u) with a Cephes-style expf: equal
 * to the NumPy reference within ~1e-6 and deterministic on one machine. Pixels only;
 * the parse never depends on these numbers (DESIGN 2.6).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define BLOCK 32
#define MAX_ROWS 1024

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && !defined(MORIC_NO_CLONES)
#define CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define CLONES
#endif

enum { OP_LOAD = 1, OP_DENSE = 2, OP_ACT = 3, OP_FILM = 4, OP_STORE = 5 };
enum { ACT_RELU = 0, ACT_GELU = 1 };

/* ------------------------------------------------------------------------------ */
/* Buffers. */

typedef struct {
  Py_buffer view;
  int held;
} Buf;

static void buf_release(Buf *b) {
  if (b->held) PyBuffer_Release(&b->view);
  b->held = 0;
}

/* A buffer of `itemsize` bytes with format char `fmt` (any of `fmt`), ndim `ndim`
 * (-1: any), writable if `write`; strided. */
static int buf_get(PyObject *obj, Buf *b, const char *fmts, Py_ssize_t itemsize, int ndim,
                   int write, const char *what) {
  int flags = PyBUF_RECORDS_RO | (write ? PyBUF_WRITABLE : 0);
  b->held = 0;
  if (PyObject_GetBuffer(obj, &b->view, flags) < 0) return -1;
  b->held = 1;
  const char *f = b->view.format ? b->view.format : "B";
  if (*f == '<' || *f == '=' || *f == '@') f++;
  if (b->view.itemsize != itemsize || strlen(f) != 1 || !strchr(fmts, *f) ||
      (ndim >= 0 && b->view.ndim != ndim)) {
    PyErr_Format(PyExc_TypeError, "%s: wrong dtype or ndim", what);
    buf_release(b);
    return -1;
  }
  return 0;
}

static Py_ssize_t elem_stride(const Buf *b, int axis) {
  return b->view.strides[axis] / b->view.itemsize;
}

/* ------------------------------------------------------------------------------ */
/* Math. */

static inline __attribute__((always_inline)) float expf_approx(float v) {
  /* exp(v) for v in [-87, 87] (clamped): 2^n * P(r), rel. error ~1e-7. */
  const float magic = 12582912.0f; /* 1.5 * 2^23 */
  if (v > 87.0f) v = 87.0f;
  if (v < -87.0f) v = -87.0f;
  float kf = v * 1.44269504088896341f + magic;
  kf -= magic;
  float r = v - kf * 0.693359375f;
  r = r - kf * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  int32_t n = (int32_t)kf;
  union { int32_t i; float f; } s;
  s.i = (n + 127) << 23;
  return p * s.f;
}

static inline __attribute__((always_inline)) void act_row(float *x, int kind) {
  if (kind == ACT_RELU) {
    for (int p = 0; p < BLOCK; p++) x[p] = x[p] > 0.0f ? x[p] : 0.0f;
  } else {
    /* 0.5 x (1 + tanh(u)) = x / (1 + exp(-2u)), u = sqrt(2/pi) (x + 0.044715 x^3) */
    for (int p = 0; p < BLOCK; p++) {
      float v = x[p];
      float u = v * (0.7978845608028654f + 0.035677408136300125f * v * v);
      x[p] = v / (1.0f + expf_approx(-2.0f * u));
    }
  }
}

static inline __attribute__((always_inline)) void act_vec(float *x, Py_ssize_t n, int kind) {
  if (kind == ACT_RELU) {
    for (Py_ssize_t p = 0; p < n; p++) x[p] = x[p] > 0.0f ? x[p] : 0.0f;
  } else {
    for (Py_ssize_t p = 0; p < n; p++) {
      float v = x[p];
      float u = v * (0.7978845608028654f + 0.035677408136300125f * v * v);
      x[p] = v / (1.0f + expf_approx(-2.0f * u));
    }
  }
}

/* out rows [o] = bias[o] + sum_j W[j, o] * in[j] (W row-major (nin, nout)).
 * GCC vector extensions: 16 floats per vf (one zmm, two ymm or four xmm registers,
 * as the target clone has), BLOCK = 2 vf per row, 4 outputs per pass (8 accumulators). */
typedef float vf __attribute__((vector_size(64)));
#define VPR (BLOCK / 16)

static inline __attribute__((always_inline)) vf vload(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline __attribute__((always_inline)) void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }

static inline __attribute__((always_inline)) void dense_block(float (*rows)[BLOCK], const int32_t *in_idx, int nin,
                               int nout, int out_row, const float *W, const float *bias) {
  int o = 0;
  for (; o + 4 <= nout; o += 4) {
    vf a0[VPR], a1[VPR], a2[VPR], a3[VPR];
    for (int v = 0; v < VPR; v++) {
      a0[v] = (vf){0} + bias[o];
      a1[v] = (vf){0} + bias[o + 1];
      a2[v] = (vf){0} + bias[o + 2];
      a3[v] = (vf){0} + bias[o + 3];
    }
    for (int j = 0; j < nin; j++) {
      const float *x = rows[in_idx[j]];
      const float *w = W + (Py_ssize_t)j * nout + o;
      const float w0 = w[0], w1 = w[1], w2 = w[2], w3 = w[3];
      for (int v = 0; v < VPR; v++) {
        const vf xv = vload(x + 16 * v);
        a0[v] += w0 * xv;
        a1[v] += w1 * xv;
        a2[v] += w2 * xv;
        a3[v] += w3 * xv;
      }
    }
    for (int v = 0; v < VPR; v++) {
      vstore(rows[out_row + o] + 16 * v, a0[v]);
      vstore(rows[out_row + o + 1] + 16 * v, a1[v]);
      vstore(rows[out_row + o + 2] + 16 * v, a2[v]);
      vstore(rows[out_row + o + 3] + 16 * v, a3[v]);
    }
  }
  for (; o < nout; o++) {
    vf a0[VPR];
    for (int v = 0; v < VPR; v++) a0[v] = (vf){0} + bias[o];
    for (int j = 0; j < nin; j++) {
      const float *x = rows[in_idx[j]];
      const float w0 = W[(Py_ssize_t)j * nout + o];
      for (int v = 0; v < VPR; v++) a0[v] += w0 * vload(x + 16 * v);
    }
    for (int v = 0; v < VPR; v++) vstore(rows[out_row + o] + 16 * v, a0[v]);
  }
}

/* ------------------------------------------------------------------------------ */
/* mlp */

typedef struct {
  char *base;
  Py_ssize_t s0, s1; /* element strides: pixel, column */
  Py_ssize_t cols;
} Col2D;

CLONES
static void run_mlp(const int32_t *ops, Py_ssize_t n_ops, const float *blob,
                    const Col2D *ins, const Col2D *outs, Py_ssize_t n,
                    const int64_t *in_index, const int64_t *out_index,
                    float (*rows)[BLOCK]) {
  for (Py_ssize_t i0 = 0; i0 < n; i0 += BLOCK) {
    const int m = (int)(n - i0 < BLOCK ? n - i0 : BLOCK);
    const int64_t *ii = in_index ? in_index + i0 : NULL;
    const int64_t *oi = out_index ? out_index + i0 : NULL;
    /* Indices are strictly increasing (checked): a block spanning m rows is a run. */
    const Py_ssize_t ibase = ii ? ii[0] : i0, obase = oi ? oi[0] : i0;
    if (ii && ii[m - 1] - ii[0] == m - 1) ii = NULL;
    if (oi && oi[m - 1] - oi[0] == m - 1) oi = NULL;
    Py_ssize_t k = 0;
    while (k < n_ops) {
      const int32_t op = ops[k];
      if (op == OP_LOAD) {
        const Col2D *a = &ins[ops[k + 1]];
        const int ncols = ops[k + 2], dst = ops[k + 3];
        const float *src = (const float *)a->base;
        for (int c = 0; c < ncols; c++) {
          float *r = rows[dst + c];
          const float *s = src + (ibase * a->s0 + c * a->s1);
          int p = 0;
          if (ii) {
            const float *sc = src + c * a->s1;
            for (; p < m; p++) r[p] = sc[ii[p] * a->s0];
          } else if (a->s0 == 1) {
            for (; p < m; p++) r[p] = s[p];
          } else {
            for (; p < m; p++) r[p] = s[p * a->s0];
          }
          for (; p < BLOCK; p++) r[p] = 0.0f;
        }
        k += 4;
      } else if (op == OP_DENSE) {
        const int nin = ops[k + 1], nout = ops[k + 2], out_row = ops[k + 3];
        const int32_t idx_off = ops[k + 4], w_off = ops[k + 5];
        const float *W = blob + w_off;
        dense_block(rows, ops + idx_off, nin, nout, out_row, W,
                    W + (Py_ssize_t)nin * nout);
        k += 6;
      } else if (op == OP_ACT) {
        const int row = ops[k + 1], cnt = ops[k + 2], kind = ops[k + 3];
        for (int c = 0; c < cnt; c++) act_row(rows[row + c], kind);
        k += 4;
      } else if (op == OP_FILM) {
        const int z = ops[k + 1], g = ops[k + 2], b = ops[k + 3], cnt = ops[k + 4];
        for (int c = 0; c < cnt; c++) {
          float *zr = rows[z + c];
          const float *gr = rows[g + c], *br = rows[b + c];
          for (int p = 0; p < BLOCK; p++) zr[p] = zr[p] * (1.0f + gr[p]) + br[p];
        }
        k += 5;
      } else { /* OP_STORE, checked by the caller */
        const int src = ops[k + 1], ncols = ops[k + 2];
        const Col2D *a = &outs[ops[k + 3]];
        float *dst = (float *)a->base;
        for (int c = 0; c < ncols; c++) {
          const float *r = rows[src + c];
          float *d = dst + (obase * a->s0 + c * a->s1);
          if (oi) {
            float *dc = dst + c * a->s1;
            for (int p = 0; p < m; p++) dc[oi[p] * a->s0] = r[p];
          } else if (a->s0 == 1) {
            for (int p = 0; p < m; p++) d[p] = r[p];
          } else {
            for (int p = 0; p < m; p++) d[p * a->s0] = r[p];
          }
        }
        k += 4;
      }
    }
  }
}

static int get_cols(PyObject *seq, Buf **bufs, Col2D **cols, Py_ssize_t *count, int write,
                    Py_ssize_t n) {
  PyObject *fast = PySequence_Fast(seq, "inputs/outputs must be a sequence");
  if (!fast) return -1;
  Py_ssize_t c = PySequence_Fast_GET_SIZE(fast);
  *bufs = PyMem_Calloc(c ? c : 1, sizeof(Buf));
  *cols = PyMem_Calloc(c ? c : 1, sizeof(Col2D));
  *count = 0;
  if (!*bufs || !*cols) {
    Py_DECREF(fast);
    PyErr_NoMemory();
    return -1;
  }
  for (Py_ssize_t i = 0; i < c; i++) {
    Buf *b = &(*bufs)[i];
    if (buf_get(PySequence_Fast_GET_ITEM(fast, i), b, "f", 4, 2, write, "mlp array") < 0) {
      Py_DECREF(fast);
      return -1;
    }
    (*count)++;
    if (b->view.shape[0] < n) {
      PyErr_SetString(PyExc_ValueError, "mlp array has fewer rows than n");
      Py_DECREF(fast);
      return -1;
    }
    (*cols)[i].base = b->view.buf;
    (*cols)[i].s0 = elem_stride(b, 0);
    (*cols)[i].s1 = elem_stride(b, 1);
    (*cols)[i].cols = b->view.shape[1];
  }
  Py_DECREF(fast);
  return 0;
}

/* Largest index + 1 (0 if empty); -1 with an error set for a negative index. */
static Py_ssize_t index_bound(const Buf *b) {
  const int64_t *p = b->view.buf;
  const Py_ssize_t n = b->view.shape[0];
  for (Py_ssize_t i = 0; i < n; i++)
    if (p[i] < 0 || (i > 0 && p[i] <= p[i - 1])) {
      PyErr_SetString(PyExc_ValueError, "pixel indices must be >= 0 and strictly increasing");
      return -1;
    }
  return n ? (Py_ssize_t)(p[n - 1] + 1) : 0;
}

static PyObject *py_mlp(PyObject *self, PyObject *args) {
  PyObject *ops_o, *blob_o, *ins_o, *outs_o, *ii_o = Py_None, *oi_o = Py_None;
  Py_ssize_t n;
  if (!PyArg_ParseTuple(args, "OOOOn|OO", &ops_o, &blob_o, &ins_o, &outs_o, &n, &ii_o, &oi_o))
    return NULL;
  Buf ops = {0}, blob = {0}, iib = {0}, oib = {0};
  Py_ssize_t in_rows = n, out_rows = n;
  Buf *ib = NULL, *ob = NULL;
  Col2D *ic = NULL, *oc = NULL;
  Py_ssize_t ni = 0, no = 0;
  PyObject *ret = NULL;
  float (*rows)[BLOCK] = NULL;
  if (buf_get(ops_o, &ops, "ilq", 4, 1, 0, "ops") < 0) goto done;
  if (buf_get(blob_o, &blob, "f", 4, 1, 0, "blob") < 0) goto done;
  if (ops.view.strides[0] != 4 || blob.view.strides[0] != 4) {
    PyErr_SetString(PyExc_ValueError, "ops/blob must be contiguous");
    goto done;
  }
  if (ii_o != Py_None) {
    if (buf_get(ii_o, &iib, "lq", 8, 1, 0, "in_index") < 0) goto done;
    if (iib.view.strides[0] != 8 || iib.view.shape[0] != n) {
      PyErr_SetString(PyExc_ValueError, "in_index must be contiguous with n entries");
      goto done;
    }
    if ((in_rows = index_bound(&iib)) < 0) goto done;
  }
  if (oi_o != Py_None) {
    if (buf_get(oi_o, &oib, "lq", 8, 1, 0, "out_index") < 0) goto done;
    if (oib.view.strides[0] != 8 || oib.view.shape[0] != n) {
      PyErr_SetString(PyExc_ValueError, "out_index must be contiguous with n entries");
      goto done;
    }
    if ((out_rows = index_bound(&oib)) < 0) goto done;
  }
  if (get_cols(ins_o, &ib, &ic, &ni, 0, in_rows) < 0) goto done;
  if (get_cols(outs_o, &ob, &oc, &no, 1, out_rows) < 0) goto done;
  /* Validate the program once. */
  const int32_t *p = ops.view.buf;
  const Py_ssize_t len = ops.view.shape[0], nb = blob.view.shape[0];
  Py_ssize_t k = 0;
  int nrows = 0;
#define NEED(c) if (!(c)) { PyErr_SetString(PyExc_ValueError, "bad mlp program"); goto done; }
  while (k < len) {
    int32_t op = p[k];
    if (op == OP_LOAD || op == OP_STORE) {
      NEED(k + 4 <= len);
      const int32_t arr = p[k + (op == OP_LOAD ? 1 : 3)], cnt = p[k + 2],
                    row = p[k + (op == OP_LOAD ? 3 : 1)];
      NEED(arr >= 0 && arr < (op == OP_LOAD ? ni : no));
      NEED(cnt >= 0 && cnt <= (op == OP_LOAD ? ic : oc)[arr].cols);
      NEED(row >= 0 && row + cnt <= MAX_ROWS);
      if (row + cnt > nrows) nrows = row + cnt;
      k += 4;
    } else if (op == OP_DENSE) {
      NEED(k + 6 <= len);
      const int32_t nin = p[k + 1], nout = p[k + 2], orow = p[k + 3], io = p[k + 4],
                    wo = p[k + 5];
      NEED(nin >= 0 && nout >= 0 && orow >= 0 && orow + nout <= MAX_ROWS);
      NEED(io >= 0 && io + nin <= len && wo >= 0 &&
           (Py_ssize_t)wo + (Py_ssize_t)(nin + 1) * nout <= nb);
      for (int j = 0; j < nin; j++) NEED(p[io + j] >= 0 && p[io + j] < MAX_ROWS);
      if (orow + nout > nrows) nrows = orow + nout;
      k += 6;
    } else if (op == OP_ACT) {
      NEED(k + 4 <= len && p[k + 1] >= 0 && p[k + 2] >= 0 && p[k + 1] + p[k + 2] <= MAX_ROWS);
      NEED(p[k + 3] == ACT_RELU || p[k + 3] == ACT_GELU);
      k += 4;
    } else if (op == OP_FILM) {
      NEED(k + 5 <= len && p[k + 4] >= 0);
      for (int i = 1; i <= 3; i++) NEED(p[k + i] >= 0 && p[k + i] + p[k + 4] <= MAX_ROWS);
      k += 5;
    } else if (op == 0) {
      break; /* padding / index lists follow */
    } else {
      NEED(0);
    }
  }
#undef NEED
  rows = PyMem_Calloc(MAX_ROWS, sizeof *rows);
  if (!rows) {
    PyErr_NoMemory();
    goto done;
  }
  Py_BEGIN_ALLOW_THREADS
  run_mlp(p, k, blob.view.buf, ic, oc, n, iib.held ? iib.view.buf : NULL,
          oib.held ? oib.view.buf : NULL, rows);
  Py_END_ALLOW_THREADS
  (void)nrows;
  ret = Py_None;
  Py_INCREF(ret);
done:
  PyMem_Free(rows);
  for (Py_ssize_t i = 0; i < ni; i++) buf_release(&ib[i]);
  for (Py_ssize_t i = 0; i < no; i++) buf_release(&ob[i]);
  PyMem_Free(ib);
  PyMem_Free(ob);
  PyMem_Free(ic);
  PyMem_Free(oc);
  buf_release(&ops);
  buf_release(&blob);
  buf_release(&iib);
  buf_release(&oib);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* upsample_band: separable resampling with T (rows) and U (columns) taps per output,
   out[y, x] = sum_u cw[x, u] * (sum_t rw[y, t] * (q * g[rs[y] + t, cs[x] + u])),
   rows first. The learned upsampling's composed steps (model/upsampling.axis_bands). */

CLONES
static void run_upsample_band(const int32_t *g, Py_ssize_t gs0, Py_ssize_t gs1,
                              Py_ssize_t wk, float q, const int64_t *rs, const float *rw,
                              Py_ssize_t T, Py_ssize_t H, const int64_t *cs,
                              const float *cw, Py_ssize_t U, Py_ssize_t W, float *out,
                              Py_ssize_t os, float *row, float *acc) {
  for (Py_ssize_t y = 0; y < H; y++) {
    const float *w = rw + y * T;
    for (Py_ssize_t x = 0; x < wk; x++) row[x] = 0.0f;
    for (Py_ssize_t t = 0; t < T; t++) {
      const int32_t *gr = g + (rs[y] + t) * gs0;
      const float wt = w[t];
      for (Py_ssize_t x = 0; x < wk; x++) row[x] += ((float)gr[x * gs1] * q) * wt;
    }
    for (Py_ssize_t x = 0; x < W; x++) acc[x] = 0.0f;
    for (Py_ssize_t u = 0; u < U; u++)
      for (Py_ssize_t x = 0; x < W; x++) acc[x] += row[cs[x] + u] * cw[x * U + u];
    float *o = out + y * W * os;
    for (Py_ssize_t x = 0; x < W; x++) o[x * os] = acc[x];
  }
}

static PyObject *py_upsample_band(PyObject *self, PyObject *args) {
  PyObject *o[6];
  float q;
  if (!PyArg_ParseTuple(args, "OfOOOOO", &o[0], &q, &o[1], &o[2], &o[3], &o[4], &o[5]))
    return NULL;
  Buf g = {0}, rs = {0}, rw = {0}, cs = {0}, cw = {0}, out = {0};
  PyObject *ret = NULL;
  float *row = NULL;
  if (buf_get(o[0], &g, "ilq", 4, 2, 0, "grid") < 0 ||
      buf_get(o[1], &rs, "lq", 8, 1, 0, "row starts") < 0 ||
      buf_get(o[2], &rw, "f", 4, 2, 0, "row weights") < 0 ||
      buf_get(o[3], &cs, "lq", 8, 1, 0, "column starts") < 0 ||
      buf_get(o[4], &cw, "f", 4, 2, 0, "column weights") < 0 ||
      buf_get(o[5], &out, "f", 4, 1, 1, "out") < 0)
    goto done;
  const Py_ssize_t hk = g.view.shape[0], wk = g.view.shape[1];
  const Py_ssize_t H = rs.view.shape[0], W = cs.view.shape[0];
  const Py_ssize_t T = rw.view.shape[1], U = cw.view.shape[1];
  if (rs.view.strides[0] != 8 || cs.view.strides[0] != 8 ||
      rw.view.strides[1] != 4 || rw.view.strides[0] != 4 * T ||
      cw.view.strides[1] != 4 || cw.view.strides[0] != 4 * U) {
    PyErr_SetString(PyExc_ValueError, "upsample_band: taps must be C-contiguous");
    goto done;
  }
  if (rw.view.shape[0] != H || cw.view.shape[0] != W || out.view.shape[0] != H * W ||
      T < 1 || U < 1) {
    PyErr_SetString(PyExc_ValueError, "upsample_band: size mismatch");
    goto done;
  }
  const int64_t *RS = rs.view.buf, *CS = cs.view.buf;
  for (Py_ssize_t i = 0; i < H; i++)
    if (RS[i] < 0 || RS[i] + T > hk) {
      PyErr_SetString(PyExc_ValueError, "upsample_band: row taps out of range");
      goto done;
    }
  for (Py_ssize_t i = 0; i < W; i++)
    if (CS[i] < 0 || CS[i] + U > wk) {
      PyErr_SetString(PyExc_ValueError, "upsample_band: column taps out of range");
      goto done;
    }
  row = PyMem_Malloc((wk + W + 1) * sizeof(float));
  if (!row) {
    PyErr_NoMemory();
    goto done;
  }
  Py_BEGIN_ALLOW_THREADS
  run_upsample_band(g.view.buf, elem_stride(&g, 0), elem_stride(&g, 1), wk, q, RS,
                    rw.view.buf, T, H, CS, cw.view.buf, U, W, out.view.buf,
                    elem_stride(&out, 0), row, row + wk);
  Py_END_ALLOW_THREADS
  ret = Py_None;
  Py_INCREF(ret);
done:
  PyMem_Free(row);
  buf_release(&g); buf_release(&rs); buf_release(&rw); buf_release(&cs);
  buf_release(&cw); buf_release(&out);
  return ret;
}

/* ------------------------------------------------------------------------------ */
/* res_convs */

/* Residual convs, row by row: act(x) of the K rows an output row reads sits in a ring
 * of K zero-padded rows (filled just before x's row is overwritten), so nothing of
 * image size is allocated. 3 channels (the LSN's): 16 pixels at a time, the three
 * outputs accumulated in registers over the K*K*3 taps. */
CLONES
static void run_convs(float *x, Py_ssize_t C, Py_ssize_t H, Py_ssize_t W, const float *kern,
                      const float *bias, Py_ssize_t nconv, Py_ssize_t K, int kind,
                      float *ring, float *acc) {
  const Py_ssize_t ph = K / 2, below = K - 1 - ph;
  const Py_ssize_t Wp = ((W + K - 1 + 15) & ~(Py_ssize_t)15) + 16;
  float *zrow = ring + K * C * Wp; /* stays zero */
  for (Py_ssize_t i = 0; i < nconv; i++) {
    const float *k = kern + i * K * K * C * C, *b = bias + i * C;
    Py_ssize_t next = 0; /* next input row to put in the ring */
    for (Py_ssize_t y = 0; y < H; y++) {
      for (; next < H && next <= y + below; next++)
        for (Py_ssize_t c = 0; c < C; c++) {
          float *d = ring + ((next % K) * C + c) * Wp + ph;
          memcpy(d, x + (c * H + next) * W, sizeof(float) * W);
          act_vec(d, W, kind);
        }
      if (C == 3) {
        for (Py_ssize_t x0 = 0; x0 < W; x0 += 16) {
          vf a0 = (vf){0} + b[0], a1 = (vf){0} + b[1], a2 = (vf){0} + b[2];
          for (Py_ssize_t dy = 0; dy < K; dy++) {
            const Py_ssize_t r = y - ph + dy;
            const float *row = (r < 0 || r >= H) ? NULL : ring + (r % K) * C * Wp;
            for (Py_ssize_t dx = 0; dx < K; dx++)
              for (Py_ssize_t c = 0; c < 3; c++) {
                const float *w = k + ((dy * K + dx) * 3 + c) * 3;
                const vf sv = vload((row ? row + c * Wp : zrow) + x0 + dx);
                a0 += w[0] * sv;
                a1 += w[1] * sv;
                a2 += w[2] * sv;
              }
          }
          const Py_ssize_t m = W - x0 < 16 ? W - x0 : 16;
          float t0[16], t1[16], t2[16];
          vstore(t0, a0);
          vstore(t1, a1);
          vstore(t2, a2);
          float *d0 = x + y * W + x0, *d1 = d0 + H * W, *d2 = d1 + H * W;
          for (Py_ssize_t p = 0; p < m; p++) {
            d0[p] += t0[p];
            d1[p] += t1[p];
            d2[p] += t2[p];
          }
        }
        continue;
      }
      for (Py_ssize_t o = 0; o < C; o++) {
        for (Py_ssize_t xx = 0; xx < W; xx++) acc[xx] = b[o];
        for (Py_ssize_t dy = 0; dy < K; dy++) {
          const Py_ssize_t r = y - ph + dy;
          for (Py_ssize_t dx = 0; dx < K; dx++)
            for (Py_ssize_t c = 0; c < C; c++) {
              const float w = k[((dy * K + dx) * C + c) * C + o];
              const float *src =
                  ((r < 0 || r >= H) ? zrow : ring + ((r % K) * C + c) * Wp) + dx;
              for (Py_ssize_t xx = 0; xx < W; xx++) acc[xx] += w * src[xx];
            }
        }
        for (Py_ssize_t xx = 0; xx < W; xx++) acc[W + o * W + xx] = acc[xx];
      }
      /* write after all channels are computed (they all read the ring, not x) */
      for (Py_ssize_t o = 0; o < C; o++) {
        float *d = x + (o * H + y) * W;
        for (Py_ssize_t xx = 0; xx < W; xx++) d[xx] += acc[W + o * W + xx];
      }
    }
  }
}

static PyObject *py_res_convs(PyObject *self, PyObject *args) {
  PyObject *xo, *ko, *bo;
  int kind;
  if (!PyArg_ParseTuple(args, "OOOi", &xo, &ko, &bo, &kind)) return NULL;
  Buf x = {0}, k = {0}, b = {0};
  PyObject *ret = NULL;
  float *pad = NULL, *acc = NULL;
  if (buf_get(xo, &x, "f", 4, 3, 1, "x") < 0 || buf_get(ko, &k, "f", 4, 5, 0, "kernels") < 0 ||
      buf_get(bo, &b, "f", 4, 2, 0, "biases") < 0)
    goto done;
  if (!PyBuffer_IsContiguous(&x.view, 'C') || !PyBuffer_IsContiguous(&k.view, 'C') ||
      !PyBuffer_IsContiguous(&b.view, 'C')) {
    PyErr_SetString(PyExc_ValueError, "res_convs: arrays must be C-contiguous");
    goto done;
  }
  const Py_ssize_t C = x.view.shape[0], H = x.view.shape[1], W = x.view.shape[2];
  const Py_ssize_t n = k.view.shape[0], K = k.view.shape[1];
  if (k.view.shape[2] != K || k.view.shape[3] != C || k.view.shape[4] != C ||
      b.view.shape[0] != n || b.view.shape[1] != C || K < 1 || (kind != ACT_RELU && kind != ACT_GELU)) {
    PyErr_SetString(PyExc_ValueError, "res_convs: shape mismatch");
    goto done;
  }
  if (n > 0 && H > 0 && W > 0) {
    const Py_ssize_t Wp = ((W + K - 1 + 15) & ~(Py_ssize_t)15) + 16;
    pad = PyMem_Calloc((K * C + 1) * Wp, sizeof(float)); /* ring + a zero row */
    acc = PyMem_Malloc(sizeof(float) * W * (C + 1));
    if (!pad || !acc) {
      PyErr_NoMemory();
      goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    run_convs(x.view.buf, C, H, W, k.view.buf, b.view.buf, n, K, kind, pad, acc);
    Py_END_ALLOW_THREADS
  }
  ret = Py_None;
  Py_INCREF(ret);
done:
  PyMem_Free(pad);
  PyMem_Free(acc);
  buf_release(&x);
  buf_release(&k);
  buf_release(&b);
  return ret;
}

static PyMethodDef methods[] = {
    {"mlp", py_mlp, METH_VARARGS,
     "mlp(ops, blob, inputs, outputs, n[, in_index, out_index]): per-pixel program on n "
     "pixels (pixel i reads input row in_index[i], writes output row out_index[i]; "
     "strictly increasing)."},
    {"upsample_band", py_upsample_band, METH_VARARGS,
     "upsample_band(grid, q, row_starts, row_weights, col_starts, col_weights, out): "
     "separable resampling with T x U taps per output."},
    {"res_convs", py_res_convs, METH_VARARGS,
     "res_convs(x, kernels, biases, act): residual 'SAME' convs, in place."},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_synth",
                                    "Compiled synthesis kernels (see _synth.c).", -1, methods};

PyMODINIT_FUNC PyInit__synth(void) { return PyModule_Create(&module); }

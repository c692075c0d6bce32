/* kernel_attention.c -- CPU kernels of flash_attention and
 * flash_attention_bwd (ops.def), tiled so that the [Tq, Tk] scores of a
 * head never exist: only one Bq x Bk tile of them at a time, in the
 * worker's workspace slice.
 *
 * Tiles: Bq query rows by Bk keys (Bk a multiple of 8, the vector width).
 * The op's block_q / block_k when set; otherwise the largest B in 48, 96,
 * 192 (multiples of the micro-kernel's 6 rows and 16 columns) whose
 * working set -- the Q, Kᵀ, V and output tiles and the score tile,
 * 4 (3 B d + B dv + B²) bytes for d = dv -- fits half the host's L2 cache
 * (sysconf; 512 KiB when it says nothing); then each length is split into
 * as few tiles of at most B as it needs, made even (197 queries: 102 + 95,
 * not 192 + 5), Bq rounded up to a multiple of 6 and Bk of 8.
 * Every product runs on the GEMM micro-kernel (llvm_gemm.c); a key tile
 * is packed transposed (Kᵀ, and Vᵀ in the backward) into the slice, zero
 * past the last key.
 *
 * flash_attention: parallel over (head, query tile).  Per key tile (with
 * causal, only up to the diagonal): S = Q Kᵀ, then per row the online
 * softmax -- m' = max(m, max_j s), p = exp(s - m'), l = l e^(m - m') + sum p,
 * O = O e^(m - m') -- then O += P V.  At the end o = O / l and
 * lse = m + log l.  Masked and padding keys get s = -inf (p = 0).
 *
 * flash_attention_bwd: with two or more heads per item, one parallel loop
 * over heads; each walks its key tiles and, per key tile, the query tiles
 * (causal: from the diagonal on), recomputing P = exp(S - lse) and
 * D = rowsum(dO ∘ O): dV += Pᵀ dO, dS = P ∘ (dO Vᵀ - D) · scale,
 * dK += dSᵀ Q, and dq += dS K straight into the head's dq (5 products per
 * tile pair).  With one head per item (so that batch 1 still splits),
 * one parallel loop over (head, key tile) -- the same without dq --
 * followed by (head, query tile) iterations that recompute S, P and dS
 * and do dQ += dS K (7 products per pair).  No two iterations write the
 * same element and the sums run in a fixed order, so results do not
 * depend on the split.
 */
#include <math.h>
#include <unistd.h>

#include "llvm_gemm.h"

typedef struct Tiles {
    int64_t bq, bk, nqt, nkt;
} Tiles;

static int64_t round8(int64_t v) { return (v + 7) / 8 * 8; }

static int64_t l2_bytes(void)
{
#ifdef _SC_LEVEL2_CACHE_SIZE
    long v = sysconf(_SC_LEVEL2_CACHE_SIZE);
    if (v > 0) return v;
#endif
    return 512 * 1024;
}

/* The tile of at most b rows (rounded up to a multiple of 'mult') that
 * splits 'len' into the fewest, most even tiles. */
static int64_t even_tile(int64_t len, int64_t b, int64_t mult)
{
    int64_t n = (len + b - 1) / b, t = (len + n - 1) / n;
    t = (t + mult - 1) / mult * mult;
    return t < len ? t : len;
}

static Tiles tiles_of(const DnOp *op, const DnAttnGeom *a)
{
    int64_t b = 48, dmax = a->d > a->dv ? a->d : a->dv;
    for (int64_t c = 96; c <= 192; c *= 2)
        if (4 * (3 * c * dmax + c * dmax + c * c) <= l2_bytes() / 2) b = c;
    Tiles t = {.bq = dn_op_int(op, "block_q"), .bk = dn_op_int(op, "block_k")};
    if (!t.bq) t.bq = even_tile(a->Tq, b, 6);
    t.bk = round8(t.bk ? t.bk : even_tile(a->Tk, b, 8));
    t.nqt = (a->Tq + t.bq - 1) / t.bq;
    t.nkt = (a->Tk + t.bk - 1) / t.bk;
    return t;
}

/* The scratch arrays, in the order the generators take them. */
static int64_t fwd_arrays(const DnAttnGeom *a, const Tiles *t, int64_t *n)
{
    n[0] = a->d * t->bk;  /* Kᵀ */
    n[1] = t->bq * t->bk; /* S / P */
    n[2] = t->bq * a->dv; /* O */
    n[3] = t->bq;         /* m */
    n[4] = t->bq;         /* l */
    return 5;
}

static int64_t bwd_arrays(const DnAttnGeom *a, const Tiles *t, int64_t *n)
{
    int64_t rows = t->bq > t->bk ? t->bq : t->bk;
    n[0] = a->d * t->bk;  /* Kᵀ */
    n[1] = a->dv * t->bk; /* Vᵀ */
    n[2] = t->bq * t->bk; /* P */
    n[3] = t->bq * t->bk; /* dP, then dS */
    n[4] = rows * a->d;   /* dK or dQ */
    n[5] = t->bk * a->dv; /* dV */
    n[6] = t->bq;         /* D */
    return 7;
}

bool dn_attention_scratch(const DnOp *op, DnScratch *s)
{
    DnAttnGeom a = dn_attention_geom(op);
    Tiles t = tiles_of(op, &a);
    int64_t n[8];
    int c = (int)(op->kind == DN_OP_FLASH_ATTENTION ? fwd_arrays(&a, &t, n) : bwd_arrays(&a, &t, n));
    *s = (DnScratch){0};
    for (int i = 0; i < c; i++) s->slice += dn_ws_f32_bytes(n[i]);
    return true;
}

/* ---- shared pieces ---------------------------------------------------------- */

typedef struct Attn {
    DnKernel *k;
    DnAttnGeom a;
    Tiles t;
    LLVMValueRef q, kk, v, bias;        /* operand pointers */
    LLVMValueRef bh;                    /* the head */
    LLVMValueRef qb, kb, vb, ob, lb;    /* its first element in q, k, v, o (and do), lse */
    LLVMValueRef boff;                  /* its bias offset */
    LLVMValueRef kt_buf, vt_buf, s, dp; /* scratch */
} Attn;

static LLVMValueRef fsub(DnKernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildFSub(k->L->b, a, b, ""); }

/* Sets the head's bases from bh. */
static void set_head(Attn *t, LLVMValueRef bh)
{
    DnKernel *k = t->k;
    const DnAttnGeom *a = &t->a;
    t->bh = bh;
    t->qb = dn_mul(k, bh, dn_i64(k, a->Tq * a->d));
    t->kb = dn_mul(k, bh, dn_i64(k, a->Tk * a->d));
    t->vb = dn_mul(k, bh, dn_i64(k, a->Tk * a->dv));
    t->ob = dn_mul(k, bh, dn_i64(k, a->Tq * a->dv));
    t->lb = dn_mul(k, bh, dn_i64(k, a->Tq));
    t->boff = dn_i64(k, 0);
    if (!a->bias) return;
    LLVMValueRef rem = bh;
    for (int i = a->nlead - 1; i >= 0; i--) {
        LLVMValueRef idx = rem;
        if (i > 0) {
            idx = LLVMBuildSRem(k->L->b, rem, dn_i64(k, a->lead_dim[i]), "");
            rem = LLVMBuildSDiv(k->L->b, rem, dn_i64(k, a->lead_dim[i]), "");
        }
        if (a->b_lead[i]) t->boff = dn_add(k, t->boff, dn_mul(k, idx, dn_i64(k, a->b_lead[i])));
    }
}

/* buf[c * Bk + jj] = x[base + (j0 + jj) * w + c] for jj < kn, 0 for kn <= jj < Bk (c < w). */
static void pack_t(Attn *t, LLVMValueRef x, LLVMValueRef base, int64_t w, LLVMValueRef buf, LLVMValueRef j0,
                   LLVMValueRef kn)
{
    DnKernel *k = t->k;
    LLVMValueRef bk = dn_i64(k, t->t.bk);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), kn, "jj");
    LLVMValueRef row = dn_add(k, base, dn_mul(k, dn_add(k, j0, lj.i), dn_i64(k, w)));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, w), "c");
    dn_store_f32(k, buf, dn_add(k, dn_mul(k, lc.i, bk), lj.i), dn_load_f32(k, x, dn_add(k, row, lc.i)));
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lj);
    DnLoop lz = dn_loop_begin(k, kn, bk, "jz");
    DnLoop lc2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, w), "c");
    dn_store_f32(k, buf, dn_add(k, dn_mul(k, lc2.i, bk), lz.i), dn_f32(k, 0));
    dn_loop_end(k, &lc2);
    dn_loop_end(k, &lz);
}

/* c[c_off + r * ldc + n] (+)= sum over kk < kdim of A(r, kk) b[b_off + kk * ldb + n] for
 * r < rows, n < N, with A(r, kk) = a[a0 + r * a_sm + kk * a_sk]; a NULL c_off is 0. */
static void gemm(Attn *t, LLVMValueRef a, LLVMValueRef a0, int64_t a_sm, int64_t a_sk, LLVMValueRef kdim,
                 LLVMValueRef b, LLVMValueRef b_off, int64_t ldb, LLVMValueRef c, LLVMValueRef c_off, int64_t ldc,
                 bool acc, LLVMValueRef rows, int64_t N)
{
    DnKernel *k = t->k;
    DnGemm g = {.a = a,
                .b = b,
                .c = c,
                .a_row0 = a0,
                .a_sm = a_sm,
                .K1 = kdim,
                .K2 = 1,
                .a_s1 = a_sk,
                .b_off = b_off,
                .ldb = ldb,
                .c_off = c_off ? c_off : dn_i64(k, 0),
                .c_sm = ldc,
                .c_sn = 1,
                .load_c = acc};
    dn_gemm_range(k, &g, dn_i64(k, 0), rows, N);
}

/* S = Q[i0 .. i0 + qn) Kᵀ (the packed key tile). */
static void scores(Attn *t, LLVMValueRef i0, LLVMValueRef qn)
{
    DnKernel *k = t->k;
    LLVMValueRef a0 = dn_add(k, t->qb, dn_mul(k, i0, dn_i64(k, t->a.d)));
    gemm(t, t->q, a0, t->a.d, 1, dn_i64(k, t->a.d), t->kt_buf, dn_i64(k, 0), t->t.bk, t->s, NULL, t->t.bk, false, qn,
         t->t.bk);
}

/* The logit of row i (query) and tile column jj (key j0 + jj): scale * S + bias,
 * or -inf for a padding or masked key. */
static LLVMValueRef logit(Attn *t, LLVMValueRef r, LLVMValueRef i, LLVMValueRef jj, LLVMValueRef j0, LLVMValueRef kn)
{
    DnKernel *k = t->k;
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef at = dn_add(k, dn_mul(k, r, dn_i64(k, t->t.bk)), jj);
    LLVMValueRef s = dn_fmul(k, dn_load_f32(k, t->s, at), dn_f32(k, t->a.scale));
    LLVMValueRef j = dn_add(k, j0, jj);
    if (t->a.bias) {
        LLVMValueRef jc = dn_imin(k, j, dn_i64(k, t->a.Tk - 1)); /* a padding column reads a real one */
        LLVMValueRef bo =
            dn_add(k, t->boff, dn_add(k, dn_mul(k, i, dn_i64(k, t->a.b_si)), dn_mul(k, jc, dn_i64(k, t->a.b_sj))));
        s = dn_fadd(k, s, dn_load_f32(k, t->bias, bo));
    }
    LLVMValueRef ok = LLVMBuildICmp(b, LLVMIntSLT, jj, kn, "");
    if (t->a.causal) ok = LLVMBuildAnd(b, ok, LLVMBuildICmp(b, LLVMIntSLE, j, i, ""), "");
    return LLVMBuildSelect(b, ok, s, dn_f32(k, -INFINITY), "");
}

/* The key tiles query rows [i0, i0 + qn) attend to: all, or with causal up
 * to the one holding key i0 + qn - 1. */
static LLVMValueRef key_tiles(Attn *t, LLVMValueRef i0, LLVMValueRef qn)
{
    DnKernel *k = t->k;
    if (!t->a.causal) return dn_i64(k, t->t.nkt);
    LLVMValueRef end = dn_imin(k, dn_add(k, i0, qn), dn_i64(k, t->a.Tk));
    return LLVMBuildSDiv(k->L->b, dn_add(k, end, dn_i64(k, t->t.bk - 1)), dn_i64(k, t->t.bk), "");
}

/* Tile 'ti' of 'count' rows of extent 'len': its start and its row count. */
static void tile_span(DnKernel *k, LLVMValueRef ti, int64_t count, int64_t len, LLVMValueRef *start, LLVMValueRef *n)
{
    *start = dn_mul(k, ti, dn_i64(k, count));
    *n = dn_imin(k, dn_i64(k, count), LLVMBuildSub(k->L->b, dn_i64(k, len), *start, ""));
}

/* ---- forward ------------------------------------------------------------------ */

/* One row r of the online softmax for the current key tile. */
static void online_row(Attn *t, LLVMValueRef r, LLVMValueRef i, LLVMValueRef j0, LLVMValueRef kn, LLVMValueRef O,
                       LLVMValueRef m, LLVMValueRef l)
{
    DnKernel *k = t->k;
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef row = dn_mul(k, r, dn_i64(k, t->t.bk));
    LLVMValueRef mold = dn_load_f32(k, m, r);
    LLVMValueRef mx = dn_var(k, k->L->f32, mold, "mx");
    DnLoop l1 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t->t.bk), "jj");
    LLVMValueRef s = logit(t, r, i, l1.i, j0, kn);
    dn_store_f32(k, t->s, dn_add(k, row, l1.i), s);
    dn_set(k, mx, dn_fmax(k, dn_get(k, mx, k->L->f32), s));
    dn_loop_end(k, &l1);
    LLVMValueRef mnew = dn_get(k, mx, k->L->f32);
    LLVMValueRef none = LLVMBuildFCmp(b, LLVMRealOEQ, mnew, dn_f32(k, -INFINITY), "");
    LLVMValueRef msafe = LLVMBuildSelect(b, none, dn_f32(k, 0), mnew, "");
    LLVMValueRef alpha = dn_call_f32(k, "llvm.exp.f32", fsub(k, mold, msafe));
    LLVMValueRef sum = dn_var(k, k->L->f32, dn_f32(k, 0), "sum");
    DnLoop l2 = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t->t.bk), "jj");
    LLVMValueRef at = dn_add(k, row, l2.i);
    LLVMValueRef p = dn_call_f32(k, "llvm.exp.f32", fsub(k, dn_load_f32(k, t->s, at), msafe));
    dn_store_f32(k, t->s, at, p);
    dn_set(k, sum, dn_fadd(k, dn_get(k, sum, k->L->f32), p));
    dn_loop_end(k, &l2);
    dn_store_f32(k, l, r, dn_fadd(k, dn_fmul(k, dn_load_f32(k, l, r), alpha), dn_get(k, sum, k->L->f32)));
    dn_store_f32(k, m, r, mnew);
    LLVMValueRef orow = dn_mul(k, r, dn_i64(k, t->a.dv));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t->a.dv), "c");
    LLVMValueRef oa = dn_add(k, orow, lc.i);
    dn_store_f32(k, O, oa, dn_fmul(k, dn_load_f32(k, O, oa), alpha));
    dn_loop_end(k, &lc);
}

static void attn_init(Attn *t, DnKernel *k)
{
    t->k = k;
    t->a = dn_attention_geom(k->op);
    t->t = tiles_of(k->op, &t->a);
    t->q = k->in[0], t->kk = k->in[1], t->v = k->in[2];
}

static void set_parallel(DnKernel *k, const Attn *t, int64_t per_head)
{
    k->par_n = t->a.has_n ? t->a.lead * per_head : 0;
    k->par_b = t->a.has_n ? 0 : t->a.lead * per_head;
}

void dn_kernel_flash_attention(DnKernel *k)
{
    Attn t;
    attn_init(&t, k);
    t.bias = t.a.bias ? k->in[3] : NULL;
    const DnAttnGeom *a = &t.a;
    int64_t n[8];
    fwd_arrays(a, &t.t, n);
    t.kt_buf = dn_ws_slice_f32(k, n[0], "kt");
    t.s = dn_ws_slice_f32(k, n[1], "s");
    LLVMValueRef O = dn_ws_slice_f32(k, n[2], "o"), m = dn_ws_slice_f32(k, n[3], "m");
    LLVMValueRef l = dn_ws_slice_f32(k, n[4], "l");
    set_parallel(k, &t, t.t.nqt);
    LLVMBuilderRef b = k->L->b;
    DnLoop it = dn_loop_begin(k, k->begin, k->end, "it");
    set_head(&t, LLVMBuildSDiv(b, it.i, dn_i64(k, t.t.nqt), "bh"));
    LLVMValueRef i0, qn;
    tile_span(k, LLVMBuildSRem(b, it.i, dn_i64(k, t.t.nqt), "qt"), t.t.bq, a->Tq, &i0, &qn);
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t.t.bq), "r");
    dn_store_f32(k, m, lr.i, dn_f32(k, -INFINITY));
    dn_store_f32(k, l, lr.i, dn_f32(k, 0));
    dn_loop_end(k, &lr);
    dn_zero_f32(k, O, dn_i64(k, 0), n[2]);

    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), key_tiles(&t, i0, qn), "kt");
    LLVMValueRef j0, kn;
    tile_span(k, lt.i, t.t.bk, a->Tk, &j0, &kn);
    pack_t(&t, t.kk, t.kb, a->d, t.kt_buf, j0, kn);
    scores(&t, i0, qn);
    DnLoop lr2 = dn_loop_begin(k, dn_i64(k, 0), qn, "r");
    online_row(&t, lr2.i, dn_add(k, i0, lr2.i), j0, kn, O, m, l);
    dn_loop_end(k, &lr2);
    gemm(&t, t.s, dn_i64(k, 0), t.t.bk, 1, kn, t.v, dn_add(k, t.vb, dn_mul(k, j0, dn_i64(k, a->dv))), a->dv, O, NULL,
         a->dv, true, qn, a->dv);
    dn_loop_end(k, &lt);

    DnLoop lf = dn_loop_begin(k, dn_i64(k, 0), qn, "r");
    LLVMValueRef li = dn_load_f32(k, l, lf.i), inv = LLVMBuildFDiv(b, dn_f32(k, 1), li, "");
    LLVMValueRef i = dn_add(k, i0, lf.i);
    dn_store_f32(k, k->out[1], dn_add(k, t.lb, i),
                 dn_fadd(k, dn_load_f32(k, m, lf.i), dn_call_f32(k, "llvm.log.f32", li)));
    LLVMValueRef orow = dn_add(k, t.ob, dn_mul(k, i, dn_i64(k, a->dv)));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, a->dv), "c");
    LLVMValueRef acc = dn_load_f32(k, O, dn_add(k, dn_mul(k, lf.i, dn_i64(k, a->dv)), lc.i));
    dn_store_f32(k, k->out[0], dn_add(k, orow, lc.i), dn_fmul(k, acc, inv));
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lf);
    dn_loop_end(k, &it);
}

/* ---- backward ----------------------------------------------------------------- */

/* D[r] = do[i] · o[i] for the rows of the query tile. */
static void row_dots(Attn *t, LLVMValueRef i0, LLVMValueRef qn, LLVMValueRef D)
{
    DnKernel *k = t->k;
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), qn, "r");
    LLVMValueRef base = dn_add(k, t->ob, dn_mul(k, dn_add(k, i0, lr.i), dn_i64(k, t->a.dv)));
    LLVMValueRef sum = dn_var(k, k->L->f32, dn_f32(k, 0), "dot");
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t->a.dv), "c");
    LLVMValueRef at = dn_add(k, base, lc.i);
    dn_set(k, sum, dn_fma(k, dn_load_f32(k, k->in[5], at), dn_load_f32(k, k->in[3], at), dn_get(k, sum, k->L->f32)));
    dn_loop_end(k, &lc);
    dn_store_f32(k, D, lr.i, dn_get(k, sum, k->L->f32));
    dn_loop_end(k, &lr);
}

/* With S and the packed Kᵀ, Vᵀ of key tile j0: P = exp(logit - lse) into S,
 * then dS = P ∘ (dO Vᵀ - D) · scale into dp (the scale of both dQ = dS K and
 * dK = dSᵀ Q). */
static void probs_and_ds(Attn *t, LLVMValueRef i0, LLVMValueRef qn, LLVMValueRef j0, LLVMValueRef kn, LLVMValueRef D)
{
    DnKernel *k = t->k;
    LLVMValueRef bk = dn_i64(k, t->t.bk);
    scores(t, i0, qn);
    LLVMValueRef a0 = dn_add(k, t->ob, dn_mul(k, i0, dn_i64(k, t->a.dv)));
    gemm(t, k->in[5], a0, t->a.dv, 1, dn_i64(k, t->a.dv), t->vt_buf, dn_i64(k, 0), t->t.bk, t->dp, NULL, t->t.bk, false,
         qn, t->t.bk);
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), qn, "r");
    LLVMValueRef i = dn_add(k, i0, lr.i), lse = dn_load_f32(k, k->in[4], dn_add(k, t->lb, i));
    LLVMValueRef Dr = dn_load_f32(k, D, lr.i);
    DnLoop lj = dn_loop_begin(k, dn_i64(k, 0), bk, "jj");
    LLVMValueRef at = dn_add(k, dn_mul(k, lr.i, bk), lj.i);
    LLVMValueRef p = dn_call_f32(k, "llvm.exp.f32", fsub(k, logit(t, lr.i, i, lj.i, j0, kn), lse));
    dn_store_f32(k, t->s, at, p);
    LLVMValueRef ds = dn_fmul(k, p, fsub(k, dn_load_f32(k, t->dp, at), Dr));
    dn_store_f32(k, t->dp, at, dn_fmul(k, ds, dn_f32(k, t->a.scale)));
    dn_loop_end(k, &lj);
    dn_loop_end(k, &lr);
}

/* out[base + (r0 + r) * w + c] = buf[r * w + c] for r < rows, c < w. */
static void store_rows(Attn *t, LLVMValueRef out, LLVMValueRef base, LLVMValueRef r0, LLVMValueRef rows, int64_t w,
                       LLVMValueRef buf)
{
    DnKernel *k = t->k;
    DnLoop lr = dn_loop_begin(k, dn_i64(k, 0), rows, "r");
    LLVMValueRef o = dn_add(k, base, dn_mul(k, dn_add(k, r0, lr.i), dn_i64(k, w)));
    LLVMValueRef s = dn_mul(k, lr.i, dn_i64(k, w));
    DnLoop lc = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, w), "c");
    dn_store_f32(k, out, dn_add(k, o, lc.i), dn_load_f32(k, buf, dn_add(k, s, lc.i)));
    dn_loop_end(k, &lc);
    dn_loop_end(k, &lr);
}

/* dK and dV of key tile kt; with_dq also adds each dS K into the head's dq. */
static void key_tile_iteration(Attn *t, LLVMValueRef kt, LLVMValueRef dK, LLVMValueRef dV, LLVMValueRef D, bool with_dq)
{
    DnKernel *k = t->k;
    const DnAttnGeom *a = &t->a;
    LLVMValueRef j0, kn;
    tile_span(k, kt, t->t.bk, a->Tk, &j0, &kn);
    pack_t(t, t->kk, t->kb, a->d, t->kt_buf, j0, kn);
    pack_t(t, t->v, t->vb, a->dv, t->vt_buf, j0, kn);
    dn_zero_f32(k, dK, dn_i64(k, 0), t->t.bk * a->d);
    dn_zero_f32(k, dV, dn_i64(k, 0), t->t.bk * a->dv);
    LLVMValueRef first = a->causal ? LLVMBuildSDiv(k->L->b, j0, dn_i64(k, t->t.bq), "") : dn_i64(k, 0);
    DnLoop lq = dn_loop_begin(k, first, dn_i64(k, t->t.nqt), "qt");
    LLVMValueRef i0, qn;
    tile_span(k, lq.i, t->t.bq, a->Tq, &i0, &qn);
    row_dots(t, i0, qn, D);
    probs_and_ds(t, i0, qn, j0, kn, D);
    /* dV += Pᵀ dO, dK += dSᵀ Q (A read transposed: A(j, i) = P[i * Bk + j]) */
    LLVMValueRef zero = dn_i64(k, 0);
    gemm(t, t->s, zero, 1, t->t.bk, qn, k->in[5], dn_add(k, t->ob, dn_mul(k, i0, dn_i64(k, a->dv))), a->dv, dV, NULL,
         a->dv, true, kn, a->dv);
    gemm(t, t->dp, zero, 1, t->t.bk, qn, t->q, dn_add(k, t->qb, dn_mul(k, i0, dn_i64(k, a->d))), a->d, dK, NULL, a->d,
         true, kn, a->d);
    if (with_dq)
        gemm(t, t->dp, zero, t->t.bk, 1, kn, t->kk, dn_add(k, t->kb, dn_mul(k, j0, dn_i64(k, a->d))), a->d, k->out[0],
             dn_add(k, t->qb, dn_mul(k, i0, dn_i64(k, a->d))), a->d, true, qn, a->d);
    dn_loop_end(k, &lq);
    store_rows(t, k->out[1], t->kb, j0, kn, a->d, dK);
    store_rows(t, k->out[2], t->vb, j0, kn, a->dv, dV);
}

static void query_tile_iteration(Attn *t, LLVMValueRef qt, LLVMValueRef dQ, LLVMValueRef D)
{
    DnKernel *k = t->k;
    const DnAttnGeom *a = &t->a;
    LLVMValueRef i0, qn;
    tile_span(k, qt, t->t.bq, a->Tq, &i0, &qn);
    row_dots(t, i0, qn, D);
    dn_zero_f32(k, dQ, dn_i64(k, 0), t->t.bq * a->d);
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), key_tiles(t, i0, qn), "kt");
    LLVMValueRef j0, kn;
    tile_span(k, lt.i, t->t.bk, a->Tk, &j0, &kn);
    pack_t(t, t->kk, t->kb, a->d, t->kt_buf, j0, kn);
    pack_t(t, t->v, t->vb, a->dv, t->vt_buf, j0, kn);
    probs_and_ds(t, i0, qn, j0, kn, D);
    gemm(t, t->dp, dn_i64(k, 0), t->t.bk, 1, kn, t->kk, dn_add(k, t->kb, dn_mul(k, j0, dn_i64(k, a->d))), a->d, dQ,
         NULL, a->d, true, qn, a->d);
    dn_loop_end(k, &lt);
    store_rows(t, k->out[0], t->qb, i0, qn, a->d, dQ);
}

/* With at least two heads per item, one iteration per head walks its key
 * tiles and adds dS K into dq as it goes: 5 products per tile pair instead
 * of the split's 7 (S and dO Vᵀ are not recomputed for dQ), with both
 * cores still busy at batch 1. */
static void bwd_per_head(Attn *t, LLVMValueRef acc, LLVMValueRef dV, LLVMValueRef D)
{
    DnKernel *k = t->k;
    set_parallel(k, t, 1);
    DnLoop it = dn_loop_begin(k, k->begin, k->end, "bh");
    set_head(t, it.i);
    dn_zero_f32(k, k->out[0], t->qb, t->a.Tq * t->a.d);
    DnLoop lt = dn_loop_begin(k, dn_i64(k, 0), dn_i64(k, t->t.nkt), "kt");
    key_tile_iteration(t, lt.i, acc, dV, D, true);
    dn_loop_end(k, &lt);
    dn_loop_end(k, &it);
}

/* One parallel loop over (head, key tile) then (head, query tile). */
static void bwd_split(Attn *t, LLVMValueRef acc, LLVMValueRef dV, LLVMValueRef D)
{
    DnKernel *k = t->k;
    set_parallel(k, t, t->t.nkt + t->t.nqt);
    LLVMBuilderRef b = k->L->b;
    LLVMValueRef heads = t->a.has_n ? dn_mul(k, k->n, dn_i64(k, t->a.lead)) : dn_i64(k, t->a.lead);
    LLVMValueRef nkv = dn_mul(k, heads, dn_i64(k, t->t.nkt));
    DnLoop it = dn_loop_begin(k, k->begin, k->end, "it");
    LLVMValueRef is_kv = LLVMBuildICmp(b, LLVMIntSLT, it.i, nkv, "");
    LLVMBasicBlockRef after = dn_if_begin(k, is_kv);
    set_head(t, LLVMBuildSDiv(b, it.i, dn_i64(k, t->t.nkt), "bh"));
    key_tile_iteration(t, LLVMBuildSRem(b, it.i, dn_i64(k, t->t.nkt), "kt"), acc, dV, D, false);
    dn_if_end(k, after);
    after = dn_if_begin(k, LLVMBuildNot(b, is_kv, ""));
    LLVMValueRef iq = LLVMBuildSub(b, it.i, nkv, "");
    set_head(t, LLVMBuildSDiv(b, iq, dn_i64(k, t->t.nqt), "bh"));
    query_tile_iteration(t, LLVMBuildSRem(b, iq, dn_i64(k, t->t.nqt), "qt"), acc, D);
    dn_if_end(k, after);
    dn_loop_end(k, &it);
}

void dn_kernel_flash_attention_bwd(DnKernel *k)
{
    Attn t;
    attn_init(&t, k);
    t.bias = t.a.bias ? k->in[6] : NULL;
    int64_t n[8];
    bwd_arrays(&t.a, &t.t, n);
    t.kt_buf = dn_ws_slice_f32(k, n[0], "kt");
    t.vt_buf = dn_ws_slice_f32(k, n[1], "vt");
    t.s = dn_ws_slice_f32(k, n[2], "p");
    t.dp = dn_ws_slice_f32(k, n[3], "ds");
    LLVMValueRef acc = dn_ws_slice_f32(k, n[4], "dkq"), dV = dn_ws_slice_f32(k, n[5], "dv");
    LLVMValueRef D = dn_ws_slice_f32(k, n[6], "d");
    if (t.a.lead >= 2)
        bwd_per_head(&t, acc, dV, D);
    else
        bwd_split(&t, acc, dV, D);
}

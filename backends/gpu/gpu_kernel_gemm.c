/* gpu_kernel_gemm.c -- the tiled GEMM generator (contract: gpu_gemm.h) and
 * the two ops that are plain matrix products on it:
 *   dense   y[r, o] = act(b[o] + sum_i x[r, i] w[o, i]), r over every
 *           leading axis (N included): A = x rows, B = wᵀ, C = y;
 *   matmul  y = op(a) @ op(b) over the last two axes, leading axes batched
 *           (b shared when 2-d: then the batch folds into M when a is not
 *           transposed), M or K may be N (dense's gradients).
 * Both with split-K partial sums (in the op's workspace) when the result
 * is small and K deep, as for dense's weight gradient at large batches.
 */
#include <stdio.h>
#include <stdlib.h>

#include "gpu_gemm.h"

enum { TK = 16, WG = 256, TARGET_GROUPS = 256, MAX_SPLITS = 64, MIN_SPLIT_K = 512 };
#define SPLIT_BUDGET_BYTES ((int64_t)64 << 20) /* workspace for partial sums, at most */

const char *dn_gk_lin(DnGpuGen *G, int64_t a, int64_t b)
{
    char buf[64];
    if (a == 0)
        snprintf(buf, sizeof buf, "%lld", (long long)b);
    else if (b == 0)
        snprintf(buf, sizeof buf, "(n * %lld)", (long long)a);
    else
        snprintf(buf, sizeof buf, "(n * %lld + %lld)", (long long)a, (long long)b);
    size_t len = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, len), buf, len);
}

static int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* The register block RM x RN of one item (tile 16 RM x 16 RN): 4 x 4, or
 * narrower along an axis the product barely has. */
static void tile_of(const DnGkGemm *g, int *rm, int *rn)
{
    bool small_m = g->m_n == 0 && g->m_b <= 16, small_c = g->cols <= 16;
    if (small_m && small_c)
        *rm = 1, *rn = 1;
    else if (small_c)
        *rm = 8, *rn = 1;
    else if (small_m)
        *rm = 1, *rn = 8;
    else
        *rm = 4, *rn = g->cols <= 32 ? 2 : 4;
}

void dn_gk_gemm_plan(DnGkGemm *g)
{
    g->splits = 1;
    if (g->m_n || g->batch_n) return; /* the batch already gives parallelism */
    int rm, rn;
    tile_of(g, &rm, &rn);
    int64_t tiles = cdiv(g->m_b, 16 * rm) * cdiv(g->cols, 16 * rn) * g->batch_b;
    int64_t kest = g->k_b + 32 * g->k_n; /* K at a typical batch */
    int64_t s = cdiv(TARGET_GROUPS, tiles);
    if (s > kest / MIN_SPLIT_K) s = kest / MIN_SPLIT_K;
    if (s > MAX_SPLITS) s = MAX_SPLITS;
    int64_t out = g->m_b * g->cols * g->batch_b * 4;
    if (s > SPLIT_BUDGET_BYTES / out) s = SPLIT_BUDGET_BYTES / out;
    g->splits = s > 1 ? (int)s : 1;
}

int64_t dn_gk_gemm_ws_bytes(const DnGkGemm *g)
{
    return g->splits > 1 ? (int64_t)g->splits * g->batch_b * g->m_b * g->cols * 4 : 0;
}

/* Indents the body lines written since 'start' by 'depth' more levels
 * (the readability of the kernel text). */
static void reindent(DnGpuGen *G, size_t start, int depth)
{
    size_t len = G->body.len - start;
    char *lines = malloc(len + 1);
    DN_ASSERT(lines);
    memcpy(lines, G->body.s + start, len);
    lines[len] = 0;
    G->body.len = start;
    for (char *l = lines; *l;) {
        char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) + 1 : strlen(l);
        dn_text_printf(&G->body, "%*s", 4 * depth, "");
        dn_text_append(&G->body, l, n);
        l += n;
    }
    free(lines);
}

/* Runs an op's callback, its lines indented by 'depth' more levels. */
static void nested(DnGpuGen *G, const DnGkGemm *g, DnGkGemmFn fn, int depth)
{
    size_t start = G->body.len;
    fn(G, g);
    reindent(G, start, depth);
}

/* Stages one operand's tile: 'cnt' elements per item (TM x TK for A,
 * TK x TN for B), consecutive items along the operand's fast axis. */
static void stage(DnGpuGen *G, const DnGkGemm *g, bool is_a, int width, int cnt)
{
    bool wide_fast = is_a ? g->a_m_fast : g->b_j_fast; /* the non-K axis is the fast one */
    const char *idx = is_a ? "gm" : "gj", *base = is_a ? "m0" : "j0", *lim = is_a ? "M" : "COLS";
    dn_gk_line(G, "for (int r = 0; r < %d; r++) {", cnt);
    dn_gk_line(G, "    int e = (int)LOCAL_ID + %d * r;", WG);
    if (wide_fast)
        dn_gk_line(G, "    int ww = e %% %d, kk = e / %d;", width, width);
    else
        dn_gk_line(G, "    int kk = e %% %d, ww = e / %d;", TK, TK);
    dn_gk_line(G, "    i64 %s = %s + ww, gk = k0 + kk;", idx, base);
    dn_gk_line(G, "    float v = 0.0f;");
    dn_gk_line(G, "    if (%s < %s && gk < ke) {", idx, lim);
    nested(G, g, is_a ? g->load_a : g->load_b, 2);
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    %s[kk * %d + ww] = DN_ROUND_IN(v);", is_a ? "As" : "Bs", width + 1); /* --precision */
    dn_gk_line(G, "}");
}

/* The tiled product; with split-K it writes partial tiles to ws. */
static void gemm_kernel(DnGpuGen *G, const DnGkGemm *g, int rm, int rn)
{
    int tm = 16 * rm, tn = 16 * rn, S = g->splits;
    int64_t tiles_n = cdiv(g->cols, tn);
    /* launched M tiles: ceil(M / tm) <= ceil(m_n / tm) n + ceil(m_b / tm) */
    int64_t lt_n = cdiv(g->m_n, tm), lt_b = cdiv(g->m_b, tm);
    bool c_m_fast = g->c_m_fast && S == 1; /* partial sums are stored along j */
    dn_gk_begin(G, S > 1 ? "part" : "");
    g->params_in(G, g);
    if (S == 1) g->params_out(G, g);
    if (S > 1) dn_gk_ws(G, "float", "ws");
    dn_gk_line(G, "LOCAL float As[%d];", TK * (tm + 1));
    dn_gk_line(G, "LOCAL float Bs[%d];", TK * (tn + 1));
    dn_gk_line(G, "const i64 M = %s, K = %s, COLS = %lld;", dn_gk_lin(G, g->m_n, g->m_b),
               g->k_seq ? "steps" : dn_gk_lin(G, g->k_n, g->k_b), (long long)g->cols);
    dn_gk_line(G, "i64 gid = GROUP_ID, tiles_m = %s;", dn_gk_lin(G, lt_n, lt_b));
    dn_gk_line(G, "i64 m0 = (gid %% tiles_m) * %d;", tm);
    dn_gk_line(G, "gid /= tiles_m;");
    dn_gk_line(G, "i64 j0 = (gid %% %lld) * %d;", (long long)tiles_n, tn);
    dn_gk_line(G, "gid /= %lld;", (long long)tiles_n);
    if (S > 1) {
        dn_gk_line(G, "i64 split = gid %% %d;", S);
        dn_gk_line(G, "gid /= %d;", S);
    }
    dn_gk_line(G, "i64 bz = gid;");
    dn_gk_line(G, "if (m0 >= M) return; /* the whole group: launched M tiles over-count */");
    if (g->prologue) g->prologue(G, g);
    if (S > 1) { /* chunks of whole K-steps, in order */
        dn_gk_line(G, "i64 kc = ((K + %d) / %d + %d) / %d * %d;", S - 1, S, TK - 1, TK, TK);
        dn_gk_line(G, "i64 kb = split * kc, ke = kb + kc < K ? kb + kc : K;");
    } else {
        dn_gk_line(G, "i64 kb = 0, ke = K;");
    }
    dn_gk_line(G, "int tx = (int)LOCAL_ID %% 16, ty = (int)LOCAL_ID / 16;");
    dn_gk_line(G, "int mi = %s, nj = %s;", c_m_fast ? "tx" : "ty", c_m_fast ? "ty" : "tx");
    dn_gk_line(G, "float acc[%d];", rm * rn);
    dn_gk_line(G, "for (int i = 0; i < %d; i++) acc[i] = 0.0f;", rm * rn);
    dn_gk_line(G, "for (i64 k0 = kb; k0 < ke; k0 += %d) {", TK);
    size_t loop = G->body.len;
    stage(G, g, true, tm, rm);
    stage(G, g, false, tn, rn);
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "for (int kk = 0; kk < %d; kk++) {", TK);
    dn_gk_line(G, "    float a[%d], b[%d];", rm, rn);
    dn_gk_line(G, "    for (int i = 0; i < %d; i++) a[i] = As[kk * %d + mi + 16 * i];", rm, tm + 1);
    dn_gk_line(G, "    for (int j = 0; j < %d; j++) b[j] = Bs[kk * %d + nj + 16 * j];", rn, tn + 1);
    dn_gk_line(G, "    for (int i = 0; i < %d; i++)", rm);
    dn_gk_line(G, "        for (int j = 0; j < %d; j++) acc[i * %d + j] += a[i] * b[j];", rn, rn);
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
    reindent(G, loop, 1);
    dn_gk_line(G, "}");
    dn_gk_line(G, "for (int i = 0; i < %d; i++)", rm);
    dn_gk_line(G, "    for (int j = 0; j < %d; j++) {", rn);
    size_t epi = G->body.len;
    dn_gk_line(G, "i64 gm = m0 + mi + 16 * i, gj = j0 + nj + 16 * j;");
    dn_gk_line(G, "if (gm >= M || gj >= COLS) continue;");
    dn_gk_line(G, "float v = acc[i * %d + j];", rn);
    if (S > 1) {
        dn_gk_line(G, "ws[((split * %lld + bz) * M + gm) * COLS + gj] = v;", (long long)g->batch_b);
    } else {
        dn_gk_line(G, "{");
        nested(G, g, g->store, 1);
        dn_gk_line(G, "}");
    }
    reindent(G, epi, 2);
    dn_gk_line(G, "    }");
    int64_t groups_n = (lt_n * (g->batch_b) + g->batch_n * lt_b) * tiles_n * S;
    int64_t groups_b = lt_b * g->batch_b * tiles_n * S;
    DN_ASSERT(!(lt_n && g->batch_n));
    dn_gk_end(G, groups_n * WG, groups_b * WG, WG);
}

/* Split-K, second pass: C = the chunks' sum in order, through 'store'. */
static void reduce_kernel(DnGpuGen *G, const DnGkGemm *g)
{
    int64_t total = g->batch_b * g->m_b * g->cols;
    dn_gk_begin(G, "sum");
    dn_gk_ws(G, "float", "ws");
    g->params_out(G, g);
    dn_gk_line(G, "i64 e = GLOBAL_ID;");
    dn_gk_line(G, "if (e >= %lld) return;", (long long)total);
    dn_gk_line(G, "float v = 0.0f;");
    dn_gk_line(G, "for (int s = 0; s < %d; s++) v += ws[s * %lld + e];", g->splits, (long long)total);
    dn_gk_line(G, "i64 gj = e %% %lld, gm = e / %lld %% %lld, bz = e / %lld;", (long long)g->cols, (long long)g->cols,
               (long long)g->m_b, (long long)(g->m_b * g->cols));
    if (g->prologue) g->prologue(G, g);
    dn_gk_line(G, "{");
    nested(G, g, g->store, 1);
    dn_gk_line(G, "}");
    dn_gk_end(G, 0, total, WG);
}

void dn_gk_gemm(DnGpuGen *G, const DnGkGemm *g)
{
    int rm, rn;
    tile_of(g, &rm, &rn);
    gemm_kernel(G, g, rm, rn);
    if (g->splits > 1) reduce_kernel(G, g);
}

/* ---- dense ------------------------------------------------------------------ */

typedef struct Dense {
    int64_t in, out;
    bool bias, relu;
} Dense;

static Dense dense_of(const DnOp *op)
{
    const DnValue *w = op->in[1];
    return (Dense){.in = w->shape.dim[1],
                   .out = w->shape.dim[0],
                   .bias = op->nin > 2,
                   .relu = !strcmp(dn_op_str(op, "act"), "relu")};
}

static void dense_params_in(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "w");
}

static void dense_params_out(DnGpuGen *G, const DnGkGemm *g)
{
    if (((const Dense *)g->ctx)->bias) dn_gk_ptr(G, 2, "float", "bias");
    dn_gk_ptr(G, G->op->nin, "float", "y");
}

static void dense_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    dn_gk_line(G, "v = x[gm * %lld + gk];", (long long)((const Dense *)g->ctx)->in);
}

static void dense_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    dn_gk_line(G, "v = w[gj * %lld + gk];", (long long)((const Dense *)g->ctx)->in);
}

static void dense_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Dense *d = g->ctx;
    if (d->bias) dn_gk_line(G, "v += bias[gj];");
    if (d->relu) dn_gk_line(G, "v = v < 0.0f ? 0.0f : v;"); /* NaN stays NaN, as on the CPU */
    dn_gk_line(G, "y[gm * %lld + gj] = v;", (long long)d->out);
}

static DnGkGemm dense_gemm(const DnOp *op, const Dense *d)
{
    const DnValue *x = op->in[0];
    int64_t rows = dn_gk_numel(x) / d->in;
    bool has_n = dn_gk_has_n(x);
    DnGkGemm g = {.m_n = has_n ? rows : 0,
                  .m_b = has_n ? 0 : rows,
                  .k_b = d->in,
                  .cols = d->out,
                  .batch_b = 1,
                  .params_in = dense_params_in,
                  .params_out = dense_params_out,
                  .load_a = dense_load_a,
                  .load_b = dense_load_b,
                  .store = dense_store,
                  .ctx = d};
    dn_gk_gemm_plan(&g);
    return g;
}

/* dense_gemm of the op's own description. */
static DnGkGemm dense_planned(const DnOp *op, Dense *d)
{
    *d = dense_of(op);
    return dense_gemm(op, d);
}

DN_GK_GEMM_OP(dense, Dense, dense_planned)

/* ---- matmul ----------------------------------------------------------------- */

/* One product of op(a) [M, K] and op(b) [K, P] per batch index bz; a
 * dimension that is N has a_* = 1, b_* = 0 (M or K only: the shape rule
 * keeps N out of the result's other axes).  K may be the sequence axis T
 * (k_seq: a [N, T, M]ᵀ · b [N, T, P], a sum over t per batch item). */
typedef struct Matmul {
    int64_t m_n, m_b, k_n, k_b, p;
    bool k_seq;
    bool ta, tb, a_batched, b_batched; /* *_batched: the operand steps per bz */
} Matmul;

static void dim_lin(int64_t d, int64_t *a, int64_t *b)
{
    *a = d == DN_DIM_N ? 1 : 0;
    *b = d == DN_DIM_N ? 0 : d;
}

static DnGkGemm matmul_gemm(const DnOp *op, Matmul *mm)
{
    const DnValue *a = op->in[0], *b = op->in[1];
    int ra = a->shape.rank, rb = b->shape.rank;
    *mm = (Matmul){.ta = dn_op_int(op, "trans_a") != 0, .tb = dn_op_int(op, "trans_b") != 0};
    dim_lin(a->shape.dim[ra - 2 + mm->ta], &mm->m_n, &mm->m_b);
    dim_lin(a->shape.dim[ra - 1 - mm->ta], &mm->k_n, &mm->k_b);
    mm->k_seq = DN_DIM_IS_SEQ(a->shape.dim[ra - 1 - mm->ta]);
    if (mm->k_seq) mm->k_n = mm->k_b = 0;
    mm->p = b->shape.dim[rb - 1 - mm->tb];
    int64_t bn = 0, bb = 1; /* the batch: bn * n + bb */
    for (int i = 0; i < ra - 2; i++) {
        if (a->shape.dim[i] == DN_DIM_N)
            bn = bb, bb = 0;
        else
            bn *= a->shape.dim[i], bb *= a->shape.dim[i];
    }
    mm->a_batched = ra > 2;
    mm->b_batched = rb > 2;
    if (ra > 2 && rb == 2 && !mm->ta) { /* rows of every batch are consecutive: one product */
        mm->m_n = bn * mm->m_b, mm->m_b = bb * mm->m_b;
        bn = 0, bb = 1;
        mm->a_batched = false;
    }
    DnGkGemm g = {.m_n = mm->m_n,
                  .m_b = mm->m_b,
                  .k_n = mm->k_n,
                  .k_b = mm->k_b,
                  .k_seq = mm->k_seq,
                  .cols = mm->p,
                  .batch_n = bn,
                  .batch_b = bb,
                  .a_m_fast = mm->ta,
                  .b_j_fast = !mm->tb,
                  .ctx = mm};
    return g;
}

static void matmul_params_in(DnGpuGen *G, const DnGkGemm *g)
{
    dn_gk_ptr(G, 0, "float", "a");
    dn_gk_ptr(G, 1, "float", "b");
    if (g->k_seq) dn_gk_rt(G, "steps", DNRT_ARG_SEQ);
}

static void matmul_params_out(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 2, "float", "y");
}

/* a batched operand only occurs with M static and K static or t (rank > 2) */
static void matmul_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Matmul *mm = g->ctx;
    char base[64] = "";
    if (mm->a_batched) snprintf(base, sizeof base, "bz * M * K + ");
    if (mm->ta)
        dn_gk_line(G, "v = a[%sgk * M + gm];", base);
    else
        dn_gk_line(G, "v = a[%sgm * K + gk];", base);
}

static void matmul_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Matmul *mm = g->ctx;
    char base[64] = "";
    if (mm->b_batched) snprintf(base, sizeof base, "bz * K * %lld + ", (long long)mm->p);
    if (mm->tb)
        dn_gk_line(G, "v = b[%sgj * K + gk];", base);
    else
        dn_gk_line(G, "v = b[%sgk * %lld + gj];", base, (long long)mm->p);
}

static void matmul_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Matmul *mm = g->ctx;
    dn_gk_line(G, "y[(bz * %s + gm) * %lld + gj] = v;", dn_gk_lin(G, mm->m_n, mm->m_b), (long long)mm->p);
}

static DnGkGemm matmul_planned(const DnOp *op, Matmul *mm)
{
    DnGkGemm g = matmul_gemm(op, mm);
    g.params_in = matmul_params_in, g.params_out = matmul_params_out;
    g.load_a = matmul_load_a, g.load_b = matmul_load_b, g.store = matmul_store;
    dn_gk_gemm_plan(&g);
    return g;
}

DN_GK_GEMM_OP(matmul, Matmul, matmul_planned)

/* gpu_kernel_loss.c -- the losses and their gradients on the GPU:
 * cross_entropy (with label smoothing), cross_entropy_bwd, mse, mse_bwd
 * (ops.def; the CPU kernel kernel_loss.c is the reference: row statistics
 * in float, the batch mean accumulated in double).
 *
 * cross_entropy: the rows are every position of the logits but the last
 * axis ([N, K] or [N, T, K]).  Kernel 1 gives each row T adjacent items of
 * a 256-item group (T = K rounded up to a power of two, at most 256; W =
 * 256 / T rows per group); tree reductions in LOCAL memory make the row's
 * max, sum of exp and sum of logits, and the row's loss term and its kept
 * flag (label != ignore_index) go to the workspace; kernel 2 (one group)
 * sums terms and flags in double by a tree and writes their quotient.
 * cross_entropy_bwd: kernel 1 (one group) counts the kept rows, kernel 2
 * takes the same rows as above and every item writes its elements of
 * dlogits (0 in an ignored row).  mse: kernel 1 sums (pred - target)^2 in
 * double over chunks of 4096 elements, a group per chunk, into the
 * workspace; kernel 2 (one group) adds the chunks' sums in order.  mse_bwd
 * is pointwise.
 */
#include "gpu_internal.h"

#define GROUP    256
#define PER_ITEM 16
#define CHUNK    (GROUP * PER_ITEM)

/* ---- the rows of the logits ------------------------------------------------ */

typedef struct Rows {
    const DnValue *x; /* logits [N, ..., K]: rows are every position but the last axis */
    int64_t k;
    int64_t per;      /* rows per batch item (all rows without N) */
    int w, t;         /* rows and slices per group */
    const char *rows; /* "(n * per)" or the static row count */
} Rows;

static Rows rows_of(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0];
    Rows r = {.x = x, .k = x->shape.dim[x->shape.rank - 1], .t = 1};
    r.per = dn_gk_numel(x) / r.k;
    while (r.t < GROUP && r.t < r.k) r.t *= 2;
    r.w = GROUP / r.t;
    char buf[48]; /* the rows: n, n * per, or the static rows */
    if (!dn_gk_has_n(x))
        snprintf(buf, sizeof buf, "%lld", (long long)r.per);
    else if (r.per == 1)
        snprintf(buf, sizeof buf, "n");
    else
        snprintf(buf, sizeof buf, "(n * %lld)", (long long)r.per);
    r.rows = strcpy(dn_arena_alloc(&G->H->cx->arena, strlen(buf) + 1), buf);
    return r;
}

/* sl, row, live, base; then m (row max) and se (row sum of exp(x - m)),
 * and with 'sumx' sx (row sum of x), all reduced over the row's slices. */
static void row_stats(DnGpuGen *G, const Rows *r, bool sumx)
{
    dn_gk_line(G, "LOCAL float red[%d];", GROUP);
    dn_gk_line(G, "i64 sl = LOCAL_ID %% %d, row = GROUP_ID * %d + LOCAL_ID / %d;", r->t, r->w, r->t);
    dn_gk_line(G, "int live = row < %s;", r->rows);
    dn_gk_line(G, "i64 base = row * %lld;", (long long)r->k);
    dn_gk_line(G, "float m = -F32_INF;");
    dn_gk_line(G, "if (live) for (i64 j = sl; j < %lld; j += %d) m = fmaxf(m, x[base + j]);", (long long)r->k, r->t);
    dn_gk_tree_reduce(G, "red", "float", "m", "fmaxf(a, b)", "sl", r->t, 1);
    dn_gk_line(G, "float se = 0.0f, sx = 0.0f;");
    dn_gk_line(G, "if (live) for (i64 j = sl; j < %lld; j += %d) {", (long long)r->k, r->t);
    dn_gk_line(G, "    float v = x[base + j];");
    dn_gk_line(G, "    se += expf(v - m);");
    if (sumx) dn_gk_line(G, "    sx += v;");
    dn_gk_line(G, "}");
    dn_gk_tree_reduce(G, "red", "float", "se", "a + b", "sl", r->t, 1);
    if (sumx) dn_gk_tree_reduce(G, "red", "float", "sx", "a + b", "sl", r->t, 1);
}

static void end_rows(DnGpuGen *G, const Rows *r)
{
    /* ceil(rows / w) groups: rows * t items, rounded up by the launch */
    bool n = dn_gk_has_n(r->x);
    dn_gk_end(G, n ? r->per * r->t : 0, n ? 0 : r->per * r->t, GROUP);
}

/* One group: loss = (float)(the sum in double of the 'count' values (text)
 * of the workspace, of type 'ctype', / 'den' (text)), the sum a tree of
 * 256 strided partial sums: the same order at every run. */
static void mean_kernel(DnGpuGen *G, const char *ctype, const char *count, const char *den)
{
    dn_gk_begin(G, "mean");
    dn_gk_ws(G, ctype, "part");
    dn_gk_ptr(G, G->op->nin, "float", "loss");
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    dn_gk_line(G, "double s = 0.0;");
    dn_gk_line(G, "for (i64 i = LOCAL_ID; i < %s; i += %d) s += (double)part[i];", count, GROUP);
    dn_gk_tree_reduce(G, "red", "double", "s", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) loss[0] = (float)(s / (double)%s);", den);
    dn_gk_end(G, 0, GROUP, GROUP);
}

/* ---- cross_entropy ------------------------------------------------------------ */

bool dn_gpu_workspace_cross_entropy(const DnOp *op, DnWorkspaceReq *req)
{
    const DnValue *x = op->in[0]; /* per row: its float term, then (after all terms) its float kept flag */
    int64_t per = dn_gk_numel(x) / x->shape.dim[x->shape.rank - 1];
    if (dn_gk_has_n(x))
        req->bytes_n = 8 * per;
    else
        req->bytes_b = 8 * per;
    return true;
}

/* The dialect test that the i32 label 'lab' (an expression) is not
 * ignore_index: "1" when ignore_index is no i32 value. */
static const char *kept_test(DnGpuGen *G, const char *lab)
{
    int64_t ig = dn_op_int(G->op, "ignore_index");
    char buf[96];
    if (ig < INT32_MIN + 1 || ig > INT32_MAX)
        snprintf(buf, sizeof buf, "1");
    else
        snprintf(buf, sizeof buf, "(%s != %lld)", lab, (long long)ig);
    return strcpy(dn_arena_alloc(&G->H->cx->arena, strlen(buf) + 1), buf);
}

/* One group: loss = (float)(sum of the terms / sum of the kept flags), both
 * sums in double by a tree of 256 strided partial sums (the same order at
 * every run; the count is exact).  No kept row: 0/0 = NaN. */
static void ce_mean_kernel(DnGpuGen *G, const char *rows)
{
    dn_gk_begin(G, "mean");
    dn_gk_ws(G, "float", "part");
    dn_gk_ptr(G, G->op->nin, "float", "loss");
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    dn_gk_line(G, "double s = 0.0, c = 0.0;");
    dn_gk_line(G, "for (i64 i = LOCAL_ID; i < %s; i += %d) {", rows, GROUP);
    dn_gk_line(G, "    s += (double)part[i];");
    dn_gk_line(G, "    c += (double)part[%s + i];", rows);
    dn_gk_line(G, "}");
    dn_gk_tree_reduce(G, "red", "double", "s", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_tree_reduce(G, "red", "double", "c", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) loss[0] = (float)(s / c);");
    dn_gk_end(G, 0, GROUP, GROUP);
}

/* loss = sum over kept rows [ -(1-s) logp[r,label] - s/K sum_k logp[r,k] ] / (kept rows);
 * a row whose label is ignore_index adds nothing; a label outside [0, K)
 * contributes no label term, as on the CPU. */
void dn_gpu_kernel_cross_entropy(DnGpuGen *G)
{
    Rows r = rows_of(G);
    double s = dn_op_float(G->op, "smoothing");
    dn_gk_begin(G, "rows");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "int", "label");
    dn_gk_ws(G, "float", "term");
    row_stats(G, &r, s != 0);
    dn_gk_line(G, "if (live && sl == 0) {");
    dn_gk_line(G, "    float lse = m + logf(se);");
    dn_gk_line(G, "    int lab = label[row];");
    dn_gk_line(G, "    float lp = (u32)lab < %lldu ? x[base + lab] - lse : 0.0f;", (long long)r.k);
    dn_gk_line(G, "    float t = %s * lp;", dn_gk_float(G, (float)-(1.0 - s)));
    if (s != 0)
        dn_gk_line(G, "    t = t - %s * (sx - %s * lse);", dn_gk_float(G, (float)(s / (double)r.k)),
                   dn_gk_float(G, (float)r.k));
    dn_gk_line(G, "    int keep = %s;", kept_test(G, "lab"));
    dn_gk_line(G, "    term[row] = keep ? t : 0.0f;");
    dn_gk_line(G, "    term[%s + row] = keep ? 1.0f : 0.0f;", r.rows);
    dn_gk_line(G, "}");
    end_rows(G, &r);
    ce_mean_kernel(G, r.rows);
}

bool dn_gpu_workspace_cross_entropy_bwd(const DnOp *op, DnWorkspaceReq *req)
{
    (void)op;
    req->bytes_b = 8; /* the kept rows, a double */
    return true;
}

/* dlogits[r] = dloss / (kept rows) * (softmax - ((1-s) onehot + s/K)), 0 for
 * an ignored row; kernel 1 (one group) counts the kept rows. */
void dn_gpu_kernel_cross_entropy_bwd(DnGpuGen *G)
{
    Rows r = rows_of(G);
    double s = dn_op_float(G->op, "smoothing");
    dn_gk_begin(G, "count");
    dn_gk_ptr(G, 1, "int", "label");
    dn_gk_ws(G, "double", "kept");
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    dn_gk_line(G, "double c = 0.0;");
    dn_gk_line(G, "for (i64 i = LOCAL_ID; i < %s; i += %d) c += %s ? 1.0 : 0.0;", r.rows, GROUP,
               kept_test(G, "label[i]"));
    dn_gk_tree_reduce(G, "red", "double", "c", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) kept[0] = c;");
    dn_gk_end(G, 0, GROUP, GROUP);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "int", "label");
    dn_gk_ptr(G, 2, "float", "dloss");
    dn_gk_ptr(G, 3, "float", "dx");
    dn_gk_ws(G, "double", "kept");
    row_stats(G, &r, false);
    dn_gk_line(G, "float coef = dloss[0] / (float)kept[0], inv = 1.0f / se;");
    dn_gk_line(G, "if (live) {");
    dn_gk_line(G, "    int lab = label[row];");
    dn_gk_line(G, "    int keep = %s;", kept_test(G, "lab"));
    dn_gk_line(G, "    for (i64 j = sl; j < %lld; j += %d) {", (long long)r.k, r.t);
    dn_gk_line(G, "        float p = expf(x[base + j] - m) * inv;");
    dn_gk_line(G, "        float t = j == (i64)lab ? %s : %s;", dn_gk_float(G, (float)(1.0 - s + s / (double)r.k)),
               dn_gk_float(G, (float)(s / (double)r.k)));
    dn_gk_line(G, "        dx[base + j] = keep ? coef * (p - t) : 0.0f;");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
    end_rows(G, &r);
}

/* ---- mse ------------------------------------------------------------------ */

bool dn_gpu_workspace_mse(const DnOp *op, DnWorkspaceReq *req)
{
    const DnValue *p = op->in[0]; /* one double per chunk */
    int64_t chunks = (dn_gk_numel(p) + CHUNK - 1) / CHUNK;
    if (dn_gk_has_n(p))
        req->bytes_n = 8 * chunks;
    else
        req->bytes_b = 8 * chunks;
    return true;
}

/* loss = mean over all elements of (pred - target)^2. */
void dn_gpu_kernel_mse(DnGpuGen *G)
{
    const DnValue *p = G->op->in[0];
    const char *count = dn_gk_count(G, p);
    dn_gk_begin(G, "chunks");
    dn_gk_ptr(G, 0, "float", "pred");
    dn_gk_ptr(G, 1, "float", "target");
    dn_gk_ws(G, "double", "part");
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    dn_gk_line(G, "i64 at = GROUP_ID * %d + LOCAL_ID;", CHUNK);
    dn_gk_line(G, "double s = 0.0;");
    dn_gk_line(G, "for (int e = 0; e < %d; e++, at += %d)", PER_ITEM, GROUP);
    dn_gk_line(G, "    if (at < %s) {", count);
    dn_gk_line(G, "        double d = (double)(pred[at] - target[at]);");
    dn_gk_line(G, "        s += d * d;");
    dn_gk_line(G, "    }");
    dn_gk_tree_reduce(G, "red", "double", "s", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) part[GROUP_ID] = s;");
    int64_t chunks = (dn_gk_numel(p) + CHUNK - 1) / CHUNK;
    bool n = dn_gk_has_n(p);
    dn_gk_end(G, n ? chunks * GROUP : 0, n ? 0 : chunks * GROUP, GROUP);
    char nchunks[96];
    snprintf(nchunks, sizeof nchunks, "((%s + %d) / %d)", count, CHUNK - 1, CHUNK);
    mean_kernel(G, "double", nchunks, count);
}

/* dpred = dloss * 2 (pred - target) / numel. */
void dn_gpu_kernel_mse_bwd(DnGpuGen *G)
{
    const DnValue *p = G->op->in[0];
    const char *count = dn_gk_count(G, p);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "pred");
    dn_gk_ptr(G, 1, "float", "target");
    dn_gk_ptr(G, 2, "float", "dloss");
    dn_gk_ptr(G, 3, "float", "dx");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", count);
    dn_gk_line(G, "float coef = (2.0f * dloss[0]) / (float)%s;", count);
    dn_gk_line(G, "dx[i] = coef * (pred[i] - target[i]);");
    int64_t a, b;
    dn_gk_items(p, &a, &b);
    dn_gk_end(G, a, b, GROUP);
}

/* gpu_kernel_softmax.c -- softmax, log_softmax and their backwards
 * (softmax_bwd, log_softmax_bwd) on the GPU, along any axis (ops.def;
 * the CPU kernels kernel_softmax.c and kernel_act_bwd.c are the reference).
 *
 * The tensor is viewed as [outer, len, inner] around the axis; a row is the
 * len elements of one (outer, inner) pair, 'inner' apart.  One kernel per
 * op: a work-group of 256 items holds W rows x T slices (T a power of two,
 * W = 256 / T); an item walks its slice of its row (t = slice, slice + T,
 * ...), the group combines the slices by tree reductions in LOCAL memory
 * (max, then the sum of exp, as the CPU kernel; float sums), and every item
 * then writes its slice.  inner == 1: the slices of a row are adjacent
 * items (reads coalesced along the row); inner > 1: the rows of a slice are
 * adjacent items (coalesced across the inner positions).  N may be in
 * 'outer' (the rows scale with the batch) or be the axis itself (len = n).
 */
#include "gpu_internal.h"

#define GROUP 256

typedef struct Rows {
    int64_t rows;  /* rows per batch item (n_outer) or in all */
    int64_t len;   /* elements along the axis, when static */
    int64_t inner; /* stride of the axis */
    bool n_outer;  /* N is an outer axis: n * rows rows */
    bool n_len;    /* the axis is N: len = n */
    int w, t;      /* rows and slices per group */
} Rows;

static int pow2_at_least(int64_t v, int cap)
{
    int p = 1;
    while (p < cap && p < v) p *= 2;
    return p;
}

static Rows rows_of(const DnValue *x, int axis)
{
    Rows r = {.rows = 1, .len = 1, .inner = 1};
    for (int d = 0; d < x->shape.rank; d++) {
        int64_t e = x->shape.dim[d];
        if (d == axis) {
            r.n_len = e == DN_DIM_N;
            r.len = r.n_len ? 1 : e;
        } else if (e == DN_DIM_N) {
            r.n_outer = true;
        } else {
            r.rows *= e;
            if (d > axis) r.inner *= e;
        }
    }
    /* inner == 1: up to 256 slices per row; else 32 or more rows per group */
    int cap = r.inner == 1 ? GROUP : 8;
    r.t = r.n_len ? cap : pow2_at_least(r.len, cap);
    r.w = GROUP / r.t;
    return r;
}

/* The kernel's prologue: sl (slice), row, live (row exists), base (row's
 * first element) and the constants LEN/ROWS as text. */
static void prologue(DnGpuGen *G, const Rows *r)
{
    dn_gk_line(G, "LOCAL float red[%d];", GROUP);
    if (r->inner == 1) {
        dn_gk_line(G, "i64 sl = LOCAL_ID %% %d;", r->t);
        dn_gk_line(G, "i64 row = GROUP_ID * %d + LOCAL_ID / %d;", r->w, r->t);
    } else {
        dn_gk_line(G, "i64 sl = LOCAL_ID / %d;", r->w);
        dn_gk_line(G, "i64 row = GROUP_ID * %d + LOCAL_ID %% %d;", r->w, r->w);
    }
    if (r->n_len)
        dn_gk_line(G, "i64 len = n;");
    else
        dn_gk_line(G, "i64 len = %lld;", (long long)r->len);
    dn_gk_line(G, "int live = row < %s%lld;", r->n_outer ? "n * " : "", (long long)r->rows);
    if (r->inner == 1)
        dn_gk_line(G, "i64 base = row * len;");
    else
        dn_gk_line(G, "i64 base = (row / %lld) * len * %lld + row %% %lld;", (long long)r->inner, (long long)r->inner,
                   (long long)r->inner);
}

/* The sequence reduction of 'var' over the slices of each row. */
static void reduce(DnGpuGen *G, const Rows *r, const char *var, const char *combine)
{
    dn_gk_tree_reduce(G, "red", "float", var, combine, "sl", r->t, r->inner == 1 ? 1 : r->w);
}

/* for (each element i of this item's slice of its row) -- opens a block */
static void for_slice(DnGpuGen *G, const Rows *r)
{
    dn_gk_line(G, "if (live) for (i64 t = sl; t < len; t += %d) {", r->t);
    if (r->inner == 1)
        dn_gk_line(G, "    i64 i = base + t;");
    else
        dn_gk_line(G, "    i64 i = base + t * %lld;", (long long)r->inner);
}

static void end_launch(DnGpuGen *G, const Rows *r)
{
    /* ceil(rows / w) groups of 256 items: rows * t items, rounded up by the launch */
    dn_gk_end(G, r->n_outer ? r->rows * r->t : 0, r->n_outer ? 0 : r->rows * r->t, GROUP);
}

static void forward(DnGpuGen *G, bool is_log)
{
    Rows r = rows_of(G->op->in[0], (int)dn_op_int(G->op, "axis"));
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "y");
    prologue(G, &r);
    dn_gk_line(G, "float m = -F32_INF;");
    for_slice(G, &r);
    dn_gk_line(G, "    m = fmaxf(m, x[i]);");
    dn_gk_line(G, "}");
    reduce(G, &r, "m", "fmaxf(a, b)");
    dn_gk_line(G, "float s = 0.0f;");
    for_slice(G, &r);
    dn_gk_line(G, "    s += expf(x[i] - m);");
    dn_gk_line(G, "}");
    reduce(G, &r, "s", "a + b");
    if (is_log) dn_gk_line(G, "float shift = m + logf(s);");
    for_slice(G, &r);
    dn_gk_line(G, is_log ? "    y[i] = x[i] - shift;" : "    y[i] = expf(x[i] - m) / s;");
    dn_gk_line(G, "}");
    end_launch(G, &r);
}

/* in y, dy.  softmax: dx = y (dy - sum(dy y));  log_softmax: dx = dy - exp(y) sum(dy). */
static void backward(DnGpuGen *G, bool is_log)
{
    Rows r = rows_of(G->op->in[0], (int)dn_op_int(G->op, "axis"));
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "y");
    dn_gk_ptr(G, 1, "float", "dy");
    dn_gk_ptr(G, 2, "float", "dx");
    prologue(G, &r);
    dn_gk_line(G, "float s = 0.0f;");
    for_slice(G, &r);
    dn_gk_line(G, is_log ? "    s += dy[i];" : "    s += dy[i] * y[i];");
    dn_gk_line(G, "}");
    reduce(G, &r, "s", "a + b");
    for_slice(G, &r);
    dn_gk_line(G, is_log ? "    dx[i] = dy[i] - expf(y[i]) * s;" : "    dx[i] = y[i] * (dy[i] - s);");
    dn_gk_line(G, "}");
    end_launch(G, &r);
}

void dn_gpu_kernel_softmax(DnGpuGen *G) { forward(G, false); }
void dn_gpu_kernel_log_softmax(DnGpuGen *G) { forward(G, true); }
void dn_gpu_kernel_softmax_bwd(DnGpuGen *G) { backward(G, false); }
void dn_gpu_kernel_log_softmax_bwd(DnGpuGen *G) { backward(G, true); }

/* gpu_kernel_norm.c -- batch normalisation on the GPU: batchnorm
 * (inference), batchnorm_train (batch statistics, saved mean and 1/std,
 * running statistics in place, num_batches_tracked) and batchnorm_bwd
 * (dx, dweight, dbias) (ops.def; the CPU kernel kernel_norm.c is the
 * reference: channel sums in double, the rest in float).
 *
 * x is [N, C, ...]: S elements per (n, c) plane, M = N * S per channel.
 * The channel sums are split: kernel 1 runs a group of 256 items per
 * (channel, chunk of 4096 of the channel's M elements, in (n, s) order:
 * coalesced along each plane); items accumulate in double, the group adds
 * them by a tree in LOCAL memory and writes the chunk's two sums to the
 * workspace.  Kernel 2 runs a group per channel that adds its chunks' sums
 * in a fixed order (deterministic) and finishes the channel's statistics;
 * kernel 3 is pointwise (y or dx).  batchnorm_train sums d = x - x0 and d^2,
 * x0 the channel's first element (a shift that keeps the one-pass variance
 * exact in double), and its group of channel 0 counts the batch.
 * batchnorm (inference) is one pointwise kernel.
 */
#include "gpu_internal.h"

#define GROUP    256
#define PER_ITEM 16
#define CHUNK    (GROUP * PER_ITEM)

typedef struct Chan {
    const DnValue *x;
    int64_t c, s;       /* channels, elements per plane */
    const char *nb, *m; /* the batch ("n" or static) and M = nb * S, as text */
} Chan;

static int64_t plane_of(const DnValue *x)
{
    int64_t s = 1;
    for (int i = 2; i < x->shape.rank; i++) s *= x->shape.dim[i];
    return s;
}

static const char *text_of(DnGpuGen *G, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *text_of(DnGpuGen *G, const char *fmt, ...)
{
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return strcpy(dn_arena_alloc(&G->H->cx->arena, strlen(buf) + 1), buf);
}

static Chan chan_of(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0];
    Chan ch = {.x = x, .c = x->shape.dim[1], .s = plane_of(x)};
    ch.nb = dn_gk_has_n(x) ? "n" : text_of(G, "%lld", (long long)x->shape.dim[0]);
    ch.m = text_of(G, "(%s * %lld)", ch.nb, (long long)ch.s);
    return ch;
}

/* A double constant as dialect text. */
static const char *dbl(DnGpuGen *G, double v) { return text_of(G, "%.17e", v); }

/* Kernel 1's groups, channels x chunks: C * ceil(n S / CHUNK) <= n *
 * ceil(C S / CHUNK) + C with N (the surplus groups return), exact without. */
static void chunk_groups(const DnValue *x, int64_t *groups_n, int64_t *groups_b)
{
    int64_t c = x->shape.dim[1], s = plane_of(x);
    if (dn_gk_has_n(x)) {
        *groups_n = (c * s + CHUNK - 1) / CHUNK;
        *groups_b = c;
    } else {
        *groups_n = 0;
        *groups_b = c * ((x->shape.dim[0] * s + CHUNK - 1) / CHUNK);
    }
}

/* Two doubles per (channel, chunk). */
static bool chunk_workspace(const DnOp *op, DnWorkspaceReq *req)
{
    int64_t gn, gb;
    chunk_groups(op->in[0], &gn, &gb);
    req->bytes_n = 16 * gn;
    req->bytes_b = 16 * gb;
    return true;
}

/* i64 P = the chunks per channel. */
static void chunk_count(DnGpuGen *G, const Chan *ch)
{
    dn_gk_line(G, "i64 P = (%s + %d) / %d;", ch->m, CHUNK - 1, CHUNK);
}

/* Kernel 1's frame: a group per (channel c, chunk); the 'pre' lines run
 * once per item, the 'body' lines once per element of the item's part of
 * the chunk, with i (x's flat index) in scope, and add to the doubles s0
 * and s1, which the group reduces and stores at
 * part[(c * P + chunk) * 2 + {0, 1}]. */
static void chunk_kernel(DnGpuGen *G, const Chan *ch, const char *const *pre, const char *const *body)
{
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    chunk_count(G, ch);
    dn_gk_line(G, "i64 c = GROUP_ID %% %lld, chunk = GROUP_ID / %lld;", (long long)ch->c, (long long)ch->c);
    dn_gk_line(G, "if (chunk >= P) return; /* the whole group: no barrier yet */");
    for (; *pre; pre++) dn_gk_line(G, "%s", *pre);
    dn_gk_line(G, "double s0 = 0.0, s1 = 0.0;");
    dn_gk_line(G, "i64 j = chunk * %d + LOCAL_ID;", CHUNK);
    dn_gk_line(G, "for (int e = 0; e < %d; e++, j += %d) {", PER_ITEM, GROUP);
    dn_gk_line(G, "    if (j >= %s) break;", ch->m);
    dn_gk_line(G, "    i64 ni = j / %lld;", (long long)ch->s);
    dn_gk_line(G, "    i64 i = (ni * %lld + c) * %lld + (j - ni * %lld);", (long long)ch->c, (long long)ch->s,
               (long long)ch->s);
    for (; *body; body++) dn_gk_line(G, "    %s", *body);
    dn_gk_line(G, "}");
    dn_gk_tree_reduce(G, "red", "double", "s0", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_tree_reduce(G, "red", "double", "s1", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) {");
    dn_gk_line(G, "    part[(c * P + chunk) * 2] = s0;");
    dn_gk_line(G, "    part[(c * P + chunk) * 2 + 1] = s1;");
    dn_gk_line(G, "}");
    int64_t gn, gb;
    chunk_groups(ch->x, &gn, &gb);
    dn_gk_end(G, gn * GROUP, gb * GROUP, GROUP);
}

/* Kernel 2's frame, a group per channel c: s0, s1 = the sums over the
 * channel's chunks; then only item 0 goes on (no barrier after this). */
static void channel_sums(DnGpuGen *G, const Chan *ch)
{
    dn_gk_line(G, "LOCAL double red[%d];", GROUP);
    chunk_count(G, ch);
    dn_gk_line(G, "i64 c = GROUP_ID;");
    dn_gk_line(G, "double s0 = 0.0, s1 = 0.0;");
    dn_gk_line(G, "for (i64 k = LOCAL_ID; k < P; k += %d) {", GROUP);
    dn_gk_line(G, "    s0 += part[(c * P + k) * 2];");
    dn_gk_line(G, "    s1 += part[(c * P + k) * 2 + 1];");
    dn_gk_line(G, "}");
    dn_gk_tree_reduce(G, "red", "double", "s0", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_tree_reduce(G, "red", "double", "s1", "a + b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID != 0) return;");
}

/* Pointwise kernel frame: i, c (its channel), or return. */
static void pointwise(DnGpuGen *G, const Chan *ch)
{
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, ch->x));
    dn_gk_line(G, "i64 c = (i / %lld) %% %lld;", (long long)ch->s, (long long)ch->c);
}

static void end_pointwise(DnGpuGen *G, const Chan *ch)
{
    int64_t a, b;
    dn_gk_items(ch->x, &a, &b);
    dn_gk_end(G, a, b, GROUP);
}

/* ---- batchnorm (inference) -------------------------------------------------- */

/* y = (x - mean) / sqrt(var + eps) * weight + bias, running statistics. */
void dn_gpu_kernel_batchnorm(DnGpuGen *G)
{
    Chan ch = chan_of(G);
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ptr(G, 2, "float", "b");
    dn_gk_ptr(G, 3, "float", "mean");
    dn_gk_ptr(G, 4, "float", "var");
    dn_gk_ptr(G, G->op->nin, "float", "y");
    pointwise(G, &ch);
    dn_gk_line(G, "float scale = (1.0f / sqrtf(var[c] + %s)) * w[c];",
               dn_gk_float(G, (float)dn_op_float(G->op, "eps")));
    dn_gk_line(G, "y[i] = (x[i] - mean[c]) * scale + b[c];");
    end_pointwise(G, &ch);
}

/* ---- batchnorm_train ------------------------------------------------------ */

bool dn_gpu_workspace_batchnorm_train(const DnOp *op, DnWorkspaceReq *req) { return chunk_workspace(op, req); }

void dn_gpu_kernel_batchnorm_train(DnGpuGen *G)
{
    const DnOp *op = G->op;
    Chan ch = chan_of(G);
    double eps = dn_op_float(op, "eps"), mom = dn_op_float(op, "momentum");
    int nin = op->nin;

    /* 1: per chunk, the sums of d = x - x0 and d^2 */
    dn_gk_begin(G, "chunks");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ws(G, "double", "part");
    const char *pre[] = {text_of(G, "double x0 = x[c * %lld];", (long long)ch.s), NULL};
    const char *body[] = {"double d = (double)x[i] - x0;", "s0 += d;", "s1 += d * d;", NULL};
    chunk_kernel(G, &ch, pre, body);

    /* 2: per channel: mean, biased variance, 1/std; the running statistics */
    dn_gk_begin(G, "stats");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 3, "float", "run_mean");
    dn_gk_ptr(G, 4, "float", "run_var");
    if (nin > 5) dn_gk_ptr(G, 5, "i64", "nbt");
    dn_gk_ws(G, "double", "part");
    dn_gk_ptr(G, nin + 1, "float", "save_mean");
    dn_gk_ptr(G, nin + 2, "float", "save_invstd");
    channel_sums(G, &ch);
    dn_gk_line(G, "double M = (double)%s;", ch.m);
    dn_gk_line(G, "double mu = s0 / M, var = s1 / M - mu * mu;");
    dn_gk_line(G, "double mean = (M > 0.0 ? (double)x[c * %lld] : 0.0) + mu; /* x0 + mean of d */", (long long)ch.s);
    dn_gk_line(G, "if (var < 0.0) var = 0.0;");
    dn_gk_line(G, "save_mean[c] = (float)mean;");
    dn_gk_line(G, "save_invstd[c] = (float)(1.0 / sqrt(var + %s));", dbl(G, eps));
    dn_gk_line(G, "double m1 = M - 1.0 > 0.0 ? M - 1.0 : 1.0;");
    const char *keep = dn_gk_float(G, (float)(1.0 - mom)), *take = dn_gk_float(G, (float)mom);
    dn_gk_line(G, "run_mean[c] = %s * run_mean[c] + %s * (float)mean;", keep, take);
    dn_gk_line(G, "run_var[c] = %s * run_var[c] + %s * (float)(var * M / m1);", keep, take);
    if (nin > 5) dn_gk_line(G, "if (c == 0) nbt[0] = nbt[0] + 1;");
    dn_gk_end(G, 0, ch.c * GROUP, GROUP);

    /* 3: y = (x - mean) * (invstd * weight) + bias */
    dn_gk_begin(G, "apply");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ptr(G, 2, "float", "b");
    dn_gk_ptr(G, nin + 1, "float", "mean");
    dn_gk_ptr(G, nin + 2, "float", "invstd");
    dn_gk_ptr(G, nin, "float", "y");
    pointwise(G, &ch);
    dn_gk_line(G, "y[i] = (x[i] - mean[c]) * (invstd[c] * w[c]) + b[c];");
    end_pointwise(G, &ch);
}

/* ---- batchnorm_bwd -------------------------------------------------------- */

bool dn_gpu_workspace_batchnorm_bwd(const DnOp *op, DnWorkspaceReq *req) { return chunk_workspace(op, req); }

/* in x, weight, saved_mean, saved_invstd, dy;  dbias = sum dy;
 * dweight = sum dy xhat;  dx = weight invstd / M (M dy - dbias - xhat dweight). */
void dn_gpu_kernel_batchnorm_bwd(DnGpuGen *G)
{
    Chan ch = chan_of(G);

    /* 1: per chunk, the sums of dy and dy * xhat */
    dn_gk_begin(G, "chunks");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 2, "float", "mean");
    dn_gk_ptr(G, 3, "float", "invstd");
    dn_gk_ptr(G, 4, "float", "dy");
    dn_gk_ws(G, "double", "part");
    const char *pre[] = {"float mc = mean[c], ic = invstd[c];", NULL};
    const char *body[] = {"float g = dy[i], xh = (x[i] - mc) * ic;", "s0 += (double)g;", "s1 += (double)(g * xh);",
                          NULL};
    chunk_kernel(G, &ch, pre, body);

    /* 2: per channel: dbias, dweight */
    dn_gk_begin(G, "sums");
    dn_gk_ws(G, "double", "part");
    dn_gk_ptr(G, 6, "float", "dw");
    dn_gk_ptr(G, 7, "float", "db");
    channel_sums(G, &ch);
    dn_gk_line(G, "db[c] = (float)s0;");
    dn_gk_line(G, "dw[c] = (float)s1;");
    dn_gk_end(G, 0, ch.c * GROUP, GROUP);

    /* 3: dx */
    dn_gk_begin(G, "dx");
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ptr(G, 2, "float", "mean");
    dn_gk_ptr(G, 3, "float", "invstd");
    dn_gk_ptr(G, 4, "float", "dy");
    dn_gk_ptr(G, 6, "float", "dw");
    dn_gk_ptr(G, 7, "float", "db");
    dn_gk_ptr(G, 5, "float", "dx");
    pointwise(G, &ch);
    dn_gk_line(G, "float mf = (float)%s, ic = invstd[c];", ch.m);
    dn_gk_line(G, "float xh = (x[i] - mean[c]) * ic;");
    dn_gk_line(G, "float coef = (w[c] * ic) / mf;");
    dn_gk_line(G, "dx[i] = coef * ((mf * dy[i] - db[c]) - xh * dw[c]);");
    end_pointwise(G, &ch);
}

/* gpu_kernel_conv.c -- conv2d and its two gradients on the GPU, each an
 * implicit GEMM on the tiled generator of gpu_kernel_gemm.c (gpu_gemm.h):
 * the loaders index the images directly (no im2col buffer), with padding,
 * stride, dilation and groups (one product per group, bz = g).
 *   conv2d             M = output pixels over the batch (n, oh, ow),
 *                      columns = the group's output channels, K = (c, kh, kw);
 *                      epilogue: bias, relu (act).
 *   conv2d_bwd_data    M = input pixels over the batch (n, ih, iw), columns =
 *                      the group's input channels, K = (o, kh, kw): dy read
 *                      at oh = (ih + p - kh d) / s (zero where that is not
 *                      an output pixel) times w[o, c, kh, kw] (the
 *                      flipped, transposed filter).
 *   conv2d_bwd_filter  M = the group's output channels, columns = (c, kh, kw),
 *                      K = output pixels over the batch: dw = dy · im2col(x)
 *                      summed over the batch; deep K is split into chunks
 *                      whose partial sums (workspace) are added in order.
 */
#include <stdio.h>

#include "gpu_gemm.h"

typedef struct Conv {
    int64_t nb; /* static batch, 0 when it is N */
    int64_t C, H, W, O, OH, OW, KH, KW, G, Cg, Og, s[2], p[2], d[2];
    bool bias, relu;
} Conv;

/* x [N, C, H, W], w [O, C/G, KH, KW], y [N, O, OH, OW] as the op has them. */
static Conv conv_of(const DnOp *op, const DnValue *x, const DnValue *w, const DnValue *y)
{
    Conv c = {.nb = dn_gk_has_n(x) ? 0 : x->shape.dim[0],
              .C = x->shape.dim[1],
              .H = x->shape.dim[2],
              .W = x->shape.dim[3],
              .O = w->shape.dim[0],
              .OH = y->shape.dim[2],
              .OW = y->shape.dim[3],
              .KH = w->shape.dim[2],
              .KW = w->shape.dim[3],
              .G = dn_op_int(op, "groups"),
              .Cg = w->shape.dim[1]};
    int k;
    const int64_t *s = dn_op_ints(op, "stride", &k), *p = dn_op_ints(op, "pad", &k),
                  *d = dn_op_ints(op, "dilation", &k);
    for (int i = 0; i < 2; i++) c.s[i] = s[i], c.p[i] = p[i], c.d[i] = d[i];
    c.Og = c.O / c.G;
    return c;
}

/* rows or depth over the batch: 'per' per item, as (a, b) of a * n + b */
static void over_batch(const Conv *c, int64_t per, int64_t *a, int64_t *b)
{
    *a = c->nb ? 0 : per;
    *b = c->nb ? c->nb * per : 0;
}

/* i64 B, Y, X = the batch item and the pixel of flat index 'v' over [*, R, S]. */
static void split_pixel(DnGpuGen *G, const char *v, int64_t R, int64_t S, const char *B, const char *Y, const char *X)
{
    dn_gk_line(G, "i64 %s = %s / %lld, %s = %s %% %lld / %lld, %s = %s %% %lld;", B, v, (long long)(R * S), Y, v,
               (long long)(R * S), (long long)S, X, v, (long long)S);
}

/* i64 ih, iw = the input pixel under output (oh, ow) and tap (kh, kw), and
 * the test that it is inside the image (none without padding). */
static void input_pixel(DnGpuGen *G, const Conv *c)
{
    dn_gk_line(G, "i64 ih = oh * %lld + (kh * %lld - %lld), iw = ow * %lld + (kw * %lld - %lld);", (long long)c->s[0],
               (long long)c->d[0], (long long)c->p[0], (long long)c->s[1], (long long)c->d[1], (long long)c->p[1]);
    char t[160] = "";
    if (c->p[0]) snprintf(t, sizeof t, "ih >= 0 && ih < %lld", (long long)c->H);
    if (c->p[1])
        snprintf(t + strlen(t), sizeof t - strlen(t), "%siw >= 0 && iw < %lld", *t ? " && " : "", (long long)c->W);
    dn_gk_line(G, "if (%s)", *t ? t : "1");
}

/* v = x[b_, bz * Cg + ci, ih, iw] */
static void read_x(DnGpuGen *G, const Conv *c)
{
    dn_gk_line(G, "    v = x[((b_ * %lld + bz * %lld + ci) * %lld + ih) * %lld + iw];", (long long)c->C,
               (long long)c->Cg, (long long)c->H, (long long)c->W);
}

static int64_t taps(const Conv *c) { return c->KH * c->KW; }

/* ---- conv2d ----------------------------------------------------------------- */

static void fwd_params(DnGpuGen *G, const DnGkGemm *g)
{
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "w");
    if (((const Conv *)g->ctx)->bias) dn_gk_ptr(G, 2, "float", "bias");
    dn_gk_ptr(G, G->op->nin, "float", "y");
}

static void fwd_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    split_pixel(G, "gm", c->OH, c->OW, "b_", "oh", "ow");
    split_pixel(G, "gk", c->KH, c->KW, "ci", "kh", "kw");
    input_pixel(G, c);
    read_x(G, c);
}

static void fwd_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    dn_gk_line(G, "v = w[(bz * %lld + gj) * %lld + gk];", (long long)c->Og, (long long)(c->Cg * taps(c)));
}

static void fwd_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t P = c->OH * c->OW;
    dn_gk_line(G, "i64 o = bz * %lld + gj, b_ = gm / %lld, p_ = gm %% %lld;", (long long)c->Og, (long long)P,
               (long long)P);
    if (c->bias) dn_gk_line(G, "v += bias[o];");
    if (c->relu) dn_gk_line(G, "v = v > 0.0f ? v : 0.0f;");
    dn_gk_line(G, "y[(b_ * %lld + o) * %lld + p_] = v;", (long long)c->O, (long long)P);
}

static DnGkGemm fwd_gemm(const DnOp *op, Conv *c)
{
    *c = conv_of(op, op->in[0], op->in[1], op->out[0]);
    c->bias = op->nin > 2;
    c->relu = !strcmp(dn_op_str(op, "act"), "relu");
    DnGkGemm g = {.k_b = c->Cg * taps(c),
                  .cols = c->Og,
                  .batch_b = c->G,
                  .a_m_fast = true,
                  .c_m_fast = true,
                  .params = fwd_params,
                  .load_a = fwd_load_a,
                  .load_b = fwd_load_b,
                  .store = fwd_store,
                  .ctx = c};
    over_batch(c, c->OH * c->OW, &g.m_n, &g.m_b);
    dn_gk_gemm_plan(&g);
    return g;
}

bool dn_gpu_workspace_conv2d(const DnOp *op, DnWorkspaceReq *req)
{
    Conv c;
    DnGkGemm g = fwd_gemm(op, &c);
    req->bytes_b = dn_gk_gemm_ws_bytes(&g);
    return req->bytes_b > 0;
}

void dn_gpu_kernel_conv2d(DnGpuGen *G)
{
    Conv c;
    DnGkGemm g = fwd_gemm(G->op, &c);
    dn_gk_gemm(G, &g);
}

/* ---- conv2d_bwd_data -------------------------------------------------------- */

static void data_params(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 0, "float", "dy");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ptr(G, 2, "float", "dx");
}

/* One axis of the output pixel under input coordinate 'i' and tap 'k':
 * o = (i + p - k d) / s, valid when the division is exact and in range. */
static void out_coord(const Conv *c, int ax, char *cond, size_t cap)
{
    const char *t = ax ? "tw" : "th";
    size_t at = strlen(cond);
    snprintf(cond + at, cap - at, "%s%s >= 0 && %s < %lld", at ? " && " : "", t, t,
             (long long)((ax ? c->OW : c->OH) * c->s[ax]));
    at = strlen(cond);
    if (c->s[ax] > 1) snprintf(cond + at, cap - at, " && %s %% %lld == 0", t, (long long)c->s[ax]);
}

static void data_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    split_pixel(G, "gm", c->H, c->W, "b_", "ih", "iw");
    split_pixel(G, "gk", c->KH, c->KW, "oc", "kh", "kw");
    dn_gk_line(G, "i64 th = ih + (%lld - kh * %lld), tw = iw + (%lld - kw * %lld);", (long long)c->p[0],
               (long long)c->d[0], (long long)c->p[1], (long long)c->d[1]);
    char cond[256] = "";
    out_coord(c, 0, cond, sizeof cond);
    out_coord(c, 1, cond, sizeof cond);
    dn_gk_line(G, "if (%s)", cond);
    dn_gk_line(G, "    v = dy[((b_ * %lld + bz * %lld + oc) * %lld + th / %lld) * %lld + tw / %lld];", (long long)c->O,
               (long long)c->Og, (long long)c->OH, (long long)c->s[0], (long long)c->OW, (long long)c->s[1]);
}

static void data_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t T = taps(c);
    dn_gk_line(G, "v = w[((bz * %lld + gk / %lld) * %lld + gj) * %lld + gk %% %lld];", (long long)c->Og, (long long)T,
               (long long)c->Cg, (long long)T, (long long)T);
}

static void data_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t P = c->H * c->W;
    dn_gk_line(G, "dx[(gm / %lld * %lld + bz * %lld + gj) * %lld + gm %% %lld] = v;", (long long)P, (long long)c->C,
               (long long)c->Cg, (long long)P, (long long)P);
}

static DnGkGemm data_gemm(const DnOp *op, Conv *c)
{
    *c = conv_of(op, op->out[0], op->in[1], op->in[0]);
    DnGkGemm g = {.k_b = c->Og * taps(c),
                  .cols = c->Cg,
                  .batch_b = c->G,
                  .a_m_fast = true,
                  .c_m_fast = true,
                  .params = data_params,
                  .load_a = data_load_a,
                  .load_b = data_load_b,
                  .store = data_store,
                  .ctx = c};
    over_batch(c, c->H * c->W, &g.m_n, &g.m_b);
    dn_gk_gemm_plan(&g);
    return g;
}

bool dn_gpu_workspace_conv2d_bwd_data(const DnOp *op, DnWorkspaceReq *req)
{
    Conv c;
    DnGkGemm g = data_gemm(op, &c);
    req->bytes_b = dn_gk_gemm_ws_bytes(&g);
    return req->bytes_b > 0;
}

void dn_gpu_kernel_conv2d_bwd_data(DnGpuGen *G)
{
    Conv c;
    DnGkGemm g = data_gemm(G->op, &c);
    dn_gk_gemm(G, &g);
}

/* ---- conv2d_bwd_filter ------------------------------------------------------ */

static void filter_params(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 0, "float", "x");
    dn_gk_ptr(G, 1, "float", "dy");
    dn_gk_ptr(G, 2, "float", "dw");
}

static void filter_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t P = c->OH * c->OW;
    dn_gk_line(G, "v = dy[(gk / %lld * %lld + bz * %lld + gm) * %lld + gk %% %lld];", (long long)P, (long long)c->O,
               (long long)c->Og, (long long)P, (long long)P);
}

static void filter_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    split_pixel(G, "gk", c->OH, c->OW, "b_", "oh", "ow");
    split_pixel(G, "gj", c->KH, c->KW, "ci", "kh", "kw");
    input_pixel(G, c);
    read_x(G, c);
}

static void filter_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    dn_gk_line(G, "dw[(bz * %lld + gm) * %lld + gj] = v;", (long long)c->Og, (long long)(c->Cg * taps(c)));
}

static DnGkGemm filter_gemm(const DnOp *op, Conv *c)
{
    *c = conv_of(op, op->in[0], op->out[0], op->in[1]);
    DnGkGemm g = {.m_b = c->Og,
                  .cols = c->Cg * taps(c),
                  .batch_b = c->G,
                  .params = filter_params,
                  .load_a = filter_load_a,
                  .load_b = filter_load_b,
                  .store = filter_store,
                  .ctx = c};
    over_batch(c, c->OH * c->OW, &g.k_n, &g.k_b);
    dn_gk_gemm_plan(&g);
    return g;
}

bool dn_gpu_workspace_conv2d_bwd_filter(const DnOp *op, DnWorkspaceReq *req)
{
    Conv c;
    DnGkGemm g = filter_gemm(op, &c);
    req->bytes_b = dn_gk_gemm_ws_bytes(&g);
    return req->bytes_b > 0;
}

void dn_gpu_kernel_conv2d_bwd_filter(DnGpuGen *G)
{
    Conv c;
    DnGkGemm g = filter_gemm(G->op, &c);
    dn_gk_gemm(G, &g);
}

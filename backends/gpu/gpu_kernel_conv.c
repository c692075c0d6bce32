/* gpu_kernel_conv.c -- conv2d and its two gradients on the GPU, each an
 * implicit GEMM on the tiled generator of gpu_kernel_gemm.c (gpu_gemm.h):
 * the loaders index the images directly (no im2col buffer), with padding,
 * stride, dilation and groups (one product per group).
 *   conv2d             M = output pixels over the batch (n, oh, ow),
 *                      columns = the group's output channels, K = (c, kh, kw);
 *                      epilogue: bias, relu (act).  bz = the group.
 *   conv2d_bwd_data    dx = dy times the flipped, transposed filter: for input
 *                      pixel (ih, iw) the taps kh with (ih + p - kh d) a
 *                      multiple of the stride s read dy at oh = (ih + p - kh d) / s.
 *                      Which taps those are depends only on ih mod s, so the
 *                      input pixels are split by phase (ih mod sh, iw mod sw):
 *                      bz = (group, phase), M = the phase's pixels over the batch,
 *                      columns = the group's input channels, K = (o, the phase's
 *                      taps); no product term is a structural zero.
 *   conv2d_bwd_filter  M = the group's output channels, columns = (c, kh, kw),
 *                      K = output pixels over the batch: dw = dy · im2col(x)
 *                      summed over the batch; deep K is split into chunks
 *                      whose partial sums (workspace) are added in order.
 * Index arithmetic is 32-bit where the range is static (within an image,
 * within a filter) and 64-bit only across the batch.
 */
#include <stdio.h>

#include "gpu_gemm.h"

typedef struct Conv {
    int64_t nb; /* static batch, 0 when it is N */
    int64_t C, H, W, O, OH, OW, KH, KW, G, Cg, Og, s[2], p[2], d[2];
    bool bias, relu;
    /* conv2d_bwd_data's phases, per axis: input rows per phase (ceil(H / s)),
     * the step between a phase's taps (s / gcd(s, d)) and the most taps of a phase */
    int64_t hq[2], step[2], tq[2];
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

static long long ll(int64_t v) { return (long long)v; }

/* i64 B; int Y, X: the batch item and the position of flat index 'v' over
 * [*, R, S]  ('t': a name for the temporary). */
static void split_batch(DnGpuGen *G, const char *v, int64_t R, int64_t S, const char *B, const char *Y, const char *X,
                        const char *t)
{
    dn_gk_line(G, "i64 %s = %s / %lld;", B, v, ll(R * S));
    dn_gk_line(G, "int %s = (int)(%s - %s * %lld), %s = %s / %lld, %s = %s %% %lld;", t, v, B, ll(R * S), Y, t, ll(S),
               X, t, ll(S));
}

/* int A, Y, X of flat index 'v' < A * R * S (static, so 32-bit). */
static void split_static(DnGpuGen *G, const char *v, int64_t R, int64_t S, const char *A, const char *Y, const char *X,
                         const char *t)
{
    dn_gk_line(G, "int %s = (int)%s, %s = %s / %lld, %s = %s %% %lld / %lld, %s = %s %% %lld;", t, v, A, t, ll(R * S),
               Y, t, ll(R * S), ll(S), X, t, ll(S));
}

/* int ih, iw = the input pixel under output (oh, ow) and tap (kh, kw), and
 * the test that it is inside the image (none without padding). */
static void input_pixel(DnGpuGen *G, const Conv *c)
{
    dn_gk_line(G, "int ih = oh * %lld + (kh * %lld - %lld), iw = ow * %lld + (kw * %lld - %lld);", ll(c->s[0]),
               ll(c->d[0]), ll(c->p[0]), ll(c->s[1]), ll(c->d[1]), ll(c->p[1]));
    char t[160] = "";
    if (c->p[0]) snprintf(t, sizeof t, "ih >= 0 && ih < %lld", ll(c->H));
    if (c->p[1]) snprintf(t + strlen(t), sizeof t - strlen(t), "%siw >= 0 && iw < %lld", *t ? " && " : "", ll(c->W));
    dn_gk_line(G, "if (%s)", *t ? t : "1");
}

/* v = x[b_, bz * Cg + ci, ih, iw] (bz: the group) */
static void read_x(DnGpuGen *G, const Conv *c)
{
    dn_gk_line(G, "    v = x[((b_ * %lld + bz * %lld + ci) * %lld + ih) * %lld + iw];", ll(c->C), ll(c->Cg), ll(c->H),
               ll(c->W));
}

static int64_t taps(const Conv *c) { return c->KH * c->KW; }

/* ---- conv2d ----------------------------------------------------------------- */

/* Operands 0 and 1 as the loaders' buffers a0, a1 (conv2d: x, w; bwd_data:
 * dy, w; bwd_filter: x, dy). */
static void conv_params_in(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    const char *const names[3][2] = {{"x", "w"}, {"dy", "w"}, {"x", "dy"}};
    int k = G->op->kind == DN_OP_CONV2D ? 0 : G->op->kind == DN_OP_CONV2D_BWD_DATA ? 1 : 2;
    dn_gk_ptr(G, 0, "float", names[k][0]);
    dn_gk_ptr(G, 1, "float", names[k][1]);
}

static void fwd_params_out(DnGpuGen *G, const DnGkGemm *g)
{
    if (((const Conv *)g->ctx)->bias) dn_gk_ptr(G, 2, "float", "bias");
    dn_gk_ptr(G, G->op->nin, "float", "y");
}

static void fwd_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    split_batch(G, "gm", c->OH, c->OW, "b_", "oh", "ow", "p_");
    split_static(G, "gk", c->KH, c->KW, "ci", "kh", "kw", "q_");
    input_pixel(G, c);
    read_x(G, c);
}

static void fwd_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    dn_gk_line(G, "v = w[(bz * %lld + gj) * %lld + gk];", ll(c->Og), ll(c->Cg * taps(c)));
}

static void fwd_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t P = c->OH * c->OW;
    dn_gk_line(G, "i64 o = bz * %lld + gj, b_ = gm / %lld, p_ = gm - b_ * %lld;", ll(c->Og), ll(P), ll(P));
    if (c->bias) dn_gk_line(G, "v += bias[o];");
    if (c->relu) dn_gk_line(G, "v = v < 0.0f ? 0.0f : v;");            /* NaN stays NaN, as on the CPU */
    int64_t item = dn_plan_item_stride(G->l->plan, G->op->out[0]) / 4; /* O * P, or a concat's (in place) */
    dn_gk_line(G, "y[b_ * %lld + o * %lld + p_] = v;", ll(item), ll(P));
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
                  .params_in = conv_params_in,
                  .params_out = fwd_params_out,
                  .load_a = fwd_load_a,
                  .load_b = fwd_load_b,
                  .store = fwd_store,
                  .ctx = c};
    over_batch(c, c->OH * c->OW, &g.m_n, &g.m_b);
    dn_gk_gemm_plan(&g);
    return g;
}

DN_GK_GEMM_OP(conv2d, Conv, fwd_gemm)

/* ---- conv2d_bwd_data -------------------------------------------------------- */

static int64_t gcd(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* The phase geometry of axis 'ax' (Conv.hq, step, tq). */
static void phases(Conv *c, int ax)
{
    int64_t s = c->s[ax], d = c->d[ax], p = c->p[ax], k = ax ? c->KW : c->KH;
    c->hq[ax] = ((ax ? c->W : c->H) + s - 1) / s;
    c->step[ax] = s / gcd(s, d);
    c->tq[ax] = 0;
    for (int64_t r = 0; r < s; r++) {
        int64_t first = 0;
        while (first < k && ((r + p - first * d) % s + s) % s != 0) first++;
        int64_t cnt = first < k ? (k - 1 - first) / c->step[ax] + 1 : 0;
        if (cnt > c->tq[ax]) c->tq[ax] = cnt;
    }
}

static void data_params_out(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 2, "float", "dx");
}

/* Per group: g (the conv group), the phase (rh, rw) and its first taps (fh, fw). */
static void data_prologue(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t sh = c->s[0], sw = c->s[1];
    dn_gk_line(G, "i64 g = bz / %lld;", ll(sh * sw));
    dn_gk_line(G, "int rh = (int)(bz / %lld %% %lld), rw = (int)(bz %% %lld);", ll(sw), ll(sh), ll(sw));
    const char *ax[2][3] = {{"fh", "rh", "KH"}, {"fw", "rw", "KW"}};
    for (int a = 0; a < 2; a++) {
        dn_gk_line(G, "int %s = 0;", ax[a][0]);
        if (c->s[a] > 1)
            dn_gk_line(G, "while (%s < %lld && (%s + %lld - %s * %lld) %% %lld != 0) %s++;", ax[a][0],
                       ll(a ? c->KW : c->KH), ax[a][1], ll(c->p[a]), ax[a][0], ll(c->d[a]), ll(c->s[a]), ax[a][0]);
    }
}

/* int oc, kh, kw of gk = (oc, the phase's tap th, tw). */
static void data_tap(DnGpuGen *G, const Conv *c)
{
    dn_gk_line(G, "int q_ = (int)gk, oc = q_ / %lld;", ll(c->tq[0] * c->tq[1]));
    dn_gk_line(G, "int kh = fh + %lld * (q_ %% %lld / %lld), kw = fw + %lld * (q_ %% %lld);", ll(c->step[0]),
               ll(c->tq[0] * c->tq[1]), ll(c->tq[1]), ll(c->step[1]), ll(c->tq[1]));
}

/* The test that the tap exists (a phase may have fewer than tq). */
static void tap_ok(const Conv *c, char *t, size_t cap)
{
    *t = 0;
    if (c->s[0] > 1) snprintf(t, cap, "kh < %lld", ll(c->KH));
    if (c->s[1] > 1) snprintf(t + strlen(t), cap - strlen(t), "%skw < %lld", *t ? " && " : "", ll(c->KW));
}

/* i64 b_; int ih, iw: the input pixel of row gm of the phase; 'inside'
 * gets the test that it exists (the last rows of a phase may not). */
static void data_pixel(DnGpuGen *G, const Conv *c, char *inside, size_t cap)
{
    split_batch(G, "gm", c->hq[0], c->hq[1], "b_", "qh", "qw", "p_");
    dn_gk_line(G, "int ih = rh + %lld * qh, iw = rw + %lld * qw;", ll(c->s[0]), ll(c->s[1]));
    *inside = 0;
    if (c->H % c->s[0]) snprintf(inside, cap, "ih < %lld", ll(c->H));
    if (c->W % c->s[1])
        snprintf(inside + strlen(inside), cap - strlen(inside), "%siw < %lld", *inside ? " && " : "", ll(c->W));
}

static void data_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    char cond[320], t[96];
    data_pixel(G, c, cond, sizeof cond);
    data_tap(G, c);
    dn_gk_line(G, "int th = ih + (%lld - kh * %lld), tw = iw + (%lld - kw * %lld);", ll(c->p[0]), ll(c->d[0]),
               ll(c->p[1]), ll(c->d[1]));
    tap_ok(c, t, sizeof t);
    snprintf(cond + strlen(cond), sizeof cond - strlen(cond), "%s%s%sth >= 0 && th < %lld && tw >= 0 && tw < %lld",
             *cond ? " && " : "", t, *t ? " && " : "", ll(c->OH * c->s[0]), ll(c->OW * c->s[1]));
    dn_gk_line(G, "if (%s) /* th, tw: multiples of the strides by the phase's taps */", cond);
    dn_gk_line(G, "    v = dy[((b_ * %lld + g * %lld + oc) * %lld + th / %lld) * %lld + tw / %lld];", ll(c->O),
               ll(c->Og), ll(c->OH), ll(c->s[0]), ll(c->OW), ll(c->s[1]));
}

static void data_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    char t[96];
    data_tap(G, c);
    tap_ok(c, t, sizeof t);
    dn_gk_line(G, "if (%s)", *t ? t : "1");
    dn_gk_line(G, "    v = w[((g * %lld + oc) * %lld + gj) * %lld + kh * %lld + kw];", ll(c->Og), ll(c->Cg),
               ll(taps(c)), ll(c->KW));
}

static void data_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    char cond[96];
    data_pixel(G, c, cond, sizeof cond);
    dn_gk_line(G, "if (%s)", *cond ? cond : "1");
    dn_gk_line(G, "    dx[((b_ * %lld + g * %lld + gj) * %lld + ih) * %lld + iw] = v;", ll(c->C), ll(c->Cg), ll(c->H),
               ll(c->W));
}

static DnGkGemm data_gemm(const DnOp *op, Conv *c)
{
    *c = conv_of(op, op->out[0], op->in[1], op->in[0]);
    phases(c, 0), phases(c, 1);
    DnGkGemm g = {.k_b = c->Og * c->tq[0] * c->tq[1],
                  .cols = c->Cg,
                  .batch_b = c->G * c->s[0] * c->s[1],
                  .a_m_fast = true,
                  .c_m_fast = true,
                  .params_in = conv_params_in,
                  .params_out = data_params_out,
                  .prologue = data_prologue,
                  .load_a = data_load_a,
                  .load_b = data_load_b,
                  .store = data_store,
                  .ctx = c};
    over_batch(c, c->hq[0] * c->hq[1], &g.m_n, &g.m_b);
    dn_gk_gemm_plan(&g);
    return g;
}

DN_GK_GEMM_OP(conv2d_bwd_data, Conv, data_gemm)

/* ---- conv2d_bwd_filter ------------------------------------------------------ */

static void filter_params_out(DnGpuGen *G, const DnGkGemm *g)
{
    (void)g;
    dn_gk_ptr(G, 2, "float", "dw");
}

static void filter_load_a(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    int64_t P = c->OH * c->OW;
    dn_gk_line(G, "i64 b_ = gk / %lld;", ll(P));
    dn_gk_line(G, "v = dy[(b_ * %lld + bz * %lld + gm) * %lld + (gk - b_ * %lld)];", ll(c->O), ll(c->Og), ll(P), ll(P));
}

static void filter_load_b(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    split_batch(G, "gk", c->OH, c->OW, "b_", "oh", "ow", "p_");
    split_static(G, "gj", c->KH, c->KW, "ci", "kh", "kw", "q_");
    input_pixel(G, c);
    read_x(G, c);
}

static void filter_store(DnGpuGen *G, const DnGkGemm *g)
{
    const Conv *c = g->ctx;
    dn_gk_line(G, "dw[(bz * %lld + gm) * %lld + gj] = v;", ll(c->Og), ll(c->Cg * taps(c)));
}

static DnGkGemm filter_gemm(const DnOp *op, Conv *c)
{
    *c = conv_of(op, op->in[0], op->out[0], op->in[1]);
    DnGkGemm g = {.m_b = c->Og,
                  .cols = c->Cg * taps(c),
                  .batch_b = c->G,
                  .params_in = conv_params_in,
                  .params_out = filter_params_out,
                  .load_a = filter_load_a,
                  .load_b = filter_load_b,
                  .store = filter_store,
                  .ctx = c};
    over_batch(c, c->OH * c->OW, &g.k_n, &g.k_b);
    dn_gk_gemm_plan(&g);
    return g;
}

DN_GK_GEMM_OP(conv2d_bwd_filter, Conv, filter_gemm)

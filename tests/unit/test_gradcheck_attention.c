/* test_gradcheck_attention.c -- the gradient of attention (Luong dot and
 * general, Bahdanau additive; with and without a mask; a 2-d query; the
 * weights as an output) against central finite differences in double, with
 * the shared harness (support/gradcheck.h).  attention is lowered from
 * existing ops, so this checks that lowering composes their gradients
 * right: dense layers in front of the query, keys and values put
 * parameters on every operand.
 *
 * Masks: the harness's i32 input is the lengths len in [0, 4) of keys
 * [N, 4, .]; the mask is 1 - sequence_mask(len, max_len=4), which keeps the
 * keys t >= len, so every row keeps at least key 3 and some rows mask
 * keys (a row with every key masked has weights near uniform only through
 * f32 rounding, which a double reference does not follow).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ref_grad.h"

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }

#define TRAIN_MSE(out, tshape)                                                                                         \
    "train m {\n  t: f32" tshape "\n  loss = mse(" out ", t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n"

/* The scoring of one case: kind 'd' dot, 'g' general (w [D, Dk]), 'a'
 * additive (wq [U, D], wk [U, Dk], v [1, U]). */
typedef struct Kind {
    char kind;
    bool scale;
    int64_t units;
    const double *w, *wq, *wk, *v;
} Kind;

/* context [n, tq, dv] and weights [n, tq, tk] of q [n, tq, dq] over k
 * [n, tk, dk], values [n, tk, dv]; keep [n, tk] (1 = keep) or NULL. */
static void attend(const Kind *kd, int64_t n, int64_t tq, int64_t tk, int64_t dq, int64_t dk, int64_t dv,
                   const double *q, const double *k, const double *val, const double *keep, double *ctx, double *wt)
{
    double *s = buf(n * tq * tk);
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < tq; i++)
            for (int64_t j = 0; j < tk; j++) {
                const double *qi = q + (b * tq + i) * dq, *kj = k + (b * tk + j) * dk;
                double z = 0;
                if (kd->kind == 'd')
                    for (int64_t d = 0; d < dq; d++) z += qi[d] * kj[d];
                else if (kd->kind == 'g')
                    for (int64_t d = 0; d < dq; d++)
                        for (int64_t e = 0; e < dk; e++) z += qi[d] * kd->w[d * dk + e] * kj[e];
                else
                    for (int64_t u = 0; u < kd->units; u++) {
                        double h = 0;
                        for (int64_t d = 0; d < dq; d++) h += kd->wq[u * dq + d] * qi[d];
                        for (int64_t e = 0; e < dk; e++) h += kd->wk[u * dk + e] * kj[e];
                        z += kd->v[u] * tanh(h);
                    }
                if (kd->scale) z /= sqrt((double)dq);
                if (keep) z += (keep[b * tk + j] - 1) * 1e9;
                s[(b * tq + i) * tk + j] = z;
            }
    rg_softmax(n * tq, tk, 1, s, wt, 0);
    for (int64_t b = 0; b < n; b++)
        rg_matmul(1, tq, tk, dv, wt + b * tq * tk, 0, val + b * tk * dv, 0, 1, ctx + b * tq * dv);
    free(s);
}

/* 1 - sequence_mask(len, max_len=4): keys t >= len[b] kept */
static double *keep_from(const Gc *g)
{
    double *m = buf(g->n * 4);
    for (int64_t b = 0; b < g->n; b++)
        for (int64_t t = 0; t < 4; t++) m[b * 4 + t] = t < g->label[b] ? 0 : 1;
    return m;
}

#define MASK "1 - sequence_mask(len, max_len=4)"

/* ---- dot, scaled, no mask: q [N, 2, 3] = dense(xq), k = dense(xk), v = dense(xk) ---- */

static double loss_dot(const Gc *g)
{
    int64_t n = g->n;
    double *q = buf(n * 6), *k = buf(n * 12), *v = buf(n * 8), *c = buf(n * 4), *w = buf(n * 8);
    rg_dense(n * 2, 3, 3, g->in[0], g->p[0], g->p[1], q);
    rg_dense(n * 4, 3, 3, g->in[1], g->p[2], NULL, k);
    rg_dense(n * 4, 3, 2, g->in[1], g->p[3], NULL, v);
    Kind kd = {.kind = 'd', .scale = true};
    attend(&kd, n, 2, 4, 3, 3, 2, q, k, v, NULL, c, w);
    double l = rg_mse(n * 4, c, g->in[2]);
    free(q), free(k), free(v), free(c), free(w);
    return l;
}

static const GcCase case_dot = {
    "dot_scaled",
    "model m(xq: f32[N, 2, 3], xk: f32[N, 4, 3]) -> (y: f32[N, 2, 2]) {\n"
    "  y = attention(xq |> qp: dense(3), xk |> kp: dense(3, bias=false), xk |> vp: dense(2, bias=false),"
    " scale=true)\n}\n" TRAIN_MSE("y", "[N, 2, 2]"),
    3,
    3,
    {6, 12, 4},
    0,
    4,
    {"qp.weight", "qp.bias", "kp.weight", "vp.weight"},
    loss_dot};

/* ---- dot with a mask and a 2-d query: q [N, 3] = dense(x[:, 0]), k = dense(x), v = x ---- */

static double loss_dot_mask(const Gc *g)
{
    int64_t n = g->n;
    double *x0 = buf(n * 3), *q = buf(n * 3), *k = buf(n * 12), *c = buf(n * 3), *w = buf(n * 4), *m = keep_from(g);
    for (int64_t b = 0; b < n; b++) memcpy(x0 + b * 3, g->in[0] + b * 12, 3 * sizeof(double));
    rg_dense(n, 3, 3, x0, g->p[0], NULL, q);
    rg_dense(n * 4, 3, 3, g->in[0], g->p[1], NULL, k);
    Kind kd = {.kind = 'd'};
    attend(&kd, n, 1, 4, 3, 3, 3, q, k, g->in[0], m, c, w);
    double l = rg_mse(n * 3, c, g->in[2]);
    free(x0), free(q), free(k), free(c), free(w), free(m);
    return l;
}

static const GcCase case_dot_mask = {
    "dot_mask_step",
    "model m(x: f32[N, 4, 3], len: i32[N]) -> (y: f32[N, 3]) {\n"
    "  y = attention(x[:, 0] |> qp: dense(3, bias=false), x |> kp: dense(3, bias=false), x, mask=" MASK
    ")\n}\n" TRAIN_MSE("y", "[N, 3]"),
    5,
    3,
    {12, 0, 3},
    4,
    2,
    {"qp.weight", "kp.weight"},
    loss_dot_mask};

/* ---- general, no mask: q [N, 2, 3] = dense(xq), keys = values = xk [N, 4, 5] ---- */

static double loss_general(const Gc *g)
{
    int64_t n = g->n;
    double *q = buf(n * 6), *c = buf(n * 10), *w = buf(n * 8);
    rg_dense(n * 2, 3, 3, g->in[0], g->p[0], g->p[1], q);
    Kind kd = {.kind = 'g', .w = g->p[2]};
    attend(&kd, n, 2, 4, 3, 5, 5, q, g->in[1], g->in[1], NULL, c, w);
    double l = rg_mse(n * 10, c, g->in[2]);
    free(q), free(c), free(w);
    return l;
}

static const GcCase case_general = {
    "general",
    "model m(xq: f32[N, 2, 3], xk: f32[N, 4, 5]) -> (y: f32[N, 2, 5]) {\n"
    "  y = a: attention(xq |> qp: dense(3), xk, kind=\"general\")\n}\n" TRAIN_MSE("y", "[N, 2, 5]"),
    3,
    3,
    {6, 20, 10},
    0,
    3,
    {"qp.weight", "qp.bias", "a.weight"},
    loss_general};

/* ---- general with a mask: q [N, 4, 3] = dense(x), keys = values = dense(x) [N, 4, 5] ---- */

static double loss_general_mask(const Gc *g)
{
    int64_t n = g->n;
    double *q = buf(n * 12), *k = buf(n * 20), *c = buf(n * 20), *w = buf(n * 16), *m = keep_from(g);
    rg_dense(n * 4, 5, 3, g->in[0], g->p[0], NULL, q);
    rg_dense(n * 4, 5, 5, g->in[0], g->p[1], NULL, k);
    Kind kd = {.kind = 'g', .w = g->p[2]};
    attend(&kd, n, 4, 4, 3, 5, 5, q, k, k, m, c, w);
    double l = rg_mse(n * 20, c, g->in[2]);
    free(q), free(k), free(c), free(w), free(m);
    return l;
}

static const GcCase case_general_mask = {
    "general_mask",
    "model m(x: f32[N, 4, 5], len: i32[N]) -> (y: f32[N, 4, 5]) {\n"
    "  k = x |> kp: dense(5, bias=false)\n"
    "  y = a: attention(x |> qp: dense(3, bias=false), k, kind=\"general\", mask=" MASK
    ")\n}\n" TRAIN_MSE("y", "[N, 4, 5]"),
    4,
    3,
    {20, 0, 20},
    4,
    3,
    {"qp.weight", "kp.weight", "a.weight"},
    loss_general_mask};

/* ---- additive, no mask: query xq [N, 2, 3], keys = values = xk [N, 4, 5], units 4 ---- */

static double loss_additive(const Gc *g)
{
    int64_t n = g->n;
    double *c = buf(n * 10), *w = buf(n * 8);
    Kind kd = {.kind = 'a', .units = 4, .wq = g->p[0], .wk = g->p[1], .v = g->p[2]};
    attend(&kd, n, 2, 4, 3, 5, 5, g->in[0], g->in[1], g->in[1], NULL, c, w);
    double l = rg_mse(n * 10, c, g->in[2]);
    free(c), free(w);
    return l;
}

static const GcCase case_additive = {
    "additive",
    "model m(xq: f32[N, 2, 3], xk: f32[N, 4, 5]) -> (y: f32[N, 2, 5]) {\n"
    "  y = a: attention(xq, xk, kind=\"additive\", units=4)\n}\n" TRAIN_MSE("y", "[N, 2, 5]"),
    3,
    3,
    {6, 20, 10},
    0,
    3,
    {"a.query_proj.weight", "a.key_proj.weight", "a.v.weight"},
    loss_additive};

/* ---- additive with a mask and a 2-d query: q [N, 3] = dense(x[:, 0]), keys = values = x [N, 4, 5] ---- */

static double loss_additive_mask(const Gc *g)
{
    int64_t n = g->n;
    double *x0 = buf(n * 5), *q = buf(n * 3), *c = buf(n * 5), *w = buf(n * 4), *m = keep_from(g);
    for (int64_t b = 0; b < n; b++) memcpy(x0 + b * 5, g->in[0] + b * 20, 5 * sizeof(double));
    rg_dense(n, 5, 3, x0, g->p[0], NULL, q);
    Kind kd = {.kind = 'a', .units = 4, .wq = g->p[1], .wk = g->p[2], .v = g->p[3]};
    attend(&kd, n, 1, 4, 3, 5, 5, q, g->in[0], g->in[0], m, c, w);
    double l = rg_mse(n * 5, c, g->in[2]);
    free(x0), free(q), free(c), free(w), free(m);
    return l;
}

static const GcCase case_additive_mask = {
    "additive_mask_step",
    "model m(x: f32[N, 4, 5], len: i32[N]) -> (y: f32[N, 5]) {\n"
    "  y = a: attention(x[:, 0] |> qp: dense(3, bias=false), x, kind=\"additive\", units=4, mask=" MASK
    ")\n}\n" TRAIN_MSE("y", "[N, 5]"),
    5,
    3,
    {20, 0, 5},
    4,
    4,
    {"qp.weight", "a.query_proj.weight", "a.key_proj.weight", "a.v.weight"},
    loss_additive_mask};

/* ---- the weights as the output (return_weights=true): dot with a mask, loss on the weights ---- */

static double loss_weights(const Gc *g)
{
    int64_t n = g->n;
    double *q = buf(n * 12), *k = buf(n * 12), *c = buf(n * 12), *w = buf(n * 16), *m = keep_from(g);
    rg_dense(n * 4, 3, 3, g->in[0], g->p[0], NULL, q);
    rg_dense(n * 4, 3, 3, g->in[0], g->p[1], NULL, k);
    Kind kd = {.kind = 'd'};
    attend(&kd, n, 4, 4, 3, 3, 3, q, k, g->in[0], m, c, w);
    double l = rg_mse(n * 16, w, g->in[2]);
    free(q), free(k), free(c), free(w), free(m);
    return l;
}

static const GcCase case_weights = {
    "weights_output",
    "model m(x: f32[N, 4, 3], len: i32[N]) -> (w: f32[N, 4, 4]) {\n"
    "  r = attention(x |> qp: dense(3, bias=false), x |> kp: dense(3, bias=false), x, mask=" MASK
    ", return_weights=true)\n"
    "  w = r[1]\n}\n" TRAIN_MSE("w", "[N, 4, 4]"),
    4,
    3,
    {12, 0, 16},
    4,
    2,
    {"qp.weight", "kp.weight"},
    loss_weights};

/* scaled_dot_product_attention over 2 heads of x [n, 2, 4, 3]: q = x * a,
   k = x + b, v = x * c; y = sdpa(q, k, v, is_causal=true) */
static double loss_sdpa(const Gc *g)
{
    int64_t n = g->n;
    const double *a = g->p[0], *b = g->p[1], *c = g->p[2];
    double s = 0;
    for (int64_t it = 0; it < n; it++)
        for (int h = 0; h < 2; h++) {
            const double *x = g->in[0] + (it * 2 + h) * 12, *t = g->in[1] + (it * 2 + h) * 12;
            const double *ah = a + h * 12, *bh = b + h * 12, *ch = c + h * 12;
            for (int i = 0; i < 4; i++) {
                double sc[4], m = -INFINITY, z = 0;
                for (int j = 0; j <= i; j++) { /* causal: keys 0..i */
                    sc[j] = 0;
                    for (int d = 0; d < 3; d++) sc[j] += x[i * 3 + d] * ah[i * 3 + d] * (x[j * 3 + d] + bh[j * 3 + d]);
                    sc[j] /= sqrt(3.0);
                    m = fmax(m, sc[j]);
                }
                for (int j = 0; j <= i; j++) z += exp(sc[j] - m);
                for (int d = 0; d < 3; d++) {
                    double y = 0;
                    for (int j = 0; j <= i; j++) y += exp(sc[j] - m) / z * x[j * 3 + d] * ch[j * 3 + d];
                    s += (y - t[i * 3 + d]) * (y - t[i * 3 + d]) / (double)(n * 24);
                }
            }
        }
    return s;
}

static const GcCase case_sdpa = {
    "sdpa_causal",
    "model m(x: f32[N, 2, 4, 3]) -> (y: f32[N, 2, 4, 3]) {\n"
    "  param a: f32[2, 4, 3] = normal(std=1)\n  param b: f32[2, 4, 3] = normal(std=1)\n"
    "  param c: f32[2, 4, 3] = normal(std=1)\n"
    "  y = scaled_dot_product_attention(x * a, x + b, x * c, is_causal=true)\n}\n"
    "train m {\n  t: f32[N, 2, 4, 3]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {24, 24},
    0,
    3,
    {"a", "b", "c"},
    loss_sdpa};

Test(gradcheck_attention, dot_scaled) { dn_gradcheck(&case_dot); }
Test(gradcheck_attention, sdpa_causal) { dn_gradcheck(&case_sdpa); }
Test(gradcheck_attention, dot_mask_step) { dn_gradcheck(&case_dot_mask); }
Test(gradcheck_attention, general) { dn_gradcheck(&case_general); }
Test(gradcheck_attention, general_mask) { dn_gradcheck(&case_general_mask); }
Test(gradcheck_attention, additive) { dn_gradcheck(&case_additive); }
Test(gradcheck_attention, additive_mask_step) { dn_gradcheck(&case_additive_mask); }
Test(gradcheck_attention, weights_output) { dn_gradcheck(&case_weights); }

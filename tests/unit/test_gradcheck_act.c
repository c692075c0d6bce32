/* test_gradcheck_act.c -- the gradients of leaky_relu, elu, gelu (both
 * approximations), adaptive_avgpool2d and adaptive_maxpool2d against
 * central finite differences in double (the harness: support/gradcheck.h).
 *
 * Each case puts raw parameters in front of the ops (x * p, x + q), so the
 * checked gradients of p and q go back through every backward op; the
 * references below recompute the loss in double.  Random inputs keep the
 * activations' kinks at 0 and the max pool's ties out of finite-difference
 * reach.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "gradcheck.h"

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }

/* mean over n of (y - t)^2, freeing y */
static double mse_free(double *y, const double *t, int64_t n)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (y[i] - t[i]) * (y[i] - t[i]);
    free(y);
    return s / (double)n;
}

static double leaky(double x, double slope) { return x >= 0 ? x : slope * x; }
static double elu(double x, double alpha) { return x > 0 ? x : alpha * expm1(x); }
static double gelu(double x) { return 0.5 * x * (1 + erf(x / sqrt(2.0))); }
static double gelu_tanh(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

#define TRAIN_MSE(out, tshape)                                                                                         \
    "train m {\n  t: f32" tshape "\n  loss = mse(" out ", t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n"

/* ---- activations ----------------------------------------------------------- */

static double loss_leaky_elu(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 12);
    for (int64_t i = 0; i < n * 12; i++) {
        double x = g->in[0][i], p = g->p[0][i % 12], q = g->p[1][i % 12];
        y[i] = leaky(x * p, 0.1) + leaky(x + q, -0.2) + elu(x * p, 0.7) + elu(x - q, 1.0);
    }
    return mse_free(y, g->in[1], n * 12);
}

static const GcCase case_leaky_elu = {
    "leaky_relu_elu",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 4]) {\n  param p: f32[3, 4] = normal(std=2)\n"
    "  param q: f32[3, 4] = normal(std=1)\n"
    "  y = leaky_relu(x * p, negative_slope=0.1) + leaky_relu(x + q, negative_slope=-0.2)"
    " + elu(x * p, alpha=0.7) + elu(x - q)\n}\n" TRAIN_MSE("y", "[N, 3, 4]"),
    4,
    2,
    {12, 12},
    0,
    2,
    {"p", "q"},
    loss_leaky_elu};

static double loss_gelu(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 7);
    for (int64_t i = 0; i < n * 7; i++) {
        double x = g->in[0][i], p = g->p[0][i % 7], q = g->p[1][i % 7];
        y[i] = gelu(x * p) + gelu_tanh(x + q);
    }
    return mse_free(y, g->in[1], n * 7);
}

static const GcCase case_gelu = {"gelu_none_tanh",
                                 "model m(x: f32[N, 7]) -> (y: f32[N, 7]) {\n  param p: f32[7] = normal(std=3)\n"
                                 "  param q: f32[7] = normal(std=2)\n"
                                 "  y = gelu(x * p) + gelu(x + q, approximate=\"tanh\")\n}\n" TRAIN_MSE("y", "[N, 7]"),
                                 4,
                                 2,
                                 {7, 7},
                                 0,
                                 2,
                                 {"p", "q"},
                                 loss_gelu};

/* ---- adaptive pooling ------------------------------------------------------ */

/* PyTorch's adaptive pooling of 'planes' planes H x W to OH x OW, in double. */
static void ref_adaptive(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool is_max, const double *x,
                         double *y)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                int64_t h0 = i * H / OH, h1 = ((i + 1) * H + OH - 1) / OH;
                int64_t w0 = j * W / OW, w1 = ((j + 1) * W + OW - 1) / OW;
                double acc = is_max ? -INFINITY : 0;
                for (int64_t a = h0; a < h1; a++)
                    for (int64_t b = w0; b < w1; b++) {
                        double v = x[(p * H + a) * W + b];
                        acc = is_max ? (v > acc ? v : acc) : acc + v;
                    }
                y[(p * OH + i) * OW + j] = is_max ? acc : acc / (double)((h1 - h0) * (w1 - w0));
            }
}

/* x [N, 2, 7, 5]: y = avg + max of x * p pooled to 3x2 (uneven windows), z = avg + max of x + q
 * pooled to 4x6 (wider than the input: repeated cells). */
static double loss_adaptive(const Gc *g)
{
    int64_t n = g->n, planes = n * 2;
    double *s = buf(n * 70), *r = buf(n * 70);
    for (int64_t i = 0; i < n * 70; i++) s[i] = g->in[0][i] * g->p[0][i % 70], r[i] = g->in[0][i] + g->p[1][i % 70];
    double *a = buf(n * 12), *m = buf(n * 12), *b = buf(n * 48), *k = buf(n * 48);
    ref_adaptive(planes, 7, 5, 3, 2, false, s, a);
    ref_adaptive(planes, 7, 5, 3, 2, true, s, m);
    ref_adaptive(planes, 7, 5, 4, 6, false, r, b);
    ref_adaptive(planes, 7, 5, 4, 6, true, r, k);
    for (int64_t i = 0; i < n * 12; i++) a[i] += m[i];
    for (int64_t i = 0; i < n * 48; i++) b[i] += k[i];
    double l = mse_free(a, g->in[1], n * 12) + mse_free(b, g->in[2], n * 48);
    free(s), free(r), free(m), free(k);
    return l;
}

static const GcCase case_adaptive = {
    "adaptive_avg_max",
    "model m(x: f32[N, 2, 7, 5]) -> (y: f32[N, 2, 3, 2], z: f32[N, 2, 4, 6]) {\n"
    "  param p: f32[2, 7, 5] = normal(std=1)\n  param q: f32[2, 7, 5] = normal(std=1)\n"
    "  s = x * p\n  r = x + q\n"
    "  y = adaptive_avgpool(s, [3, 2]) + adaptive_maxpool(s, [3, 2])\n"
    "  z = adaptive_avgpool(r, [4, 6]) + adaptive_maxpool(r, [4, 6])\n}\n"
    "train m {\n  t: f32[N, 2, 3, 2]\n  u: f32[N, 2, 4, 6]\n  loss = mse(y, t) + mse(z, u)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {70, 12, 48},
    0,
    2,
    {"p", "q"},
    loss_adaptive};

/* 5x5 -> 3x3 (PyTorch's overlapping 5 -> 3 windows [0,2) [1,4) [3,5)) */
static double loss_adaptive_5to3(const Gc *g)
{
    int64_t n = g->n, planes = n * 3;
    double *s = buf(n * 75);
    for (int64_t i = 0; i < n * 75; i++) s[i] = g->in[0][i] * g->p[0][i % 75];
    double *a = buf(n * 27), *m = buf(n * 27);
    ref_adaptive(planes, 5, 5, 3, 3, false, s, a);
    ref_adaptive(planes, 5, 5, 3, 3, true, s, m);
    for (int64_t i = 0; i < n * 27; i++) a[i] = a[i] * 2 - m[i];
    free(s), free(m);
    return mse_free(a, g->in[1], n * 27);
}

static const GcCase case_adaptive_5to3 = {
    "adaptive_5to3",
    "model m(x: f32[N, 3, 5, 5]) -> (y: f32[N, 3, 3, 3]) {\n  param p: f32[3, 5, 5] = normal(std=1)\n"
    "  s = x * p\n  y = adaptive_avgpool(s, 3) * 2.0 - adaptive_maxpool(s, 3)\n}\n" TRAIN_MSE("y", "[N, 3, 3, 3]"),
    2,
    2,
    {75, 27},
    0,
    1,
    {"p"},
    loss_adaptive_5to3};

Test(gradcheck_act, leaky_relu_elu) { dn_gradcheck(&case_leaky_elu); }
Test(gradcheck_act, gelu) { dn_gradcheck(&case_gelu); }
Test(gradcheck_act, adaptive_pool) { dn_gradcheck(&case_adaptive); }
Test(gradcheck_act, adaptive_pool_5to3) { dn_gradcheck(&case_adaptive_5to3); }

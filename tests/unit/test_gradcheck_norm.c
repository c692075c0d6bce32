/* test_gradcheck_norm.c -- the gradients of layernorm (layernorm_bwd and
 * layernorm_bwd_params) against central finite differences in double (the
 * harness: support/gradcheck.h): over the last axis with the affine, and
 * over the last two without it, each behind a raw parameter (x * p, x + q)
 * so the checked gradients of p and q go back through layernorm_bwd with
 * and without a weight, and those of the affine through
 * layernorm_bwd_params.  The reference recomputes the loss in double.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>

#include "gradcheck.h"

/* y[i] = (v[i] - mean) / sqrt(var + eps) * w[i] + b[i] over one row of d (w, b NULL: none). */
static void ln_row(const double *v, int64_t d, double eps, const double *w, const double *b, double *y)
{
    double m = 0, q = 0;
    for (int64_t i = 0; i < d; i++) m += v[i];
    m /= (double)d;
    for (int64_t i = 0; i < d; i++) q += (v[i] - m) * (v[i] - m);
    double r = 1 / sqrt(q / (double)d + eps);
    for (int64_t i = 0; i < d; i++) y[i] = (v[i] - m) * r * (w ? w[i] : 1) + (b ? b[i] : 0);
}

/* x [n, 3, 4]: y = ln(x * p) over the last axis (weight, bias), z = layernorm(x + q, dims=2) (no affine) */
static double loss_layernorm(const Gc *g)
{
    int64_t n = g->n;
    const double *p = g->p[0], *q = g->p[1], *w = g->p[2], *b = g->p[3];
    double s = 0, v[12], y[12];
    for (int64_t k = 0; k < n; k++) {
        const double *x = g->in[0] + k * 12, *ty = g->in[1] + k * 12, *tz = g->in[2] + k * 12;
        for (int64_t r = 0; r < 3; r++) {
            for (int i = 0; i < 4; i++) v[i] = x[r * 4 + i] * p[r * 4 + i];
            ln_row(v, 4, 1e-5, w, b, y);
            for (int i = 0; i < 4; i++) s += (y[i] - ty[r * 4 + i]) * (y[i] - ty[r * 4 + i]) / (double)(n * 12);
        }
        for (int i = 0; i < 12; i++) v[i] = x[i] + q[i];
        ln_row(v, 12, 1e-5, NULL, NULL, y);
        for (int i = 0; i < 12; i++) s += (y[i] - tz[i]) * (y[i] - tz[i]) / (double)(n * 12);
    }
    return s;
}

static const GcCase case_layernorm = {
    "layernorm",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 4], z: f32[N, 3, 4]) {\n"
    "  param p: f32[3, 4] = normal(std=2)\n"
    "  param q: f32[3, 4] = normal(std=1)\n"
    "  y = (x * p) |> ln: layernorm\n"
    "  z = (x + q) |> layernorm(dims=2, elementwise_affine=false)\n}\n"
    "train m {\n  ty: f32[N, 3, 4]\n  tz: f32[N, 3, 4]\n  loss = mse(y, ty) + mse(z, tz)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {12, 12, 12},
    0,
    4,
    {"p", "q", "ln.weight", "ln.bias"},
    loss_layernorm};

Test(gradcheck_norm, layernorm) { dn_gradcheck(&case_layernorm); }

/* test_gradcheck_interp.c -- the gradients of interpolate (bilinear and
 * nearest, up and down) and of maxpool2d with ceil_mode against central
 * finite differences in double (the harness: support/gradcheck.h).
 *
 * Raw parameters sit in front of the ops (x * p, x + q), so the checked
 * gradients go back through interpolate_bwd and maxpool2d_bwd.  The
 * references recompute the loss in double, with interpolate's source cells
 * and weights in f32 exactly as ops.def states them (the op is linear in
 * x for fixed cells, so finite differences see exactly those weights).
 * Random inputs keep the max pool's ties out of finite-difference reach.
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

/* ---- interpolate ------------------------------------------------------------ */

/* Output index o of an axis (olen outputs over len cells): cells i0, i1 and weights w0, w1 (ops.def). */
static void source(int64_t o, int64_t len, int64_t olen, bool nearest, int64_t *i0, int64_t *i1, double *w0, double *w1)
{
    float scale = (float)len / (float)olen;
    if (nearest) {
        int64_t i = (int64_t)floorf((float)o * scale);
        *i0 = *i1 = i < len - 1 ? i : len - 1;
        *w0 = 1, *w1 = 0;
        return;
    }
    float s = scale * ((float)o + 0.5f) - 0.5f;
    if (s < 0) s = 0;
    *i0 = (int64_t)s;
    *i1 = *i0 < len - 1 ? *i0 + 1 : *i0;
    float l = s - (float)*i0;
    *w0 = 1.0f - l, *w1 = l;
}

/* Adds F.interpolate(x, [OH, OW]) of 'planes' H x W planes to y. */
static void ref_interp(int64_t planes, int64_t H, int64_t W, int64_t OH, int64_t OW, bool nearest, const double *x,
                       double *y)
{
    for (int64_t p = 0; p < planes; p++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                int64_t h[2], w[2];
                double a[2], b[2];
                source(i, H, OH, nearest, &h[0], &h[1], &a[0], &a[1]);
                source(j, W, OW, nearest, &w[0], &w[1], &b[0], &b[1]);
                double v = 0;
                for (int r = 0; r < 2; r++)
                    for (int c = 0; c < 2; c++) v += a[r] * b[c] * x[(p * H + h[r]) * W + w[c]];
                y[(p * OH + i) * OW + j] += v;
            }
}

/* x [N, 2, 5, 7]:  y = bilinear + nearest of x * p up to 8x11,  z = the same of x + q down to 3x4 */
static double loss_interp(const Gc *g)
{
    int64_t n = g->n, planes = n * 2;
    double *s = buf(n * 70), *r = buf(n * 70), *y = buf(n * 176), *z = buf(n * 24);
    for (int64_t i = 0; i < n * 70; i++) s[i] = g->in[0][i] * g->p[0][i % 70], r[i] = g->in[0][i] + g->p[1][i % 70];
    ref_interp(planes, 5, 7, 8, 11, false, s, y);
    ref_interp(planes, 5, 7, 8, 11, true, s, y);
    ref_interp(planes, 5, 7, 3, 4, false, r, z);
    ref_interp(planes, 5, 7, 3, 4, true, r, z);
    free(s), free(r);
    return mse_free(y, g->in[1], n * 176) + mse_free(z, g->in[2], n * 24);
}

static const GcCase case_interp = {
    "interpolate_up_down",
    "model m(x: f32[N, 2, 5, 7]) -> (y: f32[N, 2, 8, 11], z: f32[N, 2, 3, 4]) {\n"
    "  param p: f32[2, 5, 7] = normal(std=1)\n  param q: f32[2, 5, 7] = normal(std=1)\n"
    "  s = x * p\n  r = x + q\n"
    "  y = interpolate(s, [8, 11]) + interpolate(s, [8, 11], mode=\"nearest\")\n"
    "  z = interpolate(r, [3, 4], mode=\"bilinear\") + interpolate(r, [3, 4], mode=\"nearest\")\n}\n"
    "train m {\n  t: f32[N, 2, 8, 11]\n  u: f32[N, 2, 3, 4]\n  loss = mse(y, t) + mse(z, u)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {70, 176, 24},
    0,
    2,
    {"p", "q"},
    loss_interp};

/* ---- maxpool2d with ceil_mode ------------------------------------------------- */

/* PyTorch's ceil_mode extent (pooling_output_shape). */
static int64_t extent_ceil(int64_t len, int64_t k, int64_t s, int64_t p)
{
    int64_t o = (len + 2 * p - k + s - 1) / s + 1;
    return (o - 1) * s >= len + p ? o - 1 : o;
}

/* max pooling of 'planes' H x W planes, square kernel k, stride s, pad p, ceil_mode */
static void ref_maxpool_ceil(int64_t planes, int64_t H, int64_t W, int64_t k, int64_t s, int64_t p, const double *x,
                             double *y)
{
    int64_t OH = extent_ceil(H, k, s, p), OW = extent_ceil(W, k, s, p);
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double m = -INFINITY;
                for (int64_t a = i * s - p; a < i * s - p + k; a++)
                    for (int64_t b = j * s - p; b < j * s - p + k; b++)
                        if (a >= 0 && a < H && b >= 0 && b < W && x[(pl * H + a) * W + b] > m)
                            m = x[(pl * H + a) * W + b];
                y[(pl * OH + i) * OW + j] = m;
            }
}

/* x [N, 2, 8, 7]:  y = maxpool(x * p, 3, stride=2, pad=1, ceil) [5, 4] (floor: [4, 4]),
 * z = maxpool(x + q, 2, ceil) [4, 4] (floor: [4, 3]; the last column's windows hang over the edge) */
static double loss_maxpool_ceil(const Gc *g)
{
    int64_t n = g->n, planes = n * 2;
    double *s = buf(n * 112), *r = buf(n * 112), *y = buf(n * 40), *z = buf(n * 32);
    for (int64_t i = 0; i < n * 112; i++) s[i] = g->in[0][i] * g->p[0][i % 112], r[i] = g->in[0][i] + g->p[1][i % 112];
    ref_maxpool_ceil(planes, 8, 7, 3, 2, 1, s, y);
    ref_maxpool_ceil(planes, 8, 7, 2, 2, 0, r, z);
    free(s), free(r);
    return mse_free(y, g->in[1], n * 40) + mse_free(z, g->in[2], n * 32);
}

static const GcCase case_maxpool_ceil = {
    "maxpool_ceil_mode",
    "model m(x: f32[N, 2, 8, 7]) -> (y: f32[N, 2, 5, 4], z: f32[N, 2, 4, 4]) {\n"
    "  param p: f32[2, 8, 7] = normal(std=1)\n  param q: f32[2, 8, 7] = normal(std=1)\n"
    "  y = maxpool(x * p, 3, stride=2, pad=1, ceil_mode=true)\n"
    "  z = maxpool(x + q, 2, ceil_mode=true)\n}\n"
    "train m {\n  t: f32[N, 2, 5, 4]\n  u: f32[N, 2, 4, 4]\n  loss = mse(y, t) + mse(z, u)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {112, 40, 32},
    0,
    2,
    {"p", "q"},
    loss_maxpool_ceil};

Test(gradcheck_interp, interpolate_up_down) { dn_gradcheck(&case_interp); }
Test(gradcheck_interp, maxpool_ceil_mode) { dn_gradcheck(&case_maxpool_ceil); }

/* test_gradcheck_shape.c -- the shape family's gradient rules (concat,
 * slice and its slice_bwd, and the layers built from them: indexing,
 * split, chunk, stack; permute's transpose, expand's broadcast add) against central finite differences in double, with
 * the shared harness (support/gradcheck.h).  Raw params in front of the
 * ops carry the gradient; the reference losses index the inputs directly.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "gradcheck.h"
#include "ref_grad.h"

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }

static double mse_free(double *y, const double *t, int64_t n)
{
    double l = rg_mse(n, y, t);
    free(y);
    return l;
}

/* u = x * a [N,2,3]; v = x[:, 0:1, :] + b [N,3,3]; y = concat([u, v, u], axis=1) [N,7,3];
 * w = concat([q, r], axis=0) [3,3]; z = x @ w [N,2,3] */
static double loss_concat(const Gc *g)
{
    int64_t n = g->n;
    const double *x = g->in[0], *a = g->p[0], *b = g->p[1], *q = g->p[2], *r = g->p[3];
    double *y = buf(n * 21), *z = buf(n * 6);
    for (int64_t s = 0; s < n; s++) {
        const double *xs = x + s * 6;
        double *ys = y + s * 21, *zs = z + s * 6;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) ys[i * 3 + j] = ys[(5 + i) * 3 + j] = xs[i * 3 + j] * a[i * 3 + j];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++) ys[(2 + i) * 3 + j] = xs[j] + b[i * 3 + j];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                double acc = 0;
                for (int k = 0; k < 3; k++) acc += xs[i * 3 + k] * (k < 2 ? q[k * 3 + j] : r[j]);
                zs[i * 3 + j] = acc;
            }
    }
    return mse_free(y, g->in[1], n * 21) + mse_free(z, g->in[2], n * 6);
}

static const GcCase case_concat = {"concat",
                                   "model m(x: f32[N, 2, 3]) -> (y: f32[N, 7, 3], z: f32[N, 2, 3]) {\n"
                                   "  param a: f32[2, 3] = normal(std=1)\n  param b: f32[3, 3] = normal(std=1)\n"
                                   "  param q: f32[2, 3] = normal(std=1)\n  param r: f32[1, 3] = normal(std=1)\n"
                                   "  u = x * a\n  y = concat([u, x[:, 0:1, :] + b, u], axis=1)\n"
                                   "  z = x @ concat([q, r], axis=0)\n}\n"
                                   "train m {\n  t: f32[N, 7, 3]\n  tz: f32[N, 2, 3]\n  loss = mse(y, t) + mse(z, tz)\n"
                                   "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
                                   3,
                                   3,
                                   {6, 21, 6},
                                   0,
                                   4,
                                   {"a", "b", "q", "r"},
                                   loss_concat};

/* h = x * p [N,5,4]; y = h[:, -4::2, 1:] [N,2,3]; z = h[:, -1] [N,4] */
static double loss_slice(const Gc *g)
{
    int64_t n = g->n;
    const double *x = g->in[0], *p = g->p[0];
    double *y = buf(n * 6), *z = buf(n * 4);
    for (int64_t s = 0; s < n; s++) {
        const double *xs = x + s * 20;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++) {
                int r = 1 + 2 * i, c = 1 + j;
                y[s * 6 + i * 3 + j] = xs[r * 4 + c] * p[r * 4 + c];
            }
        for (int j = 0; j < 4; j++) z[s * 4 + j] = xs[16 + j] * p[16 + j];
    }
    return mse_free(y, g->in[1], n * 6) + mse_free(z, g->in[2], n * 4);
}

static const GcCase case_slice = {
    "slice",
    "model m(x: f32[N, 5, 4]) -> (y: f32[N, 2, 3], z: f32[N, 4]) {\n"
    "  param p: f32[5, 4] = normal(std=1)\n  h = x * p\n  y = h[:, -4::2, 1:]\n  z = h[:, -1]\n}\n"
    "train m {\n  t: f32[N, 2, 3]\n  tz: f32[N, 4]\n  loss = mse(y, t) + mse(z, tz)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {20, 6, 4},
    0,
    1,
    {"p"},
    loss_slice};

/* h = x * p [N,6]; s = split(h, [2, 4]); c = chunk(s[1], 2); y = stack([s[0], c[0], c[1]], axis=1) [N,3,2] */
static double loss_split(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 6);
    for (int64_t s = 0; s < n; s++)
        for (int j = 0; j < 6; j++) y[s * 6 + j] = g->in[0][s * 6 + j] * g->p[0][j];
    return mse_free(y, g->in[1], n * 6);
}

static const GcCase case_split = {
    "split_chunk_stack",
    "model m(x: f32[N, 6]) -> (y: f32[N, 3, 2]) {\n  param p: f32[6] = normal(std=1)\n"
    "  s = split(x * p, sizes=[2, 4], axis=1)\n  c = chunk(s[1], 2, axis=1)\n"
    "  y = stack([s[0], c[0], c[1]], axis=1)\n}\n"
    "train m {\n  t: f32[N, 3, 2]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    4,
    2,
    {6, 6},
    0,
    1,
    {"p"},
    loss_split};

/* x [n, 2, 3]: y = permute(x * a, 0, 2, 1) [n, 3, 2];
   w = concat([expand(k, -1, -1, 3), x + expand(c, 2, 3)], axis=1) [n, 3, 3]
   (k [1, 1, 1] to the batch and the width, c [1, 3] to two rows) */
static double loss_permute_expand(const Gc *g)
{
    int64_t n = g->n;
    const double *a = g->p[0], *c = g->p[1], *k = g->p[2];
    double s = 0;
    for (int64_t b = 0; b < n; b++) {
        const double *x = g->in[0] + b * 6, *ty = g->in[1] + b * 6, *tw = g->in[2] + b * 9;
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 2; j++) {
                double y = x[j * 3 + i] * a[j * 3 + i] - ty[i * 2 + j];
                s += y * y / (double)(n * 6);
            }
        for (int e = 0; e < 9; e++) {
            double w = (e < 3 ? k[0] : x[e - 3] + c[e % 3]) - tw[e];
            s += w * w / (double)(n * 9);
        }
    }
    return s;
}

static const GcCase case_permute_expand = {
    "permute_expand",
    "model m(x: f32[N, 2, 3]) -> (y: f32[N, 3, 2], w: f32[N, 3, 3]) {\n"
    "  param a: f32[2, 3] = normal(std=1)\n  param c: f32[1, 3] = normal(std=1)\n"
    "  param k: f32[1, 1, 1] = normal(std=1)\n"
    "  y = permute(x * a, 0, 2, 1)\n"
    "  w = concat([k |> expand(-1, -1, 3), x + (c |> expand(2, 3))], axis=1)\n}\n"
    "train m {\n  ty: f32[N, 3, 2]\n  tw: f32[N, 3, 3]\n"
    "  loss = mse(y, ty) + mse(w, tw)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    3,
    {6, 6, 9},
    0,
    3,
    {"a", "c", "k"},
    loss_permute_expand};

Test(gradcheck_shape, concat) { dn_gradcheck(&case_concat); }
Test(gradcheck_shape, permute_expand) { dn_gradcheck(&case_permute_expand); }
Test(gradcheck_shape, slice) { dn_gradcheck(&case_slice); }
Test(gradcheck_shape, split_chunk_stack) { dn_gradcheck(&case_split); }

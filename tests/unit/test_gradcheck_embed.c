/* test_gradcheck_embed.c -- the gradient rules of the embedding family
 * (embedding) against
 * central finite differences in double, with the shared harness
 * (support/gradcheck.h): the harness's i32 input holds the token ids or
 * the labels, in [0, nclasses) (in_item -T: T of them per batch item).
 *
 * padding_idx: PyTorch gives the padding row no gradient although the
 * forward reads it, so the reference treats that row as a constant: it
 * reads the row as it was at the first evaluation (the harness evaluates
 * the loss at the unperturbed parameters first), and the finite
 * differences of that row are 0, which the analytic side must match.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ref_grad.h"

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }

/* y [tokens, D] = w[ix] (0 for ids outside [0, V)); the row 'pad' (>= 0) read from 'frozen'. */
static void gather(int64_t tokens, int64_t V, int64_t D, const int32_t *ix, const double *w, int64_t pad,
                   const double *frozen, double *y)
{
    for (int64_t s = 0; s < tokens; s++)
        for (int64_t d = 0; d < D; d++) {
            int32_t v = ix[s];
            y[s * D + d] = v < 0 || v >= V ? 0 : v == pad ? frozen[d] : w[v * D + d];
        }
}

/* ---- embedding(7, 3, padding_idx=2) of tokens [N, 5], mse ------------------- */

static double pad_row[3];
static int pad_row_set;

static double loss_embed_pad(const Gc *g)
{
    int64_t tokens = g->n * 5;
    if (!pad_row_set) memcpy(pad_row, g->p[0] + 2 * 3, sizeof pad_row), pad_row_set = 1;
    double *y = buf(tokens * 3);
    gather(tokens, 7, 3, g->label, g->p[0], 2, pad_row, y);
    double l = rg_mse(tokens * 3, y, g->in[1]);
    free(y);
    return l;
}

static const GcCase case_embed_pad = {
    "embedding_padding",
    "model m(tok: i32[N, 5]) -> (y: f32[N, 5, 3]) {\n  y = tok |> e: embedding(7, 3, padding_idx=2)\n}\n"
    "train m {\n  t: f32[N, 5, 3]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    4,
    2,
    {-5, 15},
    7,
    1,
    {"e.weight"},
    loss_embed_pad};

/* ---- embedding(6, 4) of tokens [N], then dense(3), mse (no padding) -------- */

static double loss_embed_dense(const Gc *g)
{
    int64_t n = g->n;
    double *e = buf(n * 4), *y = buf(n * 3);
    gather(n, 6, 4, g->label, g->p[0], -1, NULL, e);
    rg_dense(n, 4, 3, e, g->p[1], g->p[2], y);
    double l = rg_mse(n * 3, y, g->in[1]);
    free(e), free(y);
    return l;
}

static const GcCase case_embed_dense = {
    "embedding_dense",
    "model m(tok: i32[N]) -> (y: f32[N, 3]) {\n  y = tok |> e: embedding(6, 4) |> fc: dense(3)\n}\n"
    "train m {\n  t: f32[N, 3]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    9,
    2,
    {0, 3},
    6,
    3,
    {"e.weight", "fc.weight", "fc.bias"},
    loss_embed_dense};

Test(gradcheck_embed, embedding_padding) { dn_gradcheck(&case_embed_pad); }
Test(gradcheck_embed, embedding_dense) { dn_gradcheck(&case_embed_dense); }

/* test_gradcheck_embed.c -- the gradient rules of the embedding family
 * (embedding, cross_entropy over sequences with ignore_index, and products
 * with a sequence_mask, which has no gradient of its own) against
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

/* ---- cross_entropy over sequences with ignore_index ---------------------------- */

/* F.cross_entropy(logits [rows, K], label, label_smoothing=s, ignore_index): mean over the kept rows. */
static double ce_ignore(int64_t rows, int64_t K, const double *x, const int32_t *label, double s, int32_t ignore)
{
    double total = 0;
    int64_t kept = 0;
    for (int64_t r = 0; r < rows; r++) {
        if (label[r] == ignore) continue;
        const double *z = x + r * K;
        double m = z[0], se = 0, sum_lp = 0;
        for (int64_t k = 1; k < K; k++) m = fmax(m, z[k]);
        for (int64_t k = 0; k < K; k++) se += exp(z[k] - m);
        double lse = m + log(se);
        for (int64_t k = 0; k < K; k++) sum_lp += z[k] - lse;
        total += -(1 - s) * (z[label[r]] - lse) - s / (double)K * sum_lp;
        kept++;
    }
    return total / (double)kept;
}

/* logits [N, 3, 4] = dense(x [N, 3, 5]); labels [N, 3] in [0, 4), those equal to 1 ignored. */
static double loss_ce_seq(const Gc *g)
{
    int64_t rows = g->n * 3;
    double *y = buf(rows * 4);
    rg_dense(rows, 5, 4, g->in[0], g->p[0], g->p[1], y);
    double l = ce_ignore(rows, 4, y, g->label, 0, 1);
    free(y);
    return l;
}

static const GcCase case_ce_seq = {"cross_entropy_sequence_ignore",
                                   "model m(x: f32[N, 3, 5]) -> (y: f32[N, 3, 4]) {\n  y = x |> fc: dense(4)\n}\n"
                                   "train m {\n  label: i32[N, 3]\n  loss = cross_entropy(y, label, ignore_index=1)\n"
                                   "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
                                   5,
                                   2,
                                   {15, -3},
                                   4,
                                   2,
                                   {"fc.weight", "fc.bias"},
                                   loss_ce_seq};

/* the same with label smoothing 0.1 and ignore_index 0, logits [N, 2, 3] */
static double loss_ce_seq_smooth(const Gc *g)
{
    int64_t rows = g->n * 2;
    double *y = buf(rows * 3);
    rg_dense(rows, 4, 3, g->in[0], g->p[0], g->p[1], y);
    double l = ce_ignore(rows, 3, y, g->label, 0.1, 0);
    free(y);
    return l;
}

static const GcCase case_ce_seq_smooth = {
    "cross_entropy_sequence_smoothing_ignore",
    "model m(x: f32[N, 2, 4]) -> (y: f32[N, 2, 3]) {\n  y = x |> fc: dense(3)\n}\n"
    "train m {\n  label: i32[N, 2]\n  loss = cross_entropy(y, label, smoothing=0.1, ignore_index=0)\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    6,
    2,
    {8, -2},
    3,
    2,
    {"fc.weight", "fc.bias"},
    loss_ce_seq_smooth};

/* ---- sequence_mask: the gradient flows through the product with the mask ------ */

/* y [N, 4] = dense(x) * (t < len[n]); lengths in [0, 5). */
static double loss_mask(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 4);
    rg_dense(n, 4, 4, g->in[0], g->p[0], g->p[1], y);
    for (int64_t i = 0; i < n; i++)
        for (int64_t t = 0; t < 4; t++) y[i * 4 + t] *= t < g->label[i] ? 1 : 0;
    double l = rg_mse(n * 4, y, g->in[2]);
    free(y);
    return l;
}

static const GcCase case_mask = {
    "sequence_mask",
    "model m(x: f32[N, 4], len: i32[N]) -> (y: f32[N, 4]) {\n"
    "  y = (x |> fc: dense(4)) * sequence_mask(len, max_len=4)\n}\n"
    "train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    7,
    3,
    {4, 0, 4},
    5,
    2,
    {"fc.weight", "fc.bias"},
    loss_mask};

Test(gradcheck_embed, embedding_padding) { dn_gradcheck(&case_embed_pad); }
Test(gradcheck_embed, embedding_dense) { dn_gradcheck(&case_embed_dense); }
Test(gradcheck_embed, cross_entropy_sequence_ignore) { dn_gradcheck(&case_ce_seq); }
Test(gradcheck_embed, cross_entropy_sequence_smoothing_ignore) { dn_gradcheck(&case_ce_seq_smooth); }
Test(gradcheck_embed, sequence_mask) { dn_gradcheck(&case_mask); }

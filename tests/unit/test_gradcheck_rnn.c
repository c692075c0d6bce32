/* test_gradcheck_rnn.c -- the gradient of rnn_scan (rnn_scan_bwd and the
 * products grad_rnn_scan builds) through the rnn, lstm and gru layers,
 * against central finite differences in double with the shared harness
 * (support/gradcheck.h): every cell, bias_hh included (gru's n gate scales
 * it by r), the reverse direction of a bidirectional layer, a lengths mask
 * (lengths from the harness's i32 input, 0 included: such an item keeps
 * its initial state), 2 layers, initial states from parameters and final
 * states in the loss.  The harness reads at most 4 parameters, so the
 * cases drop the biases (bias=false) where they need 4 weights.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gradcheck.h"
#include "ref_grad.h"

enum { TANH, RELU, LSTM, GRU, MAXH = 8 };

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }
static double sig(double v) { return 1 / (1 + exp(-v)); }

typedef struct Dir {
    int cell;
    int64_t n, T, I, H;
    const double *wih, *whh, *bih, *bhh; /* biases may be NULL */
    int rev;
    const int32_t *len;    /* NULL: every step */
    const double *h0, *c0; /* [n, H] each, NULL: zeros */
    int64_t ystride, yoff; /* y [n, T, ystride], this direction at column yoff */
    double *hT, *cT;       /* [n, H] each, or NULL */
} Dir;

/* One direction of one layer over x [n, T, I], as nn.RNN / LSTM / GRU
 * (packed sequences: masked steps keep the state and give 0). */
static void ref_dir(const Dir *d, const double *x, double *y)
{
    int64_t H = d->H, G = d->cell == LSTM ? 4 : d->cell == GRU ? 3 : 1;
    for (int64_t b = 0; b < d->n; b++) {
        double h[MAXH] = {0}, c[MAXH] = {0}, xg[4 * MAXH], hg[4 * MAXH];
        for (int64_t j = 0; j < H; j++) {
            h[j] = d->h0 ? d->h0[b * H + j] : 0;
            c[j] = d->c0 ? d->c0[b * H + j] : 0;
        }
        for (int64_t s = 0; s < d->T; s++) {
            int64_t t = d->rev ? d->T - 1 - s : s;
            double *yt = y + (b * d->T + t) * d->ystride + d->yoff;
            if (d->len && t >= d->len[b]) {
                for (int64_t j = 0; j < H; j++) yt[j] = 0;
                continue;
            }
            const double *xt = x + (b * d->T + t) * d->I;
            for (int64_t r = 0; r < G * H; r++) {
                xg[r] = d->bih ? d->bih[r] : 0;
                hg[r] = d->bhh ? d->bhh[r] : 0;
                for (int64_t i = 0; i < d->I; i++) xg[r] += d->wih[r * d->I + i] * xt[i];
                for (int64_t j = 0; j < H; j++) hg[r] += d->whh[r * H + j] * h[j];
            }
            for (int64_t j = 0; j < H; j++) {
                if (d->cell == LSTM) {
                    double i = sig(xg[j] + hg[j]), f = sig(xg[H + j] + hg[H + j]);
                    double g = tanh(xg[2 * H + j] + hg[2 * H + j]), o = sig(xg[3 * H + j] + hg[3 * H + j]);
                    c[j] = f * c[j] + i * g;
                    h[j] = o * tanh(c[j]);
                } else if (d->cell == GRU) {
                    double r = sig(xg[j] + hg[j]), z = sig(xg[H + j] + hg[H + j]);
                    double nn = tanh(xg[2 * H + j] + r * hg[2 * H + j]);
                    h[j] = (1 - z) * nn + z * h[j];
                } else {
                    double a = xg[j] + hg[j];
                    h[j] = d->cell == TANH ? tanh(a) : a > 0 ? a : 0;
                }
                yt[j] = h[j];
            }
        }
        for (int64_t j = 0; j < H; j++) {
            if (d->hT) d->hT[b * H + j] = h[j];
            if (d->cT) d->cT[b * H + j] = c[j];
        }
    }
}

static double mse_free(double *y, const double *t, int64_t n)
{
    double l = rg_mse(n, y, t);
    free(y);
    return l;
}

/* ---- rnn(4) with bias: every parameter of one direction ---------------- */

static double loss_rnn_bias(const Gc *g)
{
    double *y = buf(g->n * 3 * 4);
    Dir d = {TANH, g->n, 3, 2, 4, g->p[0], g->p[1], g->p[2], g->p[3], 0, NULL, NULL, NULL, 4, 0, NULL, NULL};
    ref_dir(&d, g->in[0], y);
    return mse_free(y, g->in[1], g->n * 12);
}

static const GcCase case_rnn_bias = {
    "rnn_tanh_bias",
    "model m(x: f32[N, 3, 2]) -> (y: f32[N, 3, 4]) {\n  y = x |> r: rnn(4)\n}\n"
    "train m {\n  t: f32[N, 3, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {6, 12},
    0,
    4,
    {"r.weight_ih_l0", "r.weight_hh_l0", "r.bias_ih_l0", "r.bias_hh_l0"},
    loss_rnn_bias};

/* ---- rnn(3, nonlinearity="relu", bidirectional) without bias: both directions --------- */

static double loss_relu_bidir(const Gc *g)
{
    double *y = buf(g->n * 4 * 6);
    for (int r = 0; r < 2; r++) {
        Dir d = {RELU, g->n, 4, 2,     3,    g->p[2 * r], g->p[2 * r + 1], NULL, NULL, r, NULL,
                 NULL, NULL, 6, 3 * r, NULL, NULL};
        ref_dir(&d, g->in[0], y);
    }
    return mse_free(y, g->in[1], g->n * 24);
}

static const GcCase case_relu_bidir = {
    "rnn_relu_bidirectional",
    "model m(x: f32[N, 4, 2]) -> (y: f32[N, 4, 6]) {\n"
    "  y = x |> r: rnn(3, nonlinearity=\"relu\", bidirectional=true, bias=false)\n}\n"
    "train m {\n  t: f32[N, 4, 6]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {8, 24},
    0,
    4,
    {"r.weight_ih_l0", "r.weight_hh_l0", "r.weight_ih_l0_reverse", "r.weight_hh_l0_reverse"},
    loss_relu_bidir};

/* ---- lstm: states in from parameters, h_n and c_n in the loss ---------------------- */

/* h0 = x[:, 0:1, :] * p, c0 = x[:, 1:2, :] * q; loss mse(y, t) + mse(h_n, t[:, 0:1, :]) + mse(c_n, t[:, 2:3, :]). */
static double loss_lstm_states(const Gc *g)
{
    int64_t n = g->n, T = 3, H = 4;
    double *y = buf(n * T * H), *h0 = buf(n * H), *c0 = buf(n * H), *hT = buf(n * H), *cT = buf(n * H);
    double *th = buf(n * H), *tc = buf(n * H);
    for (int64_t b = 0; b < n; b++)
        for (int64_t j = 0; j < H; j++) {
            h0[b * H + j] = g->in[0][(b * T + 0) * H + j] * g->p[2][j];
            c0[b * H + j] = g->in[0][(b * T + 1) * H + j] * g->p[3][j];
            th[b * H + j] = g->in[1][(b * T + 0) * H + j];
            tc[b * H + j] = g->in[1][(b * T + 2) * H + j];
        }
    Dir d = {LSTM, n, T, 4, H, g->p[0], g->p[1], NULL, NULL, 0, NULL, h0, c0, H, 0, hT, cT};
    ref_dir(&d, g->in[0], y);
    double l = mse_free(y, g->in[1], n * T * H) + mse_free(hT, th, n * H) + mse_free(cT, tc, n * H);
    free(h0), free(c0), free(th), free(tc);
    return l;
}

static const GcCase case_lstm_states = {
    "lstm_states",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 4], h: f32[N, 1, 4], c: f32[N, 1, 4]) {\n"
    "  param p: f32[1, 1, 4] = normal(std=1)\n  param q: f32[1, 1, 4] = normal(std=1)\n"
    "  r = x |> l: lstm(4, bias=false, h0=x[:, 0:1, :] * p, c0=x[:, 1:2, :] * q, return_state=true)\n"
    "  y = r[0]\n  h = r[1]\n  c = r[2]\n}\n"
    "train m {\n  t: f32[N, 3, 4]\n"
    "  loss = mse(y, t) + mse(h, t[:, 0:1, :]) + mse(c, t[:, 2:3, :])\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {12, 12},
    0,
    4,
    {"l.weight_ih_l0", "l.weight_hh_l0", "p", "q"},
    loss_lstm_states};

/* ---- gru(3) with bias ----------------------------------------------------------- */

static double loss_gru_bias(const Gc *g)
{
    double *y = buf(g->n * 4 * 3);
    Dir d = {GRU, g->n, 4, 2, 3, g->p[0], g->p[1], g->p[2], g->p[3], 0, NULL, NULL, NULL, 3, 0, NULL, NULL};
    ref_dir(&d, g->in[0], y);
    return mse_free(y, g->in[1], g->n * 12);
}

static const GcCase case_gru_bias = {
    "gru_bias",
    "model m(x: f32[N, 4, 2]) -> (y: f32[N, 4, 3]) {\n  y = x |> r: gru(3)\n}\n"
    "train m {\n  t: f32[N, 4, 3]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {8, 12},
    0,
    4,
    {"r.weight_ih_l0", "r.weight_hh_l0", "r.bias_ih_l0", "r.bias_hh_l0"},
    loss_gru_bias};

/* ---- gru, bidirectional, lengths in [0, 5]: y and h_n in the loss ---------------- */

static double loss_gru_lengths(const Gc *g)
{
    int64_t n = g->n, T = 5, H = 3;
    double *y = buf(n * T * 6), *hT = buf(n * 2 * H), *th = buf(n * 2 * H);
    for (int r = 0; r < 2; r++) {
        double *h = buf(n * H);
        Dir d = {GRU, n, T, 2, H, g->p[2 * r], g->p[2 * r + 1], NULL, NULL, r, g->label, NULL, NULL, 6, 3 * r, h, NULL};
        ref_dir(&d, g->in[0], y);
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < H; j++) hT[(b * 2 + r) * H + j] = h[b * H + j];
        free(h);
    }
    for (int64_t b = 0; b < n; b++)
        for (int64_t k = 0; k < 2; k++)
            for (int64_t j = 0; j < H; j++) th[(b * 2 + k) * H + j] = g->in[2][(b * T + k) * 6 + j];
    double l = mse_free(y, g->in[2], n * T * 6) + mse_free(hT, th, n * 2 * H);
    free(th);
    return l;
}

static const GcCase case_gru_lengths = {
    "gru_bidirectional_lengths",
    "model m(x: f32[N, 5, 2], len: i32[N]) -> (y: f32[N, 5, 6], h: f32[N, 2, 3]) {\n"
    "  r = x |> g: gru(3, bidirectional=true, bias=false, lengths=len, return_state=true)\n"
    "  y = r[0]\n  h = r[1]\n}\n"
    "train m {\n  t: f32[N, 5, 6]\n  loss = mse(y, t) + mse(h, t[:, 0:2, 0:3])\n"
    "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    6,
    3,
    {10, 0, 30},
    6,
    4,
    {"g.weight_ih_l0", "g.weight_hh_l0", "g.weight_ih_l0_reverse", "g.weight_hh_l0_reverse"},
    loss_gru_lengths};

/* ---- lstm, 2 layers -------------------------------------------------------------- */

static double loss_lstm_2layers(const Gc *g)
{
    int64_t n = g->n, T = 3, H = 3;
    double *y0 = buf(n * T * H), *y = buf(n * T * H);
    Dir d0 = {LSTM, n, T, 2, H, g->p[0], g->p[1], NULL, NULL, 0, NULL, NULL, NULL, H, 0, NULL, NULL};
    Dir d1 = {LSTM, n, T, H, H, g->p[2], g->p[3], NULL, NULL, 0, NULL, NULL, NULL, H, 0, NULL, NULL};
    ref_dir(&d0, g->in[0], y0);
    ref_dir(&d1, y0, y);
    free(y0);
    return mse_free(y, g->in[1], n * T * H);
}

static const GcCase case_lstm_2layers = {
    "lstm_2_layers",
    "model m(x: f32[N, 3, 2]) -> (y: f32[N, 3, 3]) {\n  y = x |> l: lstm(3, 2, false)\n}\n"
    "train m {\n  t: f32[N, 3, 3]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {6, 9},
    0,
    4,
    {"l.weight_ih_l0", "l.weight_hh_l0", "l.weight_ih_l1", "l.weight_hh_l1"},
    loss_lstm_2layers};

/* ---- lstm, reverse direction with lengths; only h_n in the loss (dy absent) --------- */

static double loss_lstm_rev_len(const Gc *g)
{
    int64_t n = g->n, T = 4, H = 3;
    double *y = buf(n * T * 6), *hT = buf(n * 2 * H), *cT = buf(n * 2 * H);
    for (int r = 0; r < 2; r++) {
        double *h = buf(n * H), *c = buf(n * H);
        Dir d = {LSTM, n, T, 2, H, g->p[2 * r], g->p[2 * r + 1], NULL, NULL, r, g->label, NULL, NULL, 6, 3 * r, h, c};
        ref_dir(&d, g->in[0], y);
        for (int64_t b = 0; b < n; b++)
            for (int64_t j = 0; j < H; j++)
                hT[(b * 2 + r) * H + j] = h[b * H + j], cT[(b * 2 + r) * H + j] = c[b * H + j];
        free(h), free(c);
    }
    free(y);
    double l = rg_mse(n * 2 * H, hT, g->in[2]) + rg_mse(n * 2 * H, cT, g->in[2]);
    free(hT), free(cT);
    return l;
}

static const GcCase case_lstm_rev_len = {
    "lstm_bidirectional_lengths_states_only",
    "model m(x: f32[N, 4, 2], len: i32[N]) -> (h: f32[N, 2, 3], c: f32[N, 2, 3]) {\n"
    "  r = x |> l: lstm(3, bidirectional=true, bias=false, lengths=len, return_state=true)\n"
    "  h = r[1]\n  c = r[2]\n}\n"
    "train m {\n  t: f32[N, 2, 3]\n  loss = mse(h, t) + mse(c, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    5,
    3,
    {8, 0, 6},
    5,
    4,
    {"l.weight_ih_l0", "l.weight_hh_l0", "l.weight_ih_l0_reverse", "l.weight_hh_l0_reverse"},
    loss_lstm_rev_len};

Test(gradcheck_rnn, rnn_tanh_bias) { dn_gradcheck(&case_rnn_bias); }
Test(gradcheck_rnn, rnn_relu_bidirectional) { dn_gradcheck(&case_relu_bidir); }
Test(gradcheck_rnn, lstm_states) { dn_gradcheck(&case_lstm_states); }
Test(gradcheck_rnn, gru_bias) { dn_gradcheck(&case_gru_bias); }
Test(gradcheck_rnn, gru_bidirectional_lengths) { dn_gradcheck(&case_gru_lengths); }
Test(gradcheck_rnn, lstm_2_layers) { dn_gradcheck(&case_lstm_2layers); }
Test(gradcheck_rnn, lstm_bidirectional_lengths_states_only) { dn_gradcheck(&case_lstm_rev_len); }

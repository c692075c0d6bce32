/* ref_rnn.c -- the reference recurrent scans (ref_rnn.h), written from
 * ir/rnn_cell.h, one step at a time, in double. */
#include "ref_rnn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/rnn_cell.h"

static double sig(double v) { return 1.0 / (1.0 + exp(-v)); }

/* Step 'st' of the scan in the forward's order. */
static int64_t step_at(int reverse, int64_t T, int64_t st) { return reverse ? T - 1 - st : st; }

int ref_rnn_scan(const char *cell, int reverse, int64_t n, int64_t T, int64_t H, const double *xg, const double *w_hh,
                 const double *b_hh, const double *s0, const double *mask, double *y, double *s_T, double *save)
{
    const DnRnnCellInfo *c = dn_rnn_cell(cell);
    if (!c) return -1;
    int64_t G = c->gates, S = c->state, K = c->saved;
    double *hg = malloc(sizeof *hg * (size_t)(G * H)), *hp = malloc(sizeof *hp * (size_t)H);
    for (int64_t b = 0; b < n; b++) {
        double *h = s_T + b * S * H, *cs = h + H; /* the running state */
        memcpy(h, s0 + b * S * H, sizeof *h * (size_t)(S * H));
        for (int64_t st = 0; st < T; st++) {
            int64_t t = step_at(reverse, T, st);
            const double *x = xg + (b * T + t) * G * H;
            double *yt = y + (b * T + t) * H, *sv = save + (b * T + t) * K * H;
            memcpy(hp, h, sizeof *hp * (size_t)H);
            memset(sv, 0, sizeof *sv * (size_t)(K * H));
            memcpy(sv, hp, sizeof *sv * (size_t)H);
            if (mask && mask[b * T + t] == 0.0) {
                memset(yt, 0, sizeof *yt * (size_t)H);
                continue;
            }
            for (int64_t r = 0; r < G * H; r++) {
                double a = b_hh[r];
                for (int64_t k = 0; k < H; k++) a += w_hh[r * H + k] * hp[k];
                hg[r] = a;
            }
            for (int64_t j = 0; j < H; j++) {
                double hn = 0;
                switch (c->cell) {
                case DN_RNN_TANH: hn = tanh(x[j] + hg[j]), sv[H + j] = hn; break;
                case DN_RNN_RELU: hn = x[j] + hg[j] > 0 ? x[j] + hg[j] : 0, sv[H + j] = hn; break;
                case DN_RNN_LSTM: {
                    double i = sig(x[j] + hg[j]), f = sig(x[H + j] + hg[H + j]);
                    double g = tanh(x[2 * H + j] + hg[2 * H + j]), o = sig(x[3 * H + j] + hg[3 * H + j]);
                    double cp = cs[j], cn = f * cp + i * g;
                    hn = o * tanh(cn);
                    cs[j] = cn;
                    double slot[6] = {i, f, g, o, cp, cn};
                    for (int s = 0; s < 6; s++) sv[(s + 1) * H + j] = slot[s];
                    break;
                }
                case DN_RNN_GRU: {
                    double r = sig(x[j] + hg[j]), z = sig(x[H + j] + hg[H + j]);
                    double nn = tanh(x[2 * H + j] + r * hg[2 * H + j]);
                    hn = (1 - z) * nn + z * hp[j];
                    double slot[4] = {r, z, nn, hg[2 * H + j]};
                    for (int s = 0; s < 4; s++) sv[(s + 1) * H + j] = slot[s];
                    break;
                }
                }
                h[j] = hn;
                yt[j] = hn;
            }
        }
    }
    free(hg), free(hp);
    return 0;
}

int ref_rnn_scan_bwd(const char *cell, int reverse, int64_t n, int64_t T, int64_t H, const double *dy, const double *ds,
                     const double *save, const double *w_hh, const double *mask, double *dxg, double *dhg, double *ds0)
{
    const DnRnnCellInfo *c = dn_rnn_cell(cell);
    if (!c) return -1;
    int64_t G = c->gates, S = c->state, K = c->saved;
    double *dprev = malloc(sizeof *dprev * (size_t)H);
    for (int64_t b = 0; b < n; b++) {
        double *dh = ds0 + b * S * H, *dc = dh + H; /* the carried gradients */
        memcpy(dh, ds + b * S * H, sizeof *dh * (size_t)(S * H));
        for (int64_t st = T - 1; st >= 0; st--) {
            int64_t t = step_at(reverse, T, st);
            const double *sv = save + (b * T + t) * K * H, *dyt = dy + (b * T + t) * H;
            double *dx = dxg + (b * T + t) * G * H, *dg = dhg + (b * T + t) * G * H;
            memset(dx, 0, sizeof *dx * (size_t)(G * H));
            memset(dg, 0, sizeof *dg * (size_t)(G * H));
            if (mask && mask[b * T + t] == 0.0) continue; /* the state passed through */
            for (int64_t j = 0; j < H; j++) {
                double d = dh[j] + dyt[j];
                dprev[j] = 0;
                switch (c->cell) {
                case DN_RNN_TANH: dx[j] = dg[j] = d * (1 - sv[H + j] * sv[H + j]); break;
                case DN_RNN_RELU: dx[j] = dg[j] = sv[H + j] > 0 ? d : 0; break;
                case DN_RNN_LSTM: {
                    double i = sv[H + j], f = sv[2 * H + j], g = sv[3 * H + j], o = sv[4 * H + j];
                    double cp = sv[5 * H + j], tc = tanh(sv[6 * H + j]);
                    double dcell = dc[j] + d * o * (1 - tc * tc);
                    dx[j] = dcell * g * i * (1 - i);
                    dx[H + j] = dcell * cp * f * (1 - f);
                    dx[2 * H + j] = dcell * i * (1 - g * g);
                    dx[3 * H + j] = d * tc * o * (1 - o);
                    for (int q = 0; q < 4; q++) dg[q * H + j] = dx[q * H + j];
                    dc[j] = dcell * f;
                    break;
                }
                case DN_RNN_GRU: {
                    double hp = sv[j], r = sv[H + j], z = sv[2 * H + j], nn = sv[3 * H + j], hn = sv[4 * H + j];
                    double dan = d * (1 - z) * (1 - nn * nn);
                    dx[2 * H + j] = dan;
                    dg[2 * H + j] = dan * r;
                    dx[j] = dg[j] = dan * hn * r * (1 - r);
                    dx[H + j] = dg[H + j] = d * (hp - nn) * z * (1 - z);
                    dprev[j] = d * z;
                    break;
                }
                }
            }
            for (int64_t k = 0; k < H; k++) {
                double a = dprev[k];
                for (int64_t r = 0; r < G * H; r++) a += w_hh[r * H + k] * dg[r];
                dh[k] = a;
            }
        }
    }
    free(dprev);
    return 0;
}

/* ref_grad.c -- naive double-precision forward references (ref_grad.h). */
#include "ref_grad.h"

#include <math.h>
#include <stdlib.h>

#include "dnrt.h"

int64_t rg_conv_oh(const RgConv *c) { return (c->H + 2 * c->ph - c->dh * (c->KH - 1) - 1) / c->sh + 1; }
int64_t rg_conv_ow(const RgConv *c) { return (c->W + 2 * c->pw - c->dw * (c->KW - 1) - 1) / c->sw + 1; }

/* One output cell of the convolution. */
static double conv_cell(const RgConv *c, const double *x, const double *w, int64_t n, int64_t o, int64_t i, int64_t j)
{
    int64_t Cg = c->C / c->groups, g = o / (c->O / c->groups);
    double s = 0;
    for (int64_t ci = 0; ci < Cg; ci++)
        for (int64_t kh = 0; kh < c->KH; kh++)
            for (int64_t kw = 0; kw < c->KW; kw++) {
                int64_t ih = i * c->sh - c->ph + kh * c->dh, iw = j * c->sw - c->pw + kw * c->dw;
                if (ih < 0 || ih >= c->H || iw < 0 || iw >= c->W) continue;
                s += x[((n * c->C + g * Cg + ci) * c->H + ih) * c->W + iw] *
                     w[((o * Cg + ci) * c->KH + kh) * c->KW + kw];
            }
    return s;
}

void rg_conv2d(const RgConv *c, const double *x, const double *w, const double *b, double *y)
{
    int64_t OH = rg_conv_oh(c), OW = rg_conv_ow(c);
    for (int64_t n = 0; n < c->N; n++)
        for (int64_t o = 0; o < c->O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++)
                    y[((n * c->O + o) * OH + i) * OW + j] = conv_cell(c, x, w, n, o, i, j) + (b ? b[o] : 0);
}

int64_t rg_pool_oh(const RgPool *p) { return (p->H + 2 * p->ph - p->kh) / p->sh + 1; }
int64_t rg_pool_ow(const RgPool *p) { return (p->W + 2 * p->pw - p->kw) / p->sw + 1; }

static void pool(const RgPool *p, const double *x, double *y, int max)
{
    int64_t OH = rg_pool_oh(p), OW = rg_pool_ow(p);
    for (int64_t q = 0; q < p->planes; q++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double acc = max ? -INFINITY : 0;
                for (int64_t a = 0; a < p->kh; a++)
                    for (int64_t b = 0; b < p->kw; b++) {
                        int64_t ih = i * p->sh - p->ph + a, iw = j * p->sw - p->pw + b;
                        if (ih < 0 || ih >= p->H || iw < 0 || iw >= p->W) continue;
                        double v = x[(q * p->H + ih) * p->W + iw];
                        acc = max ? fmax(acc, v) : acc + v;
                    }
                y[(q * OH + i) * OW + j] = max ? acc : acc / (double)(p->kh * p->kw);
            }
}

void rg_maxpool2d(const RgPool *p, const double *x, double *y) { pool(p, x, y, 1); }
void rg_avgpool2d(const RgPool *p, const double *x, double *y) { pool(p, x, y, 0); }

void rg_dense(int64_t rows, int64_t in, int64_t out, const double *x, const double *w, const double *b, double *y)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
}

void rg_matmul(int64_t batch, int64_t M, int64_t K, int64_t P, const double *a, int ta, const double *b, int tb,
               int b_batched, double *y)
{
    for (int64_t t = 0; t < batch; t++) {
        const double *A = a + t * M * K, *B = b + (b_batched ? t * K * P : 0);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < P; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (ta ? A[k * M + i] : A[i * K + k]) * (tb ? B[j * K + k] : B[k * P + j]);
                y[(t * M + i) * P + j] = s;
            }
    }
}

void rg_softmax(int64_t outer, int64_t len, int64_t inner, const double *x, double *y, int logsm)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++) {
            const double *px = x + o * len * inner + j;
            double *py = y + o * len * inner + j, m = -INFINITY, s = 0;
            for (int64_t t = 0; t < len; t++) m = fmax(m, px[t * inner]);
            for (int64_t t = 0; t < len; t++) s += exp(px[t * inner] - m);
            for (int64_t t = 0; t < len; t++)
                py[t * inner] = logsm ? px[t * inner] - m - log(s) : exp(px[t * inner] - m) / s;
        }
}

void rg_batchnorm_train(int64_t N, int64_t C, int64_t S, const double *x, const double *w, const double *b, double eps,
                        double *y)
{
    for (int64_t c = 0; c < C; c++) {
        double mean = 0, var = 0, M = (double)(N * S);
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) mean += x[(n * C + c) * S + s];
        mean /= M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++) var += pow(x[(n * C + c) * S + s] - mean, 2);
        var /= M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t s = 0; s < S; s++)
                y[(n * C + c) * S + s] = (x[(n * C + c) * S + s] - mean) / sqrt(var + eps) * w[c] + b[c];
    }
}

double rg_cross_entropy(int64_t N, int64_t K, const double *logits, const int32_t *label, double smoothing)
{
    double *lp = malloc((size_t)K * sizeof *lp), total = 0;
    for (int64_t n = 0; n < N; n++) {
        rg_softmax(1, K, 1, logits + n * K, lp, 1);
        double sum = 0;
        for (int64_t k = 0; k < K; k++) sum += lp[k];
        total += -(1 - smoothing) * lp[label[n]] - smoothing / (double)K * sum;
    }
    free(lp);
    return total / (double)N;
}

double rg_mse(int64_t n, const double *pred, const double *target)
{
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (pred[i] - target[i]) * (pred[i] - target[i]);
    return s / (double)n;
}

void rg_dropout_mask(int64_t n, double p, uint32_t salt, uint64_t seed, int64_t step, uint8_t *keep)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (int64_t i = 0; i < n; i++) {
        uint32_t ctr[4] = {(uint32_t)i, (uint32_t)((uint64_t)i >> 32), (uint32_t)step, salt}, out[4];
        dnrt_philox4x32(key, ctr, out);
        keep[i] = (double)out[0] * 0x1p-32 >= p;
    }
}

/* ref_ops.c -- naive reference forward ops for the kernel tests (see
 * ref_ops.h).  Written for obviousness, not speed; accumulate in double. */
#include "ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ref_fill(float *x, int64_t n, uint32_t seed, float lo, float hi)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int64_t i = 0; i < n; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        x[i] = lo + (hi - lo) * (float)((s >> 40) * (1.0 / 16777216.0));
    }
}

void ref_conv2d(const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t H, int64_t W,
                int64_t O, int64_t KH, int64_t KW, const int64_t s[2], const int64_t p[2], const int64_t d[2],
                int64_t groups, int relu)
{
    int64_t OH = (H + 2 * p[0] - d[0] * (KH - 1) - 1) / s[0] + 1;
    int64_t OW = (W + 2 * p[1] - d[1] * (KW - 1) - 1) / s[1] + 1;
    int64_t cg = C / groups, og = O / groups;
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    double acc = b ? b[o] : 0;
                    int64_t g = o / og;
                    for (int64_t c = 0; c < cg; c++)
                        for (int64_t kh = 0; kh < KH; kh++)
                            for (int64_t kw = 0; kw < KW; kw++) {
                                int64_t ih = i * s[0] - p[0] + kh * d[0], iw = j * s[1] - p[1] + kw * d[1];
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                acc += (double)x[((n * C + g * cg + c) * H + ih) * W + iw] *
                                       w[((o * cg + c) * KH + kh) * KW + kw];
                            }
                    if (relu && acc < 0) acc = 0;
                    y[((n * O + o) * OH + i) * OW + j] = (float)acc;
                }
}

void ref_pool2d(int is_max, const float *x, float *y, int64_t N, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                const int64_t s[2], const int64_t p[2])
{
    int64_t OH = (H + 2 * p[0] - k[0]) / s[0] + 1, OW = (W + 2 * p[1] - k[1]) / s[1] + 1;
    for (int64_t nc = 0; nc < N * C; nc++)
        for (int64_t i = 0; i < OH; i++)
            for (int64_t j = 0; j < OW; j++) {
                double acc = is_max ? -INFINITY : 0;
                for (int64_t a = 0; a < k[0]; a++)
                    for (int64_t bb = 0; bb < k[1]; bb++) {
                        int64_t ih = i * s[0] - p[0] + a, iw = j * s[1] - p[1] + bb;
                        if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                        double v = x[(nc * H + ih) * W + iw];
                        acc = is_max ? fmax(acc, v) : acc + v;
                    }
                y[(nc * OH + i) * OW + j] = (float)(is_max ? acc : acc / (double)(k[0] * k[1]));
            }
}

void ref_dense(const float *x, const float *w, const float *b, float *y, int64_t rows, int64_t in, int64_t out,
               int relu)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t o = 0; o < out; o++) {
            double acc = b ? b[o] : 0;
            for (int64_t i = 0; i < in; i++) acc += (double)x[r * in + i] * w[o * in + i];
            if (relu && acc < 0) acc = 0;
            y[r * out + o] = (float)acc;
        }
}

void ref_matmul(const float *a, const float *b, float *y, int64_t batch, int64_t M, int64_t K, int64_t Nc, int ta,
                int tb, int b_batched)
{
    for (int64_t t = 0; t < batch; t++) {
        const float *A = a + t * M * K, *B = b + (b_batched ? t * K * Nc : 0);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < Nc; j++) {
                double acc = 0;
                for (int64_t q = 0; q < K; q++)
                    acc += (double)(ta ? A[q * M + i] : A[i * K + q]) * (tb ? B[j * K + q] : B[q * Nc + j]);
                y[(t * M + i) * Nc + j] = (float)acc;
            }
    }
}

static int64_t numel(const int64_t *d, int r)
{
    int64_t n = 1;
    for (int i = 0; i < r; i++) n *= d[i];
    return n;
}

/* Flat index into an operand (dims od, rank orank) of result position 'idx' (rank yr). */
static int64_t bcast_index(const int64_t *idx, int yr, const int64_t *od, int orank)
{
    int64_t off = 0;
    for (int d = 0; d < orank; d++) {
        int64_t i = idx[yr - orank + d];
        off = off * od[d] + (od[d] == 1 ? 0 : i);
    }
    return off;
}

static void unravel(int64_t flat, const int64_t *d, int r, int64_t *idx)
{
    for (int i = r - 1; i >= 0; i--) idx[i] = flat % d[i], flat /= d[i];
}

void ref_binary(char op, const float *a, const int64_t *ad, int ar, const float *b, const int64_t *bd, int br, float *y,
                const int64_t *yd, int yr)
{
    int64_t idx[8];
    for (int64_t f = 0; f < numel(yd, yr); f++) {
        unravel(f, yd, yr, idx);
        double u = a[bcast_index(idx, yr, ad, ar)], v = b[bcast_index(idx, yr, bd, br)];
        y[f] = (float)(op == '+' ? u + v : op == '-' ? u - v : op == '*' ? u * v : u / v);
    }
}

void ref_unary(char op, const float *x, float *y, int64_t n, double alpha)
{
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (float)(op == 'r' ? (v < 0 ? 0 : v) : op == 't' ? tanh(v) : op == 's' ? 1 / (1 + exp(-v)) : alpha * v);
    }
}

void ref_softmax(int is_log, const float *x, float *y, int64_t outer, int64_t len, int64_t inner)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t in = 0; in < inner; in++) {
            const float *xs = x + o * len * inner + in;
            float *ys = y + o * len * inner + in;
            double mx = -INFINITY, sum = 0;
            for (int64_t i = 0; i < len; i++) mx = fmax(mx, xs[i * inner]);
            for (int64_t i = 0; i < len; i++) sum += exp(xs[i * inner] - mx);
            for (int64_t i = 0; i < len; i++)
                ys[i * inner] = (float)(is_log ? xs[i * inner] - mx - log(sum) : exp(xs[i * inner] - mx) / sum);
        }
}

void ref_transpose(const float *x, const int64_t *xd, int r, const int64_t *perm, float *y)
{
    int64_t yd[8] = {0}, idx[8], xidx[8];
    for (int i = 0; i < r; i++) yd[i] = xd[perm[i]];
    for (int64_t f = 0; f < numel(yd, r); f++) {
        unravel(f, yd, r, idx);
        for (int i = 0; i < r; i++) xidx[perm[i]] = idx[i];
        int64_t off = 0;
        for (int i = 0; i < r; i++) off = off * xd[i] + xidx[i];
        y[f] = x[off];
    }
}

void ref_sum_to(const float *x, const int64_t *xd, int xr, float *y, const int64_t *yd, int yr)
{
    int64_t ny = numel(yd, yr), idx[8];
    double *acc = calloc((size_t)ny, sizeof *acc);
    for (int64_t f = 0; f < numel(xd, xr); f++) {
        unravel(f, xd, xr, idx);
        acc[bcast_index(idx, xr, yd, yr)] += x[f];
    }
    for (int64_t i = 0; i < ny; i++) y[i] = (float)acc[i];
    free(acc);
}

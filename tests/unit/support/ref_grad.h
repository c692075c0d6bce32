/* ref_grad.h -- naive double-precision forward references for the
 * gradient checks (tests/unit/test_gradcheck.c): the finite-difference
 * side evaluates a loss with these, so they follow ops.def's semantics
 * literally and favour obviousness over speed.  Layouts are PyTorch's
 * (NCHW, conv weight [O, C/G, KH, KW], dense weight [OUT, IN]).
 */
#ifndef DN_REF_GRAD_H
#define DN_REF_GRAD_H

#include <stdint.h>

/* Convolution geometry; output size OH = (H + 2 ph - dh (KH - 1) - 1) / sh + 1. */
typedef struct RgConv {
    int64_t N, C, H, W, O, KH, KW;
    int64_t sh, sw, ph, pw, dh, dw, groups;
} RgConv;

int64_t rg_conv_oh(const RgConv *c);
int64_t rg_conv_ow(const RgConv *c);
/* y [N, O, OH, OW] = conv2d(x, w) + b (b may be NULL). */
void rg_conv2d(const RgConv *c, const double *x, const double *w, const double *b, double *y);

/* Pooling on [N*C planes of H x W] with kernel/stride/pad per axis;
 * max: padding is -inf; avg: padded cells count. */
typedef struct RgPool {
    int64_t planes, H, W, kh, kw, sh, sw, ph, pw;
} RgPool;
int64_t rg_pool_oh(const RgPool *p);
int64_t rg_pool_ow(const RgPool *p);
void rg_maxpool2d(const RgPool *p, const double *x, double *y);
void rg_avgpool2d(const RgPool *p, const double *x, double *y);

/* y [rows, OUT] = x [rows, IN] w^T + b (b may be NULL). */
void rg_dense(int64_t rows, int64_t in, int64_t out, const double *x, const double *w, const double *b, double *y);
/* y[bt] = op(a[bt]) @ op(b[bt or 0]) for 'batch' items: op(a) is [M, K], op(b) [K, P];
 * b_batched 0 means one b for every item. */
void rg_matmul(int64_t batch, int64_t M, int64_t K, int64_t P, const double *a, int ta, const double *b, int tb,
               int b_batched, double *y);

/* Softmax (or log_softmax) of x viewed as [outer, len, inner] along the middle axis. */
void rg_softmax(int64_t outer, int64_t len, int64_t inner, const double *x, double *y, int logsm);

/* Training-mode batchnorm of x [N, C, S] with batch statistics (biased var). */
void rg_batchnorm_train(int64_t N, int64_t C, int64_t S, const double *x, const double *w, const double *b, double eps,
                        double *y);

/* Losses (mean over the batch, ops.def). */
double rg_cross_entropy(int64_t N, int64_t K, const double *logits, const int32_t *label, double smoothing);
double rg_mse(int64_t n, const double *pred, const double *target);

/* Dropout's keep mask for 'n' flat elements (1 keep, 0 drop), from
 * dnrt_philox4x32 exactly as ops.def states. */
void rg_dropout_mask(int64_t n, double p, uint32_t salt, uint64_t seed, int64_t step, uint8_t *keep);

#endif

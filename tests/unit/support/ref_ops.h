/* ref_ops.h -- naive reference implementations of the forward ops, for the
 * kernel tests: plain C loops over float data, accumulating in double, with
 * the semantics of ir/ops.def (PyTorch's NCHW layouts).  Shapes here are
 * concrete (the batch size is already substituted for N). */
#ifndef DN_REF_OPS_H
#define DN_REF_OPS_H

#include <stdint.h>

/* Fills 'x' with deterministic pseudo-random values in [lo, hi) from 'seed'. */
void ref_fill(float *x, int64_t n, uint32_t seed, float lo, float hi);

/* conv2d: x [N,C,H,W], w [O,C/G,KH,KW], b [O] or NULL; y [N,O,OH,OW] with
 * OH = (H + 2p0 - d0(KH-1) - 1)/s0 + 1 (same for OW); relu epilogue if 'relu'. */
void ref_conv2d(const float *x, const float *w, const float *b, float *y, int64_t N, int64_t C, int64_t H, int64_t W,
                int64_t O, int64_t KH, int64_t KW, const int64_t s[2], const int64_t p[2], const int64_t d[2],
                int64_t groups, int relu);
/* maxpool2d (is_max) or avgpool2d (count_include_pad): x [N,C,H,W] -> y. */
void ref_pool2d(int is_max, const float *x, float *y, int64_t N, int64_t C, int64_t H, int64_t W, const int64_t k[2],
                const int64_t s[2], const int64_t p[2]);
/* dense: x [rows, in], w [out, in], b [out] or NULL -> y [rows, out]. */
void ref_dense(const float *x, const float *w, const float *b, float *y, int64_t rows, int64_t in, int64_t out,
               int relu);
/* matmul over 'batch' matrices: y[bt] = op(a[bt]) @ op(b[bt or 0]) with op(a)
 * [M,K], op(b) [K,Nc]; a stored [M,K] or [K,M] (ta), b [K,Nc] or [Nc,K] (tb);
 * 'b_batched' 0 means one b for every batch. */
void ref_matmul(const float *a, const float *b, float *y, int64_t batch, int64_t M, int64_t K, int64_t Nc, int ta,
                int tb, int b_batched);
/* Broadcasting binary op ('+', '-', '*', '/'): shapes right-aligned to y's. */
void ref_binary(char op, const float *a, const int64_t *ad, int ar, const float *b, const int64_t *bd, int br, float *y,
                const int64_t *yd, int yr);
/* Unary ops: 'r' relu, 't' tanh, 's' sigmoid, 'k' scale by alpha. */
void ref_unary(char op, const float *x, float *y, int64_t n, double alpha);
/* softmax / log_softmax along an axis of length 'len', viewed as [outer, len, inner]. */
void ref_softmax(int is_log, const float *x, float *y, int64_t outer, int64_t len, int64_t inner);
/* y = permute(x, perm), x of rank 'r' with dims 'xd'. */
void ref_transpose(const float *x, const int64_t *xd, int r, const int64_t *perm, float *y);
/* Sums x (dims xd, rank xr) down to the broadcast source shape yd (rank yr). */
void ref_sum_to(const float *x, const int64_t *xd, int xr, float *y, const int64_t *yd, int yr);

#endif

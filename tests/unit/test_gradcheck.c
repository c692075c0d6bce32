/* test_gradcheck.c -- every gradient rule against central finite
 * differences in double.
 *
 * Each case is a tiny .dnn whose loss passes through the op under test,
 * with a raw `param` in front of the op so operand gradients are covered
 * too.  It trains with sgd(momentum=0.9) with the session's learning rate
 * set to 0 (set_lr; the compiler rejects lr=0): after one train_step the
 * state tensor optim.<p>.momentum_buffer is exactly the analytic gradient
 * (PyTorch's first step copies g into the buffer) and the parameters are
 * unchanged.  The session is saved and read back with dnrt_st_read; the
 * finite-difference side re-evaluates the loss with the double references
 * of ref_grad.c at the same parameter values (the harness: support/gradcheck.c,
 * which the gradient checks of other op families share).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "ref_grad.h"
#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- reference helpers -------------------------------------------------- */

static double *buf(int64_t n) { return calloc((size_t)(n + 1), sizeof(double)); }

/* z[i] = x[i] op p[i % pn] (numpy broadcasting of a trailing-aligned p). */
static double *bcast(const double *x, int64_t n, const double *p, int64_t pn, char op)
{
    double *z = buf(n);
    for (int64_t i = 0; i < n; i++) {
        double a = x[i], b = p[i % pn];
        z[i] = op == '+' ? a + b : op == '-' ? a - b : op == '*' ? a * b : a / b;
    }
    return z;
}

static void relu_inplace(double *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++) x[i] = x[i] > 0 ? x[i] : 0;
}

/* mse against the train input 'ti', freeing 'y'. */
static double mse_free(double *y, const Gc *g, int ti, int64_t n)
{
    double l = rg_mse(n, y, g->in[ti]);
    free(y);
    return l;
}

/* ---- cases ---------------------------------------------------------------- */

#define TRAIN_MSE(out, tshape)                                                                                         \
    "train m {\n  t: f32" tshape "\n  loss = mse(" out ", t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n"

/* dense + relu epilogue, add with broadcasting (p [4] + x [N, 4]). */
static double loss_dense(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 4, g->p[0], 4, '+'), *y = buf(n * 3);
    rg_dense(n, 4, 3, h, g->p[1], g->p[2], y);
    relu_inplace(y, n * 3);
    free(h);
    return mse_free(y, g, 1, n * 3);
}

static const GcCase case_dense = {"dense_relu_add",
                                  "model m(x: f32[N, 4]) -> (y: f32[N, 3]) {\n  param p: f32[4] = normal(std=1)\n"
                                  "  y = (x + p) |> fc: dense(3) |> relu\n}\n" TRAIN_MSE("y", "[N, 3]"),
                                  5,
                                  2,
                                  {4, 3},
                                  0,
                                  3,
                                  {"p", "fc.weight", "fc.bias"},
                                  loss_dense};

/* mse with the gradient flowing into its target operand. */
static double loss_mse_target(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 3);
    rg_dense(n, 4, 3, g->in[0], g->p[0], g->p[1], y);
    double l = rg_mse(n * 3, g->in[1], y);
    free(y);
    return l;
}

static const GcCase case_mse_target = {
    "mse_target",
    "model m(x: f32[N, 4]) -> (y: f32[N, 3]) {\n  y = x |> fc: dense(3)\n}\n"
    "train m {\n  t: f32[N, 3]\n  loss = mse(t, y)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
    3,
    2,
    {4, 3},
    0,
    2,
    {"fc.weight", "fc.bias"},
    loss_mse_target};

/* conv2d (stride 2, pad 1, bias, relu) on x * p: mul, bwd_data, bwd_filter, bias. */
static double loss_conv(const Gc *g)
{
    int64_t n = g->n;
    RgConv c = {n, 2, 5, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1, 1};
    double *h = bcast(g->in[0], n * 50, g->p[0], 50, '*'), *y = buf(n * 36);
    rg_conv2d(&c, h, g->p[1], g->p[2], y);
    relu_inplace(y, n * 36);
    free(h);
    return mse_free(y, g, 1, n * 36);
}

static const GcCase case_conv = {
    "conv2d",
    "model m(x: f32[N, 2, 5, 5]) -> (y: f32[N, 4, 3, 3]) {\n  param p: f32[2, 5, 5] = normal(mean=1, std=0.5)\n"
    "  y = (x * p) |> c: conv2d(4, kernel=3, stride=2, pad=1) |> relu\n}\n" TRAIN_MSE("y", "[N, 4, 3, 3]"),
    2,
    2,
    {50, 36},
    0,
    3,
    {"p", "c.weight", "c.bias"},
    loss_conv};

/* conv2d with groups and dilation, no bias. */
static double loss_conv_groups(const Gc *g)
{
    int64_t n = g->n;
    RgConv c = {n, 2, 5, 5, 4, 3, 3, 1, 1, 2, 2, 2, 2, 2};
    double *h = bcast(g->in[0], n * 50, g->p[0], 50, '+'), *y = buf(n * 100);
    rg_conv2d(&c, h, g->p[1], NULL, y);
    free(h);
    return mse_free(y, g, 1, n * 100);
}

static const GcCase case_conv_groups = {
    "conv2d_groups_dilation",
    "model m(x: f32[N, 2, 5, 5]) -> (y: f32[N, 4, 5, 5]) {\n  param p: f32[2, 5, 5] = normal(std=1)\n"
    "  y = (x + p) |> c: conv2d(4, kernel=3, pad=2, dilation=2, groups=2, bias=false)\n}\n" TRAIN_MSE("y",
                                                                                                      "[N, 4, 5, 5]"),
    2,
    2,
    {50, 100},
    0,
    2,
    {"p", "c.weight"},
    loss_conv_groups};

static double loss_maxpool(const Gc *g)
{
    int64_t n = g->n;
    RgPool p = {n * 2, 4, 4, 2, 2, 2, 2, 0, 0};
    double *h = bcast(g->in[0], n * 32, g->p[0], 32, '*'), *y = buf(n * 8);
    rg_maxpool2d(&p, h, y);
    free(h);
    return mse_free(y, g, 1, n * 8);
}

static const GcCase case_maxpool = {
    "maxpool2d",
    "model m(x: f32[N, 2, 4, 4]) -> (y: f32[N, 2, 2, 2]) {\n  param p: f32[2, 4, 4] = normal(std=1)\n"
    "  y = (x * p) |> maxpool(2)\n}\n" TRAIN_MSE("y", "[N, 2, 2, 2]"),
    3,
    2,
    {32, 8},
    0,
    1,
    {"p"},
    loss_maxpool};

static double loss_avgpool(const Gc *g)
{
    int64_t n = g->n;
    RgPool p = {n * 2, 5, 5, 3, 3, 2, 2, 1, 1};
    double *h = bcast(g->in[0], n * 50, g->p[0], 50, '*'), *y = buf(n * 18);
    rg_avgpool2d(&p, h, y);
    free(h);
    return mse_free(y, g, 1, n * 18);
}

static const GcCase case_avgpool = {
    "avgpool2d",
    "model m(x: f32[N, 2, 5, 5]) -> (y: f32[N, 2, 3, 3]) {\n  param p: f32[2, 5, 5] = normal(std=1)\n"
    "  y = (x * p) |> avgpool(3, stride=2, pad=1)\n}\n" TRAIN_MSE("y", "[N, 2, 3, 3]"),
    3,
    2,
    {50, 18},
    0,
    1,
    {"p"},
    loss_avgpool};

/* tanh, sigmoid, sub, div (both operands), scale, add. */
static double loss_pointwise(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 3);
    for (int64_t i = 0; i < n * 3; i++) {
        double x = g->in[0][i], p = g->p[0][i % 3], q = g->p[1][i % 3];
        y[i] = tanh(x - p) * 2.0 + 1 / (1 + exp(-(x / q))) + p / q;
    }
    return mse_free(y, g, 1, n * 3);
}

static const GcCase case_pointwise = {
    "tanh_sigmoid_sub_div_scale",
    "model m(x: f32[N, 3]) -> (y: f32[N, 3]) {\n  param p: f32[3] = normal(std=1)\n"
    "  param q: f32[3] = uniform(1, 2)\n  y = tanh(x - p) * 2.0 + sigmoid(x / q) + p / q\n}\n" TRAIN_MSE("y", "[N, 3]"),
    4,
    2,
    {3, 3},
    0,
    2,
    {"p", "q"},
    loss_pointwise};

static double loss_softmax(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 4, g->p[0], 4, '+'), *y = buf(n * 4);
    rg_softmax(n, 4, 1, h, y, 0);
    free(h);
    return mse_free(y, g, 1, n * 4);
}

static const GcCase case_softmax = {"softmax",
                                    "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n  param p: f32[4] = normal(std=1)\n"
                                    "  y = (x + p) |> softmax\n}\n" TRAIN_MSE("y", "[N, 4]"),
                                    3,
                                    2,
                                    {4, 4},
                                    0,
                                    1,
                                    {"p"},
                                    loss_softmax};

static double loss_log_softmax(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 12, g->p[0], 12, '+'), *y = buf(n * 12);
    rg_softmax(n, 3, 4, h, y, 1);
    free(h);
    return mse_free(y, g, 1, n * 12);
}

static const GcCase case_log_softmax = {
    "log_softmax_axis1",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 4]) {\n  param p: f32[3, 4] = normal(std=1)\n"
    "  y = (x + p) |> log_softmax(axis=1)\n}\n" TRAIN_MSE("y", "[N, 3, 4]"),
    2,
    2,
    {12, 12},
    0,
    1,
    {"p"},
    loss_log_softmax};

static double loss_xent(const Gc *g)
{
    int64_t n = g->n;
    double *y = buf(n * 4);
    rg_dense(n, 5, 4, g->in[0], g->p[0], g->p[1], y);
    double l = rg_cross_entropy(n, 4, y, g->label, 0.1);
    free(y);
    return l;
}

static const GcCase case_xent = {"cross_entropy_smoothing",
                                 "model m(x: f32[N, 5]) -> (y: f32[N, 4]) {\n  y = x |> fc: dense(4)\n}\n"
                                 "train m {\n  label: i32[N]\n  loss = cross_entropy(y, label, smoothing=0.1)\n"
                                 "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
                                 6,
                                 2,
                                 {5, 0},
                                 4,
                                 2,
                                 {"fc.weight", "fc.bias"},
                                 loss_xent};

/* batched matmul with a 2-d right operand: (x + a) @ b. */
static double loss_matmul(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 12, g->p[0], 12, '+'), *y = buf(n * 15);
    rg_matmul(n, 3, 4, 5, h, 0, g->p[1], 0, 0, y);
    free(h);
    return mse_free(y, g, 1, n * 15);
}

static const GcCase case_matmul = {
    "matmul",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 5]) {\n  param a: f32[3, 4] = normal(std=1)\n"
    "  param b: f32[4, 5] = normal(std=1)\n  y = (x + a) @ b\n}\n" TRAIN_MSE("y", "[N, 3, 5]"),
    2,
    2,
    {12, 15},
    0,
    2,
    {"a", "b"},
    loss_matmul};

/* transpose, flatten (reshape) and dense. */
static double loss_transpose(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 12, g->p[0], 12, '+'), *t = buf(n * 12), *y = buf(n * 2);
    for (int64_t b = 0; b < n; b++)
        for (int64_t i = 0; i < 3; i++)
            for (int64_t j = 0; j < 4; j++) t[b * 12 + j * 3 + i] = h[b * 12 + i * 4 + j];
    rg_dense(n, 12, 2, t, g->p[1], g->p[2], y);
    free(h), free(t);
    return mse_free(y, g, 1, n * 2);
}

static const GcCase case_transpose = {
    "transpose_flatten",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 2]) {\n  param p: f32[3, 4] = normal(std=1)\n"
    "  y = (x + p) |> transpose(1, 2) |> flatten |> fc: dense(2)\n}\n" TRAIN_MSE("y", "[N, 2]"),
    2,
    2,
    {12, 2},
    0,
    3,
    {"p", "fc.weight", "fc.bias"},
    loss_transpose};

/* dense on a rank-3 input: the weight gradient sums over two leading axes. */
static double loss_dense3d(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 12, g->p[0], 12, '*'), *y = buf(n * 6);
    rg_dense(n * 3, 4, 2, h, g->p[1], g->p[2], y);
    free(h);
    return mse_free(y, g, 1, n * 6);
}

static const GcCase case_dense3d = {
    "dense_rank3",
    "model m(x: f32[N, 3, 4]) -> (y: f32[N, 3, 2]) {\n  param p: f32[3, 4] = normal(std=1)\n"
    "  y = (x * p) |> fc: dense(2)\n}\n" TRAIN_MSE("y", "[N, 3, 2]"),
    2,
    2,
    {12, 6},
    0,
    3,
    {"p", "fc.weight", "fc.bias"},
    loss_dense3d};

static double loss_batchnorm(const Gc *g)
{
    int64_t n = g->n;
    double *h = bcast(g->in[0], n * 12, g->p[0], 12, '*'), *y = buf(n * 12);
    rg_batchnorm_train(n, 3, 4, h, g->p[1], g->p[2], 1e-5, y);
    free(h);
    return mse_free(y, g, 1, n * 12);
}

static const GcCase case_batchnorm = {
    "batchnorm_train",
    "model m(x: f32[N, 3, 2, 2]) -> (y: f32[N, 3, 2, 2]) {\n  param p: f32[3, 2, 2] = normal(mean=1, std=0.5)\n"
    "  y = (x * p) |> bn: batchnorm\n}\n" TRAIN_MSE("y", "[N, 3, 2, 2]"),
    4,
    2,
    {12, 12},
    0,
    3,
    {"p", "bn.weight", "bn.bias"},
    loss_batchnorm};

/* bn.weight and bn.bias start at 1 and 0 and the gradient of bn.bias is
 * the plain sum: covered above; mse against a random target keeps them
 * informative. */

static uint32_t dropout_salt; /* read from dnnc --emit=ir before the case runs */

static double loss_dropout(const Gc *g)
{
    int64_t n = g->n;
    uint8_t *keep = malloc((size_t)(n * 6));
    rg_dropout_mask(n * 6, 0.5, dropout_salt, 1234, 0, keep);
    double *y = bcast(g->in[0], n * 6, g->p[0], 6, '*');
    for (int64_t i = 0; i < n * 6; i++) y[i] = keep[i] ? y[i] / 0.5 : 0;
    free(keep);
    return mse_free(y, g, 1, n * 6);
}

static const GcCase case_dropout = {"dropout",
                                    "model m(x: f32[N, 6]) -> (y: f32[N, 6]) {\n  param p: f32[6] = normal(std=1)\n"
                                    "  y = (x * p) |> dropout(0.5)\n}\n" TRAIN_MSE("y", "[N, 6]"),
                                    8,
                                    2,
                                    {6, 6},
                                    0,
                                    1,
                                    {"p"},
                                    loss_dropout};

/* The salt the frontend gave the case's only dropout, from the IR text. */
static uint32_t find_salt(const char *src)
{
    DnTestLib lib;
    char log[256];
    /* compile once to get a temp folder with model.dnn, then print its IR */
    cr_assert_eq(dn_test_compile_text(src, "--no-train", &lib, log, sizeof log), 0, "%s", log);
    char cmd[1200], out[8192];
    char dnn[600];
    snprintf(dnn, sizeof dnn, "%.*s/model.dnn", (int)(strlen(lib.so_path) - strlen("/model.so")), lib.so_path);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir", DNNC_BIN, dnn);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    dn_test_close(&lib);
    const char *s = strstr(out, "salt");
    cr_assert(s, "no dropout salt in the IR:\n%s", out);
    while (*s && (*s < '0' || *s > '9')) s++;
    return (uint32_t)strtoul(s, NULL, 10);
}

Test(gradcheck, dense_relu_add) { dn_gradcheck(&case_dense); }
Test(gradcheck, mse_target) { dn_gradcheck(&case_mse_target); }
Test(gradcheck, conv2d) { dn_gradcheck(&case_conv); }
Test(gradcheck, conv2d_groups_dilation) { dn_gradcheck(&case_conv_groups); }
Test(gradcheck, maxpool2d) { dn_gradcheck(&case_maxpool); }
Test(gradcheck, avgpool2d) { dn_gradcheck(&case_avgpool); }
Test(gradcheck, pointwise) { dn_gradcheck(&case_pointwise); }
Test(gradcheck, softmax) { dn_gradcheck(&case_softmax); }
Test(gradcheck, log_softmax) { dn_gradcheck(&case_log_softmax); }
Test(gradcheck, cross_entropy) { dn_gradcheck(&case_xent); }
Test(gradcheck, matmul) { dn_gradcheck(&case_matmul); }
Test(gradcheck, transpose_flatten) { dn_gradcheck(&case_transpose); }
Test(gradcheck, dense_rank3) { dn_gradcheck(&case_dense3d); }
Test(gradcheck, batchnorm_train) { dn_gradcheck(&case_batchnorm); }
Test(gradcheck, dropout)
{
    dropout_salt = find_salt(case_dropout.src);
    dn_gradcheck(&case_dropout);
}

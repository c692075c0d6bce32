/* test_training.c -- the compiled training step end to end: dropout's mask
 * (reproducible, right rate, mean preserved, equal to the Philox formula
 * evaluated in C), loss decreasing, frozen parameters, exact resume from a
 * saved session, inference-only libraries, and the shape of the training
 * graph (no input gradient for the first layer).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref_grad.h"
#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- helpers ------------------------------------------------------------- */

static void compile(const char *src, const char *flags, DnTestLib *lib)
{
    char log[8192];
    int rc = dn_test_compile_text(src, flags, lib, log, sizeof log);
    cr_assert_eq(rc, 0, "compile failed: %s", log);
}

/* Saves 's' next to the library as 'tag'.safetensors and reads it back. */
static void snapshot(const DnTestLib *lib, dnrt_session *s, const char *tag, dnrt_st_file *f, char *path, size_t len)
{
    dnrt_error err = {0};
    snprintf(path, len, "%s.%s.safetensors", lib->so_path, tag);
    cr_assert_eq(lib->desc->api->save(s, path, &err), 0, "save: %s", err.message);
    cr_assert_eq(dnrt_st_read(path, f, &err), 0, "%s", err.message);
}

/* A state tensor of a saved session (asserted to exist). */
static const void *state(const dnrt_st_file *f, const char *name) { return dn_test_tensor(f, name, -1, -1); }

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-52 - 1.0);
}

/* ---- dropout -------------------------------------------------------------- */

#define DK 1000000
#define DP 0.3
/* y = dropout(x * p); with x = 1, t = 0, N = 1:  loss = mean(y^2) and
 * d loss / d p[k] = 2 y[k] keep[k] / (1 - p) / K, so the momentum buffer
 * after one step at lr 0 shows both the forward and the backward mask. */
static const char *dropout_src =
    "model m(x: f32[N, 1000000]) -> (y: f32[N, 1000000]) {\n"
    "  param p: f32[1000000] = ones\n"
    "  y = (x * p) |> dropout(0.3)\n}\n"
    "train m {\n  t: f32[N, 1000000]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n";

typedef struct DropRun {
    uint8_t *keep;
    float loss;
    double sum_y;
    int bad_scale;
} DropRun;

static DropRun dropout_run(const DnTestLib *lib, uint64_t seed)
{
    float *x = malloc(DK * 4), *t = calloc(DK, 4);
    for (int i = 0; i < DK; i++) x[i] = 1;
    const void *in[2] = {x, t};
    dnrt_session *s = dn_test_session(lib, 2, seed);
    lib->desc->api->set_lr(s, 0);
    DropRun r = {malloc(DK), dn_test_train_step(lib, s, 1, in), 0, 0};
    dnrt_st_file f;
    char path[600];
    snapshot(lib, s, "drop", &f, path, sizeof path);
    const float *g = state(&f, "optim.p.momentum_buffer");
    for (int k = 0; k < DK; k++) {
        r.keep[k] = g[k] != 0;
        double y = (double)g[k] * DK * (1 - DP) / 2; /* the forward's y[k] */
        r.sum_y += r.keep[k] ? y : 0;
        if (r.keep[k] && fabs(y - 1 / (1 - DP)) > 1e-3) r.bad_scale++;
    }
    dnrt_st_free(&f);
    unlink(path);
    lib->desc->api->destroy(s);
    free(x), free(t);
    return r;
}

Test(training, dropout_mask)
{
    DnTestLib lib;
    compile(dropout_src, "", &lib);
    DropRun a = dropout_run(&lib, 42), b = dropout_run(&lib, 42), c = dropout_run(&lib, 43);
    int64_t kept = 0, same = 0, diff = 0;
    for (int k = 0; k < DK; k++) kept += a.keep[k], same += a.keep[k] == b.keep[k], diff += a.keep[k] != c.keep[k];
    cr_expect_eq(same, DK, "same seed, different masks (%lld of %d agree)", (long long)same, DK);
    cr_expect_gt(diff, DK / 10, "seeds 42 and 43 give (nearly) the same mask");
    double rate = 1 - (double)kept / DK;
    cr_expect(fabs(rate - DP) <= 0.01 * DP, "drop rate %.5f, p = %.2f", rate, DP);
    cr_expect_eq(a.bad_scale, 0, "%d kept elements not scaled by 1/(1-p)", a.bad_scale);
    double mean = a.sum_y / DK; /* E[y] = 1; sd of the mean ~ sqrt(p/(1-p)/K) */
    cr_expect(fabs(mean - 1) <= 5 * sqrt(DP / (1 - DP) / DK), "mean after dropout %.6f, expected 1", mean);
    double loss_ref = (double)kept / (1 - DP) / (1 - DP) / DK;
    cr_expect(fabs(a.loss - loss_ref) <= 1e-4 * loss_ref, "forward mask: loss %.7g, expected %.7g", a.loss, loss_ref);

    /* The compiled mask is dnrt_philox4x32's, with the salt from the IR. */
    char dnn[600], cmd[1400], out[8192];
    snprintf(dnn, sizeof dnn, "%.*s/model.dnn", (int)(strlen(lib.so_path) - strlen("/model.so")), lib.so_path);
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir", DNNC_BIN, dnn);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    const char *sp = strstr(out, "salt");
    cr_assert(sp, "no salt in the IR:\n%s", out);
    while (*sp && (*sp < '0' || *sp > '9')) sp++;
    uint8_t *ref = malloc(DK);
    rg_dropout_mask(DK, DP, (uint32_t)strtoul(sp, NULL, 10), 42, 0, ref);
    int64_t agree = 0;
    for (int k = 0; k < DK; k++) agree += ref[k] == a.keep[k];
    cr_expect_eq(agree, DK, "compiled mask differs from dnrt_philox4x32 in %lld elements", (long long)(DK - agree));
    free(ref), free(a.keep), free(b.keep), free(c.keep);
    dn_test_close(&lib);
}

/* ---- a tiny MLP ---------------------------------------------------------- */

static const char *mlp_src = "model m(x: f32[N, 8]) -> (y: f32[N, 3]) {\n"
                             "  y = x |> fc1: dense(16) |> relu |> dropout(0.1) |> fc2: dense(3)\n}\n"
                             "train m {\n  label: i32[N]\n%s  loss = cross_entropy(y, label)\n  optimizer = %s\n}\n";

#define MN 32
static float mlp_x[MN * 8];
static int32_t mlp_label[MN];

/* Labels: argmax of a fixed linear map, so the task is learnable. */
static void mlp_data(void)
{
    for (int i = 0; i < MN * 8; i++) mlp_x[i] = urand();
    for (int n = 0; n < MN; n++) {
        float s[3] = {0};
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < 8; i++) s[c] += mlp_x[n * 8 + i] * (float)((i * 7 + c * 3) % 5 - 2);
        mlp_label[n] = s[0] > s[1] ? (s[0] > s[2] ? 0 : 2) : (s[1] > s[2] ? 1 : 2);
    }
}

static void compile_mlp(DnTestLib *lib, const char *extra, const char *optim, const char *flags)
{
    char src[2048];
    snprintf(src, sizeof src, mlp_src, extra, optim);
    compile(src, flags, lib);
}

Test(training, loss_decreases)
{
    DnTestLib lib;
    compile_mlp(&lib, "", "adam(lr=1e-2)", "");
    mlp_data();
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 7);
    float first = dn_test_train_step(&lib, s, MN, in), last = first;
    for (int i = 1; i < 20; i++) last = dn_test_train_step(&lib, s, MN, in);
    cr_expect(isfinite(first) && isfinite(last), "loss not finite: %g -> %g", first, last);
    cr_expect_lt(last, 0.7f * first, "loss did not decrease: %g -> %g over 20 steps", first, last);
    cr_expect_eq(lib.desc->api->get_step(s), 20);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

Test(training, sgd_loss_decreases)
{
    DnTestLib lib;
    compile_mlp(&lib, "", "sgd(lr=0.1, momentum=0.9, weight_decay=1e-4)", "");
    mlp_data();
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 7);
    float first = dn_test_train_step(&lib, s, MN, in), last = first;
    for (int i = 1; i < 20; i++) last = dn_test_train_step(&lib, s, MN, in);
    cr_expect_lt(last, 0.7f * first, "loss did not decrease: %g -> %g over 20 steps", first, last);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

Test(training, frozen_params_do_not_change)
{
    DnTestLib lib;
    compile_mlp(&lib, "  freeze fc1\n", "sgd(lr=0.1, momentum=0.9)", "");
    mlp_data();
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 3);
    dnrt_st_file f0, f1;
    char p0[600], p1[600];
    snapshot(&lib, s, "before", &f0, p0, sizeof p0);
    for (int i = 0; i < 3; i++) dn_test_train_step(&lib, s, MN, in);
    snapshot(&lib, s, "after", &f1, p1, sizeof p1);
    cr_expect_eq(memcmp(state(&f0, "fc1.weight"), state(&f1, "fc1.weight"), 16 * 8 * 4), 0,
                 "frozen fc1.weight changed");
    cr_expect_eq(memcmp(state(&f0, "fc1.bias"), state(&f1, "fc1.bias"), 16 * 4), 0, "frozen fc1.bias changed");
    cr_expect_neq(memcmp(state(&f0, "fc2.weight"), state(&f1, "fc2.weight"), 3 * 16 * 4), 0,
                  "fc2.weight did not train");
    cr_expect_null(dnrt_st_find(&f1, "optim.fc1.weight.momentum_buffer"), "frozen parameter has optimizer state");
    cr_expect_not_null(dnrt_st_find(&f1, "optim.fc2.weight.momentum_buffer"));
    dnrt_st_free(&f0), dnrt_st_free(&f1);
    unlink(p0), unlink(p1);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* 2 steps, save, load into a fresh session, 1 step  ==  3 steps, bitwise,
 * with Adam, a cosine schedule with warmup, and dropout (step-keyed). */
Test(training, resume_is_exact)
{
    DnTestLib lib;
    compile_mlp(&lib, "", "adam(lr=1e-2, schedule=cosine(total_steps=10), warmup=2)", "");
    mlp_data();
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_error err = {0};
    dnrt_session *a = dn_test_session(&lib, 2, 11);
    float la[3];
    for (int i = 0; i < 3; i++) la[i] = dn_test_train_step(&lib, a, MN, in);
    dnrt_session *b = dn_test_session(&lib, 2, 11);
    dn_test_train_step(&lib, b, MN, in), dn_test_train_step(&lib, b, MN, in);
    char mid[600];
    dnrt_st_file fm;
    snapshot(&lib, b, "mid", &fm, mid, sizeof mid);
    dnrt_st_free(&fm);
    lib.desc->api->destroy(b);
    dnrt_session *c = dn_test_session(&lib, 2, 11);
    cr_assert_eq(lib.desc->api->load(c, mid, &err), 0, "load: %s", err.message);
    cr_expect_eq(lib.desc->api->get_step(c), 2, "the step counter was not restored");
    float lc = dn_test_train_step(&lib, c, MN, in);
    cr_expect_eq(memcmp(&lc, &la[2], 4), 0, "resumed loss %.9g, uninterrupted %.9g", lc, la[2]);
    dnrt_st_file fa, fc;
    char pa[600], pc[600];
    snapshot(&lib, a, "a", &fa, pa, sizeof pa);
    snapshot(&lib, c, "c", &fc, pc, sizeof pc);
    cr_assert_eq(fa.ntensors, fc.ntensors);
    for (int i = 0; i < fa.ntensors; i++) {
        const dnrt_st_tensor *t = &fa.tensors[i], *u = dnrt_st_find(&fc, t->name);
        cr_assert(u && u->nbytes == t->nbytes, "tensor %s differs in shape", t->name);
        cr_expect_eq(memcmp(t->data, u->data, t->nbytes), 0, "tensor %s differs after resume", t->name);
    }
    dnrt_st_free(&fa), dnrt_st_free(&fc);
    unlink(pa), unlink(pc), unlink(mid);
    lib.desc->api->destroy(a), lib.desc->api->destroy(c);
    dn_test_close(&lib);
}

Test(training, no_train_library)
{
    DnTestLib lib;
    compile_mlp(&lib, "", "sgd(lr=0.1)", "--no-train");
    cr_expect_eq(lib.desc->trains, 0, "--no-train library says it trains");
    mlp_data();
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    float loss = 0;
    cr_expect_eq(lib.desc->api->train_step(s, MN, in, &loss, &err), -1, "train_step succeeded without a train entry");
    cr_expect_eq(err.code, DNRT_ERR_STATE, "error code %d: %s", err.code, err.message);
    cr_expect_neq(err.message[0], 0, "no error message");
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* A label outside [0, classes) is an argument error naming the input and
 * element, and the step does not run (the step counter stays). */
Test(training, label_out_of_range_is_an_error)
{
    DnTestLib lib;
    compile_mlp(&lib, "", "sgd(lr=0.1)", "");
    cr_expect_eq(lib.desc->inputs[1].valid_min, 0);
    cr_expect_eq(lib.desc->inputs[1].valid_max, 2, "label range [0, %lld], the MLP has 3 classes",
                 (long long)lib.desc->inputs[1].valid_max);
    mlp_data();
    int32_t bad[MN];
    memcpy(bad, mlp_label, sizeof bad);
    bad[3] = 3;
    const void *in[2] = {mlp_x, bad};
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    float loss = 0;
    cr_expect_eq(lib.desc->api->train_step(s, MN, in, &loss, &err), -1, "a label of 3 was accepted");
    cr_expect_eq(err.code, DNRT_ERR_ARG);
    cr_expect_str_eq(err.message,
                     "train_step: input 'label' element 3 is 3, outside [0, 2] and not -100 (ignore_index)");
    cr_expect_eq(lib.desc->api->get_step(s), 0, "the step ran");
    bad[3] = -1;
    cr_expect_eq(lib.desc->api->train_step(s, MN, in, &loss, &err), -1, "a label of -1 was accepted");
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* The first conv needs no input gradient: only conv2 gets conv2d_bwd_data. */
Test(training, lenet_graph_skips_first_input_gradient)
{
    char cmd[1200], out[1 << 16];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir-opt --graph=train", DNNC_BIN, dn_test_src("examples/lenet.dnn"));
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    int data = 0, filter = 0, adam = 0;
    for (const char *p = out; (p = strstr(p, "conv2d_bwd_data ")); p++) data++;
    for (const char *p = out; (p = strstr(p, "conv2d_bwd_filter ")); p++) filter++;
    for (const char *p = out; (p = strstr(p, "adam_update @")); p++) adam++;
    cr_expect_eq(data, 1, "conv2d_bwd_data ops: %d, expected 1 (conv2 only)", data);
    cr_expect_eq(filter, 2, "conv2d_bwd_filter ops: %d, expected 2", filter);
    cr_expect_eq(adam, 10, "adam_update ops: %d, expected one per parameter (10)", adam);
    cr_expect(strstr(out, "optim.conv1.weight.exp_avg_sq"), "no Adam state for conv1.weight");
}

/* Batchnorm: one training step updates the running statistics as PyTorch
 * (the layer's momentum, unbiased variance) and counts the batch;
 * inference then normalises with them. */
Test(training, batchnorm_running_stats)
{
    DnTestLib lib;
    compile("model m(x: f32[N, 3, 2, 2]) -> (y: f32[N, 3, 2, 2]) {\n  y = x |> bn: batchnorm(momentum=0.2)\n}\n"
            "train m {\n  t: f32[N, 3, 2, 2]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.1)\n}\n",
            "", &lib);
    enum { N = 5, C = 3, S = 4 };
    float x[N * C * S], t[N * C * S], y[N * C * S];
    for (int i = 0; i < N * C * S; i++) x[i] = urand() * 2 + (float)(i / S % C), t[i] = urand();
    const void *in[2] = {x, t};
    dnrt_session *s = dn_test_session(&lib, 2, 5);
    dn_test_train_step(&lib, s, N, in);
    dnrt_st_file f;
    char path[600];
    snapshot(&lib, s, "bn", &f, path, sizeof path);
    const float *rm = state(&f, "bn.running_mean"), *rv = state(&f, "bn.running_var");
    const float *w = state(&f, "bn.weight"), *b = state(&f, "bn.bias");
    for (int c = 0; c < C; c++) {
        double mean = 0, var = 0;
        for (int n = 0; n < N; n++)
            for (int j = 0; j < S; j++) mean += x[(n * C + c) * S + j];
        mean /= N * S;
        for (int n = 0; n < N; n++)
            for (int j = 0; j < S; j++) var += pow(x[(n * C + c) * S + j] - mean, 2);
        var /= N * S - 1;
        cr_expect(fabs(rm[c] - 0.2 * mean) <= 1e-5, "running_mean[%d] %g, expected %g", c, rm[c], 0.2 * mean);
        cr_expect(fabs(rv[c] - (0.8 + 0.2 * var)) <= 1e-5, "running_var[%d] %g, expected %g", c, rv[c],
                  0.8 + 0.2 * var);
    }
    const int64_t *nbt = (const int64_t *)state(&f, "bn.num_batches_tracked");
    cr_expect_eq(*nbt, 1, "num_batches_tracked %lld after one step", (long long)*nbt);
    dnrt_error err = {0};
    void *out[1] = {y};
    cr_assert_eq(lib.desc->api->infer(s, N, in, out, &err), 0, "infer: %s", err.message);
    for (int i = 0; i < N * C * S; i++) {
        int c = i / S % C;
        double ref = (x[i] - rm[c]) / sqrt(rv[c] + 1e-5) * w[c] + b[c];
        cr_expect(fabs(y[i] - ref) <= 1e-4 * fabs(ref) + 1e-5, "y[%d] = %g, expected %g", i, y[i], ref);
    }
    dnrt_st_free(&f);
    unlink(path);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* test_rnn_golden.c -- the recurrent layers against PyTorch
 * (tests/golden/make_rnn_goldens.py writes the references).
 *
 * nn.RNN (tanh and relu), nn.LSTM and nn.GRU with input size 3, hidden 5,
 * num_layers=2, bidirectional, batch_first, with the golden weights:
 * forward at sequence lengths 4 and 6 and batch sizes 2 and 3 (the output
 * sequence and the final states, which dnnc gives batch first: PyTorch's
 * h_n with axes 0 and 1 swapped); one SGD step (lr 0.1, momentum 0.9) of
 * mse(y, ty) + mse(h_n, th): the loss and every gradient (the momentum
 * buffers after the first step), and for the lstm the updated weights.
 * The lstm again with lengths [6, 2, 4] (PyTorch's packed sequences):
 * forward and the gradients.
 * Tolerance: 1e-4 * max|ref| + 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

enum { IN = 3, HID = 5, DIRS = 2, LD = 4 };

static const char *layer_of(const char *c) { return !strcmp(c, "rnn_relu") ? "rnn" : c; }
static bool is_lstm(const char *c) { return !strcmp(c, "lstm"); }

/* The model of case 'c' at T steps; 'len' adds the lengths input. */
static void rnn_source(const char *c, int T, bool len, char *src, size_t n)
{
    snprintf(src, n,
             "model m(x: f32[N, %d, 3]%s) -> (y: f32[N, %d, 10], h: f32[N, 4, 5]%s) {\n"
             "  r = x |> net: %s(5, num_layers=2, bidirectional=true%s%s, return_state=true)\n"
             "  y = r[0]\n  h = r[1]\n%s}\n"
             "train m {\n  ty: f32[N, %d, 10]\n  th: f32[N, 4, 5]\n  loss = add(mse(y, ty), mse(h, th))\n"
             "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
             T, len ? ", len: i32[N]" : "", T, is_lstm(c) ? ", c: f32[N, 4, 5]" : "", layer_of(c),
             !strcmp(c, "rnn_relu") ? ", nonlinearity=\"relu\"" : "", len ? ", lengths=len" : "",
             is_lstm(c) ? "  c = r[2]\n" : "", T);
}

/* The library of rnn_source; 'train' false compiles inference only (--no-train: a fraction of the time). */
static DnTestLib compiled(const char *c, int T, bool len, bool train)
{
    char src[2048], log[8192];
    rnn_source(c, T, len, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, train ? "" : "--no-train", &lib, log, sizeof log), 0, "%s", log);
    return lib;
}

/* Compares a forward's output with the golden tensor 'key'. */
static void expect_out(const dnrt_st_file *g, const char *key, const float *got, int64_t n)
{
    dn_test_expect_close(key, got, dn_test_tensor(g, key, DNRT_F32, n), n, RTOL, ATOL);
}

static void forward_case(const char *c)
{
    dnrt_st_file g;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-rnn-w-XXXXXX", key[64];
    dn_test_write_under(&g, c, "net", 16, weights);
    const int Ts[2] = {4, 6}, Bs[2] = {2, 3};
    for (int ti = 0; ti < 2; ti++) {
        DnTestLib lib = compiled(c, Ts[ti], false, false);
        const dnrt_api *api = lib.desc->api;
        dnrt_session *s = dn_test_session(&lib, 2, 1);
        dnrt_error err = {0};
        cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
        for (int bi = 0; bi < 2; bi++) {
            int64_t B = Bs[bi], T = Ts[ti], ny = B * T * DIRS * HID, nh = B * LD * HID;
            snprintf(key, sizeof key, "%s.x.T%d.b%d", c, Ts[ti], Bs[bi]);
            const void *in[1] = {dn_test_tensor(&g, key, DNRT_F32, B * T * IN)};
            float *y = calloc((size_t)ny, sizeof(float)), *h = calloc((size_t)nh, sizeof(float));
            float *cs = calloc((size_t)nh, sizeof(float));
            void *out[3] = {y, h, cs};
            cr_assert_eq(api->infer(s, B, in, out, &err), 0, "%s", err.message);
            const char *names[3] = {"y", "h", "c"};
            float *got[3] = {y, h, cs};
            int64_t num[3] = {ny, nh, nh};
            for (int o = 0; o < (is_lstm(c) ? 3 : 2); o++) {
                snprintf(key, sizeof key, "%s.%s.T%d.b%d", c, names[o], Ts[ti], Bs[bi]);
                expect_out(&g, key, got[o], num[o]);
            }
            free(y), free(h), free(cs);
        }
        api->destroy(s);
        dn_test_close(&lib);
    }
    unlink(weights);
    dnrt_st_free(&g);
}

/* One training step of case 'c' (golden prefix 'pre', the lstm's weights
 * under 'wc'): the loss and the gradients, the weights after it with 'steps'. */
static void train_case(const char *c, const char *pre, const char *wc, int T, bool len, bool steps)
{
    dnrt_st_file g, after;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-rnn-w-XXXXXX", key[96];
    dn_test_write_under(&g, wc, "net", 16, weights);
    DnTestLib lib = compiled(c, T, len, true);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    const int64_t B = 3;
    const void *in[4];
    const DnTestInput want[] = {{"x", DNRT_F32, B * T * IN},
                                {len ? "len" : NULL, DNRT_I32, B},
                                {"ty", DNRT_F32, B * T * DIRS * HID},
                                {"th", DNRT_F32, B * LD * HID}};
    dn_test_golden_inputs(&g, pre, want, 4, in);
    float loss = dn_test_train_step(&lib, s, B, in);
    snprintf(key, sizeof key, "%s.loss", pre);
    dn_test_expect_close(key, &loss, dn_test_tensor(&g, key, DNRT_F32, 1), 1, RTOL, ATOL);
    dn_test_saved_state(api, s, &after);
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "%s.net.", wc), checked = 0;
    for (int i = 0; i < g.ntensors; i++) {
        const dnrt_st_tensor *t = &g.tensors[i];
        if (strncmp(t->name, prefix, (size_t)plen)) continue;
        const char *p = t->name + strlen(wc) + 1; /* net.<param> */
        int64_t n = (int64_t)(t->nbytes / sizeof(float));
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", p);
        const float *got = dn_test_tensor(&after, key, DNRT_F32, n);
        snprintf(key, sizeof key, "%s.grad.%s", pre, p + 4);
        dn_test_expect_close(key, got, dn_test_tensor(&g, key, DNRT_F32, n), n, RTOL, ATOL);
        if (steps) {
            snprintf(key, sizeof key, "%s.step1.%s", pre, p + 4);
            dn_test_expect_close(key, dn_test_tensor(&after, p, DNRT_F32, n), dn_test_tensor(&g, key, DNRT_F32, n), n,
                                 RTOL, ATOL);
        }
        checked++;
    }
    cr_expect_eq(checked, 16);
    dnrt_st_free(&after);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

Test(rnn_golden, rnn_forward_matches_pytorch) { forward_case("rnn"); }
Test(rnn_golden, rnn_relu_forward_matches_pytorch) { forward_case("rnn_relu"); }
Test(rnn_golden, lstm_forward_matches_pytorch) { forward_case("lstm"); }
Test(rnn_golden, gru_forward_matches_pytorch) { forward_case("gru"); }
Test(rnn_golden, rnn_training_step_matches_pytorch) { train_case("rnn", "rnn.train", "rnn", 4, false, false); }
Test(rnn_golden, rnn_relu_training_step_matches_pytorch)
{
    train_case("rnn_relu", "rnn_relu.train", "rnn_relu", 4, false, false);
}
Test(rnn_golden, lstm_training_step_matches_pytorch) { train_case("lstm", "lstm.train", "lstm", 4, false, true); }
Test(rnn_golden, gru_training_step_matches_pytorch) { train_case("gru", "gru.train", "gru", 4, false, false); }

/* lengths [6, 2, 4]: zeros past each length, the states of each item's last valid step. */
Test(rnn_golden, lstm_lengths_match_packed_sequences)
{
    dnrt_st_file g;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-rnn-w-XXXXXX";
    dn_test_write_under(&g, "lstm", "net", 16, weights);
    DnTestLib lib = compiled("lstm", 6, true, false);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    const int64_t B = 3, ny = B * 6 * DIRS * HID, nh = B * LD * HID;
    const void *in[2] = {dn_test_tensor(&g, "lstm_len.x", DNRT_F32, B * 6 * IN),
                         dn_test_tensor(&g, "lstm_len.len", DNRT_I32, B)};
    float y[3 * 6 * 10], h[3 * 4 * 5], c[3 * 4 * 5];
    void *out[3] = {y, h, c};
    cr_assert_eq(api->infer(s, B, in, out, &err), 0, "%s", err.message);
    expect_out(&g, "lstm_len.y", y, ny);
    expect_out(&g, "lstm_len.h", h, nh);
    expect_out(&g, "lstm_len.c", c, nh);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

Test(rnn_golden, lstm_lengths_training_step_matches_pytorch) { train_case("lstm", "lstm_len", "lstm", 6, true, false); }

/* batch_first=false on a fixed batch: x [T, B, 3] gives y [T, B, 10], the
 * batch-first golden with axes 0 and 1 swapped (the states stay batch first). */
Test(rnn_golden, lstm_batch_first_false_transposes)
{
    dnrt_st_file g;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-rnn-w-XXXXXX", log[8192];
    dn_test_write_under(&g, "lstm", "net", 16, weights);
    const char *src = "model m(x: f32[4, 3, 3]) -> (y: f32[4, 3, 10], h: f32[3, 4, 5]) {\n"
                      "  r = x |> net: lstm(5, 2, bidirectional=true, batch_first=false, return_state=true)\n"
                      "  y = r[0]\n  h = r[1]\n}\n";
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    const float *xb = dn_test_tensor(&g, "lstm.x.T4.b3", DNRT_F32, 3 * 4 * IN);
    const float *yb = dn_test_tensor(&g, "lstm.y.T4.b3", DNRT_F32, 3 * 4 * 10);
    float x[4 * 3 * IN], y[4 * 3 * 10], yref[4 * 3 * 10], h[3 * 4 * 5];
    for (int b = 0; b < 3; b++)
        for (int t = 0; t < 4; t++) {
            memcpy(x + (t * 3 + b) * IN, xb + (b * 4 + t) * IN, IN * sizeof(float));
            memcpy(yref + (t * 3 + b) * 10, yb + (b * 4 + t) * 10, 10 * sizeof(float));
        }
    const void *in[1] = {x};
    void *out[2] = {y, h};
    cr_assert_eq(api->infer(s, 1, in, out, &err), 0, "%s", err.message);
    dn_test_expect_close("y (time first)", y, yref, 4 * 3 * 10, RTOL, ATOL);
    expect_out(&g, "lstm.h.T4.b3", h, 3 * 4 * 5);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

/* An item's arithmetic does not depend on the items sharing its call: the
 * outputs and the gradients of a step are bitwise the same on 1 and 3 threads. */
Test(rnn_golden, results_do_not_depend_on_thread_count)
{
    dnrt_st_file g, st[2];
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-rnn-w-XXXXXX";
    dn_test_write_under(&g, "gru", "net", 16, weights);
    DnTestLib lib = compiled("gru", 4, false, true);
    const dnrt_api *api = lib.desc->api;
    float y[2][3 * 4 * 10], h[2][3 * 4 * 5], loss[2];
    for (int r = 0; r < 2; r++) {
        dnrt_session *s = dn_test_session(&lib, r ? 3 : 1, 1);
        dnrt_error err = {0};
        cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
        const void *in[3] = {dn_test_tensor(&g, "gru.train.x", DNRT_F32, 3 * 4 * IN),
                             dn_test_tensor(&g, "gru.train.ty", DNRT_F32, 3 * 4 * 10),
                             dn_test_tensor(&g, "gru.train.th", DNRT_F32, 3 * 4 * 5)};
        void *out[2] = {y[r], h[r]};
        cr_assert_eq(api->infer(s, 3, in, out, &err), 0, "%s", err.message);
        loss[r] = dn_test_train_step(&lib, s, 3, in);
        dn_test_saved_state(api, s, &st[r]);
        api->destroy(s);
    }
    cr_expect(!memcmp(y[0], y[1], sizeof y[0]) && !memcmp(h[0], h[1], sizeof h[0]), "outputs differ");
    cr_expect(!memcmp(&loss[0], &loss[1], sizeof loss[0]), "loss %.9g vs %.9g", loss[0], loss[1]);
    cr_assert_eq(st[0].ntensors, st[1].ntensors);
    for (int i = 0; i < st[0].ntensors; i++) {
        const dnrt_st_tensor *a = &st[0].tensors[i], *b = dnrt_st_find(&st[1], a->name);
        cr_assert(b && a->nbytes == b->nbytes, "%s", a->name);
        cr_expect(!memcmp(a->data, b->data, a->nbytes), "%s differs between 1 and 3 threads", a->name);
    }
    dnrt_st_free(&st[0]), dnrt_st_free(&st[1]);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

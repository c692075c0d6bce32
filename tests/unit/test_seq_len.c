/* test_seq_len.c -- the run-time sequence axis T<=bound (ir/seq.c).
 *
 * One library declared with x: f32[N, T<=8, 3] runs at t = 4 and t = 6
 * against the PyTorch references of test_rnn_golden (a 2-layer
 * bidirectional LSTM and GRU: the output sequence, the final states, a
 * training step's loss and gradients, and with lengths, PyTorch's packed
 * sequences).  A character language model (embedding, LSTM, dense,
 * cross-entropy, Adam) declared T<=12 gives at t = 7 what the same model
 * written with a fixed T = 7 gives, forward and three training steps.  A t
 * outside 1..bound is refused naming the bound, and the calls without t
 * run at the bound.
 * Tolerance against PyTorch: 1e-4 * max|ref| + 1e-5 (as test_rnn_golden).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

enum { IN = 3, HID = 5, DIRS = 2, LD = 4, BOUND = 8 };

static bool is_lstm(const char *c) { return !strcmp(c, "lstm"); }

/* test_rnn_golden's model of cell 'c', with the sequence axis T<=BOUND. */
static DnTestLib seq_model(const char *c, bool len, bool train)
{
    char src[2048], log[8192];
    snprintf(src, sizeof src,
             "model m(x: f32[N, T<=%d, 3]%s) -> (y: f32[N, T, 10], h: f32[N, 4, 5]%s) {\n"
             "  r = x |> net: %s(5, num_layers=2, bidirectional=true%s, return_state=true)\n"
             "  y = r[0]\n  h = r[1]\n%s}\n"
             "train m {\n  ty: f32[N, T, 10]\n  th: f32[N, 4, 5]\n  loss = add(mse(y, ty), mse(h, th))\n"
             "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
             BOUND, len ? ", len: i32[N]" : "", is_lstm(c) ? ", c: f32[N, 4, 5]" : "", c, len ? ", lengths=len" : "",
             is_lstm(c) ? "  c = r[2]\n" : "");
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, train ? "" : "--no-train", &lib, log, sizeof log), 0, "%s", log);
    cr_assert_eq(lib.desc->seq_bound, BOUND);
    cr_assert_eq(lib.desc->inputs[0].dim[1], DNRT_DIM_SEQ);
    return lib;
}

static dnrt_session *loaded(const DnTestLib *lib, const char *weights)
{
    dnrt_session *s = dn_test_session(lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(lib->desc->api->load(s, weights, &err), 0, "%s", err.message);
    return s;
}

/* Forward at t = 4 and 6, batch 2 and 3, from one library. */
static void forward_case(const char *c)
{
    dnrt_st_file g;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-seq-w-XXXXXX", key[64];
    dn_test_write_under(&g, c, "net", 16, weights);
    DnTestLib lib = seq_model(c, false, false);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = loaded(&lib, weights);
    const int Ts[2] = {4, 6}, Bs[2] = {2, 3};
    for (int ti = 0; ti < 2; ti++)
        for (int bi = 0; bi < 2; bi++) {
            int64_t B = Bs[bi], T = Ts[ti], ny = B * T * DIRS * HID, nh = B * LD * HID;
            snprintf(key, sizeof key, "%s.x.T%d.b%d", c, Ts[ti], Bs[bi]);
            const void *in[1] = {dn_test_tensor(&g, key, DNRT_F32, B * T * IN)};
            float *out[3] = {calloc((size_t)ny, 4), calloc((size_t)nh, 4), calloc((size_t)nh, 4)};
            dnrt_error err = {0};
            cr_assert_eq(api->infer_seq(s, B, T, in, (void *const *)out, &err), 0, "%s", err.message);
            const char *names[3] = {"y", "h", "c"};
            int64_t num[3] = {ny, nh, nh};
            for (int o = 0; o < (is_lstm(c) ? 3 : 2); o++) {
                snprintf(key, sizeof key, "%s.%s.T%d.b%d", c, names[o], Ts[ti], Bs[bi]);
                dn_test_expect_close(key, out[o], dn_test_tensor(&g, key, DNRT_F32, num[o]), num[o], RTOL, ATOL);
            }
            for (int o = 0; o < 3; o++) free(out[o]);
        }
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

Test(seq_len, lstm_at_two_lengths_matches_pytorch) { forward_case("lstm"); }
Test(seq_len, gru_at_two_lengths_matches_pytorch) { forward_case("gru"); }

/* One SGD step at t = T on the golden batch 'pre' (3 items): loss and gradients. */
static void train_case(const char *pre, int T, bool len)
{
    dnrt_st_file g, after;
    dn_test_golden_open("rnn_goldens", &g);
    char weights[] = "/tmp/dnnc-seq-w-XXXXXX", key[96];
    dn_test_write_under(&g, "lstm", "net", 16, weights);
    DnTestLib lib = seq_model("lstm", len, true);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = loaded(&lib, weights);
    const int64_t B = 3;
    const void *in[4];
    const DnTestInput want[] = {{"x", DNRT_F32, B * T * IN},
                                {len ? "len" : NULL, DNRT_I32, B},
                                {"ty", DNRT_F32, B * T * DIRS * HID},
                                {"th", DNRT_F32, B * LD * HID}};
    dn_test_golden_inputs(&g, pre, want, 4, in);
    float loss = 0;
    dnrt_error err = {0};
    cr_assert_eq(api->train_step_seq(s, B, T, in, &loss, &err), 0, "%s", err.message);
    snprintf(key, sizeof key, "%s.loss", pre);
    dn_test_expect_close(key, &loss, dn_test_tensor(&g, key, DNRT_F32, 1), 1, RTOL, ATOL);
    dn_test_saved_state(api, s, &after);
    int checked = 0;
    for (int i = 0; i < g.ntensors; i++) {
        const char *name = g.tensors[i].name;
        if (strncmp(name, "lstm.net.", 9)) continue;
        int64_t n = (int64_t)(g.tensors[i].nbytes / sizeof(float));
        snprintf(key, sizeof key, "optim.net.%s.momentum_buffer", name + 9);
        const float *got = dn_test_tensor(&after, key, DNRT_F32, n);
        snprintf(key, sizeof key, "%s.grad.%s", pre, name + 9);
        dn_test_expect_close(key, got, dn_test_tensor(&g, key, DNRT_F32, n), n, RTOL, ATOL);
        checked++;
    }
    cr_expect_eq(checked, 16);
    dnrt_st_free(&after);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

Test(seq_len, lstm_training_step_at_t4_matches_pytorch) { train_case("lstm.train", 4, false); }
/* lengths [6, 2, 4] at t = 6: the masks over T and the reverse scans start at each item's end */
Test(seq_len, lstm_lengths_training_step_at_t6_matches_pytorch) { train_case("lstm_len", 6, true); }

/* ---- the same model with T<=12 and with a fixed T = 7 ------------------------ */

static DnTestLib char_lm(const char *T, const char *Tref)
{
    char src[1024], log[8192];
    snprintf(src, sizeof src,
             "model lm(tokens: i32[N, %s]) -> (logits: f32[N, %s, 16]) {\n"
             "  logits = tokens |> embed: embedding(16, 6) |> lstm: lstm(9, num_layers=2) |> head: dense(16)\n}\n"
             "train lm {\n  label: i32[N, %s]\n  loss = cross_entropy(logits, label)\n"
             "  optimizer = adam(lr=1e-2)\n}\n",
             T, Tref, Tref);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    return lib;
}

Test(seq_len, bounded_model_at_t_equals_fixed_model)
{
    DnTestLib dyn = char_lm("T<=12", "T"), fix = char_lm("7", "7");
    cr_assert_eq(fix.desc->seq_bound, 0);
    dnrt_session *sd = dn_test_session(&dyn, 2, 5), *sf = dn_test_session(&fix, 2, 5);
    const dnrt_api *ad = dyn.desc->api, *af = fix.desc->api;
    dnrt_st_file w;
    dn_test_saved_state(af, sf, &w); /* the same weights in both */
    char path[] = "/tmp/dnnc-seq-lm-XXXXXX";
    const char *names[16];
    int nw = 0;
    for (int i = 0; i < w.ntensors && nw < 16; i++)
        if (strncmp(w.tensors[i].name, "optim.", 6)) names[nw++] = w.tensors[i].name;
    dn_test_write_tensors(&w, names, nw, path);
    dnrt_error err = {0};
    cr_assert_eq(ad->load(sd, path, &err), 0, "%s", err.message);
    enum { B = 3, T = 7, V = 16 };
    int32_t tok[B * T], lab[B * T];
    for (int i = 0; i < B * T; i++) tok[i] = (i * 5 + 1) % V, lab[i] = i % 4 == 0 ? -100 : (i * 3 + 2) % V;
    float yd[B * T * V], yf[B * T * V];
    const void *in[2] = {tok, lab};
    void *od[1] = {yd}, *of[1] = {yf};
    cr_assert_eq(ad->infer_seq(sd, B, T, in, od, &err), 0, "%s", err.message);
    cr_assert_eq(af->infer(sf, B, in, of, &err), 0, "%s", err.message);
    dn_test_expect_close("logits at t = 7", yd, yf, B * T * V, 1e-6, 1e-7);
    for (int step = 0; step < 3; step++) {
        float ld = 0, lf = 0;
        cr_assert_eq(ad->train_step_seq(sd, B, T, in, &ld, &err), 0, "%s", err.message);
        cr_assert_eq(af->train_step(sf, B, in, &lf, &err), 0, "%s", err.message);
        dn_test_expect_close("loss", &ld, &lf, 1, 1e-6, 1e-7);
    }
    dnrt_st_file a, b;
    dn_test_saved_state(ad, sd, &a);
    dn_test_saved_state(af, sf, &b);
    cr_assert_eq(a.ntensors, b.ntensors);
    for (int i = 0; i < a.ntensors; i++) {
        int64_t n = (int64_t)(a.tensors[i].nbytes / 4);
        dn_test_expect_close(a.tensors[i].name, dn_test_tensor(&a, a.tensors[i].name, DNRT_F32, n),
                             dn_test_tensor(&b, a.tensors[i].name, DNRT_F32, n), n, 1e-6, 1e-7);
    }
    dnrt_st_free(&a), dnrt_st_free(&b), dnrt_st_free(&w);
    unlink(path);
    ad->destroy(sd), af->destroy(sf);
    dn_test_close(&dyn), dn_test_close(&fix);
}

Test(seq_len, lengths_outside_the_bound_are_refused)
{
    DnTestLib lib = char_lm("T<=12", "T");
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 1, 1);
    static int32_t tok[2 * 12], lab[2 * 12];
    static float y[2 * 12 * 16], y0[2 * 12 * 16];
    const void *in[2] = {tok, lab};
    void *out[1] = {y}, *out0[1] = {y0};
    dnrt_error err = {0};
    float loss;
    cr_expect_eq(api->infer_seq(s, 2, 13, in, out, &err), -1);
    cr_expect_eq(err.code, DNRT_ERR_ARG);
    cr_expect(strstr(err.message, "t = 13 is outside 1..12 (the model's T<=12)"), "%s", err.message);
    cr_expect_eq(api->train_step_seq(s, 2, -1, in, &loss, &err), -1);
    cr_expect(strstr(err.message, "train_step: sequence length t = -1"), "%s", err.message);
    cr_expect_eq(api->get_step(s), 0);
    /* without t, and with t = 0: the bound */
    cr_assert_eq(api->infer(s, 2, in, out, &err), 0, "%s", err.message);
    cr_assert_eq(api->infer_seq(s, 2, 0, in, out0, &err), 0, "%s", err.message);
    cr_expect_eq(memcmp(y, y0, sizeof y), 0);
    /* a token outside the embedding's rows is named, at any t */
    tok[2 * 5 - 1] = 16;
    cr_expect_eq(api->infer_seq(s, 2, 5, in, out, &err), -1);
    cr_expect(strstr(err.message, "input 'tokens' element 9 is 16, outside [0, 15]"), "%s", err.message);
    api->destroy(s);
    dn_test_close(&lib);
}

Test(seq_len, model_without_t_refuses_a_length)
{
    DnTestLib lib = char_lm("7", "7");
    dnrt_session *s = dn_test_session(&lib, 1, 1);
    static int32_t tok[7], lab[7];
    static float y[7 * 16];
    const void *in[2] = {tok, lab};
    void *out[1] = {y};
    dnrt_error err = {0};
    cr_expect_eq(lib.desc->api->infer_seq(s, 1, 5, in, out, &err), -1);
    cr_expect(strstr(err.message, "this model has no sequence axis"), "%s", err.message);
    cr_expect_eq(lib.desc->api->infer_seq(s, 1, 0, in, out, &err), 0, "%s", err.message);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* The header's functions take t after n. */
Test(seq_len, header_declares_t)
{
    DnTestLib lib = char_lm("T<=12", "T");
    char *h = dn_test_slurp(lib.h_path, NULL);
    cr_expect(strstr(h, "int lm_infer(lm *m, int64_t n, int64_t t,"), "%s", h);
    cr_expect(strstr(h, "int lm_train_step(lm *m, int64_t n, int64_t t,"), "%s", h);
    cr_expect(strstr(h, "1 <= t <= 12"), "%s", h);
    cr_expect(strstr(h, "i32[N, T<=12]"), "%s", h);
    free(h);
    dn_test_close(&lib);
}

/* sequence_mask(len, max_len=T): [N, T] at the call's t, 1 where t < len
   (a length past t covers every step, 0 none). */
Test(seq_len, sequence_mask_over_t)
{
    char log[8192];
    DnTestLib lib;
    const char *src = "model m(x: f32[N, T<=6, 2], len: i32[N]) -> (k: f32[N, T], y: f32[N, T, 2]) {\n"
                      "  k = sequence_mask(len, max_len=T)\n"
                      "  y = relu(x)\n"
                      "}\n";
    cr_assert_eq(dn_test_compile_text(src, "--no-train", &lib, log, sizeof log), 0, "%s", log);
    dnrt_session *s = dn_test_session(&lib, 1, 1);
    static float x[3 * 6 * 2], k[3 * 6], y[3 * 6 * 2];
    int32_t len[3] = {2, 5, 0};
    const void *in[2] = {x, len};
    void *out[2] = {k, y};
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer_seq(s, 3, 4, in, out, &err), 0, "%s", err.message);
    const float want[12] = {1, 1, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0};
    for (int i = 0; i < 12; i++) cr_expect_eq(k[i], want[i], "k[%d] = %g, want %g", i, (double)k[i], (double)want[i]);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

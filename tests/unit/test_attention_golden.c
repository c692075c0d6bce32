/* test_attention_golden.c -- attention against PyTorch
 * (tests/golden/make_attention_goldens.py writes the references).
 *
 * One model per kind (Luong dot with scale=true behind a Linear(6, 4) on
 * the keys, Luong general, Bahdanau additive with 5 units), the keys
 * masked by sequence_mask of the lengths, the context through a
 * Linear(6, 3): forward (context and weights) at key lengths 5 and 7 and
 * batch sizes 1 and 3; one SGD step (lr 0.1, momentum 0.9) of mse: the
 * loss, every gradient (the momentum buffers after the first step) and the
 * updated weights.  A row whose every key is masked (length 0) gets
 * uniform weights, so its context is the mean of the values, and training
 * goes on with a finite loss.
 * A tiny encoder-decoder with attention (examples/seq2seq_attention.dnn in
 * small, the golden's s2s_source: an embedding and a bidirectional GRU over
 * sources with lengths, a GRU decoder started from the encoder's final
 * states, Luong general attention, PyTorch's pack_padded_sequence on the
 * other side): the logits at batch sizes 1 and 3, and one SGD step of
 * cross_entropy with ignored labels: loss, gradients, weights.
 * Tolerance: 1e-4 * max|ref| + 1e-5 (references are float64).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

typedef struct Kind {
    const char *name, *keys, *extra;
    int np;
    const char *params[5];
    int64_t numel[5];
} Kind;

static const Kind kinds[] = {
    {"dot", "k |> kp: dense(4)", ", scale=true", 4, {"kp.weight", "kp.bias", "out.weight", "out.bias"}, {24, 4, 18, 3}},
    {"general", "k", "", 3, {"att.weight", "out.weight", "out.bias"}, {24, 18, 3}},
    {"additive",
     "k",
     ", units=5",
     5,
     {"att.query_proj.weight", "att.key_proj.weight", "att.v.weight", "out.weight", "out.bias"},
     {20, 30, 5, 18, 3}},
};

static void source(const Kind *k, int S, char *src, size_t len)
{
    snprintf(src, len,
             "model m(q: f32[N, 3, 4], k: f32[N, %d, 6], len: i32[N]) -> (y: f32[N, 3, 3], w: f32[N, 3, %d]) {\n"
             "  r = att: attention(q, %s, k, kind=\"%s\", mask=sequence_mask(len, max_len=%d), return_weights=true%s)\n"
             "  y = r[0] |> out: dense(3)\n  w = r[1]\n}\n"
             "train m {\n  target: f32[N, 3, 3]\n  loss = mse(y, target)\n"
             "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
             S, S, k->keys, k->name, S, k->extra);
}

/* Writes the golden tensors <kind>.<param> as <param> to a temporary weights file 'path'. */
static void write_weights(const dnrt_st_file *g, const Kind *k, char *path)
{
    dnrt_st_tensor t[5];
    char key[5][96];
    for (int i = 0; i < k->np; i++) {
        snprintf(key[i], sizeof key[i], "%s.%s", k->name, k->params[i]);
        const dnrt_st_tensor *f = dnrt_st_find(g, key[i]);
        cr_assert(f, "golden tensor %s is missing", key[i]);
        t[i] = *f;
        t[i].name = k->params[i];
    }
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, k->np, t, 0, NULL, NULL, &err), 0, "%s", err.message);
}

/* Forward of the golden batches at key length S in session 's'. */
static void forward(const dnrt_st_file *g, const Kind *k, const DnTestLib *lib, dnrt_session *s, int S)
{
    const int Bs[2] = {1, 3};
    char key[96];
    dnrt_error err = {0};
    for (int bi = 0; bi < 2; bi++) {
        int64_t B = Bs[bi];
        const char *names[3] = {"q", "k", "len"};
        const int64_t numel[3] = {B * 12, B * S * 6, B};
        const void *in[3];
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "%s.S%d.b%d.%s", k->name, S, Bs[bi], names[i]);
            in[i] = dn_test_tensor(g, key, i == 2 ? DNRT_I32 : DNRT_F32, numel[i]);
        }
        float *y = calloc((size_t)(B * 9), sizeof(float)), *w = calloc((size_t)(B * 3 * S), sizeof(float));
        void *out[2] = {y, w};
        cr_assert_eq(lib->desc->api->infer(s, B, in, out, &err), 0, "%s", err.message);
        snprintf(key, sizeof key, "%s.S%d.b%d.y", k->name, S, Bs[bi]);
        dn_test_expect_close(key, y, dn_test_tensor(g, key, DNRT_F32, B * 9), B * 9, RTOL, ATOL);
        snprintf(key, sizeof key, "%s.S%d.b%d.w", k->name, S, Bs[bi]);
        dn_test_expect_close(key, w, dn_test_tensor(g, key, DNRT_F32, B * 3 * S), B * 3 * S, RTOL, ATOL);
        free(y), free(w);
    }
}

/* One SGD step at S = 5 in session 's': the loss, the gradients and the weights after it. */
static void train(const dnrt_st_file *g, const Kind *k, const DnTestLib *lib, dnrt_session *s)
{
    char key[128], gk[128];
    const char *names[4] = {"q", "k", "len", "target"};
    const int64_t numel[4] = {48, 120, 4, 36};
    const void *in[4];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "%s.train.%s", k->name, names[i]);
        in[i] = dn_test_tensor(g, key, i == 2 ? DNRT_I32 : DNRT_F32, numel[i]);
    }
    float loss = dn_test_train_step(lib, s, 4, in);
    snprintf(key, sizeof key, "%s.train.loss", k->name);
    dn_test_expect_close(key, &loss, dn_test_tensor(g, key, DNRT_F32, 1), 1, RTOL, ATOL);
    dnrt_st_file after;
    dn_test_saved_state(lib->desc->api, s, &after);
    for (int i = 0; i < k->np; i++) {
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", k->params[i]);
        snprintf(gk, sizeof gk, "%s.grad.%s", k->name, k->params[i]);
        dn_test_expect_close(gk, dn_test_tensor(&after, key, DNRT_F32, k->numel[i]),
                             dn_test_tensor(g, gk, DNRT_F32, k->numel[i]), k->numel[i], RTOL, ATOL);
        snprintf(gk, sizeof gk, "%s.step1.%s", k->name, k->params[i]);
        dn_test_expect_close(gk, dn_test_tensor(&after, k->params[i], DNRT_F32, k->numel[i]),
                             dn_test_tensor(g, gk, DNRT_F32, k->numel[i]), k->numel[i], RTOL, ATOL);
    }
    dnrt_st_free(&after);
}

/* Forward at S = 5 and 7, and at S = 5 the training step in a fresh session. */
static void kind_case(const Kind *k)
{
    dnrt_st_file g;
    dn_test_golden_open("attention_goldens", &g);
    char weights[] = "/tmp/dnnc-att-w-XXXXXX";
    write_weights(&g, k, weights);
    for (int S = 5; S <= 7; S += 2) {
        char src[1024], log[8192];
        source(k, S, src, sizeof src);
        DnTestLib lib;
        cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
        const dnrt_api *api = lib.desc->api;
        dnrt_error err = {0};
        for (int pass = 0; pass < (S == 5 ? 2 : 1); pass++) {
            dnrt_session *s = dn_test_session(&lib, 2, 1);
            cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
            if (pass == 0)
                forward(&g, k, &lib, s, S);
            else
                train(&g, k, &lib, s);
            api->destroy(s);
        }
        dn_test_close(&lib);
    }
    unlink(weights);
    dnrt_st_free(&g);
}

Test(attention_golden, dot_matches_pytorch) { kind_case(&kinds[0]); }
Test(attention_golden, general_matches_pytorch) { kind_case(&kinds[1]); }
Test(attention_golden, additive_matches_pytorch) { kind_case(&kinds[2]); }

/* Every key of item 1 masked (length 0): its weights are uniform (every
 * score is about -1e9, the same f32 number), its context the mean of the
 * values, no NaN; item 0 (length 2) gives keys 2..3 weight 0; a training
 * step on the batch has a finite loss. */
Test(attention_golden, all_masked_row_gives_uniform_weights)
{
    const char *src = "model m(q: f32[N, 2, 3], k: f32[N, 4, 3], len: i32[N]) -> (c: f32[N, 2, 3], w: f32[N, 2, 4]) {\n"
                      "  r = attention(q, k, mask=sequence_mask(len, max_len=4), return_weights=true)\n"
                      "  c = r[0]\n  w = r[1]\n}\n"
                      "train m {\n  t: f32[N, 2, 3]\n  loss = mse(c, t)\n  optimizer = sgd(lr=0.1)\n}\n";
    char log[8192];
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    float q[12], k[24], t[12] = {0}, c[12], w[16];
    for (int i = 0; i < 12; i++) q[i] = (float)((i * 7) % 5) * 0.3f - 0.6f;
    for (int i = 0; i < 24; i++) k[i] = (float)((i * 5) % 7) * 0.25f - 0.75f;
    int32_t len[2] = {2, 0};
    const void *in[4] = {q, k, len, t};
    void *out[2] = {c, w};
    dnrt_error err = {0};
    cr_assert_eq(api->infer(s, 2, in, out, &err), 0, "%s", err.message);
    for (int i = 0; i < 2; i++) {
        cr_expect_eq(w[i * 4 + 2], 0.0f, "a masked key got weight %g", w[i * 4 + 2]);
        cr_expect_eq(w[i * 4 + 3], 0.0f, "a masked key got weight %g", w[i * 4 + 3]);
        cr_expect(fabsf(w[i * 4] + w[i * 4 + 1] - 1) < 1e-6f);
    }
    for (int i = 8; i < 16; i++) cr_expect(fabsf(w[i] - 0.25f) < 1e-6f, "all masked: weight %g, not 1/4", w[i]);
    for (int i = 0; i < 2; i++)
        for (int d = 0; d < 3; d++) {
            float mean = (k[12 + d] + k[15 + d] + k[18 + d] + k[21 + d]) / 4;
            cr_expect(fabsf(c[6 + i * 3 + d] - mean) < 1e-5f, "all masked: context %g, mean of the values %g",
                      c[6 + i * 3 + d], mean);
        }
    float loss = dn_test_train_step(&lib, s, 2, in);
    cr_expect(isfinite(loss), "loss %g", loss);
    api->destroy(s);
    dn_test_close(&lib);
}

/* ---- a tiny encoder-decoder with attention (examples/seq2seq_attention.dnn in small) ---- */

enum { S2S_MAXP = 24 };

typedef struct S2s {
    dnrt_st_file g;
    int np;
    const char *params[S2S_MAXP]; /* every parameter: the names of the golden's s2s.grad.<param> */
    int64_t numel[S2S_MAXP];
    char weights[32];
    DnTestLib lib;
    dnrt_session *s;
} S2s;

/* Compiles the golden's source and loads its initial weights (s2s.<param>). */
static void s2s_open(S2s *z)
{
    dn_test_golden_open("attention_goldens", &z->g);
    dnrt_st_tensor t[S2S_MAXP];
    z->np = 0;
    for (int i = 0; i < z->g.ntensors; i++) {
        const char *n = z->g.tensors[i].name;
        if (strncmp(n, "s2s.grad.", 9)) continue;
        cr_assert(z->np < S2S_MAXP);
        char key[128];
        snprintf(key, sizeof key, "s2s.%s", n + 9);
        const dnrt_st_tensor *w = dnrt_st_find(&z->g, key);
        cr_assert(w, "golden tensor %s is missing", key);
        t[z->np] = *w;
        t[z->np].name = z->params[z->np] = n + 9;
        z->numel[z->np] = (int64_t)(w->nbytes / 4);
        z->np++;
    }
    cr_assert_eq(z->np, 19, "the tiny seq2seq has 19 parameters, the golden %d", z->np);
    snprintf(z->weights, sizeof z->weights, "/tmp/dnnc-att-s2s-XXXXXX");
    int fd = mkstemp(z->weights);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(z->weights, z->np, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    const char *src = dnrt_st_meta(&z->g, "s2s_source");
    cr_assert(src, "attention_goldens: no s2s_source in the metadata");
    char log[8192];
    cr_assert_eq(dn_test_compile_text(src, "", &z->lib, log, sizeof log), 0, "%s", log);
    z->s = dn_test_session(&z->lib, 2, 1);
    cr_assert_eq(z->lib.desc->api->load(z->s, z->weights, &err), 0, "%s", err.message);
}

static void s2s_close(S2s *z)
{
    z->lib.desc->api->destroy(z->s);
    dn_test_close(&z->lib);
    unlink(z->weights);
    dnrt_st_free(&z->g);
}

/* Forward (logits) at B = 1 and 3. */
static void s2s_forward(S2s *z)
{
    const int Bs[2] = {1, 3};
    for (int bi = 0; bi < 2; bi++) {
        int64_t B = Bs[bi];
        char key[96];
        const char *names[3] = {"src", "src_len", "tgt_in"};
        const int64_t numel[3] = {B * 6, B, B * 4};
        const void *in[3];
        for (int i = 0; i < 3; i++) {
            snprintf(key, sizeof key, "s2s.b%d.%s", Bs[bi], names[i]);
            in[i] = dn_test_tensor(&z->g, key, DNRT_I32, numel[i]);
        }
        float *y = calloc((size_t)(B * 44), sizeof(float));
        void *out[1] = {y};
        dnrt_error err = {0};
        cr_assert_eq(z->lib.desc->api->infer(z->s, B, in, out, &err), 0, "%s", err.message);
        snprintf(key, sizeof key, "s2s.b%d.logits", Bs[bi]);
        dn_test_expect_close(key, y, dn_test_tensor(&z->g, key, DNRT_F32, B * 44), B * 44, RTOL, ATOL);
        free(y);
    }
}

/* One SGD step at B = 4: the loss, every gradient and the weights after it. */
static void s2s_train(S2s *z)
{
    char key[128], gk[128];
    const char *names[4] = {"src", "src_len", "tgt_in", "label"};
    const int64_t numel[4] = {24, 4, 16, 16};
    const void *in[4];
    for (int i = 0; i < 4; i++) {
        snprintf(key, sizeof key, "s2s.train.%s", names[i]);
        in[i] = dn_test_tensor(&z->g, key, DNRT_I32, numel[i]);
    }
    float loss = dn_test_train_step(&z->lib, z->s, 4, in);
    dn_test_expect_close("s2s.train.loss", &loss, dn_test_tensor(&z->g, "s2s.train.loss", DNRT_F32, 1), 1, RTOL, ATOL);
    dnrt_st_file after;
    dn_test_saved_state(z->lib.desc->api, z->s, &after);
    for (int i = 0; i < z->np; i++) {
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", z->params[i]);
        snprintf(gk, sizeof gk, "s2s.grad.%s", z->params[i]);
        dn_test_expect_close(gk, dn_test_tensor(&after, key, DNRT_F32, z->numel[i]),
                             dn_test_tensor(&z->g, gk, DNRT_F32, z->numel[i]), z->numel[i], RTOL, ATOL);
        snprintf(gk, sizeof gk, "s2s.step1.%s", z->params[i]);
        dn_test_expect_close(gk, dn_test_tensor(&after, z->params[i], DNRT_F32, z->numel[i]),
                             dn_test_tensor(&z->g, gk, DNRT_F32, z->numel[i]), z->numel[i], RTOL, ATOL);
    }
    dnrt_st_free(&after);
}

/* Forward in one session, the training step in a fresh one, of one compiled library. */
Test(attention_golden, seq2seq_matches_pytorch)
{
    S2s z;
    s2s_open(&z);
    s2s_forward(&z);
    const dnrt_api *api = z.lib.desc->api;
    api->destroy(z.s);
    z.s = dn_test_session(&z.lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(z.s, z.weights, &err), 0, "%s", err.message);
    s2s_train(&z);
    s2s_close(&z);
}

/* test_embed_golden.c -- the embedding family against PyTorch
 * (tests/golden/make_embed_goldens.py writes the references).
 *
 * embedding: nn.Embedding(11, 4, padding_idx=0) + nn.Linear(4, 3) with the
 * golden weights, forward at sequence lengths 5 and 8 and batch sizes 1 and
 * 3; one SGD step (lr 0.1, momentum 0.9) of mse: the loss, every gradient
 * (the momentum buffers after the first step: the padding row's is zero)
 * and the updated weights.  The runtime refuses a token outside [0, 10].
 * cross_entropy over sequences: logits [B, 6, 4] of a Linear(5, 4), labels
 * [B, 6] with positions at -100 (ignore_index), at B = 4 and, with label
 * smoothing 0.1, B = 3: the loss and the gradients.  All positions ignored:
 * the loss is NaN (PyTorch's 0/0), so the step is refused as non-finite.
 * sequence_mask at batch sizes 2 and 5 against (arange(7) < len).float().
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

static const char *const embed_params[] = {"emb.weight", "fc.weight", "fc.bias"};
static const int64_t embed_numel[] = {44, 12, 3};

static void embed_source(int T, char *src, size_t len)
{
    snprintf(src, len,
             "model m(tok: i32[N, %d]) -> (y: f32[N, %d, 3]) {\n"
             "  y = tok |> emb: embedding(11, 4, padding_idx=0) |> fc: dense(3)\n}\n"
             "train m {\n  target: f32[N, %d, 3]\n  loss = mse(y, target)\n"
             "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
             T, T, T);
}

Test(embed_golden, embedding_forward_matches_pytorch)
{
    dnrt_st_file g;
    dn_test_golden_open("embed_goldens", &g);
    char weights[] = "/tmp/dnnc-embed-w-XXXXXX";
    dn_test_write_tensors(&g, embed_params, 3, weights);
    const int Ts[2] = {5, 8}, Bs[2] = {1, 3};
    for (int ti = 0; ti < 2; ti++) {
        char src[1024], log[8192], key[64];
        embed_source(Ts[ti], src, sizeof src);
        DnTestLib lib;
        cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
        const dnrt_api *api = lib.desc->api;
        dnrt_session *s = dn_test_session(&lib, 2, 1);
        dnrt_error err = {0};
        cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
        for (int bi = 0; bi < 2; bi++) {
            int64_t B = Bs[bi], T = Ts[ti];
            snprintf(key, sizeof key, "tok.T%d.b%d", Ts[ti], Bs[bi]);
            const void *in[1] = {dn_test_tensor(&g, key, DNRT_I32, B * T)};
            float *y = calloc((size_t)(B * T * 3), sizeof(float));
            void *out[1] = {y};
            cr_assert_eq(api->infer(s, B, in, out, &err), 0, "%s", err.message);
            snprintf(key, sizeof key, "y.T%d.b%d", Ts[ti], Bs[bi]);
            dn_test_expect_close(key, y, dn_test_tensor(&g, key, DNRT_F32, B * T * 3), B * T * 3, RTOL, ATOL);
            free(y);
        }
        api->destroy(s);
        dn_test_close(&lib);
    }
    unlink(weights);
    dnrt_st_free(&g);
}

Test(embed_golden, embedding_training_step_matches_pytorch)
{
    dnrt_st_file g, after;
    dn_test_golden_open("embed_goldens", &g);
    char weights[] = "/tmp/dnnc-embed-w-XXXXXX", src[1024], log[8192], key[96];
    dn_test_write_tensors(&g, embed_params, 3, weights);
    embed_source(5, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    const void *in[2] = {dn_test_tensor(&g, "train.tok", DNRT_I32, 20),
                         dn_test_tensor(&g, "train.target", DNRT_F32, 60)};
    float loss = dn_test_train_step(&lib, s, 4, in);
    dn_test_expect_close("loss", &loss, dn_test_tensor(&g, "train.loss", DNRT_F32, 1), 1, RTOL, ATOL);
    dn_test_saved_state(api, s, &after);
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", embed_params[i]);
        const float *got = dn_test_tensor(&after, key, DNRT_F32, embed_numel[i]);
        snprintf(key, sizeof key, "grad.%s", embed_params[i]);
        dn_test_expect_close(key, got, dn_test_tensor(&g, key, DNRT_F32, embed_numel[i]), embed_numel[i], RTOL, ATOL);
        snprintf(key, sizeof key, "step1.%s", embed_params[i]);
        dn_test_expect_close(key, dn_test_tensor(&after, embed_params[i], DNRT_F32, embed_numel[i]),
                             dn_test_tensor(&g, key, DNRT_F32, embed_numel[i]), embed_numel[i], RTOL, ATOL);
    }
    const float *pad_grad = dn_test_tensor(&after, "optim.emb.weight.momentum_buffer", DNRT_F32, 44);
    for (int d = 0; d < 4; d++) cr_expect_eq(pad_grad[d], 0.0f, "the padding row got a gradient");
    dnrt_st_free(&after);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(weights);
    dnrt_st_free(&g);
}

/* The descriptor gives the token input the table's rows [0, V - 1]: infer
 * and train_step refuse a token outside them with a message naming it. */
/* padding_idx's row starts at zero, as nn.Embedding's; the other rows are drawn. */
Test(embed_golden, padding_row_starts_at_zero)
{
    char log[8192];
    DnTestLib lib;
    const char *src = "model m(tok: i32[N, 3]) -> (y: f32[N, 3, 4]) {\n"
                      "  y = tok |> e: embedding(6, 4, padding_idx=2)\n"
                      "}\n";
    cr_assert_eq(dn_test_compile_text(src, "--no-train", &lib, log, sizeof log), 0, "%s", log);
    cr_expect_eq(lib.desc->state[0].init_zero_row, 3);
    dnrt_session *s = dn_test_session(&lib, 1, 5);
    dnrt_st_file f;
    dn_test_saved_state(lib.desc->api, s, &f);
    const dnrt_st_tensor *w = dnrt_st_find(&f, "e.weight");
    cr_assert(w && w->nbytes == 6 * 4 * sizeof(float));
    const float *x = (const float *)w->data;
    for (int r = 0; r < 6; r++) {
        int zeros = 0;
        for (int c = 0; c < 4; c++) zeros += x[r * 4 + c] == 0.0f;
        cr_expect_eq(zeros, r == 2 ? 4 : 0, "row %d has %d zeros", r, zeros);
    }
    dnrt_st_free(&f);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

Test(embed_golden, out_of_range_tokens_are_refused)
{
    char src[1024], log[8192];
    embed_source(5, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_tensor_desc *t = &lib.desc->inputs[0];
    cr_expect_eq(t->valid_min, 0);
    cr_expect_eq(t->valid_max, 10);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 1, 1);
    int32_t tok[5] = {1, 2, 11, 3, 0};
    float y[15], target[15] = {0}, loss;
    const void *in[2] = {tok, target};
    void *out[1] = {y};
    dnrt_error err = {0};
    cr_expect_neq(api->infer(s, 1, in, out, &err), 0);
    cr_expect(strstr(err.message, "'tok'") && strstr(err.message, "outside [0, 10]"), "message: %s", err.message);
    tok[2] = -1;
    cr_expect_neq(api->train_step(s, 1, in, &loss, &err), 0);
    cr_expect(strstr(err.message, "outside [0, 10]"), "message: %s", err.message);
    tok[2] = 10;
    cr_expect_eq(api->infer(s, 1, in, out, &err), 0, "%s", err.message);
    api->destroy(s);
    dn_test_close(&lib);
}

static void ce_source(double smoothing, char *src, size_t len)
{
    snprintf(src, len,
             "model m(x: f32[N, 6, 5]) -> (y: f32[N, 6, 4]) {\n  y = fc: dense(x, 4)\n}\n"
             "train m {\n  label: i32[N, 6]\n  loss = cross_entropy(y, label, smoothing=%g)\n"
             "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
             smoothing);
}

/* One case of the golden file: the loss and the gradients after one step. */
static void ce_case(const char *name, int64_t B, double smoothing)
{
    dnrt_st_file g, after;
    dn_test_golden_open("embed_goldens", &g);
    char src[1024], log[8192], key[96], kb[96], wpath[] = "/tmp/dnnc-embed-ce-XXXXXX";
    snprintf(key, sizeof key, "%s.fc.weight", name);
    snprintf(kb, sizeof kb, "%s.fc.bias", name);
    dnrt_st_tensor t[2] = {*dnrt_st_find(&g, key), *dnrt_st_find(&g, kb)};
    t[0].name = "fc.weight";
    t[1].name = "fc.bias";
    int fd = mkstemp(wpath);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(wpath, 2, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    ce_source(smoothing, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    cr_assert_eq(api->load(s, wpath, &err), 0, "%s", err.message);
    snprintf(key, sizeof key, "%s.x", name);
    snprintf(kb, sizeof kb, "%s.label", name);
    const void *in[2] = {dn_test_tensor(&g, key, DNRT_F32, B * 30), dn_test_tensor(&g, kb, DNRT_I32, B * 6)};
    float loss = dn_test_train_step(&lib, s, B, in);
    snprintf(key, sizeof key, "%s.loss", name);
    dn_test_expect_close(key, &loss, dn_test_tensor(&g, key, DNRT_F32, 1), 1, RTOL, ATOL);
    dn_test_saved_state(api, s, &after);
    snprintf(key, sizeof key, "%s.grad.fc.weight", name);
    dn_test_expect_close(key, dn_test_tensor(&after, "optim.fc.weight.momentum_buffer", DNRT_F32, 20),
                         dn_test_tensor(&g, key, DNRT_F32, 20), 20, RTOL, ATOL);
    snprintf(key, sizeof key, "%s.grad.fc.bias", name);
    dn_test_expect_close(key, dn_test_tensor(&after, "optim.fc.bias.momentum_buffer", DNRT_F32, 4),
                         dn_test_tensor(&g, key, DNRT_F32, 4), 4, RTOL, ATOL);
    dnrt_st_free(&after);
    api->destroy(s);
    dn_test_close(&lib);
    unlink(wpath);
    dnrt_st_free(&g);
}

Test(embed_golden, sequence_cross_entropy_matches_pytorch) { ce_case("ce", 4, 0); }
Test(embed_golden, sequence_cross_entropy_smoothing_matches_pytorch) { ce_case("ce_smooth", 3, 0.1); }

/* Labels may hold ignore_index (-100) besides [0, K - 1]; other values are
 * refused, and a batch whose every label is ignored has a NaN loss
 * (PyTorch's 0/0), which train_step refuses as non-finite. */
Test(embed_golden, ignored_labels_are_accepted_and_others_refused)
{
    char src[1024], log[8192];
    ce_source(0, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_tensor_desc *t = &lib.desc->inputs[1];
    cr_expect_eq(t->valid_min, 0);
    cr_expect_eq(t->valid_max, 3);
    cr_expect(t->has_valid_extra && t->valid_extra == -100);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 1, 1);
    float x[30] = {0}, loss = 0;
    int32_t label[6] = {0, -100, 3, 2, -100, 1};
    const void *in[2] = {x, label};
    dnrt_error err = {0};
    cr_expect_eq(api->train_step(s, 1, in, &loss, &err), 0, "%s", err.message);
    label[2] = -1;
    cr_expect_neq(api->train_step(s, 1, in, &loss, &err), 0);
    cr_expect(strstr(err.message, "outside [0, 3] and not -100"), "message: %s", err.message);
    for (int i = 0; i < 6; i++) label[i] = -100;
    cr_expect_neq(api->train_step(s, 1, in, &loss, &err), 0);
    cr_expect_eq(err.code, DNRT_ERR_NONFINITE, "all ignored: %s", err.message);
    api->destroy(s);
    dn_test_close(&lib);
}

Test(embed_golden, sequence_mask_matches_pytorch)
{
    dnrt_st_file g;
    dn_test_golden_open("embed_goldens", &g);
    char log[8192], key[64];
    DnTestLib lib;
    const char *src = "model m(len: i32[N]) -> (y: f32[N, 7]) {\n  y = sequence_mask(len, max_len=7)\n}\n";
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    const int Bs[2] = {2, 5};
    for (int bi = 0; bi < 2; bi++) {
        int64_t B = Bs[bi];
        snprintf(key, sizeof key, "mask.len.b%d", Bs[bi]);
        const void *in[1] = {dn_test_tensor(&g, key, DNRT_I32, B)};
        float y[35];
        void *out[1] = {y};
        dnrt_error err = {0};
        cr_assert_eq(lib.desc->api->infer(s, B, in, out, &err), 0, "%s", err.message);
        snprintf(key, sizeof key, "mask.y.b%d", Bs[bi]);
        dn_test_expect_close(key, y, dn_test_tensor(&g, key, DNRT_F32, B * 7), B * 7, 0, 0);
    }
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
    dnrt_st_free(&g);
}

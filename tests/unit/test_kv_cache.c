/* test_kv_cache.c -- decoding with a KV cache: a causal Transformer
 * language model (lm: 2 pre-norm encoder layers over 7 tokens) and its step
 * model (lm_step: the same parameters, one token a call at position pos,
 * transformer_encoder(cache=7, pos=pos)) give the same logits.  The full
 * model runs once on a sequence; the step model, loaded from the full
 * model's saved weights, runs it token by token, each step appending its
 * keys and values to the cache in the session and attending over the
 * positions so far; step t's logits must equal row t of the full model's.
 * Then a second sequence from pos 0 with the same session (the cache is
 * overwritten, never reset), and a batch of 2 sequences in one step
 * model (token: i32[2, 1]).  The saved state of a step session holds no
 * cache tensor, and a step model with a train section is refused.  Also on OpenCL (test_kv_cache_opencl).
 * Tolerance rtol 1e-4, atol 1e-5 (the step sums in another order).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5
enum { T = 7, V = 11 };

#define LAYERS                                                                                                         \
    "  x = x |> enc: transformer_encoder(2, 8, 2, dim_feedforward=16, dropout=0.0, activation=\"gelu\", "              \
    "norm_first=true, is_causal=true%s)\n"                                                                             \
    "  logits = x |> norm: layernorm |> head: dense(11)\n"

/* lm and lm_step, the step at static batch 'batch'. */
static const char *source(char *buf, size_t len, int batch)
{
    char full[512], step[512];
    snprintf(full, sizeof full, LAYERS, "");
    snprintf(step, sizeof step, LAYERS, ", cache=7, pos=pos");
    snprintf(buf, len,
             "model lm(tokens: i32[N, 7]) -> (logits: f32[N, 7, 11]) {\n"
             "  x = (tokens |> emb: embedding(11, 8)) * 2 |> positional_encoding\n%s}\n"
             "model lm_step(token: i32[%d, 1], pos: i32[%d, 1]) -> (logits: f32[%d, 1, 11]) {\n"
             "  x = (token |> emb: embedding(11, 8)) * 2 |> positional_encoding(pos=pos, max_len=7)\n%s}\n",
             full, batch, batch, batch, step);
    return buf;
}

typedef struct Pair {
    DnTestLib full, step;
    dnrt_session *fs, *ss;
} Pair;

/* Compiles lm and lm_step (batch 'batch'), the step session loaded with the full one's weights. */
static void open_pair(Pair *p, int batch)
{
    static char src[4096], log[8192];
    source(src, sizeof src, batch);
    cr_assert_eq(dn_test_compile_text(src, "--model lm", &p->full, log, sizeof log), 0, "%s", log);
    cr_assert_eq(dn_test_compile_text(src, "--model lm_step", &p->step, log, sizeof log), 0, "%s", log);
    p->fs = dn_test_session(&p->full, 1, 3);
    p->ss = dn_test_session(&p->step, 1, 5);
    char path[] = "/tmp/kvcache-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(p->full.desc->api->save(p->fs, path, &err), 0, "%s", err.message);
    cr_assert_eq(p->step.desc->api->load(p->ss, path, &err), 0, "%s", err.message);
    unlink(path);
}

static void close_pair(Pair *p)
{
    p->full.desc->api->destroy(p->fs);
    p->step.desc->api->destroy(p->ss);
    dn_test_close(&p->full);
    dn_test_close(&p->step);
}

/* Runs 'batch' sequences of T tokens through both models and compares every step. */
static void expect_steps_match(Pair *p, int batch, const int32_t *tok)
{
    static float full[4 * T * V], step[4 * V];
    dnrt_error err = {0};
    const void *in[1] = {tok};
    void *out[1] = {full};
    cr_assert_eq(p->full.desc->api->infer(p->fs, batch, in, out, &err), 0, "%s", err.message);
    for (int t = 0; t < T; t++) {
        int32_t tk[4], pos[4];
        for (int b = 0; b < batch; b++) tk[b] = tok[b * T + t], pos[b] = t;
        const void *sin[2] = {tk, pos};
        void *sout[1] = {step};
        cr_assert_eq(p->step.desc->api->infer(p->ss, batch, sin, sout, &err), 0, "step %d: %s", t, err.message);
        for (int b = 0; b < batch; b++) {
            char what[64];
            snprintf(what, sizeof what, "sequence %d, step %d", b, t);
            dn_test_expect_close(what, step + b * V, full + (b * T + t) * V, V, RTOL, ATOL);
        }
    }
}

Test(kv_cache, steps_give_the_full_models_logits)
{
    Pair p;
    open_pair(&p, 1);
    static const int32_t a[T] = {3, 1, 4, 1, 5, 9, 2}, b[T] = {6, 5, 3, 5, 8, 9, 7};
    expect_steps_match(&p, 1, a);
    expect_steps_match(&p, 1, b); /* the same session from pos 0: the cache is overwritten */
    dnrt_st_file f;
    dn_test_saved_state(p.step.desc->api, p.ss, &f);
    cr_expect_null(dnrt_st_find(&f, "enc.layers.0.self_attn.k_cache"), "a cache tensor was saved");
    cr_expect_not_null(dnrt_st_find(&f, "enc.layers.0.self_attn.in_proj_weight"));
    dnrt_st_free(&f);
    close_pair(&p);
}

Test(kv_cache, a_batch_of_two_sequences_steps_together)
{
    Pair p;
    open_pair(&p, 2);
    static const int32_t ab[2 * T] = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7};
    expect_steps_match(&p, 2, ab);
    close_pair(&p);
}

/* A step model is inference only: a train section is refused at the op. */
Test(kv_cache, a_step_model_does_not_train)
{
    DnTestLib lib;
    static char log[8192];
    int rc = dn_test_compile_text("model m(tok: i32[1, 1], pos: i32[1, 1]) -> (y: f32[1, 1, 8]) {\n"
                                  "  x = tok |> emb: embedding(10, 8)\n"
                                  "  y = x |> enc: transformer_encoder(1, 8, 2, is_causal=true, cache=4, pos=pos)\n"
                                  "}\n"
                                  "train m {\n  t: f32[1, 1, 8]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.1)\n}\n",
                                  "", &lib, log, sizeof log);
    cr_assert_neq(rc, 0, "a step model with a train section compiled");
    cr_expect(strstr(log, ":3:17: error: cached_attention: a decoding step with a KV cache has no gradient"), "%s",
              log);
}

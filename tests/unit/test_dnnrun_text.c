/* test_dnnrun_text.c -- dnnrun's text and pairs data and its generate
 * command (tools/data_text.c, data_pairs.c, generate.c), run as a program
 * on tiny models compiled here.
 *
 * text: an embedding + dense bigram LM learns "abab..." (held-out bits per
 * character reported before training and falling, bits = loss / ln 2, eval
 * agrees, a seed gives the same weights, another seed other ones); missing,
 * empty and short files and mis-shaped models are errors naming them.
 * generate: greedy on the learned text continues "abab"; sampling with a
 * temperature is the same for a seed and differs for another; a step
 * library with state (h_n = 0.5 h + 0.5 e) gives exactly the bytes the
 * test recomputes through the library's own API, so the state carries the
 * prefix; wrong conventions are the documented errors.  pairs: a small
 * seq2seq model memorises 8 pairs (greedy exact match 0% before training,
 * 100% after), infer shows source -> decoded -> expected, and damaged pair
 * files and mis-shaped models are errors naming the line or the tensor. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

static char out[65536];

static int dnnrun(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", DNNRUN_BIN, args);
    return dn_test_run(cmd, out, sizeof out);
}

/* Compiles 'src' (at -O0: these models are tiny, and compile 5 times
 * faster); the library's path goes to 'so'. */
static void compile(const char *src, char *so, size_t len)
{
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_text(src, "-O0", &lib, log, sizeof log), 0, "%s", log);
    snprintf(so, len, "%s", lib.so_path);
    dn_test_close(&lib);
}

static void write_bytes(const char *path, const char *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

static void write_str(const char *path, const char *s) { write_bytes(path, s, strlen(s)); }

/* The two numbers after the last 'key' in 'text' ("held-out loss %f, %f bits/char"). */
static void last_pair(const char *text, const char *key, double *a, double *b)
{
    const char *at = NULL;
    for (const char *p = strstr(text, key); p; p = strstr(p + 1, key)) at = p;
    cr_assert(at, "no '%s' in: %s", key, text);
    cr_assert_eq(sscanf(at + strlen(key), "%lf, %lf", a, b), 2, "%s", at);
}

/* The bigram LM over windows of 16 bytes, and its step library (the same
 * parameters and optimizer, so it loads the trained weights file). */
static const char lm_src[] = "model lm(tokens: i32[N, 16]) -> (logits: f32[N, 16, 256]) {\n"
                             "  logits = tokens |> emb: embedding(256, 16) |> fc: dense(256)\n"
                             "}\n"
                             "train lm {\n"
                             "  label: i32[N, 16]\n"
                             "  loss = cross_entropy(logits, label)\n"
                             "  optimizer = adam(lr=0.05)\n"
                             "}\n";
static const char step_src[] = "model lm(tok: i32[N, 1]) -> (logits: f32[N, 1, 256]) {\n"
                               "  logits = tok |> emb: embedding(256, 16) |> fc: dense(256)\n"
                               "}\n"
                               "train lm {\n"
                               "  label: i32[N, 1]\n"
                               "  loss = cross_entropy(logits, label)\n"
                               "  optimizer = adam(lr=0.05)\n"
                               "}\n";
/* A step library with one state: h_n = 0.5 h + 0.5 e. */
static const char rstep_src[] =
    "model rstep(tok: i32[N, 1], h: f32[N, 1, 8]) -> (logits: f32[N, 1, 256], h_n: f32[N, 1, 8]) {\n"
    "  e = tok |> emb: embedding(256, 8)\n"
    "  h_n = 0.5 * h + 0.5 * e\n"
    "  logits = h_n |> fc: dense(256)\n"
    "}\n";

/* "abab..." of 'len' bytes into DIR/abab (its path into 'path'). */
static void write_ab(const char *dir, char *path, size_t plen, size_t len)
{
    char *s = malloc(len);
    for (size_t i = 0; i < len; i++) s[i] = "ab"[i % 2];
    snprintf(path, plen, "%s/abab", dir);
    write_bytes(path, s, len);
    free(s);
}

/* ---- text ------------------------------------------------------------------------ */

Test(text, learns_abab_and_reports_bits_per_char)
{
    char so[512], step[512], dir[64], txt[128], args[2048], w[128], w2[128], w3[128];
    compile(lm_src, so, sizeof so);
    compile(step_src, step, sizeof step);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-text");
    write_ab(dir, txt, sizeof txt, 800);
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(args, sizeof args, "train %s --data text:%s --epochs 2 --batch 8 --seed 5 --save %s", so, txt, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    /* 800 bytes: 80 held out, 720 to train on = 45 windows of 16 an epoch. */
    cr_expect(strstr(out, "720 training bytes, 80 held-out bytes") && strstr(out, "on 45 windows per epoch"), "%s",
              out);
    cr_expect(strstr(out, "(4 windows of 16 bytes)"), "%s", out);
    double loss0, bits0, loss1, bits1;
    static const char before[] = "before training: held-out loss ";
    const char *b0 = strstr(out, before);
    cr_assert(b0, "%s", out);
    cr_assert_eq(sscanf(b0 + strlen(before), "%lf, %lf", &loss0, &bits0), 2, "%s", b0);
    last_pair(out, "held-out loss ", &loss1, &bits1);
    cr_expect(fabs(bits0 - loss0 / log(2.0)) < 1e-3 && fabs(bits1 - loss1 / log(2.0)) < 1e-3, "%s", out);
    cr_expect(bits0 > 4, "an untrained model knows nothing: %g bits/char", bits0);
    cr_expect(bits1 < 0.5 && bits1 < bits0 / 8, "bits/char %g -> %g: not learnt", bits0, bits1);
    cr_expect(strstr(out, "epoch 2/2  step 6/6  loss") && strstr(out, "bits/char)"), "%s", out);

    snprintf(args, sizeof args, "eval %s --weights %s --data text:%s", so, w, txt);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    double le, be;
    last_pair(out, "held-out loss ", &le, &be);
    cr_expect(fabs(le - loss1) < 1e-4, "eval %g, the last epoch %g", le, loss1);

    /* The same seed gives the same weights, another seed other ones. */
    snprintf(w2, sizeof w2, "%s/w2.safetensors", dir);
    snprintf(w3, sizeof w3, "%s/w3.safetensors", dir);
    snprintf(args, sizeof args, "train %s --data text:%s --epochs 2 --batch 8 --seed 5 --save %s", so, txt, w2);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    snprintf(args, sizeof args, "train %s --data text:%s --epochs 2 --batch 8 --seed 6 --save %s", so, txt, w3);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    size_t n1, n2, n3;
    char *a = dn_test_slurp(w, &n1), *b = dn_test_slurp(w2, &n2), *c = dn_test_slurp(w3, &n3);
    cr_expect(n1 == n2 && !memcmp(a, b, n1), "seed 5 twice gave different weights");
    cr_expect(n1 != n3 || memcmp(a, c, n1), "seeds 5 and 6 gave the same weights");
    free(a), free(b), free(c);

    /* Greedy generation from the step library continues the pattern. */
    snprintf(args, sizeof args, "generate %s --weights %s --prompt ab --greedy --length 20", step, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect_str_eq(out, "ababababababababababab\n");
    snprintf(args, sizeof args, "generate %s --weights %s --prompt aba --greedy --length 5", step, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect_str_eq(out, "abababab\n");
    dn_test_rmtree(dir);
}

Test(text, bad_files_and_models_named)
{
    char so[512], dir[64], path[128], path2[128], args[2048];
    compile(lm_src, so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-text");
    snprintf(path, sizeof path, "%s/none.txt", dir);
    snprintf(args, sizeof args, "train %s --data text:%s --save %s/w.safetensors", so, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "none.txt: cannot open: No such file"), "%s", out);

    snprintf(path, sizeof path, "%s/empty.txt", dir);
    write_str(path, "");
    snprintf(args, sizeof args, "train %s --data text:%s --save %s/w.safetensors", so, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "empty.txt: empty file"), "%s", out);

    /* The second of two files is shorter than a window of T + 1 = 17 bytes. */
    write_ab(dir, path2, sizeof path2, 400);
    snprintf(path, sizeof path, "%s/short.txt", dir);
    write_str(path, "sixteen bytes!!!");
    snprintf(args, sizeof args, "train %s --data text:%s,%s --save %s/w.safetensors", so, path2, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "short.txt: 16 bytes, shorter than one window of T + 1 = 17 bytes"), "%s", out);
    snprintf(args, sizeof args, "train %s --data text:%s, --save %s/w.safetensors", so, path2, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "an empty file name"), "%s", out);

    /* 100 bytes hold windows to train on but no held-out window (10 bytes). */
    write_ab(dir, path, sizeof path, 100);
    snprintf(args, sizeof args, "train %s --data text:%s --save %s/w.safetensors", so, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "no held-out window") && strstr(out, "at least 170 bytes"), "%s", out);

    /* Models that do not fit: a float input; logits of fewer than 256 values. */
    char bad[512];
    compile("model f(x: f32[N, 16]) -> (y: f32[N, 16, 256]) {\n  y = x |> reshape(-1, 16, 1) |> fc: dense(256)\n}\n",
            bad, sizeof bad);
    snprintf(args, sizeof args, "eval %s --weights w --data text:%s", bad, path2);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "model 'f' does not take one i32[N, T] token input"), "%s", out);
    compile(
        "model g(t: i32[N, 16]) -> (y: f32[N, 16, 100]) {\n  y = t |> emb: embedding(256, 4) |> fc: dense(100)\n}\n",
        bad, sizeof bad);
    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data text:%s", bad, dir, path2);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "compiled without a train section"), "%s", out);
    snprintf(args, sizeof args, "eval %s --weights %s/w.safetensors --data text:%s", bad, dir, path2);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "model 'g': text data needs a first output f32[N, 16, V] of logits with V >= 256"), "%s",
              out);

    snprintf(args, sizeof args, "infer %s --weights w --data text:%s", so, path2);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "infer: text data has no examples"), "%s", out);
    snprintf(args, sizeof args, "eval %s --weights w --data text:%s --test x", so, path2);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "--test FILE goes with --data pairs:FILE only"), "%s", out);
    dn_test_rmtree(dir);
}

/* ---- generate ---------------------------------------------------------------------- */

/* Compiles 'src' and saves a session's initial weights (seed 'seed') to DIR/init.safetensors. */
static void init_weights(const char *src, uint64_t seed, const char *dir, char *so, size_t solen, char *w, size_t wlen)
{
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_text(src, "-O0", &lib, log, sizeof log), 0, "%s", log);
    snprintf(so, solen, "%s", lib.so_path);
    snprintf(w, wlen, "%s/init.safetensors", dir);
    dnrt_session *s = dn_test_session(&lib, 1, seed);
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->save(s, w, &err), 0, "%s", err.message);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

Test(generate, sampling_is_seeded)
{
    char so[512], dir[64], w[128], args[2048], first[4096];
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-gen");
    init_weights(rstep_src, 3, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt hi --length 60 --temperature 1.5 --seed 1", so, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    memcpy(first, out, sizeof first);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(!memcmp(first, out, 2 + 60 + 1), "seed 1 twice gave different text");
    cr_expect(!memcmp(out, "hi", 2) && out[62] == '\n', "the prompt, 60 bytes, a newline: %s", out);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt hi --length 60 --temperature 1.5 --seed 2", so, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(memcmp(first, out, 2 + 60), "seeds 1 and 2 gave the same text");
    /* Sampling among the top 1 is the argmax, whatever the seed. */
    snprintf(args, sizeof args, "generate %s --weights %s --prompt hi --length 30 --greedy", so, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    memcpy(first, out, sizeof first);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt hi --length 30 --top-k 1 --seed 9", so, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(!memcmp(first, out, 2 + 30 + 1), "--top-k 1 is not --greedy");
    dn_test_rmtree(dir);
}

/* dnnrun's greedy bytes equal those of a loop over the library's own infer,
 * which feeds every step's new state back: the state carries the prefix. */
Test(generate, state_carries_the_prefix)
{
    char so[512], dir[64], w[128], args[2048];
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-gen");
    init_weights(rstep_src, 11, dir, so, sizeof so, w, sizeof w);
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_text(rstep_src, "-O0", &lib, log, sizeof log), 0, "%s", log);
    dnrt_session *s = dn_test_session(&lib, 1, 0);
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->load(s, w, &err), 0, "%s", err.message);
    const char *prompt = "hello";
    enum { L = 40 };
    char want[64];
    int32_t tok;
    float h[8] = {0}, hn[8], z[256];
    const void *in[2] = {&tok, h};
    void *o[2] = {z, hn};
    size_t at = 0;
    for (size_t i = 0; i < strlen(prompt) + L; i++) {
        tok = i < strlen(prompt) ? (uint8_t)prompt[i] : (uint8_t)want[at - 1];
        if (i < strlen(prompt)) want[at++] = prompt[i];
        cr_assert_eq(lib.desc->api->infer(s, 1, in, o, &err), 0, "%s", err.message);
        memcpy(h, hn, sizeof h);
        if (i + 1 < strlen(prompt)) continue;
        int best = 0;
        for (int k = 1; k < 256; k++)
            if (z[k] > z[best]) best = k;
        if (at < strlen(prompt) + L) want[at++] = (char)best;
    }
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt %s --greedy --length %d", so, w, prompt, L);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(!memcmp(out, want, strlen(prompt) + L) && out[strlen(prompt) + L] == '\n',
              "dnnrun's greedy text is not the library's");
    dn_test_rmtree(dir);
}

/* A Transformer step library with a KV cache of 12 positions (token and
 * pos i32[1, 1]): dnnrun's greedy bytes equal the argmax of the full causal
 * model (the same weights) run on each prefix, and generation stops when
 * the cache is full, saying so; a prompt longer than the cache is an error. */
#define TF_LAYERS(extra)                                                                                               \
    "  x = x |> enc: transformer_encoder(1, 8, 2, dim_feedforward=12, dropout=0.0, norm_first=true, "                  \
    "is_causal=true" extra ")\n  logits = x |> head: dense(256)\n}\n"
static const char tf_step_src[] =
    "model s(token: i32[1, 1], pos: i32[1, 1]) -> (logits: f32[1, 1, 256]) {\n"
    "  x = (token |> emb: embedding(256, 8)) |> positional_encoding(pos=pos, max_len=12)\n" TF_LAYERS(
        ", cache=12, pos=pos");
static const char tf_full_src[] = "model lm(tokens: i32[N, 12]) -> (logits: f32[N, 12, 256]) {\n"
                                  "  x = (tokens |> emb: embedding(256, 8)) |> positional_encoding\n" TF_LAYERS("");

Test(generate, kv_cache_step_continues_as_the_full_model)
{
    char so[512], dir[64], w[128], args[2048];
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-gen");
    init_weights(tf_step_src, 7, dir, so, sizeof so, w, sizeof w);
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_text(tf_full_src, "-O0", &lib, log, sizeof log), 0, "%s", log);
    dnrt_session *s = dn_test_session(&lib, 1, 0);
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->load(s, w, &err), 0, "%s", err.message);
    int32_t seq[12] = {'h', 'e', 'y'};
    static float z[12 * 256];
    char want[16] = "hey";
    for (int len = 3; len <= 12; len++) { /* the byte after seq[0..len-1]; the last one is not fed back */
        const void *in[1] = {seq};
        void *o[1] = {z};
        cr_assert_eq(lib.desc->api->infer(s, 1, in, o, &err), 0, "%s", err.message);
        const float *row = z + (len - 1) * 256;
        int best = 0;
        for (int k = 1; k < 256; k++)
            if (row[k] > row[best]) best = k;
        want[len] = (char)best;
        if (len < 12) seq[len] = best;
    }
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt hey --length 20 --greedy", so, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(!memcmp(out, want, 13) && out[13] == '\n', "dnnrun generated '%.13s', the full model '%.13s'", out, want);
    cr_expect(strstr(out, "stopped after 10 of 20 bytes: the step's KV cache holds 12 positions"), "%s", out);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt 'a prompt of 22 bytes..' --length 2", so, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "the prompt has 22 bytes but the step's KV cache holds 12 positions"), "%s", out);
    dn_test_rmtree(dir);
}

Test(generate, wrong_conventions_are_errors)
{
    char so[512], dir[64], w[128], args[2048];
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-gen");
    /* The windowed LM is no step library. */
    init_weights(lm_src, 1, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a", so, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "first input is i32[N, 1] or i32[1, 1] (one token a step), got i32[N, 16]"), "%s", out);
    /* A state input without its new state. */
    init_weights("model s(tok: i32[N, 1], h: f32[N, 1, 8]) -> (logits: f32[N, 1, 256]) {\n"
                 "  logits = 0.5 * h + 0.5 * (tok |> emb: embedding(256, 8)) |> fc: dense(256)\n"
                 "}\n",
                 1, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a", so, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "has 1 state input(s) but 0 output(s) after the logits"), "%s", out);
    /* New states in the wrong order. */
    init_weights("model s(tok: i32[N, 1], h: f32[N, 1, 8], c: f32[N, 1, 4]) -> "
                 "(logits: f32[N, 1, 256], c_n: f32[N, 1, 4], h_n: f32[N, 1, 8]) {\n"
                 "  h_n = 0.5 * h + 0.5 * (tok |> emb: embedding(256, 8))\n"
                 "  c_n = 0.5 * c\n"
                 "  logits = h_n |> fc: dense(256)\n"
                 "}\n",
                 1, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a", so, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "output 1 'c_n' is f32[N, 1, 4] but state input 1 'h' is f32[N, 1, 8]"), "%s", out);
    /* More logits than bytes. */
    init_weights("model s(tok: i32[N, 1]) -> (logits: f32[N, 1, 300]) {\n"
                 "  logits = tok |> emb: embedding(256, 8) |> fc: dense(300)\n"
                 "}\n",
                 1, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a", so, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "first output f32[N, 1, V] of logits (f32[1, 1, V] for a token i32[1, 1]) with V <= 256") &&
                  strstr(out, "got f32[N, 1, 300]"),
              "%s", out);
    /* A zero-state (bigram) model is fine. */
    init_weights("model s(tok: i32[N, 1]) -> (logits: f32[N, 1, 256]) {\n"
                 "  logits = tok |> emb: embedding(256, 8) |> fc: dense(256)\n"
                 "}\n",
                 1, dir, so, sizeof so, w, sizeof w);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a --length 3", so, w);
    cr_expect_eq(dnnrun(args), 0, "%s", out);
    snprintf(args, sizeof args, "generate %s --weights %s", so, w);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "--prompt TEXT (at least one byte) is required"), "%s", out);
    snprintf(args, sizeof args, "eval %s --weights %s --prompt a", so, w);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "--prompt goes with generate only"), "%s", out);
    snprintf(args, sizeof args, "generate %s --weights %s --prompt a --temperature 0", so, w);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "--temperature expects a positive number"), "%s", out);
    dn_test_rmtree(dir);
}

/* ---- pairs --------------------------------------------------------------------------- */

/* A toy seq2seq model: every output position sees the whole source (a
 * dense layer over its flattened embedding) and its tgt_in token. */
static const char s2s_src[] =
    "model s2s(src: i32[N, 8], src_len: i32[N], tgt_in: i32[N, 8]) -> (logits: f32[N, 8, 256]) {\n"
    "  s = src |> semb: embedding(256, 8) |> flatten |> sfc: dense(64) |> reshape(-1, 8, 8)\n"
    "  t = tgt_in |> temb: embedding(256, 8)\n"
    "  logits = s + t |> relu |> out: dense(256)\n"
    "}\n"
    "train s2s {\n"
    "  label: i32[N, 8]\n"
    "  loss = cross_entropy(logits, label)\n"
    "  optimizer = adam(lr=0.02)\n"
    "}\n";

static const char pairs_text[] = "uno\t1\ndos\t2\ntres\t3\ncuatro\t4\ncinco\t5\ndiez\t10\nonce\t11\ndieciséis\t16\n";

Test(pairs, memorises_and_decodes_greedily)
{
    char so[512], dir[64], path[128], w[128], args[2048];
    compile(s2s_src, so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-pairs");
    snprintf(path, sizeof path, "%s/p.tsv", dir);
    /* "dieciséis" is 9 bytes: too long for src; the file without it. */
    write_str(path, pairs_text);
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(args, sizeof args, "train %s --data pairs:%s --test %s --epochs 60 --batch 8 --save %s", so, path, path,
             w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "p.tsv:8: the source is 10 bytes, longer than the 8 of the model's src"), "%s", out);
    write_bytes(path, pairs_text, strstr(pairs_text, "dieci") - pairs_text);

    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "before training: exact match 0.00% (0 of 7 pairs"), "%s", out);
    cr_expect(strstr(out, "epoch 60/60 done") && strstr(out, "exact match 100.00% (7 of 7 pairs"), "%s", out);
    snprintf(args, sizeof args, "eval %s --weights %s --data pairs:%s", so, w, path);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    double loss;
    const char *tf = strstr(out, "teacher-forced loss ");
    cr_assert(strstr(out, "exact match 100.00% (7 of 7 pairs") && tf, "%s", out);
    cr_expect(sscanf(tf + 20, "%lf", &loss) == 1 && loss < 0.1, "%s", out);
    snprintf(args, sizeof args, "infer %s --weights %s --data pairs:%s --count 6", so, w, path);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "uno → 1 → 1  ok\n") && strstr(out, "diez → 10 → 10  ok\n") && strstr(out, "6 of 6 exact"),
              "%s", out);
    dn_test_rmtree(dir);
}

/* Writes 'text' to DIR/bad.tsv and expects train to fail naming 'want'. */
static void expect_bad_file(const char *so, const char *dir, const char *text, const char *want)
{
    char path[128], args[2048];
    snprintf(path, sizeof path, "%s/bad.tsv", dir);
    write_str(path, text);
    snprintf(args, sizeof args, "train %s --data pairs:%s --test %s --save %s/w.safetensors", so, path, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, want), "want '%s' in: %s", want, out);
}

Test(pairs, damaged_files_and_models_named)
{
    char so[512], dir[64], args[2048], path[128];
    compile(s2s_src, so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-pairs");
    expect_bad_file(so, dir, "uno\t1\ndos\t2\ntres 3\n", "bad.tsv:3: no tab");
    expect_bad_file(so, dir, "uno\t1\n\ndos\t2\n", "bad.tsv:2: empty line");
    expect_bad_file(so, dir, "uno\t1\t1\n", "bad.tsv:1: more than one tab");
    expect_bad_file(so, dir, "uno\t1\r\nveintidós\t22\r\n", "bad.tsv:2: the source is 10 bytes");
    expect_bad_file(so, dir, "uno\t1\ndos\t1234567\nx\t12345678\n",
                    "bad.tsv:3: the target is 8 bytes, longer than "
                    "T - 1 = 7");
    expect_bad_file(so, dir, "", "bad.tsv: no pairs");
    snprintf(path, sizeof path, "%s/bad.tsv", dir);
    write_str(path, "uno\t1\n");
    snprintf(args, sizeof args, "train %s --data pairs:%s --save %s/w.safetensors", so, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "needs --test FILE"), "%s", out);
    snprintf(args, sizeof args, "train %s --data pairs:%s --test %s/none.tsv --save %s/w.safetensors", so, path, dir,
             dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "none.tsv: cannot open"), "%s", out);

    /* Models: no tgt_in; a label of another length; an input pairs does not feed. */
    char bad[512];
    compile("model m(src: i32[N, 8]) -> (logits: f32[N, 8, 256]) {\n"
            "  logits = src |> emb: embedding(256, 4) |> fc: dense(256)\n"
            "}\n"
            "train m {\n  label: i32[N, 8]\n  loss = cross_entropy(logits, label)\n  optimizer = sgd(lr=0.1)\n}\n",
            bad, sizeof bad);
    snprintf(args, sizeof args, "train %s --data pairs:%s --test %s --save %s/w.safetensors", bad, path, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "model 'm' has no input 'tgt_in: i32[N, T]'"), "%s", out);
    compile("model m(src: i32[N, 8], tgt_in: i32[N, 8]) -> (logits: f32[N, 8, 256]) {\n"
            "  logits = (src |> emb: embedding(256, 4)) + (tgt_in |> temb: embedding(256, 4)) |> fc: dense(256)\n"
            "}\n"
            "train m {\n  label: i32[N, 8, 1]\n  loss = mse(logits, logits)\n  optimizer = sgd(lr=0.1)\n}\n",
            bad, sizeof bad);
    snprintf(args, sizeof args, "train %s --data pairs:%s --test %s --save %s/w.safetensors", bad, path, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "'label' must be i32[N, 8] (train only) for pairs data, got i32[N, 8, 1]"), "%s", out);
    compile("model m(src: i32[N, 8], tgt_in: i32[N, 8], extra: f32[N, 2]) -> (logits: f32[N, 8, 256]) {\n"
            "  logits = (src |> emb: embedding(256, 4)) + (tgt_in |> temb: embedding(256, 4)) |> fc: dense(256)\n"
            "}\n",
            bad, sizeof bad);
    snprintf(args, sizeof args, "eval %s --data pairs:%s --weights %s/w.safetensors", bad, path, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "input 'extra' is none of src, src_len, tgt_in, label"), "%s", out);
    dn_test_rmtree(dir);
}

/* test_flash_attention.c -- the tile-attention pass and the flash_attention
 * kernels against the untiled ops they replace: one model compiled twice,
 * with -fno-tile-attention (matmul, scale, the biases, softmax, matmul)
 * and with the pass (flash_attention forward, flash_attention_bwd in the
 * training step), the outputs at batch 3 and the weights after two SGD
 * steps compared (the step's gradients flow through q, k and v from dense
 * layers).  Cases: self-attention over 20 positions with a key mask
 * [N, 1, 1, T] and causal, cross-attention from 20 queries over 13 keys
 * with a [Tq, Tk] mask and without N in the bias, a model with no mask,
 * and a causal one with a single head over 40 positions (the kernel's
 * split backward; the others take the per-head one);
 * each at small tiles (--attention-tile=3x8: several query and key tiles,
 * a last tile of each that is partial, causal tiles skipped) and at the
 * target's default tiles.  Also on OpenCL (test_flash_attention_opencl).
 * Tolerance rtol 2e-5, atol 1e-6: the online softmax sums in another order.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 2e-5
#define ATOL 1e-6
enum { B = 3, T = 20, S = 13, H = 2, D = 8, DV = 6 };

typedef struct Case {
    const char *name;
    const char *source;
    int64_t tk; /* keys */
    int mask;   /* 0 none, 1 [N, 1, 1, Tk], 2 [Tq, Tk] */
} Case;

#define TRAIN "train att {\n  t: f32[N, 2, 20, 6]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.5)\n}\n"

static const Case self_masked = {"self-attention, key mask and causal",
                                 "model att(x: f32[N, 2, 20, 8], m: f32[N, 1, 1, 20]) -> (y: f32[N, 2, 20, 6]) {\n"
                                 "  q = x |> wq: dense(8)\n  k = x |> wk: dense(8)\n  v = x |> wv: dense(6)\n"
                                 "  y = scaled_dot_product_attention(q, k, v, mask=m, is_causal=true)\n}\n" TRAIN,
                                 T, 1};

static const Case cross_masked = {
    "cross-attention over 13 keys, a [Tq, Tk] mask",
    "model att(x: f32[N, 2, 20, 8], mem: f32[N, 2, 13, 8], m: f32[20, 13]) -> (y: f32[N, 2, 20, 6]) {\n"
    "  q = x |> wq: dense(8)\n  k = mem |> wk: dense(8)\n  v = mem |> wv: dense(6)\n"
    "  y = scaled_dot_product_attention(q, k, v, mask=m, scale=0.3)\n}\n" TRAIN,
    S, 2};

static const Case plain = {"no mask",
                           "model att(x: f32[N, 2, 20, 8]) -> (y: f32[N, 2, 20, 6]) {\n"
                           "  q = x |> wq: dense(8)\n  k = x |> wk: dense(8)\n  v = x |> wv: dense(6)\n"
                           "  y = scaled_dot_product_attention(q, k, v)\n}\n" TRAIN,
                           T, 0};

static const Case one_head = {"one head over 40 positions, causal",
                              "model att(x: f32[N, 40, 8]) -> (y: f32[N, 40, 6]) {\n"
                              "  q = x |> wq: dense(8)\n  k = x |> wk: dense(8)\n  v = x |> wv: dense(6)\n"
                              "  y = scaled_dot_product_attention(q, k, v, is_causal=true)\n}\n"
                              "train att {\n  t: f32[N, 40, 6]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.5)\n}\n",
                              H *T, 0};

static float frand(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xffff) / 65536.0f * 2.0f - 1.0f;
}

/* The case's inputs in descriptor order (x, [mem], [m], t), deterministic. */
typedef struct Inputs {
    float *x, *mem, *m, *t;
    const void *in[4];
    int nin;
} Inputs;

static void make_inputs(const Case *c, Inputs *p)
{
    unsigned seed = 7;
    memset(p, 0, sizeof *p);
    p->x = malloc(sizeof(float) * B * H * T * D);
    for (int i = 0; i < B * H * T * D; i++) p->x[i] = frand(&seed);
    p->in[p->nin++] = p->x;
    if (c->tk == S) {
        p->mem = malloc(sizeof(float) * B * H * S * D);
        for (int i = 0; i < B * H * S * D; i++) p->mem[i] = frand(&seed);
        p->in[p->nin++] = p->mem;
    }
    if (c->mask == 1) { /* item b masks its last 3 b keys (padding); key 0 stays, so no row loses every key */
        p->m = malloc(sizeof(float) * B * c->tk);
        for (int b = 0; b < B; b++)
            for (int j = 0; j < c->tk; j++) p->m[b * c->tk + j] = j < c->tk - 3 * b ? 1.0f : 0.0f;
    } else if (c->mask == 2) { /* query i sees keys j != i % 5 */
        p->m = malloc(sizeof(float) * T * c->tk);
        for (int i = 0; i < T; i++)
            for (int j = 0; j < c->tk; j++) p->m[i * c->tk + j] = j % 5 != i % 5 ? 1.0f : 0.0f;
    }
    if (p->m) p->in[p->nin++] = p->m;
    p->t = malloc(sizeof(float) * B * H * T * DV);
    for (int i = 0; i < B * H * T * DV; i++) p->t[i] = frand(&seed) * 0.5f;
    p->in[p->nin++] = p->t;
}

static void free_inputs(Inputs *p) { free(p->x), free(p->mem), free(p->m), free(p->t); }

static void compile(const Case *c, const char *flags, DnTestLib *lib)
{
    char log[8192];
    cr_assert_eq(dn_test_compile_text(c->source, flags, lib, log, sizeof log), 0, "%s: %s", c->name, log);
}

/* Outputs at batch B, then two SGD steps and the saved weights. */
static void run(const DnTestLib *lib, const Inputs *p, const char *weights, float *y, float loss[2], dnrt_st_file *w)
{
    const dnrt_api *api = lib->desc->api;
    dnrt_session *s = dn_test_session(lib, 2, 1);
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    void *out[1] = {y};
    cr_assert_eq(api->infer(s, B, p->in, out, &err), 0, "%s", err.message);
    for (int i = 0; i < 2; i++) loss[i] = dn_test_train_step(lib, s, B, p->in);
    dn_test_saved_state(api, s, w);
    api->destroy(s);
}

static void expect_same(const Case *c, const char *flags)
{
    DnTestLib ref, tiled;
    compile(c, "-fno-tile-attention", &ref);
    compile(c, flags, &tiled);
    /* the same initial weights in both: the reference session's, saved */
    dnrt_session *s0 = dn_test_session(&ref, 1, 3);
    dnrt_st_file w0;
    dn_test_saved_state(ref.desc->api, s0, &w0);
    ref.desc->api->destroy(s0);
    const char *names[16];
    int nw = 0;
    for (int i = 0; i < w0.ntensors && nw < 16; i++)
        if (strncmp(w0.tensors[i].name, "optim.", 6)) names[nw++] = w0.tensors[i].name;
    char path[] = "/tmp/dnnc-flash-XXXXXX";
    dn_test_write_tensors(&w0, names, nw, path);

    Inputs p;
    make_inputs(c, &p);
    static float ya[B * H * T * DV], yb[B * H * T * DV];
    float la[2], lb[2];
    dnrt_st_file wa, wb;
    run(&ref, &p, path, ya, la, &wa);
    run(&tiled, &p, path, yb, lb, &wb);
    char what[256];
    snprintf(what, sizeof what, "%s (%s): outputs", c->name, flags);
    dn_test_expect_close(what, yb, ya, B * H * T * DV, RTOL, ATOL);
    snprintf(what, sizeof what, "%s (%s): losses", c->name, flags);
    dn_test_expect_close(what, lb, la, 2, RTOL, ATOL);
    for (int i = 0; i < nw; i++) {
        int64_t n = (int64_t)(dnrt_st_find(&wa, names[i])->nbytes / 4);
        snprintf(what, sizeof what, "%s (%s): %s after two steps", c->name, flags, names[i]);
        dn_test_expect_close(what, dn_test_tensor(&wb, names[i], DNRT_F32, n),
                             dn_test_tensor(&wa, names[i], DNRT_F32, n), n, RTOL, ATOL);
    }
    dnrt_st_free(&wa), dnrt_st_free(&wb), dnrt_st_free(&w0);
    free_inputs(&p);
    unlink(path);
    dn_test_close(&ref), dn_test_close(&tiled);
}

Test(flash_attention, self_attention_masked_causal_small_tiles) { expect_same(&self_masked, "--attention-tile=3x8"); }
Test(flash_attention, self_attention_masked_causal_default_tiles) { expect_same(&self_masked, ""); }
Test(flash_attention, cross_attention_small_tiles) { expect_same(&cross_masked, "--attention-tile=7x8"); }
Test(flash_attention, cross_attention_default_tiles) { expect_same(&cross_masked, ""); }
Test(flash_attention, no_mask_small_tiles) { expect_same(&plain, "--attention-tile=4x16"); }
Test(flash_attention, one_head_causal_small_tiles) { expect_same(&one_head, "--attention-tile=6x8"); }
Test(flash_attention, one_head_causal_default_tiles) { expect_same(&one_head, ""); }

/* The pass did rewrite these models: the tiled library's IR has the op and
 * no softmax, the reference's the reverse. */
Test(flash_attention, the_pass_rewrites_the_pattern)
{
    char cmd[1024], out[65536];
    char dir[256];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-flash-ir");
    char src[512];
    snprintf(src, sizeof src, "%s/model.dnn", dir);
    FILE *f = fopen(src, "w");
    cr_assert(f);
    fputs(self_masked.source, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "%s %s --graph=train --emit=ir-opt", DNNC_BIN, src);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "= flash_attention %") && strstr(out, "= flash_attention_bwd %"), "%s", out);
    cr_expect(!strstr(out, "softmax"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s %s --graph=train --emit=ir-opt -fno-tile-attention", DNNC_BIN, src);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "softmax") && !strstr(out, "flash_attention"), "%s", out);
    dn_test_rmtree(dir);
}

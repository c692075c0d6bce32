/* test_gemm.c -- the GEMM convolution kernels (llvm_gemm.c,
 * kernel_conv_gemm.c, kernel_conv_bwd_gemm.c) against the direct ones.
 *
 * Each case is a conv2d between a raw `param` (so dx is needed) and an mse
 * loss, compiled twice: as usual (GEMM kernels where their scratch fits)
 * and with DNNC_CONV_DIRECT=1 (the direct loops, which test_gradcheck
 * checks against finite differences).  Shapes are picked to reach the
 * micro-kernel's edges: partial row tiles, partial and multiple column
 * tiles (masked lanes), one- and two-vector tiles, groups, stride,
 * padding, dilation, several accumulator blocks in bwd_filter, and an odd
 * batch split over two threads.  Compared: the inference output, and the
 * gradients of one sgd step with lr 0 (the momentum buffers, as in
 * test_gradcheck).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

typedef struct ConvCase {
    const char *name;
    int64_t C, H, W, O, OH, OW; /* OH, OW: the output size the attributes give */
    const char *attrs;          /* conv2d arguments after the channel count */
    const char *act;            /* "" or " |> relu" */
    int has_bias;
} ConvCase;

enum { BATCH = 3 };

static void model_text(const ConvCase *c, char *src, size_t len)
{
    snprintf(src, len,
             "model m(x: f32[N, %lld, %lld, %lld]) -> (y: f32[N, %lld, %lld, %lld]) {\n"
             "  param p: f32[%lld, %lld, %lld] = normal(std=1)\n"
             "  y = (x * p) |> c: conv2d(%lld, %s)%s\n}\n"
             "train m {\n  t: f32[N, %lld, %lld, %lld]\n  loss = mse(y, t)\n"
             "  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
             (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O, (long long)c->OH,
             (long long)c->OW, (long long)c->C, (long long)c->H, (long long)c->W, (long long)c->O, c->attrs, c->act,
             (long long)c->O, (long long)c->OH, (long long)c->OW);
}

/* The results of one library: y of infer, then the gradients of p,
 * c.weight and (if any) c.bias, concatenated; *len elements (malloc'd). */
static float *run_lib(const ConvCase *c, const char *src, bool direct, const float *x, const float *t, int64_t *len)
{
    DnTestLib lib;
    char log[8192];
    if (direct) setenv("DNNC_CONV_DIRECT", "1", 1);
    int rc = dn_test_compile_text(src, "", &lib, log, sizeof log);
    unsetenv("DNNC_CONV_DIRECT");
    cr_assert_eq(rc, 0, "%s: compile failed: %s", c->name, log);
    const dnrt_api *api = lib.desc->api;
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 2, .seed = 7};
    dnrt_session *s = api->create(lib.desc, &opt, &err);
    cr_assert(s, "%s: %s", c->name, err.message);
    int64_t ny = BATCH * c->O * c->OH * c->OW, cap = ny + 2 * c->C * c->H * c->W * c->O + c->O + 16;
    float *out = malloc((size_t)cap * sizeof *out);
    const void *in[2] = {x, t};
    void *outs[1] = {out};
    cr_assert_eq(api->infer(s, BATCH, in, outs, &err), 0, "%s: %s", c->name, err.message);
    float loss;
    api->set_lr(s, 0);
    cr_assert_eq(api->train_step(s, BATCH, in, &loss, &err), 0, "%s: %s", c->name, err.message);
    char path[600];
    snprintf(path, sizeof path, "%s.state.safetensors", lib.so_path);
    cr_assert_eq(api->save(s, path, &err), 0, "%s: %s", c->name, err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s: %s", c->name, err.message);
    const char *names[3] = {"optim.p.momentum_buffer", "optim.c.weight.momentum_buffer", "optim.c.bias.momentum_buffer"};
    *len = ny;
    for (int i = 0; i < 2 + c->has_bias; i++) {
        const dnrt_st_tensor *g = dnrt_st_find(&f, names[i]);
        cr_assert(g, "%s: no tensor %s", c->name, names[i]);
        int64_t n = (int64_t)(g->nbytes / 4);
        cr_assert(*len + n <= cap);
        memcpy(out + *len, g->data, g->nbytes);
        *len += n;
    }
    dnrt_st_free(&f);
    unlink(path);
    api->destroy(s);
    dn_test_close(&lib);
    return out;
}

static void run_case(const ConvCase *c)
{
    char src[2048];
    model_text(c, src, sizeof src);
    int64_t nx = BATCH * c->C * c->H * c->W, nt = BATCH * c->O * c->OH * c->OW;
    float *x = malloc((size_t)nx * sizeof *x), *t = malloc((size_t)nt * sizeof *t);
    uint32_t r = 12345;
    for (int64_t i = 0; i < nx; i++) r = r * 1664525u + 1013904223u, x[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    for (int64_t i = 0; i < nt; i++) r = r * 1664525u + 1013904223u, t[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    int64_t ng, nr;
    float *got = run_lib(c, src, false, x, t, &ng), *ref = run_lib(c, src, true, x, t, &nr);
    cr_assert_eq(ng, nr, "%s: %lld results, direct %lld", c->name, (long long)ng, (long long)nr);
    /* y on its scale, the gradients on theirs */
    int64_t bad = dn_test_close_enough(got, ref, nt, 1e-5, 1e-6);
    cr_expect(bad < 0, "%s: y[%lld] = %.8g, direct %.8g", c->name, (long long)bad, bad < 0 ? 0 : got[bad],
              bad < 0 ? 0 : ref[bad]);
    bad = dn_test_close_enough(got + nt, ref + nt, ng - nt, 1e-4, 1e-6);
    cr_expect(bad < 0, "%s: gradient element %lld = %.8g, direct %.8g", c->name, (long long)bad,
              bad < 0 ? 0 : got[nt + bad], bad < 0 ? 0 : ref[nt + bad]);
    free(got), free(ref), free(x), free(t);
}

/* LeNet-5's two convolutions (conv1 pads; conv2 has 16 = 2 vectors of channels). */
Test(gemm, lenet_conv1) { run_case(&(ConvCase){"lenet_conv1", 1, 28, 28, 6, 28, 28, "kernel=5, pad=2", " |> relu", 1}); }
Test(gemm, lenet_conv2) { run_case(&(ConvCase){"lenet_conv2", 6, 14, 14, 16, 10, 10, "kernel=5", " |> relu", 1}); }
/* 20 channels: a full 16-wide tile and a masked 4-lane one; stride 2. */
Test(gemm, stride_pad_masked)
{
    run_case(&(ConvCase){"stride_pad_masked", 3, 9, 11, 20, 5, 6, "kernel=3, stride=2, pad=1", "", 1});
}
/* Groups of 6 outputs (one-vector tiles), dilation, no bias. */
Test(gemm, groups_dilation)
{
    run_case(&(ConvCase){"groups_dilation", 4, 10, 10, 12, 10, 10, "kernel=3, pad=2, dilation=2, groups=2, bias=false",
                         "", 0});
}
/* Three groups of 4 outputs, 12-row tiles with a partial last one. */
Test(gemm, groups3_narrow)
{
    run_case(&(ConvCase){"groups3_narrow", 6, 7, 9, 12, 5, 7, "kernel=3", " |> relu", 1});
}
/* 576 filter rows: more than one accumulator block in bwd_filter. */
Test(gemm, many_rows) { run_case(&(ConvCase){"many_rows", 64, 6, 6, 16, 6, 6, "kernel=3, pad=1", "", 1}); }
/* 40 channels: two 16-wide tiles and a masked 8-lane one; asymmetric stride. */
Test(gemm, wide) { run_case(&(ConvCase){"wide", 5, 12, 8, 40, 5, 6, "kernel=[3, 3], stride=[2, 1], pad=[0, 0]", "", 1}); }

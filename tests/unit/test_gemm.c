/* test_gemm.c -- the GEMM kernels (llvm_gemm.c and the conv/matmul
 * kernels on it) against the direct ones.
 *
 * Each case is a small model with a raw `param` in front of the op under
 * test (so the input gradient is needed too) and an mse loss, compiled
 * twice: as usual (GEMM kernels where they apply) and with dnnc --direct-kernels
 * (the direct loops, which test_gradcheck checks against finite
 * differences).  Shapes are picked to reach the micro-kernel's edges:
 * partial row tiles, partial and multiple column tiles (masked lanes),
 * one- and two-vector tiles, groups, stride, padding, dilation, several
 * accumulator blocks in bwd_filter, run-time row counts and reductions
 * over the batch, batches split over two threads.  Compared: the inference
 * output, and the gradients of one sgd step with lr 0 (the momentum
 * buffers, as in test_gradcheck).  The GEMM build is compiled twice: for
 * the host (16-lane vectors where it has AVX-512) and with
 * --features=+avx2,+fma (the 8-lane micro-kernel), each against the direct
 * loops.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

typedef struct GemmCase {
    const char *name;
    const char *body;   /* the model's statement computing y from h = x * p */
    const char *xshape; /* item shape of x and p, e.g. "6, 14, 14" */
    const char *yshape; /* item shape of y */
    int64_t nx, ny;     /* elements per item */
    int64_t batch;
    const char *grads[4]; /* parameters whose gradients are compared (NULL-terminated) */
} GemmCase;

static void model_text(const GemmCase *c, char *src, size_t len)
{
    snprintf(src, len,
             "model m(x: f32[N, %s]) -> (y: f32[N, %s]) {\n  param p: f32[%s] = normal(std=1)\n"
             "  h = x * p\n  y = %s\n}\n"
             "train m {\n  t: f32[N, %s]\n  loss = mse(y, t)\n  optimizer = sgd(lr=1, momentum=0.9)\n}\n",
             c->xshape, c->yshape, c->xshape, c->body, c->yshape);
}

/* Appends the momentum buffer of parameter 'name' to out[*len ...]. */
static void append_grad(const GemmCase *c, const dnrt_st_file *f, const char *name, float *out, int64_t cap,
                        int64_t *len)
{
    char bname[256];
    snprintf(bname, sizeof bname, "optim.%s.momentum_buffer", name);
    const dnrt_st_tensor *g = dnrt_st_find(f, bname);
    cr_assert(g, "%s: no tensor %s", c->name, bname);
    int64_t n = (int64_t)(g->nbytes / 4);
    cr_assert(*len + n <= cap, "%s: gradients larger than expected", c->name);
    memcpy(out + *len, g->data, g->nbytes);
    *len += n;
}

/* The results of one library: y of infer, then the gradients, concatenated;
 * *len elements (malloc'd). */
static float *run_lib(const GemmCase *c, const char *src, const char *flags, const float *x, const float *t,
                      int64_t *len)
{
    DnTestLib lib;
    char log[8192];
    int rc = dn_test_compile_text(src, flags, &lib, log, sizeof log);
    cr_assert_eq(rc, 0, "%s: compile failed: %s", c->name, log);
    const dnrt_api *api = lib.desc->api;
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 2, .seed = 7};
    dnrt_session *s = api->create(lib.desc, &opt, &err);
    cr_assert(s, "%s: %s", c->name, err.message);
    int64_t cap = c->batch * c->ny + (1 << 20);
    float *out = malloc((size_t)cap * sizeof *out);
    const void *in[2] = {x, t};
    void *outs[1] = {out};
    cr_assert_eq(api->infer(s, c->batch, in, outs, &err), 0, "%s: %s", c->name, err.message);
    float loss;
    api->set_lr(s, 0);
    cr_assert_eq(api->train_step(s, c->batch, in, &loss, &err), 0, "%s: %s", c->name, err.message);
    char path[600];
    snprintf(path, sizeof path, "%s.state.safetensors", lib.so_path);
    cr_assert_eq(api->save(s, path, &err), 0, "%s: %s", c->name, err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s: %s", c->name, err.message);
    *len = c->batch * c->ny;
    for (int i = 0; c->grads[i]; i++) append_grad(c, &f, c->grads[i], out, cap, len);
    dnrt_st_free(&f);
    unlink(path);
    api->destroy(s);
    dn_test_close(&lib);
    return out;
}

/* Compares the GEMM builds with the direct loops; 'also' (or NULL): the
 * flags of one more build compared the same way. */
static void run_case_also(const GemmCase *c, const char *also)
{
    char src[2048];
    model_text(c, src, sizeof src);
    int64_t nx = c->batch * c->nx, ny = c->batch * c->ny;
    float *x = malloc((size_t)nx * sizeof *x), *t = malloc((size_t)ny * sizeof *t);
    uint32_t r = 12345;
    for (int64_t i = 0; i < nx; i++) r = r * 1664525u + 1013904223u, x[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    for (int64_t i = 0; i < ny; i++) r = r * 1664525u + 1013904223u, t[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    int64_t nr;
    float *ref = run_lib(c, src, "--direct-kernels", x, t, &nr);
    const char *const builds[] = {"", "--features=+avx2,+fma", also};
    for (int b = 0; b < 3 && builds[b]; b++) {
        int64_t ng;
        float *got = run_lib(c, src, builds[b], x, t, &ng);
        const char *how = b ? builds[b] : "host features";
        cr_assert_eq(ng, nr, "%s (%s): %lld results, direct %lld", c->name, how, (long long)ng, (long long)nr);
        /* y on its scale, the gradients on theirs */
        int64_t bad = dn_test_close_enough(got, ref, ny, 1e-5, 1e-6);
        cr_expect(bad < 0, "%s (%s): y[%lld] = %.8g, direct %.8g", c->name, how, (long long)bad, bad < 0 ? 0 : got[bad],
                  bad < 0 ? 0 : ref[bad]);
        bad = dn_test_close_enough(got + ny, ref + ny, ng - ny, 1e-4, 1e-6);
        cr_expect(bad < 0, "%s (%s): gradient element %lld = %.8g, direct %.8g", c->name, how, (long long)bad,
                  bad < 0 ? 0 : got[ny + bad], bad < 0 ? 0 : ref[ny + bad]);
        free(got);
    }
    free(ref), free(x), free(t);
}

static void run_case(const GemmCase *c) { run_case_also(c, NULL); }

#define CONV_GRADS                                                                                                     \
    {                                                                                                                  \
        "p", "c.weight", "c.bias", NULL                                                                                \
    }

/* LeNet-5's two convolutions (conv1 pads; conv2 has 16 = 2 vectors of channels). */
Test(gemm, lenet_conv1)
{
    run_case(&(GemmCase){"lenet_conv1", "h |> c: conv2d(6, kernel=5, pad=2) |> relu", "1, 28, 28", "6, 28, 28", 784,
                         6 * 784, 3, CONV_GRADS});
}
Test(gemm, lenet_conv2)
{
    run_case(&(GemmCase){"lenet_conv2", "h |> c: conv2d(16, kernel=5) |> relu", "6, 14, 14", "16, 10, 10", 6 * 196,
                         1600, 5, CONV_GRADS});
}
/* 20 channels: a full 16-wide tile and a masked 4-lane one; stride 2. */
Test(gemm, stride_pad_masked)
{
    run_case(&(GemmCase){"stride_pad_masked", "h |> c: conv2d(20, kernel=3, stride=2, pad=1)", "3, 9, 11", "20, 5, 6",
                         3 * 99, 20 * 30, 3, CONV_GRADS});
}
/* Groups of 6 outputs (one-vector tiles), dilation, no bias. */
Test(gemm, groups_dilation)
{
    run_case(&(GemmCase){"groups_dilation",
                         "h |> c: conv2d(12, kernel=3, pad=2, dilation=2, groups=2, bias=false)",
                         "4, 10, 10",
                         "12, 10, 10",
                         400,
                         1200,
                         3,
                         {"p", "c.weight", NULL}});
}
/* Three groups of 4 outputs, 12-row tiles with a partial last one. */
Test(gemm, groups3_narrow)
{
    run_case(&(GemmCase){"groups3_narrow", "h |> c: conv2d(12, kernel=3, groups=3) |> relu", "6, 7, 9", "12, 5, 7",
                         6 * 63, 12 * 35, 3, CONV_GRADS});
}
/* 576 filter rows: more than one accumulator block in bwd_filter. */
Test(gemm, many_rows)
{
    run_case(&(GemmCase){"many_rows", "h |> c: conv2d(16, kernel=3, pad=1)", "64, 6, 6", "16, 6, 6", 64 * 36, 16 * 36,
                         2, CONV_GRADS});
}
/* 40 channels: two 16-wide tiles and a masked 8-lane one; asymmetric stride. */
Test(gemm, wide)
{
    run_case(&(GemmCase){"wide", "h |> c: conv2d(40, kernel=[3, 3], stride=[2, 1])", "5, 12, 8", "40, 5, 6", 480, 1200,
                         3, CONV_GRADS});
}
/* Dense layers: dx = dy · W (rows = batch: full tiles and single rows) and
 * dW = dyᵀ · x (a reduction over the batch), odd widths. */
Test(gemm, mlp)
{
    run_case(&(GemmCase){"mlp",
                         "h |> fc1: dense(20) |> relu |> fc2: dense(13)",
                         "37",
                         "13",
                         37,
                         13,
                         17,
                         {"p", "fc1.weight", "fc2.weight", NULL}});
}
Test(gemm, mlp_one_row)
{
    run_case(&(GemmCase){"mlp_one_row",
                         "h |> fc1: dense(9) |> fc2: dense(3)",
                         "5",
                         "3",
                         5,
                         3,
                         1,
                         {"p", "fc1.weight", "fc2.weight", NULL}});
}
/* Weights of 300 x 450 (540 KB): dx = dy · W packs W in KC x NC blocks --
 * KC blocks of 256 + 44 and 256 + 194 reductions, column blocks of
 * 256 + 194 and 256 + 44 with a partial last panel -- at batch 70 (the two
 * workers' 35 rows), not at batch 20 (10 rows each).  dW = dyᵀ x reduces
 * over the batch: at batch 300 its b (x, 300 x 450 floats) is large
 * enough to pack, at 70 it is not. */
static void mlp_packed(const char *name, int64_t batch)
{
    run_case(&(GemmCase){name,
                         "h |> fc1: dense(450) |> relu |> fc2: dense(300)",
                         "300",
                         "300",
                         300,
                         300,
                         batch,
                         {"p", "fc1.weight", "fc2.weight", NULL}});
}
Test(gemm, mlp_packed) { mlp_packed("mlp_packed", 70); }
Test(gemm, mlp_packed_few_rows) { mlp_packed("mlp_packed_few_rows", 20); }
Test(gemm, mlp_packed_large_batch) { mlp_packed("mlp_packed_large_batch", 300); }
/* The band form of conv2d forward (scratch bounded whatever the image):
 * 3x3 pad 1 with four channel blocks (bias at the first, relu at the last)
 * and a masked column tile. */
Test(gemm, band_3x3)
{
    run_case(&(GemmCase){"band_3x3", "h |> c: conv2d(72, kernel=3, pad=1) |> relu", "64, 9, 11", "72, 9, 11", 64 * 99,
                         72 * 99, 3, CONV_GRADS});
}
/* 1x1 stride 2 (ResNet's downsample): two output-channel blocks of 65 rows. */
Test(gemm, band_1x1_stride2)
{
    run_case(&(GemmCase){"band_1x1_stride2",
                         "h |> c: conv2d(130, kernel=1, stride=2, bias=false)",
                         "260, 7, 9",
                         "130, 4, 5",
                         260 * 63,
                         130 * 20,
                         3,
                         {"p", "c.weight", NULL}});
}
/* Groups, dilation, stride 2, padding wider than the kernel reach: bands
 * shortened to fit the scratch, a partial last band. */
Test(gemm, band_groups_dilation)
{
    run_case(&(GemmCase){"band_groups_dilation",
                         "h |> c: conv2d(128, kernel=5, stride=2, pad=3, dilation=2, groups=2) |> relu", "40, 30, 70",
                         "128, 14, 34", 40 * 30 * 70, 128 * 14 * 34, 2, CONV_GRADS});
}
/* Stride 1 along H takes the flat band layout (the band's rows as one GEMM):
 * dilation along H, stride 2 along W (the copy's even-column shuffle), a
 * shorter last band (13 rows: 7 + 6) with its own GEMM width. */
Test(gemm, band_flat_dilation)
{
    run_case(&(GemmCase){"band_flat_dilation", "h |> c: conv2d(48, kernel=3, stride=[1, 2], pad=2, dilation=2) |> relu",
                         "80, 13, 40", "48, 13, 20", 80 * 13 * 40, 48 * 13 * 20, 2, CONV_GRADS});
}
/* Winograd F(2x2, 3x3) (kernel_conv_winograd.c; band_3x3 above takes it too):
 * odd output sizes (the last tile row and column half outside y), 19
 * channels (a last group of 3 in the weight transform), 21 tiles a row (a
 * last group of 5), 11 tile rows in blocks of 4, 4 and 3; and the same
 * shape with --no-winograd (the band form). */
Test(gemm, winograd_edges)
{
    run_case_also(&(GemmCase){"winograd_edges", "h |> c: conv2d(20, kernel=3, pad=1) |> relu", "19, 21, 41",
                              "20, 21, 41", 19 * 21 * 41, 20 * 21 * 41, 2, CONV_GRADS},
                  "--no-winograd");
}
/* Padding 2 on all sides, no bias, two blocks of 64 output channels (one
 * block of tiles: each unit transforms the same inputs). */
Test(gemm, winograd_pad2_channel_blocks)
{
    run_case(&(GemmCase){"winograd_pad2_channel_blocks",
                         "h |> c: conv2d(128, kernel=3, pad=2, bias=false)",
                         "16, 14, 14",
                         "128, 16, 16",
                         16 * 196,
                         128 * 256,
                         2,
                         {"p", "c.weight", NULL}});
}
/* 256 input channels: V would outgrow its bound with all 10 tile rows in
 * one unit, so two blocks of 5. */
Test(gemm, winograd_wide_rows)
{
    run_case(&(GemmCase){"winograd_wide_rows", "h |> c: conv2d(16, kernel=3, pad=1)", "256, 20, 20", "16, 20, 20",
                         256 * 400, 16 * 400, 2, CONV_GRADS});
}
/* conv2d_bwd_data at stride 1 in the band form (flipped, transposed kernel):
 * groups, dilation, asymmetric kernel and padding. */
Test(gemm, band_bwd_data_groups)
{
    run_case(&(GemmCase){"band_bwd_data_groups",
                         "h |> c: conv2d(48, kernel=[3, 5], pad=[1, 3], dilation=[2, 1], groups=3)", "48, 12, 20",
                         "48, 10, 22", 48 * 240, 48 * 220, 2, CONV_GRADS});
}
/* Padding wider than the kernel: the transposed convolution crops (negative padding). */
Test(gemm, band_bwd_data_crop)
{
    run_case(&(GemmCase){"band_bwd_data_crop", "h |> c: conv2d(40, kernel=[1, 3], pad=[1, 2])", "64, 14, 30",
                         "40, 16, 32", 64 * 420, 40 * 512, 2, CONV_GRADS});
}
/* Many input channels at stride 2: conv2d_bwd_data in pieces of col rows
 * (full blocks and a partial one), bwd_filter from band buffers. */
Test(gemm, band_wide_stride2)
{
    run_case(&(GemmCase){"band_wide_stride2", "h |> c: conv2d(16, kernel=3, stride=2, pad=1)", "400, 9, 70",
                         "16, 5, 35", 400 * 630, 16 * 175, 2, CONV_GRADS});
}

/* test_gpu_rnn.c -- the GPU kernels of rnn_scan and rnn_scan_bwd
 * (backends/gpu/gpu_kernel_rnn.c) on OpenCL (PoCL on the CPU in CI),
 * against the double-precision reference of ir/rnn_cell.h
 * (support/ref_rnn.c).  Each case is an IR model (.dnir) whose body is one
 * rnn_scan and one rnn_scan_bwd fed with the scan's own saved steps, every
 * operand a model input: every cell, forward and reverse, with and without
 * a mask (items of full length, a shorter one and an empty one), the batch
 * symbolic or fixed, hidden sizes below and above one work-group.  The
 * reference's backward is itself checked against central differences of
 * its forward, so both directions are checked against the spec's cells.
 * Where the CUDA toolkit is installed, NVRTC must compile the same kernels.
 *
 * Tolerance: |gpu - ref| <= 2e-5 * max|ref| + 2e-6 per tensor (float
 * against double over a few steps).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backends/gpu/nvrtc.h"
#include "ir/rnn_cell.h"
#include "ref_ops.h"
#include "ref_rnn.h"
#include "testlib.h"

typedef struct Case {
    const char *cell;
    int reverse, masked;
    int64_t n, T, H;
    int fixed; /* the batch is a fixed n instead of N */
} Case;

typedef struct Dims {
    int64_t G, S, K;
} Dims;

static Dims dims_of(const char *cell)
{
    const DnRnnCellInfo *c = dn_rnn_cell(cell);
    cr_assert(c, "unknown cell %s", cell);
    return (Dims){c->gates, c->state, c->saved};
}

/* The operands of a case, as floats (what the model gets) and doubles (the
 * same values, for the reference). */
typedef struct Data {
    int64_t nx, nw, nb, ns, nm, ny, nsv;
    float *f[7]; /* xg, w_hh, b_hh, s0, mask, dy, ds */
    double *d[7];
} Data;

static int64_t lengths_of(const Case *c, int64_t b) { return b == 0 ? c->T : b == 1 ? (c->T + 1) / 2 : 0; }

static void make_data(const Case *c, Data *D)
{
    Dims k = dims_of(c->cell);
    int64_t n = c->n, T = c->T, H = c->H;
    int64_t count[7] = {n * T * k.G * H, k.G * H * H, k.G * H, n * k.S * H, n * T, n * T * H, n * k.S * H};
    D->nx = count[0], D->nw = count[1], D->nb = count[2], D->ns = count[3], D->nm = count[4];
    D->ny = count[5], D->nsv = n * T * k.K * H;
    /* weights ~ 1/sqrt(H) as PyTorch's init, so the gates are not saturated */
    float scale = 1.0f / sqrtf((float)H);
    for (int i = 0; i < 7; i++) {
        D->f[i] = malloc(sizeof(float) * (size_t)count[i]);
        D->d[i] = malloc(sizeof(double) * (size_t)count[i]);
        float lim = i == 1 || i == 2 ? scale : 1.0f;
        ref_fill(D->f[i], count[i], 77u + (uint32_t)i * 13u + (uint32_t)H, -lim, lim);
    }
    for (int64_t b = 0; b < n; b++) /* a prefix of valid steps (sequence_mask) */
        for (int64_t t = 0; t < T; t++) D->f[4][b * T + t] = c->masked ? (t < lengths_of(c, b) ? 1.0f : 0.0f) : 1.0f;
    for (int i = 0; i < 7; i++)
        for (int64_t e = 0; e < count[i]; e++) D->d[i][e] = D->f[i][e];
}

static void free_data(Data *D)
{
    for (int i = 0; i < 7; i++) free(D->f[i]), free(D->d[i]);
}

/* The case's model as IR text. */
static void model_text(const Case *c, char *buf, size_t len)
{
    Dims k = dims_of(c->cell);
    long long T = c->T, H = c->H, G = k.G, S = k.S, K = k.K;
    char nb[32];
    snprintf(nb, sizeof nb, c->fixed ? "%lld" : "N", (long long)c->n);
    char mask_in[64] = "", mask_arg[16] = "";
    if (c->masked) {
        snprintf(mask_in, sizeof mask_in, ", %%mask: f32[%s, %lld]", nb, T);
        snprintf(mask_arg, sizeof mask_arg, ", %%mask");
    }
    snprintf(buf, len,
             "func @rnn(%%xg: f32[%s, %lld, %lld], %%w: f32[%lld, %lld], %%b: f32[%lld], %%s0: f32[%s, %lld]%s, "
             "%%dy: f32[%s, %lld, %lld], %%ds: f32[%s, %lld]) -> (y = %%0, s = %%1, save = %%2, dxg = %%3, dhg = %%4, "
             "ds0 = %%5) {\n"
             "  %%0, %%1, %%2 = rnn_scan %%xg, %%w, %%b, %%s0%s {cell = \"%s\", reverse = %d} : f32[%s, %lld, %lld], "
             "f32[%s, %lld], f32[%s, %lld, %lld]\n"
             "  %%3, %%4, %%5 = rnn_scan_bwd %%dy, %%ds, %%2, %%w%s {cell = \"%s\", reverse = %d} : f32[%s, %lld, "
             "%lld], f32[%s, %lld, %lld], f32[%s, %lld]\n"
             "}\n",
             nb, T, G * H, G * H, H, G * H, nb, S * H, mask_in, nb, T, H, nb, S * H, mask_arg, c->cell, c->reverse, nb,
             T, H, nb, S * H, nb, T, K * H, mask_arg, c->cell, c->reverse, nb, T, G * H, nb, T, G * H, nb, S * H);
}

/* Compiles the case for OpenCL. */
static void compile_case(const Case *c, DnTestLib *lib, char *dir, size_t dirlen)
{
    char text[4096], path[600], log[8192];
    model_text(c, text, sizeof text);
    dn_test_tmpdir(dir, dirlen, "dnnc-gpu-rnn");
    snprintf(path, sizeof path, "%s/rnn.dnir", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(dn_test_compile_file(path, "--target=opencl", lib, log, sizeof log), 0, "%s\n%s", text, log);
}

static void expect_close(const char *what, const Case *c, const float *got, const double *ref, int64_t count)
{
    float *r = malloc(sizeof(float) * (size_t)count);
    for (int64_t i = 0; i < count; i++) r[i] = (float)ref[i];
    char name[200];
    snprintf(name, sizeof name, "%s %s reverse=%d mask=%d n=%lld T=%lld H=%lld%s", what, c->cell, c->reverse, c->masked,
             (long long)c->n, (long long)c->T, (long long)c->H, c->fixed ? " (fixed batch)" : "");
    dn_test_expect_close(name, got, r, count, 2e-5, 2e-6);
    free(r);
}

/* Runs the case on OpenCL and compares all six results with the reference. */
static void run_case(const Case *c)
{
    Data D;
    make_data(c, &D);
    int64_t nsT = D.ns, nxg = D.nx;
    double *y = calloc((size_t)D.ny, 8), *sT = calloc((size_t)nsT, 8), *sv = calloc((size_t)D.nsv, 8);
    double *dxg = calloc((size_t)nxg, 8), *dhg = calloc((size_t)nxg, 8), *ds0 = calloc((size_t)nsT, 8);
    const double *mask = c->masked ? D.d[4] : NULL;
    cr_assert_eq(ref_rnn_scan(c->cell, c->reverse, c->n, c->T, c->H, D.d[0], D.d[1], D.d[2], D.d[3], mask, y, sT, sv),
                 0);
    cr_assert_eq(
        ref_rnn_scan_bwd(c->cell, c->reverse, c->n, c->T, c->H, D.d[5], D.d[6], sv, D.d[1], mask, dxg, dhg, ds0), 0);

    DnTestLib lib;
    char dir[512];
    compile_case(c, &lib, dir, sizeof dir);
    const void *in[7];
    int nin = 0;
    for (int i = 0; i < 7; i++)
        if (i != 4 || c->masked) in[nin++] = D.f[i];
    cr_assert_eq(lib.desc->ninputs, nin);
    cr_assert_eq(lib.desc->noutputs, 6);
    int64_t counts[6] = {D.ny, nsT, D.nsv, nxg, nxg, nsT};
    float *out[6];
    for (int i = 0; i < 6; i++) out[i] = calloc((size_t)counts[i], sizeof(float));
    dnrt_session *s = dn_test_session(&lib, 1, 7);
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer(s, c->n, in, (void *const *)out, &err), 0, "infer: %s", err.message);
    const double *ref[6] = {y, sT, sv, dxg, dhg, ds0};
    const char *names[6] = {"y", "s_T", "save", "dxg", "dhg", "ds0"};
    for (int i = 0; i < 6; i++) expect_close(names[i], c, out[i], ref[i], counts[i]);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
    dn_test_rmtree(dir);
    for (int i = 0; i < 6; i++) free(out[i]);
    free(y), free(sT), free(sv), free(dxg), free(dhg), free(ds0);
    free_data(&D);
}

static const char *const cells[] = {"rnn_tanh", "rnn_relu", "lstm", "gru"};

/* Every cell, both directions, with and without a mask, N symbolic. */
static void cell_cases(const char *cell)
{
    for (int reverse = 0; reverse < 2; reverse++)
        for (int masked = 0; masked < 2; masked++) {
            Case c = {cell, reverse, masked, 3, 5, 7, 0};
            run_case(&c);
        }
}

Test(gpu_rnn, rnn_tanh_matches_the_reference, .timeout = 600) { cell_cases("rnn_tanh"); }
Test(gpu_rnn, rnn_relu_matches_the_reference, .timeout = 600) { cell_cases("rnn_relu"); }
Test(gpu_rnn, lstm_matches_the_reference, .timeout = 600) { cell_cases("lstm"); }
Test(gpu_rnn, gru_matches_the_reference, .timeout = 600) { cell_cases("gru"); }

/* A fixed batch (no N), and hidden sizes past one work-group (units
 * strided over the items) and of one exactly. */
Test(gpu_rnn, fixed_batch_and_wide_layers, .timeout = 600)
{
    Case fixed = {"lstm", 1, 1, 2, 4, 5, 1};
    run_case(&fixed);
    Case wide = {"gru", 0, 1, 3, 3, 300, 0};
    run_case(&wide);
    Case group = {"rnn_tanh", 1, 0, 2, 3, 256, 0};
    run_case(&group);
}

/* The same kernels as CUDA: NVRTC compiles every cell's scans (where the
 * CUDA toolkit is installed; elsewhere the test says so and skips). */
Test(gpu_rnn, cuda_kernels_compile_with_nvrtc, .timeout = 600)
{
    const char *why = NULL;
    if (!dn_nvrtc_available(&why)) cr_skip("the CUDA toolkit is absent (NVRTC cannot be loaded): %s", why);
    for (int i = 0; i < 4; i++) {
        Case c = {cells[i], i % 2, 1, 3, 4, 6, i == 3};
        char text[4096], dir[512], path[600], cmd[2048], out[8192];
        model_text(&c, text, sizeof text);
        dn_test_tmpdir(dir, sizeof dir, "dnnc-gpu-rnn-cuda");
        snprintf(path, sizeof path, "%s/rnn.dnir", dir);
        FILE *f = fopen(path, "w");
        cr_assert(f);
        fputs(text, f);
        fclose(f);
        snprintf(cmd, sizeof cmd, "'%s' '%s' --target=cuda -o '%s/rnn.so'", DNNC_BIN, path, dir);
        cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: %s", cells[i], out);
        dn_test_rmtree(dir);
    }
}

/* ---- the reference's backward against finite differences of its forward --- */

/* L = sum(y * dy) + sum(s_T * ds) of the reference forward. */
static double loss_of(const Case *c, const Data *D, double *const *v)
{
    Dims k = dims_of(c->cell);
    int64_t n = c->n, T = c->T, H = c->H;
    double *y = calloc((size_t)(n * T * H), 8), *sT = calloc((size_t)(n * k.S * H), 8);
    double *sv = calloc((size_t)(n * T * k.K * H), 8);
    ref_rnn_scan(c->cell, c->reverse, n, T, H, v[0], v[1], v[2], v[3], c->masked ? D->d[4] : NULL, y, sT, sv);
    double L = 0;
    for (int64_t i = 0; i < n * T * H; i++) L += y[i] * D->d[5][i];
    for (int64_t i = 0; i < n * k.S * H; i++) L += sT[i] * D->d[6][i];
    free(y), free(sT), free(sv);
    return L;
}

/* The reference's gradients of xg, w_hh, b_hh, s0 from rnn_scan_bwd
 * (dW_hh = sum dhg^T h_prev, db_hh = sum dhg: rnn_cell.h) match central
 * differences of loss_of. */
static void check_reference(const Case *c)
{
    Dims k = dims_of(c->cell);
    int64_t n = c->n, T = c->T, H = c->H, GH = k.G * H;
    Data D;
    make_data(c, &D);
    double *y = calloc((size_t)D.ny, 8), *sT = calloc((size_t)D.ns, 8), *sv = calloc((size_t)D.nsv, 8);
    double *dxg = calloc((size_t)D.nx, 8), *dhg = calloc((size_t)D.nx, 8), *ds0 = calloc((size_t)D.ns, 8);
    const double *mask = c->masked ? D.d[4] : NULL;
    ref_rnn_scan(c->cell, c->reverse, n, T, H, D.d[0], D.d[1], D.d[2], D.d[3], mask, y, sT, sv);
    ref_rnn_scan_bwd(c->cell, c->reverse, n, T, H, D.d[5], D.d[6], sv, D.d[1], mask, dxg, dhg, ds0);
    double *dw = calloc((size_t)D.nw, 8), *db = calloc((size_t)D.nb, 8);
    for (int64_t bt = 0; bt < n * T; bt++)
        for (int64_t r = 0; r < GH; r++) {
            double g = dhg[bt * GH + r];
            db[r] += g;
            for (int64_t q = 0; q < H; q++) dw[r * H + q] += g * sv[bt * k.K * H + q];
        }
    const double *grad[4] = {dxg, dw, db, ds0};
    int64_t count[4] = {D.nx, D.nw, D.nb, D.ns};
    const char *names[4] = {"xg", "w_hh", "b_hh", "s0"};
    double *v[4] = {D.d[0], D.d[1], D.d[2], D.d[3]};
    for (int i = 0; i < 4; i++)
        for (int64_t e = 0; e < count[i]; e++) {
            double keep = v[i][e], h = 1e-6;
            v[i][e] = keep + h;
            double lp = loss_of(c, &D, v);
            v[i][e] = keep - h;
            double lm = loss_of(c, &D, v);
            v[i][e] = keep;
            double fd = (lp - lm) / (2 * h);
            cr_expect(fabs(fd - grad[i][e]) <= 1e-6 + 1e-5 * fabs(fd),
                      "%s reverse=%d mask=%d: dL/d%s[%lld] = %.9g by differences, %.9g by rnn_scan_bwd", c->cell,
                      c->reverse, c->masked, names[i], (long long)e, fd, grad[i][e]);
        }
    /* gru's dhg differs from dxg in the n gate only, where it is dxg_n * r */
    int64_t differ = 0;
    for (int64_t e = 0; e < D.nx; e++) differ += dxg[e] != dhg[e];
    if (strcmp(c->cell, "gru"))
        cr_expect_eq(differ, 0, "%s: dhg != dxg at %lld elements", c->cell, (long long)differ);
    else
        cr_expect_gt(differ, 0, "gru: dhg equals dxg everywhere");
    free(y), free(sT), free(sv), free(dxg), free(dhg), free(ds0), free(dw), free(db);
    free_data(&D);
}

Test(gpu_rnn, reference_backward_matches_finite_differences)
{
    for (int i = 0; i < 4; i++)
        for (int reverse = 0; reverse < 2; reverse++)
            for (int masked = 0; masked < 2; masked++) {
                Case c = {cells[i], reverse, masked, 3, 4, 3, 0};
                check_reference(&c);
            }
}

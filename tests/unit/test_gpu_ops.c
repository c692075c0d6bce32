/* test_gpu_ops.c -- the cross-backend test: every model in tests/gpu_ops/
 * (small models on odd shapes, together using every op kind, forward and
 * backward) is compiled for the CPU and for OpenCL, run on the same
 * deterministic inputs, and the OpenCL results must match the CPU's:
 * inference outputs, and for models with a train section, the loss of
 * three training steps and every state tensor (weights, buffers,
 * optimizer state) after them.  OpenCL runs on whatever device the ICD
 * loader offers (PoCL on the CPU in CI), which executes the same kernel
 * text NVIDIA GPUs get.  A model with the sequence axis T<=bound runs at
 * t = SEQ_T and at its bound (inference) and trains at t = SEQ_T.
 *
 * Tolerance: |gpu - cpu| <= 1e-4 * max|cpu| + 1e-5 per tensor (the two
 * backends sum in different orders).  Integer results must be equal.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ref_ops.h"
#include "testlib.h"

#define BATCH 3
#define STEPS 3
#define SEQ_T 5

/* Deterministic inputs for every input of 'd' at batch BATCH and, for a
 * model with T, t = its bound (labels inside their valid range); each
 * malloc'd into bufs[i].  A shorter t reads the first n * t rows. */
static void make_inputs(const dnrt_model_desc *d, void **bufs)
{
    for (int32_t i = 0; i < d->ninputs; i++) {
        const dnrt_tensor_desc *t = &d->inputs[i];
        int64_t count = dnrt_tensor_count(t, BATCH, d->seq_bound ? d->seq_bound : 1);
        bufs[i] = calloc((size_t)count, 8);
        if (t->dtype == DNRT_F32) {
            ref_fill(bufs[i], count, 1234u + (uint32_t)i, -1.0f, 1.0f);
        } else {
            int64_t lo = t->valid_min < t->valid_max ? t->valid_min : 0;
            int64_t hi = t->valid_min < t->valid_max ? t->valid_max : 1;
            for (int64_t e = 0; e < count; e++) {
                int64_t v = lo + (e * 7 + i * 3) % (hi - lo + 1);
                if (t->dtype == DNRT_I32)
                    ((int32_t *)bufs[i])[e] = (int32_t)v;
                else
                    ((int64_t *)bufs[i])[e] = v;
            }
        }
    }
}

/* Compares 'count' elements of dtype 'dtype'; reports under 'what'. */
static void compare(const char *what, int32_t dtype, const void *gpu, const void *cpu, int64_t count)
{
    if (dtype == DNRT_F32) {
        dn_test_expect_close(what, gpu, cpu, count, 1e-4, 1e-5);
        return;
    }
    size_t es = dtype == DNRT_I32 ? 4 : 8;
    cr_expect(memcmp(gpu, cpu, (size_t)count * es) == 0, "%s: integer results differ", what);
}

/* Inference at sequence length t on both sessions, outputs compared. */
static void infer_both(const char *file, const DnTestLib *cpu, dnrt_session *sc, const DnTestLib *gpu, dnrt_session *sg,
                       void *const *in, int64_t t)
{
    const dnrt_model_desc *d = cpu->desc;
    dnrt_error err = {0};
    void *oc[8], *og[8];
    cr_assert(d->noutputs <= 8);
    for (int32_t i = 0; i < d->noutputs; i++) {
        size_t bytes = (size_t)dnrt_tensor_count(&d->outputs[i], BATCH, t) * 8;
        oc[i] = calloc(bytes, 1), og[i] = calloc(bytes, 1);
    }
    cr_assert_eq(d->api->infer_seq(sc, BATCH, t, (const void *const *)in, oc, &err), 0, "%s cpu infer (t = %lld): %s",
                 file, (long long)t, err.message);
    cr_assert_eq(gpu->desc->api->infer_seq(sg, BATCH, t, (const void *const *)in, og, &err), 0,
                 "%s opencl infer (t = %lld): %s", file, (long long)t, err.message);
    for (int32_t i = 0; i < d->noutputs; i++) {
        char what[800];
        snprintf(what, sizeof what, "%s: output '%s' (t = %lld)", file, d->outputs[i].name, (long long)t);
        compare(what, d->outputs[i].dtype, og[i], oc[i], dnrt_tensor_count(&d->outputs[i], BATCH, t));
        free(oc[i]), free(og[i]);
    }
}

static float train_step_at(const DnTestLib *lib, dnrt_session *s, void *const *in, int64_t t)
{
    dnrt_error err = {0};
    float loss = NAN;
    cr_assert_eq(lib->desc->api->train_step_seq(s, BATCH, t, (const void *const *)in, &loss, &err), 0,
                 "train_step (t = %lld): %s", (long long)t, err.message);
    return loss;
}

/* Runs the case 'file' on both targets. */
static void run_case(const char *file)
{
    char log[8192];
    DnTestLib cpu, gpu;
    cr_assert_eq(dn_test_compile_file(file, "--target=cpu", &cpu, log, sizeof log), 0, "%s (cpu): %s", file, log);
    cr_assert_eq(dn_test_compile_file(file, "--target=opencl", &gpu, log, sizeof log), 0, "%s (opencl): %s", file, log);
    const dnrt_model_desc *d = cpu.desc;
    cr_assert_eq(gpu.desc->seq_bound, d->seq_bound);
    void *in[16] = {0};
    cr_assert(d->ninputs <= 16);
    make_inputs(d, in);
    dnrt_session *sc = dn_test_session(&cpu, 1, 7), *sg = dn_test_session(&gpu, 1, 7);
    int64_t t = d->seq_bound ? SEQ_T : 1;
    cr_assert_leq(t, d->seq_bound ? d->seq_bound : 1, "%s: T's bound is below SEQ_T", file);
    infer_both(file, &cpu, sc, &gpu, sg, in, t);
    if (d->seq_bound) infer_both(file, &cpu, sc, &gpu, sg, in, d->seq_bound);
    if (d->trains) {
        for (int s = 0; s < STEPS; s++) {
            float lc = train_step_at(&cpu, sc, in, t);
            float lg = train_step_at(&gpu, sg, in, t);
            cr_expect(fabsf(lc - lg) <= 1e-4f * fabsf(lc) + 1e-5f, "%s: step %d loss cpu %.9g opencl %.9g", file, s,
                      (double)lc, (double)lg);
        }
        dnrt_st_file fc, fg;
        dn_test_saved_state(cpu.desc->api, sc, &fc);
        dn_test_saved_state(gpu.desc->api, sg, &fg);
        for (int32_t i = 0; i < d->nstate; i++) {
            const dnrt_tensor_desc *st = &d->state[i];
            const dnrt_st_tensor *tc = dnrt_st_find(&fc, st->name), *tg = dnrt_st_find(&fg, st->name);
            cr_assert(tc && tg, "%s: state '%s' not saved", file, st->name);
            char what[800];
            snprintf(what, sizeof what, "%s: state '%s' after %d steps", file, st->name, STEPS);
            compare(what, st->dtype, tg->data, tc->data, dn_test_desc_count(st, 1));
        }
        dnrt_st_free(&fc), dnrt_st_free(&fg);
    }
    for (int32_t i = 0; i < d->ninputs; i++) free(in[i]);
    d->api->destroy(sc), gpu.desc->api->destroy(sg);
    dn_test_close(&cpu), dn_test_close(&gpu);
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* One test per case file (each in its own process, so one failing case does
 * not hide the others).  $DN_GPU_OPS_CASES, when set, keeps only the files
 * whose names contain it (one case while working on a kernel). */
typedef struct CaseName {
    char path[200];
} CaseName;

ParameterizedTestParameters(gpu_ops, matches_the_cpu)
{
    const char *dir = dn_test_src("tests/gpu_ops");
    DIR *dp = opendir(dir);
    char *names[256];
    int n = 0;
    const char *only = getenv("DN_GPU_OPS_CASES");
    for (struct dirent *e; dp && (e = readdir(dp)) && n < 256;) {
        size_t len = strlen(e->d_name);
        if (only && !strstr(e->d_name, only)) continue;
        if (len > 4 && len < 150 && !strcmp(e->d_name + len - 4, ".dnn")) names[n++] = strdup(e->d_name);
    }
    if (dp) closedir(dp);
    qsort(names, (size_t)n, sizeof *names, by_name);
    CaseName *cases = cr_malloc(sizeof *cases * (size_t)(n ? n : 1));
    for (int i = 0; i < n; i++) {
        snprintf(cases[i].path, sizeof cases[i].path, "tests/gpu_ops/%s", names[i]);
        free(names[i]);
    }
    if (n == 0) snprintf(cases[0].path, sizeof cases[0].path, "tests/gpu_ops/(no cases found)");
    return cr_make_param_array(CaseName, cases, (size_t)(n ? n : 1));
}

ParameterizedTest(CaseName *c, gpu_ops, matches_the_cpu, .timeout = 600)
{
    cr_log_info("case %s", c->path);
    cr_assert(!strstr(c->path, "(no cases found)"), "no .dnn cases in tests/gpu_ops");
    run_case(c->path);
}

/* Output 0 of 'file' built with 'flags' at batch BATCH on inputs 'in' (the
 * other outputs are discarded). */
static void infer_with(const char *file, const char *flags, const void *const *in, float *y)
{
    char log[8192];
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_file(file, flags, &lib, log, sizeof log), 0, "%s %s: %s", file, flags, log);
    dnrt_session *s = dn_test_session(&lib, 1, 7);
    dnrt_error err = {0};
    void *out[8];
    float *extra[8] = {0};
    cr_assert(lib.desc->noutputs <= 8);
    out[0] = y;
    for (int32_t i = 1; i < lib.desc->noutputs; i++)
        out[i] = extra[i] = calloc((size_t)dn_test_desc_count(&lib.desc->outputs[i], BATCH), 4);
    cr_assert_eq(lib.desc->api->infer(s, BATCH, in, out, &err), 0, "%s %s: %s", file, flags, err.message);
    for (int32_t i = 1; i < lib.desc->noutputs; i++) free(extra[i]);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* make_inputs for 'file' (into in[16]); returns the element count of its output 0 at BATCH. */
static int64_t inputs_of(const char *file, void **in)
{
    char log[8192];
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_file(file, "--target=cpu", &lib, log, sizeof log), 0, "%s: %s", file, log);
    cr_assert(lib.desc->ninputs <= 16);
    make_inputs(lib.desc, in);
    int64_t count = dn_test_desc_count(&lib.desc->outputs[0], BATCH);
    dn_test_close(&lib);
    return count;
}

/* --precision rounds the operands of products (fp32 sums): the results move
 * off the fp32 ones by about the format's unit roundoff, never further. */
Test(gpu_ops, precision_rounds_the_operands_of_products, .timeout = 600)
{
    const char *file = "tests/gpu_ops/conv_fwd.dnn";
    void *in[16] = {0};
    int64_t count = inputs_of(file, in);
    float *ref = calloc((size_t)count, 4), *y = calloc((size_t)count, 4);
    infer_with(file, "--target=opencl", (const void *const *)in, ref);
    static const struct {
        const char *p;
        double most; /* relative to max |ref| */
    } cases[] = {{"tf32", 4e-3}, {"fp16", 4e-3}, {"bf16", 3e-2}};
    double scale = 0;
    for (int64_t i = 0; i < count; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char flags[64];
        snprintf(flags, sizeof flags, "--target=opencl --precision=%s", cases[c].p);
        infer_with(file, flags, (const void *const *)in, y);
        double worst = 0;
        for (int64_t i = 0; i < count; i++) worst = fmax(worst, fabs(y[i] - ref[i]));
        cr_expect_gt(worst, 0, "%s: the same results as fp32: nothing was rounded", cases[c].p);
        cr_expect_leq(worst, cases[c].most * scale, "%s: off by %g (max |y| %g)", cases[c].p, worst, scale);
        cr_log_info("%s: max error %.3g of max |y| %.3g", cases[c].p, worst, scale);
    }
    free(ref), free(y);
    for (int i = 0; i < 16; i++) free(in[i]);
}

/* concat-views changes where the producers write, not what: the outputs
 * with and without it are bit for bit the same, on the CPU and on OpenCL. */
Test(gpu_ops, concat_views_give_the_copies_results, .timeout = 600)
{
    const char *file = "tests/gpu_ops/concat_views.dnn";
    void *in[16] = {0};
    int64_t count = inputs_of(file, in);
    static const char *flags[][2] = {{"--target=cpu", "--target=cpu -fno-concat-views"},
                                     {"--target=opencl", "--target=opencl -fno-concat-views"}};
    for (int t = 0; t < 2; t++) {
        float *a = calloc((size_t)count, 4), *b = calloc((size_t)count, 4);
        infer_with(file, flags[t][0], (const void *const *)in, a);
        infer_with(file, flags[t][1], (const void *const *)in, b);
        int64_t differ = 0;
        for (int64_t i = 0; i < count; i++) differ += memcmp(&a[i], &b[i], 4) != 0;
        cr_expect_eq(differ, 0, "%s: %lld of %lld elements differ from %s", flags[t][0], (long long)differ,
                     (long long)count, flags[t][1]);
        free(a), free(b);
    }
    for (int i = 0; i < 16; i++) free(in[i]);
}

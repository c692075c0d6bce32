/* test_gpu_check.c -- tests/gpu/check.c, the output check of the GPU runs,
 * against a CPU library: the golden MLP compiled with dnnc, run here
 * in-process to get the expected logits and losses, which are written with
 * the inputs (runtime's safetensors writer) for check to compare.  It must
 * pass on them, and fail (naming the output and the error) when one
 * expected element is wrong; its --record mode must write what it then
 * accepts; and every bad input is a clear error: a missing or damaged
 * file, a shape other than the descriptor's, a missing expected tensor, a
 * failing create.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define N     5
#define STEPS 2
#define PIX   (N * 28 * 28)

static char dir[256], out[16384];
static DnTestLib lib;

static void setup(void)
{
    char log[8192];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-gpucheck");
    cr_assert_eq(dn_test_compile_file("tests/golden/mlp_sgd.dnn", "", &lib, log, sizeof log), 0, "%s", log);
}
static void teardown(void)
{
    dn_test_close(&lib);
    dn_test_rmtree(dir);
}
TestSuite(gpu_check, .init = setup, .fini = teardown);

/* Runs check with 'args'; its exit status, its output in 'out'. */
static int check(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", DN_GPU_CHECK, args);
    return dn_test_run(cmd, out, sizeof out);
}

/* Writes dir/NAME: inputs image and label, expect.logits (from an
 * in-process run, element 'bad' off by 0.5 unless it is -1) and
 * expect.train_loss; 'image_dim3' is the image's last dimension (28). */
static const char *write_case(const char *name, int bad, int64_t image_dim3)
{
    static float image[PIX], logits[N * 10], loss[STEPS];
    static int32_t label[N];
    for (int i = 0; i < PIX; i++) image[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    for (int i = 0; i < N; i++) label[i] = (i * 3) % 10;
    dnrt_session *s = dn_test_session(&lib, 0, 1);
    const void *in[] = {image, label};
    void *outs[] = {logits};
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer(s, N, in, outs, &err), 0, "infer: %s", err.message);
    for (int k = 0; k < STEPS; k++) loss[k] = dn_test_train_step(&lib, s, N, in);
    lib.desc->api->destroy(s);
    if (bad >= 0) logits[bad] += 0.5f;
    dnrt_st_tensor t[] = {
        {.name = "image", .dtype = DNRT_F32, .rank = 4, .dim = {N, 1, 28, image_dim3}, .data = image},
        {.name = "label", .dtype = DNRT_I32, .rank = 1, .dim = {N}, .data = label, .nbytes = sizeof label},
        {.name = "expect.logits",
         .dtype = DNRT_F32,
         .rank = 2,
         .dim = {N, 10},
         .data = logits,
         .nbytes = sizeof logits},
        {.name = "expect.train_loss",
         .dtype = DNRT_F32,
         .rank = 1,
         .dim = {STEPS},
         .data = loss,
         .nbytes = sizeof loss},
    };
    t[0].nbytes = (size_t)(N * 28 * image_dim3) * sizeof(float);
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    cr_assert_eq(dnrt_st_write(path, 4, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    return path;
}

static void expect_out(const char *what) { cr_expect(strstr(out, what), "'%s' not in check's output:\n%s", what, out); }

Test(gpu_check, passes_on_the_library_own_outputs)
{
    const char *p = write_case("good.safetensors", -1, 28);
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s' --train %d", lib.so_path, p, STEPS);
    cr_expect_eq(check(args), 0, "%s", out);
    expect_out("logits: max abs err 0 (ok)");
    expect_out("train step 2: loss ");
    expect_out("train_loss: max abs err 0 (ok)");
    snprintf(args, sizeof args, "'%s' '%s'", lib.so_path, p); /* inference only */
    cr_expect_eq(check(args), 0, "%s", out);
    cr_expect(!strstr(out, "train"), "%s", out);
}

Test(gpu_check, fails_on_a_wrong_expected_element)
{
    const char *p = write_case("bad.safetensors", 13, 28);
    char args[4096];
    snprintf(args, sizeof args, "'%s' '%s'", lib.so_path, p);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("logits: max abs err 0.5 (FAIL)");
    /* a tolerance that covers the error passes it */
    snprintf(args, sizeof args, "'%s' '%s' --atol 0.6", lib.so_path, p);
    cr_expect_eq(check(args), 0, "%s", out);
    expect_out("logits: max abs err 0.5 (ok)");
}

Test(gpu_check, record_then_check)
{
    char args[4096], rec[600];
    snprintf(rec, sizeof rec, "%s/rec.safetensors", dir);
    snprintf(args, sizeof args, "--record '%s' '%s' random:3 --train 2 --seed 9", rec, lib.so_path);
    cr_assert_eq(check(args), 0, "%s", out);
    expect_out("wrote ");
    snprintf(args, sizeof args, "'%s' '%s' --train 2 --seed 9", lib.so_path, rec);
    cr_expect_eq(check(args), 0, "%s", out);
    expect_out("logits: max abs err 0 (ok)");
    expect_out("train_loss: max abs err 0 (ok)");
    /* the file holds the inputs check generated, labels in the model's range */
    dnrt_st_file f;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(rec, &f, &err), 0, "%s", err.message);
    const dnrt_st_tensor *label = dnrt_st_find(&f, "label");
    cr_assert(label && label->dtype == DNRT_I32 && label->dim[0] == 3);
    for (int i = 0; i < 3; i++) {
        int32_t v = ((const int32_t *)label->data)[i];
        cr_expect(v >= 0 && v <= 9, "label %d = %d", i, v);
    }
    cr_expect_not_null(dnrt_st_find(&f, "expect.train_loss"));
    dnrt_st_free(&f);
}

Test(gpu_check, clear_errors)
{
    char args[4096], path[600];
    snprintf(args, sizeof args, "'%s' '%s/none.safetensors'", lib.so_path, dir);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("none.safetensors: cannot open");

    snprintf(path, sizeof path, "%s/junk.safetensors", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("this is not a safetensors file", f);
    fclose(f);
    snprintf(args, sizeof args, "'%s' '%s'", lib.so_path, path);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("junk.safetensors: not a safetensors file");

    const char *p = write_case("narrow.safetensors", -1, 27);
    snprintf(args, sizeof args, "'%s' '%s'", lib.so_path, p);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("narrow.safetensors: tensor 'image' has a dtype or shape other than the model's input");

    snprintf(args, sizeof args, "'%s/nolib.so' '%s'", dir, p);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("cannot load the library");
    expect_out("nolib.so");

    cr_expect_eq(check(""), 2, "%s", out);
    expect_out("usage: check");
}

Test(gpu_check, missing_expected_tensor_fails)
{
    char args[4096];
    const char *p = write_case("good.safetensors", -1, 28);
    snprintf(args, sizeof args, "'%s' '%s' --train 2", lib.so_path, p);
    cr_assert_eq(check(args), 0, "%s", out);
    /* an inputs file without the expected tensors */
    char rec[600];
    snprintf(rec, sizeof rec, "%s/plain.safetensors", dir);
    dnrt_st_file f;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(p, &f, &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_st_write(rec, 2, f.tensors, 0, NULL, NULL, &err), 0, "%s", err.message); /* image, label */
    dnrt_st_free(&f);
    snprintf(args, sizeof args, "'%s' '%s'", lib.so_path, rec);
    cr_expect_eq(check(args), 1, "%s", out);
    expect_out("logits: no tensor 'expect.logits' in ");
}

Test(gpu_check, create_failure_prints_the_runtime_message)
{
#ifdef __SANITIZE_ADDRESS__
    cr_skip("sanitized build: AddressSanitizer's shadow memory defeats the address-space limit this case needs");
#endif
    /* 400 MB of state under a 300 MB address-space limit */
    DnTestLib big;
    char log[8192], args[2048];
    cr_assert_eq(dn_test_compile_text("model big(x: f32[N, 4]) -> (y: f32[N, 25000000]) {\n"
                                      "  y = dense(x, 25000000)\n}\n",
                                      "", &big, log, sizeof log),
                 0, "%s", log);
    float x[8] = {0};
    char p[600];
    snprintf(p, sizeof p, "%s/x.safetensors", dir);
    dnrt_st_tensor t = {.name = "x", .dtype = DNRT_F32, .rank = 2, .dim = {2, 4}, .data = x, .nbytes = sizeof x};
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(p, 1, &t, 0, NULL, NULL, &err), 0, "%s", err.message);
    snprintf(args, sizeof args, "ulimit -v 300000; '%s' '%s' '%s'", DN_GPU_CHECK, big.so_path, p);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "%s", out);
    expect_out("create failed: create: out of memory");
    dn_test_close(&big);
}

/* test_shape_golden.c -- the shape family against PyTorch: concat
 * (torch.cat), slicing with steps, negative indices and an int index,
 * split, chunk and stack, in one model whose text is stored in the golden
 * file (tests/golden/make_shape_goldens.py writes both).  Checks the two
 * outputs at batch 2 and 5, then, after one training step at batch 5 with
 * sgd(momentum=0.9), the loss and every gradient (the momentum buffer of
 * step 1 is the gradient).  Tolerances as test_golden.c's first step:
 * |got - ref| <= 1e-4 max|ref| + 1e-5 (the references are float64).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

static const char *const weights[] = {"fa.weight", "fa.bias", "fb.weight", "fb.bias"};
static const int64_t wsize[] = {20, 4, 20, 4};

/* A session of the golden model with the golden initial weights. */
static dnrt_session *open_session(const dnrt_st_file *g, DnTestLib *lib)
{
    const char *src = dnrt_st_meta(g, "model");
    cr_assert(src, "the golden file has no model text");
    char log[8192], path[] = "/tmp/dnnc-shape-w-XXXXXX";
    cr_assert_eq(dn_test_compile_text(src, "", lib, log, sizeof log), 0, "%s\n%s", src, log);
    dnrt_st_tensor t[4];
    for (int i = 0; i < 4; i++) t[i] = *dnrt_st_find(g, weights[i]);
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, 4, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    const dnrt_api *api = lib->desc->api;
    dnrt_options opt = {.threads = 2, .seed = 1};
    dnrt_session *s = api->create(lib->desc, &opt, &err);
    cr_assert(s, "%s", err.message);
    cr_assert_eq(api->load(s, path, &err), 0, "%s", err.message);
    unlink(path);
    return s;
}

Test(shape_golden, forward_at_two_batch_sizes)
{
    dnrt_st_file g;
    dn_test_golden_open("shape_goldens", &g);
    DnTestLib lib;
    dnrt_session *s = open_session(&g, &lib);
    const dnrt_api *api = lib.desc->api;
    for (int64_t n = 2; n <= 5; n += 3) {
        char key[32];
        snprintf(key, sizeof key, "x.b%lld", (long long)n);
        const void *in[1] = {dn_test_tensor(&g, key, DNRT_F32, n * 30)};
        float y[5 * 12], z[5 * 4];
        void *out[2] = {y, z};
        dnrt_error err = {0};
        cr_assert_eq(api->infer(s, n, in, out, &err), 0, "infer: %s", err.message);
        snprintf(key, sizeof key, "y.b%lld", (long long)n);
        dn_test_expect_close(key, y, dn_test_tensor(&g, key, DNRT_F32, n * 12), n * 12, RTOL, ATOL);
        snprintf(key, sizeof key, "z.b%lld", (long long)n);
        dn_test_expect_close(key, z, dn_test_tensor(&g, key, DNRT_F32, n * 4), n * 4, RTOL, ATOL);
    }
    api->destroy(s);
    dn_test_close(&lib);
    dnrt_st_free(&g);
}

Test(shape_golden, gradients_after_one_step)
{
    dnrt_st_file g;
    dn_test_golden_open("shape_goldens", &g);
    DnTestLib lib;
    dnrt_session *s = open_session(&g, &lib);
    const dnrt_api *api = lib.desc->api;
    cr_assert(lib.desc->trains, "the golden model compiled without training");
    const void *in[3] = {dn_test_tensor(&g, "x.b5", DNRT_F32, 150), dn_test_tensor(&g, "ty", DNRT_F32, 60),
                         dn_test_tensor(&g, "tz", DNRT_F32, 20)};
    float loss;
    dnrt_error err = {0};
    cr_assert_eq(api->train_step(s, 5, in, &loss, &err), 0, "train_step: %s", err.message);
    dn_test_expect_close("loss", &loss, dn_test_tensor(&g, "loss", DNRT_F32, 1), 1, RTOL, ATOL);
    dnrt_st_file saved;
    dn_test_saved_state(api, s, &saved);
    for (int i = 0; i < 4; i++) {
        char key[96], ref[96];
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", weights[i]);
        snprintf(ref, sizeof ref, "grad.%s", weights[i]);
        dn_test_expect_close(key, dn_test_tensor(&saved, key, DNRT_F32, wsize[i]),
                             dn_test_tensor(&g, ref, DNRT_F32, wsize[i]), wsize[i], RTOL, ATOL);
    }
    dnrt_st_free(&saved);
    api->destroy(s);
    dn_test_close(&lib);
    dnrt_st_free(&g);
}

/* test_act_golden.c -- leaky_relu, elu, gelu (both approximations) and
 * adaptive average and max pooling (uneven windows: 5x5 -> 3x3 and
 * 7x5 -> 3x2) against PyTorch's F.leaky_relu, F.elu, F.gelu,
 * F.adaptive_avg_pool2d and F.adaptive_max_pool2d
 * (tests/golden/make_act_goldens.py writes the references).
 *
 * The golden file carries the model's source in its metadata; the test
 * compiles exactly that with the real dnnc, loads the golden parameters,
 * compares every output at batch 1 and 4, then runs one SGD step on the
 * golden training batch and compares the loss and the gradients of the
 * parameters (SGD's momentum buffer after the first step is the gradient),
 * which flow back through every backward op under test; parameter c starts
 * at zeros in front of a max pool, leaky_relu and elu, so its gradient
 * shows the tie rule (the first maximal cell of each window) and their
 * slopes at exactly 0.
 * Tolerance: rtol 1e-4, atol 1e-5 (references are float64; PyTorch's own
 * fp32 run is within 1e-7 of them, make_act_goldens.py prints it).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

#define RTOL 1e-4
#define ATOL 1e-5

typedef struct Golden {
    dnrt_st_file g;
    DnTestLib lib;
    dnrt_session *s;
} Golden;

/* Compiles the golden source and opens a session with the golden parameters. */
static void open_golden(Golden *G)
{
    dn_test_golden_open("act_goldens", &G->g);
    const char *src = dnrt_st_meta(&G->g, "source");
    cr_assert(src, "act_goldens: no model source in the metadata");
    char log[16384];
    cr_assert_eq(dn_test_compile_text(src, "", &G->lib, log, sizeof log), 0, "%s\n%s", src, log);
    G->s = dn_test_session(&G->lib, 2, 1);
    char path[] = "/tmp/dnnc-act-w-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_st_tensor t[3] = {*dnrt_st_find(&G->g, "p"), *dnrt_st_find(&G->g, "q"), *dnrt_st_find(&G->g, "c")};
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, 3, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    cr_assert_eq(G->lib.desc->api->load(G->s, path, &err), 0, "load: %s", err.message);
    unlink(path);
}

static void close_golden(Golden *G)
{
    G->lib.desc->api->destroy(G->s);
    dn_test_close(&G->lib);
    dnrt_st_free(&G->g);
}

Test(act_golden, outputs_match_pytorch_at_batch_1_and_4)
{
    Golden G;
    open_golden(&G);
    const dnrt_model_desc *d = G.lib.desc;
    cr_assert_eq(d->noutputs, 10);
    for (int64_t n = 1; n <= 4; n += 3) {
        char prefix[16];
        snprintf(prefix, sizeof prefix, "b%lld", (long long)n);
        dn_test_expect_outputs(&G.lib, G.s, &G.g, prefix, n, RTOL, ATOL);
    }
    close_golden(&G);
}

Test(act_golden, loss_and_gradients_match_pytorch)
{
    Golden G;
    open_golden(&G);
    const dnrt_model_desc *d = G.lib.desc;
    const int64_t n = 4;
    const void *in[16] = {0};
    cr_assert_leq(d->ninputs, 16);
    char key[128];
    for (int i = 0; i < d->ninputs; i++) {
        snprintf(key, sizeof key, "train.%s", d->inputs[i].name);
        in[i] = dn_test_tensor(&G.g, key, DNRT_F32, dn_test_desc_count(&d->inputs[i], n));
    }
    float loss = dn_test_train_step(&G.lib, G.s, n, in);
    dn_test_expect_close("train.loss", &loss, dn_test_tensor(&G.g, "train.loss", DNRT_F32, 1), 1, RTOL, ATOL);
    char path[] = "/tmp/dnnc-act-s-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(d->api->save(G.s, path, &err), 0, "save: %s", err.message);
    dnrt_st_file saved;
    cr_assert_eq(dnrt_st_read(path, &saved, &err), 0, "%s", err.message);
    unlink(path);
    static const char *const params[] = {"p", "q", "c"};
    static const int64_t numel[] = {70, 75, 70};
    for (int i = 0; i < 3; i++) {
        char buf[64], ref[64];
        snprintf(buf, sizeof buf, "optim.%s.momentum_buffer", params[i]);
        snprintf(ref, sizeof ref, "grad.%s", params[i]);
        dn_test_expect_close(ref, dn_test_tensor(&saved, buf, DNRT_F32, numel[i]),
                             dn_test_tensor(&G.g, ref, DNRT_F32, numel[i]), numel[i], RTOL, ATOL);
    }
    dnrt_st_free(&saved);
    close_golden(&G);
}

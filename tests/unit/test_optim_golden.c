/* test_optim_golden.c -- optimizer, schedule and loss variants against
 * PyTorch (tests/golden/make_optim_goldens.py writes the references).
 *
 * Each case of the golden file's metadata names a loss and an optimizer
 * (SGD with Nesterov, dampening and weight decay, a step schedule; Adam with
 * L2 decay and a cosine schedule; AdamW with warm-up; label smoothing; MSE).
 * The test writes the .dnn for it, compiles it with the real dnnc, loads
 * the golden initial weights, runs the same number of training steps on the
 * same batch and compares the loss of every step and the final weights.
 * Tolerance: references are float64; four fp32 steps of a 4x3 layer stay
 * within 1e-4 * max|ref| + 1e-5 (PyTorch's own fp32 run is ~1e-7 away).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

/* The .dnn of one case: the model and its train section. */
static void case_source(const dnrt_st_file *g, const char *name, char *src, size_t len)
{
    char key[128];
    snprintf(key, sizeof key, "%s.loss", name);
    const char *loss = dnrt_st_meta(g, key);
    snprintf(key, sizeof key, "%s.optimizer", name);
    const char *opt = dnrt_st_meta(g, key);
    cr_assert(loss && opt, "case %s: loss or optimizer text missing in the golden file", name);
    snprintf(src, len,
             "model m(x: f32[N, 4]) -> (y: f32[N, 3]) {\n  y = fc: dense(x, 3)\n}\n"
             "train m {\n  label: i32[N]\n  target: f32[N, 3]\n  loss = %s\n  optimizer = %s\n}\n",
             loss, opt);
}

/* Writes the golden initial weights to a file the session can load. */
static void write_weights(const dnrt_st_file *g, const char *path)
{
    dnrt_st_tensor t[2] = {*dnrt_st_find(g, "fc.weight"), *dnrt_st_find(g, "fc.bias")};
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, 2, t, 0, NULL, NULL, &err), 0, "%s", err.message);
}

static void run_case(const dnrt_st_file *g, const char *name, int steps, const char *weights)
{
    char src[2048], log[8192];
    case_source(g, name, src, sizeof src);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "case %s:\n%s\n%s", name, src, log);
    const dnrt_api *api = lib.desc->api;
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 1, .seed = 1};
    dnrt_session *s = api->create(lib.desc, &opt, &err);
    cr_assert(s, "%s", err.message);
    cr_assert_eq(api->load(s, weights, &err), 0, "%s", err.message);
    const void *in[3] = {dn_test_tensor(g, "x", DNRT_F32, 20), dn_test_tensor(g, "label", DNRT_I32, 5),
                         dn_test_tensor(g, "target", DNRT_F32, 15)};
    float loss[16];
    for (int t = 0; t < steps; t++) cr_assert_eq(api->train_step(s, 5, in, &loss[t], &err), 0, "%s", err.message);
    char key[128];
    snprintf(key, sizeof key, "%s.loss", name);
    dn_test_expect_close(key, loss, dn_test_tensor(g, key, DNRT_F32, steps), steps, 1e-4, 1e-5);
    dnrt_st_file after;
    dn_test_saved_state(api, s, &after);
    snprintf(key, sizeof key, "%s.fc.weight", name);
    dn_test_expect_close(key, dn_test_tensor(&after, "fc.weight", DNRT_F32, 12), dn_test_tensor(g, key, DNRT_F32, 12),
                         12, 1e-4, 1e-5);
    snprintf(key, sizeof key, "%s.fc.bias", name);
    dn_test_expect_close(key, dn_test_tensor(&after, "fc.bias", DNRT_F32, 3), dn_test_tensor(g, key, DNRT_F32, 3), 3,
                         1e-4, 1e-5);
    dnrt_st_free(&after);
    api->destroy(s);
    dn_test_close(&lib);
}

Test(optim_golden, every_case_matches_pytorch)
{
    dnrt_st_file g;
    dn_test_golden_open("optim_goldens", &g);
    const char *cases = dnrt_st_meta(&g, "cases"), *steps = dnrt_st_meta(&g, "steps");
    cr_assert(cases && steps && atoi(steps) > 0 && atoi(steps) <= 16, "golden metadata incomplete");
    char weights[] = "/tmp/dnnc-optim-w-XXXXXX";
    int fd = mkstemp(weights);
    cr_assert(fd >= 0);
    close(fd);
    write_weights(&g, weights);
    char list[512];
    snprintf(list, sizeof list, "%s", cases);
    int n = 0;
    for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save), n++)
        run_case(&g, name, atoi(steps), weights);
    cr_expect_geq(n, 6, "only %d cases in the golden file", n);
    unlink(weights);
    dnrt_st_free(&g);
}

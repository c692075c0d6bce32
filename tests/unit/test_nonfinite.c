/* test_nonfinite.c -- non-finite training: a step whose loss, a gradient or
 * a new running statistic is NaN or infinite is refused with
 * DNRT_ERR_NONFINITE and changes nothing (every byte of the state block,
 * the step counter), and the next finite step computes exactly what a
 * session that never saw the refused one computes; set_lr and
 * set_learning_rate refuse NaN, infinite and negative rates; a rate of 1e30
 * is refused at the first step that overflows; state that is not finite
 * (loaded from a file) is never saved.
 *
 * The libraries are compiled by the real dnnc and driven through their
 * descriptors.  Their runtime is this tree's runtime, so a session is the
 * struct dnrt_session of runtime/internal.h, and the tests compare its
 * whole state block byte for byte.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/internal.h"
#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- helpers ------------------------------------------------------------- */

static void compile(const char *src, DnTestLib *lib)
{
    char log[8192];
    cr_assert_eq(dn_test_compile_text(src, "", lib, log, sizeof log), 0, "compile failed: %s", log);
}

/* Runs a step that must be refused as non-finite; returns the message. */
static const char *refused_step(const DnTestLib *lib, dnrt_session *s, int64_t n, const void *const *in,
                                dnrt_error *err)
{
    float loss = 0;
    cr_assert_eq(lib->desc->api->train_step(s, n, in, &loss, err), -1, "a non-finite step was accepted");
    cr_expect_eq(err->code, DNRT_ERR_NONFINITE, "code %d: %s", err->code, err->message);
    return err->message;
}

/* Makes the session's host copy of the state current (a GPU session's
 * state lives on the device; dnrt_session_state brings it to the host). */
static void sync_state(const DnTestLib *lib, dnrt_session *s)
{
    if (lib->desc->nstate) cr_assert_not_null(dnrt_session_state(s, lib->desc->state[0].name));
}

/* A copy of the whole state block of 's' (free it). */
static uint8_t *state_copy(const DnTestLib *lib, dnrt_session *s)
{
    sync_state(lib, s);
    uint8_t *c = malloc((size_t)lib->desc->state_bytes);
    memcpy(c, s->state, (size_t)lib->desc->state_bytes);
    return c;
}

/* Expects the state block of 's' to equal 'ref' byte for byte, naming the
 * first state tensor that differs. */
static void expect_state(const DnTestLib *lib, dnrt_session *s, const uint8_t *ref, const char *when)
{
    const dnrt_model_desc *d = lib->desc;
    sync_state(lib, s);
    if (memcmp(s->state, ref, (size_t)d->state_bytes) == 0) return;
    const char *which = "(padding)";
    for (int32_t i = 0; i < d->nstate; i++)
        if (memcmp(s->state + d->state[i].offset, ref + d->state[i].offset,
                   (size_t)dn_test_desc_numel(&d->state[i]) * (d->state[i].dtype == DNRT_I64 ? 8 : 4))) {
            which = d->state[i].name;
            break;
        }
    cr_expect_fail("%s: the state block changed (first in '%s')", when, which);
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float urand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-52 - 1.0);
}

static int64_t read_all(const char *path, uint8_t **data)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    *data = malloc((size_t)n + 1);
    cr_assert_eq(fread(*data, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return n;
}

/* ---- a convolution, batchnorm, dropout and Adam ---------------------------- */

/* Every kind of state: weights, running statistics and the batch counter
 * (buffers), Adam's two moments (optimizer state); dropout's mask depends
 * on the step counter, so a refused step that advanced it would show. */
static const char *conv_src = "model m(x: f32[N, 1, 6, 6]) -> (y: f32[N, 3]) {\n"
                              "  y = x |> conv: conv2d(4, 3, pad=1) |> bn: batchnorm |> relu |> dropout(0.2)\n"
                              "        |> flatten |> fc: dense(3)\n}\n"
                              "train m {\n  label: i32[N]\n  loss = cross_entropy(y, label)\n"
                              "  optimizer = adam(lr=1e-2)\n}\n";

#define CN 8
static float conv_x[3][CN * 36];
static int32_t conv_label[3][CN];

static void conv_data(void)
{
    for (int b = 0; b < 3; b++) {
        for (int i = 0; i < CN * 36; i++) conv_x[b][i] = urand();
        for (int n = 0; n < CN; n++) conv_label[b][n] = (n + b) % 3;
    }
}

/* One NaN pixel: the step is refused and changes nothing; the next finite
 * step then equals (bitwise: loss and every byte of state) the third step
 * of a session that never saw the NaN. */
Test(nonfinite, nan_pixel_is_refused_and_changes_nothing)
{
    DnTestLib lib;
    compile(conv_src, &lib);
    conv_data();
    const void *in0[2] = {conv_x[0], conv_label[0]}, *in1[2] = {conv_x[1], conv_label[1]};
    const void *in2[2] = {conv_x[2], conv_label[2]};
    dnrt_session *a = dn_test_session(&lib, 2, 5), *b = dn_test_session(&lib, 2, 5);
    dn_test_train_step(&lib, a, CN, in0), dn_test_train_step(&lib, a, CN, in1);
    dn_test_train_step(&lib, b, CN, in0), dn_test_train_step(&lib, b, CN, in1);

    static float bad[CN * 36];
    memcpy(bad, conv_x[2], sizeof bad);
    bad[5 * 36 + 17] = NAN;
    const void *inb[2] = {bad, conv_label[2]};
    uint8_t *before = state_copy(&lib, a);
    dnrt_error err = {0};
    const char *msg = refused_step(&lib, a, CN, inb, &err);
    cr_expect(strstr(msg, "train_step: the loss is not finite (nan) at step 3 (after 2); parameters, optimizer "
                          "state and statistics unchanged (the step counter stays 2)"),
              "%s", msg);
    expect_state(&lib, a, before, "after the refused step");
    cr_expect_eq(lib.desc->api->get_step(a), 2, "the refused step was counted");
    /* twice in a row changes nothing either */
    refused_step(&lib, a, CN, inb, &err);
    expect_state(&lib, a, before, "after a second refused step");

    float la = dn_test_train_step(&lib, a, CN, in2), lb = dn_test_train_step(&lib, b, CN, in2);
    cr_expect(isfinite(la) && memcmp(&la, &lb, 4) == 0, "loss %.9g after the refused step, %.9g without it", la, lb);
    uint8_t *sb = state_copy(&lib, b);
    expect_state(&lib, a, sb, "the step after the refused one, against a session that never saw it");
    cr_expect_eq(lib.desc->api->get_step(a), 3);
    free(before), free(sb);
    lib.desc->api->destroy(a), lib.desc->api->destroy(b);
    dn_test_close(&lib);
}

/* An infinite pixel too; *loss still receives the step's (non-finite)
 * loss. */
Test(nonfinite, infinite_pixel_is_refused)
{
    DnTestLib lib;
    compile(conv_src, &lib);
    conv_data();
    conv_x[0][3] = INFINITY;
    const void *in[2] = {conv_x[0], conv_label[0]};
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    uint8_t *before = state_copy(&lib, s);
    dnrt_error err = {0};
    float loss = 0;
    cr_assert_eq(lib.desc->api->train_step(s, CN, in, &loss, &err), -1);
    cr_expect_eq(err.code, DNRT_ERR_NONFINITE, "%s", err.message);
    cr_expect(!isfinite(loss), "*loss = %g", loss);
    expect_state(&lib, s, before, "after the refused step");
    cr_expect_eq(lib.desc->api->get_step(s), 0);
    free(before);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* ---- a gradient that overflows while the loss is finite ------------------- */

/* y = x * p with p = 0: the loss is mean((0 - t)^2) = 100, but the gradient
 * of p, sum_n 2 (y - t) x / numel, holds 1.25 * 3e38 per item: infinite. */
Test(nonfinite, gradient_overflow_names_the_tensor)
{
    DnTestLib lib;
    compile("model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n  param p: f32[4] = zeros\n  y = x * p\n}\n"
            "train m {\n  t: f32[N, 4]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n",
            &lib);
    float x[16], t[16];
    for (int i = 0; i < 16; i++) x[i] = 3e38f, t[i] = -10;
    const void *in[2] = {x, t};
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    uint8_t *before = state_copy(&lib, s);
    dnrt_error err = {0};
    float loss = 0;
    cr_assert_eq(lib.desc->api->train_step(s, 4, in, &loss, &err), -1, "an infinite gradient was accepted");
    cr_expect_eq(err.code, DNRT_ERR_NONFINITE);
    cr_expect_eq(loss, 100.0f, "loss %g", loss);
    cr_expect(strstr(err.message, "train_step: the gradient of 'p' is not finite at step 1 (after 0)"), "%s",
              err.message);
    expect_state(&lib, s, before, "after the refused step");
    /* the same data at a tenth of the scale trains */
    for (int i = 0; i < 16; i++) x[i] = 3e37f;
    dn_test_train_step(&lib, s, 4, in);
    cr_expect_eq(lib.desc->api->get_step(s), 1);
    free(before);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* ---- learning rates ---------------------------------------------------------- */

static const char *mlp_src = "model m(x: f32[N, 8]) -> (y: f32[N, 3]) {\n"
                             "  y = x |> fc1: dense(16) |> relu |> fc2: dense(3)\n}\n"
                             "train m {\n  label: i32[N]\n  loss = cross_entropy(y, label)\n"
                             "  optimizer = %s\n}\n";

#define MN 16
static float mlp_x[MN * 8];
static int32_t mlp_label[MN];

static void compile_mlp(const char *optim, DnTestLib *lib)
{
    char src[1024];
    snprintf(src, sizeof src, mlp_src, optim);
    compile(src, lib);
    for (int i = 0; i < MN * 8; i++) mlp_x[i] = urand();
    for (int n = 0; n < MN; n++) mlp_label[n] = n % 3;
}

/* set_lr(NaN), set_lr(-1), set_lr(+-inf): the rate stays, and train_step
 * refuses to run (DNRT_ERR_ARG, state unchanged) until a valid rate is
 * set; set_learning_rate reports the same values at once and leaves no
 * such after-effect; 0 is a valid rate. */
Test(nonfinite, set_lr_refuses_nan_negative_and_infinite)
{
    DnTestLib lib;
    compile_mlp("sgd(lr=0.05, momentum=0.9)", &lib);
    const dnrt_api *api = lib.desc->api;
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 2);
    dn_test_train_step(&lib, s, MN, in);
    const float bad[] = {NAN, -1.0f, INFINITY, -INFINITY, -1e-30f};
    const char *shown[] = {"set_lr(nan)", "set_lr(-1)", "set_lr(inf)", "set_lr(-inf)", "set_lr(-1e-30)"};
    for (int i = 0; i < 5; i++) {
        uint8_t *before = state_copy(&lib, s);
        api->set_lr(s, bad[i]);
        cr_expect_eq(api->get_lr(s), 0.05f, "%s changed the rate to %g", shown[i], api->get_lr(s));
        dnrt_error err = {0};
        float loss = 0;
        cr_expect_eq(api->train_step(s, MN, in, &loss, &err), -1, "a step ran after %s", shown[i]);
        cr_expect_eq(err.code, DNRT_ERR_ARG);
        cr_expect(strstr(err.message, shown[i]) && strstr(err.message, "was refused"), "%s", err.message);
        cr_expect(strstr(err.message, "the rate is still 0.05"), "%s", err.message);
        expect_state(&lib, s, before, shown[i]);
        cr_expect_eq(api->get_step(s), 1 + i);
        api->set_lr(s, 0.05f); /* a valid rate lifts it */
        dn_test_train_step(&lib, s, MN, in);
        free(before);
    }
    for (int i = 0; i < 5; i++) {
        dnrt_error err = {0};
        cr_expect_eq(api->set_learning_rate(s, bad[i], &err), -1, "set_learning_rate took %g", bad[i]);
        cr_expect_eq(err.code, DNRT_ERR_ARG);
        cr_expect(strstr(err.message, "the learning rate must be finite and >= 0 (it stays 0.05)"), "%s", err.message);
        cr_expect_eq(api->get_lr(s), 0.05f);
        dn_test_train_step(&lib, s, MN, in); /* no after-effect */
    }
    dnrt_error err = {0};
    cr_expect_eq(api->set_learning_rate(s, 0.0f, &err), 0, "%s", err.message);
    cr_expect_eq(api->get_lr(s), 0.0f);
    cr_expect_eq(api->set_learning_rate(s, 1e30f, &err), 0, "%s", err.message);
    cr_expect_eq(api->get_lr(s), 1e30f);
    /* the typed wrapper of the generated header */
    int (*typed)(void *, float, dnrt_error *) =
        (int (*)(void *, float, dnrt_error *))dlsym(lib.handle, "m_set_learning_rate");
    cr_assert_not_null(typed, "no m_set_learning_rate in the library");
    cr_expect_eq(typed(s, NAN, &err), -1);
    cr_expect_eq(err.code, DNRT_ERR_ARG);
    cr_expect_eq(typed(s, 0.25f, &err), 0, "%s", err.message);
    cr_expect_eq(api->get_lr(s), 0.25f);
    char cmd[1200], out[16384];
    snprintf(cmd, sizeof cmd, "cat '%s'", lib.h_path);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0);
    cr_expect(strstr(out, "int m_set_learning_rate(m *m, float lr, dnrt_error *err);"), "%s", out);
    cr_expect(strstr(out, "DNRT_ERR_NONFINITE"), "%s", out);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* At a rate of 1e30 the first step is finite and sends the weights to
 * ~1e29; the first step whose forward pass overflows is refused and keeps
 * the state, and so is every later one. */
Test(nonfinite, huge_learning_rate_refused_at_the_first_overflow)
{
    static const char *optims[] = {"sgd(lr=0.05, momentum=0.9)", "adam(lr=1e-3)"};
    for (int o = 0; o < 2; o++) {
        DnTestLib lib;
        compile_mlp(optims[o], &lib);
        const dnrt_api *api = lib.desc->api;
        const void *in[2] = {mlp_x, mlp_label};
        dnrt_session *s = dn_test_session(&lib, 2, 4);
        dnrt_error err = {0};
        cr_assert_eq(api->set_learning_rate(s, 1e30f, &err), 0, "%s", err.message);
        int64_t refused_at = -1;
        for (int i = 0; i < 6 && refused_at < 0; i++) {
            uint8_t *before = state_copy(&lib, s);
            float loss = 0;
            if (api->train_step(s, MN, in, &loss, &err)) {
                cr_expect_eq(err.code, DNRT_ERR_NONFINITE, "%s: %s", optims[o], err.message);
                expect_state(&lib, s, before, optims[o]);
                refused_at = i;
            } else {
                cr_expect(isfinite(loss), "%s: step %d returned 0 with loss %g", optims[o], i, loss);
            }
            free(before);
        }
        cr_expect_geq(refused_at, 1, "%s: the first step was refused (%lld)", optims[o], (long long)refused_at);
        cr_expect_eq(api->get_step(s), refused_at, "%s", optims[o]);
        int64_t elem;
        float v;
        sync_state(&lib, s);
        cr_expect_lt(dnrt_state_nonfinite(lib.desc, s->state, &elem, &v), 0, "%s: the state is not finite", optims[o]);
        uint8_t *kept = state_copy(&lib, s);
        float loss = 0;
        cr_expect_eq(api->train_step(s, MN, in, &loss, &err), -1, "%s: the next step at 1e30 ran", optims[o]);
        expect_state(&lib, s, kept, optims[o]);
        free(kept);
        api->destroy(s);
        dn_test_close(&lib);
    }
}

/* ---- running statistics --------------------------------------------------- */

/* Inputs near 3e38 with a spread: the batch statistics (in double) are
 * finite, the normalised output and the gradients are finite, but the
 * variance overflows f32 in running_var's update.  The step is refused
 * naming it, and every running statistic, written during the forward pass,
 * is restored. */
Test(nonfinite, running_statistic_overflow_is_refused_and_restored)
{
    DnTestLib lib;
    compile("model m(x: f32[N, 2, 2, 2]) -> (y: f32[N, 8]) {\n  y = x |> bn: batchnorm |> flatten\n}\n"
            "train m {\n  t: f32[N, 8]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.1)\n}\n",
            &lib);
    float x[4 * 8], t[4 * 8];
    for (int i = 0; i < 32; i++) x[i] = urand(), t[i] = urand();
    const void *in[2] = {x, t};
    dnrt_session *s = dn_test_session(&lib, 2, 3);
    dn_test_train_step(&lib, s, 4, in);
    for (int i = 0; i < 32; i++) x[i] = (i / 4 % 2 ? 3e38f : -3e38f) * (i % 2 ? 1.0f : 0.5f);
    uint8_t *before = state_copy(&lib, s);
    dnrt_error err = {0};
    const char *msg = refused_step(&lib, s, 4, in, &err);
    cr_expect(strstr(msg, "train_step: the new value of 'bn.running_var' is not finite at step 2 (after 1)"), "%s",
              msg);
    expect_state(&lib, s, before, "after the refused step");
    const int64_t *nbt = dnrt_session_state(s, "bn.num_batches_tracked");
    cr_expect(nbt && *nbt == 1, "num_batches_tracked %lld", nbt ? (long long)*nbt : -1LL);
    free(before);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* ---- weights files --------------------------------------------------------- */

/* A weights file with a NaN loads (the loader checks structure, not
 * values), but the session's training steps are refused, the message
 * saying which tensor was already not finite, and save refuses to write
 * it over a good file, which stays byte-identical. */
Test(nonfinite, nonfinite_weights_load_but_never_save)
{
    DnTestLib lib;
    compile_mlp("adam(lr=1e-2)", &lib);
    const dnrt_api *api = lib.desc->api;
    const void *in[2] = {mlp_x, mlp_label};
    dnrt_session *s = dn_test_session(&lib, 2, 6);
    dn_test_train_step(&lib, s, MN, in);
    char good[600], poisoned[600];
    snprintf(good, sizeof good, "%s.good.safetensors", lib.so_path);
    snprintf(poisoned, sizeof poisoned, "%s.nan.safetensors", lib.so_path);
    dnrt_error err = {0};
    cr_assert_eq(api->save(s, good, &err), 0, "%s", err.message);

    /* the same file with fc2.weight[4] = NaN */
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(good, &f, &err), 0, "%s", err.message);
    dnrt_st_tensor *t = malloc(sizeof *t * (size_t)f.ntensors);
    float *w = NULL;
    for (int i = 0; i < f.ntensors; i++) {
        t[i] = f.tensors[i];
        if (!strcmp(t[i].name, "fc2.weight")) {
            w = malloc(t[i].nbytes);
            memcpy(w, t[i].data, t[i].nbytes);
            w[4] = NAN;
            t[i].data = w;
        }
    }
    cr_assert_not_null(w);
    cr_assert_eq(dnrt_st_write(poisoned, f.ntensors, t, f.nmeta, f.meta_keys, f.meta_values, &err), 0, "%s",
                 err.message);
    free(t), free(w);
    dnrt_st_free(&f);

    dnrt_session *p = dn_test_session(&lib, 2, 6);
    cr_assert_eq(api->load(p, poisoned, &err), 0, "%s", err.message);
    uint8_t *before = state_copy(&lib, p);
    const char *msg = refused_step(&lib, p, MN, in, &err);
    cr_expect(strstr(msg, "state tensor 'fc2.weight' was not finite before the step (element 4 is nan)"), "%s", msg);
    expect_state(&lib, p, before, "after the refused step");

    uint8_t *a, *b;
    int64_t na = read_all(good, &a);
    cr_expect_eq(api->save(p, good, &err), -1, "non-finite state was saved");
    cr_expect_eq(err.code, DNRT_ERR_NONFINITE);
    cr_expect(strstr(err.message, "not saved: state tensor 'fc2.weight' element 4 is nan"), "%s", err.message);
    int64_t nb = read_all(good, &b);
    cr_expect(na == nb && memcmp(a, b, (size_t)na) == 0, "the good file changed");
    cr_expect_eq(api->save(s, good, &err), 0, "the finite session no longer saves: %s", err.message);
    free(a), free(b), free(before);
    unlink(good), unlink(poisoned);
    api->destroy(s), api->destroy(p);
    dn_test_close(&lib);
}

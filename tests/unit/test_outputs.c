/* test_outputs.c -- graph outputs that are not distinct op results, end to
 * end: an output that is a model input (`y = x`, also i32), a parameter,
 * the same value named as two outputs (directly and through a reshape), a
 * dropout at an output that the inference graph removes, and a loss that
 * is a parameter or a train input.  Each is compiled with the real dnnc
 * and run; the outputs, filled with a marker before each call, must hold
 * the right numbers (plan-memory gives such outputs a copy op,
 * passes/plan_outputs.c).  The example models need no copy at all.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- helpers ------------------------------------------------------------- */

#define MARK 12345.0f /* what an output holds before the call: no op writes it so */

static void compile(const char *src, DnTestLib *lib)
{
    char log[8192];
    cr_assert_eq(dn_test_compile_text(src, "", lib, log, sizeof log), 0, "compile failed: %s\n%s", log, src);
}

static dnrt_session *open_session(const DnTestLib *lib, int threads)
{
    dnrt_error err = {0};
    dnrt_options opt = {.threads = threads, .seed = 7};
    dnrt_session *s = lib->desc->api->create(lib->desc, &opt, &err);
    cr_assert(s, "create: %s", err.message);
    return s;
}

static void infer(const DnTestLib *lib, dnrt_session *s, int64_t n, const void *const *in, void *const *out)
{
    dnrt_error err = {0};
    cr_assert_eq(lib->desc->api->infer(s, n, in, out, &err), 0, "infer: %s", err.message);
}

static float train_step(const DnTestLib *lib, dnrt_session *s, int64_t n, const void *const *in)
{
    dnrt_error err = {0};
    float loss = MARK;
    cr_assert_eq(lib->desc->api->train_step(s, n, in, &loss, &err), 0, "train_step: %s", err.message);
    return loss;
}

static float *marked(int64_t count)
{
    float *p = malloc((size_t)count * sizeof *p);
    for (int64_t i = 0; i < count; i++) p[i] = MARK;
    return p;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static float urand(void) /* [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) * 0x1p-52 - 1.0);
}

static float *random_f32(int64_t count)
{
    float *p = malloc((size_t)count * sizeof *p);
    for (int64_t i = 0; i < count; i++) p[i] = urand();
    return p;
}

/* got[i] == want[i] bit for bit (copies and reshapes move bytes). */
static void expect_same(const char *what, const void *got, const void *want, size_t bytes)
{
    cr_expect(memcmp(got, want, bytes) == 0, "%s: the output differs from what it names", what);
}

/* ---- an output that is an input ------------------------------------------ */

/* y = x with a tensor large enough for the thread pool, and an i32 input
 * passed through. */
Test(outputs, input_is_an_output)
{
    static const char *src = "model m(x: f32[N, 1024], k: i32[N, 3]) -> (y: f32[N, 1024], j: i32[N, 3]) {\n"
                             "  y = x\n  j = k\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    enum { n = 300 };
    float *x = random_f32(n * 1024), *y = marked(n * 1024);
    int32_t k[n * 3], j[n * 3];
    for (int i = 0; i < n * 3; i++) k[i] = i * 7 - 100, j[i] = -1;
    dnrt_session *s = open_session(&lib, 4);
    infer(&lib, s, n, (const void *[]){x, k}, (void *[]){y, j});
    expect_same("y = x", y, x, sizeof(float) * n * 1024);
    expect_same("j = k", j, k, sizeof k);
    lib.desc->api->destroy(s);
    free(x), free(y);
    dn_test_close(&lib);
}

/* ---- an output that is a parameter --------------------------------------- */

Test(outputs, parameter_is_an_output)
{
    static const char *src = "model m(x: f32[N, 4]) -> (y: f32[N, 4], p: f32[1, 4], q: f32[4, 3]) {\n"
                             "  param p: f32[1, 4] = ones\n  param q: f32[4, 3] = uniform(-1, 1)\n"
                             "  y = x + p\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    enum { n = 2 };
    float *x = random_f32(n * 4), *y = marked(n * 4), *p = marked(4), *q = marked(12);
    dnrt_session *s = open_session(&lib, 1);
    infer(&lib, s, n, (const void *[]){x}, (void *[]){y, p, q});
    for (int i = 0; i < 4; i++) cr_expect_eq(p[i], 1.0f, "p[%d] = %g, expected 1", i, p[i]);
    for (int i = 0; i < n * 4; i++) cr_expect_eq(y[i], x[i] + 1.0f, "y[%d]", i);
    char path[600];
    snprintf(path, sizeof path, "%s.state.safetensors", lib.so_path);
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->save(s, path, &err), 0, "save: %s", err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    expect_same("q = @q", q, dn_test_tensor(&f, "q", DNRT_F32, 12), sizeof(float) * 12);
    dnrt_st_free(&f);
    unlink(path);
    lib.desc->api->destroy(s);
    free(x), free(y), free(p), free(q);
    dn_test_close(&lib);
}

/* ---- one value named as two outputs -------------------------------------- */

/* b names a's value, d names c's (a reshape of a, itself an output), and
 * e is a reshape of the input: every output holds its value. */
Test(outputs, one_value_two_outputs)
{
    static const char *src =
        "model m(x: f32[N, 2, 3]) -> (a: f32[N, 2, 3], b: f32[N, 2, 3], c: f32[N, 6], d: f32[N, 6], e: f32[N, 6]) {\n"
        "  a = tanh(x)\n  b = a\n  c = flatten(a)\n  d = c\n  e = flatten(x)\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    enum { n = 5, k = 6 };
    float *x = random_f32(n * k), *out[5], t[n * k];
    for (int o = 0; o < 5; o++) out[o] = marked(n * k);
    for (int i = 0; i < n * k; i++) t[i] = tanhf(x[i]);
    dnrt_session *s = open_session(&lib, 2);
    infer(&lib, s, n, (const void *[]){x}, (void *[]){out[0], out[1], out[2], out[3], out[4]});
    for (int i = 0; i < n * k; i++)
        cr_expect(fabsf(out[0][i] - t[i]) <= 1e-6f, "a[%d] = %g, tanh = %g", i, out[0][i], t[i]);
    expect_same("b = a", out[1], out[0], sizeof t);
    expect_same("c = flatten(a)", out[2], out[0], sizeof t);
    expect_same("d = c", out[3], out[0], sizeof t);
    expect_same("e = flatten(x)", out[4], x, sizeof t);
    lib.desc->api->destroy(s);
    free(x);
    for (int o = 0; o < 5; o++) free(out[o]);
    dn_test_close(&lib);
}

/* ---- a dropout at an output, removed for inference ----------------------- */

/* y's dropout reads the input, z's another output: without dropout at
 * inference, y is x and z is h. */
Test(outputs, dropout_at_an_output)
{
    static const char *src = "model m(x: f32[N, 4]) -> (y: f32[N, 4], h: f32[N, 4], z: f32[N, 4]) {\n"
                             "  param w: f32[4] = ones\n"
                             "  y = dropout(x, 0.5)\n  h = tanh(x * w)\n  z = dropout(h, 0.3)\n}\n"
                             "train m {\n  t: f32[N, 4]\n  loss = mse(z, t)\n  optimizer = sgd(lr=0.1)\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    enum { n = 3 };
    float *x = random_f32(n * 4), *y = marked(n * 4), *h = marked(n * 4), *z = marked(n * 4);
    dnrt_session *s = open_session(&lib, 1);
    infer(&lib, s, n, (const void *[]){x}, (void *[]){y, h, z});
    expect_same("y = dropout(x)", y, x, sizeof(float) * n * 4);
    for (int i = 0; i < n * 4; i++)
        cr_expect(fabsf(h[i] - tanhf(x[i])) <= 1e-6f, "h[%d] = %g, tanh = %g", i, h[i], tanhf(x[i]));
    expect_same("z = dropout(h)", z, h, sizeof(float) * n * 4);
    lib.desc->api->destroy(s);
    free(x), free(y), free(h), free(z);
    dn_test_close(&lib);
}

/* ---- the loss of the training graph -------------------------------------- */

/* loss = s, a parameter the step updates: each step reports s before its
 * own update (d loss / d s = 1, lr 0.25), and inference sees the value
 * after the updates. */
Test(outputs, loss_is_a_parameter)
{
    static const char *src = "model m(x: f32[N, 4]) -> (y: f32[N, 4], s: f32[]) {\n"
                             "  param s: f32[] = ones\n  y = x\n}\n"
                             "train m {\n  loss = s\n  optimizer = sgd(lr=0.25)\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    dnrt_session *s = open_session(&lib, 1);
    const float want[3] = {1.0f, 0.75f, 0.5f};
    for (int i = 0; i < 3; i++) {
        float loss = train_step(&lib, s, 2, (const void *[]){x});
        cr_expect_eq(loss, want[i], "step %d: loss %g, expected %g", i + 1, loss, want[i]);
    }
    float y[8], sv = MARK;
    infer(&lib, s, 2, (const void *[]){x}, (void *[]){y, &sv});
    cr_expect_eq(sv, 0.25f, "s after three steps: %g", sv);
    expect_same("y = x", y, x, sizeof x);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* loss = l, a train input: the step reports what it was given. */
Test(outputs, loss_is_a_train_input)
{
    static const char *src = "model m(x: f32[N, 4]) -> (y: f32[N, 4]) {\n  y = x\n}\n"
                             "train m {\n  l: f32[]\n  loss = l\n  optimizer = sgd(lr=0.1)\n}\n";
    DnTestLib lib;
    compile(src, &lib);
    float x[4] = {1, 2, 3, 4}, l = 2.625f;
    dnrt_session *s = open_session(&lib, 1);
    float loss = train_step(&lib, s, 1, (const void *[]){x, &l});
    cr_expect_eq(loss, l, "loss %g, expected %g", loss, l);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* ---- models whose outputs are op results ---------------------------------- */

/* The example models' outputs are distinct op results already: neither
 * graph gains a copy. */
Test(outputs, examples_need_no_copy)
{
    static const char *const models[] = {"examples/lenet.dnn", "examples/mlp.dnn", "examples/resnet.dnn"};
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++)
        for (int train = 0; train < 2; train++) {
            static char out[1 << 20];
            char cmd[2048];
            snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir-opt --graph=%s", DNNC_BIN, dn_test_src(models[i]),
                     train ? "train" : "infer");
            cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s:\n%s", cmd, out);
            cr_expect(strstr(out, "func @") && !strstr(out, " = copy "), "%s: a copy in\n%s", cmd, out);
        }
}

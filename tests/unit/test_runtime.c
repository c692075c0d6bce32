/* test_runtime.c -- the runtime's sessions and thread pool, driven through a
 * hand-written model descriptor (no compiler involved):
 *     y = w * x + b  (per feature, x: f32[N, 4]),  loss = mean((y - t)^2),
 * trained by plain SGD.  Covers create/infer/train_step/set_lr/step, the
 * argument errors and their messages, dnrt_parallel_for's coverage of
 * [0, count), initializer statistics, fault injection on create, and the
 * strict decimal parser behind $DNRT_THREADS and "dnnc.step" (issue 7).
 * Weight files (load/save) are in test_safetensors.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dnrt.h"
#include "runtime/fault.h"
#include "runtime/internal.h"

#define F 4 /* features */

/* ---- the hand-written model ------------------------------------------------ */

/* Offsets in the state block: w, b, optim.w.grad_sq, optim.b.grad_sq, steps. */
enum { OFF_W = 0, OFF_B = 64, OFF_OW = 128, OFF_OB = 192, OFF_COUNT = 256, STATE_BYTES = 320 };

static void affine_kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
{
    (void)worker;
    const float *x = c->inputs[0], *w = (const float *)(c->state + OFF_W), *b = (const float *)(c->state + OFF_B);
    float *y = c->outputs[0];
    for (int64_t i = begin; i < end; i++) y[i] = w[i % F] * x[i] + b[i % F];
}

static int32_t model_infer(const dnrt_call *c)
{
    dnrt_parallel_for(c, affine_kernel, c->n * F);
    return 0;
}

/* One SGD step on mean squared error; also accumulates squared gradients
 * (optimizer state) and counts steps (an i64 buffer). */
static int32_t model_train(const dnrt_call *c)
{
    const float *x = c->inputs[0], *t = c->inputs[1];
    float *w = (float *)(c->state + OFF_W), *b = (float *)(c->state + OFF_B);
    float *ow = (float *)(c->state + OFF_OW), *ob = (float *)(c->state + OFF_OB);
    float *y = (float *)c->arena;           /* n * F floats of scratch */
    dnrt_parallel_for(c, affine_kernel, 0); /* count 0: nothing to do */
    double loss = 0, gw[F] = {0}, gb[F] = {0};
    int64_t m = c->n * F;
    for (int64_t i = 0; i < m; i++) {
        y[i] = w[i % F] * x[i] + b[i % F];
        double e = y[i] - t[i];
        loss += e * e;
        gw[i % F] += 2 * e * x[i] / (double)m;
        gb[i % F] += 2 * e / (double)m;
    }
    for (int j = 0; j < F; j++) {
        w[j] -= c->lr * (float)gw[j];
        b[j] -= c->lr * (float)gb[j];
        ow[j] += (float)(gw[j] * gw[j]);
        ob[j] += (float)(gb[j] * gb[j]);
    }
    *(int64_t *)(c->state + OFF_COUNT) += 1;
    *(float *)c->outputs[0] = (float)(loss / (double)m);
    return 0;
}

static const dnrt_tensor_desc model_inputs[] = {
    {.name = "x", .dtype = DNRT_F32, .rank = 2, .dim = {-1, F}},
    {.name = "t", .dtype = DNRT_F32, .rank = 2, .dim = {-1, F}, .train_only = 1},
};
static const dnrt_tensor_desc model_outputs[] = {{.name = "y", .dtype = DNRT_F32, .rank = 2, .dim = {-1, F}}};
static const dnrt_tensor_desc model_state[] = {
    {.name = "w",
     .dtype = DNRT_F32,
     .rank = 1,
     .dim = {F},
     .offset = OFF_W,
     .kind = DNRT_STATE_WEIGHT,
     .trainable = 1,
     .init = DNRT_INIT_UNIFORM,
     .init_a = 0.5f,
     .init_b = 1.5f},
    {.name = "b",
     .dtype = DNRT_F32,
     .rank = 1,
     .dim = {F},
     .offset = OFF_B,
     .kind = DNRT_STATE_WEIGHT,
     .trainable = 1,
     .init = DNRT_INIT_ONES},
    {.name = "optim.w.sq", .dtype = DNRT_F32, .rank = 1, .dim = {F}, .offset = OFF_OW, .kind = DNRT_STATE_OPTIM},
    {.name = "optim.b.sq", .dtype = DNRT_F32, .rank = 1, .dim = {F}, .offset = OFF_OB, .kind = DNRT_STATE_OPTIM},
    {.name = "steps", .dtype = DNRT_I64, .rank = 0, .offset = OFF_COUNT, .kind = DNRT_STATE_BUFFER},
};

static dnrt_model_desc model_desc(int trains)
{
    return (dnrt_model_desc){
        .abi_version = DNRT_ABI_VERSION,
        .name = "affine",
        .ninputs = 2,
        .inputs = model_inputs,
        .noutputs = 1,
        .outputs = model_outputs,
        .nstate = 5,
        .state = model_state,
        .state_bytes = STATE_BYTES,
        .infer_arena_n = 0,
        .infer_arena_b = 0,
        .infer = model_infer,
        .trains = trains,
        .train_arena_n = F * 4,
        .train_arena_b = 0,
        .train = trains ? model_train : NULL,
        .lr = 0.05f,
        .api = &dnrt_api_v1,
    };
}

static dnrt_session *new_session(const dnrt_model_desc *d, int threads, uint64_t seed)
{
    dnrt_error err = {0};
    dnrt_options opt = {.threads = threads, .seed = seed};
    dnrt_session *s = dnrt_session_create(d, &opt, &err);
    cr_assert_not_null(s, "create failed: %s", err.message);
    cr_assert_eq(err.code, 0);
    return s;
}

/* ---- sessions ---------------------------------------------------------------- */

Test(session, create_initializes_state)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *s = new_session(&d, 2, 7);
    const float *w = dnrt_session_state(s, "w"), *b = dnrt_session_state(s, "b");
    cr_assert_not_null(w);
    cr_assert_eq(((uintptr_t)w) % 64, 0);
    for (int j = 0; j < F; j++) {
        cr_assert(w[j] >= 0.5f && w[j] < 1.5f, "w[%d] = %g", j, w[j]);
        cr_assert_eq(b[j], 1.0f);
    }
    cr_assert_eq(*(int64_t *)dnrt_session_state(s, "steps"), 0);
    cr_assert_null(dnrt_session_state(s, "nope"));
    cr_assert_eq(dnrt_session_get_step(s), 0);
    cr_assert_float_eq(dnrt_session_get_lr(s), 0.05f, 1e-9);
    dnrt_session_destroy(s);
}

Test(session, seed_decides_initial_values)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *a = new_session(&d, 1, 42), *b = new_session(&d, 3, 42), *c = new_session(&d, 1, 43);
    cr_assert(memcmp(dnrt_session_state(a, "w"), dnrt_session_state(b, "w"), F * 4) == 0);
    cr_assert(memcmp(dnrt_session_state(a, "w"), dnrt_session_state(c, "w"), F * 4) != 0);
    dnrt_session_destroy(a);
    dnrt_session_destroy(b);
    dnrt_session_destroy(c);
}

Test(session, infer_computes_affine)
{
    dnrt_model_desc d = model_desc(0);
    for (int threads = 1; threads <= 4; threads++) {
        dnrt_session *s = new_session(&d, threads, 1);
        const float *w = dnrt_session_state(s, "w");
        for (int64_t n = 1; n <= 33; n += 8) {
            float *x = malloc(sizeof(float) * n * F), *y = malloc(sizeof(float) * n * F);
            for (int64_t i = 0; i < n * F; i++) x[i] = (float)i - 3.0f;
            const void *ins[] = {x};
            void *outs[] = {y};
            dnrt_error err = {0};
            cr_assert_eq(dnrt_session_infer(s, n, ins, outs, &err), 0, "%s", err.message);
            for (int64_t i = 0; i < n * F; i++) cr_assert_float_eq(y[i], w[i % F] * x[i] + 1.0f, 1e-6);
            free(x);
            free(y);
        }
        dnrt_session_destroy(s);
    }
}

Test(session, train_step_learns_and_counts)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *s = new_session(&d, 2, 3);
    enum { N = 16 };
    float x[N * F], t[N * F];
    for (int i = 0; i < N * F; i++) {
        x[i] = (float)(i % 7) / 7.0f - 0.5f;
        t[i] = 2.0f * x[i] - 0.25f;
    }
    const void *ins[] = {x, t};
    float first = 0, loss = 0;
    dnrt_error err = {0};
    for (int k = 0; k < 300; k++) {
        cr_assert_eq(dnrt_session_train_step(s, N, ins, &loss, &err), 0, "%s", err.message);
        if (k == 0) first = loss;
    }
    cr_assert_eq(dnrt_session_get_step(s), 300);
    cr_assert_eq(*(int64_t *)dnrt_session_state(s, "steps"), 300);
    cr_assert(loss < first * 0.5f, "loss %g -> %g", first, loss);

    /* lr 0 freezes the weights; step still counts */
    dnrt_session_set_lr(s, 0.0f);
    cr_assert_eq(dnrt_session_get_lr(s), 0.0f);
    float w0[F];
    memcpy(w0, dnrt_session_state(s, "w"), sizeof w0);
    cr_assert_eq(dnrt_session_train_step(s, N, ins, &loss, &err), 0);
    cr_assert(memcmp(w0, dnrt_session_state(s, "w"), sizeof w0) == 0);
    cr_assert_eq(dnrt_session_get_step(s), 301);
    dnrt_session_destroy(s);
}

Test(session, api_table_points_at_the_session_functions)
{
    dnrt_model_desc d = model_desc(1);
    const dnrt_api *api = d.api;
    dnrt_session *s = api->create(&d, NULL, NULL);
    cr_assert_not_null(s);
    api->set_lr(s, 0.25f);
    cr_assert_eq(api->get_lr(s), 0.25f);
    cr_assert_eq(api->get_step(s), 0);
    float x[F] = {1, 2, 3, 4}, y[F];
    const void *ins[] = {x};
    void *outs[] = {y};
    cr_assert_eq(api->infer(s, 1, ins, outs, NULL), 0);
    float loss;
    const void *tins[] = {x, x};
    cr_assert_eq(api->train_step(s, 1, tins, &loss, NULL), 0);
    cr_assert_eq(api->get_step(s), 1);
    cr_assert_eq(api->load, dnrt_session_load);
    cr_assert_eq(api->save, dnrt_session_save);
    api->destroy(s);
}

/* ---- argument errors ------------------------------------------------------- */

static void expect_error(int rc, const dnrt_error *err, int code, const char *needle)
{
    cr_assert_eq(rc, -1);
    cr_assert_eq(err->code, code, "code %d, message '%s'", err->code, err->message);
    cr_assert(strstr(err->message, needle), "message '%s' lacks '%s'", err->message, needle);
}

Test(errors, infer_arguments)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *s = new_session(&d, 2, 0);
    float x[F] = {0}, y[F];
    const void *ins[] = {x}, *nullin[] = {NULL};
    void *outs[] = {y}, *nullout[] = {NULL};
    dnrt_error err;
    expect_error(dnrt_session_infer(NULL, 1, ins, outs, &err), &err, DNRT_ERR_ARG, "session is NULL");
    expect_error(dnrt_session_infer(s, 0, ins, outs, &err), &err, DNRT_ERR_ARG, "n = 0, must be >= 1");
    expect_error(dnrt_session_infer(s, -5, ins, outs, &err), &err, DNRT_ERR_ARG, "n = -5");
    expect_error(dnrt_session_infer(s, 1, NULL, outs, &err), &err, DNRT_ERR_ARG, "inputs array is NULL");
    expect_error(dnrt_session_infer(s, 1, nullin, outs, &err), &err, DNRT_ERR_ARG, "input 0 ('x') is NULL");
    expect_error(dnrt_session_infer(s, 1, ins, NULL, &err), &err, DNRT_ERR_ARG, "outputs array is NULL");
    expect_error(dnrt_session_infer(s, 1, ins, nullout, &err), &err, DNRT_ERR_ARG, "output 0 ('y') is NULL");
    cr_assert_eq(dnrt_session_infer(s, 1, ins, outs, NULL), 0); /* err may be NULL */
    cr_assert_eq(dnrt_session_infer(s, 1, nullin, outs, NULL), -1);
    dnrt_session_destroy(s);
}

Test(errors, train_arguments)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *s = new_session(&d, 1, 0);
    float x[F] = {0}, loss;
    const void *ins[] = {x, x}, *half[] = {x, NULL};
    dnrt_error err;
    expect_error(dnrt_session_train_step(NULL, 1, ins, &loss, &err), &err, DNRT_ERR_ARG, "session is NULL");
    expect_error(dnrt_session_train_step(s, 0, ins, &loss, &err), &err, DNRT_ERR_ARG, "n = 0");
    expect_error(dnrt_session_train_step(s, 1, NULL, &loss, &err), &err, DNRT_ERR_ARG, "inputs array is NULL");
    expect_error(dnrt_session_train_step(s, 1, half, &loss, &err), &err, DNRT_ERR_ARG, "input 1 ('t') is NULL");
    expect_error(dnrt_session_train_step(s, 1, ins, NULL, &err), &err, DNRT_ERR_ARG, "loss is NULL");
    cr_assert_eq(dnrt_session_get_step(s), 0, "failed calls must not count");
    dnrt_session_destroy(s);
}

Test(errors, train_on_inference_only_library)
{
    dnrt_model_desc d = model_desc(0);
    dnrt_session *s = new_session(&d, 1, 0);
    float x[F] = {0}, loss;
    const void *ins[] = {x, x};
    dnrt_error err;
    expect_error(dnrt_session_train_step(s, 1, ins, &loss, &err), &err, DNRT_ERR_STATE,
                 "this library was compiled without training (dnnc --no-train or no train section)");
    dnrt_session_destroy(s);
}

Test(errors, create_checks_descriptor)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_error err;
    cr_assert_null(dnrt_session_create(NULL, NULL, &err));
    cr_assert_eq(err.code, DNRT_ERR_ARG);
    d.abi_version = 99;
    cr_assert_null(dnrt_session_create(&d, NULL, &err));
    cr_assert_eq(err.code, DNRT_ERR_STATE);
    cr_assert(strstr(err.message, "ABI 99"), "%s", err.message);
    d = model_desc(1);
    d.state_bytes = 260; /* 'steps' at 256 does not fit */
    cr_assert_null(dnrt_session_create(&d, NULL, &err));
    cr_assert(strstr(err.message, "'steps'"), "%s", err.message);
    d = model_desc(1);
    dnrt_options opt = {.threads = -1};
    cr_assert_null(dnrt_session_create(&d, &opt, &err));
    cr_assert_eq(err.code, DNRT_ERR_ARG);
}

Test(errors, threads_from_environment)
{
    dnrt_model_desc d = model_desc(0);
    setenv("DNRT_THREADS", "3", 1);
    dnrt_session *s = dnrt_session_create(&d, NULL, NULL);
    unsetenv("DNRT_THREADS");
    cr_assert_not_null(s);
    float x[8 * F] = {0}, y[8 * F];
    const void *ins[] = {x};
    void *outs[] = {y};
    cr_assert_eq(dnrt_session_infer(s, 8, ins, outs, NULL), 0);
    dnrt_session_destroy(s);
}

/* Anything but a plain number from 1 to 1024 is ignored: the session gets
 * every online CPU, as without the variable. */
Test(errors, threads_from_environment_are_range_checked)
{
    dnrt_model_desc d = model_desc(0);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int all = cpus > 0 ? (int)(cpus < 1024 ? cpus : 1024) : 1;
    struct {
        const char *value;
        int threads;
    } cases[] = {{"3", 3},    {"17", 17},  {"99999999999999999999", all},
                 {"3x", all}, {" 3", all}, {"+3", all},
                 {"0", all},  {"-2", all}, {"1025", all},
                 {"", all}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        setenv("DNRT_THREADS", cases[i].value, 1);
        dnrt_error err;
        dnrt_session *s = dnrt_session_create(&d, NULL, &err);
        unsetenv("DNRT_THREADS");
        cr_assert_not_null(s, "%s", err.message);
        cr_expect_eq(dnrt_pool_threads(s->pool), cases[i].threads, "DNRT_THREADS='%s': %d threads", cases[i].value,
                     dnrt_pool_threads(s->pool));
        dnrt_session_destroy(s);
    }
}

Test(errors, decimal_parser_is_strict)
{
    struct {
        const char *s;
        int64_t lo, hi;
        int rc;
        int64_t v;
    } cases[] = {
        {"0", 0, 10, 0, 0},
        {"10", 0, 10, 0, 10},
        {"11", 0, 10, DNRT_DEC_RANGE, 0},
        {"-1", 0, 10, DNRT_DEC_RANGE, 0},
        {"-5", -5, 5, 0, -5},
        {"9223372036854775807", 0, INT64_MAX, 0, INT64_MAX},
        {"-9223372036854775808", INT64_MIN, 0, 0, INT64_MIN},
        {"9223372036854775808", 0, INT64_MAX, DNRT_DEC_RANGE, 0},
        {"-9223372036854775809", INT64_MIN, 0, DNRT_DEC_RANGE, 0},
        {"99999999999999999999999999999999", 0, INT64_MAX, DNRT_DEC_RANGE, 0},
        {"007", 0, 10, 0, 7},
        {"", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"-", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"+1", 0, 10, DNRT_DEC_SYNTAX, 0},
        {" 1", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"1 ", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"1x", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"0x1", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"1.0", 0, 10, DNRT_DEC_SYNTAX, 0},
        {"99999999999999999999999x", 0, 10, DNRT_DEC_SYNTAX, 0},
        {NULL, 0, 10, DNRT_DEC_SYNTAX, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t v = 12345;
        int rc = dnrt_decimal(cases[i].s, cases[i].lo, cases[i].hi, &v);
        cr_expect_eq(rc, cases[i].rc, "'%s': rc %d", cases[i].s ? cases[i].s : "(null)", rc);
        if (rc == 0) cr_expect_eq(v, cases[i].v, "'%s': %lld", cases[i].s, (long long)v);
        if (rc != 0) cr_expect_eq(v, 12345, "'%s': *out written on failure", cases[i].s ? cases[i].s : "(null)");
    }
}

/* ---- fault injection ------------------------------------------------------- */

Test(fault, create_fails_cleanly_at_every_allocation)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_options opt = {.threads = 3, .seed = 1};
    int failures = 0;
    for (int nth = 1; nth < 100; nth++) {
        dnrt_error err = {0};
        dnrt_fault_fail_alloc(nth);
        dnrt_session *s = dnrt_session_create(&d, &opt, &err);
        int pending = dnrt_fault_pending();
        dnrt_fault_fail_alloc(0);
        if (s) {
            cr_assert(pending, "create succeeded although allocation %d failed", nth);
            float x[2 * F] = {0}, y[2 * F], loss;
            const void *ins[] = {x, x};
            void *outs[] = {y};
            cr_assert_eq(dnrt_session_infer(s, 2, ins, outs, NULL), 0);
            cr_assert_eq(dnrt_session_train_step(s, 2, ins, &loss, NULL), 0);
            dnrt_session_destroy(s);
            break;
        }
        failures++;
        cr_assert_eq(err.code, DNRT_ERR_NOMEM, "nth %d: code %d '%s'", nth, err.code, err.message);
        cr_assert(strstr(err.message, "create:"), "%s", err.message);
    }
    cr_assert_geq(failures, 4); /* session, state, pool, workers, threads */
}

Test(fault, arena_allocation_failure_is_reported)
{
    dnrt_model_desc d = model_desc(1);
    dnrt_session *s = new_session(&d, 1, 0);
    float x[F] = {0}, loss;
    const void *ins[] = {x, x};
    dnrt_error err;
    dnrt_fault_fail_alloc(1);
    int rc = dnrt_session_train_step(s, 1, ins, &loss, &err);
    dnrt_fault_fail_alloc(0);
    expect_error(rc, &err, DNRT_ERR_NOMEM, "arena");
    cr_assert_eq(dnrt_session_get_step(s), 0);
    cr_assert_eq(dnrt_session_train_step(s, 1, ins, &loss, &err), 0, "%s", err.message);
    dnrt_session_destroy(s);
}

/* ---- dnrt_parallel_for ---------------------------------------------------- */

/* The pool reaches kernels only through dnrt_call, so these tests run inside
 * an infer entry that hands its call to 'probe'. */
static void (*probe)(const dnrt_call *c);
static int32_t probe_infer(const dnrt_call *c)
{
    probe(c);
    return 0;
}

static void run_probe(int threads, void (*fn)(const dnrt_call *c))
{
    dnrt_model_desc d = model_desc(0);
    d.infer = probe_infer;
    probe = fn;
    dnrt_session *s = new_session(&d, threads, 0);
    float x[F] = {0}, y[F];
    const void *ins[] = {x};
    void *outs[] = {y};
    cr_assert_eq(dnrt_session_infer(s, 1, ins, outs, NULL), 0);
    dnrt_session_destroy(s);
}

static _Atomic int hits[5000];
static _Atomic int chunks;
static int current_threads;

static void count_kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
{
    (void)c, (void)worker;
    if (begin >= end) atomic_fetch_add(&chunks, 1000000); /* an empty chunk must not be run */
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&hits[i], 1);
    atomic_fetch_add(&chunks, 1);
}

static void coverage_probe(const dnrt_call *c)
{
    int64_t counts[] = {0, 1, 2, 3, 5, 7, 8, 63, 64, 65, 1000, 4097};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int64_t n = counts[k];
        for (int rep = 0; rep < 20; rep++) {
            memset(hits, 0, sizeof hits);
            atomic_store(&chunks, 0);
            dnrt_parallel_for(c, count_kernel, n);
            for (int64_t i = 0; i < n; i++)
                cr_assert_eq(atomic_load(&hits[i]), 1, "threads %d count %lld index %lld", current_threads,
                             (long long)n, (long long)i);
            cr_assert_eq(atomic_load(&hits[n]), 0);
            int expect = n < current_threads ? (int)n : current_threads;
            cr_assert_eq(atomic_load(&chunks), expect, "threads %d count %lld: %d chunks", current_threads,
                         (long long)n, atomic_load(&chunks));
        }
    }
}

Test(pool, covers_every_index_exactly_once)
{
    for (current_threads = 1; current_threads <= 8; current_threads++) run_probe(current_threads, coverage_probe);
}

/* Many tiny calls in a row: no lost wake-ups, and cheap enough (the bound
 * is loose: 200k calls take about 50 ms on 2 cores). */
static _Atomic int64_t total;
static void sum_kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
{
    (void)c, (void)worker;
    atomic_fetch_add(&total, end - begin);
}

static int ncalls;
static void many_calls_probe(const dnrt_call *c)
{
    atomic_store(&total, 0);
    for (int i = 0; i < ncalls; i++) dnrt_parallel_for(c, sum_kernel, 2 + i % 5);
    int64_t expect = 0;
    for (int i = 0; i < ncalls; i++) expect += 2 + i % 5;
    cr_assert_eq(atomic_load(&total), expect);
}

Test(pool, many_small_calls, .timeout = 60)
{
    ncalls = 200000;
    run_probe(2, many_calls_probe);
    ncalls = 20000; /* more threads than cores on the 2-core CI: slower */
    run_probe(4, many_calls_probe);
}

/* A kernel that itself calls dnrt_parallel_for runs the inner loop inline. */
static void inner_kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
{
    (void)worker;
    for (int64_t i = begin; i < end; i++) dnrt_parallel_for(c, sum_kernel, 3);
}

static void nested_probe(const dnrt_call *c)
{
    atomic_store(&total, 0);
    dnrt_parallel_for(c, inner_kernel, 10);
    cr_assert_eq(atomic_load(&total), 30);
}

Test(pool, nested_calls_run_inline) { run_probe(3, nested_probe); }

/* Workers: the chunks of one call run as distinct workers below the
 * thread count (so kernels may keep scratch in their worker's slice), one
 * chunk per thread that has work, and they cover [0, count). */
static _Atomic int worker_hits[64];

static void worker_kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
{
    (void)c;
    if (worker < 0 || worker >= current_threads) atomic_fetch_add(&chunks, 1000000);
    if (worker >= 0 && worker < 64) atomic_fetch_add(&worker_hits[worker], 1);
    for (int64_t i = begin; i < end; i++) atomic_fetch_add(&hits[i], 1);
    atomic_fetch_add(&chunks, 1);
}

static void worker_probe(const dnrt_call *c)
{
    int64_t counts[] = {1, 2, 3, 7, 64, 1000};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        int64_t n = counts[k];
        memset(hits, 0, sizeof hits);
        memset(worker_hits, 0, sizeof worker_hits);
        atomic_store(&chunks, 0);
        dnrt_parallel_for(c, worker_kernel, n);
        for (int64_t i = 0; i < n; i++) cr_assert_eq(atomic_load(&hits[i]), 1);
        int expect = n < current_threads ? (int)n : current_threads;
        cr_assert_eq(atomic_load(&chunks), expect, "threads %d count %lld: %d chunks", current_threads, (long long)n,
                     atomic_load(&chunks));
        for (int w = 0; w < 64; w++) cr_assert_leq(atomic_load(&worker_hits[w]), 1, "worker %d ran twice", w);
    }
}

Test(pool, chunks_run_as_distinct_workers)
{
    for (current_threads = 1; current_threads <= 6; current_threads++) run_probe(current_threads, worker_probe);
}

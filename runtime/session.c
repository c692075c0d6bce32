/* session.c -- creating and destroying sessions, and their small accessors.
 *
 * A session is one instance of a compiled model: the state block (every
 * weight, buffer and optimizer tensor at the offsets the compiler planned),
 * a scratch arena grown on demand (run.c), a thread pool (pool.c), the step
 * counter and the learning rate (set_lr and set_learning_rate refuse NaN,
 * infinite and negative rates).  Running it is in run.c, weights I/O in
 * weights.c.
 */
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "internal.h"

/* Thread count: 'requested', else $DNRT_THREADS (when it is a number from
 * 1 to 1024), else the online CPUs. */
static int thread_count(int32_t requested)
{
    if (requested > 0) return requested;
    int64_t v;
    if (dnrt_decimal(getenv("DNRT_THREADS"), 1, 1024, &v) == 0) return (int)v;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 ? (int)(cpus < 1024 ? cpus : 1024) : 1;
}

/* Checks what create relies on in 'd'; 0 or -1 with 'err' filled. */
static int check_desc(const dnrt_model_desc *d, dnrt_error *err)
{
    if (!d) return dnrt_fail(err, DNRT_ERR_ARG, "create: model descriptor is NULL");
    if (d->abi_version != DNRT_ABI_VERSION)
        return dnrt_fail(err, DNRT_ERR_STATE, "create: model '%s' was built for runtime ABI %u, this runtime is ABI %d",
                         d->name ? d->name : "?", d->abi_version, DNRT_ABI_VERSION);
    if (!d->infer || d->state_bytes < 0 || d->nstate < 0 || (d->nstate > 0 && !d->state) || (d->trains && !d->train))
        return dnrt_fail(err, DNRT_ERR_ARG, "create: model descriptor '%s' is malformed", d->name ? d->name : "?");
    for (int32_t i = 0; i < d->nstate; i++)
        if (dnrt_check_state_desc(d, i, err)) return -1;
    return 0;
}

dnrt_session *dnrt_session_create(const dnrt_model_desc *d, const dnrt_options *opt, dnrt_error *err)
{
    if (check_desc(d, err)) return NULL;
    if (opt && opt->threads < 0) {
        dnrt_fail(err, DNRT_ERR_ARG, "create: threads = %d, must be >= 0", opt->threads);
        return NULL;
    }
    dnrt_session *s = dnrt_malloc(sizeof *s);
    if (!s) {
        dnrt_fail(err, DNRT_ERR_NOMEM, "create: out of memory");
        return NULL;
    }
    *s = (dnrt_session){.d = d, .seed = opt ? opt->seed : 0, .lr = d->lr};
    s->state = dnrt_alloc_aligned((size_t)d->state_bytes);
    if (!s->state) {
        dnrt_fail(err, DNRT_ERR_NOMEM, "create: out of memory for %lld bytes of state", (long long)d->state_bytes);
        dnrt_session_destroy(s);
        return NULL;
    }
    for (int32_t i = 0; i < d->nstate; i++) dnrt_init_tensor(d, i, s->state, s->seed);
    /* a GPU session's host threads only stage data: one is enough */
    s->pool = dnrt_pool_new(d->gpu ? 1 : thread_count(opt ? opt->threads : 0), err);
    if (!s->pool || (d->gpu && dnrt_gpu_open(s, opt, err))) {
        dnrt_session_destroy(s);
        return NULL;
    }
    dnrt_ok(err);
    return s;
}

void dnrt_session_destroy(dnrt_session *s)
{
    if (!s) return;
    dnrt_gpu_close(s);
    dnrt_pool_free(s->pool);
    dnrt_free(s->saved);
    dnrt_free(s->arena);
    dnrt_free(s->state);
    dnrt_free(s);
}

/* A rate the optimizers can use: finite and >= 0 (0 is allowed: gradient
 * checks take a step that changes nothing). */
static int valid_lr(float lr) { return lr >= 0 && lr <= FLT_MAX; }

void dnrt_session_set_lr(dnrt_session *s, float lr)
{
    if (!s) return;
    s->lr_refused = !valid_lr(lr);
    if (s->lr_refused)
        s->refused_lr = lr;
    else
        s->lr = lr;
}

int dnrt_session_set_learning_rate(dnrt_session *s, float lr, dnrt_error *err)
{
    if (!s) return dnrt_fail(err, DNRT_ERR_ARG, "set_learning_rate: session is NULL");
    if (!valid_lr(lr))
        return dnrt_fail(err, DNRT_ERR_ARG,
                         "set_learning_rate: lr = %s refused: the learning rate must be finite and >= 0 (it stays %g)",
                         dnrt_num(lr, (char[32]){0}, 32), (double)s->lr);
    s->lr = lr;
    s->lr_refused = 0;
    return dnrt_ok(err);
}

float dnrt_session_get_lr(const dnrt_session *s) { return s ? s->lr : 0.0f; }

int64_t dnrt_session_get_step(const dnrt_session *s) { return s ? s->step : 0; }

void *dnrt_session_state(dnrt_session *s, const char *name)
{
    if (!s || !name) return NULL;
    for (int32_t i = 0; i < s->d->nstate; i++)
        if (strcmp(s->d->state[i].name, name) == 0) {
            /* the caller may read or write it: the host copy is made current, then counts as changed */
            if (dnrt_gpu_state_to_host(s, NULL)) return NULL;
            dnrt_gpu_state_changed(s);
            return s->state + s->d->state[i].offset;
        }
    return NULL;
}

/* run.c -- dnrt_session_infer and dnrt_session_train_step: check the
 * arguments, make sure the arena is big enough for this batch size, fill a
 * dnrt_call and hand it to the generated entry function.
 *
 * The arena is shared by both entries and only grows (to n * arena_n +
 * arena_b + threads * arena_t for the largest n seen: the pools, then one
 * worker slice per pool thread), so steady-state calls allocate nothing.
 */
#include "internal.h"

/* Grows the arena to hold 'n' rows of entry (an, ab) and the worker slices
 * of 'at' bytes per thread; 0 or -1. */
static int reserve_arena(dnrt_session *s, const char *what, int64_t n, int64_t an, int64_t ab, int64_t at,
                         dnrt_error *err)
{
    int64_t threads = dnrt_pool_threads(s->pool);
    if (an < 0 || ab < 0 || at < 0 || (at > 0 && threads > (INT64_MAX - ab) / at))
        return dnrt_fail(err, DNRT_ERR_ARG, "%s: the arena is too large for this model", what);
    ab += at * threads;
    if (an > 0 && n > (INT64_MAX - ab) / an)
        return dnrt_fail(err, DNRT_ERR_ARG, "%s: n = %lld is too large for this model", what, (long long)n);
    int64_t need = n * an + ab;
    if (need <= s->arena_bytes && s->arena) return 0;
    uint8_t *a = dnrt_alloc_aligned((size_t)need);
    if (!a)
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for a %lld-byte arena (n = %lld)", what,
                         (long long)need, (long long)n);
    dnrt_free(s->arena);
    s->arena = a;
    s->arena_bytes = need;
    return 0;
}

/* Integer inputs whose descriptor gives a range (class labels): every
 * element must lie in it, else the kernels would read outside a row. */
static int check_values(const char *what, int64_t n, const void *p, const dnrt_tensor_desc *d, dnrt_error *err)
{
    if (d->dtype != DNRT_I32 || d->valid_min >= d->valid_max) return 0;
    int64_t count = 1;
    for (int32_t i = 0; i < d->rank; i++) count *= d->dim[i] < 0 ? n : d->dim[i];
    const int32_t *v = p;
    for (int64_t i = 0; i < count; i++)
        if (v[i] < d->valid_min || v[i] > d->valid_max)
            return dnrt_fail(err, DNRT_ERR_ARG, "%s: input '%s' element %lld is %d, outside [%lld, %lld]", what,
                             d->name, (long long)i, v[i], (long long)d->valid_min, (long long)d->valid_max);
    return 0;
}

/* Common checks: session, n, and 'count' non-null pointers in 'ptrs'. */
static int check_args(const dnrt_session *s, const char *what, int64_t n, const void *const *ptrs, int32_t count,
                      const dnrt_tensor_desc *descs, const char *kind, dnrt_error *err)
{
    if (!s) return dnrt_fail(err, DNRT_ERR_ARG, "%s: session is NULL", what);
    if (n < 1) return dnrt_fail(err, DNRT_ERR_ARG, "%s: n = %lld, must be >= 1", what, (long long)n);
    if (count > 0 && !ptrs) return dnrt_fail(err, DNRT_ERR_ARG, "%s: %ss array is NULL", what, kind);
    for (int32_t i = 0; i < count; i++) {
        if (!ptrs[i])
            return dnrt_fail(err, DNRT_ERR_ARG, "%s: %s %d ('%s') is NULL", what, kind, i,
                             descs && descs[i].name ? descs[i].name : "?");
        if (descs && check_values(what, n, ptrs[i], &descs[i], err)) return -1;
    }
    return 0;
}

/* Number of inputs of infer: those not marked train_only. */
static int32_t infer_inputs(const dnrt_model_desc *d)
{
    int32_t k = 0;
    for (int32_t i = 0; i < d->ninputs; i++) k += !d->inputs[i].train_only;
    return k;
}

int dnrt_session_infer(dnrt_session *s, int64_t n, const void *const *inputs, void *const *outputs, dnrt_error *err)
{
    if (check_args(s, "infer", n, inputs, s ? infer_inputs(s->d) : 0, s ? s->d->inputs : NULL, "input", err) ||
        check_args(s, "infer", n, (const void *const *)outputs, s->d->noutputs, s->d->outputs, "output", err))
        return -1;
    const dnrt_model_desc *d = s->d;
    if (reserve_arena(s, "infer", n, d->infer_arena_n, d->infer_arena_b, d->infer_arena_t, err)) return -1;
    dnrt_call c = {.n = n,
                   .arena = s->arena,
                   .state = s->state,
                   .inputs = inputs,
                   .outputs = outputs,
                   .pool = s->pool,
                   .step = s->step,
                   .seed = s->seed,
                   .lr = s->lr};
    d->infer(&c);
    return dnrt_ok(err);
}

int dnrt_session_train_step(dnrt_session *s, int64_t n, const void *const *inputs, float *loss, dnrt_error *err)
{
    if (s && (!s->d->trains || !s->d->train))
        return dnrt_fail(
            err, DNRT_ERR_STATE,
            "train_step: this library was compiled without training (dnnc --no-train or no train section)");
    if (check_args(s, "train_step", n, inputs, s ? s->d->ninputs : 0, s ? s->d->inputs : NULL, "input", err)) return -1;
    const dnrt_model_desc *d = s->d;
    if (!loss) return dnrt_fail(err, DNRT_ERR_ARG, "train_step: loss is NULL");
    if (reserve_arena(s, "train_step", n, d->train_arena_n, d->train_arena_b, d->train_arena_t, err)) return -1;
    void *outs[1] = {loss};
    dnrt_call c = {.n = n,
                   .arena = s->arena,
                   .state = s->state,
                   .inputs = inputs,
                   .outputs = outs,
                   .pool = s->pool,
                   .step = s->step,
                   .seed = s->seed,
                   .lr = s->lr};
    d->train(&c);
    s->step++;
    return dnrt_ok(err);
}

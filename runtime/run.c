/* run.c -- dnrt_session_infer and dnrt_session_train_step (and their _seq
 * forms, which take the sequence length t): check the
 * arguments, make sure the arena is big enough for this batch size, fill a
 * dnrt_call and hand it to the generated entry function.
 *
 * A training step whose guard (check_finite, before the optimizer updates)
 * finds a NaN or an infinity stops there and returns its code: the updates
 * did not run, so parameters and optimizer state are untouched, and the
 * buffers batchnorm_train wrote during the forward pass are copied back
 * from the snapshot taken before the step (ResNet-18's 40 running
 * statistics and 20 counters are 38 KB; the copy costs microseconds of a
 * step of a second).  The step counter does not advance.
 *
 * The arena is shared by both entries and only grows (to n * arena_n +
 * arena_b + threads * arena_t for the largest n seen: the pools, then one
 * worker slice per pool thread), so steady-state calls allocate nothing.
 */
#include <stdio.h>
#include <string.h>

#include "device.h"
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
    if (s->dev) { /* the arena is device memory (dnrt_gpu_run) */
        s->arena_bytes = need;
        return 0;
    }
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

/* Integer inputs whose descriptor gives a range (class labels, token ids):
 * every element must lie in it or equal the descriptor's extra value
 * (ignore_index), else the kernels would read outside a row. */
int64_t dnrt_tensor_count(const dnrt_tensor_desc *d, int64_t n, int64_t t)
{
    int64_t count = 1;
    for (int32_t i = 0; i < d->rank; i++) {
        int64_t k = d->dim[i] == DNRT_DIM_BATCH ? n : d->dim[i] == DNRT_DIM_SEQ ? t : d->dim[i];
        if (k < 0 || (k > 0 && count > INT64_MAX / k)) return 0;
        count *= k;
    }
    return count;
}

static int check_values(const char *what, int64_t n, int64_t t, const void *p, const dnrt_tensor_desc *d,
                        dnrt_error *err)
{
    if (d->dtype != DNRT_I32 || d->valid_min >= d->valid_max) return 0;
    int64_t count = dnrt_tensor_count(d, n, t);
    const int32_t *v = p;
    for (int64_t i = 0; i < count; i++) {
        if (v[i] >= d->valid_min && v[i] <= d->valid_max) continue;
        if (d->has_valid_extra && v[i] == d->valid_extra) continue;
        if (d->has_valid_extra)
            return dnrt_fail(err, DNRT_ERR_ARG,
                             "%s: input '%s' element %lld is %d, outside [%lld, %lld] and not %lld (ignore_index)",
                             what, d->name, (long long)i, v[i], (long long)d->valid_min, (long long)d->valid_max,
                             (long long)d->valid_extra);
        return dnrt_fail(err, DNRT_ERR_ARG, "%s: input '%s' element %lld is %d, outside [%lld, %lld]", what, d->name,
                         (long long)i, v[i], (long long)d->valid_min, (long long)d->valid_max);
    }
    return 0;
}

/* Common checks: session, n, t, and 'count' non-null pointers in 'ptrs'. */
static int check_args(const dnrt_session *s, const char *what, int64_t n, int64_t t, const void *const *ptrs,
                      int32_t count, const dnrt_tensor_desc *descs, const char *kind, dnrt_error *err)
{
    if (!s) return dnrt_fail(err, DNRT_ERR_ARG, "%s: session is NULL", what);
    if (n < 1) return dnrt_fail(err, DNRT_ERR_ARG, "%s: n = %lld, must be >= 1", what, (long long)n);
    int64_t bound = s->d->seq_bound;
    if (bound && (t < 1 || t > bound))
        return dnrt_fail(err, DNRT_ERR_ARG, "%s: sequence length t = %lld is outside 1..%lld (the model's T<=%lld)",
                         what, (long long)t, (long long)bound, (long long)bound);
    if (count > 0 && !ptrs) return dnrt_fail(err, DNRT_ERR_ARG, "%s: %ss array is NULL", what, kind);
    for (int32_t i = 0; i < count; i++) {
        if (!ptrs[i])
            return dnrt_fail(err, DNRT_ERR_ARG, "%s: %s %d ('%s') is NULL", what, kind, i,
                             descs && descs[i].name ? descs[i].name : "?");
        if (descs && check_values(what, n, t, ptrs[i], &descs[i], err)) return -1;
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

/* Copies every buffer (DNRT_STATE_BUFFER) of the state into s->saved, or
 * back when 'restore'; allocates s->saved at the first call.  On a GPU the
 * buffers are the device's (or the host copy's, while that is newer).
 * 0 or -1. */
static int copy_buffers(dnrt_session *s, int restore, dnrt_error *err)
{
    const dnrt_model_desc *d = s->d;
    if (!s->saved) {
        int64_t bytes = 0;
        for (int32_t i = 0; i < d->nstate; i++)
            if (d->state[i].kind == DNRT_STATE_BUFFER) bytes += dnrt_state_nbytes(&d->state[i]);
        if (bytes == 0) return 0;
        s->saved = dnrt_malloc((size_t)bytes);
        if (!s->saved)
            return dnrt_fail(err, DNRT_ERR_NOMEM, "train_step: out of memory for a %lld-byte copy of the buffers",
                             (long long)bytes);
    }
    uint8_t *at = s->saved;
    for (int32_t i = 0; i < d->nstate; i++) {
        const dnrt_tensor_desc *t = &d->state[i];
        if (t->kind != DNRT_STATE_BUFFER) continue;
        size_t nb = (size_t)dnrt_state_nbytes(t);
        if (s->dev && !s->dev->dev_stale) {
            if (dnrt_gpu_state_io(s, restore, (size_t)t->offset, at, nb, err)) return -1;
        } else if (restore)
            memcpy(s->state + t->offset, at, nb);
        else
            memcpy(at, s->state + t->offset, nb);
        at += nb;
    }
    return 0;
}

/* The message of a step refused by guard 'code' (dnrt.h: DNRT_GUARD_*). */
static int refused(dnrt_session *s, int32_t code, float loss, dnrt_error *err)
{
    char nb[32];
    const dnrt_model_desc *d = s->d;
    char what[200], note[240] = "";
    int32_t i = code - DNRT_GUARD_STATE;
    if (code == DNRT_GUARD_LOSS)
        snprintf(what, sizeof what, "the loss is not finite (%s)", dnrt_num(loss, nb, sizeof nb));
    else if (i >= 0 && i < d->nstate && d->state[i].kind == DNRT_STATE_BUFFER)
        snprintf(what, sizeof what, "the new value of '%.120s' is not finite", d->state[i].name);
    else if (i >= 0 && i < d->nstate)
        snprintf(what, sizeof what, "the gradient of '%.120s' is not finite", d->state[i].name);
    else
        snprintf(what, sizeof what, "a guard found a value that is not finite (code %d)", code);
    int64_t elem;
    float bad;
    int32_t at = dnrt_gpu_state_to_host(s, NULL) ? -1 : dnrt_state_nonfinite(d, s->state, &elem, &bad);
    if (at >= 0)
        snprintf(note, sizeof note, "; state tensor '%.120s' was not finite before the step (element %lld is %s)",
                 d->state[at].name, (long long)elem, dnrt_num(bad, nb, sizeof nb));
    return dnrt_fail(err, DNRT_ERR_NONFINITE,
                     "train_step: %s at step %lld (after %lld); parameters, optimizer state and statistics "
                     "unchanged (the step counter stays %lld)%s",
                     what, (long long)s->step + 1, (long long)s->step, (long long)s->step, note);
}

/* t = 0: the model's bound (1 for a model without T). */
static int64_t seq_len(const dnrt_session *s, int64_t t)
{
    if (!s) return t;
    if (!s->d->seq_bound) return t == 0 ? 1 : t;
    return t == 0 ? s->d->seq_bound : t;
}

int dnrt_session_infer(dnrt_session *s, int64_t n, const void *const *inputs, void *const *outputs, dnrt_error *err)
{
    return dnrt_session_infer_seq(s, n, 0, inputs, outputs, err);
}

int dnrt_session_infer_seq(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, void *const *outputs,
                           dnrt_error *err)
{
    t = seq_len(s, t);
    if (s && !s->d->seq_bound && t != 1)
        return dnrt_fail(err, DNRT_ERR_ARG, "infer: t = %lld, but this model has no sequence axis (pass 0)",
                         (long long)t);
    if (check_args(s, "infer", n, t, inputs, s ? infer_inputs(s->d) : 0, s ? s->d->inputs : NULL, "input", err) ||
        check_args(s, "infer", n, t, (const void *const *)outputs, s->d->noutputs, s->d->outputs, "output", err))
        return -1;
    const dnrt_model_desc *d = s->d;
    if (reserve_arena(s, "infer", n, d->infer_arena_n, d->infer_arena_b, d->infer_arena_t, err)) return -1;
    dnrt_call c = {.n = n,
                   .t = t,
                   .arena = s->arena,
                   .state = s->state,
                   .inputs = inputs,
                   .outputs = outputs,
                   .pool = s->pool,
                   .step = s->step,
                   .seed = s->seed,
                   .lr = s->lr};
    int32_t code = s->dev ? dnrt_gpu_run(s, d->infer, n, t, inputs, d->inputs, infer_inputs(d), outputs, d->outputs,
                                         d->noutputs, 0, s->arena_bytes, err)
                          : d->infer(&c);
    if (code < 0) return -1;
    if (code)
        return dnrt_fail(err, DNRT_ERR_NONFINITE, "infer: a guard of the inference graph stopped it (code %d)", code);
    return dnrt_ok(err);
}

int dnrt_session_train_step(dnrt_session *s, int64_t n, const void *const *inputs, float *loss, dnrt_error *err)
{
    return dnrt_session_train_step_seq(s, n, 0, inputs, loss, err);
}

int dnrt_session_train_step_seq(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, float *loss,
                                dnrt_error *err)
{
    t = seq_len(s, t);
    if (s && !s->d->seq_bound && t != 1)
        return dnrt_fail(err, DNRT_ERR_ARG, "train_step: t = %lld, but this model has no sequence axis (pass 0)",
                         (long long)t);
    if (s && (!s->d->trains || !s->d->train))
        return dnrt_fail(
            err, DNRT_ERR_STATE,
            "train_step: this library was compiled without training (dnnc --no-train or no train section)");
    if (check_args(s, "train_step", n, t, inputs, s ? s->d->ninputs : 0, s ? s->d->inputs : NULL, "input", err))
        return -1;
    const dnrt_model_desc *d = s->d;
    if (!loss) return dnrt_fail(err, DNRT_ERR_ARG, "train_step: loss is NULL");
    if (s->lr_refused)
        return dnrt_fail(err, DNRT_ERR_ARG,
                         "train_step: set_lr(%s) was refused (the learning rate must be finite and >= 0); the rate "
                         "is still %g, and no step runs until a valid one is set",
                         dnrt_num(s->refused_lr, (char[32]){0}, 32), (double)s->lr);
    if (reserve_arena(s, "train_step", n, d->train_arena_n, d->train_arena_b, d->train_arena_t, err) ||
        copy_buffers(s, 0, err))
        return -1;
    void *outs[1] = {loss};
    dnrt_call c = {.n = n,
                   .t = t,
                   .arena = s->arena,
                   .state = s->state,
                   .inputs = inputs,
                   .outputs = outs,
                   .pool = s->pool,
                   .step = s->step,
                   .seed = s->seed,
                   .lr = s->lr};
    static const dnrt_tensor_desc loss_desc = {.name = "loss", .dtype = DNRT_F32, .rank = 0};
    int32_t code = s->dev ? dnrt_gpu_run(s, d->train, n, t, inputs, d->inputs, d->ninputs, outs, &loss_desc, 1, 1,
                                         s->arena_bytes, err)
                          : d->train(&c);
    if (code < 0) return -1;
    if (s->dev) s->dev->host_stale = 1; /* the step wrote the device's state (or a refused one its buffers) */
    if (code) {
        copy_buffers(s, 1, NULL);
        return refused(s, code, *loss, err);
    }
    s->step++;
    return dnrt_ok(err);
}

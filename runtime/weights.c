/* weights.c -- a session's state to and from safetensors files
 * (dnrt_session_load / dnrt_session_save).
 *
 * Loading is strict, like PyTorch's load_state_dict(strict=True): every
 * weight and buffer must be in the file with the model's dtype and shape,
 * and the file may hold nothing else.  Optimizer state is optional as a
 * group: absent, it is reset (zeros, step 0); present, it must be complete.
 * The header is checked against the model before any tensor is read (so a
 * damaged or huge file costs only its header), the model's tensors are then
 * read into a staging block, and only when every read succeeded is the
 * staging block copied into the session: a failed load changes nothing.
 * Saving writes every state tensor plus "dnnc.model" and "dnnc.step", and
 * refuses state holding a NaN or an infinity (a diverged run's weights must
 * not replace a good file).
 * Names in messages are cut at 120 bytes, like the reader's.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "internal.h"
#include "safetensors.h"

/* What validation found, applied afterwards by apply(). */
typedef struct plan {
    const dnrt_st_tensor **src; /* per state tensor: its file tensor or NULL */
    int have_optim;             /* the file holds the optimizer state */
    int have_step;
    int64_t step;
} plan;

/* Same dtype and shape?  Otherwise "expected f32[..], got f16[..]". */
static int check_match(const char *path, const dnrt_tensor_desc *want, const dnrt_st_tensor *got, dnrt_error *err)
{
    int same = got->dtype == want->dtype && got->rank == want->rank;
    for (int32_t k = 0; same && k < want->rank; k++) same = got->dim[k] == want->dim[k];
    if (same) return 0;
    char lower[16], a[160], b[160];
    size_t i = 0;
    for (; got->dtype_name[i] && i < sizeof lower - 1; i++) lower[i] = (char)tolower((unsigned char)got->dtype_name[i]);
    lower[i] = 0;
    dnrt_type_str(dnrt_dtype_name(want->dtype), want->rank, want->dim, a, sizeof a);
    dnrt_type_str(lower, got->rank, got->dim, b, sizeof b);
    return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensor '%.120s': expected %s, got %s", path, want->name, a, b);
}

/* "dnnc.step": a decimal integer in [0, DNRT_MAX_STEP], when present. */
static int read_step(const char *path, const dnrt_st_file *f, plan *p, dnrt_error *err)
{
    const char *v = dnrt_st_meta(f, "dnnc.step");
    if (!v) return 0;
    int rc = dnrt_decimal(v, 0, DNRT_MAX_STEP, &p->step);
    const char *more = strlen(v) > 40 ? "..." : "";
    if (rc == DNRT_DEC_SYNTAX)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: metadata dnnc.step = '%.40s%s' is not a step count", path, v, more);
    if (rc)
        return dnrt_fail(err, DNRT_ERR_FORMAT,
                         "%s: metadata dnnc.step = '%.40s%s' is out of range (0 to %lld, DNRT_MAX_STEP)", path, v, more,
                         (long long)DNRT_MAX_STEP);
    p->have_step = 1;
    return 0;
}

/* Every tensor of the file must be state of the model ('used' marks the
 * ones that are, by index in the file), except that a model without
 * optimizer state (an inference library) skips the optimizer's entries
 * (optim.<param>.<slot>) of a training checkpoint. */
static int check_unexpected(const dnrt_model_desc *d, const char *path, const dnrt_st_file *f, const plan *p,
                            dnrt_error *err)
{
    uint8_t *used = dnrt_malloc((size_t)(f->ntensors ? f->ntensors : 1));
    if (!used) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", path);
    memset(used, 0, (size_t)f->ntensors);
    int has_optim = 0;
    for (int32_t i = 0; i < d->nstate; i++) {
        if (p->src[i]) used[p->src[i] - f->tensors] = 1;
        has_optim |= d->state[i].kind == DNRT_STATE_OPTIM;
    }
    for (int32_t i = 0; i < f->ntensors && !has_optim; i++)
        if (!strncmp(f->tensors[i].name, "optim.", 6)) used[i] = 1;
    int rc = 0;
    for (int32_t i = 0; i < f->ntensors && !rc; i++)
        if (!used[i])
            rc = dnrt_fail(err, DNRT_ERR_FORMAT, "%s: unexpected tensor '%.120s' (model '%s' has no such state)", path,
                           f->tensors[i].name, d->name ? d->name : "?");
    dnrt_free(used);
    return rc;
}

/* Checks the whole header against the model; fills 'p'. */
static int validate(const dnrt_model_desc *d, const char *path, const dnrt_st_file *f, plan *p, dnrt_error *err)
{
    for (int32_t i = 0; i < d->nstate; i++) p->src[i] = dnrt_st_find(f, d->state[i].name);
    if (check_unexpected(d, path, f, p, err)) return -1;
    int noptim = 0, nfound = 0;
    const char *missing_optim = NULL;
    for (int32_t i = 0; i < d->nstate; i++) {
        const dnrt_tensor_desc *t = &d->state[i];
        if (p->src[i] && check_match(path, t, p->src[i], err)) return -1;
        if (t->kind != DNRT_STATE_OPTIM && t->kind != DNRT_STATE_CACHE && !p->src[i])
            return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: missing tensor '%.120s'", path, t->name);
        if (t->kind == DNRT_STATE_OPTIM) {
            noptim++;
            nfound += p->src[i] != NULL;
            if (!p->src[i] && !missing_optim) missing_optim = t->name;
        }
    }
    if (nfound > 0 && nfound < noptim)
        return dnrt_fail(err, DNRT_ERR_FORMAT,
                         "%s: missing tensor '%.120s' (optimizer state must be complete or absent)", path,
                         missing_optim);
    p->have_optim = nfound > 0;
    return read_step(path, f, p, err);
}

/* Reads the file's tensors into a new staging block laid out like the
 * state block ('*stage'); absent optimizer tensors stay zero. */
static int read_tensors(const dnrt_model_desc *d, dnrt_st_file *f, const plan *p, uint8_t **stage, dnrt_error *err)
{
    *stage = dnrt_alloc_aligned((size_t)d->state_bytes);
    if (!*stage)
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for %lld bytes of state", f->path,
                         (long long)d->state_bytes);
    for (int32_t i = 0; i < d->nstate; i++)
        if (p->src[i] && dnrt_st_read_data(f, p->src[i], *stage + d->state[i].offset, err)) return -1;
    return 0;
}

/* Copies the staged file into the session. */
static void apply(dnrt_session *s, const plan *p, const uint8_t *stage)
{
    const dnrt_model_desc *d = s->d;
    for (int32_t i = 0; i < d->nstate; i++) {
        int64_t off = d->state[i].offset;
        memcpy(s->state + off, stage + off, (size_t)dnrt_state_nbytes(&d->state[i]));
    }
    if (!p->have_optim)
        s->step = 0;
    else if (p->have_step)
        s->step = p->step;
}

int dnrt_session_load(dnrt_session *s, const char *path, dnrt_error *err)
{
    if (!s || !path) return dnrt_fail(err, DNRT_ERR_ARG, "load: %s is NULL", s ? "path" : "session");
    dnrt_st_file f;
    if (dnrt_st_open(path, &f, err)) return -1;
    plan p = {.src = dnrt_malloc(sizeof *p.src * (size_t)(s->d->nstate ? s->d->nstate : 1))};
    uint8_t *stage = NULL;
    int rc = p.src ? validate(s->d, path, &f, &p, err) : dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", path);
    if (!rc) rc = read_tensors(s->d, &f, &p, &stage, err);
    if (!rc) apply(s, &p, stage);
    if (!rc) dnrt_gpu_state_changed(s); /* apply rewrote every tensor of the host copy */
    dnrt_free(stage);
    dnrt_free(p.src);
    dnrt_st_free(&f);
    return rc ? -1 : dnrt_ok(err);
}

int dnrt_session_save(dnrt_session *s, const char *path, dnrt_error *err)
{
    if (!s || !path) return dnrt_fail(err, DNRT_ERR_ARG, "save: %s is NULL", s ? "path" : "session");
    const dnrt_model_desc *d = s->d;
    if (dnrt_gpu_state_to_host(s, err)) return -1;
    int64_t elem;
    float bad;
    int32_t at = dnrt_state_nonfinite(d, s->state, &elem, &bad);
    if (at >= 0)
        return dnrt_fail(err, DNRT_ERR_NONFINITE,
                         "%s: not saved: state tensor '%.120s' element %lld is %s; refusing to write state that is "
                         "not finite (the file is unchanged)",
                         path, d->state[at].name, (long long)elem, dnrt_num(bad, (char[32]){0}, 32));
    dnrt_st_tensor *t = dnrt_malloc(sizeof *t * (size_t)(d->nstate ? d->nstate : 1));
    if (!t) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", path);
    int32_t nt = 0;
    for (int32_t i = 0; i < d->nstate; i++) {
        const dnrt_tensor_desc *st = &d->state[i];
        if (st->kind == DNRT_STATE_CACHE) continue; /* decoding state: not the model's */
        t[nt] = (dnrt_st_tensor){.name = st->name,
                                 .dtype = st->dtype,
                                 .rank = st->rank,
                                 .data = s->state + st->offset,
                                 .nbytes = (size_t)dnrt_state_nbytes(st)};
        memcpy(t[nt].dim, st->dim, sizeof st->dim);
        nt++;
    }
    char step[24];
    snprintf(step, sizeof step, "%lld", (long long)s->step);
    const char *keys[] = {"dnnc.model", "dnnc.step"}, *values[] = {d->name ? d->name : "", step};
    int rc = dnrt_st_write(path, nt, t, 2, keys, values, err);
    dnrt_free(t);
    return rc;
}

/* data_pairs.c -- see data_pairs.h. */
#include "data_pairs.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "readfile.h"
#include "seq_train.h"

typedef struct Pair {
    const uint8_t *src, *tgt;
    int64_t src_n, tgt_n, line;
} Pair;

typedef struct PairSet {
    const char *path;
    uint8_t *data;
    int64_t count;
    Pair *p;
} PairSet;

typedef struct Pairs {
    int src, src_len, tgt_in, label, logits; /* input indices (descriptor order), output index; -1: absent */
    int64_t S, T, cap;
    PairSet train, test;
    int64_t *order;
    int32_t *in_buf[4]; /* src, src_len, tgt_in, label: cap rows each */
    const void *in[64];
    void *out[64];
    uint8_t *decoded;
    int64_t *dec_len;
    uint8_t *finished;
} Pairs;

enum { B_SRC, B_SRC_LEN, B_TGT_IN, B_LABEL };

static void pairs_free(Pairs *p, const Model *m)
{
    free(p->train.data), free(p->train.p), free(p->test.data), free(p->test.p);
    free(p->order);
    for (int i = 0; i < 4; i++) free(p->in_buf[i]);
    for (int i = 0; m->d && i < m->d->noutputs && i < 64; i++) free(p->out[i]);
    free(p->decoded), free(p->dec_len), free(p->finished);
}

/* ---- the model's tensors, by name ------------------------------------------- */

static int bad_shape(const Opts *o, const Model *m, const dnrt_tensor_desc *t, const char *want)
{
    char got[128];
    return runtime_error("%s: model '%s': '%s' must be %s for pairs data, got %s", o->model, m->d->name, t->name, want,
                         shape_str(t, got, sizeof got));
}

static int bind(const Opts *o, const Model *m, int training, Pairs *p)
{
    const dnrt_model_desc *d = m->d;
    p->src = p->src_len = p->tgt_in = p->label = p->logits = -1;
    if (d->ninputs > 64 || d->noutputs > 64) return runtime_error("%s: more than 64 inputs or outputs", o->model);
    for (int i = 0; i < d->ninputs; i++) {
        const char *n = d->inputs[i].name;
        int *slot = !strcmp(n, "src")       ? &p->src
                    : !strcmp(n, "src_len") ? &p->src_len
                    : !strcmp(n, "tgt_in")  ? &p->tgt_in
                    : !strcmp(n, "label")   ? &p->label
                                            : NULL;
        if (!slot)
            return runtime_error("%s: model '%s': input '%s' is none of src, src_len, tgt_in, label (what pairs data "
                                 "feeds)",
                                 o->model, d->name, n);
        *slot = i;
    }
    for (int i = 0; i < d->noutputs; i++)
        if (!strcmp(d->outputs[i].name, "logits")) p->logits = i;
    const char *missing = p->src < 0                 ? "input 'src: i32[N, S]'"
                          : p->tgt_in < 0            ? "input 'tgt_in: i32[N, T]'"
                          : p->logits < 0            ? "output 'logits: f32[N, T, 256]'"
                          : training && p->label < 0 ? "train input 'label: i32[N, T]'"
                                                     : NULL;
    if (missing)
        return runtime_error("%s: model '%s' has no %s: pairs data needs src, tgt_in, logits%s (and takes src_len)",
                             o->model, d->name, missing, training ? " and label" : "");
    const dnrt_tensor_desc *src = &d->inputs[p->src], *tgt = &d->inputs[p->tgt_in];
    if (src->dtype != DNRT_I32 || src->rank != 2 || src->dim[0] != -1 || src->dim[1] < 1 || src->train_only)
        return bad_shape(o, m, src, "i32[N, S]");
    if (tgt->dtype != DNRT_I32 || tgt->rank != 2 || tgt->dim[0] != -1 || tgt->dim[1] < 1 || tgt->train_only)
        return bad_shape(o, m, tgt, "i32[N, T]");
    p->S = src->dim[1];
    p->T = tgt->dim[1];
    char want[64];
    static const int64_t len_dims[1] = {-1};
    if (p->src_len >= 0 &&
        (!shape_is(&d->inputs[p->src_len], DNRT_I32, 1, len_dims) || d->inputs[p->src_len].train_only))
        return bad_shape(o, m, &d->inputs[p->src_len], "i32[N]");
    int64_t lab_dims[2] = {-1, p->T}, log_dims[3] = {-1, p->T, 256};
    snprintf(want, sizeof want, "i32[N, %lld] (train only)", (long long)p->T);
    if (p->label >= 0 && (!shape_is(&d->inputs[p->label], DNRT_I32, 2, lab_dims) || !d->inputs[p->label].train_only))
        return bad_shape(o, m, &d->inputs[p->label], want);
    snprintf(want, sizeof want, "f32[N, %lld, 256]", (long long)p->T);
    if (!shape_is(&d->outputs[p->logits], DNRT_F32, 3, log_dims)) return bad_shape(o, m, &d->outputs[p->logits], want);
    return 0;
}

/* ---- the file ----------------------------------------------------------------- */

static int load_set(const char *path, const Pairs *p, PairSet *set)
{
    char err[4600];
    set->path = path;
    int64_t len;
    if (dn_read_file(path, &set->data, &len, err, sizeof err)) return runtime_error("%s", err);
    int64_t lines = 0;
    for (int64_t i = 0; i < len; i++) lines += set->data[i] == '\n';
    set->p = malloc(sizeof *set->p * (lines + 1));
    if (!set->p) return runtime_error("%s: out of memory", path);
    uint8_t *at = set->data, *end = set->data + len;
    for (int64_t line = 1; at < end; line++) {
        uint8_t *nl = memchr(at, '\n', (size_t)(end - at)), *stop = nl ? nl : end;
        if (stop > at && stop[-1] == '\r') stop--;
        if (stop == at)
            return runtime_error("%s:%lld: empty line (a pair is 'source<TAB>target')", path, (long long)line);
        uint8_t *tab = memchr(at, '\t', (size_t)(stop - at));
        if (!tab) return runtime_error("%s:%lld: no tab (a pair is 'source<TAB>target')", path, (long long)line);
        if (memchr(tab + 1, '\t', (size_t)(stop - tab - 1)))
            return runtime_error("%s:%lld: more than one tab (a pair is 'source<TAB>target')", path, (long long)line);
        Pair *q = &set->p[set->count++];
        *q = (Pair){.src = at, .src_n = tab - at, .tgt = tab + 1, .tgt_n = stop - tab - 1, .line = line};
        if (q->src_n > p->S)
            return runtime_error("%s:%lld: the source is %lld bytes, longer than the %lld of the model's src", path,
                                 (long long)line, (long long)q->src_n, (long long)p->S);
        if (q->tgt_n > p->T - 1)
            return runtime_error("%s:%lld: the target is %lld bytes, longer than T - 1 = %lld (tgt_in holds BOS and "
                                 "the target; label the target and EOS)",
                                 path, (long long)line, (long long)q->tgt_n, (long long)p->T - 1);
        at = nl ? nl + 1 : end;
    }
    if (set->count == 0) return runtime_error("%s: no pairs (an empty file)", path);
    return 0;
}

/* After bind: reads the files and allocates the batch. */
static int pairs_open(const Opts *o, const Model *m, int training, Pairs *p)
{
    if (training && !o->test) return runtime_error("train with pairs data needs --test FILE (the evaluation pairs)");
    if (training && load_set(o->files, p, &p->train)) return 1;
    if (load_set(o->test ? o->test : o->files, p, &p->test)) return 1;
    if (o->limit > 0 && p->train.count > o->limit) p->train.count = o->limit;
    if (o->limit > 0 && p->test.count > o->limit) p->test.count = o->limit;
    int64_t most = p->train.count > p->test.count ? p->train.count : p->test.count;
    p->cap = o->batch < most ? o->batch : most;
    const dnrt_model_desc *d = m->d;
    for (int i = 0; i < d->noutputs; i++) {
        int64_t per = tensor_numel(&d->outputs[i], 1);
        int64_t size = d->outputs[i].dtype == DNRT_F32 || d->outputs[i].dtype == DNRT_I32 ? 4 : 8;
        if (per > INT64_MAX / size / p->cap)
            return runtime_error("output '%s' of a batch of %lld: too large", d->outputs[i].name, (long long)p->cap);
        if (!(p->out[i] = malloc((size_t)(per * size * p->cap)))) return runtime_error("out of memory");
    }
    int64_t widths[4] = {p->S, 1, p->T, p->T};
    for (int i = 0; i < 4; i++)
        if (!(p->in_buf[i] = malloc(sizeof(int32_t) * widths[i] * p->cap))) return runtime_error("out of memory");
    if (p->src >= 0) p->in[p->src] = p->in_buf[B_SRC];
    if (p->src_len >= 0) p->in[p->src_len] = p->in_buf[B_SRC_LEN];
    p->in[p->tgt_in] = p->in_buf[B_TGT_IN];
    if (p->label >= 0) p->in[p->label] = p->in_buf[B_LABEL];
    p->order = malloc(sizeof *p->order * (p->train.count + 1));
    p->decoded = malloc((size_t)(p->cap * p->T));
    p->dec_len = malloc(sizeof *p->dec_len * p->cap);
    p->finished = malloc((size_t)p->cap);
    if (!p->order || !p->decoded || !p->dec_len || !p->finished) return runtime_error("out of memory");
    for (int64_t i = 0; i < p->train.count; i++) p->order[i] = i;
    return 0;
}

/* ---- batches ------------------------------------------------------------------- */

/* Row 'i' of the batch from pair 'q' (teacher forcing). */
static void put_pair(Pairs *p, int64_t i, const Pair *q)
{
    int32_t *src = p->in_buf[B_SRC] + i * p->S, *tin = p->in_buf[B_TGT_IN] + i * p->T;
    int32_t *lab = p->in_buf[B_LABEL] + i * p->T;
    for (int64_t j = 0; j < p->S; j++) src[j] = j < q->src_n ? q->src[j] : 0;
    p->in_buf[B_SRC_LEN][i] = (int32_t)q->src_n;
    for (int64_t j = 0; j < p->T; j++) {
        tin[j] = j == 0 ? PAIRS_BOS : j - 1 < q->tgt_n ? q->tgt[j - 1] : 0;
        lab[j] = j < q->tgt_n ? q->tgt[j] : j == q->tgt_n ? PAIRS_EOS : PAIRS_IGNORE;
    }
}

static void begin_epoch(void *ctx, uint64_t *rng)
{
    Pairs *p = ctx;
    for (int64_t i = p->train.count - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_random(rng) % (uint64_t)(i + 1)), t = p->order[i];
        p->order[i] = p->order[j];
        p->order[j] = t;
    }
}

static void fill_train(void *ctx, int64_t first, int64_t n, uint64_t *rng, const void **inputs)
{
    (void)rng;
    Pairs *p = ctx;
    for (int64_t i = 0; i < n; i++) put_pair(p, i, &p->train.p[p->order[first + i]]);
    memcpy(inputs, p->in, sizeof *inputs * 64);
}

static int run_infer(Model *m, Pairs *p, int64_t n)
{
    dnrt_error err = {0};
    if (m->api->infer(m->s, n, p->in, p->out, &err)) return runtime_error("infer: %s", err.message);
    return 0;
}

static int argmax(const float *z)
{
    int best = 0;
    for (int k = 1; k < 256; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

/* Decodes the 'n' pairs of the batch greedily into p->decoded, p->dec_len, p->finished. */
static int decode(Model *m, Pairs *p, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < p->T; j++) p->in_buf[B_TGT_IN][i * p->T + j] = j == 0 ? PAIRS_BOS : 0;
        p->dec_len[i] = 0;
        p->finished[i] = 0;
    }
    const float *logits = p->out[p->logits];
    for (int64_t t = 0; t < p->T; t++) {
        int64_t open = 0;
        for (int64_t i = 0; i < n; i++) open += !p->finished[i];
        if (!open) break;
        if (run_infer(m, p, n)) return 1;
        for (int64_t i = 0; i < n; i++) {
            if (p->finished[i]) continue;
            int y = argmax(logits + (i * p->T + t) * 256);
            if (y == PAIRS_EOS) {
                p->finished[i] = 1;
                continue;
            }
            p->decoded[i * p->T + p->dec_len[i]++] = (uint8_t)y;
            if (t + 1 < p->T) p->in_buf[B_TGT_IN][i * p->T + t + 1] = y;
        }
    }
    return 0;
}

static int is_match(const Pairs *p, int64_t i, const Pair *q)
{
    return p->finished[i] && p->dec_len[i] == q->tgt_n && !memcmp(p->decoded + i * p->T, q->tgt, (size_t)q->tgt_n);
}

/* Teacher-forced cross-entropy of the batch's labelled positions, added to *sum and *count. */
static int forced_loss(Model *m, Pairs *p, int64_t n, double *sum, int64_t *count)
{
    if (run_infer(m, p, n)) return 1;
    const float *logits = p->out[p->logits];
    for (int64_t k = 0; k < n * p->T; k++) {
        int32_t y = p->in_buf[B_LABEL][k];
        if (y == PAIRS_IGNORE) continue;
        const float *z = logits + k * 256;
        double mx = z[0], s = 0;
        for (int c = 1; c < 256; c++)
            if (z[c] > mx) mx = z[c];
        for (int c = 0; c < 256; c++) s += exp((double)z[c] - mx);
        *sum += mx + log(s) - z[y];
        ++*count;
    }
    return 0;
}

static int evaluate(void *ctx, Model *m, char *summary, size_t len)
{
    Pairs *p = ctx;
    const PairSet *set = &p->test;
    double sum = 0;
    int64_t count = 0, correct = 0;
    for (int64_t start = 0; start < set->count; start += p->cap) {
        int64_t n = set->count - start < p->cap ? set->count - start : p->cap;
        for (int64_t i = 0; i < n; i++) put_pair(p, i, &set->p[start + i]);
        if (forced_loss(m, p, n, &sum, &count) || decode(m, p, n)) return 1;
        for (int64_t i = 0; i < n; i++) correct += is_match(p, i, &set->p[start + i]);
    }
    snprintf(summary, len, "exact match %.2f%% (%lld of %lld pairs of %s), teacher-forced loss %.4f",
             100.0 * correct / set->count, (long long)correct, (long long)set->count, set->path, sum / count);
    return 0;
}

/* ---- commands ------------------------------------------------------------------- */

int pairs_train(const Opts *o)
{
    Model m;
    Pairs p = {0};
    int rc = seq_open_training(o, &m) || bind(o, &m, 1, &p) || pairs_open(o, &m, 1, &p);
    if (!rc) {
        printf("pairs: %lld training pairs from %s, %lld test pairs from %s; S = %lld, T = %lld\n",
               (long long)p.train.count, p.train.path, (long long)p.test.count, p.test.path, (long long)p.S,
               (long long)p.T);
        SeqTask task = {.ctx = &p,
                        .unit = "pairs",
                        .examples = p.train.count,
                        .begin_epoch = begin_epoch,
                        .fill = fill_train,
                        .evaluate = evaluate};
        rc = seq_train(&m, o, &task, p.cap);
    }
    pairs_free(&p, &m);
    close_model(&m);
    return rc;
}

int pairs_eval(const Opts *o)
{
    Model m;
    Pairs p = {0};
    char summary[1024];
    int rc = open_model(o->model, &m) || bind(o, &m, 0, &p) || load_weights(o, &m) || pairs_open(o, &m, 0, &p) ||
             evaluate(&p, &m, summary, sizeof summary);
    if (!rc) printf("%s\n", summary);
    pairs_free(&p, &m);
    close_model(&m);
    return rc;
}

int pairs_infer(const Opts *o)
{
    Model m;
    Pairs p = {0};
    int rc = open_model(o->model, &m) || bind(o, &m, 0, &p) || load_weights(o, &m) || pairs_open(o, &m, 0, &p);
    int64_t n = rc ? 0 : o->count < p.test.count ? o->count : p.test.count, correct = 0;
    for (int64_t start = 0; !rc && start < n; start += p.cap) {
        int64_t k = n - start < p.cap ? n - start : p.cap;
        for (int64_t i = 0; i < k; i++) put_pair(&p, i, &p.test.p[start + i]);
        if ((rc = decode(&m, &p, k))) break;
        for (int64_t i = 0; i < k; i++) {
            const Pair *q = &p.test.p[start + i];
            int ok = is_match(&p, i, q);
            correct += ok;
            printf("%.*s → %.*s%s → %.*s  %s\n", (int)q->src_n, (const char *)q->src, (int)p.dec_len[i],
                   (const char *)p.decoded + i * p.T, p.finished[i] ? "" : " (no EOS)", (int)q->tgt_n,
                   (const char *)q->tgt, ok ? "ok" : "WRONG");
        }
    }
    if (!rc) printf("%lld of %lld exact\n", (long long)correct, (long long)n);
    pairs_free(&p, &m);
    close_model(&m);
    return rc;
}

/* data_text.c -- see data_text.h. */
#include "data_text.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "readfile.h"
#include "seq_train.h"

typedef struct TextFile {
    char *name;
    uint8_t *data;
    int64_t len, train_len; /* the held-out part is [train_len, len) */
} TextFile;

typedef struct Text {
    int nfiles;
    TextFile *f;
    int64_t T, V, cap;    /* window length, logits per position, batch capacity */
    int64_t seq_t;        /* the t of infer_seq/train_step_seq: T for a model with T<=bound, else 0 */
    int64_t train_starts; /* offsets a training window may start at, over all files */
    int64_t held_windows; /* after --limit */
    int64_t train_bytes, held_bytes;
    int32_t *tok, *lab; /* cap * T each */
    float *logits;      /* cap * T * V */
} Text;

static void text_free(Text *t)
{
    for (int i = 0; i < t->nfiles; i++) free(t->f[i].name), free(t->f[i].data);
    free(t->f);
    free(t->tok);
    free(t->lab);
    free(t->logits);
}

static int64_t file_starts(const Text *t, const TextFile *f) { return f->train_len > t->T ? f->train_len - t->T : 0; }

static int64_t file_held_windows(const Text *t, const TextFile *f)
{
    int64_t held = f->len - f->train_len;
    return held > t->T ? (held - 1) / t->T : 0;
}

/* The window length: the model's fixed T, or for T<=bound --seq-len (default
 * the bound); *seq_t is what the _seq calls take (0 for a fixed T). */
static int window_len(const char *path, const dnrt_model_desc *d, const dnrt_tensor_desc *x, const Opts *o, Text *t)
{
    if (x->dim[1] != DNRT_DIM_SEQ) {
        if (o->seq_len && o->seq_len != x->dim[1])
            return runtime_error("--seq-len %lld: model '%s' (%s) has a fixed sequence length of %lld",
                                 (long long)o->seq_len, d->name, path, (long long)x->dim[1]);
        t->T = x->dim[1], t->seq_t = 0;
        return 0;
    }
    if (o->seq_len > d->seq_bound)
        return runtime_error("--seq-len %lld is above the bound of model '%s' (%s): T<=%lld", (long long)o->seq_len,
                             d->name, path, (long long)d->seq_bound);
    t->T = t->seq_t = o->seq_len ? o->seq_len : d->seq_bound;
    return 0;
}

/* Checks the model: one i32[N, T] input, logits f32[N, T, V >= 256] first,
 * and (training) one i32[N, T] label. */
static int check_model(const char *path, const Model *m, const Opts *o, int training, Text *t)
{
    const dnrt_model_desc *d = m->d;
    const dnrt_tensor_desc *x = &d->inputs[0], *z = &d->outputs[0];
    int nmodel = 0;
    for (int i = 0; i < d->ninputs; i++) nmodel += !d->inputs[i].train_only;
    if (nmodel != 1 || x->dtype != DNRT_I32 || x->rank != 2 || x->dim[0] != -1 ||
        (x->dim[1] < 1 && x->dim[1] != DNRT_DIM_SEQ))
        return runtime_error("%s: model '%s' does not take one i32[N, T] token input: text data needs that", path,
                             d->name);
    if (window_len(path, d, x, o, t)) return 1;
    if (d->noutputs < 1 || z->dtype != DNRT_F32 || z->rank != 3 || z->dim[0] != -1 || z->dim[1] != x->dim[1] ||
        z->dim[2] < 256)
        return runtime_error("%s: model '%s': text data needs a first output f32[N, %lld, V] of logits with V >= 256 "
                             "(one per byte value)",
                             path, d->name, (long long)t->T);
    t->V = z->dim[2];
    if (!training) return 0;
    int64_t lab[2] = {-1, x->dim[1]};
    if (d->ninputs != 2 || !shape_is(&d->inputs[1], DNRT_I32, 2, lab))
        return runtime_error("%s: model '%s': text training needs exactly one i32[N, %lld] label input (the next "
                             "bytes) besides the tokens",
                             path, d->name, (long long)t->T);
    return 0;
}

/* Reads the comma-separated 'list' and splits each file. */
static int load_files(const char *list, Text *t)
{
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n == 0) return runtime_error("--data text:%s: an empty file name in the list", list);
        TextFile *more = realloc(t->f, sizeof *t->f * (t->nfiles + 1));
        if (!more) return runtime_error("out of memory");
        t->f = more;
        TextFile *f = &t->f[t->nfiles++];
        memset(f, 0, sizeof *f);
        f->name = strndup(p, n);
        if (!f->name) return runtime_error("out of memory");
        char err[4600];
        if (dn_read_file(f->name, &f->data, &f->len, err, sizeof err)) return runtime_error("%s", err);
        if (f->len == 0) return runtime_error("%s: empty file: text data needs bytes", f->name);
        if (f->len < t->T + 1)
            return runtime_error("%s: %lld bytes, shorter than one window of T + 1 = %lld bytes (the model's T is "
                                 "%lld)",
                                 f->name, (long long)f->len, (long long)t->T + 1, (long long)t->T);
        f->train_len = f->len - f->len / TEXT_HELD_OUT_DIV;
        t->train_bytes += f->train_len;
        t->held_bytes += f->len - f->train_len;
        t->train_starts += file_starts(t, f);
        t->held_windows += file_held_windows(t, f);
        if (!comma) break;
        p = comma + 1;
    }
    return 0;
}

/* After check_model: reads the files and allocates the batch. */
static int text_open(const Opts *o, int training, Text *t)
{
    if (load_files(o->files, t)) return 1;
    if (training && t->train_starts == 0)
        return runtime_error("--data text:%s: no training window: the training part (the first 90%%) of a file "
                             "must hold T + 1 = %lld bytes",
                             o->files, (long long)t->T + 1);
    if (t->held_windows == 0)
        return runtime_error("--data text:%s: no held-out window: the held-out part (the last 10%%) of a file must "
                             "hold T + 1 = %lld bytes, so a file needs at least %lld bytes",
                             o->files, (long long)t->T + 1, (long long)(t->T + 1) * TEXT_HELD_OUT_DIV);
    if (o->limit > 0 && t->held_windows > o->limit) t->held_windows = o->limit;
    int64_t most = training ? t->train_bytes / t->T : 0;
    if (most < t->held_windows) most = t->held_windows;
    t->cap = o->batch < most ? o->batch : most;
    if (t->cap < 1) t->cap = 1;
    if (t->V > INT64_MAX / (int64_t)sizeof(float) / t->T / t->cap)
        return runtime_error("%lld logits per batch of %lld: too large", (long long)(t->V * t->T), (long long)t->cap);
    t->tok = malloc(sizeof *t->tok * t->cap * t->T);
    t->lab = malloc(sizeof *t->lab * t->cap * t->T);
    t->logits = malloc(sizeof *t->logits * t->cap * t->T * t->V);
    if (!t->tok || !t->lab || !t->logits) return runtime_error("out of memory for a batch of %lld", (long long)t->cap);
    return 0;
}

/* Window 'i' of the batch from byte 'at' of 'f'. */
static void put_window(Text *t, int64_t i, const uint8_t *at)
{
    for (int64_t j = 0; j < t->T; j++) {
        t->tok[i * t->T + j] = at[j];
        t->lab[i * t->T + j] = at[j + 1];
    }
}

static void fill_train(void *ctx, int64_t first, int64_t n, uint64_t *rng, const void **inputs)
{
    (void)first;
    Text *t = ctx;
    for (int64_t i = 0; i < n; i++) {
        int64_t r = (int64_t)(next_random(rng) % (uint64_t)t->train_starts);
        int k = 0;
        while (r >= file_starts(t, &t->f[k])) r -= file_starts(t, &t->f[k++]);
        put_window(t, i, t->f[k].data + r);
    }
    inputs[0] = t->tok;
    inputs[1] = t->lab;
}

/* Adds the cross-entropy of 'n' windows' logits against t->lab to *sum. */
static void add_loss(const Text *t, int64_t n, double *sum)
{
    for (int64_t p = 0; p < n * t->T; p++) {
        const float *z = t->logits + p * t->V;
        double mx = z[0], s = 0;
        for (int64_t k = 1; k < t->V; k++)
            if (z[k] > mx) mx = z[k];
        for (int64_t k = 0; k < t->V; k++) s += exp((double)z[k] - mx);
        *sum += mx + log(s) - z[t->lab[p]];
    }
}

static int evaluate(void *ctx, Model *m, char *summary, size_t len)
{
    Text *t = ctx;
    double sum = 0;
    int64_t done = 0, n = 0;
    for (int k = 0; k < t->nfiles && done < t->held_windows; k++) {
        const TextFile *f = &t->f[k];
        for (int64_t w = 0; w < file_held_windows(t, f) && done < t->held_windows; w++, done++) {
            put_window(t, n++, f->data + f->train_len + w * t->T);
            if (n < t->cap && done + 1 < t->held_windows) continue;
            dnrt_error err = {0};
            const void *in[1] = {t->tok};
            void *out[1] = {t->logits};
            if (m->api->infer_seq(m->s, n, t->seq_t, in, out, &err)) return runtime_error("infer: %s", err.message);
            add_loss(t, n, &sum);
            n = 0;
        }
    }
    double loss = sum / (double)(t->held_windows * t->T);
    snprintf(summary, len, "held-out loss %.4f, %.4f bits/char (%lld windows of %lld bytes)", loss, loss / log(2.0),
             (long long)t->held_windows, (long long)t->T);
    return 0;
}

int text_train(const Opts *o)
{
    Model m;
    Text t = {0};
    int rc = seq_open_training(o, &m) || check_model(o->model, &m, o, 1, &t) || text_open(o, 1, &t);
    if (!rc) {
        int64_t windows = t.train_bytes / t.T > 0 ? t.train_bytes / t.T : 1;
        if (o->limit > 0 && windows > o->limit) windows = o->limit;
        printf("text: %d file(s), %lld training bytes, %lld held-out bytes (the last 10%% of each file), T = %lld\n",
               t.nfiles, (long long)t.train_bytes, (long long)t.held_bytes, (long long)t.T);
        SeqTask task = {.ctx = &t,
                        .unit = "windows",
                        .bits = 1,
                        .examples = windows,
                        .seq_t = t.seq_t,
                        .fill = fill_train,
                        .evaluate = evaluate};
        rc = seq_train(&m, o, &task, t.cap);
    }
    text_free(&t);
    close_model(&m);
    return rc;
}

int text_eval(const Opts *o)
{
    Model m;
    Text t = {0};
    char summary[512];
    int rc = open_model(o->model, &m) || check_model(o->model, &m, o, 0, &t) || load_weights(o, &m) ||
             text_open(o, 0, &t) || evaluate(&t, &m, summary, sizeof summary);
    if (!rc) printf("%s\n", summary);
    text_free(&t);
    close_model(&m);
    return rc;
}

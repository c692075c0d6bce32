/* generate.c -- see generate.h. */
#include "generate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Step {
    int nstate;       /* state inputs (after the token, but for pos), outputs 1..nstate */
    int state_in[64]; /* the input index of state k (1-based k) */
    int pos_in;       /* the input "pos" (the step's position), or -1 */
    int64_t max_pos;  /* the positions the step's KV caches hold; 0: no cache, no bound */
    int64_t steps;    /* tokens fed so far */
    int64_t V;
    int32_t tok, pos;
    float *logits;
    void *cur[64], *next[64];
    double *p;  /* V probabilities */
    int *order; /* V indices, for top-k */
} Step;

static int dtype_size(int32_t dt) { return dt == DNRT_I64 ? 8 : 4; }

/* Checks the convention of generate.h. */
static int check_step(const Opts *o, const Model *m, Step *s)
{
    const dnrt_model_desc *d = m->d;
    char got[128], want[128];
    int nin = 0;
    for (int i = 0; i < d->ninputs; i++) nin += !d->inputs[i].train_only;
    static const int64_t tok_dims[2] = {-1, 1}, one_dims[2] = {1, 1};
    if (nin < 1 || !(shape_is(&d->inputs[0], DNRT_I32, 2, tok_dims) || shape_is(&d->inputs[0], DNRT_I32, 2, one_dims)))
        return runtime_error("%s: model '%s': generate needs a step library whose first input is i32[N, 1] or "
                             "i32[1, 1] (one token a step), got %s",
                             o->model, d->name, nin < 1 ? "no input" : shape_str(&d->inputs[0], got, sizeof got));
    s->pos_in = -1;
    for (int i = 1; i < nin; i++)
        if (!strcmp(d->inputs[i].name, "pos")) {
            if (!shape_is(&d->inputs[i], DNRT_I32, 2, d->inputs[0].dim))
                return runtime_error("%s: model '%s': input 'pos' (the step's position) must be %s like the token, "
                                     "got %s",
                                     o->model, d->name, shape_str(&d->inputs[0], want, sizeof want),
                                     shape_str(&d->inputs[i], got, sizeof got));
            s->pos_in = i;
        }
    for (int i = 0; i < d->nstate; i++)
        if (d->state[i].kind == DNRT_STATE_CACHE && (!s->max_pos || d->state[i].dim[1] < s->max_pos))
            s->max_pos = d->state[i].dim[1];
    if (s->max_pos && s->pos_in < 0)
        return runtime_error("%s: model '%s' keeps a KV cache but has no input 'pos' i32[1, 1] for the step's position",
                             o->model, d->name);
    nin -= s->pos_in > 0;
    const dnrt_tensor_desc *z = &d->outputs[0];
    if (d->noutputs < 1 || z->dtype != DNRT_F32 || z->rank != 3 || z->dim[0] != d->inputs[0].dim[0] || z->dim[1] != 1 ||
        z->dim[2] < 1 || z->dim[2] > 256)
        return runtime_error("%s: model '%s': generate needs a first output f32[N, 1, V] of logits (f32[1, 1, V] for "
                             "a token i32[1, 1]) with V <= 256 (one per byte), got %s",
                             o->model, d->name, d->noutputs < 1 ? "no output" : shape_str(z, got, sizeof got));
    if (d->noutputs != nin)
        return runtime_error("%s: model '%s' has %d state input(s) but %d output(s) after the logits: a step library "
                             "returns one new state per state input, in the same order",
                             o->model, d->name, nin - 1, d->noutputs - 1);
    if (nin > 64) return runtime_error("%s: more than 64 inputs", o->model);
    s->nstate = nin - 1;
    s->V = z->dim[2];
    for (int i = 1, k = 1; k <= s->nstate; i++)
        if (i != s->pos_in) s->state_in[k++] = i;
    for (int k = 1; k <= s->nstate; k++) {
        int i = s->state_in[k];
        const dnrt_tensor_desc *a = &d->inputs[i], *b = &d->outputs[k];
        int same = a->dtype == b->dtype && a->rank == b->rank;
        for (int k = 0; same && k < a->rank; k++) same = a->dim[k] == b->dim[k];
        if (!same)
            return runtime_error("%s: model '%s': output %d '%s' is %s but state input %d '%s' is %s: the new state "
                                 "must have its state's shape",
                                 o->model, d->name, k, b->name, shape_str(b, got, sizeof got), i, a->name,
                                 shape_str(a, want, sizeof want));
    }
    return 0;
}

static int step_alloc(const Model *m, Step *s)
{
    const dnrt_model_desc *d = m->d;
    s->logits = malloc(sizeof *s->logits * s->V);
    s->p = malloc(sizeof *s->p * s->V);
    s->order = malloc(sizeof *s->order * s->V);
    if (!s->logits || !s->p || !s->order) return runtime_error("out of memory");
    for (int i = 1; i <= s->nstate; i++) {
        const dnrt_tensor_desc *t = &d->inputs[s->state_in[i]];
        size_t bytes = (size_t)(tensor_numel(t, 1) * dtype_size(t->dtype));
        s->cur[i] = calloc(1, bytes ? bytes : 1);
        s->next[i] = calloc(1, bytes ? bytes : 1);
        if (!s->cur[i] || !s->next[i]) return runtime_error("out of memory for state '%s'", t->name);
    }
    return 0;
}

static void step_free(Step *s)
{
    free(s->logits), free(s->p), free(s->order);
    for (int i = 1; i <= s->nstate; i++) free(s->cur[i]), free(s->next[i]);
}

/* Runs one step on token 'tok': logits into s->logits, the new states become the current ones. */
static int run_step(Model *m, Step *s, int tok)
{
    const void *in[64];
    void *out[64];
    s->tok = tok;
    s->pos = (int32_t)s->steps++;
    in[0] = &s->tok;
    if (s->pos_in > 0) in[s->pos_in] = &s->pos;
    out[0] = s->logits;
    for (int i = 1; i <= s->nstate; i++) in[s->state_in[i]] = s->cur[i], out[i] = s->next[i];
    dnrt_error err = {0};
    if (m->api->infer(m->s, 1, in, out, &err)) return runtime_error("infer: %s", err.message);
    for (int i = 1; i <= s->nstate; i++) {
        void *t = s->cur[i];
        s->cur[i] = s->next[i];
        s->next[i] = t;
    }
    return 0;
}

static const float *sort_logits;

static int by_logit_desc(const void *a, const void *b)
{
    float x = sort_logits[*(const int *)a], y = sort_logits[*(const int *)b];
    if (x != y) return x > y ? -1 : 1;
    return *(const int *)a - *(const int *)b; /* ties: the smaller token first, so the order is defined */
}

/* The next token from s->logits (see generate.h). */
static int sample(const Opts *o, Step *s, uint64_t *rng)
{
    int64_t V = s->V;
    for (int k = 0; k < V; k++) s->order[k] = k;
    sort_logits = s->logits;
    qsort(s->order, (size_t)V, sizeof *s->order, by_logit_desc);
    if (o->greedy) return s->order[0];
    int64_t keep = o->top_k > 0 && o->top_k < V ? o->top_k : V;
    double mx = s->logits[s->order[0]], total = 0;
    for (int64_t k = 0; k < keep; k++) total += s->p[k] = exp(((double)s->logits[s->order[k]] - mx) / o->temperature);
    double u = next_uniform(rng) * total;
    for (int64_t k = 0; k < keep; k++) {
        if (u < s->p[k]) return s->order[k];
        u -= s->p[k];
    }
    return s->order[keep - 1]; /* rounding left u just above the sum */
}

int cmd_generate(const Opts *o)
{
    Model m;
    Step s = {0};
    int rc = open_model(o->model, &m) || check_step(o, &m, &s) || load_weights(o, &m) || step_alloc(&m, &s);
    const uint8_t *prompt = (const uint8_t *)o->prompt;
    size_t plen = strlen(o->prompt);
    if (!rc && s.max_pos && (int64_t)plen > s.max_pos)
        rc = runtime_error("%s: the prompt has %zu bytes but the step's KV cache holds %lld positions", o->model, plen,
                           (long long)s.max_pos);
    for (size_t i = 0; !rc && i < plen; i++) rc = run_step(&m, &s, prompt[i]);
    if (!rc) fwrite(prompt, 1, plen, stdout);
    uint64_t rng = o->seed ^ 0x5DEECE66Dull;
    int64_t i = 0;
    for (; !rc && i < o->length; i++) {
        int tok = sample(o, &s, &rng);
        putchar(tok);
        if (i + 1 == o->length) break;
        if (s.max_pos && s.steps == s.max_pos) break; /* the cache is full: no position for this token */
        rc = run_step(&m, &s, tok);
    }
    if (!rc) putchar('\n');
    fflush(stdout);
    if (!rc && i + 1 < o->length)
        fprintf(stderr, "generate: stopped after %lld of %lld bytes: the step's KV cache holds %lld positions\n",
                (long long)(i + 1), (long long)o->length, (long long)s.max_pos);
    step_free(&s);
    close_model(&m);
    return rc;
}

/* robust.h -- the invariants shared by tests/unit/test_robust.c (a
 * deterministic mutation sweep) and the libFuzzer harnesses in this folder.
 *
 * Each check takes one untrusted input, runs it through the same library
 * calls the driver (tools/dnnc.c) makes, and returns NULL when every invariant of
 * docs/design.md's "Bad input" rule held, or a description of the one that did
 * not.  Crashes and dn_die are the caller's to notice (Criterion reports a
 * crash; libFuzzer and the sanitizers stop on it).
 *
 *   rb_check_dnn(file, text)   dn_parse -> dn_lower -> dn_verify -> dn_compile
 *                              (the default pipeline of both graphs, the
 *                              verifier after every pass, plan-memory) ->
 *                              the plans are consistent
 *   rb_check_ir(file, text)    dn_graph_read -> verify -> print/read/print
 *                              is the identity -> the same pipeline
 *   rb_check_st(path)          dnrt_st_read: success with a consistent
 *                              result, or failure with a message naming path
 *
 * Everything is static: include this file in one translation unit.
 */
#ifndef DN_ROBUST_H
#define DN_ROBUST_H

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "passes/pipeline.h"
#include "runtime/safetensors.h"

/* What a check reached, for sweeps that want to know their mutants got deep. */
typedef struct RbStats {
    long inputs, parsed, lowered, planned, trained, ir_read;
} RbStats;

static RbStats rb_stats;
static char rb_why[1024];

#define RB_FAIL(...) (snprintf(rb_why, sizeof rb_why, __VA_ARGS__), rb_why)

static inline int rb_count_lines(const char *text)
{
    int n = 1;
    for (const char *p = text; *p; p++) n += *p == '\n';
    return n;
}

/* Every diagnostic has a message; one with a file has line, col >= 1 (and,
 * in 'file' itself, a line that exists); printing them (carets) works.
 * 'nlines' = lines of 'file''s text.  With 'own_only', locations in other
 * files are not checked: IR text carries its ops' loc("f.dnn":L:C) as data,
 * and the reader takes L = 0 and C = 0 (ir/read.c, parse_loc). */
static inline const char *rb_check_diags(DnCtx *cx, const char *file, int nlines, bool own_only)
{
    int n = 0;
    for (DnDiag *d = cx->diags; d; d = d->next, n++) {
        if (!d->msg || !d->msg[0]) return RB_FAIL("diagnostic %d has no message", n);
        if (d->loc.file && (!own_only || !strcmp(d->loc.file, file))) {
            if (d->loc.line < 1 || d->loc.col < 1)
                return RB_FAIL("diagnostic '%s' at %s:%d:%d: line/col < 1", d->msg, d->loc.file, d->loc.line,
                               d->loc.col);
            if (!strcmp(d->loc.file, file) && d->loc.line > nlines)
                return RB_FAIL("diagnostic '%s' at line %d of a %d-line file", d->msg, d->loc.line, nlines);
        }
    }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        dn_ctx_print_diags(cx, f);
        fclose(f);
        free(buf);
    }
    return NULL;
}

/* The after_pass hook of the checks: a pass must leave a graph that
 * verifies (a compiler bug otherwise, unlike the user errors passes report
 * through the context).  'arg' points to the check's 'why'. */
static inline DnStatus rb_after_pass(void *arg, const DnPassInfo *p, DnGraph *g, bool training)
{
    const char **why = arg;
    DnCtx vc;
    dn_ctx_init(&vc);
    if (dn_verify(&vc, g) != DN_OK)
        *why = RB_FAIL("pass %s (%s graph) left a graph that does not verify: %s", p->name,
                       training ? "training" : "inference", vc.diags ? vc.diags->msg : "?");
    dn_ctx_free(&vc);
    return *why ? DN_ERR : DN_OK;
}

/* Bytes of 'v' per batch item (with N) or in total, in 128 bits so that a
 * size the compiler's int64 arithmetic would overflow shows as one. */
static inline __int128 rb_value_bytes(const DnValue *v)
{
    __int128 n = dn_dtype_size(v->dtype);
    for (int i = dn_shape_has_n(&v->shape) ? 1 : 0; i < v->shape.rank; i++) {
        n *= v->shape.dim[i];
        if (n > ((__int128)1 << 80)) break;
    }
    return n;
}

/* The plan is consistent: the state block holds every parameter, each
 * arena buffer lies inside the arena (for a few batch sizes), and no size
 * overflowed int64 on the way. */
static inline const char *rb_check_plan(const DnGraph *g, const DnStateLayout *st, const DnPlan *p)
{
    char ty[96];
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *q = g->params.data[i];
        __int128 b = rb_value_bytes(q->value);
        if (b > INT64_MAX || st->offset[i] < 0 || (__int128)st->offset[i] + b > (__int128)st->bytes)
            return RB_FAIL("parameter '%s' %s (offset %lld) does not fit the %lld-byte state block", q->name,
                           dn_type_str(q->dtype, &q->shape, ty, sizeof ty), (long long)st->offset[i],
                           (long long)st->bytes);
    }
    if (p->arena_n < 0 || p->arena_b < 0)
        return RB_FAIL("negative arena size %lld*N + %lld", (long long)p->arena_n, (long long)p->arena_b);
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int j = 0; j < op->nout; j++) {
            const DnValue *v = op->out[j];
            if (v->id < 0 || v->id >= g->nvalues) return RB_FAIL("value id %d out of range", v->id);
            const DnBuf *b = &p->buf[v->id];
            __int128 vb = rb_value_bytes(v);
            if (vb > INT64_MAX)
                return RB_FAIL("%s result %s: its byte size overflows int64 (the plan says arena %lld*N + %lld)",
                               dn_op_info[op->kind].name, dn_type_str(v->dtype, &v->shape, ty, sizeof ty),
                               (long long)p->arena_n, (long long)p->arena_b);
            if (b->kind != DN_BUF_ARENA) continue;
            bool hn = dn_shape_has_n(&v->shape);
            for (int n = 1; n <= 3; n++) {
                __int128 end = (__int128)b->coef_n * n + b->offset + (hn ? vb * n : vb);
                if (b->offset < 0 || b->coef_n < 0 || end > (__int128)p->arena_n * n + p->arena_b)
                    return RB_FAIL("%s result %s at %lld*N + %lld lies outside the arena %lld*N + %lld (N = %d)",
                                   dn_op_info[op->kind].name, dn_type_str(v->dtype, &v->shape, ty, sizeof ty),
                                   (long long)b->coef_n, (long long)b->offset, (long long)p->arena_n,
                                   (long long)p->arena_b, n);
            }
        }
    }
    return NULL;
}

/* dn_compile of a verified graph 'g' (not modified), with the default
 * pipeline as the driver runs it, then the plans' consistency. */
static inline const char *rb_pipeline(DnCtx *cx, const DnGraph *g)
{
    const char *why = NULL;
    DnArena a = {0};
    DnModule m;
    DnCompileOptions o = {.after_pass = rb_after_pass, .after_pass_arg = &why};
    DnStatus st = dn_compile(cx, g, &o, &m, &a);
    if (!why && st != DN_OK && cx->nerr == 0) why = RB_FAIL("the pipeline failed without a diagnostic");
    if (!why && st == DN_OK && cx->nerr == 0) {
        if (m.train) rb_stats.trained++;
        if (!m.infer_plan || (m.train && !m.train_plan)) why = RB_FAIL("dn_module_plan left a graph without a plan");
        if (!why) why = rb_check_plan(m.infer, &m.state, m.infer_plan);
        if (!why && m.train) why = rb_check_plan(m.train, &m.state, m.train_plan);
        if (!why) rb_stats.planned++;
    }
    dn_module_free(&m);
    dn_arena_free(&a);
    return why;
}

/* A .dnn source through the whole front of the compiler. */
static inline const char *rb_check_dnn(const char *file, const char *text)
{
    const char *why = NULL;
    DnCtx cx;
    dn_ctx_init(&cx);
    DnArena a = {0};
    rb_stats.inputs++;
    const char *src = dn_ctx_add_source(&cx, file, text);
    DnAst *ast = dn_parse(&cx, file, src, &a);
    DnGraph *g = NULL;
    if (!ast) {
        if (cx.nerr == 0) why = RB_FAIL("dn_parse returned NULL without an error");
    } else {
        rb_stats.parsed++;
        g = dn_lower(&cx, ast, NULL);
        if (!g && cx.nerr == 0) why = RB_FAIL("dn_lower returned NULL without an error");
        if (g && cx.nerr == 0) {
            rb_stats.lowered++;
            if (dn_verify(&cx, g) != DN_OK)
                why = RB_FAIL("the lowered graph does not verify: %s", cx.diags ? cx.diags->msg : "?");
            else
                why = rb_pipeline(&cx, g);
        }
    }
    if (!why) why = rb_check_diags(&cx, file, rb_count_lines(src), false);
    dn_graph_free(g);
    dn_arena_free(&a);
    dn_ctx_free(&cx);
    return why;
}

static inline char *rb_print(const DnGraph *g)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    if (!f) abort();
    dn_graph_print(g, f);
    fclose(f);
    return s;
}

/* IR text through the reader, the printer (round trip) and the pipeline. */
static inline const char *rb_check_ir(const char *file, const char *text)
{
    const char *why = NULL;
    DnCtx cx;
    dn_ctx_init(&cx);
    rb_stats.inputs++;
    DnGraph *g = dn_graph_read(&cx, file, text), *h = NULL;
    char *p1 = NULL, *p2 = NULL;
    if (!g) {
        if (cx.nerr == 0) why = RB_FAIL("dn_graph_read returned NULL without an error");
    } else if (cx.nerr == 0) {
        rb_stats.ir_read++;
        if (dn_verify(&cx, g) != DN_OK) {
            why = RB_FAIL("a graph the reader accepted does not verify: %s", cx.diags ? cx.diags->msg : "?");
        } else {
            p1 = rb_print(g);
            DnCtx c2;
            dn_ctx_init(&c2);
            h = dn_graph_read(&c2, "round-trip", p1);
            if (!h)
                why = RB_FAIL("the printed graph does not read back: %s", c2.diags ? c2.diags->msg : "?");
            else if (strcmp(p1, p2 = rb_print(h)))
                why = RB_FAIL("print -> read -> print is not the identity");
            dn_ctx_free(&c2);
            if (!why) why = rb_pipeline(&cx, g);
        }
    }
    if (!why) why = rb_check_diags(&cx, file, rb_count_lines(text), true);
    free(p1);
    free(p2);
    dn_graph_free(g);
    dn_graph_free(h);
    dn_ctx_free(&cx);
    return why;
}

/* dnrt_st_read of 'path' (a file of 'size' bytes): either a consistent
 * result or an error whose message starts with the path. */
static inline const char *rb_check_st(const char *path, size_t size)
{
    const char *why = NULL;
    dnrt_st_file f;
    dnrt_error err = {0};
    int rc = dnrt_st_read(path, &f, &err);
    if (rc != 0) {
        if (rc != -1) return RB_FAIL("dnrt_st_read returned %d", rc);
        if (err.code == 0) return RB_FAIL("failed with code 0: %s", err.message);
        if (strncmp(err.message, path, strlen(path)))
            return RB_FAIL("message does not start with the path: %s", err.message);
        if (f.image || f.tensors) return RB_FAIL("failed read left f.image/f.tensors set: %s", err.message);
        return NULL;
    }
    if (err.code != 0) why = RB_FAIL("success with err.code %d", err.code);
    if (!why && f.size != size) why = RB_FAIL("size %zu, file has %zu bytes", f.size, size);
    for (int i = 0; !why && i < f.ntensors; i++) {
        const dnrt_st_tensor *t = &f.tensors[i];
        if (!t->name || !t->dtype_name) {
            why = RB_FAIL("tensor %d without a name or dtype", i);
            break;
        }
        if (t->rank < 0 || t->rank > DNRT_ST_MAX_RANK) {
            why = RB_FAIL("tensor '%s': rank %d", t->name, t->rank);
            break;
        }
        const uint8_t *d = t->data;
        if (t->nbytes && (!d || d < f.image || d + t->nbytes > f.image + f.size || t->nbytes > f.size)) {
            why = RB_FAIL("tensor '%s': data outside the image", t->name);
            break;
        }
        if (t->dtype >= 0) {
            unsigned __int128 numel = 1;
            for (int k = 0; k < t->rank; k++) {
                if (t->dim[k] < 0) {
                    why = RB_FAIL("tensor '%s': negative dim", t->name);
                    break;
                }
                numel *= (uint64_t)t->dim[k];
                if (numel > ((unsigned __int128)1 << 70)) break;
            }
            int es = t->dtype == DNRT_F32 || t->dtype == DNRT_I32 ? 4 : 8;
            if (!why && numel * (unsigned)es != t->nbytes)
                why = RB_FAIL("tensor '%s': %d-d %s with %zu bytes", t->name, t->rank, t->dtype_name, t->nbytes);
        }
        if (!why && dnrt_st_find(&f, t->name) == NULL) why = RB_FAIL("dnrt_st_find('%s') is NULL", t->name);
    }
    for (int i = 0; !why && i < f.nmeta; i++)
        if (!f.meta_keys[i] || !f.meta_values[i]) why = RB_FAIL("metadata entry %d is NULL", i);
    dnrt_st_free(&f);
    return why;
}

#endif

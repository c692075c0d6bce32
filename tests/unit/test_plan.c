/* test_plan.c -- the memory plan's forms: values, views and workspaces.
 *
 * Small graphs built with the IR builder are planned with dn_plan_memory
 * or dn_plan_memory_ws (with a test query or the LLVM backend's), and the
 * plan is checked against lifetimes computed here, independently of the
 * planner: two arena buffers whose lifetimes overlap share no byte (except
 * an elementwise result written in place over an operand that dies at
 * it), a view's owner lives while the view is used, and an op's workspace
 * shares no byte with any value live at that op, for several batch sizes.
 * The same check runs on the training graphs of examples/lenet.dnn and
 * examples/resnet.dnn with the LLVM backend's query; and a small conv net
 * whose convolution kernels take their scratch from worker slices in
 * every form of the GEMM kernels trains to the same bytes on 1, 2, 5 and
 * 70 threads.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/backend.h"
#include "frontend/frontend.h"
#include "passes/pipeline.h"
#include "runtime/safetensors.h"
#include "testlib.h"

#define NN ((int64_t)DN_DIM_N)

/* S(rank, dims...): a shape literal, e.g. S(2, NN, I(4)). */
#define S(rank, ...) dn_shape_make(rank, (int64_t[]){__VA_ARGS__})

/* ---- building and planning ------------------------------------------------ */

typedef struct T {
    DnCtx cx;
    DnGraph *g;
    DnArena a;
    DnStateLayout st;
} T;

static void start(T *t)
{
    memset(t, 0, sizeof *t);
    dn_ctx_init(&t->cx);
    t->g = dn_graph_new("p");
}

static void finish(T *t)
{
    dn_graph_free(t->g);
    dn_arena_free(&t->a);
    dn_ctx_free(&t->cx);
}

static DnValue *input(T *t, const char *name, DnShape s)
{
    return dn_graph_add_input(t->g, name, DN_DTYPE_F32, &s, (DnLoc){0});
}

static DnValue *param(T *t, const char *name, DnShape s)
{
    DnInit init = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0};
    return dn_graph_add_param(t->g, name, DN_PARAM_WEIGHT, DN_DTYPE_F32, &s, init, (DnLoc){0})->value;
}

static DnValue *op(T *t, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs)
{
    DnValue *v = dn_build1(&t->cx, t->g, kind, nin, in, nattrs, attrs, (DnLoc){0});
    if (!v) dn_ctx_print_diags(&t->cx, stderr);
    cr_assert_not_null(v, "builder rejected %s", dn_op_info[kind].name);
    return v;
}

static DnValue *op1(T *t, DnOpKind kind, DnValue *x) { return op(t, kind, 1, &x, 0, NULL); }
static DnValue *op2(T *t, DnOpKind kind, DnValue *x, DnValue *y)
{
    return op(t, kind, 2, (DnValue *[]){x, y}, 0, NULL);
}

static DnValue *reshape(T *t, DnValue *x, int n, const int64_t *shape)
{
    DnAttr at = dn_attr_ints("shape", n, shape);
    return op(t, DN_OP_RESHAPE, 1, &x, 1, &at);
}

static DnPlan *plan(T *t, DnWorkspaceFn ws, void *data)
{
    cr_assert_eq(dn_verify(&t->cx, t->g), DN_OK);
    dn_state_layout(t->g, &t->a, &t->st);
    return dn_plan_memory_ws(t->g, &t->st, ws, data, &t->a);
}

/* Position of the op defining 'v' in g->ops. */
static int def_pos(const DnGraph *g, const DnValue *v)
{
    for (int i = 0; i < g->ops.len; i++)
        if (g->ops.data[i] == v->def) return i;
    cr_assert_fail("value %%%d has no defining op", v->id);
    return -1;
}

/* ---- byte ranges and lifetimes -------------------------------------------- */

typedef struct Span {
    DnBufKind kind;
    int index;
    int64_t lo, hi; /* bytes [lo, hi) at batch size n */
} Span;

static Span span_of(DnBufLoc l, int64_t n)
{
    int64_t lo = l.at_n * n + l.at_b;
    return (Span){l.kind, l.index, lo, lo + l.span_n * n + l.span_b};
}

static bool overlap(Span a, Span b)
{
    return a.kind == b.kind && a.index == b.index && a.lo < b.hi && b.lo < a.hi && a.lo < a.hi && b.lo < b.hi;
}

/* The value that owns the buffer of 'v' (itself unless a view). */
static int owner(const DnPlan *p, const DnValue *v)
{
    return p->buf[v->id].kind == DN_BUF_VIEW ? p->buf[v->id].base : v->id;
}

/* Lifetimes of the arena buffers, by owner value id: from the defining op
 * to the last op that reads the value or any view of it (the loss: to the
 * end).  first = -1 for values that own no arena buffer. */
typedef struct Life {
    int *first, *last;
} Life;

static Life lifetimes(const DnGraph *g, const DnPlan *p)
{
    Life l = {calloc((size_t)g->nvalues, sizeof(int)), calloc((size_t)g->nvalues, sizeof(int))};
    for (int i = 0; i < g->nvalues; i++) l.first[i] = -1, l.last[i] = -1;
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *o = g->ops.data[i];
        if (o->dead) continue;
        for (int r = 0; r < o->nout; r++)
            if (p->buf[o->out[r]->id].kind == DN_BUF_ARENA) l.first[o->out[r]->id] = l.last[o->out[r]->id] = i;
    }
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *o = g->ops.data[i];
        if (o->dead) continue;
        for (int k = 0; k < o->nin; k++)
            if (o->in[k] && l.first[owner(p, o->in[k])] >= 0 && l.last[owner(p, o->in[k])] < i)
                l.last[owner(p, o->in[k])] = i;
    }
    if (g->loss && l.first[owner(p, g->loss)] >= 0) l.last[owner(p, g->loss)] = g->ops.len;
    return l;
}

static void life_free(Life *l) { free(l->first), free(l->last); }

/* The in-place exception: 'w' is the result of an elementwise op at the
 * position where 'u' dies, in exactly u's bytes. */
static bool in_place(const DnGraph *g, const DnPlan *p, const Life *l, const DnValue *u, const DnValue *w)
{
    int at = l->first[w->id];
    if (l->last[u->id] != at || !(dn_op_info[g->ops.data[at]->kind].flags & DN_OPF_ELEMWISE)) return false;
    const DnBuf *a = &p->buf[u->id], *b = &p->buf[w->id];
    return a->coef_n == b->coef_n && a->offset == b->offset;
}

static const DnValue **arena_values(const DnGraph *g, const DnPlan *p, int *count)
{
    const DnValue **v = calloc((size_t)g->nvalues + 1, sizeof *v);
    *count = 0;
    for (int i = 0; i < g->ops.len; i++)
        if (!g->ops.data[i]->dead)
            for (int r = 0; r < g->ops.data[i]->nout; r++)
                if (p->buf[g->ops.data[i]->out[r]->id].kind == DN_BUF_ARENA) v[(*count)++] = g->ops.data[i]->out[r];
    return v;
}

static const int64_t batches[] = {1, 2, 3, 8, 64};
#define NBATCH ((int)(sizeof batches / sizeof batches[0]))

/* Values and whole-op workspaces lie in the pools, worker slices after
 * them (so apart from every value, whatever the thread count); buffers and
 * workspaces whose lifetimes overlap share no byte (in-place results
 * aside); a view's base owns its buffer.  Returns the number of ops with a
 * workspace. */
static int check_plan(const DnGraph *g, const DnPlan *p)
{
    Life l = lifetimes(g, p);
    int nv, nws = 0;
    const DnValue **vals = arena_values(g, p, &nv);
    for (int bi = 0; bi < NBATCH; bi++) {
        int64_t n = batches[bi], arena = p->arena_n * n + p->arena_b; /* the pools; the worker slices follow */
        for (int i = 0; i < nv; i++) {
            Span a = span_of(dn_plan_locate(p, vals[i]), n);
            cr_assert(a.lo >= 0 && a.hi <= arena, "%%%d outside the arena (n = %lld)", vals[i]->id, (long long)n);
            for (int j = i + 1; j < nv; j++) {
                const DnValue *u = vals[i], *w = vals[j];
                bool live_together = l.first[u->id] <= l.last[w->id] && l.first[w->id] <= l.last[u->id];
                if (!live_together || in_place(g, p, &l, u, w)) continue;
                cr_assert(!overlap(a, span_of(dn_plan_locate(p, w), n)),
                          "%%%d (ops %d..%d) and %%%d (ops %d..%d) share bytes at n = %lld", u->id, l.first[u->id],
                          l.last[u->id], w->id, l.first[w->id], l.last[w->id], (long long)n);
            }
        }
        for (int at = 0; at < g->ops.len; at++) {
            DnBufLoc wl = dn_plan_locate_workspace(p, at), sl = dn_plan_locate_worker(p, at);
            nws += bi == 0 && (wl.kind != DN_BUF_NONE || sl.kind != DN_BUF_NONE);
            if (sl.kind != DN_BUF_NONE) { /* slice w of T threads: after the pools, inside the arena */
                Span s0 = span_of(sl, n);
                cr_assert(s0.lo == arena && sl.stride == p->arena_t && sl.span_b <= p->arena_t,
                          "op %d: worker slice at %lld (pools end at %lld), %lld of %lld bytes", at, (long long)s0.lo,
                          (long long)arena, (long long)sl.span_b, (long long)p->arena_t);
            }
            if (wl.kind == DN_BUF_NONE) continue;
            Span ws = span_of(wl, n);
            cr_assert(ws.lo >= 0 && ws.hi <= arena && ws.lo < ws.hi, "workspace of op %d outside the arena", at);
            for (int i = 0; i < nv; i++) {
                const DnValue *u = vals[i];
                if (l.first[u->id] > at || l.last[u->id] < at) continue; /* dead at this op */
                cr_assert(!overlap(ws, span_of(dn_plan_locate(p, u), n)),
                          "workspace of op %d shares bytes with %%%d (live at ops %d..%d), n = %lld", at, u->id,
                          l.first[u->id], l.last[u->id], (long long)n);
            }
        }
    }
    for (int i = 0; i < g->ops.len; i++) /* views are views of owners */
        for (int r = 0; !g->ops.data[i]->dead && r < g->ops.data[i]->nout; r++) {
            const DnValue *v = g->ops.data[i]->out[r];
            if (p->buf[v->id].kind == DN_BUF_VIEW)
                cr_assert_neq(p->buf[p->buf[v->id].base].kind, DN_BUF_VIEW, "view %%%d of a view", v->id);
        }
    free(vals);
    life_free(&l);
    return nws;
}

/* ---- views ---------------------------------------------------------------- */

/* Reshape is a view at offset 0 with its own item size as the stride; a
 * reshape of a reshape is a view of the first one's owner. */
Test(views, reshape_is_a_view_of_its_operand)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(3, NN, 2, 6));
    DnValue *a = op1(&t, DN_OP_RELU, x);
    DnValue *v = reshape(&t, a, 2, (int64_t[]){-1, 12});
    DnValue *w = reshape(&t, v, 3, (int64_t[]){-1, 3, 4});
    DnValue *y = op1(&t, DN_OP_TANH, w);
    dn_graph_add_output(t.g, "y", y);
    DnPlan *p = plan(&t, NULL, NULL);
    cr_assert_eq(p->buf[a->id].kind, DN_BUF_ARENA);
    for (int i = 0; i < 2; i++) {
        const DnBuf *b = &p->buf[(i ? w : v)->id];
        cr_assert_eq(b->kind, DN_BUF_VIEW);
        cr_expect_eq(b->base, a->id, "view of %d, not of its owner %d", b->base, a->id);
        cr_expect_eq(b->offset, 0);
        cr_expect_eq(b->stride, 48);
        DnBufLoc la = dn_plan_locate(p, a), lv = dn_plan_locate(p, i ? w : v);
        cr_expect(la.kind == lv.kind && la.at_n == lv.at_n && la.at_b == lv.at_b && la.span_n == lv.span_n &&
                  la.span_b == lv.span_b && lv.stride == 0);
    }
    char text[4096] = {0};
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    dn_plan_print(t.g, p, f);
    fclose(f);
    cr_expect(strstr(text, "%1    reshape            f32[N, 12]                   view %0 + 0\n"), "%s", text);
    cr_expect(strstr(text, "%2    reshape            f32[N, 3, 4]                 view %0 + 0\n"), "%s", text);
    check_plan(t.g, p);
    finish(&t);
}

/* The owner of a view stays live while the view is read: 'a' is read
 * directly only by the reshape at op 1, but its view is read at op 5, so
 * the values made at ops 2..4 must not take its bytes. */
Test(views, owner_lives_while_a_view_is_used)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(2, NN, 16));
    DnValue *a = op1(&t, DN_OP_RELU, x);                   /* op 0 */
    DnValue *v = reshape(&t, a, 3, (int64_t[]){-1, 4, 4}); /* op 1 */
    DnValue *b = op1(&t, DN_OP_TANH, x);                   /* op 2 */
    DnValue *c = op2(&t, DN_OP_MUL, b, x);                 /* op 3: in place over b */
    DnValue *v2 = reshape(&t, v, 2, (int64_t[]){-1, 16});  /* op 4 */
    DnValue *y = op2(&t, DN_OP_ADD, v2, c);                /* op 5 */
    dn_graph_add_output(t.g, "y", y);
    DnPlan *p = plan(&t, NULL, NULL);
    cr_assert_eq(p->buf[v2->id].kind, DN_BUF_VIEW);
    cr_assert_eq(p->buf[v2->id].base, a->id);
    for (int n = 1; n <= 8; n++) {
        Span sa = span_of(dn_plan_locate(p, a), n);
        cr_expect(!overlap(sa, span_of(dn_plan_locate(p, b), n)), "b took the bytes of a, whose view is still used");
        cr_expect(!overlap(sa, span_of(dn_plan_locate(p, c), n)), "c took the bytes of a, whose view is still used");
    }
    check_plan(t.g, p);
    finish(&t);
}

/* Two views into one base at different byte offsets, with the base's
 * batch stride (the form a zero-copy split along axis 1 will take; no op
 * makes it yet, so the plan is edited by hand): each resolves to the
 * base's buffer plus its offset, item i at offset + i * stride, and both
 * lie inside the base; --emit=plan shows offset and stride. */
Test(views, two_views_into_one_base_at_different_offsets)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(2, NN, 8)), *h = input(&t, "h", S(2, NN, 4));
    DnValue *a = op1(&t, DN_OP_RELU, x);  /* [N, 8]: 32 bytes per item */
    DnValue *v1 = op1(&t, DN_OP_RELU, h); /* [N, 4]: to become a[:, 0:4] */
    DnValue *v2 = op1(&t, DN_OP_TANH, h); /* [N, 4]: to become a[:, 4:8] */
    DnValue *y = op2(&t, DN_OP_ADD, v1, v2);
    DnValue *z = op1(&t, DN_OP_SIGMOID, a);
    dn_graph_add_output(t.g, "y", y);
    dn_graph_add_output(t.g, "z", z);
    DnPlan *p = plan(&t, NULL, NULL);
    p->buf[v1->id] = (DnBuf){.kind = DN_BUF_VIEW, .base = a->id, .offset = 0, .stride = 32};
    p->buf[v2->id] = (DnBuf){.kind = DN_BUF_VIEW, .base = a->id, .offset = 16, .stride = 32};
    DnBufLoc la = dn_plan_locate(p, a), l1 = dn_plan_locate(p, v1), l2 = dn_plan_locate(p, v2);
    cr_assert_eq(la.kind, DN_BUF_ARENA);
    cr_expect(l1.kind == DN_BUF_ARENA && l1.at_n == la.at_n && l1.at_b == la.at_b);
    cr_expect(l2.kind == DN_BUF_ARENA && l2.at_n == la.at_n && l2.at_b == la.at_b + 16);
    cr_expect(l1.stride == 32 && l2.stride == 32);
    cr_expect(l1.span_n == 32 && l1.span_b == -16, "span %lld*N + %lld", (long long)l1.span_n, (long long)l1.span_b);
    for (int64_t n = 1; n <= 5; n++) {
        Span sa = span_of(la, n), s1 = span_of(l1, n), s2 = span_of(l2, n);
        cr_expect(s1.lo >= sa.lo && s1.hi <= sa.hi && s2.lo >= sa.lo && s2.hi <= sa.hi, "a view outside its base");
        for (int64_t i = 0; i < n; i++) { /* items: [at + i*stride, + 16), disjoint between the views */
            int64_t i1 = s1.lo + i * l1.stride, i2 = s2.lo + i * l2.stride;
            cr_expect(i1 + 16 <= i2 && i2 + 16 <= sa.lo + (i + 1) * 32, "item %lld of the views overlaps",
                      (long long)i);
        }
        if (n > 1) cr_expect(overlap(s1, s2), "interleaved views must count as possibly aliasing");
    }
    char text[4096] = {0};
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    dn_plan_print(t.g, p, f);
    fclose(f);
    cr_expect(strstr(text, "view %0 + 0 stride 32\n"), "%s", text);
    cr_expect(strstr(text, "view %0 + 16 stride 32\n"), "%s", text);
    finish(&t);
}

/* Views of graph inputs and of parameters resolve to the caller's buffer
 * and to the state block. */
Test(views, of_inputs_and_parameters)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(3, NN, 2, 2));
    DnValue *w = param(&t, "w", S(2, 4, 4));
    DnValue *xv = reshape(&t, x, 2, (int64_t[]){-1, 4});
    DnValue *wv = reshape(&t, w, 2, (int64_t[]){2, 8});
    DnValue *y = op1(&t, DN_OP_RELU, xv), *z = op1(&t, DN_OP_RELU, wv);
    dn_graph_add_output(t.g, "y", y);
    dn_graph_add_output(t.g, "z", z);
    DnPlan *p = plan(&t, NULL, NULL);
    DnBufLoc lx = dn_plan_locate(p, xv), lw = dn_plan_locate(p, wv);
    cr_expect(lx.kind == DN_BUF_INPUT && lx.index == 0 && lx.at_n == 0 && lx.at_b == 0 && lx.span_n == 16);
    cr_expect(lw.kind == DN_BUF_STATE && lw.at_b == t.st.offset[0] && lw.span_b == 64);
    char text[4096] = {0};
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    dn_plan_print(t.g, p, f);
    fclose(f);
    cr_expect(strstr(text, "view %x + 0\n") && strstr(text, "view @w + 0\n"), "%s", text);
    finish(&t);
}

/* ---- outputs ----------------------------------------------------------------- */

/* dn_plan_outputs gives each output that is an input, a parameter or a
 * value an earlier output names a copy (an input's and a parameter's first,
 * in output order; an op result's right after its op), and nothing to the
 * others; the graph verifies, a second call adds nothing, and the plan pins
 * every output to its own buffer. */
Test(outputs, every_output_gets_an_op_of_its_own)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(2, NN, 4));
    DnValue *w = param(&t, "w", S(2, 1, 4));
    DnValue *a = op1(&t, DN_OP_TANH, x);
    DnValue *b = op2(&t, DN_OP_ADD, a, w);
    DnValue *outs[] = {a, x, a, w, b, x};
    static const char *const names[] = {"a", "x", "a2", "w", "b", "x2"};
    for (int i = 0; i < 6; i++) dn_graph_add_output(t.g, names[i], outs[i]);
    cr_assert_eq(dn_plan_outputs(t.g), 4);
    cr_assert_eq(dn_verify(&t.cx, t.g), DN_OK);
    static const DnOpKind kinds[] = {DN_OP_COPY, DN_OP_COPY, DN_OP_COPY, DN_OP_TANH, DN_OP_COPY, DN_OP_ADD};
    const DnValue *reads[] = {x, w, x, x, a, a};
    cr_assert_eq(t.g->ops.len, 6);
    for (int i = 0; i < 6; i++) {
        const DnOp *op = t.g->ops.data[i];
        cr_expect(op->kind == kinds[i] && op->in[0] == reads[i] && op->id == i, "op %d: %s of %%%d (id %d)", i,
                  dn_op_info[op->kind].name, op->in[0]->id, op->id);
    }
    const DnValue *want[] = {a, t.g->ops.data[0]->out[0], t.g->ops.data[4]->out[0], t.g->ops.data[1]->out[0],
                             b, t.g->ops.data[2]->out[0]};
    for (int i = 0; i < 6; i++) cr_expect_eq(t.g->outputs.data[i], want[i], "output %s", names[i]);
    cr_expect_eq(dn_plan_outputs(t.g), 0, "the second call added copies");
    DnPlan *p = plan(&t, NULL, NULL);
    for (int i = 0; i < 6; i++) {
        const DnBuf *buf = &p->buf[t.g->outputs.data[i]->id];
        cr_expect(buf->kind == DN_BUF_OUTPUT && buf->index == i, "output %s is not pinned to its buffer", names[i]);
    }
    check_plan(t.g, p);
    finish(&t);
}

/* The planner pins outputs through the op results they name: an output
 * that names an input is a compiler bug once dn_plan_outputs has run. */
Test(outputs, planner_refuses_an_output_without_an_op, .signal = SIGABRT)
{
    T t;
    start(&t);
    DnValue *x = input(&t, "x", S(2, NN, 4));
    dn_graph_add_output(t.g, "y", x);
    plan(&t, NULL, NULL);
}

/* The same for one op result named as two outputs. */
Test(outputs, planner_refuses_one_result_for_two_outputs, .signal = SIGABRT)
{
    T t;
    start(&t);
    DnValue *y = op1(&t, DN_OP_TANH, input(&t, "x", S(2, NN, 4)));
    dn_graph_add_output(t.g, "y", y);
    dn_graph_add_output(t.g, "z", y);
    plan(&t, NULL, NULL);
}

/* ---- workspaces ------------------------------------------------------------- */

/* A test query: 'bytes_n'/'bytes_b' and 'per_worker' for every op of
 * kind 'kind' (only for op 'only' when set). */
typedef struct Ask {
    DnOpKind kind;
    int64_t bytes_n, bytes_b, per_worker;
    const DnOp *only;
    int calls;
} Ask;

static bool ask(const DnOp *o, void *data, DnWorkspaceReq *req)
{
    Ask *q = data;
    q->calls++;
    if (o->kind != q->kind || (q->only && o != q->only)) return false;
    *req = (DnWorkspaceReq){q->bytes_n, q->bytes_b, q->per_worker};
    return true;
}

/* op 0: a = relu(p1) [64, 64] (16 KiB, fixed pool); op 1: b = matmul(a, p2)
 * [64, 4]: a dies; op 2: c = matmul(b, p3) with the workspace; op 3: y. */
static void dead_then_workspace(T *t, DnValue **a, DnValue **b, DnValue **c)
{
    start(t);
    DnValue *p1 = param(t, "p1", S(2, 64, 64)), *p2 = param(t, "p2", S(2, 64, 4)), *p3 = param(t, "p3", S(2, 4, 4));
    DnAttr mm[2] = {dn_attr_int("trans_a", 0), dn_attr_int("trans_b", 0)};
    *a = op1(t, DN_OP_RELU, p1);
    *b = op(t, DN_OP_MATMUL, 2, (DnValue *[]){*a, p2}, 2, mm);
    *c = op(t, DN_OP_MATMUL, 2, (DnValue *[]){*b, p3}, 2, mm);
    dn_graph_add_output(t->g, "y", op1(t, DN_OP_RELU, *c));
}

/* The workspace lives only during its op: it takes the bytes of 'a', dead
 * by then, and none of the operand 'b' or the result 'c'; the arena does
 * not grow. */
Test(workspace, reuses_dead_bytes_not_live_ones)
{
    T t;
    DnValue *a, *b, *c;
    dead_then_workspace(&t, &a, &b, &c);
    DnPlan *p0 = plan(&t, NULL, NULL);
    int64_t arena0 = p0->arena_b;
    Ask q = {DN_OP_MATMUL, 0, 8192, 0, c->def, 0};
    DnPlan *p = plan(&t, ask, &q);
    cr_expect_eq(q.calls, t.g->ops.len, "the query is asked once per live op");
    int at = def_pos(t.g, c);
    const DnWorkspace *w = &p->workspace[at];
    cr_assert_eq(w->buf.kind, DN_BUF_ARENA);
    cr_expect(w->bytes_n == 0 && w->bytes_b == 8192);
    Span ws = span_of(dn_plan_locate_workspace(p, at), 1), sa = span_of(dn_plan_locate(p, a), 1);
    cr_expect(ws.lo >= sa.lo && ws.hi <= sa.hi, "workspace [%lld, %lld) not in the dead a [%lld, %lld)",
              (long long)ws.lo, (long long)ws.hi, (long long)sa.lo, (long long)sa.hi);
    cr_expect(!overlap(ws, span_of(dn_plan_locate(p, b), 1)) && !overlap(ws, span_of(dn_plan_locate(p, c), 1)));
    cr_expect_eq(p->arena_b, arena0, "arena %lld, %lld without the workspace", (long long)p->arena_b,
                 (long long)arena0);
    cr_expect_eq(p->workspace[def_pos(t.g, b)].buf.kind, DN_BUF_NONE);
    cr_expect_eq(check_plan(t.g, p), 1);
    Ask all = {DN_OP_MATMUL, 0, 8192, 0, NULL, 0}; /* b's op too: a is its operand, so that one grows the arena */
    p = plan(&t, ask, &all);
    cr_expect_eq(p->workspace[def_pos(t.g, b)].buf.kind, DN_BUF_ARENA);
    cr_expect_eq(check_plan(t.g, p), 2);
    finish(&t);
}

/* A workspace larger than every gap grows the arena: the total includes it
 * (rounded up to 64). */
Test(workspace, arena_total_includes_workspace)
{
    T t;
    DnValue *a, *b, *c;
    dead_then_workspace(&t, &a, &b, &c);
    int64_t arena0 = plan(&t, NULL, NULL)->arena_b;
    Ask q = {DN_OP_RELU, 0, 100000, 0, NULL, 0};
    DnPlan *p = plan(&t, ask, &q);
    for (int at = 0; at < t.g->ops.len; at++) {
        const DnWorkspace *w = &p->workspace[at];
        bool relu = t.g->ops.data[at]->kind == DN_OP_RELU;
        cr_expect_eq(w->buf.kind, relu ? DN_BUF_ARENA : DN_BUF_NONE);
        if (relu) cr_expect_eq(w->bytes_b, 100032);
        if (relu) cr_expect_leq(w->buf.offset + w->bytes_b, p->arena_b);
    }
    cr_expect_gt(p->arena_b, arena0);
    cr_expect_leq(p->arena_b, arena0 + 100032);
    check_plan(t.g, p);
    char text[8192] = {0};
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    dn_plan_print(t.g, p, f);
    fclose(f);
    cr_expect(strstr(text, "workspace          100032 bytes"), "%s", text);
    finish(&t);
}

/* x [N, 1024] -> a = relu(x) -> b = matmul(a, w) [N, 4] (a dies) -> c = matmul(b, w2). */
static void per_n_graph(T *t, DnValue **c)
{
    start(t);
    DnValue *x = input(t, "x", S(2, NN, 1024));
    DnValue *w = param(t, "w", S(2, 1024, 4)), *w2 = param(t, "w2", S(2, 4, 4));
    DnAttr mm[2] = {dn_attr_int("trans_a", 0), dn_attr_int("trans_b", 0)};
    DnValue *a = op1(t, DN_OP_RELU, x);
    DnValue *b = op(t, DN_OP_MATMUL, 2, (DnValue *[]){a, w}, 2, mm);
    *c = op(t, DN_OP_MATMUL, 2, (DnValue *[]){b, w2}, 2, mm);
    dn_graph_add_output(t->g, "y", op1(t, DN_OP_RELU, *c));
}

/* A request per batch item goes to the per-N pool. */
Test(workspace, per_item_request)
{
    T t;
    DnValue *c;
    per_n_graph(&t, &c);
    Ask q = {DN_OP_MATMUL, 100, 0, 0, NULL, 0};
    DnPlan *p = plan(&t, ask, &q);
    const DnWorkspace *w = &p->workspace[def_pos(t.g, c)];
    cr_assert_eq(w->buf.kind, DN_BUF_ARENA);
    cr_expect(w->bytes_n == 128 && w->bytes_b == 0);
    cr_expect_eq(w->buf.offset, p->arena_b, "per-N blocks start after the fixed pool");
    check_plan(t.g, p);
    finish(&t);
}

/* A fixed-size request with no gap in the fixed pool takes a per-N gap of
 * at least its size per item (the dead a: 4 KiB per item), so the arena
 * does not grow for any N. */
Test(workspace, fixed_request_in_a_dead_activation)
{
    T t;
    DnValue *c;
    per_n_graph(&t, &c);
    DnPlan *p0 = plan(&t, NULL, NULL);
    int64_t an = p0->arena_n, ab = p0->arena_b;
    Ask q = {DN_OP_MATMUL, 0, 2048, 0, c->def, 0};
    DnPlan *p = plan(&t, ask, &q);
    const DnWorkspace *w = &p->workspace[def_pos(t.g, c)];
    cr_assert_eq(w->buf.kind, DN_BUF_ARENA);
    cr_expect(w->bytes_n == 0 && w->bytes_b == 2048);
    cr_expect_gt(w->buf.coef_n, 0, "not in the per-N pool");
    cr_expect(p->arena_n == an && p->arena_b == ab, "arena %lld*N + %lld, before %lld*N + %lld", (long long)p->arena_n,
              (long long)p->arena_b, (long long)an, (long long)ab);
    check_plan(t.g, p);
    finish(&t);
}

/* Per-worker requests widen the worker slices to the largest; each op's
 * part starts at the slice's start, after the pools, one slice per thread. */
Test(workspace, worker_slices_follow_the_pools)
{
    T t;
    DnValue *c;
    per_n_graph(&t, &c);
    DnPlan *p0 = plan(&t, NULL, NULL);
    cr_expect_eq(p0->arena_t, 0);
    Ask q = {DN_OP_MATMUL, 0, 0, 1000, NULL, 0};
    DnPlan *p = plan(&t, ask, &q);
    cr_expect(p->arena_n == p0->arena_n && p->arena_b == p0->arena_b, "the pools grew");
    cr_expect_eq(p->arena_t, 1024);
    int at = def_pos(t.g, c);
    cr_expect_eq(p->workspace[at].buf.kind, DN_BUF_NONE, "no whole-op part was asked for");
    cr_expect_eq(p->workspace[at].per_worker, 1024);
    DnBufLoc sl = dn_plan_locate_worker(p, at);
    cr_expect(sl.kind == DN_BUF_ARENA && sl.at_n == p->arena_n && sl.at_b == p->arena_b && sl.span_b == 1024 &&
              sl.stride == 1024);
    cr_expect_eq(dn_plan_locate_worker(p, 0).kind, DN_BUF_NONE, "relu asked for nothing");
    Ask both = {DN_OP_MATMUL, 0, 256, 5000, c->def, 0};
    p = plan(&t, ask, &both);
    cr_expect(p->arena_t == 5056 && p->workspace[at].buf.kind == DN_BUF_ARENA && p->workspace[at].bytes_b == 256);
    cr_expect_eq(check_plan(t.g, p), 1);
    char text[8192] = {0};
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    dn_plan_print(t.g, p, f);
    fclose(f);
    cr_expect(strstr(text, "workspace/worker   5056 bytes                   worker slices\n"), "%s", text);
    cr_expect(strstr(text, "  arena: 4160*N + 0 + 5056*threads bytes"), "%s", text);
    finish(&t);
}

/* ---- the LLVM backend's query on real models ------------------------------------ */

/* The graphs dnnc builds from 'path' (the default pipeline; the training
 * graph when 'train'), planned with the LLVM backend's query. */
static DnGraph *model_graph(T *t, const char *path, bool train)
{
    memset(t, 0, sizeof *t);
    dn_ctx_init(&t->cx);
    char *text = NULL;
    size_t len = 0;
    FILE *f = fopen(dn_test_src(path), "r");
    cr_assert_not_null(f, "%s", path);
    FILE *m = open_memstream(&text, &len);
    for (int ch; (ch = fgetc(f)) != EOF;) fputc(ch, m);
    fclose(f);
    fclose(m);
    const char *src = dn_ctx_add_source(&t->cx, path, text);
    free(text);
    DnAst *ast = dn_parse(&t->cx, path, src, &t->a);
    cr_assert_not_null(ast);
    DnGraph *g0 = dn_lower(&t->cx, ast, NULL);
    cr_assert(g0 && t->cx.nerr == 0);
    DnModule mod;
    DnCompileOptions o = {.no_train = !train}; /* the default pipeline */
    cr_assert_eq(dn_compile(&t->cx, g0, &o, &mod, &t->a), DN_OK, "%s", path);
    dn_graph_free(g0);
    t->g = train ? mod.train : mod.infer; /* the test keeps this graph and plans it itself */
    if (train)
        mod.train = NULL;
    else
        mod.infer = NULL;
    dn_module_free(&mod);
    return t->g;
}

static int count_kind(const DnGraph *g, DnOpKind kind)
{
    int n = 0;
    for (int i = 0; i < g->ops.len; i++) n += !g->ops.data[i]->dead && g->ops.data[i]->kind == kind;
    return n;
}

/* Every convolution kernel of LeNet's and ResNet-18's training steps
 * (conv2d and its two gradients) gets a workspace from the LLVM backend;
 * the only other ops with one are matmuls that pack b (here the weight
 * gradients dW = dyᵀ x, a reduction over the batch), each one 256 x 256
 * block per worker, and there is at least one; none does under
 * --direct-kernels, and the plans keep every invariant above. */
Test(workspace, llvm_query_on_lenet_and_resnet, .timeout = 120)
{
    const char *models[] = {"examples/lenet.dnn", "examples/resnet.dnn"};
    for (int m = 0; m < 2; m++) {
        T t;
        DnGraph *g = model_graph(&t, models[m], true);
        DnBackendOptions fast = {.opt_level = 3}, direct = {.opt_level = 3, .direct_kernels = true};
        cr_assert_not_null(dn_backend_llvm.workspace);
        int nconv =
            count_kind(g, DN_OP_CONV2D) + count_kind(g, DN_OP_CONV2D_BWD_DATA) + count_kind(g, DN_OP_CONV2D_BWD_FILTER);
        cr_assert_gt(count_kind(g, DN_OP_CONV2D_BWD_FILTER), 0);
        DnPlan *p = plan(&t, dn_backend_llvm.workspace, &fast);
        int nws = 0, nmm = 0;
        for (int i = 0; i < g->ops.len; i++) {
            DnOpKind kind = g->ops.data[i]->kind;
            bool conv = kind == DN_OP_CONV2D || kind == DN_OP_CONV2D_BWD_DATA || kind == DN_OP_CONV2D_BWD_FILTER;
            bool has = p->workspace[i].buf.kind == DN_BUF_ARENA || p->workspace[i].per_worker > 0;
            if (!g->ops.data[i]->dead && conv) nws += has;
            if (!g->ops.data[i]->dead && kind == DN_OP_MATMUL && has) {
                nmm++;
                cr_expect_eq(p->workspace[i].per_worker, 256 * 256 * 4, "%s: matmul %d's packing block", models[m], i);
            }
        }
        cr_expect_eq(nws, nconv, "%s: %d of %d convolutions have a workspace", models[m], nws, nconv);
        cr_expect_gt(nmm, 0, "%s: no matmul packs its b", models[m]);
        cr_expect_eq(check_plan(g, p), nconv + nmm, "%s: workspaces on other ops", models[m]);
        DnPlan *pd = plan(&t, dn_backend_llvm.workspace, &direct);
        cr_expect_eq(check_plan(g, pd), 0, "%s: workspaces under --direct-kernels", models[m]);
        finish(&t);
    }
}

/* ---- end to end: the workspace slices under many threads --------------------------- */

/* The weight gradients take the band form (64x64 image: dy of one item is
 * too large for the plain form), the plain GEMM form with a padded image,
 * and the dot form (6 output channels on 16-wide rows); the forward
 * convolutions the band form, packed wᵀ and the row form; the data
 * gradients the col form.  All keep scratch in worker slices. */
static const char *conv_net = "model m(x: f32[N, 3, 64, 64]) -> (y: f32[N, 6, 16, 16]) {\n"
                              "  y = x |> c1: conv2d(16, kernel=3, pad=1) |> relu |> maxpool(4)\n"
                              "        |> c2: conv2d(16, kernel=3, pad=1) |> relu |> c3: conv2d(6, kernel=3, pad=1)\n"
                              "}\n"
                              "train m {\n  t: f32[N, 6, 16, 16]\n  loss = mse(y, t)\n"
                              "  optimizer = sgd(lr=0.1, momentum=0.9)\n}\n";

/* The state file after two training steps on 'threads' threads. */
static char *train_state(DnTestLib *lib, int threads, const float *x, const float *t, size_t *len)
{
    const dnrt_api *api = lib->desc->api;
    dnrt_error err = {0};
    dnrt_options opt = {.threads = threads, .seed = 3};
    dnrt_session *s = api->create(lib->desc, &opt, &err);
    cr_assert_not_null(s, "%s", err.message);
    const void *in[2] = {x, t};
    float loss;
    for (int step = 0; step < 2; step++) cr_assert_eq(api->train_step(s, 3, in, &loss, &err), 0, "%s", err.message);
    char path[600];
    snprintf(path, sizeof path, "%s.%d.safetensors", lib->so_path, threads);
    cr_assert_eq(api->save(s, path, &err), 0, "%s", err.message);
    api->destroy(s);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char *data = NULL;
    FILE *m = open_memstream(&data, len);
    for (int ch; (ch = fgetc(f)) != EOF;) fputc(ch, m);
    fclose(f);
    fclose(m);
    unlink(path);
    return data;
}

Test(workspace, slices_give_the_same_bytes_on_any_thread_count, .timeout = 300)
{
    DnTestLib lib;
    char log[8192];
    cr_assert_eq(dn_test_compile_text(conv_net, "", &lib, log, sizeof log), 0, "%s", log);
    char dir[512], cmd[1200], out[1 << 16];
    snprintf(dir, sizeof dir, "%s", lib.so_path);
    *strrchr(dir, '/') = 0;
    snprintf(cmd, sizeof cmd, "'%s' '%s/model.dnn' --emit=plan --graph=train", DNNC_BIN, dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    int nslice = 0, nshared = 0;
    for (const char *q = out; (q = strstr(q, "workspace/worker ")); q++) nslice++;
    for (const char *q = out; (q = strstr(q, "workspace ")); q++) nshared++;
    cr_assert_eq(nslice, 8, "worker slices for each conv2d, conv2d_bwd_data and conv2d_bwd_filter:\n%s", out);
    cr_assert_eq(nshared, 3,
                 "a shared part for the dot form's partial sums and the Winograd weights of c2 and of its "
                 "conv2d_bwd_data:\n%s",
                 out);
    int64_t nx = 3 * 3 * 64 * 64, nt = 3 * 6 * 16 * 16;
    float *x = malloc(sizeof *x * (size_t)nx), *t = malloc(sizeof *t * (size_t)nt);
    uint32_t r = 99;
    for (int64_t i = 0; i < nx; i++) r = r * 1664525u + 1013904223u, x[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    for (int64_t i = 0; i < nt; i++) r = r * 1664525u + 1013904223u, t[i] = (float)(r >> 8) * 0x1p-23f - 1.0f;
    size_t len1;
    char *one = train_state(&lib, 1, x, t, &len1);
    int threads[] = {2, 5, 70};
    for (int i = 0; i < 3; i++) {
        size_t len;
        char *got = train_state(&lib, threads[i], x, t, &len);
        cr_expect(len == len1 && memcmp(got, one, len) == 0, "%d threads: the state differs from 1 thread's",
                  threads[i]);
        free(got);
    }
    free(one), free(x), free(t);
    dn_test_close(&lib);
}

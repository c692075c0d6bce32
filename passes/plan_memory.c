/* plan_memory.c -- the state layout and the static arena plan.
 *
 * The state block holds every parameter, buffer and optimizer tensor at
 * 64-aligned offsets in params order.  The arena holds every intermediate
 * value and every op's workspace.  Values whose shape has the batch
 * dimension take bytes in proportion to N; the others a fixed size.  Two
 * pools, one per kind, are planned separately by greedy first-fit over
 * lifetimes (a value lives from the op that writes it to its last reader;
 * a whole-op workspace only during its op); after them come the worker
 * slices, one per thread, as large as the largest per-worker request:
 *     [ fixed pool: arena_b ][ per-N pool: arena_n * N ][ threads x arena_t ]
 * so every offset has the form coef_n * N + offset and one plan serves
 * every batch size and thread count.  An elementwise op writes over an
 * operand that dies at it when the types are equal (in place).  A view
 * op's result (reshape) is a VIEW of its operand's buffer, and a read of
 * the view counts as a read of the buffer's owner, which therefore lives
 * as long as its views are used.  The operands of a concat marked views = 1
 * (concat_views.c) that qualify are strided VIEWs of its result, which is
 * then placed when the first of them is written.  Graph inputs, outputs and params are
 * pinned to the caller's buffers and the state block; every output must
 * be a distinct op result (dn_plan_outputs, plan_outputs.c, runs first),
 * whose op then writes the output's buffer.  Printing is in
 * plan_print.c, resolving views to addresses in plan_locate.c.
 * Runs last: after it, the graph must not change.
 */
#include "passes.h"

enum { ALIGN = 64 };
#define PER_N (-1) /* offset placeholder of per-N pool buffers */

static int64_t align_up(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

void dn_state_layout(const DnGraph *g, DnArena *a, DnStateLayout *out)
{
    out->n = g->params.len;
    out->offset = dn_arena_alloc(a, sizeof(int64_t) * (size_t)(out->n ? out->n : 1));
    int64_t at = 0;
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *p = g->params.data[i];
        out->offset[i] = at;
        at = align_up(at + dn_shape_numel_static(&p->shape) * dn_dtype_size(p->dtype));
    }
    out->bytes = at;
}

/* One live allocation in a pool. */
typedef struct Block {
    int64_t offset, size;
} Block;

typedef struct Pool {
    DN_VEC(Block) live; /* sorted by offset */
    int64_t extent;     /* high-water mark */
} Pool;

/* First fit: the lowest gap between live blocks that holds 'size'. */
static int64_t pool_alloc(DnArena *a, Pool *p, int64_t size)
{
    int64_t at = 0;
    int pos = 0;
    for (; pos < p->live.len; pos++) {
        if (p->live.data[pos].offset - at >= size) break;
        at = p->live.data[pos].offset + p->live.data[pos].size;
    }
    Block b = {at, size};
    dn_vec_push(a, &p->live, b); /* grow, then shift into place */
    memmove(&p->live.data[pos + 1], &p->live.data[pos], sizeof(Block) * (size_t)(p->live.len - 1 - pos));
    p->live.data[pos] = b;
    if (at + size > p->extent) p->extent = at + size;
    return at;
}

/* Whether first fit finds room for 'size' below the pool's high-water mark
 * (so taking it costs no arena bytes). */
static bool pool_fits(const Pool *p, int64_t size)
{
    int64_t at = 0;
    for (int pos = 0; pos < p->live.len; pos++) {
        if (p->live.data[pos].offset - at >= size) return true;
        at = p->live.data[pos].offset + p->live.data[pos].size;
    }
    return p->extent - at >= size;
}

static void pool_free(Pool *p, int64_t offset)
{
    for (int i = 0; i < p->live.len; i++)
        if (p->live.data[i].offset == offset) {
            memmove(&p->live.data[i], &p->live.data[i + 1], sizeof(Block) * (size_t)(p->live.len - 1 - i));
            p->live.len--;
            return;
        }
    DN_UNREACHABLE();
}

/* Bytes of 'v': per batch item when it has N, else in total. */
static int64_t value_bytes(const DnValue *v) { return dn_shape_numel_static(&v->shape) * dn_dtype_size(v->dtype); }

typedef struct Planner {
    DnGraph *g;
    DnPlan *plan;
    DnArena *a;
    DnWorkspaceFn ws; /* the backend's workspace query, or NULL */
    void *ws_data;
    DnValue **root;    /* by value id: the value whose storage it uses (views) */
    int64_t *view_off; /* by value id: byte offset of a view inside its root's first item */
    int *last;         /* by root id: index of the last op reading it; INT32_MAX = never free */
    bool *placed;      /* by root id: its buffer is assigned (a concat's result before its op) */
    Pool fixed, per_n;
} Planner;

static void pin_boundaries(Planner *pl, const DnStateLayout *state)
{
    DnGraph *g = pl->g;
    for (int i = 0; i < g->inputs.len; i++)
        pl->plan->buf[g->inputs.data[i]->id] = (DnBuf){.kind = DN_BUF_INPUT, .index = i};
    for (int i = 0; i < g->params.len; i++)
        pl->plan->buf[g->params.data[i]->value->id] = (DnBuf){.kind = DN_BUF_STATE, .offset = state->offset[i]};
    for (int i = 0; i < g->outputs.len; i++) { /* distinct op results: dn_plan_outputs made them so */
        DnValue *v = g->outputs.data[i];
        if (v->kind != DN_VAL_OP || pl->plan->buf[v->id].kind == DN_BUF_OUTPUT)
            dn_die(__FILE__, __LINE__, "output '%s' is not a distinct op result: no op would write its buffer",
                   g->output_names.data[i]);
        pl->plan->buf[v->id] = (DnBuf){.kind = DN_BUF_OUTPUT, .index = i};
    }
}

/* Whether result 'r' of 'op' is a view of its operand 0, and at which
 * byte offset inside the operand's (first) batch item.  One case per view
 * op; reshape is the whole operand. */
static bool view_rule(const DnOp *op, int r, int64_t *offset)
{
    if (!(dn_op_info[op->kind].flags & DN_OPF_VIEW)) return false;
    switch (op->kind) {
    case DN_OP_RESHAPE: *offset = 0; return r == 0;
    default: return false;
    }
}

/* The operands of concat 'op' (marked views = 1) that become strided views
 * of its result: dn_concat_view_operand's, in arena or not yet placed
 * buffers on both sides. */
static void concat_views(Planner *pl, const DnOp *op, const int *uses)
{
    const DnValue *y = op->out[0];
    if (pl->plan->buf[y->id].kind != DN_BUF_NONE) return; /* pinned */
    int64_t inner = dn_shape_numel_static(&y->shape) / y->shape.dim[1] * dn_dtype_size(y->dtype), at = 0;
    for (int k = 0; k < op->nin; k++) {
        DnValue *x = op->in[k];
        if (dn_concat_view_operand(pl->g, uses, op, k) && pl->plan->buf[x->id].kind == DN_BUF_NONE) {
            pl->root[x->id] = (DnValue *)y;
            pl->view_off[x->id] = at * inner;
        }
        at += x->shape.dim[1];
    }
}

/* Views share their operand's storage unless they are pinned outputs. */
static void find_roots(Planner *pl)
{
    DnGraph *g = pl->g;
    for (int i = 0; i < g->nvalues; i++) pl->root[i] = NULL, pl->view_off[i] = 0;
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int r = 0; r < op->nout; r++) {
            DnValue *v = op->out[r];
            int64_t off = 0;
            bool view = view_rule(op, r, &off) && pl->plan->buf[v->id].kind != DN_BUF_OUTPUT;
            DnValue *src = op->in[0];
            pl->root[v->id] = view ? (pl->root[src->id] ? pl->root[src->id] : src) : v;
            if (view) pl->view_off[v->id] = pl->view_off[src->id] + off;
        }
    }
    DnArena scratch = {0};
    int *uses = NULL;
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead || op->kind != DN_OP_CONCAT || !dn_op_int(op, "views")) continue;
        if (!uses) uses = dn_fill_uses(g, &scratch);
        concat_views(pl, op, uses);
    }
    dn_arena_free(&scratch);
}

static void find_last_uses(Planner *pl)
{
    DnGraph *g = pl->g;
    for (int i = 0; i < g->nvalues; i++) pl->last[i] = -1;
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int k = 0; k < op->nin; k++) {
            DnValue *r = op->in[k] && pl->root[op->in[k]->id] ? pl->root[op->in[k]->id] : NULL;
            if (r && pl->last[r->id] < i) pl->last[r->id] = i;
        }
    }
    if (g->loss && pl->root[g->loss->id]) pl->last[pl->root[g->loss->id]->id] = INT32_MAX;
}

static void place(Planner *pl, DnValue *v)
{
    DnBuf *b = &pl->plan->buf[v->id];
    if (b->kind == DN_BUF_OUTPUT || b->kind == DN_BUF_INPUT || b->kind == DN_BUF_STATE || pl->placed[v->id]) return;
    pl->placed[v->id] = true;
    DnValue *r = pl->root[v->id];
    if (r != v) { /* a view: inside its root's buffer, with the root's batch stride */
        if (pl->plan->buf[r->id].kind == DN_BUF_NONE) place(pl, r); /* a concat's result, at its first operand */
        int64_t stride = dn_shape_has_n(&r->shape) ? value_bytes(r) : 0;
        *b = (DnBuf){.kind = DN_BUF_VIEW, .base = r->id, .offset = pl->view_off[v->id], .stride = stride};
        return;
    }
    int64_t size = align_up(value_bytes(v));
    bool has_n = dn_shape_has_n(&v->shape);
    *b = (DnBuf){.kind = DN_BUF_ARENA};
    if (has_n) {
        b->coef_n = pool_alloc(pl->a, &pl->per_n, size);
        b->offset = PER_N; /* becomes arena_b once the fixed pool's size is known */
    } else {
        b->offset = pool_alloc(pl->a, &pl->fixed, size);
    }
    if (has_n)
        pl->plan->naive_n += size;
    else
        pl->plan->naive_b += size;
}

/* Returns arena block 'b' (per-N pool when 'per_n') to its pool. */
static void release_buf(Planner *pl, const DnBuf *b, bool per_n)
{
    if (b->kind != DN_BUF_ARENA) return;
    if (per_n)
        pool_free(&pl->per_n, b->coef_n);
    else
        pool_free(&pl->fixed, b->offset);
}

static void release(Planner *pl, DnValue *r) { release_buf(pl, &pl->plan->buf[r->id], dn_shape_has_n(&r->shape)); }

/* Asks the backend for the workspace of 'op' (position 'at'), reserves its
 * whole-op part and widens the worker slices to its per-worker part;
 * returns whether the whole-op part went to the per-N pool.  The caller
 * releases it once the op's results are placed and before the next op.  A
 * fixed-size part takes a gap of the fixed pool, else a gap of the per-N
 * pool of at least its size per item (a hole that holds it for every
 * N >= 1), and only then grows the fixed pool: dead activations' bytes are
 * reused. */
static bool place_workspace(Planner *pl, const DnOp *op, int at)
{
    DnWorkspace *w = &pl->plan->workspace[at];
    DnWorkspaceReq q = {0};
    if (!pl->ws || !pl->ws(op, pl->ws_data, &q) || q.bytes_n < 0 || q.bytes_b < 0 || q.per_worker < 0) return false;
    w->per_worker = align_up(q.per_worker);
    if (w->per_worker > pl->plan->arena_t) pl->plan->arena_t = w->per_worker;
    if (q.bytes_n == 0 && q.bytes_b == 0) return false;
    w->buf = (DnBuf){.kind = DN_BUF_ARENA};
    if (q.bytes_n > 0) { /* per item; a fixed part rides along per item (N >= 1) */
        w->bytes_n = align_up(q.bytes_n + q.bytes_b);
        w->buf.coef_n = pool_alloc(pl->a, &pl->per_n, w->bytes_n);
        w->buf.offset = PER_N;
        return true;
    }
    w->bytes_b = align_up(q.bytes_b);
    if (!pool_fits(&pl->fixed, w->bytes_b) && pool_fits(&pl->per_n, w->bytes_b)) {
        w->buf.coef_n = pool_alloc(pl->a, &pl->per_n, w->bytes_b);
        w->buf.offset = PER_N;
        return true;
    }
    w->buf.offset = pool_alloc(pl->a, &pl->fixed, w->bytes_b);
    return false;
}

/* Whether value 'x' (root 'r') covers all of its root's bytes, in the same
 * layout: the root itself or a view at offset 0 of the same size (reshape),
 * not a slice of it. */
static bool covers_root(const Planner *pl, const DnValue *x, const DnValue *r)
{
    return x == r || (pl->view_off[x->id] == 0 && value_bytes(x) == value_bytes(r) &&
                      dn_shape_has_n(&x->shape) == dn_shape_has_n(&r->shape));
}

/* An elementwise op may write its result over an operand's storage when
 * that operand dies at this op, lives in the arena, covers its whole
 * storage, has the result's exact type (so element i is read before
 * element i is written, and nothing is broadcast from it) and is the only
 * operand with that storage.  Returns the operand's root, or NULL. */
static DnValue *in_place_operand(Planner *pl, const DnOp *op, int at)
{
    if (!(dn_op_info[op->kind].flags & DN_OPF_ELEMWISE) || op->nout != 1) return NULL;
    const DnValue *y = op->out[0];
    if (pl->plan->buf[y->id].kind == DN_BUF_OUTPUT || pl->root[y->id] != y) return NULL;
    for (int k = 0; k < op->nin; k++) {
        DnValue *x = op->in[k], *r = pl->root[x->id];
        if (!r || pl->last[r->id] != at || pl->plan->buf[r->id].kind != DN_BUF_ARENA || x->dtype != y->dtype ||
            !dn_shape_eq(&x->shape, &y->shape) || !covers_root(pl, x, r))
            continue;
        bool shared = false;
        for (int j = 0; j < op->nin; j++) shared |= j != k && pl->root[op->in[j]->id] == r;
        if (!shared) return r;
    }
    return NULL;
}

/* Walks the ops in order: results are placed before the operands that die
 * at this op are released, so a result never overlaps its own operands
 * (except in place, see in_place_operand). */
static void assign(Planner *pl)
{
    DnGraph *g = pl->g;
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        DnValue *reuse = in_place_operand(pl, op, i);
        if (reuse) { /* the result takes the operand's block over; it is released with the result */
            pl->plan->buf[op->out[0]->id] = pl->plan->buf[reuse->id];
            pl->placed[op->out[0]->id] = true;
            pl->last[reuse->id] = INT32_MAX;
            if (dn_shape_has_n(&reuse->shape))
                pl->plan->naive_n += align_up(value_bytes(reuse));
            else
                pl->plan->naive_b += align_up(value_bytes(reuse));
        }
        for (int r = reuse ? 1 : 0; r < op->nout; r++) place(pl, op->out[r]);
        bool ws_per_n = place_workspace(pl, op, i); /* while every operand and result is still held */
        release_buf(pl, &pl->plan->workspace[i].buf, ws_per_n);
        for (int r = 0; r < op->nout; r++) /* results nobody reads die at once */
            if (pl->root[op->out[r]->id] == op->out[r] && pl->last[op->out[r]->id] < 0) release(pl, op->out[r]);
        for (int k = 0; k < op->nin; k++) {
            DnValue *r = op->in[k] ? pl->root[op->in[k]->id] : NULL;
            if (r && pl->last[r->id] == i) {
                release(pl, r);
                pl->last[r->id] = INT32_MAX; /* operand listed twice: release once */
            }
        }
    }
}

DnPlan *dn_plan_memory_ws(DnGraph *g, const DnStateLayout *state, DnWorkspaceFn ws, void *backend_data, DnArena *a)
{
    size_t nv = (size_t)(g->nvalues ? g->nvalues : 1), nops = (size_t)(g->ops.len ? g->ops.len : 1);
    DnPlan *plan = dn_arena_alloc(a, sizeof *plan);
    plan->buf = dn_arena_alloc(a, sizeof(DnBuf) * nv);
    plan->workspace = dn_arena_alloc(a, sizeof(DnWorkspace) * nops);
    Planner pl = {.g = g, .plan = plan, .a = a, .ws = ws, .ws_data = backend_data};
    pl.root = dn_arena_alloc(a, sizeof(DnValue *) * nv);
    pl.view_off = dn_arena_alloc(a, sizeof(int64_t) * nv);
    pl.last = dn_arena_alloc(a, sizeof(int) * nv);
    pl.placed = dn_arena_alloc(a, sizeof(bool) * nv);
    pin_boundaries(&pl, state);
    find_roots(&pl);
    find_last_uses(&pl);
    assign(&pl);
    plan->arena_b = align_up(pl.fixed.extent);
    plan->arena_n = pl.per_n.extent;
    for (int i = 0; i < g->nvalues; i++) /* the per-N pool starts after the fixed one */
        if (plan->buf[i].kind == DN_BUF_ARENA && plan->buf[i].offset == PER_N) plan->buf[i].offset = plan->arena_b;
    for (int i = 0; i < g->ops.len; i++)
        if (plan->workspace[i].buf.kind == DN_BUF_ARENA && plan->workspace[i].buf.offset == PER_N)
            plan->workspace[i].buf.offset = plan->arena_b;
    return plan;
}

DnPlan *dn_plan_memory(DnGraph *g, const DnStateLayout *state, DnArena *a)
{
    return dn_plan_memory_ws(g, state, NULL, NULL, a);
}

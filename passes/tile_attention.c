/* tile_attention.c -- the attention pattern
 *
 *     s = matmul(q, k, trans_b = 1)        (or matmul(q, transpose(k)) of the last two axes)
 *     s = scale(s, alpha)                  (optional)
 *     s = add(s, b)  ...                   (any order: at most one causal_bias of the
 *                                           scores' [Tq, Tk] and at most one other bias)
 *     o = matmul(softmax(s, last axis), v)
 *
 * -- as scaled_dot_product_attention, multihead_attention and the
 * Transformer layers lower it, or as written out by hand -- becomes one
 * flash_attention op (ops.def) with the scale, the causal flag and the
 * bias as an operand.  Its kernels tile the keys with an online softmax,
 * so the [..., Tq, Tk] scores and weights never exist; its gradient
 * (flash_attention_bwd) recomputes them tile by tile from the saved
 * log-sum-exp.  The tile sizes are the backends' choice (block_q and
 * block_k 0) unless dnnc --attention-tile=QxK sets them.
 *
 * Left alone: a pattern whose scores, weights or partial sums anything
 * else reads or that is a graph output (the matrix must then exist), a
 * dropout on the weights (the training graph of a layer with attention
 * dropout), a bias that depends on a trainable weight (the kernels give
 * it no gradient), a second non-causal bias, a scale <= 0, a key that is
 * broadcast over the batch axes, and shapes with the run-time sequence
 * axis T.  Runs before training, so the training graph differentiates
 * the tiled op, and after inference, which removes attention dropout from
 * the inference graph first.
 */
#include "passes.h"

typedef struct Match {
    DnValue *q, *k, *v, *bias;
    bool causal;
    double scale;
    DnOp *ops[16]; /* the pattern's ops, marked dead when it is rewritten */
    int nops;
} Match;

/* v is an op result read once, by the pattern, and no graph output. */
static bool inner(const DnGraph *g, const int *uses, const DnValue *v)
{
    return v->kind == DN_VAL_OP && uses[v->id] == 1 && !dn_graph_is_output(g, v);
}

static bool take(Match *m, DnOp *op)
{
    if (m->nops == (int)(sizeof m->ops / sizeof m->ops[0])) return false;
    m->ops[m->nops++] = op;
    return true;
}

/* Whether a trainable weight flows into 'v' (a walk over its producers). */
static bool trained(const DnGraph *g, const DnValue *v, char *seen)
{
    if (seen[v->id]) return seen[v->id] == 2;
    seen[v->id] = 1;
    bool t = false;
    if (v->kind == DN_VAL_PARAM) {
        const DnParam *p = g->params.data[v->index];
        t = p->kind == DN_PARAM_WEIGHT && p->trainable;
    } else if (v->kind == DN_VAL_OP) {
        for (int i = 0; i < v->def->nin && !t; i++) t = v->def->in[i] && trained(g, v->def->in[i], seen);
    }
    if (t) seen[v->id] = 2;
    return t;
}

static bool plain_static(const DnShape *s)
{
    if (dn_shape_has_seq(s)) return false;
    for (int i = 1; i < s->rank; i++)
        if (s->dim[i] < 1) return false;
    return true;
}

/* q kᵀ: s = matmul(q, k, trans_b) or matmul(q, transpose(k) of the last two axes). */
static bool match_scores(const DnGraph *g, const int *uses, DnValue *s, Match *m)
{
    if (!inner(g, uses, s) || s->def->kind != DN_OP_MATMUL || dn_op_int(s->def, "trans_a")) return false;
    DnOp *mm = s->def;
    DnValue *k = mm->in[1];
    if (!dn_op_int(mm, "trans_b")) {
        if (!inner(g, uses, k) || k->def->kind != DN_OP_TRANSPOSE) return false;
        int n, r = k->shape.rank;
        const int64_t *perm = dn_op_ints(k->def, "perm", &n);
        for (int i = 0; i < r; i++)
            if (perm[i] != (i < r - 2 ? i : i == r - 2 ? r - 1 : r - 2)) return false;
        if (!take(m, k->def)) return false;
        k = k->def->in[0];
    }
    m->q = mm->in[0];
    m->k = k;
    return take(m, mm);
}

/* Whether operand 'x' of an add can continue the chain back to q kᵀ. */
static bool chain_link(const DnGraph *g, const int *uses, const DnValue *x, const DnShape *sc)
{
    if (!inner(g, uses, x) || !dn_shape_eq(&x->shape, sc)) return false;
    DnOpKind k = x->def->kind;
    return k == DN_OP_ADD || k == DN_OP_SCALE || k == DN_OP_MATMUL;
}

/* The adds and the scale between q kᵀ and the softmax. */
static bool match_logits(const DnGraph *g, const int *uses, DnValue *x, const DnShape *sc, Match *m, char *seen)
{
    while (x->kind == DN_VAL_OP && x->def->kind == DN_OP_ADD) {
        DnOp *add = x->def;
        if (!inner(g, uses, x) || !take(m, add)) return false;
        int chain = chain_link(g, uses, add->in[0], sc) ? 0 : 1;
        DnValue *b = add->in[1 - chain];
        x = add->in[chain];
        if (!dn_shape_eq(&x->shape, sc)) return false;
        const DnOp *bd = b->kind == DN_VAL_OP ? b->def : NULL;
        int r = sc->rank;
        if (bd && bd->kind == DN_OP_CAUSAL_BIAS && !m->causal && dn_op_int(bd, "rows") == sc->dim[r - 2] &&
            dn_op_int(bd, "cols") == sc->dim[r - 1]) {
            m->causal = true;
            if (uses[b->id] == 1 && !dn_graph_is_output(g, b) && !take(m, b->def)) return false;
        } else {
            if (m->bias || b->dtype != DN_DTYPE_F32 || !plain_static(&b->shape) || trained(g, b, seen)) return false;
            m->bias = b;
        }
    }
    if (x->kind == DN_VAL_OP && x->def->kind == DN_OP_SCALE) {
        m->scale = dn_op_float(x->def, "alpha");
        if (!inner(g, uses, x) || !(m->scale > 0) || !take(m, x->def)) return false;
        x = x->def->in[0];
    }
    return match_scores(g, uses, x, m);
}

/* q, k and v as flash_attention takes them (its shape rule, checked here
 * so that a pattern it cannot take is left alone without a diagnostic). */
static bool operands_fit(const Match *m)
{
    const DnShape *q = &m->q->shape, *k = &m->k->shape, *v = &m->v->shape;
    int n = q->rank;
    if (n < 2 || k->rank != n || v->rank != n || !plain_static(q) || !plain_static(k) || !plain_static(v)) return false;
    for (int i = 0; i < n - 2; i++)
        if (q->dim[i] != k->dim[i] || q->dim[i] != v->dim[i]) return false;
    return m->q->dtype == DN_DTYPE_F32 && m->k->dtype == DN_DTYPE_F32 && m->v->dtype == DN_DTYPE_F32;
}

/* The pattern ending at 'out' = matmul(softmax(...), v), into *m. */
static bool match(const DnGraph *g, const int *uses, DnOp *out, Match *m, char *seen)
{
    *m = (Match){.scale = 1.0};
    if (out->kind != DN_OP_MATMUL || dn_op_int(out, "trans_a") || dn_op_int(out, "trans_b")) return false;
    DnValue *w = out->in[0];
    if (!inner(g, uses, w) || w->def->kind != DN_OP_SOFTMAX) return false;
    DnOp *sm = w->def;
    if (dn_op_int(sm, "axis") != w->shape.rank - 1) return false;
    m->v = out->in[1];
    if (!take(m, out) || !take(m, sm)) return false;
    memset(seen, 0, (size_t)g->nvalues);
    return match_logits(g, uses, sm->in[0], &w->shape, m, seen) && operands_fit(m);
}

/* Moves the op just appended to g->ops to position 'at'. */
static void move_last_to(DnGraph *g, int at)
{
    DnOp *op = g->ops.data[g->ops.len - 1];
    memmove(&g->ops.data[at + 1], &g->ops.data[at], sizeof(DnOp *) * (size_t)(g->ops.len - 1 - at));
    g->ops.data[at] = op;
}

static DnStatus rewrite(DnPassCtx *pc, DnGraph *g, int at, const Match *m)
{
    DnOp *out = m->ops[0];
    DnValue *in[4] = {m->q, m->k, m->v, m->bias};
    DnAttr attrs[4] = {dn_attr_float("scale", m->scale), dn_attr_int("causal", m->causal),
                       dn_attr_int("block_q", pc->attention_tile ? pc->attention_tile[0] : 0),
                       dn_attr_int("block_k", pc->attention_tile ? pc->attention_tile[1] : 0)};
    DnOp *fa = dn_build(pc->cx, g, DN_OP_FLASH_ATTENTION, m->bias ? 4 : 3, in, 4, attrs, out->loc);
    if (!fa) return DN_ERR; /* operands_fit held, so this is a compiler bug; the diagnostic says where */
    move_last_to(g, at);
    dn_graph_replace_uses(g, out->out[0], fa->out[0]);
    for (int i = 0; i < m->nops; i++) m->ops[i]->dead = true;
    return DN_OK;
}

DnStatus dn_pass_tile_attention(DnPassCtx *pc, DnGraph *g)
{
    int *uses = NULL;
    char *seen = NULL;
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        Match m;
        if (!uses) { /* (again after a rewrite, which adds values) */
            uses = dn_fill_uses(g, &pc->scratch);
            seen = dn_arena_alloc(&pc->scratch, (size_t)g->nvalues);
        }
        if (op->dead || !match(g, uses, op, &m, seen)) continue;
        if (rewrite(pc, g, i, &m)) return DN_ERR;
        uses = NULL;
        i++; /* past the matmul, now after the new op */
    }
    return DN_OK;
}

/* autodiff.c -- reverse-mode differentiation of a graph from its loss.
 *
 * Run by the training pass.  First a forward sweep marks the values a
 * trainable weight flows into (only those need gradients), then the ops are
 * walked in reverse from the loss (seeded with fill(1.0)) and each op whose
 * results have gradients and whose operands need them runs its gradient
 * rule (grad_rules.c).  Backward ops are appended to the graph, so the
 * topological order holds.  Gradients of a value used several times are
 * summed with add ops.
 */
#include "grad.h"

bool dn_ad_needs(const DnAd *a, const DnValue *v) { return v && v->id < a->nfwd && a->needs[v->id]; }

DnValue *dn_ad_build(DnAd *a, DnOpKind kind, int nin, DnValue **in, int nattrs, const DnAttr *attrs)
{
    for (int i = 0; i < nin; i++)
        if (!in[i]) return NULL;
    return dn_build1(a->cx, a->g, kind, nin, in, nattrs, attrs, a->loc);
}

DnAttr dn_ad_shape_attr(DnAd *a, const char *name, const DnShape *s)
{
    int64_t *d = dn_arena_alloc(&a->g->arena, (size_t)(s->rank + 1) * sizeof *d);
    for (int i = 0; i < s->rank; i++) d[i] = s->dim[i] == DN_DIM_N ? -1 : s->dim[i];
    return dn_attr_ints(name, s->rank, d);
}

void dn_ad_acc(DnAd *a, DnValue *v, DnValue *d)
{
    if (!dn_ad_needs(a, v)) return;
    if (!d) {
        a->failed = true;
        return;
    }
    DnValue *old = a->grad[v->id];
    if (!old) {
        a->grad[v->id] = d;
        return;
    }
    DnValue *in[2] = {old, d};
    a->grad[v->id] = dn_ad_build(a, DN_OP_ADD, 2, in, 0, NULL);
    if (!a->grad[v->id]) a->failed = true;
}

/* Marks every value a trainable weight flows into. */
static void mark_needs(DnAd *a)
{
    DnGraph *g = a->g;
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *p = g->params.data[i];
        if (p->kind == DN_PARAM_WEIGHT && p->trainable && p->dtype == DN_DTYPE_F32) a->needs[p->value->id] = true;
    }
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        bool any = false;
        for (int j = 0; j < op->nin; j++) any |= dn_ad_needs(a, op->in[j]);
        for (int j = 0; j < op->nout; j++)
            if (any && op->out[j]->dtype == DN_DTYPE_F32) a->needs[op->out[j]->id] = true;
    }
}

/* Runs the rule of 'op' if gradients reach its results and operands need
 * them; reports ops without a rule. */
static void visit(DnAd *a, const DnOp *op)
{
    DnValue *dy[DN_MAX_OUTS] = {0};
    bool has_dy = false, wants = false;
    for (int j = 0; j < op->nout && j < DN_MAX_OUTS; j++) {
        if (op->out[j]->id < a->nfwd) dy[j] = a->grad[op->out[j]->id];
        has_dy |= dy[j] != NULL;
    }
    for (int j = 0; j < op->nin; j++) wants |= dn_ad_needs(a, op->in[j]);
    if (!has_dy || !wants) return;
    DnGradRule rule = dn_grad_rules[op->kind];
    if (!rule) {
        dn_error(a->cx, op->loc, "autodiff: no gradient rule for '%s'", dn_op_info[op->kind].name);
        a->failed = true;
        return;
    }
    a->loc = op->loc;
    rule(a, op, dy);
}

DnStatus dn_autodiff(DnCtx *cx, DnGraph *g, DnValue *loss, DnValue **grads)
{
    DnArena scratch = {0};
    DnAd a = {.cx = cx, .g = g, .nfwd = g->nvalues, .loc = loss->loc};
    a.needs = dn_arena_alloc(&scratch, (size_t)(a.nfwd + 1) * sizeof *a.needs);
    a.grad = dn_arena_alloc(&scratch, (size_t)(a.nfwd + 1) * sizeof *a.grad);
    for (int i = 0; i < g->params.len; i++) grads[i] = NULL;
    mark_needs(&a);
    if (dn_ad_needs(&a, loss)) {
        DnAttr at[2] = {dn_attr_float("value", 1.0), dn_attr_ints("shape", 0, NULL)};
        a.grad[loss->id] = dn_build1(cx, g, DN_OP_FILL, 0, NULL, 2, at, loss->loc);
        if (!a.grad[loss->id]) a.failed = true;
        int nops = g->ops.len; /* rules append; walk only the forward ops */
        for (int i = nops - 1; i >= 0 && !a.failed; i--)
            if (!g->ops.data[i]->dead) visit(&a, g->ops.data[i]);
    }
    for (int i = 0; i < g->params.len && !a.failed; i++) {
        const DnParam *p = g->params.data[i];
        if (dn_ad_needs(&a, p->value)) grads[i] = a.grad[p->value->id];
    }
    dn_arena_free(&scratch);
    return a.failed ? DN_ERR : DN_OK;
}

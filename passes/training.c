/* training.c -- turns the frontend's graph into the training-step graph.
 *
 * Runs on the training copy only (pc->training).  Batchnorm switches to
 * batch statistics (batchnorm_train, with the layer's momentum), dn_autodiff
 * differentiates g->loss, and one optimizer update op per parameter with a
 * gradient is appended, with its state tensors (PyTorch's names:
 * optim.<param>.momentum_buffer for SGD, optim.<param>.exp_avg and
 * .exp_avg_sq for Adam) added as DN_PARAM_OPTIM params after the existing
 * ones, so the inference graph's params stay a prefix.  Between the
 * backward ops and the updates, a chain of check_finite guards tests the
 * loss, every gradient an update reads and the running statistics the
 * batchnorm_train ops wrote: a non-finite one stops the step before any
 * update (runtime/run.c restores the statistics).  The only output of the
 * result is "loss".
 * Requires: g->loss and g->optim.  Preserves: params' order, inputs.
 */
#include "passes.h"

/* Rewrites batchnorm 'op' in place into batchnorm_train (two more results). */
static DnStatus to_train_bn(DnPassCtx *pc, DnGraph *g, DnOp *op)
{
    DnAttr at[2] = {dn_attr_float("eps", dn_op_float(op, "eps")),
                    dn_attr_float("momentum", dn_op_float(op, "momentum"))};
    int nattrs;
    DnAttr *attrs = dn_attrs_complete(pc->cx, g, DN_OP_BATCHNORM_TRAIN, op->in, 2, at, op->loc, &nattrs);
    if (!attrs) return DN_ERR;
    DnValue **out = dn_arena_alloc(&g->arena, 4 * sizeof *out);
    out[0] = op->out[0];
    const DnShape *cs = &op->in[1]->shape;
    for (int i = 1; i < 3; i++) {
        out[i] = dn_graph_new_value(g, DN_VAL_OP, DN_DTYPE_F32, cs, op->loc);
        out[i]->def = op;
        out[i]->index = i;
    }
    op->kind = DN_OP_BATCHNORM_TRAIN;
    op->attrs = attrs;
    op->nattrs = nattrs;
    op->out = out;
    op->nout = 3;
    return DN_OK;
}

static DnStatus train_batchnorms(DnPassCtx *pc, DnGraph *g)
{
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (!op->dead && op->kind == DN_OP_BATCHNORM && to_train_bn(pc, g, op)) return DN_ERR;
    }
    return DN_OK;
}

/* Adds the optimizer state tensor optim.<p>.<slot> (zeros); returns its value. */
static DnValue *add_state(DnGraph *g, const DnParam *p, const char *slot)
{
    char *name = dn_arena_printf(&g->arena, "optim.%s.%s", p->name, slot);
    DnInit zeros = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0};
    return dn_graph_add_param(g, name, DN_PARAM_OPTIM, p->dtype, &p->shape, zeros, p->loc)->value;
}

/* Appends the update of params[0..n) that have a gradient. */
static DnStatus add_updates(DnPassCtx *pc, DnGraph *g, int n, DnValue **grads)
{
    const DnOptimSpec *o = g->optim;
    bool adam = o->kind == DN_OP_ADAM_UPDATE;
    DN_ASSERT(adam || o->kind == DN_OP_SGD_UPDATE);
    for (int i = 0; i < n; i++) {
        if (!grads[i]) continue;
        const DnParam *p = g->params.data[i];
        DnValue *in[4] = {p->value, grads[i], NULL, NULL};
        if (adam) {
            in[2] = add_state(g, p, "exp_avg");
            in[3] = add_state(g, p, "exp_avg_sq");
        } else {
            in[2] = add_state(g, p, "momentum_buffer");
        }
        if (!dn_build(pc->cx, g, o->kind, adam ? 4 : 3, in, o->nattrs, o->attrs, o->loc)) return DN_ERR;
    }
    return DN_OK;
}

/* The guards' codes (check_finite, ir/ops.def), as the runtime reads them
 * (DNRT_GUARD_LOSS, DNRT_GUARD_STATE in runtime/include/dnrt.h). */
enum { GUARD_LOSS = 1, GUARD_STATE = 2 };

/* Appends the check_finite chain over the loss, the gradients grads[0..n)
 * that exist and the f32 statistics batchnorm_train writes: the first op
 * takes up to 8 tensors, each next one up to 7 and the flag before it.
 * The state tensor of param i has code GUARD_STATE + i (the training graph
 * is the one whose params the state layout lists). */
static DnStatus add_checks(DnPassCtx *pc, DnGraph *g, int n, DnValue **grads)
{
    int cap = 1 + n + g->params.len, k = 0;
    DnValue **val = dn_arena_alloc(&pc->scratch, sizeof *val * (size_t)cap);
    int64_t *code = dn_arena_alloc(&pc->scratch, sizeof *code * (size_t)cap);
    val[k] = g->loss, code[k++] = GUARD_LOSS;
    for (int i = 0; i < n; i++)
        if (grads[i]) val[k] = grads[i], code[k++] = GUARD_STATE + i;
    bool *seen = dn_arena_alloc(&pc->scratch, sizeof *seen * (size_t)(g->params.len + 1));
    for (int i = 0; i < g->params.len; i++) seen[i] = false;
    for (int o = 0; o < g->ops.len; o++) {
        const DnOp *op = g->ops.data[o];
        if (op->dead || op->kind != DN_OP_BATCHNORM_TRAIN) continue;
        for (int j = 3; j < 5; j++) { /* running_mean, running_var */
            const DnValue *v = op->in[j];
            if (v->kind != DN_VAL_PARAM || v->dtype != DN_DTYPE_F32 || seen[v->index]) continue;
            seen[v->index] = true;
            val[k] = op->in[j], code[k++] = GUARD_STATE + v->index;
        }
    }
    const int most = dn_op_info[DN_OP_CHECK_FINITE].max_in;
    DnValue *flag = NULL;
    for (int at = 0; at < k;) {
        DnValue **in = dn_arena_alloc(&pc->scratch, sizeof *in * (size_t)most);
        int room = most - (flag != NULL), take = k - at < room ? k - at : room;
        for (int j = 0; j < take; j++) in[j] = val[at + j];
        if (flag) in[take] = flag;
        DnAttr codes = dn_attr_ints("codes", take, code + at);
        flag = dn_build1(pc->cx, g, DN_OP_CHECK_FINITE, take + (flag != NULL), in, 1, &codes, g->loss->loc);
        if (!flag) return DN_ERR;
        at += take;
    }
    return DN_OK;
}

DnStatus dn_pass_training(DnPassCtx *pc, DnGraph *g)
{
    if (!pc->training) return DN_OK;
    if (!g->loss || !g->optim) {
        DnLoc none = {0};
        dn_error(pc->cx, g->optim ? g->optim->loc : none, "training: the model has no %s",
                 g->loss ? "optimizer" : "loss");
        return DN_ERR;
    }
    if (train_batchnorms(pc, g)) return DN_ERR;
    int n = g->params.len;
    DnValue **grads = dn_arena_alloc(&pc->scratch, (size_t)(n + 1) * sizeof *grads);
    if (dn_autodiff(pc->cx, g, g->loss, grads)) return DN_ERR;
    if (add_checks(pc, g, n, grads) || add_updates(pc, g, n, grads)) return DN_ERR;
    g->outputs.len = 0;
    g->output_names.len = 0;
    dn_graph_add_output(g, "loss", g->loss);
    return DN_OK;
}

/* inference.c -- turns the frontend's graph into the inference graph.
 * Drops the loss and the optimizer, removes dropout (identity at inference),
 * kills what only the loss needed, then removes the train-only inputs
 * (labels), renumbering the remaining inputs.  Batchnorm is already in its
 * inference form.  Runs on the inference graph only. */
#include "passes.h"

static void remove_dropout(DnGraph *g)
{
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead || op->kind != DN_OP_DROPOUT) continue;
        dn_graph_replace_uses(g, op->out[0], op->in[0]);
        op->dead = true;
    }
}

static DnStatus drop_train_inputs(DnPassCtx *pc, DnGraph *g)
{
    int *uses = dn_fill_uses(g, &pc->scratch);
    int kept = 0;
    for (int i = 0; i < g->inputs.len; i++) {
        DnValue *v = g->inputs.data[i];
        if (v->train_only) {
            if (uses[v->id] > 0) {
                dn_error(pc->cx, v->loc, "train-only input '%s' is used by the model itself", v->name);
                return DN_ERR;
            }
            continue;
        }
        v->index = kept;
        g->inputs.data[kept++] = v;
    }
    g->inputs.len = kept;
    return DN_OK;
}

DnStatus dn_pass_inference(DnPassCtx *pc, DnGraph *g)
{
    if (pc->training) return DN_OK;
    g->loss = NULL;
    g->optim = NULL;
    remove_dropout(g);
    dn_dce(g, &pc->scratch);
    return drop_train_inputs(pc, g);
}

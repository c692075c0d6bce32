/* plan_outputs.c -- the first step of plan-memory: every graph output gets
 * an op of its own that writes it.
 *
 * The plan pins each output to the caller's output buffer through the op
 * result it names; an output that names a graph input (`y = x` in a model,
 * or a dropout the inference pass removed), a parameter (the training
 * graph's loss when it is one), or an op result that an earlier output
 * already names has no such op, and its buffer would never be written.
 * This step gives each of those a `copy` of its value: an input's or a
 * parameter's at the start of the graph (before any op writes a parameter
 * in place: batchnorm_train's running statistics, the optimizer updates),
 * an op result's right after the op.  Afterwards every output is a distinct
 * op result.  It runs in dn_module_plan (passes/pipeline.c) on both graphs
 * whatever the pass list, after every graph pass and before the state
 * layout and the plans; canonicalize keeps such copies when a printed graph
 * is read and compiled again (their operand cannot take the output over),
 * so the step is idempotent.  The loss keeps naming its value.
 * Requires: a verified graph.  Preserves: inputs, parameters, the values
 * every op reads.
 */
#include "passes.h"

/* Whether output 'i' of 'g' needs a copy: its value is not an op result, or
 * an earlier output names the same one. */
static bool needs_copy(const DnGraph *g, int i)
{
    const DnValue *v = g->outputs.data[i];
    if (v->kind != DN_VAL_OP) return true;
    for (int j = 0; j < i; j++)
        if (g->outputs.data[j] == v) return true;
    return false;
}

/* Moves the last op of 'g' to position 'at', after the ops before it. */
static void move_last_to(DnGraph *g, int at)
{
    DnOp *op = g->ops.data[g->ops.len - 1];
    memmove(&g->ops.data[at + 1], &g->ops.data[at], sizeof(DnOp *) * (size_t)(g->ops.len - 1 - at));
    g->ops.data[at] = op;
}

/* Position in g->ops of the op defining 'v'. */
static int def_position(const DnGraph *g, const DnValue *v)
{
    for (int i = 0; i < g->ops.len; i++)
        if (g->ops.data[i] == v->def) return i;
    dn_die(__FILE__, __LINE__, "output value %%%d has no defining op in the graph", v->id);
}

int dn_plan_outputs(DnGraph *g)
{
    int copies = 0, front = 0; /* front: copies placed at the start so far */
    for (int i = 0; i < g->outputs.len; i++) {
        if (!needs_copy(g, i)) continue;
        DnValue *v = g->outputs.data[i];
        int at = v->kind == DN_VAL_OP ? def_position(g, v) + 1 : front++;
        DnCtx cx;
        dn_ctx_init(&cx);
        DnOp *op = dn_build(&cx, g, DN_OP_COPY, 1, &v, 0, NULL, v->loc);
        if (!op) dn_die(__FILE__, __LINE__, "copy of output '%s' rejected by its shape rule", g->output_names.data[i]);
        dn_ctx_free(&cx);
        move_last_to(g, at);
        g->outputs.data[i] = op->out[0];
        copies++;
    }
    for (int i = 0; i < g->ops.len; i++) g->ops.data[i]->id = i;
    return copies;
}

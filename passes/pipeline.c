/* pipeline.c -- dn_compile: clone, run the graph passes, plan the memory.
 *
 * The passes come from passes.def: in table order (minus the disabled
 * optimizations), or as an explicit list.  The pass of kind DEFINE_TRAIN or
 * DEFINE_INFER that makes a copy its graph always runs, first when the list
 * leaves it out.  The plan-memory stage (dn_module_plan) runs once per
 * module, after every graph pass of both graphs: it first gives every
 * output that is not a distinct op result a copy (dn_plan_outputs), then
 * lays out the state and plans both graphs.  Every stage can be printed
 * by name (print_after), and the verifier runs at the end of each graph's
 * pipeline (after every pass with verify_each).
 */
#define _GNU_SOURCE
#include "pipeline.h"

/* The graph passes of an explicit list, parsed once per compile. */
typedef struct PassList {
    const DnPassInfo **rows;
    int n;
} PassList;

static bool prints_after(const DnCompileOptions *o, const DnPassInfo *p)
{
    return o->print_after && (!strcmp(o->print_after, "all") || !strcmp(o->print_after, p->name));
}

static FILE *print_stream(const DnCompileOptions *o) { return o->print_to ? o->print_to : stderr; }

static const char *graph_word(bool training) { return training ? "training" : "inference"; }

static DnStatus run_pass(DnCtx *cx, const DnCompileOptions *o, const DnPassInfo *p, DnGraph *g, bool training)
{
    DnPassCtx pc = {.cx = cx, .training = training, .attention_tile = o->attention_tile};
    DnStatus st = p->fn(&pc, g);
    dn_arena_free(&pc.scratch);
    if (st == DN_OK && o->after_pass) st = o->after_pass(o->after_pass_arg, p, g, training);
    if (st == DN_OK && o->verify_each) st = dn_verify(cx, g);
    if (st == DN_OK && prints_after(o, p)) {
        fprintf(print_stream(o), "// after %s (%s graph)\n", p->name, graph_word(training));
        dn_graph_print(g, print_stream(o));
    }
    return st;
}

/* Parses o->passes into 'l' (rows in 'a'): every name a row of the table,
 * plan-memory only as the last one (and then dropped). */
static DnStatus parse_list(DnCtx *cx, const char *passes, PassList *l, DnArena *a)
{
    char *list = dn_arena_strdup(a, passes);
    l->rows = dn_arena_alloc(a, (strlen(passes) / 2 + 1) * sizeof *l->rows);
    l->n = 0;
    for (char *save, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        const DnPassInfo *p = dn_pass_lookup(name);
        if (!p) {
            dn_error(cx, (DnLoc){0}, "unknown pass '%s' in --passes", name);
            return DN_ERR;
        }
        if (p->kind != DN_PASS_PLAN) {
            l->rows[l->n++] = p;
        } else if (strtok_r(NULL, ",", &save)) {
            dn_error(cx, (DnLoc){0}, "'%s' can only end --passes: the memory plan runs after every graph pass",
                     p->name);
            return DN_ERR;
        }
    }
    return DN_OK;
}

static DnStatus run_list(DnCtx *cx, const DnCompileOptions *o, const PassList *l, DnGraph *g, bool training)
{
    const DnPassInfo *defining = dn_pass_defining(training);
    bool listed = false;
    for (int i = 0; i < l->n; i++) listed |= l->rows[i] == defining;
    if (!listed && run_pass(cx, o, defining, g, training)) return DN_ERR;
    for (int i = 0; i < l->n; i++)
        if (run_pass(cx, o, l->rows[i], g, training)) return DN_ERR;
    return DN_OK;
}

static DnStatus run_table(DnCtx *cx, const DnCompileOptions *o, DnGraph *g, bool training)
{
    for (int i = 0; i < dn_pass_count; i++) {
        const DnPassInfo *p = &dn_pass_table[i];
        if (p->kind == DN_PASS_PLAN || (p->kind == DN_PASS_OPTIMIZATION && o->disabled[i])) continue;
        if (run_pass(cx, o, p, g, training)) return DN_ERR;
    }
    return DN_OK;
}

/* The graph passes on 'g' ('l' when the options list them), then the verifier. */
static DnStatus run_pipeline(DnCtx *cx, const DnCompileOptions *o, const PassList *l, DnGraph *g, bool training)
{
    DnStatus st = l ? run_list(cx, o, l, g, training) : run_table(cx, o, g, training);
    return st == DN_OK ? dn_verify(cx, g) : DN_ERR;
}

DnStatus dn_compile(DnCtx *cx, const DnGraph *g, const DnCompileOptions *o, DnModule *m, DnArena *a)
{
    static const DnCompileOptions defaults = {0};
    if (!o) o = &defaults;
    memset(m, 0, sizeof *m);
    PassList list;
    if (o->passes && parse_list(cx, o->passes, &list, a)) return DN_ERR;
    const PassList *l = o->passes ? &list : NULL;
    m->infer = dn_graph_clone(g);
    m->name = m->infer->name;
    if (run_pipeline(cx, o, l, m->infer, false)) return DN_ERR;
    if (g->loss && !o->no_train) {
        m->train = dn_graph_clone(g);
        if (run_pipeline(cx, o, l, m->train, true)) return DN_ERR;
        m->lr = (float)dn_optim_float(g->optim, "lr");
    }
    dn_module_plan(m, a, o);
    return DN_OK;
}

/* The inference graph's params are a prefix of the state graph's. */
static void check_prefix(const DnModule *m)
{
    const DnGraph *s = m->state_graph;
    for (int i = 0; i < m->infer->params.len; i++)
        if (i >= s->params.len || strcmp(m->infer->params.data[i]->name, s->params.data[i]->name))
            dn_die(__FILE__, __LINE__, "inference parameters are not a prefix of the training parameters");
}

static void print_plan(const DnCompileOptions *o, const DnGraph *g, const DnPlan *p, bool training)
{
    fprintf(print_stream(o), "// after %s (%s graph)\n", dn_pass_table[DN_PASS_ROW_plan_memory].name,
            graph_word(training));
    dn_plan_print(g, p, print_stream(o));
}

void dn_module_plan(DnModule *m, DnArena *a, const DnCompileOptions *o)
{
    dn_plan_outputs(m->infer);
    if (m->train) dn_plan_outputs(m->train);
    m->state_graph = m->train ? m->train : m->infer;
    dn_state_layout(m->state_graph, a, &m->state);
    check_prefix(m);
    DnWorkspaceFn ws = o ? o->workspace : NULL;
    void *ws_data = o ? o->workspace_data : NULL;
    m->infer_plan = dn_plan_memory_ws(m->infer, &m->state, ws, ws_data, a);
    if (m->train) m->train_plan = dn_plan_memory_ws(m->train, &m->state, ws, ws_data, a);
    if (!o || !prints_after(o, &dn_pass_table[DN_PASS_ROW_plan_memory])) return;
    print_plan(o, m->infer, m->infer_plan, false);
    if (m->train) print_plan(o, m->train, m->train_plan, true);
}

void dn_module_free(DnModule *m)
{
    dn_graph_free(m->infer);
    dn_graph_free(m->train);
    memset(m, 0, sizeof *m);
}

/* graph.c -- construction of the graph IR: graphs, inputs, parameters,
 * outputs, values; deep copy; use counts; use replacement; the optimizer
 * spec's attributes.
 *
 * Sits under everything: the frontend builds graphs with these functions
 * (plus dn_build in shape.c), passes rewrite them, backends read them.
 * Everything lives in the graph's own arena; the DnGraph struct itself is
 * the first allocation of that arena.
 */
#include "ir.h"

DnGraph *dn_graph_new(const char *name)
{
    DnArena a = {0};
    DnGraph *g = dn_arena_alloc(&a, sizeof *g);
    g->arena = a;
    g->name = dn_arena_strdup(&g->arena, name ? name : "model");
    return g;
}

void dn_graph_free(DnGraph *g)
{
    if (!g) return;
    DnArena a = g->arena; /* g lives inside 'a': copy before freeing */
    dn_arena_free(&a);
}

/* Returns a copy of 'file' in g's arena, reusing one of the copies the
 * graph's latest op, input or param already holds. */
static const char *intern_file(DnGraph *g, const char *file)
{
    if (!file) return NULL;
    const char *cand[3] = {
        g->ops.len ? g->ops.data[g->ops.len - 1]->loc.file : NULL,
        g->inputs.len ? g->inputs.data[g->inputs.len - 1]->loc.file : NULL,
        g->params.len ? g->params.data[g->params.len - 1]->loc.file : NULL,
    };
    for (int i = 0; i < 3; i++)
        if (cand[i] && (cand[i] == file || strcmp(cand[i], file) == 0)) return cand[i];
    return dn_arena_strdup(&g->arena, file);
}

DnLoc dn_graph_loc(DnGraph *g, DnLoc loc)
{
    loc.file = intern_file(g, loc.file);
    return loc;
}

DnValue *dn_graph_new_value(DnGraph *g, DnValueKind kind, DnDType t, const DnShape *s, DnLoc loc)
{
    DnValue *v = dn_arena_alloc(&g->arena, sizeof *v);
    v->id = g->nvalues++;
    v->kind = kind;
    v->dtype = t;
    if (s) v->shape = *s;
    v->loc = dn_graph_loc(g, loc);
    return v;
}

DnValue *dn_graph_add_input(DnGraph *g, const char *name, DnDType t, const DnShape *s, DnLoc loc)
{
    DnValue *v = dn_graph_new_value(g, DN_VAL_INPUT, t, s, loc);
    v->index = g->inputs.len;
    v->name = dn_arena_strdup(&g->arena, name);
    dn_vec_push(&g->arena, &g->inputs, v);
    return v;
}

DnParam *dn_graph_add_param(DnGraph *g, const char *name, DnParamKind kind, DnDType t, const DnShape *s, DnInit init,
                            DnLoc loc)
{
    DnParam *p = dn_arena_alloc(&g->arena, sizeof *p);
    p->name = dn_arena_strdup(&g->arena, name);
    p->kind = kind;
    p->dtype = t;
    p->shape = *s;
    p->init = init;
    p->trainable = kind == DN_PARAM_WEIGHT;
    p->loc = dn_graph_loc(g, loc);
    p->value = dn_graph_new_value(g, DN_VAL_PARAM, t, s, loc);
    p->value->index = g->params.len;
    p->value->name = p->name;
    dn_vec_push(&g->arena, &g->params, p);
    return p;
}

DnParam *dn_graph_find_param(const DnGraph *g, const char *name)
{
    for (int i = 0; i < g->params.len; i++)
        if (strcmp(g->params.data[i]->name, name) == 0) return g->params.data[i];
    return NULL;
}

void dn_graph_add_output(DnGraph *g, const char *name, DnValue *v)
{
    dn_vec_push(&g->arena, &g->outputs, v);
    dn_vec_push(&g->arena, &g->output_names, dn_arena_strdup(&g->arena, name));
}

DnShape dn_shape_make(int rank, const int64_t *dims)
{
    DnShape s = {0};
    DN_ASSERT(rank >= 0 && rank <= DN_MAX_RANK);
    s.rank = rank;
    for (int i = 0; i < rank; i++) s.dim[i] = dims[i];
    return s;
}

/* ---- clone -------------------------------------------------------------- */

/* Copies 'n' attributes (strings and arrays included) into g's arena. */
static DnAttr *copy_attrs(DnGraph *g, int n, const DnAttr *src)
{
    DnAttr *a = n ? dn_arena_alloc(&g->arena, (size_t)n * sizeof *a) : NULL;
    for (int i = 0; i < n; i++) {
        a[i] = src[i];
        a[i].name = dn_arena_strdup(&g->arena, src[i].name);
        if (src[i].s) a[i].s = dn_arena_strdup(&g->arena, src[i].s);
        if (src[i].nints) {
            a[i].ints = dn_arena_alloc(&g->arena, (size_t)src[i].nints * sizeof(int64_t));
            memcpy(a[i].ints, src[i].ints, (size_t)src[i].nints * sizeof(int64_t));
        }
    }
    return a;
}

/* A copy of value 'v' with the same id, registered in map[id]. */
static DnValue *clone_value(DnGraph *c, const DnValue *v, DnValue **map)
{
    DnValue *n = dn_arena_alloc(&c->arena, sizeof *n);
    *n = *v;
    n->def = NULL;
    n->loc = dn_graph_loc(c, v->loc);
    if (v->name) n->name = dn_arena_strdup(&c->arena, v->name);
    map[v->id] = n;
    return n;
}

static void clone_params(DnGraph *c, const DnGraph *g, DnValue **map)
{
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *p = g->params.data[i];
        DnParam *q = dn_arena_alloc(&c->arena, sizeof *q);
        *q = *p;
        q->loc = dn_graph_loc(c, p->loc);
        q->value = clone_value(c, p->value, map);
        q->name = q->value->name ? q->value->name : dn_arena_strdup(&c->arena, p->name);
        dn_vec_push(&c->arena, &c->params, q);
    }
}

static void clone_ops(DnGraph *c, const DnGraph *g, DnValue **map)
{
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        DnOp *o = dn_arena_alloc(&c->arena, sizeof *o);
        *o = *op;
        o->loc = dn_graph_loc(c, op->loc);
        o->id = c->ops.len;
        o->in = dn_arena_alloc(&c->arena, (size_t)(op->nin + 1) * sizeof *o->in);
        o->out = dn_arena_alloc(&c->arena, (size_t)(op->nout + 1) * sizeof *o->out);
        for (int j = 0; j < op->nin; j++) {
            o->in[j] = map[op->in[j]->id];
            DN_ASSERT(o->in[j]);
        }
        for (int j = 0; j < op->nout; j++) {
            o->out[j] = clone_value(c, op->out[j], map);
            o->out[j]->def = o;
        }
        o->attrs = copy_attrs(c, op->nattrs, op->attrs);
        dn_vec_push(&c->arena, &c->ops, o);
    }
}

DnGraph *dn_graph_clone(const DnGraph *g)
{
    DnGraph *c = dn_graph_new(g->name);
    c->nvalues = g->nvalues;
    DnValue **map = dn_arena_alloc(&c->arena, (size_t)(g->nvalues + 1) * sizeof *map);
    for (int i = 0; i < g->inputs.len; i++) {
        DnValue *v = clone_value(c, g->inputs.data[i], map); /* not inside dn_vec_push: it reads the vector */
        dn_vec_push(&c->arena, &c->inputs, v);
    }
    clone_params(c, g, map);
    clone_ops(c, g, map);
    for (int i = 0; i < g->outputs.len; i++) {
        DN_ASSERT(map[g->outputs.data[i]->id]);
        dn_graph_add_output(c, g->output_names.data[i], map[g->outputs.data[i]->id]);
    }
    if (g->loss) {
        c->loss = map[g->loss->id];
        DN_ASSERT(c->loss);
    }
    if (g->optim) {
        c->optim = dn_arena_alloc(&c->arena, sizeof *c->optim);
        *c->optim = *g->optim;
        c->optim->loc = dn_graph_loc(c, g->optim->loc);
        c->optim->attrs = copy_attrs(c, g->optim->nattrs, g->optim->attrs);
    }
    return c;
}

/* ---- uses --------------------------------------------------------------- */

bool dn_graph_is_output(const DnGraph *g, const DnValue *v)
{
    if (v == g->loss) return true;
    for (int k = 0; k < g->outputs.len; k++)
        if (g->outputs.data[k] == v) return true;
    return false;
}

/* Counts, per value id, the operand slots of live ops that read it, plus one
 * per graph output slot and one when it is the loss (so DCE keeps them). */
int *dn_fill_uses(const DnGraph *g, DnArena *scratch)
{
    int *uses = dn_arena_alloc(scratch, (size_t)(g->nvalues + 1) * sizeof *uses);
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int j = 0; j < op->nin; j++) uses[op->in[j]->id]++;
    }
    for (int i = 0; i < g->outputs.len; i++) uses[g->outputs.data[i]->id]++;
    if (g->loss) uses[g->loss->id]++;
    return uses;
}

/* Rewrites operands of live ops, output slots and the loss; dead ops keep
 * their operands. */
void dn_graph_replace_uses(DnGraph *g, DnValue *from, DnValue *to)
{
    for (int i = 0; i < g->ops.len; i++) {
        DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int j = 0; j < op->nin; j++)
            if (op->in[j] == from) op->in[j] = to;
    }
    for (int i = 0; i < g->outputs.len; i++)
        if (g->outputs.data[i] == from) g->outputs.data[i] = to;
    if (g->loss == from) g->loss = to;
}

/* ---- optimizer spec ------------------------------------------------------ */

double dn_optim_float(const DnOptimSpec *o, const char *name)
{
    DN_ASSERT(o);
    for (int i = 0; i < o->nattrs; i++)
        if (strcmp(o->attrs[i].name, name) == 0 && o->attrs[i].kind == DN_ATTR_FLOAT) return o->attrs[i].f;
    dn_die(__FILE__, __LINE__, "optimizer %s has no float attribute '%s'", dn_op_info[o->kind].name, name);
}

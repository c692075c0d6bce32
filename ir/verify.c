/* verify.c -- the IR verifier: checks the invariants every pass relies on.
 *
 * The driver runs it on the graph it reads (lowered or IR text), at the
 * end of each graph's pass pipeline and, with --verify-each, after every
 * pass.  Checks that values are SSA and defined before use in this graph
 * (ops in topological order), operand and result counts match the op
 * table, attribute lists are complete and typed per the schema, recorded
 * result types equal what the shape rule derives, and inputs, params,
 * outputs and the loss are well-formed.  Problems are diagnostics at the op's location; nothing is
 * modified.
 */
#include "ir.h"

#include <stdlib.h>

typedef struct Verifier {
    DnCtx *cx;
    const DnGraph *g;
    const DnValue **def; /* by value id: the value defined with that id so far, else NULL */
    int nerr;
} Verifier;

static void err(Verifier *v, DnLoc loc, const char *fmt, ...) DN_PRINTF(3, 4);
static void err(Verifier *v, DnLoc loc, const char *fmt, ...)
{
    if (loc.file) loc.file = dn_arena_strdup(&v->cx->arena, loc.file); /* may outlive the graph */
    va_list ap;
    va_start(ap, fmt);
    dn_verror(v->cx, loc, fmt, ap);
    va_end(ap);
    v->nerr++;
}

/* Records the definition of 'x'; reports a bad id or a second definition. */
static void define(Verifier *v, const DnValue *x, DnLoc loc, const char *what)
{
    if (x->id < 0 || x->id >= v->g->nvalues) {
        err(v, loc, "verify: %s has id %d outside [0, %d)", what, x->id, v->g->nvalues);
        return;
    }
    if (v->def[x->id]) err(v, loc, "verify: %s redefines value id %d (not SSA)", what, x->id);
    v->def[x->id] = x;
}

/* True when 'x' is a value of this graph that is already defined. */
static bool defined(Verifier *v, const DnValue *x)
{
    return x && x->id >= 0 && x->id < v->g->nvalues && v->def[x->id] == x;
}

static void too_large(Verifier *v, DnDType t, const DnShape *s, DnLoc loc, const char *name)
{
    char ty[160];
    if (!dn_type_fits(t, s))
        err(v, loc, "'%s' of type %s is larger than the %lld bytes a tensor may hold", name,
            dn_type_str(t, s, ty, sizeof ty), (long long)DN_MAX_TENSOR_BYTES);
}

static void check_inputs_params(Verifier *v)
{
    const DnGraph *g = v->g;
    for (int i = 0; i < g->inputs.len; i++) {
        const DnValue *x = g->inputs.data[i];
        if (x->kind != DN_VAL_INPUT || x->index != i || !x->name)
            err(v, x->loc, "verify: input %d is not a well-formed input value", i);
        define(v, x, x->loc, "an input");
        too_large(v, x->dtype, &x->shape, x->loc, x->name);
    }
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *p = g->params.data[i];
        const DnValue *x = p->value;
        if (!x || x->kind != DN_VAL_PARAM || x->index != i || x->dtype != p->dtype ||
            !dn_shape_eq(&x->shape, &p->shape) || dn_shape_has_n(&p->shape)) {
            err(v, p->loc, "verify: parameter @%s has a malformed value", p->name);
            continue;
        }
        define(v, x, p->loc, "a parameter");
        too_large(v, p->dtype, &p->shape, p->loc, p->name);
    }
}

/* Attribute list: exactly the schema's names, each once, with its kind. */
static void check_attrs(Verifier *v, DnOpKind kind, int nattrs, const DnAttr *attrs, DnLoc loc)
{
    DnAttrSpec spec[DN_MAX_ATTRS];
    int n = dn_op_schema(kind, spec);
    const char *op = dn_op_info[kind].name;
    if (nattrs != n) err(v, loc, "verify: %s has %d attributes, its schema %d", op, nattrs, n);
    for (int j = 0; j < n; j++) {
        int found = 0;
        for (int i = 0; i < nattrs; i++)
            if (!strcmp(attrs[i].name, spec[j].name)) {
                found++;
                if (attrs[i].kind != spec[j].kind)
                    err(v, loc, "verify: %s attribute '%s' is not of kind %s", op, spec[j].name,
                        dn_attr_kind_name(spec[j].kind));
            }
        if (found != 1) err(v, loc, "verify: %s attribute '%s' appears %d times", op, spec[j].name, found);
    }
}

/* Operands defined; counts per the table.  Returns false when the shape
 * rule cannot safely run. */
static bool check_operands(Verifier *v, const DnOp *op)
{
    const DnOpInfo *info = &dn_op_info[op->kind];
    bool ok = true;
    if (op->nin < info->min_in || op->nin > info->max_in || op->nout != info->nout) {
        err(v, op->loc, "verify: %s has %d operands and %d results; expected %d..%d and %d", info->name, op->nin,
            op->nout, info->min_in, info->max_in, info->nout);
        return false;
    }
    for (int i = 0; i < op->nin; i++)
        if (!defined(v, op->in[i])) {
            err(v, op->loc,
                "verify: operand %d of %s (value id %d) is used before it is defined, or is not in this graph", i,
                info->name, op->in[i] ? op->in[i]->id : -1);
            ok = false;
        }
    return ok;
}

static void check_results(Verifier *v, const DnOp *op)
{
    DnDType dt[DN_MAX_OUTS];
    DnShape sh[DN_MAX_OUTS];
    const char *name = dn_op_info[op->kind].name;
    bool inferred = dn_infer_shapes(v->cx, op, dt, sh) == DN_OK;
    if (!inferred) v->nerr++;
    for (int i = 0; i < op->nout; i++) {
        const DnValue *x = op->out[i];
        if (!x || x->kind != DN_VAL_OP || x->def != op || x->index != i) {
            err(v, op->loc, "verify: result %d of %s is not linked to its op", i, name);
            continue;
        }
        char a[96], b[96];
        if (inferred && (x->dtype != dt[i] || !dn_shape_eq(&x->shape, &sh[i])))
            err(v, op->loc, "verify: result %d of %s is recorded as %s but its shape rule gives %s", i, name,
                dn_type_str(x->dtype, &x->shape, a, sizeof a), dn_type_str(dt[i], &sh[i], b, sizeof b));
        define(v, x, op->loc, "an op result");
    }
}

static void check_ops(Verifier *v)
{
    for (int i = 0; i < v->g->ops.len; i++) {
        const DnOp *op = v->g->ops.data[i];
        if (op->dead) continue;
        if (op->kind < 0 || op->kind >= DN_OP_COUNT) {
            err(v, op->loc, "verify: op %d has an invalid kind %d", i, (int)op->kind);
            continue;
        }
        int before = v->nerr;
        check_attrs(v, op->kind, op->nattrs, op->attrs, op->loc);
        if (check_operands(v, op) && v->nerr == before)
            check_results(v, op);
        else
            for (int j = 0; j < op->nout && op->nout == dn_op_info[op->kind].nout; j++)
                if (op->out[j]) define(v, op->out[j], op->loc, "an op result");
    }
}

static void check_outputs(Verifier *v)
{
    const DnGraph *g = v->g;
    DnLoc none = {0};
    if (g->output_names.len != g->outputs.len)
        err(v, none, "verify: %d outputs but %d output names", g->outputs.len, g->output_names.len);
    for (int i = 0; i < g->outputs.len; i++)
        if (!defined(v, g->outputs.data[i]))
            err(v, none, "verify: output '%s' is not a defined value of this graph",
                i < g->output_names.len ? g->output_names.data[i] : "?");
    if (g->loss && !defined(v, g->loss)) err(v, none, "verify: the loss is not a defined value of this graph");
    if (g->loss && (g->loss->dtype != DN_DTYPE_F32 || g->loss->shape.rank != 0))
        err(v, g->loss->loc, "verify: the loss must be an f32[] scalar");
    if (g->optim) {
        if (g->optim->kind != DN_OP_SGD_UPDATE && g->optim->kind != DN_OP_ADAM_UPDATE)
            err(v, g->optim->loc, "verify: the optimizer must be sgd_update or adam_update");
        else
            check_attrs(v, g->optim->kind, g->optim->nattrs, g->optim->attrs, g->optim->loc);
    }
}

DnStatus dn_verify(DnCtx *cx, const DnGraph *g)
{
    Verifier v = {cx, g, calloc((size_t)g->nvalues + 1, sizeof(DnValue *)), 0};
    if (!v.def) dn_die(__FILE__, __LINE__, "out of memory");
    check_inputs_params(&v);
    check_ops(&v);
    check_outputs(&v);
    free(v.def);
    return v.nerr ? DN_ERR : DN_OK;
}

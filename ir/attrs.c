/* attrs.c -- op attributes: schemas (parsed from ops.def), constructors,
 * accessors, and completion of a user's attribute list with defaults.
 *
 * Used by the builder (shape.c) and the IR reader before an op exists, by
 * the frontend for the optimizer spec, and by every later stage through the
 * accessors.  A completed list holds exactly the schema's attributes, in
 * schema order, with the schema's kinds.
 */
#include "ir.h"

const char *dn_attr_kind_name(DnAttrKind k)
{
    static const char *names[] = {"int", "ints", "float", "str"};
    return (unsigned)k < 4 ? names[k] : "?";
}

int dn_op_schema(DnOpKind kind, DnAttrSpec *out)
{
    DN_ASSERT(kind >= 0 && kind < DN_OP_COUNT);
    const char *p = dn_op_info[kind].attrs;
    int n = 0;
    while (*p) {
        while (*p == ' ') p++;
        if (!*p) break;
        const char *colon = strchr(p, ':');
        DN_ASSERT(colon && colon - p < (int)sizeof out->name && n < DN_MAX_ATTRS);
        const char *end = colon + strcspn(colon, " ");
        memcpy(out[n].name, p, (size_t)(colon - p));
        out[n].name[colon - p] = 0;
        size_t klen = (size_t)(end - colon - 1);
        DnAttrKind k = DN_ATTR_INT;
        for (int j = 0; j < 4; j++)
            if (strlen(dn_attr_kind_name((DnAttrKind)j)) == klen &&
                strncmp(colon + 1, dn_attr_kind_name((DnAttrKind)j), klen) == 0)
                k = (DnAttrKind)j;
        out[n++].kind = k;
        p = end;
    }
    return n;
}

/* ---- constructors and accessors ------------------------------------------ */

DnAttr dn_attr_int(const char *name, int64_t v) { return (DnAttr){.name = name, .kind = DN_ATTR_INT, .i = v}; }
DnAttr dn_attr_float(const char *name, double v) { return (DnAttr){.name = name, .kind = DN_ATTR_FLOAT, .f = v}; }
DnAttr dn_attr_str(const char *name, const char *s) { return (DnAttr){.name = name, .kind = DN_ATTR_STR, .s = s}; }

DnAttr dn_attr_ints(const char *name, int n, const int64_t *v)
{
    return (DnAttr){.name = name, .kind = DN_ATTR_INTS, .nints = n, .ints = (int64_t *)v};
}

const DnAttr *dn_op_attr(const DnOp *op, const char *name)
{
    for (int i = 0; i < op->nattrs; i++)
        if (strcmp(op->attrs[i].name, name) == 0) return &op->attrs[i];
    return NULL;
}

/* The attribute 'name' of 'op' with kind 'k'; a bug (dn_die) otherwise. */
static const DnAttr *need(const DnOp *op, const char *name, DnAttrKind k)
{
    const DnAttr *a = dn_op_attr(op, name);
    if (!a || a->kind != k)
        dn_die(__FILE__, __LINE__, "%s has no %s attribute '%s'", dn_op_info[op->kind].name, dn_attr_kind_name(k),
               name);
    return a;
}

int64_t dn_op_int(const DnOp *op, const char *name) { return need(op, name, DN_ATTR_INT)->i; }
double dn_op_float(const DnOp *op, const char *name) { return need(op, name, DN_ATTR_FLOAT)->f; }
const char *dn_op_str(const DnOp *op, const char *name) { return need(op, name, DN_ATTR_STR)->s; }

const int64_t *dn_op_ints(const DnOp *op, const char *name, int *n)
{
    const DnAttr *a = need(op, name, DN_ATTR_INTS);
    if (n) *n = a->nints;
    return a->ints;
}

/* ---- defaults ------------------------------------------------------------
 * First matching row wins; op DN_OP_COUNT matches any op.  The value is
 * read per the schema's kind: int -> (int64_t)v, float -> v, ints -> [v, v],
 * str -> s.  Attributes without a row are required.  Two defaults depend on
 * other things and live in code: pool 'stride' (= kernel) and 'axis'
 * (= last axis of the first operand). */
static const struct {
    DnOpKind op;
    const char *name;
    double v;
    const char *s;
} defaults[] = {
    {DN_OP_ADAM_UPDATE, "eps", 1e-8, NULL},
    {DN_OP_ADAM_UPDATE, "lr", 1e-3, NULL},
    {DN_OP_BATCHNORM_TRAIN, "momentum", 0.1, NULL},
    {DN_OP_BATCHNORM, "momentum", 0.1, NULL},
    {DN_OP_RANDOM_RESIZED_CROP, "scale_min", 0.08, NULL},
    {DN_OP_RANDOM_RESIZED_CROP, "scale_max", 1.0, NULL},
    {DN_OP_RANDOM_RESIZED_CROP, "ratio_min", 3.0 / 4.0, NULL},
    {DN_OP_RANDOM_RESIZED_CROP, "ratio_max", 4.0 / 3.0, NULL},
    {DN_OP_COLOR_JITTER, "brightness", 0, NULL},
    {DN_OP_COLOR_JITTER, "contrast", 0, NULL},
    {DN_OP_PCA_LIGHTING, "std", 0.1, NULL},
    {DN_OP_PCA_LIGHTING, "eigval0", 0.2175, NULL}, /* ImageNet's, as AlexNet-style code uses */
    {DN_OP_PCA_LIGHTING, "eigval1", 0.0188, NULL},
    {DN_OP_PCA_LIGHTING, "eigval2", 0.0045, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec00", -0.5675, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec01", 0.7192, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec02", 0.4009, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec10", -0.5808, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec11", -0.0045, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec12", -0.8140, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec20", -0.5836, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec21", -0.6948, NULL},
    {DN_OP_PCA_LIGHTING, "eigvec22", 0.4203, NULL},
    {DN_OP_COUNT, "stride", 1, NULL},
    {DN_OP_COUNT, "pad", 0, NULL},
    {DN_OP_COUNT, "dilation", 1, NULL},
    {DN_OP_COUNT, "groups", 1, NULL},
    {DN_OP_COUNT, "act", 0, "none"},
    {DN_OP_COUNT, "trans_a", 0, NULL},
    {DN_OP_COUNT, "trans_b", 0, NULL},
    {DN_OP_COUNT, "p", 0.5, NULL},
    {DN_OP_COUNT, "salt", 0, NULL},
    {DN_OP_COUNT, "eps", 1e-5, NULL},
    {DN_OP_COUNT, "momentum", 0, NULL},
    {DN_OP_COUNT, "smoothing", 0, NULL},
    {DN_OP_COUNT, "dampening", 0, NULL},
    {DN_OP_COUNT, "nesterov", 0, NULL},
    {DN_OP_COUNT, "weight_decay", 0, NULL},
    {DN_OP_COUNT, "beta1", 0.9, NULL},
    {DN_OP_COUNT, "beta2", 0.999, NULL},
    {DN_OP_COUNT, "decoupled", 0, NULL},
    {DN_OP_COUNT, "sched", 0, "const"},
    {DN_OP_COUNT, "step_size", 1, NULL},
    {DN_OP_COUNT, "gamma", 1, NULL},
    {DN_OP_COUNT, "total_steps", 1, NULL},
    {DN_OP_COUNT, "warmup", 0, NULL},
    {DN_OP_COUNT, "min_lr", 0, NULL},
};

/* See ir.h. */
bool dn_attr_is_window(const char *name)
{
    return !strcmp(name, "stride") || !strcmp(name, "pad") || !strcmp(name, "dilation") || !strcmp(name, "kernel");
}

static bool is_pool(DnOpKind k)
{
    return k == DN_OP_MAXPOOL2D || k == DN_OP_AVGPOOL2D || k == DN_OP_MAXPOOL2D_BWD || k == DN_OP_AVGPOOL2D_BWD;
}

static int64_t *ints_dup(DnGraph *g, int n, const int64_t *v)
{
    int64_t *d = dn_arena_alloc(&g->arena, (size_t)(n ? n : 1) * sizeof *d);
    if (n) memcpy(d, v, (size_t)n * sizeof *d);
    return d;
}

/* Fills 'out' (schema kind already set) with the default of attribute
 * 'out->name' of 'kind'; false when it has none. */
static bool fill_default(DnGraph *g, DnOpKind kind, DnValue *const *in, const DnAttr *done, int ndone, DnAttr *out)
{
    if (!strcmp(out->name, "stride") && is_pool(kind)) {
        for (int i = 0; i < ndone; i++)
            if (!strcmp(done[i].name, "kernel")) {
                out->nints = done[i].nints;
                out->ints = ints_dup(g, done[i].nints, done[i].ints);
                return true;
            }
        return false;
    }
    if (!strcmp(out->name, "axis")) {
        out->i = in && in[0] ? in[0]->shape.rank - 1 : -1;
        return true;
    }
    for (size_t r = 0; r < sizeof defaults / sizeof defaults[0]; r++) {
        if ((defaults[r].op != kind && defaults[r].op != DN_OP_COUNT) || strcmp(defaults[r].name, out->name)) continue;
        switch (out->kind) {
        case DN_ATTR_INT: out->i = (int64_t)defaults[r].v; break;
        case DN_ATTR_FLOAT: out->f = defaults[r].v; break;
        case DN_ATTR_STR: out->s = defaults[r].s; break;
        case DN_ATTR_INTS:
            out->nints = 2;
            out->ints = ints_dup(g, 2, (int64_t[]){(int64_t)defaults[r].v, (int64_t)defaults[r].v});
            break;
        }
        return true;
    }
    return false;
}

static const char *kind_phrase(DnAttrKind k)
{
    static const char *p[] = {"an int", "a list of ints", "a float", "a string"};
    return p[k];
}

/* Converts given attribute 'a' to the schema's kind into 'out'. */
static bool convert(DnCtx *cx, DnGraph *g, DnOpKind kind, const DnAttr *a, DnAttr *out, DnLoc loc)
{
    const char *op = dn_op_info[kind].name;
    if (a->kind == out->kind) {
        out->i = a->i;
        out->f = a->f;
        out->nints = a->nints;
        if (a->kind == DN_ATTR_INTS) out->ints = ints_dup(g, a->nints, a->ints);
        if (a->kind == DN_ATTR_STR) out->s = dn_arena_strdup(&g->arena, a->s ? a->s : "");
    } else if (a->kind == DN_ATTR_INT && out->kind == DN_ATTR_FLOAT) {
        out->f = (double)a->i;
    } else if (a->kind == DN_ATTR_INT && out->kind == DN_ATTR_INTS) {
        out->nints = 1;
        out->ints = ints_dup(g, 1, &a->i);
    } else {
        dn_error(cx, loc, "%s: attribute '%s' must be %s, got %s", op, out->name, kind_phrase(out->kind),
                 kind_phrase(a->kind));
        return false;
    }
    if (out->kind == DN_ATTR_INTS && dn_attr_is_window(out->name)) {
        if (out->nints == 1)
            out->ints = ints_dup(g, 2, (int64_t[]){out->ints[0], out->ints[0]});
        else if (out->nints != 2) {
            dn_error(cx, loc, "%s: attribute '%s' needs 1 or 2 values, got %d", op, out->name, out->nints);
            return false;
        }
        out->nints = 2;
    }
    return true;
}

/* Checks that every given attribute is in the schema, and given once. */
static bool check_names(DnCtx *cx, DnOpKind kind, const DnAttrSpec *spec, int nspec, int nattrs, const DnAttr *attrs,
                        DnLoc loc)
{
    bool ok = true;
    for (int i = 0; i < nattrs; i++) {
        int found = 0;
        for (int j = 0; j < nspec; j++) found |= !strcmp(spec[j].name, attrs[i].name);
        if (!found) {
            dn_error(cx, loc, "%s: unknown attribute '%s'", dn_op_info[kind].name, attrs[i].name);
            ok = false;
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(attrs[j].name, attrs[i].name)) {
                dn_error(cx, loc, "%s: attribute '%s' given twice", dn_op_info[kind].name, attrs[i].name);
                ok = false;
            }
    }
    return ok;
}

DnAttr *dn_attrs_complete(DnCtx *cx, DnGraph *g, DnOpKind kind, DnValue *const *in, int nattrs, const DnAttr *attrs,
                          DnLoc loc, int *nout)
{
    DnAttrSpec spec[DN_MAX_ATTRS];
    int nspec = dn_op_schema(kind, spec);
    if (!check_names(cx, kind, spec, nspec, nattrs, attrs, loc)) return NULL;
    DnAttr *out = dn_arena_alloc(&g->arena, (size_t)(nspec ? nspec : 1) * sizeof *out);
    bool ok = true;
    for (int j = 0; j < nspec; j++) {
        out[j].name = dn_arena_strdup(&g->arena, spec[j].name);
        out[j].kind = spec[j].kind;
        const DnAttr *given = NULL;
        for (int i = 0; i < nattrs; i++)
            if (!strcmp(attrs[i].name, spec[j].name)) given = &attrs[i];
        if (given)
            ok &= convert(cx, g, kind, given, &out[j], loc);
        else if (!fill_default(g, kind, in, out, j, &out[j])) {
            dn_error(cx, loc, "%s: missing attribute '%s'", dn_op_info[kind].name, spec[j].name);
            ok = false;
        }
        if (!strcmp(spec[j].name, "axis") && given && in && in[0] && out[j].i < 0)
            out[j].i += in[0]->shape.rank; /* axis -1 = last */
    }
    *nout = nspec;
    return ok ? out : NULL;
}

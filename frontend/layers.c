/* layers.c -- the layer table: every layer and tensor function the language
 * lowers, as one row each (name, tensor operand count, argument schema,
 * whether it owns parameters, builder), plus argument binding.
 *
 * Part of lowering (lower.c calls dn_layer_call).  A builder receives its
 * tensor operands and its bound arguments, creates its parameters with
 * PyTorch's names, shapes and default initializers under the layer's name
 * ("conv1" -> "conv1.weight") and appends ops through dn_build, whose shape
 * diagnostics carry the call's location.  Adding a layer = one row + one
 * builder.  Names in 'unsupported' parse but are rejected at lowering.
 * An argument that the builder forwards as an op attribute is a bare name
 * in the row's schema ("stride"): its kind and default are the op's, from
 * ops.def, written once.  Layer-only arguments (conv2d's out and kernel,
 * bias, flatten's from) spell out name:kind=default here; an optional
 * tensor operand is name:tensor=none (attention's values and mask).
 */
#include "ast.h"

#include <math.h>
#include <stdlib.h>

typedef DnValue *(*LayerFn)(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);
typedef Val (*ListFn)(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a);

struct LayerInfo {
    const char *name;
    int ntensor;        /* leading positional tensor operands */
    const char *schema; /* of the arguments after the tensors: see dn_bind_op_args */
    bool has_params;    /* gets an automatic name when unlabelled */
    LayerFn fn;
    DnOpKind op; /* for the generic builders */
};

enum { MAX_ARGS = 20 };

/* ---- argument binding ------------------------------------------------------ */

typedef struct Spec {
    char name[32], kind[8], def[32];
    bool has_def;
    bool ref; /* has_def: 'def' names an earlier argument, whose value is the default */
} Spec;

/* Fills 's' from attribute 'name' of op 'op': its kind and default as
 * ops.def gives them.  An op without that attribute is a bug in a schema.
 * Not inlined: its table would stay on the stack while keyword arguments,
 * which may nest, are lowered. */
__attribute__((noinline)) static void from_op(DnOpKind op, const char *name, Spec *s)
{
    DN_ASSERT(op >= 0 && op < DN_OP_COUNT);
    DnAttrSpec spec[DN_MAX_ATTRS];
    int n = dn_op_schema(op, spec);
    for (int i = 0; i < n; i++)
        if (!strcmp(spec[i].name, name)) {
            snprintf(s->kind, sizeof s->kind, "%s", dn_attr_kind_name(spec[i].kind));
            snprintf(s->def, sizeof s->def, "%s", spec[i].def);
            s->has_def = spec[i].has_default;
            s->ref = spec[i].ref >= 0;
            return;
        }
    dn_die(__FILE__, __LINE__, "argument schema: %s has no attribute '%s'", dn_op_info[op].name, name);
}

/* Splits "name:kind[=default] ..." into 'sp'; an entry that is a bare name
 * is attribute 'name' of 'op'.  Returns the count. */
static int parse_schema(const char *schema, DnOpKind op, Spec *sp)
{
    int n = 0;
    while (*schema && n < MAX_ARGS) {
        while (*schema == ' ') schema++;
        if (!*schema) break;
        Spec *s = &sp[n++];
        memset(s, 0, sizeof *s);
        int len = 0;
        while (*schema && *schema != ':' && *schema != ' ' && len < 31) s->name[len++] = *schema++;
        if (*schema != ':') {
            from_op(op, s->name, s);
            continue;
        }
        schema++;
        len = 0;
        while (*schema && *schema != '=' && *schema != ' ' && len < 7) s->kind[len++] = *schema++;
        if (*schema == '=') {
            schema++;
            s->has_def = true;
            len = 0;
            while (*schema && *schema != ' ' && len < 31) s->def[len++] = *schema++;
        }
    }
    while (*schema == ' ') schema++;
    DN_ASSERT(!*schema); /* more than MAX_ARGS entries: raise it */
    return n;
}

/* The literal default of 's' (not a reference to another argument). */
static Val default_val(Lower *L, const Spec *s)
{
    if (!strcmp(s->def, "true") || !strcmp(s->def, "false")) return (Val){.kind = VAL_BOOL, .i = s->def[0] == 't'};
    if (!strcmp(s->kind, "float")) return (Val){.kind = VAL_FLOAT, .f = strtod(s->def, NULL)};
    if (!strcmp(s->kind, "str")) return (Val){.kind = VAL_STR, .s = dn_arena_strdup(L->a, s->def)};
    if (!strcmp(s->kind, "tensor")) return (Val){.kind = VAL_NONE}; /* "=none": an optional tensor */
    return (Val){.kind = VAL_INT, .i = strtoll(s->def, NULL, 10)};
}

/* Converts 'v' to the spec's kind in place; false when it does not fit. */
static bool coerce(Lower *L, const Spec *s, Val *v)
{
    if (v->kind == VAL_NONE) return true;
    const char *k = s->kind;
    if (!strcmp(k, "float") && v->kind == VAL_INT) *v = (Val){.kind = VAL_FLOAT, .f = (double)v->i};
    if (!strcmp(k, "float")) return v->kind == VAL_FLOAT;
    if (!strcmp(k, "int") || !strcmp(k, "len")) return v->kind == VAL_INT;
    if (!strcmp(k, "bool")) return v->kind == VAL_BOOL;
    if (!strcmp(k, "str")) return v->kind == VAL_STR;
    if (!strcmp(k, "tensor")) return v->kind == VAL_TENSOR;
    if (!strcmp(k, "tensors")) { /* a list of tensors (concat, stack) */
        if (v->kind != VAL_LIST || v->n == 0) return false;
        for (int i = 0; i < v->n; i++)
            if (v->items[i].kind != VAL_TENSOR) return false;
        return true;
    }
    /* ints: an int or a list of ints */
    if (v->kind == VAL_INT) {
        Val *it = dn_arena_alloc(L->a, sizeof *it);
        *it = *v;
        *v = (Val){.kind = VAL_LIST, .n = 1, .items = it};
    }
    if (v->kind != VAL_LIST) return false;
    for (int i = 0; i < v->n; i++)
        if (v->items[i].kind != VAL_INT) return false;
    return true;
}

static const char *kind_phrase(const char *k)
{
    if (!strcmp(k, "tensors")) return "a list of tensors";
    if (!strcmp(k, "tensor")) return "a tensor";
    return !strcmp(k, "int")     ? "an int"
           : !strcmp(k, "len")   ? "an int or T"
           : !strcmp(k, "float") ? "a number"
           : !strcmp(k, "bool")  ? "a bool"
           : !strcmp(k, "str")   ? "a string"
                                 : "an int or a list of ints";
}

/* Binds keyword argument 'a' (evaluated in 'sc') into its schema slot. */
static bool bind_keyword(Lower *L, Scope *sc, const char *what, const Spec *sp, int nsp, const AstArg *a, Val *out,
                         bool *given)
{
    int j = 0;
    while (j < nsp && strcmp(sp[j].name, a->name)) j++;
    if (j == nsp) {
        dn_error(L->cx, a->loc, "unknown keyword argument '%s' for %s", a->name, what);
        return false;
    }
    if (given[j]) {
        dn_error(L->cx, a->loc, "argument '%s' of %s is given twice", a->name, what);
        return false;
    }
    given[j] = true;
    if (!strcmp(sp[j].kind, "len") && a->value->kind == EXPR_NAME && !strcmp(a->value->s, "T") && L->seq_bound &&
        !dn_scope_find(sc, "T")) /* the run-time sequence axis, as the dim it stands for */
        out[j] = (Val){.kind = VAL_INT, .i = DN_DIM_SEQ(L->seq_bound)};
    else
        out[j] = dn_lower_expr(L, sc, a->value);
    if (out[j].kind == VAL_POISON) return false;
    if (coerce(L, &sp[j], &out[j])) return true;
    dn_error(L->cx, a->value->loc, "argument '%s' of %s must be %s, got %s", a->name, what, kind_phrase(sp[j].kind),
             dn_val_kind_name(out[j].kind));
    return false;
}

/* Positional arguments of 'call' after 'skip' tensor operands, in order. */
static const AstArg *nth_positional(const AstExpr *call, int n)
{
    for (int i = 0; i < call->args.len; i++)
        if (!call->args.data[i].name && n-- == 0) return &call->args.data[i];
    return NULL;
}

/* Fills every argument not given with its default; reports a missing one. */
static bool fill_defaults(Lower *L, const char *what, const AstExpr *call, const Spec *sp, int nsp, const bool *given,
                          Val *out)
{
    for (int i = 0; i < nsp; i++) {
        if (given[i]) continue;
        if (!sp[i].has_def) {
            dn_error(L->cx, call->loc, "missing argument '%s' for %s", sp[i].name, what);
            return false;
        }
        if (sp[i].ref) { /* "stride=kernel": the value bound to an earlier argument */
            int j = 0;
            while (j < i && strcmp(sp[j].name, sp[i].def)) j++;
            DN_ASSERT(j < i);
            out[i] = out[j];
            continue;
        }
        out[i] = default_val(L, &sp[i]);
        coerce(L, &sp[i], &out[i]);
    }
    return true;
}

bool dn_bind_args(Lower *L, Scope *sc, const char *what, const char *schema, const AstExpr *call, const Val *pos,
                  int npos, Val *out, int nout)
{
    return dn_bind_op_args(L, sc, what, DN_OP_COUNT, schema, call, pos, npos, out, nout);
}

bool dn_bind_op_args(Lower *L, Scope *sc, const char *what, DnOpKind op, const char *schema, const AstExpr *call,
                     const Val *pos, int npos, Val *out, int nout)
{
    Spec sp[MAX_ARGS];
    int nsp = parse_schema(schema, op, sp);
    DN_ASSERT(nsp <= nout);
    bool given[MAX_ARGS] = {0}, ok = true;
    int first = 0; /* index of pos[0] among the call's positionals */
    for (int i = 0; i < call->args.len; i++)
        if (!call->args.data[i].name) first++;
    first -= npos;
    if (npos > nsp) {
        const AstArg *a = nth_positional(call, first + nsp);
        dn_error(L->cx, a ? a->loc : call->loc, "too many arguments for %s (at most %d after its inputs)", what, nsp);
        return false;
    }
    for (int i = 0; i < npos; i++) {
        out[i] = pos[i];
        given[i] = true;
        if (out[i].kind == VAL_POISON)
            ok = false;
        else if (!coerce(L, &sp[i], &out[i])) {
            const AstArg *a = nth_positional(call, first + i);
            dn_error(L->cx, a ? a->value->loc : call->loc, "argument '%s' of %s must be %s, got %s", sp[i].name, what,
                     kind_phrase(sp[i].kind), dn_val_kind_name(pos[i].kind));
            ok = false;
        }
    }
    for (int i = 0; i < call->args.len; i++)
        if (call->args.data[i].name) ok &= bind_keyword(L, sc, what, sp, nsp, &call->args.data[i], out, given);
    return ok && fill_defaults(L, what, call, sp, nsp, given, out);
}

/* ---- helpers for builders ------------------------------------------------- */

static char *tstr(const DnValue *v, char *buf) { return dn_type_str(v->dtype, &v->shape, buf, 96); }

/* A 2-axis int pair from an 'ints' argument: one int for both axes or two. */
static bool pair(Lower *L, const AstExpr *e, const char *what, Val v, int64_t out[2], int64_t min)
{
    if (v.kind != VAL_LIST || (v.n != 1 && v.n != 2)) {
        dn_error(L->cx, e->loc, "%s of %s must be an int or a list of 2 ints", what, e->s);
        return false;
    }
    out[0] = v.items[0].i;
    out[1] = v.items[v.n - 1].i;
    if (out[0] < min || out[1] < min || out[0] > DN_MAX_WINDOW || out[1] > DN_MAX_WINDOW) {
        dn_error(L->cx, e->loc, "%s of %s must be between %lld and %lld", what, e->s, (long long)min,
                 (long long)DN_MAX_WINDOW);
        return false;
    }
    return true;
}

static DnValue *param(Lower *L, const char *layer, const char *leaf, DnParamKind k, DnDType t, int rank,
                      const int64_t *dims, DnInit init, DnLoc loc)
{
    const char *name = dn_arena_printf(L->a, "%s.%s", layer, leaf);
    if (dn_lower_find_param(L, name)) {
        dn_error(L->cx, loc, "duplicate parameter name '%s' (label the layers, blocks or repeats apart)", name);
        return NULL;
    }
    DnShape s = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        if (dims[i] <= 0 || dims[i] > ((int64_t)1 << 40)) {
            dn_error(L->cx, loc, "parameter '%s' would have an invalid dimension %lld", name, (long long)dims[i]);
            return NULL;
        }
        s.dim[i] = dims[i];
    }
    if (!dn_lower_check_size(L, t, &s, loc, name)) return NULL;
    return dn_lower_add_param(L, name, k, t, &s, init, loc)->value;
}

DnValue *dn_layer_param(Lower *L, const char *layer, const char *leaf, int rank, const int64_t *dims, DnInit init,
                        DnLoc loc)
{
    return param(L, layer, leaf, DN_PARAM_WEIGHT, DN_DTYPE_F32, rank, dims, init, loc);
}

static DnInit kaiming(double fan_in)
{
    double b = 1.0 / sqrt(fan_in > 0 ? fan_in : 1);
    return (DnInit){.kind = DN_INIT_UNIFORM, .a = -b, .b = b};
}

DnInit dn_layer_kaiming(double fan_in) { return kaiming(fan_in); }

/* Static size of axis 'ax' of 'x', or 0 when x is too small or the axis is N. */
static int64_t static_dim(const DnValue *x, int ax)
{
    if (ax < 0) ax += x->shape.rank;
    if (ax < 0 || ax >= x->shape.rank || x->shape.dim[ax] == DN_DIM_N) return 0;
    return x->shape.dim[ax];
}

/* ---- builders --------------------------------------------------------------- */

/* conv2d(out, kernel, stride=1, pad=0, dilation=1, groups=1, bias=true) */
static DnValue *build_conv2d(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    int64_t k[2], s[2], p[2], d[2], groups = a[5].i, out = a[0].i;
    if (!pair(L, e, "kernel", a[1], k, 1) || !pair(L, e, "stride", a[2], s, 1) || !pair(L, e, "pad", a[3], p, 0) ||
        !pair(L, e, "dilation", a[4], d, 1))
        return NULL;
    int64_t in = x[0]->shape.rank == 4 ? static_dim(x[0], 1) : 1;
    if (groups < 1 || out < 1 || (in && in % groups) || out % groups) {
        dn_error(L->cx, e->loc,
                 "conv2d: input channels (%lld) and out (%lld) must be positive multiples of groups (%lld)",
                 (long long)in, (long long)out, (long long)groups);
        return NULL;
    }
    int64_t wd[4] = {out, in / groups, k[0], k[1]};
    DnValue *in3[3] = {x[0], param(L, name, "weight", DN_PARAM_WEIGHT, DN_DTYPE_F32, 4, wd,
                                   kaiming((double)wd[1] * (double)k[0] * (double)k[1]), e->loc)};
    if (a[6].i)
        in3[2] = param(L, name, "bias", DN_PARAM_WEIGHT, DN_DTYPE_F32, 1, &out,
                       kaiming((double)wd[1] * (double)k[0] * (double)k[1]), e->loc);
    if (!in3[1] || (a[6].i && !in3[2])) return NULL;
    DnAttr at[] = {dn_attr_ints("stride", 2, s), dn_attr_ints("pad", 2, p), dn_attr_ints("dilation", 2, d),
                   dn_attr_int("groups", groups)};
    return dn_build1(L->cx, L->g, DN_OP_CONV2D, a[6].i ? 3 : 2, in3, 4, at, e->loc);
}

/* dense(out, bias=true) */
/* weight=T of dense and embedding: a tensor used instead of the layer's own
 * weight (tied weights), which must be f32 'wd'; NULL after a diagnostic. */
static DnValue *tied_weight(Lower *L, const AstExpr *e, DnValue *w, const int64_t wd[2], const char *axes)
{
    if (w->dtype == DN_DTYPE_F32 && w->shape.rank == 2 && w->shape.dim[0] == wd[0] && w->shape.dim[1] == wd[1])
        return w;
    char ty[96];
    dn_error(L->cx, e->loc, "%s: weight %s must be f32[%lld, %lld] (%s)", e->s, tstr(w, ty), (long long)wd[0],
             (long long)wd[1], axes);
    return NULL;
}

static DnValue *build_dense(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    int64_t in = static_dim(x[0], -1), out = a[0].i;
    char buf[96];
    if (!in) {
        dn_error(L->cx, e->loc, "dense expects an input whose last dimension is static, got %s", tstr(x[0], buf));
        return NULL;
    }
    int64_t wd[2] = {out, in};
    bool tied = a[2].kind == VAL_TENSOR;
    DnValue *in3[3] = {
        x[0], tied ? tied_weight(L, e, a[2].t, wd, "out, in")
                   : param(L, name, "weight", DN_PARAM_WEIGHT, DN_DTYPE_F32, 2, wd, kaiming((double)in), e->loc)};
    if (a[1].i) in3[2] = param(L, name, "bias", DN_PARAM_WEIGHT, DN_DTYPE_F32, 1, &out, kaiming((double)in), e->loc);
    if (!in3[1] || (a[1].i && !in3[2])) return NULL;
    return dn_build1(L->cx, L->g, DN_OP_DENSE, a[1].i ? 3 : 2, in3, 0, NULL, e->loc);
}

/* maxpool(kernel, stride=kernel, pad=0, ceil_mode=false), avgpool(kernel, stride=kernel, pad=0) */
static DnValue *build_pool(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t k[2], s[2], p[2];
    bool is_max = !strcmp(e->s, "maxpool");
    if (!pair(L, e, "kernel", a[0], k, 1) || !pair(L, e, "stride", a[1], s, 1) || !pair(L, e, "pad", a[2], p, 0))
        return NULL;
    DnAttr at[] = {dn_attr_ints("kernel", 2, k), dn_attr_ints("stride", 2, s), dn_attr_ints("pad", 2, p),
                   dn_attr_int("ceil_mode", is_max ? a[3].i : 0)};
    return dn_build1(L->cx, L->g, is_max ? DN_OP_MAXPOOL2D : DN_OP_AVGPOOL2D, 1, x, is_max ? 4 : 3, at, e->loc);
}

/* interpolate(size, mode="bilinear"): F.interpolate(x, size, mode, align_corners=False);
 * size an int (both axes) or [oh, ow] */
static DnValue *build_interpolate(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t sz[2];
    if (!pair(L, e, "size", a[0], sz, 1)) return NULL;
    DnAttr at[] = {dn_attr_ints("size", 2, sz), dn_attr_str("mode", a[1].s)};
    return dn_build1(L->cx, L->g, DN_OP_INTERPOLATE, 1, x, 2, at, e->loc);
}

/* global_avgpool: avgpool over the whole H x W, giving [N, C, 1, 1] */
static DnValue *build_global_avgpool(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name, (void)a;
    int64_t k[2] = {x[0]->shape.rank == 4 ? static_dim(x[0], 2) : 1, x[0]->shape.rank == 4 ? static_dim(x[0], 3) : 1};
    DnAttr kernel = dn_attr_ints("kernel", 2, k); /* stride and pad: their defaults (kernel, 0) */
    return dn_build1(L->cx, L->g, DN_OP_AVGPOOL2D, 1, x, 1, &kernel, e->loc);
}

/* adaptive_avgpool(out), adaptive_maxpool(out): PyTorch's AdaptiveAvgPool2d
 * and AdaptiveMaxPool2d.  An average whose input is a multiple of the
 * output (uniform windows) is an avgpool with kernel = stride = input /
 * output; other sizes, and every max, use the adaptive op's uneven windows. */
static DnValue *build_adaptive_pool(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t o[2], k[2];
    char buf[96];
    bool is_max = !strcmp(e->s, "adaptive_maxpool"), uniform = !is_max;
    if (!pair(L, e, "out", a[0], o, 1)) return NULL;
    if (x[0]->shape.rank != 4) {
        dn_error(L->cx, e->loc, "%s expects a 4-d input, got %s", e->s, tstr(x[0], buf));
        return NULL;
    }
    for (int i = 0; i < 2; i++) {
        int64_t in = static_dim(x[0], 2 + i);
        uniform = uniform && in >= o[i] && in % o[i] == 0;
        k[i] = uniform ? in / o[i] : 0;
    }
    if (uniform) {
        DnAttr kernel = dn_attr_ints("kernel", 2, k); /* stride and pad: their defaults (kernel, 0) */
        return dn_build1(L->cx, L->g, DN_OP_AVGPOOL2D, 1, x, 1, &kernel, e->loc);
    }
    DnAttr out = dn_attr_ints("out", 2, o);
    return dn_build1(L->cx, L->g, is_max ? DN_OP_ADAPTIVE_MAXPOOL2D : DN_OP_ADAPTIVE_AVGPOOL2D, 1, x, 1, &out, e->loc);
}

/* leaky_relu(negative_slope=0.01), elu(alpha=1.0), gelu(approximate="none"): the row's op
 * with its one attribute */
static DnValue *build_act(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    const LayerInfo *li = dn_layer_find(e->s);
    DnAttr at = li->op == DN_OP_GELU  ? dn_attr_str("approximate", a[0].s)
                : li->op == DN_OP_ELU ? dn_attr_float("alpha", a[0].f)
                                      : dn_attr_float("negative_slope", a[0].f); /* DN_OP_LEAKY_RELU */
    return dn_build1(L->cx, L->g, li->op, 1, x, 1, &at, e->loc);
}

/* relu, tanh, sigmoid, and the binary tensor functions: the op of the row */
static DnValue *build_simple(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name, (void)a;
    const LayerInfo *li = dn_layer_find(e->s);
    bool ce = li->op == DN_OP_CROSS_ENTROPY; /* its arguments: smoothing, ignore_index */
    DnAttr at[2] = {dn_attr_float("smoothing", ce ? a[0].f : 0), dn_attr_int("ignore_index", ce ? a[1].i : 0)};
    return dn_build1(L->cx, L->g, li->op, li->ntensor, x, ce ? 2 : 0, at, e->loc);
}

static bool norm_axis(Lower *L, const AstExpr *e, const DnValue *x, int64_t *axis)
{
    int r = x->shape.rank;
    if (*axis < -r || *axis >= r) {
        dn_error(L->cx, e->loc, "%s: axis %lld is out of range for a rank-%d input", e->s, (long long)*axis, r);
        return false;
    }
    if (*axis < 0) *axis += r;
    return true;
}

/* softmax/log_softmax(axis=-1) */
static DnValue *build_softmax(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t axis = a[0].i;
    if (!norm_axis(L, e, x[0], &axis)) return NULL;
    DnAttr at = dn_attr_int("axis", axis);
    return dn_build1(L->cx, L->g, dn_layer_find(e->s)->op, 1, x, 1, &at, e->loc);
}

static DnValue *reshape(Lower *L, DnValue *x, int n, const int64_t *dims, DnLoc loc)
{
    DnAttr at = dn_attr_ints("shape", n, dims);
    return dn_build1(L->cx, L->g, DN_OP_RESHAPE, 1, &x, 1, &at, loc);
}

/* flatten(from=1): merges axes from..rank-1 into one (a reshape) */
static DnValue *build_flatten(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    const DnShape *s = &x[0]->shape;
    int64_t from = a[0].i;
    if (from < 0) from += s->rank;
    if (from < 0 || from >= s->rank || (from == 0 && dn_shape_has_n(s))) {
        char buf[96];
        dn_error(L->cx, e->loc, "flatten(from=%lld) does not fit an input of type %s%s", (long long)a[0].i,
                 tstr(x[0], buf), from == 0 ? " (it would merge the batch dimension N)" : "");
        return NULL;
    }
    int64_t dims[DN_MAX_RANK];
    uint64_t prod = 1; /* unsigned: no overflow UB on absurd shapes */
    for (int i = 0; i < from; i++) dims[i] = s->dim[i] == DN_DIM_N ? -1 : s->dim[i];
    for (int i = (int)from; i < s->rank; i++) prod *= (uint64_t)s->dim[i];
    dims[from] = (int64_t)prod;
    return reshape(L, x[0], (int)from + 1, dims, e->loc);
}

/* reshape(d0, d1, ...) or reshape([d0, d1, ...]); -1 as the first dimension is N */
static DnValue *build_reshape(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t dims[DN_MAX_RANK];
    const Val *v = &a[0];
    if (v->n > DN_MAX_RANK || v->n == 0) {
        dn_error(L->cx, e->loc, "reshape needs 1 to %d dimensions, got %d", DN_MAX_RANK, v->n);
        return NULL;
    }
    for (int i = 0; i < v->n; i++) dims[i] = v->items[i].i;
    return reshape(L, x[0], v->n, dims, e->loc);
}

/* transpose(a, b): swaps two axes */
static DnValue *build_transpose(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t i = a[0].i, j = a[1].i, perm[DN_MAX_RANK];
    if (!norm_axis(L, e, x[0], &i) || !norm_axis(L, e, x[0], &j)) return NULL;
    for (int k = 0; k < x[0]->shape.rank; k++) perm[k] = k;
    perm[i] = j;
    perm[j] = i;
    DnAttr at = dn_attr_ints("perm", x[0]->shape.rank, perm);
    return dn_build1(L->cx, L->g, DN_OP_TRANSPOSE, 1, x, 1, &at, e->loc);
}

/* permute(d0, d1, ...): torch.permute, every axis once (negative counts
 * from the end); a transpose op with that perm */
static DnValue *build_permute(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    const Val *v = &a[0];
    int r = x[0]->shape.rank;
    if (v->n != r) {
        dn_error(L->cx, e->loc, "permute: %d axes given for the %d axes of %s (list each axis once)", v->n, r,
                 dn_type_str(x[0]->dtype, &x[0]->shape, (char[96]){0}, 96));
        return NULL;
    }
    int64_t perm[DN_MAX_RANK];
    for (int i = 0; i < r; i++) {
        perm[i] = v->items[i].i;
        if (!norm_axis(L, e, x[0], &perm[i])) return NULL;
    }
    DnAttr at = dn_attr_ints("perm", r, perm);
    return dn_build1(L->cx, L->g, DN_OP_TRANSPOSE, 1, x, 1, &at, e->loc);
}

/* expand(s0, s1, ...): torch.Tensor.expand, sizes right-aligned with the
 * input's axes (new ones may lead).  -1 keeps the input's size, except in
 * the first place, where it is the batch N (so a [1, 1, D] class token
 * expands with expand(-1, -1, D) to [N, 1, D]); a size of the input that
 * is 1 becomes any size.  Lowered as x + zeros of the target shape, whose
 * gradient (sum_to) is the reverse of the broadcast. */
static DnValue *build_expand(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    const DnShape *s = &x[0]->shape;
    const Val *v = &a[0];
    char ty[96];
    dn_type_str(x[0]->dtype, s, ty, sizeof ty);
    if (v->n < s->rank || v->n > DN_MAX_RANK) {
        dn_error(L->cx, e->loc, "expand: %d sizes for %s: give one per axis (new axes may lead, %d axes at most)", v->n,
                 ty, DN_MAX_RANK);
        return NULL;
    }
    int lead = v->n - s->rank;
    int64_t t[DN_MAX_RANK];
    for (int i = 0; i < v->n; i++) {
        int64_t want = v->items[i].i, have = i >= lead ? s->dim[i - lead] : 1;
        if (have == DN_DIM_N && i != 0) {
            dn_error(L->cx, e->loc, "expand: the batch axis of %s must stay first", ty);
            return NULL;
        }
        if (want == -1 && i == 0)
            t[i] = DN_DIM_N;
        else if (want == -1 && i >= lead)
            t[i] = have;
        else
            t[i] = want;
        bool ok = t[i] == DN_DIM_N ? have == DN_DIM_N || have == 1 : t[i] >= 1 && (have == 1 || have == t[i]);
        if (!ok) {
            dn_error(L->cx, e->loc, "expand: size %lld for axis %d of %s: only a size of 1 expands%s", (long long)want,
                     i - lead, ty, want == -1 ? " (-1 keeps a size, and in the first place is N)" : "");
            return NULL;
        }
    }
    DnShape ts = dn_shape_make(v->n, t);
    if (dn_shape_eq(&ts, s)) return x[0];
    DnAttr at[2] = {dn_attr_float("value", 0), dn_attr_ints("shape", v->n, t)};
    DnValue *in[2] = {x[0], dn_build1(L->cx, L->g, DN_OP_FILL, 0, NULL, 2, at, e->loc)};
    return dn_build1(L->cx, L->g, DN_OP_ADD, 2, in, 0, NULL, e->loc);
}

/* positional_encoding: x [..., T, D] + the Transformer's sinusoidal table
 * [T, D] (a sinusoid op; T and D static). */
/* positional_encoding(pos=none, max_len=0): x + the sinusoid table's first
 * T rows; with pos (i32 [..., T], a decoding step's positions) x + the
 * rows pos of a table of max_len rows, computed for those rows only. */
static DnValue *build_positional_encoding(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    const DnShape *s = &x[0]->shape;
    if (a[0].kind == VAL_TENSOR) {
        DnValue *pos = a[0].t;
        char t1[96], t2[96];
        bool ok =
            s->rank >= 2 && s->dim[s->rank - 1] >= 1 && pos->dtype == DN_DTYPE_I32 && pos->shape.rank == s->rank - 1;
        for (int i = 0; ok && i < pos->shape.rank; i++) ok = pos->shape.dim[i] == s->dim[i];
        if (!ok || a[1].i < 1) {
            dn_error(L->cx, e->loc,
                     "positional_encoding: with pos, x [..., D] with static D, pos i32 of x's shape without D and "
                     "max_len >= 1 (the table's rows), got x %s, pos %s and max_len %lld",
                     dn_type_str(x[0]->dtype, s, t1, 96), dn_type_str(pos->dtype, &pos->shape, t2, 96),
                     (long long)a[1].i);
            return NULL;
        }
        DnAttr at[2] = {dn_attr_int("rows", a[1].i), dn_attr_int("cols", s->dim[s->rank - 1])};
        DnValue *in[2] = {x[0], dn_build1(L->cx, L->g, DN_OP_SINUSOID, 1, &pos, 2, at, e->loc)};
        return in[1] ? dn_build1(L->cx, L->g, DN_OP_ADD, 2, in, 0, NULL, e->loc) : NULL;
    }
    if (s->rank < 2 || s->dim[s->rank - 2] < 1 || s->dim[s->rank - 1] < 1) {
        dn_error(L->cx, e->loc, "positional_encoding expects [..., T, D] with static T and D, got %s",
                 dn_type_str(x[0]->dtype, s, (char[96]){0}, 96));
        return NULL;
    }
    DnAttr at[2] = {dn_attr_int("rows", s->dim[s->rank - 2]), dn_attr_int("cols", s->dim[s->rank - 1])};
    DnValue *in[2] = {x[0], dn_build1(L->cx, L->g, DN_OP_SINUSOID, 0, NULL, 2, at, e->loc)};
    return dn_build1(L->cx, L->g, DN_OP_ADD, 2, in, 0, NULL, e->loc);
}

/* dropout(p=0.5): each dropout op gets the next salt, counting from 1 */
static DnValue *build_dropout(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    if (!(a[0].f >= 0 && a[0].f < 1)) {
        dn_error(L->cx, e->loc, "dropout probability must be in [0, 1), got %g", a[0].f);
        return NULL;
    }
    DnAttr at[] = {dn_attr_float("p", a[0].f), dn_attr_int("salt", L->next_salt++)};
    return dn_build1(L->cx, L->g, DN_OP_DROPOUT, 1, x, 2, at, e->loc);
}

/* layernorm(dims=1, eps=1e-5, elementwise_affine=true): nn.LayerNorm over the
 * last 'dims' axes; weight (ones) and bias (zeros) of their shape.  When
 * those axes are not static sizes the op is built without them, so its
 * shape rule names the problem. */
static DnValue *build_layernorm(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    const DnShape *s = &x[0]->shape;
    int64_t dims = a[0].i, nd[DN_MAX_RANK];
    bool affine = a[2].i != 0, shaped = dims >= 1 && dims <= s->rank;
    for (int i = 0; shaped && i < dims; i++) shaped = (nd[i] = s->dim[s->rank - dims + i]) >= 1;
    DnInit zeros = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0}, ones = {.kind = DN_INIT_ONES, .a = 0, .b = 0};
    DnValue *in[3] = {x[0]};
    if (affine && shaped) {
        in[1] = param(L, name, "weight", DN_PARAM_WEIGHT, DN_DTYPE_F32, (int)dims, nd, ones, e->loc);
        in[2] = param(L, name, "bias", DN_PARAM_WEIGHT, DN_DTYPE_F32, (int)dims, nd, zeros, e->loc);
        if (!in[1] || !in[2]) return NULL;
    }
    DnAttr at[2] = {dn_attr_int("dims", dims), dn_attr_float("eps", a[1].f)};
    return dn_build1(L->cx, L->g, DN_OP_LAYERNORM, affine && shaped ? 3 : 1, in, 2, at, e->loc);
}

/* batchnorm(eps=1e-5, momentum=0.1): weight, bias, running_mean, running_var, num_batches_tracked */
static DnValue *build_batchnorm(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    if (!(a[1].f >= 0 && a[1].f <= 1)) {
        dn_error(L->cx, e->loc, "batchnorm momentum must be in [0, 1], got %g", a[1].f);
        return NULL;
    }
    int64_t c = x[0]->shape.rank >= 2 && static_dim(x[0], 1) ? static_dim(x[0], 1) : 1;
    DnInit zeros = {.kind = DN_INIT_ZEROS, .a = 0, .b = 0}, ones = {.kind = DN_INIT_ONES, .a = 0, .b = 0};
    DnValue *in[6] = {x[0], param(L, name, "weight", DN_PARAM_WEIGHT, DN_DTYPE_F32, 1, &c, ones, e->loc),
                      param(L, name, "bias", DN_PARAM_WEIGHT, DN_DTYPE_F32, 1, &c, zeros, e->loc),
                      param(L, name, "running_mean", DN_PARAM_BUFFER, DN_DTYPE_F32, 1, &c, zeros, e->loc),
                      param(L, name, "running_var", DN_PARAM_BUFFER, DN_DTYPE_F32, 1, &c, ones, e->loc)};
    in[5] = param(L, name, "num_batches_tracked", DN_PARAM_BUFFER, DN_DTYPE_I64, 0, NULL, zeros, e->loc);
    if (!in[5]) return NULL;
    DnAttr at[2] = {dn_attr_float("eps", a[0].f), dn_attr_float("momentum", a[1].f)};
    return dn_build1(L->cx, L->g, DN_OP_BATCHNORM, 6, in, 2, at, e->loc);
}

/* ---- shape family: concat, stack, split, chunk ------------------------------ */

enum { CONCAT_MAX_IN = 8 }; /* the concat op's operand limit (ops.def); longer lists chain */

/* cat of the 'n' tensors 't' along 'axis' (already normalized), in chained concat ops of at most 8. */
static DnValue *concat_list(Lower *L, const AstExpr *e, DnValue **t, int n, int64_t axis)
{
    DnValue *acc = t[0];
    DnAttr at = dn_attr_int("axis", axis);
    for (int i = 1; i < n && acc;) {
        DnValue *in[CONCAT_MAX_IN] = {acc};
        int k = 1;
        while (k < CONCAT_MAX_IN && i < n) in[k++] = t[i++];
        acc = dn_build1(L->cx, L->g, DN_OP_CONCAT, k, in, 1, &at, e->loc);
    }
    return acc;
}

static DnValue **tensors_of(Lower *L, const Val *v)
{
    DnValue **t = dn_arena_alloc(L->a, (size_t)v->n * sizeof *t);
    for (int i = 0; i < v->n; i++) t[i] = v->items[i].t;
    return t;
}

/* concat([a, b, ...], axis=0): torch.cat */
static DnValue *build_concat(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name, (void)x;
    DnValue **t = tensors_of(L, &a[0]);
    int64_t axis = a[1].i;
    if (!norm_axis(L, e, t[0], &axis)) return NULL;
    return concat_list(L, e, t, a[0].n, axis);
}

/* stack([a, b, ...], axis=0): torch.stack, a reshape of each inserting the axis, then a concat */
static DnValue *build_stack(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name, (void)x;
    DnValue **t = tensors_of(L, &a[0]);
    const DnShape *s = &t[0]->shape;
    int64_t axis = a[1].i;
    char buf[96];
    if (axis < -(s->rank + 1) || axis > s->rank || s->rank + 1 > DN_MAX_RANK) {
        dn_error(L->cx, e->loc, "stack: axis %lld is out of range for inputs of type %s", (long long)axis,
                 tstr(t[0], buf));
        return NULL;
    }
    if (axis < 0) axis += s->rank + 1;
    if (axis == 0 && dn_shape_has_n(s)) {
        dn_error(L->cx, e->loc, "stack: axis 0 would come before the batch axis N of %s", tstr(t[0], buf));
        return NULL;
    }
    for (int i = 0; i < a[0].n; i++) {
        const DnShape *si = &t[i]->shape;
        if (!dn_shape_eq(si, s) || t[i]->dtype != t[0]->dtype) {
            char b2[96];
            dn_error(L->cx, e->loc, "stack: input %d %s differs from input 0 %s (all must have one type)", i,
                     tstr(t[i], b2), tstr(t[0], buf));
            return NULL;
        }
        int64_t dims[DN_MAX_RANK];
        for (int d = 0, k = 0; d <= si->rank; d++)
            dims[d] = d == axis ? 1 : si->dim[k] == DN_DIM_N ? (k++, -1) : si->dim[k++];
        t[i] = reshape(L, t[i], si->rank + 1, dims, e->loc);
        if (!t[i]) return NULL;
    }
    return concat_list(L, e, t, a[0].n, axis);
}

enum { MAX_PIECES = 4096 }; /* split and chunk: at most this many results */

/* The pieces of sizes 'sz' (summing to the axis) as a list of slices of x. */
static Val pieces(Lower *L, const AstExpr *e, DnValue *x, int64_t axis, const int64_t *sz, int n)
{
    Val v = {.kind = VAL_LIST, .n = n, .items = dn_arena_alloc(L->a, (size_t)(n + 1) * sizeof(Val))};
    int64_t at = 0;
    for (int i = 0; i < n; i++) {
        DnValue *p = dn_lower_slice(L, x, (int)axis, at, at + sz[i], 1, e->loc);
        if (!p || !dn_lower_op_budget(L, e->loc)) return dn_val_poison();
        v.items[i] = (Val){.kind = VAL_TENSOR, .t = p};
        at += sz[i];
    }
    return v;
}

/* Pieces of 'each' elements of an axis of 'd', the last one smaller. */
static Val uniform_pieces(Lower *L, const AstExpr *e, DnValue *x, int64_t axis, int64_t d, int64_t each)
{
    int64_t n = 1 + (d - 1) / each;
    if (n > MAX_PIECES) {
        dn_error(L->cx, e->loc, "%s: %lld pieces are too many (at most %d)", e->s, (long long)n, MAX_PIECES);
        return dn_val_poison();
    }
    int64_t *sz = dn_arena_alloc(L->a, (size_t)(n + 1) * sizeof *sz);
    for (int64_t i = 0; i < n; i++) sz[i] = i < n - 1 ? each : d - (n - 1) * each;
    return pieces(L, e, x, axis, sz, (int)n);
}

/* The static size of the axis to split, normalizing 'axis'; 0 after an error. */
static int64_t split_dim(Lower *L, const AstExpr *e, const DnValue *x, int64_t *axis)
{
    if (!norm_axis(L, e, x, axis)) return 0;
    if (x->shape.dim[*axis] == DN_DIM_N) {
        char buf[96];
        dn_error(L->cx, e->loc, "%s: cannot split the batch axis N of %s (its size is known only at run time)", e->s,
                 tstr(x, buf));
        return 0;
    }
    return x->shape.dim[*axis];
}

/* split(x, sizes, axis=0): torch.split; sizes a list summing to the axis, or one int s (pieces of s, the last
 * smaller); a list of tensors */
static Val build_split(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t axis = a[1].i, d = split_dim(L, e, x[0], &axis), sum = 0;
    if (!d) return dn_val_poison();
    const Val *sv = &a[0];
    if (sv->n > MAX_PIECES) {
        dn_error(L->cx, e->loc, "split: %d pieces are too many (at most %d)", sv->n, MAX_PIECES);
        return dn_val_poison();
    }
    int64_t *sz = dn_arena_alloc(L->a, (size_t)(sv->n + 1) * sizeof *sz);
    for (int i = 0; i < sv->n; i++) {
        sz[i] = sv->items[i].i;
        if (sz[i] < 1 || sz[i] > d) {
            dn_error(L->cx, e->loc, "split: size %lld must be between 1 and the axis' %lld", (long long)sz[i],
                     (long long)d);
            return dn_val_poison();
        }
        sum += sz[i];
    }
    if (sv->n == 1) return uniform_pieces(L, e, x[0], axis, d, sz[0]);
    if (sum != d) {
        dn_error(L->cx, e->loc, "split: sizes sum to %lld, but axis %lld has %lld elements", (long long)sum,
                 (long long)axis, (long long)d);
        return dn_val_poison();
    }
    return pieces(L, e, x[0], axis, sz, sv->n);
}

/* chunk(x, chunks, axis=0): torch.chunk, pieces of ceil(size / chunks) (the last smaller; maybe fewer) */
static Val build_chunk(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    int64_t axis = a[1].i, d = split_dim(L, e, x[0], &axis), c = a[0].i;
    if (!d) return dn_val_poison();
    if (c < 1) {
        dn_error(L->cx, e->loc, "chunk: chunks %lld must be >= 1", (long long)c);
        return dn_val_poison();
    }
    return uniform_pieces(L, e, x[0], axis, d, 1 + (d - 1) / c);
}

/* embedding(num, dim, padding_idx=-1): weight [num, dim] ~ N(0, 1) with the
 * padding row zero, as nn.Embedding */
static DnValue *build_embedding(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    int64_t wd[2] = {a[0].i, a[1].i}, pad = a[2].i;
    if (pad < -1 || pad >= wd[0]) {
        dn_error(L->cx, e->loc, "embedding: padding_idx %lld must be -1 (none) or a row in [0, %lld)", (long long)pad,
                 (long long)wd[0]);
        return NULL;
    }
    bool tied = a[3].kind == VAL_TENSOR;
    DnValue *w = tied ? tied_weight(L, e, a[3].t, wd, "num, dim") : NULL;
    if (tied && !w) return NULL;
    DnValue *in[2] = {
        x[0], w ? w
                : param(L, name, "weight", DN_PARAM_WEIGHT, DN_DTYPE_F32, 2, wd,
                        (DnInit){.kind = DN_INIT_NORMAL, .a = 0, .b = 1, .zero_row = pad >= 0 ? pad + 1 : 0}, e->loc)};
    if (!in[1]) return NULL;
    DnAttr at = dn_attr_int("padding_idx", pad);
    return dn_build1(L->cx, L->g, DN_OP_EMBEDDING, 2, in, 1, &at, e->loc);
}

/* sequence_mask(lengths, max_len): f32 [..., max_len], 1 where t < length;
 * max_len=T: [N, T], the mask of the run-time sequence axis */
static DnValue *build_sequence_mask(Lower *L, const AstExpr *e, const char *name, DnValue **x, const Val *a)
{
    (void)name;
    if (a[0].i < 1 && !DN_DIM_IS_SEQ(a[0].i)) {
        dn_error(L->cx, e->loc, "sequence_mask: max_len must be >= 1, got %lld", (long long)a[0].i);
        return NULL;
    }
    DnAttr at = dn_attr_int("max_len", a[0].i);
    return dn_build1(L->cx, L->g, DN_OP_SEQUENCE_MASK, 1, x, 1, &at, e->loc);
}

/* ---- the table --------------------------------------------------------------- */

static const LayerInfo layers[] = {
    {"conv2d", 1, "out:int kernel:ints stride pad dilation groups bias:bool=true", true, build_conv2d, DN_OP_CONV2D},
    {"dense", 1, "out:int bias:bool=true weight:tensor=none", true, build_dense, DN_OP_DENSE},
    {"batchnorm", 1, "eps momentum", true, build_batchnorm, DN_OP_BATCHNORM},
    {"maxpool", 1, "kernel stride pad ceil_mode:bool=false", false, build_pool, DN_OP_MAXPOOL2D},
    {"avgpool", 1, "kernel stride pad", false, build_pool, DN_OP_AVGPOOL2D},
    {"global_avgpool", 1, "", false, build_global_avgpool, DN_OP_AVGPOOL2D},
    {"adaptive_avgpool", 1, "out:ints", false, build_adaptive_pool, DN_OP_ADAPTIVE_AVGPOOL2D},
    {"adaptive_maxpool", 1, "out:ints", false, build_adaptive_pool, DN_OP_ADAPTIVE_MAXPOOL2D},
    {"leaky_relu", 1, "negative_slope", false, build_act, DN_OP_LEAKY_RELU},
    {"elu", 1, "alpha", false, build_act, DN_OP_ELU},
    {"gelu", 1, "approximate", false, build_act, DN_OP_GELU},
    {"relu", 1, "", false, build_simple, DN_OP_RELU},
    {"tanh", 1, "", false, build_simple, DN_OP_TANH},
    {"sigmoid", 1, "", false, build_simple, DN_OP_SIGMOID},
    {"softmax", 1, "axis", false, build_softmax, DN_OP_SOFTMAX},
    {"log_softmax", 1, "axis", false, build_softmax, DN_OP_LOG_SOFTMAX},
    {"flatten", 1, "from:int=1", false, build_flatten, DN_OP_RESHAPE},
    {"reshape", 1, "shape:ints*", false, build_reshape, DN_OP_RESHAPE},
    {"transpose", 1, "a:int b:int", false, build_transpose, DN_OP_TRANSPOSE},
    {"permute", 1, "dims:ints*", false, build_permute, DN_OP_TRANSPOSE},
    {"positional_encoding", 1, "pos:tensor=none max_len:int=0", false, build_positional_encoding, DN_OP_SINUSOID},
    {"expand", 1, "sizes:ints*", false, build_expand, DN_OP_ADD},
    {"dropout", 1, "p", false, build_dropout, DN_OP_DROPOUT},
    {"add", 2, "", false, build_simple, DN_OP_ADD},
    {"sub", 2, "", false, build_simple, DN_OP_SUB},
    {"mul", 2, "", false, build_simple, DN_OP_MUL},
    {"div", 2, "", false, build_simple, DN_OP_DIV},
    {"matmul", 2, "", false, build_simple, DN_OP_MATMUL},
    {"cross_entropy", 2, "smoothing ignore_index", false, build_simple, DN_OP_CROSS_ENTROPY},
    {"mse", 2, "", false, build_simple, DN_OP_MSE},
    {"concat", 0, "tensors:tensors axis:int=0", false, build_concat, DN_OP_CONCAT},
    {"stack", 0, "tensors:tensors axis:int=0", false, build_stack, DN_OP_CONCAT},
    {"split", 1, "sizes:ints axis:int=0", false, NULL, DN_OP_SLICE}, /* list results: list_layers */
    {"chunk", 1, "chunks:int axis:int=0", false, NULL, DN_OP_SLICE},
    {"embedding", 1, "num:int dim:int padding_idx weight:tensor=none", true, build_embedding, DN_OP_EMBEDDING},
    {"layernorm", 1, "dims eps elementwise_affine:bool=true", true, build_layernorm, DN_OP_LAYERNORM},
    {"sequence_mask", 1, "max_len:len", false, build_sequence_mask, DN_OP_SEQUENCE_MASK},
    /* recurrent layers (layers_rnn.c): a tensor, or a list with return_state */
    {"rnn", 1,
     "hidden:int num_layers:int=1 bias:bool=true batch_first:bool=true dropout:float=0 bidirectional:bool=false "
     "nonlinearity:str=tanh h0:tensor=none lengths:tensor=none return_state:bool=false",
     true, NULL, DN_OP_RNN_SCAN},
    {"lstm", 1,
     "hidden:int num_layers:int=1 bias:bool=true batch_first:bool=true dropout:float=0 bidirectional:bool=false "
     "h0:tensor=none c0:tensor=none lengths:tensor=none return_state:bool=false",
     true, NULL, DN_OP_RNN_SCAN},
    {"gru", 1,
     "hidden:int num_layers:int=1 bias:bool=true batch_first:bool=true dropout:float=0 bidirectional:bool=false "
     "h0:tensor=none lengths:tensor=none return_state:bool=false",
     true, NULL, DN_OP_RNN_SCAN},
    {"attention", 2,
     "values:tensor=none kind:str=dot mask:tensor=none return_weights:bool=false scale:bool=false units:int=0", true,
     NULL, DN_OP_MATMUL},
    {"multihead_attention", 1,
     "key:tensor=none value:tensor=none num_heads:int key_padding_mask:tensor=none attn_mask:tensor=none "
     "is_causal:bool=false dropout:float=0 bias:bool=true",
     true, dn_build_mha, DN_OP_MATMUL},
    {"transformer_encoder_layer", 1,
     "d_model:int nhead:int dim_feedforward:int=2048 dropout:float=0.1 activation:str=relu layer_norm_eps:float=1e-5 "
     "norm_first:bool=false src_key_padding_mask:tensor=none src_mask:tensor=none is_causal:bool=false",
     true, dn_build_encoder_layer, DN_OP_DENSE},
    {"transformer_decoder_layer", 2,
     "d_model:int nhead:int dim_feedforward:int=2048 dropout:float=0.1 activation:str=relu layer_norm_eps:float=1e-5 "
     "norm_first:bool=false tgt_mask:tensor=none memory_mask:tensor=none tgt_key_padding_mask:tensor=none "
     "memory_key_padding_mask:tensor=none tgt_is_causal:bool=false",
     true, dn_build_decoder_layer, DN_OP_DENSE},
    {"transformer", 2,
     "d_model:int=512 nhead:int=8 num_encoder_layers:int=6 num_decoder_layers:int=6 dim_feedforward:int=2048 "
     "dropout:float=0.1 activation:str=relu layer_norm_eps:float=1e-5 norm_first:bool=false src_mask:tensor=none "
     "tgt_mask:tensor=none memory_mask:tensor=none src_key_padding_mask:tensor=none tgt_key_padding_mask:tensor=none "
     "memory_key_padding_mask:tensor=none src_is_causal:bool=false tgt_is_causal:bool=false",
     true, dn_build_transformer, DN_OP_DENSE},
    {"transformer_encoder", 1,
     "num_layers:int d_model:int nhead:int dim_feedforward:int=2048 dropout:float=0.1 activation:str=relu "
     "layer_norm_eps:float=1e-5 norm_first:bool=false norm:bool=true mask:tensor=none "
     "src_key_padding_mask:tensor=none is_causal:bool=false cache:int=0 pos:tensor=none",
     true, dn_build_transformer_encoder, DN_OP_DENSE},
    {"vit_encoder_block", 1,
     "num_heads:int hidden_dim:int mlp_dim:int dropout:float=0 attention_dropout:float=0 layer_norm_eps:float=1e-6",
     true, dn_build_vit_block, DN_OP_DENSE},
    {"vit_encoder", 1,
     "num_layers:int num_heads:int hidden_dim:int mlp_dim:int dropout:float=0 attention_dropout:float=0 "
     "layer_norm_eps:float=1e-6",
     true, dn_build_vit_encoder, DN_OP_DENSE},
    {"scaled_dot_product_attention", 3, "mask:tensor=none is_causal:bool=false dropout:float=0 scale:float=0", false,
     dn_build_sdpa, DN_OP_MATMUL},
    /* resizing */
    {"interpolate", 1, "size:ints mode", false, build_interpolate, DN_OP_INTERPOLATE},
};

/* Layers of the table whose result is a list of tensors, or (attention) a
 * tensor or a list by an argument; their fn is NULL. */
static const struct {
    const char *name;
    ListFn fn;
} list_layers[] = {{"split", build_split}, {"chunk", build_chunk}, {"rnn", dn_build_rnn},
                   {"lstm", dn_build_rnn}, {"gru", dn_build_rnn},  {"attention", dn_build_attention}};

static ListFn list_fn(const char *name)
{
    for (size_t i = 0; i < sizeof list_layers / sizeof list_layers[0]; i++)
        if (!strcmp(list_layers[i].name, name)) return list_layers[i].fn;
    return NULL;
}

/* Operators of the language (docs/language.md) that parse but do not lower yet. */
static const char *unsupported[] = {
    "slice", "pad", "lrn", "local_response_norm", "broadcast", "argmax", "accuracy", "sequence_cross_entropy",
};

const LayerInfo *dn_layer_find(const char *name)
{
    for (size_t i = 0; i < sizeof layers / sizeof layers[0]; i++)
        if (!strcmp(layers[i].name, name)) return &layers[i];
    return NULL;
}

bool dn_layer_unsupported(const char *name)
{
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (!strcmp(unsupported[i], name)) return true;
    return false;
}

/* The parameter prefix of a layer call: its label, or kind_K numbered per
 * (prefix, kind) in source order.  NULL after a duplicate-label error. */
static const char *layer_name(Lower *L, const LayerInfo *li, const AstExpr *e)
{
    if (e->label) {
        const char *full = dn_arena_printf(L->a, "%s%s", L->prefix, e->label);
        return dn_lower_use_label(L, full, e->label_loc) ? full : NULL;
    }
    if (!li->has_params) return "";
    const char *key = dn_arena_printf(L->a, "%s|%s", L->prefix, li->name);
    Counter *c = dn_namemap_get(&L->counters, key);
    if (!c) {
        c = dn_arena_alloc(L->a, sizeof *c);
        dn_namemap_put(L->a, &L->counters, key, c);
    }
    return dn_arena_printf(L->a, "%s%s_%d", L->prefix, li->name, c->n++);
}

/* Collects the positionals after the tensors into one list for an 'ints*' schema. */
static int gather_rest(Lower *L, const LayerInfo *li, Val *pos, int npos)
{
    if (!strstr(li->schema, "ints*")) return npos;
    int n = npos - li->ntensor;
    if (n == 1 && pos[li->ntensor].kind == VAL_LIST) return npos;
    Val v = {.kind = VAL_LIST, .n = n, .items = dn_arena_alloc(L->a, (size_t)(n + 1) * sizeof(Val))};
    for (int i = 0; i < n; i++) v.items[i] = pos[li->ntensor + i];
    pos[li->ntensor] = v;
    return li->ntensor + 1;
}

Val dn_layer_check(Lower *L, Scope *sc, const LayerInfo *li, const AstExpr *e, Val *pos, int npos)
{
    npos = gather_rest(L, li, pos, npos);
    Val a[MAX_ARGS] = {{0}};
    int skip = li->ntensor < npos ? li->ntensor : npos;
    if (dn_bind_op_args(L, sc, li->name, li->op, li->schema, e, pos + skip, npos - skip, a, MAX_ARGS))
        layer_name(L, li, e);
    return dn_val_poison();
}

Val dn_layer_call(Lower *L, Scope *sc, const LayerInfo *li, const AstExpr *e, Val *pos, int npos)
{
    DnValue *x[3]; /* no layer takes more leading tensors */
    static const char *const nth[3] = {"first", "second", "third"};
    DN_ASSERT(li->ntensor <= 3);
    for (int i = 0; i < li->ntensor; i++) {
        if (i >= npos || pos[i].kind != VAL_TENSOR) {
            dn_error(L->cx, e->loc, "%s expects %s as its %s operand, got %s (write x |> %s(...) or %s(x, ...))",
                     li->name, "a tensor", nth[i], i < npos ? dn_val_kind_name(pos[i].kind) : "nothing", li->name,
                     li->name);
            return dn_val_poison();
        }
        x[i] = pos[i].t;
    }
    npos = gather_rest(L, li, pos, npos);
    Val a[MAX_ARGS] = {{0}};
    if (!dn_bind_op_args(L, sc, li->name, li->op, li->schema, e, pos + li->ntensor, npos - li->ntensor, a, MAX_ARGS))
        return dn_val_poison();
    const char *name = li->fn || li->has_params ? layer_name(L, li, e) : "";
    if (!name) return dn_val_poison();
    if (!li->fn) return list_fn(li->name)(L, e, name, x, a);
    DnValue *y = li->fn(L, e, name, x, a);
    return y ? (Val){.kind = VAL_TENSOR, .t = y} : dn_val_poison();
}

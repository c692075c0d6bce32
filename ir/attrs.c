/* attrs.c -- op attributes: schemas (parsed from ops.def, defaults included),
 * constructors, accessors, and completion of a user's attribute list with
 * defaults.
 *
 * Used by the builder (shape.c) and the IR reader before an op exists, by
 * the frontend (the optimizer spec, and the defaults of layer arguments
 * that are op attributes), and by every later stage through the accessors.
 * A completed list holds exactly the schema's attributes, in schema order,
 * with the schema's kinds.
 */
#include "ir.h"

#include <stdlib.h>

const char *dn_attr_kind_name(DnAttrKind k)
{
    static const char *names[] = {"int", "ints", "float", "str"};
    return (unsigned)k < 4 ? names[k] : "?";
}

/* ---- schemas -------------------------------------------------------------
 * The syntax is in ops.def's header.  dn_schema_parse checks everything the
 * completion below relies on, so filling a default needs no further checks. */

enum { MAX_DEFAULT_INTS = 8 }; /* most values an ints default lists */

static const char *kind_phrase(DnAttrKind k)
{
    static const char *p[] = {"an int", "a list of ints", "a float", "a string"};
    return p[k];
}

static bool fail(char *err, size_t errlen, const char *fmt, ...) DN_PRINTF(3, 4);
static bool fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return false;
}

static bool is_name_char(char c, bool first)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (!first && c >= '0' && c <= '9');
}

static bool is_name(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_name_char(s[i], i == 0)) return false;
    return n > 0;
}

/* Parses "v,v,..." into 'v' (at most 'max'); returns the count, or -1 when
 * 's' is not such a list. */
static int parse_ints(const char *s, int64_t *v, int max)
{
    int n = 0;
    for (;;) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s || n == max) return -1;
        v[n++] = x;
        if (!*end) return n;
        if (*end != ',') return -1;
        s = end + 1;
    }
}

/* True when literal 'def' reads as a value of kind 'k'. */
static bool literal_ok(DnAttrKind k, const char *def)
{
    char *end;
    int64_t v[MAX_DEFAULT_INTS];
    switch (k) {
    case DN_ATTR_INT: (void)strtoll(def, &end, 10); return end != def && !*end;
    case DN_ATTR_FLOAT: (void)strtod(def, &end); return end != def && !*end;
    case DN_ATTR_INTS: return parse_ints(def, v, MAX_DEFAULT_INTS) > 0;
    case DN_ATTR_STR: return true;
    }
    return false;
}

/* Sets spec[n].ref to the earlier entry that default spec[n].def names. */
static bool resolve_ref(DnAttrSpec *spec, int n, char *err, size_t errlen)
{
    DnAttrSpec *s = &spec[n];
    for (int j = 0; j < n; j++)
        if (!strcmp(spec[j].name, s->def)) {
            if (spec[j].kind != s->kind)
                return fail(err, errlen, "'%s': default '%s' names an attribute of another kind", s->name, s->def);
            s->ref = j;
            return true;
        }
    return fail(err, errlen, "'%s': default '%s' is neither %s nor an attribute listed before it", s->name, s->def,
                kind_phrase(s->kind));
}

/* The DnAttrKind spelled by the 'n' bytes at 's', or -1. */
static int kind_of(const char *s, size_t n)
{
    for (int k = 0; k < 4; k++)
        if (strlen(dn_attr_kind_name((DnAttrKind)k)) == n && !strncmp(s, dn_attr_kind_name((DnAttrKind)k), n)) return k;
    return -1;
}

/* Parses entry 'w' ('len' bytes, "name:kind[=default]") into spec[n];
 * spec[0..n-1] are the entries before it. */
static bool parse_entry(const char *w, size_t len, DnAttrSpec *spec, int n, char *err, size_t errlen)
{
    DnAttrSpec *s = &spec[n];
    memset(s, 0, sizeof *s);
    s->ref = -1;
    const char *colon = memchr(w, ':', len), *eq = memchr(w, '=', len), *stop = w + len;
    if (!colon || (eq && eq < colon)) return fail(err, errlen, "'%.*s' is not name:kind[=default]", (int)len, w);
    size_t nlen = (size_t)(colon - w), klen = (size_t)((eq ? eq : stop) - colon - 1);
    if (!is_name(w, nlen) || nlen >= sizeof s->name)
        return fail(err, errlen, "'%.*s': the name must be a C identifier of at most %d characters", (int)len, w,
                    (int)sizeof s->name - 1);
    memcpy(s->name, w, nlen);
    for (int j = 0; j < n; j++)
        if (!strcmp(spec[j].name, s->name)) return fail(err, errlen, "'%s' is listed twice", s->name);
    int k = kind_of(colon + 1, klen);
    if (k < 0)
        return fail(err, errlen, "'%s': unknown kind '%.*s' (int, ints, float, str)", s->name, (int)klen, colon + 1);
    s->kind = (DnAttrKind)k;
    if (!eq) return true;
    size_t dlen = (size_t)(stop - eq - 1);
    if (dlen == 0 || dlen >= sizeof s->def)
        return fail(err, errlen, "'%s': a default must have 1 to %d characters", s->name, (int)sizeof s->def - 1);
    memcpy(s->def, eq + 1, dlen);
    s->has_default = true;
    if (s->kind != DN_ATTR_STR && is_name_char(s->def[0], true)) return resolve_ref(spec, n, err, errlen);
    if (!literal_ok(s->kind, s->def))
        return fail(err, errlen, "'%s': default '%s' is not %s", s->name, s->def, kind_phrase(s->kind));
    return true;
}

int dn_schema_parse(const char *schema, DnAttrSpec *out, char *err, size_t errlen)
{
    int n = 0;
    for (const char *p = schema; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t len = strcspn(p, " ");
        if (n == DN_MAX_ATTRS) {
            fail(err, errlen, "more than %d attributes", DN_MAX_ATTRS);
            return -1;
        }
        if (!parse_entry(p, len, out, n, err, errlen)) return -1;
        n++;
        p += len;
    }
    return n;
}

int dn_op_schema(DnOpKind kind, DnAttrSpec *out)
{
    DN_ASSERT(kind >= 0 && kind < DN_OP_COUNT);
    char err[160];
    int n = dn_schema_parse(dn_op_info[kind].attrs, out, err, sizeof err);
    if (n < 0) dn_die(__FILE__, __LINE__, "ops.def: the schema of %s: %s", dn_op_info[kind].name, err);
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

/* ---- completion ---------------------------------------------------------- */

/* See ir.h. */
bool dn_attr_is_window(const char *name)
{
    return !strcmp(name, "stride") || !strcmp(name, "pad") || !strcmp(name, "dilation") || !strcmp(name, "kernel");
}

static int64_t *ints_dup(DnGraph *g, int n, const int64_t *v)
{
    int64_t *d = dn_arena_alloc(&g->arena, (size_t)(n ? n : 1) * sizeof *d);
    if (n) memcpy(d, v, (size_t)n * sizeof *d);
    return d;
}

/* Copies the value of 'from' into 'to' (same kind) in g's arena. */
static void copy_value(DnGraph *g, const DnAttr *from, DnAttr *to)
{
    to->i = from->i;
    to->f = from->f;
    to->nints = from->nints;
    if (from->kind == DN_ATTR_INTS) to->ints = ints_dup(g, from->nints, from->ints);
    if (from->kind == DN_ATTR_STR) to->s = dn_arena_strdup(&g->arena, from->s ? from->s : "");
}

/* Literal default of schema entry 's' as the attribute a user would write;
 * ints go in 'buf' (MAX_DEFAULT_INTS entries). */
static DnAttr literal_default(const DnAttrSpec *s, int64_t *buf)
{
    DnAttr a = {.name = s->name, .kind = s->kind};
    switch (s->kind) {
    case DN_ATTR_INT: a.i = strtoll(s->def, NULL, 10); break;
    case DN_ATTR_FLOAT: a.f = strtod(s->def, NULL); break;
    case DN_ATTR_STR: a.s = s->def; break;
    case DN_ATTR_INTS:
        a.nints = parse_ints(s->def, buf, MAX_DEFAULT_INTS);
        a.ints = buf;
        break;
    }
    return a;
}

/* Converts given attribute 'a' to the schema's kind into 'out'. */
static bool convert(DnCtx *cx, DnGraph *g, DnOpKind kind, const DnAttr *a, DnAttr *out, DnLoc loc)
{
    const char *op = dn_op_info[kind].name;
    if (a->kind == out->kind) {
        copy_value(g, a, out);
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

/* Completes entry 'j' of the schema into out[j] (out[0..j-1] are complete):
 * the attribute given in 'attrs', else the default, else an error. */
static bool complete_one(DnCtx *cx, DnGraph *g, DnOpKind kind, const DnAttrSpec *spec, int j, int nattrs,
                         const DnAttr *attrs, DnAttr *out, DnLoc loc)
{
    const DnAttrSpec *s = &spec[j];
    out[j].name = dn_arena_strdup(&g->arena, s->name);
    out[j].kind = s->kind;
    for (int i = 0; i < nattrs; i++)
        if (!strcmp(attrs[i].name, s->name)) return convert(cx, g, kind, &attrs[i], &out[j], loc);
    if (!s->has_default) {
        dn_error(cx, loc, "%s: missing attribute '%s'", dn_op_info[kind].name, s->name);
        return false;
    }
    if (s->ref >= 0) { /* already complete (or already reported) */
        copy_value(g, &out[s->ref], &out[j]);
        return true;
    }
    int64_t buf[MAX_DEFAULT_INTS];
    DnAttr def = literal_default(s, buf);
    return convert(cx, g, kind, &def, &out[j], loc);
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
        ok &= complete_one(cx, g, kind, spec, j, nattrs, attrs, out, loc);
        if (!strcmp(spec[j].name, "axis") && in && in[0] && out[j].i < 0)
            out[j].i += in[0]->shape.rank; /* axis -1 = last */
    }
    *nout = nspec;
    return ok ? out : NULL;
}

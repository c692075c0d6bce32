/* test_attrs.c -- the attribute schemas of ir/ops.def: every row parses,
 * malformed schemas are refused with a message, defaults complete as the
 * schema says, and every attribute name the compiler's sources spell as a
 * literal ("stride" in dn_op_ints(op, "stride", &n) or
 * dn_attr_int("groups", 1)) is in an op's schema.  When the op is evident
 * from the function around the call, the name must be in that op's schema:
 * a shape or gradient rule (shape_<op>, grad_<op>) is about its op; a
 * function that builds attributes (dn_attr_*) builds the ops it names
 * (DN_OP_...); one that reads them (dn_op_*) reads the ops whose kind it
 * tests (== DN_OP_X, != DN_OP_X, case DN_OP_X).  A misspelled name fails
 * here with its file:line instead of as a dn_die when that code first runs. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"
#include "testlib.h"

/* ---- every row parses; bad schemas are refused ---------------------------- */

Test(attrs, every_ops_def_schema_parses)
{
    for (int k = 0; k < DN_OP_COUNT; k++) {
        DnAttrSpec spec[DN_MAX_ATTRS];
        char err[160] = "";
        int n = dn_schema_parse(dn_op_info[k].attrs, spec, err, sizeof err);
        cr_expect_geq(n, 0, "ops.def: the schema of %s: %s", dn_op_info[k].name, err);
        for (int i = 0; i < n; i++)
            cr_expect(!spec[i].has_default || spec[i].ref < 0 || spec[i].ref < i, "%s: %s", dn_op_info[k].name,
                      spec[i].name);
    }
}

Test(attrs, malformed_schemas_are_refused_with_a_reason)
{
    static const struct {
        const char *schema, *why;
    } bad[] = {
        {"stride", "is not name:kind"},
        {"stride:inst=1", "unknown kind 'inst'"},
        {"groups:int=1.5", "default '1.5' is not an int"},
        {"eps:float=1e-5x", "default '1e-5x' is not a float"},
        {"pad:ints=1,", "default '1,' is not a list of ints"},
        {"stride:ints=kernel kernel:ints", "neither a list of ints nor an attribute listed before it"},
        {"kernel:int stride:ints=kernel", "names an attribute of another kind"},
        {"p:float p:float", "'p' is listed twice"},
        {"act:str=", "a default must have 1 to 31 characters"},
        {"2x:int", "must be a C identifier"},
        {"a:int b:int c:int d:int e:int f:int g:int h:int i:int j:int k:int l:int m:int n:int o:int p:int q:int",
         "more than 16 attributes"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        DnAttrSpec spec[DN_MAX_ATTRS];
        char err[160] = "";
        cr_expect_eq(dn_schema_parse(bad[i].schema, spec, err, sizeof err), -1, "'%s' parsed", bad[i].schema);
        cr_expect(strstr(err, bad[i].why), "'%s': message '%s' lacks '%s'", bad[i].schema, err, bad[i].why);
    }
}

Test(attrs, a_schema_entry_carries_its_default)
{
    DnAttrSpec spec[DN_MAX_ATTRS];
    char err[160];
    cr_assert_eq(
        dn_schema_parse("kernel:ints stride:ints=kernel pad:ints=0,1 act:str=none x:float", spec, err, sizeof err), 5,
        "%s", err);
    cr_expect(!spec[0].has_default);
    cr_expect(spec[1].has_default && spec[1].ref == 0 && !strcmp(spec[1].def, "kernel"));
    cr_expect(spec[2].has_default && spec[2].ref == -1 && !strcmp(spec[2].def, "0,1"));
    cr_expect_eq(spec[3].kind, DN_ATTR_STR);
    cr_expect_str_eq(spec[3].def, "none");
    cr_expect(!spec[4].has_default);
    cr_expect_eq(dn_schema_parse("", spec, err, sizeof err), 0);
}

/* ---- completion fills the schema's defaults --------------------------------- */

static const DnAttr *find(const DnAttr *a, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].name, name)) return &a[i];
    cr_assert_fail("no attribute %s", name);
    return NULL;
}

Test(attrs, completion_fills_literal_and_dependent_defaults)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnGraph *g = dn_graph_new("t");
    int n;
    DnAttr k = dn_attr_ints("kernel", 2, (int64_t[]){3, 2});
    DnAttr *a = dn_attrs_complete(&cx, g, DN_OP_MAXPOOL2D, NULL, 1, &k, (DnLoc){0}, &n);
    cr_assert_not_null(a);
    cr_expect(a[1].nints == 2 && a[1].ints[0] == 3 && a[1].ints[1] == 2, "stride = kernel");
    cr_expect(a[2].nints == 2 && a[2].ints[0] == 0 && a[2].ints[1] == 0, "pad = [0, 0]");
    a = dn_attrs_complete(&cx, g, DN_OP_RANDOM_RESIZED_CROP, NULL, 1,
                          (DnAttr[]){dn_attr_ints("size", 1, (int64_t[]){8})}, (DnLoc){0}, &n);
    cr_assert_not_null(a);
    cr_expect_eq(find(a, n, "ratio_min")->f, 3.0 / 4.0);
    cr_expect_eq(find(a, n, "ratio_max")->f, 4.0 / 3.0);
    cr_expect_eq(find(a, n, "scale_min")->f, 0.08);
    a = dn_attrs_complete(&cx, g, DN_OP_PCA_LIGHTING, NULL, 0, NULL, (DnLoc){0}, &n);
    cr_assert_not_null(a);
    cr_expect_eq(find(a, n, "eigvec12")->f, -0.8140);
    DnValue *x = dn_graph_add_input(g, "x", DN_DTYPE_F32, &(DnShape){3, {DN_DIM_N, 4, 5}}, (DnLoc){0});
    a = dn_attrs_complete(&cx, g, DN_OP_SOFTMAX, &x, 0, NULL, (DnLoc){0}, &n);
    cr_expect_eq(a[0].i, 2, "axis = the last axis");
    a = dn_attrs_complete(&cx, g, DN_OP_SOFTMAX, NULL, 0, NULL, (DnLoc){0}, &n);
    cr_expect_eq(a[0].i, -1, "axis stays -1 without operands");
    a = dn_attrs_complete(&cx, g, DN_OP_ADAM_UPDATE, NULL, 0, NULL, (DnLoc){0}, &n);
    cr_expect_eq(find(a, n, "lr")->f, 1e-3);
    cr_expect_eq(find(a, n, "eps")->f, 1e-8);
    cr_expect_str_eq(find(a, n, "sched")->s, "const");
    cr_expect_eq(cx.nerr, 0);
    cr_expect_null(dn_attrs_complete(&cx, g, DN_OP_SGD_UPDATE, NULL, 0, NULL, (DnLoc){0}, &n), "lr is required");
    cr_expect_str_eq(cx.diags->msg, "sgd_update: missing attribute 'lr'");
    dn_graph_free(g);
    dn_ctx_free(&cx);
}

/* ---- attribute names spelled in the sources ---------------------------------- */

/* Op kinds by enum name, for DN_OP_<E> in the sources. */
static const struct {
    const char *e;
    DnOpKind k;
} enums[] = {
#define OP(E, name, mi, ma, no, fl, at) {#E, DN_OP_##E},
#include "ir/ops.def"
#undef OP
};

typedef struct Scan {
    int calls;   /* literal names checked */
    int unknown; /* of which in no fitting schema */
    char report[8192];
} Scan;

static bool ident_char(char c)
{
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool in_schema(DnOpKind k, const char *name)
{
    DnAttrSpec spec[DN_MAX_ATTRS];
    int n = dn_op_schema(k, spec);
    for (int i = 0; i < n; i++)
        if (!strcmp(spec[i].name, name)) return true;
    return false;
}

/* Skips one call argument at 'p'; returns the ',' or ')' that ends it (or the end of the text). */
static const char *skip_arg(const char *p)
{
    for (int depth = 0; *p; p++) {
        if (*p == '"' || *p == '\'') {
            char q = *p++;
            while (*p && *p != q) p += *p == '\\' && p[1] ? 2 : 1;
            if (!*p) return p;
        } else if (*p == '(' || *p == '[' || *p == '{')
            depth++;
        else if ((*p == ')' || *p == ']' || *p == '}') && depth-- == 0)
            return p;
        else if (*p == ',' && depth == 0)
            return p;
    }
    return p;
}

/* Copies the string literal at 'p' (after blanks) into 'out'; false when the argument is not a literal. */
static bool literal(const char *p, char *out, size_t len)
{
    while (*p == ' ' || *p == '\n' || *p == '\t') p++;
    if (*p != '"') return false;
    size_t n = strcspn(p + 1, "\"\\");
    if (p[1 + n] != '"' || n >= len) return false;
    memcpy(out, p + 1, n);
    out[n] = 0;
    return true;
}

/* The function around 'at': from the line after the previous "\n}" to the
 * next "\n}" (functions of the tree open and close at column 0). */
static void function_bounds(const char *text, const char *at, const char **lo, const char **hi)
{
    *lo = text;
    for (const char *p = text; (p = strstr(p, "\n}")) && p < at; p++) *lo = p + 2;
    *hi = strstr(at, "\n}");
    if (!*hi) *hi = at + strlen(at);
}

/* True when DN_OP_ at 'p' (after 'lo') is compared with: "== DN_OP_X",
 * "!= DN_OP_X" or "case DN_OP_X". */
static bool compared(const char *lo, const char *p)
{
    while (p > lo && p[-1] == ' ') p--;
    return (p - lo >= 2 && (!strncmp(p - 2, "==", 2) || !strncmp(p - 2, "!=", 2))) ||
           (p - lo >= 4 && !strncmp(p - 4, "case", 4));
}

/* Marks in 'ops' the op kinds the function [lo, hi) is about: its own name
 * shape_<op> or grad_<op>, and each DN_OP_<E> it names ('tested': only those
 * it compares an op's kind with).  Returns how many. */
static int ops_named(const char *lo, const char *hi, bool tested, bool *ops)
{
    int n = 0;
    memset(ops, 0, DN_OP_COUNT * sizeof *ops);
    for (const char *p = lo; (p = strstr(p, "DN_OP_")) && p < hi; p++)
        for (int k = 0; k < DN_OP_COUNT; k++) {
            size_t len = strlen(enums[k].e);
            if (!strncmp(p + 6, enums[k].e, len) && !ident_char(p[6 + len]) && !ops[enums[k].k] &&
                (!tested || compared(lo, p)))
                ops[enums[k].k] = true, n++;
        }
    const char *paren = memchr(lo, '(', (size_t)(hi - lo)), *name = paren;
    while (name && name > lo && ident_char(name[-1])) name--;
    for (int k = 0; paren && k < DN_OP_COUNT; k++) {
        char want[64];
        snprintf(want, sizeof want, "%.*s", (int)(paren - name), name);
        const char *op = !strncmp(want, "shape_", 6) ? want + 6 : !strncmp(want, "grad_", 5) ? want + 5 : "";
        if (!strcmp(op, dn_op_info[k].name) && !ops[k]) ops[k] = true, n++;
    }
    return n;
}

/* Checks literal attribute 'name' of the call at 'at' in 'text': of an op
 * being read ('reader': dn_op_*) or of one being built (dn_attr_*). */
static void check_name(const char *file, const char *text, const char *at, const char *name, bool reader, Scan *sc)
{
    const char *lo, *hi;
    bool ops[DN_OP_COUNT];
    function_bounds(text, at, &lo, &hi);
    int nops = ops_named(lo, hi, reader, ops), line = 1;
    bool found = false;
    for (int k = 0; k < DN_OP_COUNT; k++)
        if ((!nops || ops[k]) && in_schema((DnOpKind)k, name)) found = true;
    sc->calls++;
    if (found) return;
    for (const char *p = text; p < at; p++) line += *p == '\n';
    sc->unknown++;
    size_t len = strlen(sc->report);
    snprintf(sc->report + len, sizeof sc->report - len, "%s:%d: attribute '%s' is in no schema of %s\n", file, line,
             name, nops ? "the ops this function names" : "any op");
}

/* Checks every dn_op_int|float|str|ints|attr(op, "name" ...) and
 * dn_attr_int|float|str|ints("name", ...) in 'text' (the contents of 'file'). */
static void check_text(const char *file, const char *text, Scan *sc)
{
    static const char *const second[] = {"dn_op_int", "dn_op_float", "dn_op_str", "dn_op_ints", "dn_op_attr"};
    static const char *const first[] = {"dn_attr_int", "dn_attr_float", "dn_attr_str", "dn_attr_ints"};
    for (const char *p = text; (p = strstr(p, "dn_")); p++) {
        if (p > text && ident_char(p[-1])) continue;
        size_t len = 0;
        while (ident_char(p[len])) len++;
        if (p[len] != '(') continue;
        int arg = -1;
        for (int i = 0; i < 5; i++)
            if (strlen(second[i]) == len && !strncmp(p, second[i], len)) arg = 1;
        for (int i = 0; i < 4; i++)
            if (strlen(first[i]) == len && !strncmp(p, first[i], len)) arg = 0;
        if (arg < 0) continue;
        const char *a = p + len + 1;
        if (arg == 1) {
            a = skip_arg(a);
            if (*a != ',') continue;
            a++;
        }
        char name[64];
        if (literal(a, name, sizeof name)) check_name(file, text, p, name, arg == 1, sc);
    }
}

/* Checks every .c and .h file under 'dir' (relative to the source tree). */
static void check_dir(const char *dir, Scan *sc)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", DNNC_SOURCE_DIR, dir);
    DIR *d = opendir(path);
    cr_assert_not_null(d, "cannot list %s", path);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s", dir, e->d_name);
        size_t n = strlen(e->d_name);
        snprintf(path, sizeof path, "%s/%s", DNNC_SOURCE_DIR, rel);
        DIR *sub = opendir(path);
        if (sub) {
            closedir(sub);
            check_dir(rel, sc);
        } else if (n > 2 && e->d_name[n - 2] == '.' && (e->d_name[n - 1] == 'c' || e->d_name[n - 1] == 'h')) {
            char *text = dn_test_slurp(path, NULL);
            check_text(rel, text, sc);
            free(text);
        }
    }
    closedir(d);
}

Test(attrs, every_attribute_name_in_the_sources_is_in_a_schema)
{
    static Scan sc;
    static const char *const dirs[] = {"ir", "frontend", "passes", "backends", "tools"};
    for (int i = 0; i < 5; i++) check_dir(dirs[i], &sc);
    cr_expect_gt(sc.calls, 100, "only %d literal attribute names found: is the scanner blind?", sc.calls);
    cr_expect_eq(sc.unknown, 0, "%s", sc.report);
}

Test(attrs, the_source_check_catches_a_misspelled_name)
{
    static Scan sc;
    check_text("typo.c",
               "static int64_t groups_of(const DnOp *op)\n{\n"
               "    return dn_op_int(op, \"grups\");\n}\n",
               &sc);
    cr_expect_eq(sc.calls, 1);
    cr_expect_eq(sc.unknown, 1);
    cr_expect(strstr(sc.report, "typo.c:3: attribute 'grups' is in no schema of any op"), "%s", sc.report);
    /* A name some op has, but not the op this function builds. */
    static Scan sc2;
    check_text("wrong_op.c",
               "static DnValue *f(DnCtx *cx, DnGraph *g, DnValue *x)\n{\n"
               "    DnAttr at = dn_attr_int(\"groups\", 2);\n"
               "    return dn_build1(cx, g, DN_OP_DENSE, 1, &x, 1, &at, x->loc);\n}\n",
               &sc2);
    cr_expect_eq(sc2.unknown, 1);
    cr_expect(strstr(sc2.report, "wrong_op.c:3: attribute 'groups' is in no schema of the ops this function names"),
              "%s", sc2.report);
    /* A reader that tests the op's kind. */
    static Scan sc4;
    check_text("reader.c",
               "static bool unit(const DnOp *op)\n{\n"
               "    return op->kind == DN_OP_SCALE && dn_op_float(op, \"p\") == 1.0;\n}\n",
               &sc4);
    cr_expect_eq(sc4.unknown, 1, "%s", sc4.report);
    /* Correct spellings, a gradient rule by its name, and non-literal names pass. */
    static Scan sc3;
    check_text("ok.c",
               "static void grad_conv2d(DnOp *op)\n{\n    use(dn_op_ints(op, \"dilation\", NULL));\n}\n"
               "static void g(DnOp *op, const char *n)\n{\n"
               "    use(dn_op_float(op, n), dn_attr_ints(\"kernel\", 2, k), dn_op_attr(f(op, 1), \"act\"));\n}\n",
               &sc3);
    cr_expect_eq(sc3.calls, 3);
    cr_expect_eq(sc3.unknown, 0, "%s", sc3.report);
}

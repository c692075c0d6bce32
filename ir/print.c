/* print.c -- writes a graph in the IR text form (grammar: docs/ir.md).
 *
 * The text is the debugging and golden-test interface (--emit=ir,
 * --print-after), so it is deterministic: op results are renumbered %0,
 * %1, ... in order, inputs print as %<name>, parameters as @<name>,
 * attributes in schema order, floats in the shortest form that reads back
 * bit-exact.  read.c parses exactly this form: print(read(print(g))) ==
 * print(g).  Dead ops are not printed.
 */
#include "ir.h"

#include <math.h>
#include <stdlib.h>

typedef struct Printer {
    FILE *out;
    const DnGraph *g;
    int *num; /* op result value id -> printed number, -1 when not an op result */
} Printer;

/* Writes 'x' with the fewest digits that strtod reads back exactly, always
 * recognisable as a float ("1.0", "1e-05", "inf", "-inf", "nan"). */
static void print_float(FILE *out, double x)
{
    if (isnan(x)) {
        fputs("nan", out);
        return;
    }
    if (isinf(x)) {
        fputs(x < 0 ? "-inf" : "inf", out);
        return;
    }
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, x);
        if (strtod(buf, NULL) == x) break;
    }
    fputs(buf, out);
    if (!strpbrk(buf, ".e")) fputs(".0", out);
}

static void print_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p == '\n')
            fputs("\\n", out);
        else if (*p == '\t')
            fputs("\\t", out);
        else if (*p < 32 || *p >= 127)
            fprintf(out, "\\x%02x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* True when 'name' can be printed bare after '@' or '%'. */
static bool bare_name(const char *name)
{
    if (!*name) return false;
    for (const char *p = name; *p; p++)
        if (!(*p == '_' || *p == '.' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
              (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

static void print_name(FILE *out, char sigil, const char *name)
{
    fputc(sigil, out);
    if (bare_name(name))
        fputs(name, out);
    else
        print_string(out, name);
}

static void print_type(FILE *out, DnDType t, const DnShape *s)
{
    char buf[128];
    fputs(dn_type_str(t, s, buf, sizeof buf), out);
}

static void print_loc(FILE *out, DnLoc loc)
{
    if (!loc.file) return;
    fputs("  loc(", out);
    print_string(out, loc.file);
    fprintf(out, ":%d:%d)", loc.line, loc.col);
}

static void print_ref(Printer *p, const DnValue *v)
{
    if (v->kind == DN_VAL_PARAM)
        print_name(p->out, '@', p->g->params.data[v->index]->name);
    else if (v->kind == DN_VAL_INPUT)
        print_name(p->out, '%', v->name);
    else
        fprintf(p->out, "%%%d", p->num[v->id]);
}

static void print_attrs(FILE *out, int n, const DnAttr *a)
{
    if (n == 0) return;
    fputs(" {", out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s%s = ", i ? ", " : "", a[i].name);
        switch (a[i].kind) {
        case DN_ATTR_INT: fprintf(out, "%lld", (long long)a[i].i); break;
        case DN_ATTR_FLOAT: print_float(out, a[i].f); break;
        case DN_ATTR_STR: print_string(out, a[i].s); break;
        case DN_ATTR_INTS:
            fputc('[', out);
            for (int j = 0; j < a[i].nints; j++) fprintf(out, "%s%lld", j ? ", " : "", (long long)a[i].ints[j]);
            fputc(']', out);
            break;
        }
    }
    fputc('}', out);
}

static void print_header(Printer *p)
{
    const DnGraph *g = p->g;
    FILE *out = p->out;
    fputs("func ", out);
    print_name(out, '@', g->name);
    fputc('(', out);
    for (int i = 0; i < g->inputs.len; i++) {
        const DnValue *v = g->inputs.data[i];
        if (i) fputs(", ", out);
        print_name(out, '%', v->name);
        fputs(": ", out);
        print_type(out, v->dtype, &v->shape);
        if (v->train_only) fputs(" train_only", out);
        print_loc(out, v->loc);
    }
    fputs(") -> (", out);
    for (int i = 0; i < g->outputs.len; i++) {
        fputs(i ? ", " : "", out);
        if (bare_name(g->output_names.data[i]))
            fputs(g->output_names.data[i], out);
        else
            print_string(out, g->output_names.data[i]);
        fputs(" = ", out);
        print_ref(p, g->outputs.data[i]);
    }
    fputs(") {\n", out);
}

static void print_param(FILE *out, const DnParam *q)
{
    static const char *kinds[] = {"weight", "buffer", "optim", "cache"};
    fputs("  param ", out);
    print_name(out, '@', q->name);
    fputs(": ", out);
    print_type(out, q->dtype, &q->shape);
    fprintf(out, " %s", kinds[q->kind]);
    if (q->kind == DN_PARAM_WEIGHT && !q->trainable) fputs(" frozen", out);
    if (q->kind != DN_PARAM_WEIGHT && q->trainable) fputs(" trainable", out);
    switch (q->init.kind) {
    case DN_INIT_ZEROS: fputs(" zeros", out); break;
    case DN_INIT_ONES: fputs(" ones", out); break;
    case DN_INIT_UNIFORM:
    case DN_INIT_NORMAL:
        fputs(q->init.kind == DN_INIT_UNIFORM ? " uniform(" : " normal(", out);
        print_float(out, q->init.a);
        fputs(", ", out);
        print_float(out, q->init.b);
        fputc(')', out);
        break;
    }
    if (q->init.zero_row) fprintf(out, " zero_row %lld", (long long)(q->init.zero_row - 1));
    print_loc(out, q->loc);
    fputc('\n', out);
}

static void print_op(Printer *p, const DnOp *op)
{
    FILE *out = p->out;
    fputs("  ", out);
    for (int i = 0; i < op->nout; i++) fprintf(out, "%s%%%d", i ? ", " : "", p->num[op->out[i]->id]);
    if (op->nout) fputs(" = ", out);
    fputs(dn_op_info[op->kind].name, out);
    for (int i = 0; i < op->nin; i++) {
        fputs(i ? ", " : " ", out);
        print_ref(p, op->in[i]);
    }
    print_attrs(out, op->nattrs, op->attrs);
    for (int i = 0; i < op->nout; i++) {
        fputs(i ? ", " : " : ", out);
        print_type(out, op->out[i]->dtype, &op->out[i]->shape);
    }
    print_loc(out, op->loc);
    fputc('\n', out);
}

void dn_graph_print(const DnGraph *g, FILE *out)
{
    Printer p = {out, g, calloc((size_t)g->nvalues + 1, sizeof(int))};
    if (!p.num) dn_die(__FILE__, __LINE__, "out of memory");
    int next = 0;
    for (int i = 0; i < g->ops.len; i++)
        if (!g->ops.data[i]->dead)
            for (int j = 0; j < g->ops.data[i]->nout; j++) p.num[g->ops.data[i]->out[j]->id] = next++;
    print_header(&p);
    for (int i = 0; i < g->params.len; i++) print_param(out, g->params.data[i]);
    for (int i = 0; i < g->ops.len; i++)
        if (!g->ops.data[i]->dead) print_op(&p, g->ops.data[i]);
    if (g->loss) {
        fputs("  loss ", out);
        print_ref(&p, g->loss);
        fputc('\n', out);
    }
    if (g->optim) {
        fprintf(out, "  optimizer %s", dn_op_info[g->optim->kind].name);
        print_attrs(out, g->optim->nattrs, g->optim->attrs);
        print_loc(out, g->optim->loc);
        fputc('\n', out);
    }
    fputs("}\n", out);
    free(p.num);
}

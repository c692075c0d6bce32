/* ops_help.c -- the op table as text, for `dnnc --help-ops`.
 *
 * One line per op of ops.def: name, operand count, result count, flags and
 * the attribute schema as dn_op_schema reads it (so what it prints is what
 * the builder fills in).  Reads only the op table; no graph needed.
 */
#include "ir.h"

/* Writes op flags 'fl' as "elemwise,random", or "-" when none. */
static void print_flags(FILE *out, unsigned fl)
{
    static const char *names[] = {"elemwise", "view",  "side_effect",
                                  "random",   "guard", "strided_out"}; /* ORDER DN_OPF */
    _Static_assert(DN_OPF_STRIDED_OUT == 1 << 5, "a flag without a name in print_flags");
    char buf[64] = "";
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (fl & (1u << i)) snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", *buf ? "," : "", names[i]);
    fprintf(out, "%-12s", *buf ? buf : "-");
}

/* Writes op 'k's attributes as "name:kind[=default] ...", or "-" when none. */
static void print_schema(FILE *out, DnOpKind k)
{
    DnAttrSpec spec[DN_MAX_ATTRS];
    int n = dn_op_schema(k, spec);
    if (!n) fputs("-", out);
    for (int i = 0; i < n; i++) {
        fprintf(out, "%s%s:%s", i ? " " : "", spec[i].name, dn_attr_kind_name(spec[i].kind));
        if (spec[i].has_default) fprintf(out, "=%s", spec[i].def);
    }
}

void dn_ops_print(FILE *out)
{
    fputs("IR ops (ir/ops.def).  in: operand count (optional operands last); out: result count;\n"
          "attributes: name:kind=default, required when no default is shown; =NAME: the value of\n"
          "attribute NAME; stride, pad, dilation and kernel given one value use it for both axes;\n"
          "a negative axis counts from the last axis (axis=-1: the last).\n\n",
          out);
    fprintf(out, "%-20s %-5s %-4s %-12s %s\n", "op", "in", "out", "flags", "attributes");
    for (int k = 0; k < DN_OP_COUNT; k++) {
        const DnOpInfo *op = &dn_op_info[k];
        char in[16];
        if (op->min_in == op->max_in)
            snprintf(in, sizeof in, "%d", op->min_in);
        else
            snprintf(in, sizeof in, "%d-%d", op->min_in, op->max_in);
        fprintf(out, "%-20s %-5s %-4d ", op->name, in, op->nout);
        print_flags(out, op->flags);
        fputc(' ', out);
        print_schema(out, (DnOpKind)k);
        fputc('\n', out);
    }
}

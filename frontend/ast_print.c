/* ast_print.c -- the --emit=ast dump: one node per line, indented by depth,
 * each with its source position as  @LINE:COL.  Deterministic (no pointers,
 * no hashing), so tests can compare it as text.  Pipes appear desugared:
 * x |> f(a) prints as the call f(x, a).
 */
#include "ast.h"

static void print_expr(FILE *out, const AstExpr *e, int ind);
static void print_body(FILE *out, const AstBody *b, int ind);

static void indent(FILE *out, int ind) { fprintf(out, "%*s", 2 * ind, ""); }

static void print_type(FILE *out, const AstType *t)
{
    static const char *dt[] = {"f32", "i32", "i64"};
    fprintf(out, "%s[", dt[t->dtype]);
    for (int i = 0; i < t->shape.rank; i++) {
        if (i) fputs(", ", out);
        if (t->shape.dim[i] == DN_DIM_N)
            fputc('N', out);
        else
            fprintf(out, "%lld", (long long)t->shape.dim[i]);
    }
    fputc(']', out);
}

static void print_args(FILE *out, const AstExpr *e, int ind)
{
    for (int i = 0; i < e->args.len; i++) {
        const AstArg *a = &e->args.data[i];
        if (a->name) {
            indent(out, ind);
            fprintf(out, "%s =\n", a->name);
            print_expr(out, a->value, ind + 1);
        } else {
            print_expr(out, a->value, ind);
        }
    }
}

static void print_expr(FILE *out, const AstExpr *e, int ind)
{
    indent(out, ind);
    if (!e) {
        fputs("(none)\n", out);
        return;
    }
    switch (e->kind) {
    case EXPR_INT: fprintf(out, "int %lld", (long long)e->i); break;
    case EXPR_FLOAT: fprintf(out, "float %.17g", e->f); break;
    case EXPR_STR: fprintf(out, "str \"%s\"", e->s); break;
    case EXPR_BOOL: fprintf(out, "bool %s", e->i ? "true" : "false"); break;
    case EXPR_NAME: fprintf(out, "name %s", e->s); break;
    case EXPR_CALL: fprintf(out, "call %s%s", e->s, e->parens ? "()" : ""); break;
    case EXPR_BINARY: fprintf(out, "binary %s", dn_tok_spelling(e->op)); break;
    case EXPR_UNARY: fprintf(out, "unary %s", dn_tok_spelling(e->op)); break;
    case EXPR_TERNARY: fputs("ternary", out); break;
    case EXPR_INDEX: fputs("index", out); break;
    case EXPR_SLICE: fputs("slice", out); break;
    case EXPR_LIST: fputs("list", out); break;
    case EXPR_REPEAT: fprintf(out, "repeat%s%s", e->s ? " as " : "", e->s ? e->s : ""); break;
    }
    if (e->label) fprintf(out, " label=%s", e->label);
    fprintf(out, " @%d:%d\n", e->loc.line, e->loc.col);
    switch (e->kind) {
    case EXPR_BINARY:
        print_expr(out, e->a, ind + 1);
        print_expr(out, e->b, ind + 1);
        break;
    case EXPR_UNARY: print_expr(out, e->a, ind + 1); break;
    case EXPR_TERNARY:
        print_expr(out, e->a, ind + 1);
        print_expr(out, e->b, ind + 1);
        print_expr(out, e->c, ind + 1);
        break;
    case EXPR_SLICE:
        print_expr(out, e->a, ind + 1);
        print_expr(out, e->b, ind + 1);
        break;
    case EXPR_INDEX:
        print_expr(out, e->a, ind + 1);
        print_args(out, e, ind + 1);
        break;
    case EXPR_CALL:
    case EXPR_LIST: print_args(out, e, ind + 1); break;
    case EXPR_REPEAT:
        print_expr(out, e->a, ind + 1);
        print_body(out, &e->body, ind + 1);
        break;
    default: break;
    }
}

static void print_stmt(FILE *out, const AstStmt *s, int ind)
{
    indent(out, ind);
    switch (s->kind) {
    case STMT_ASSIGN: fprintf(out, "assign %s", s->name); break;
    case STMT_EXPR: fputs("expr", out); break;
    case STMT_RETURN: fputs("return", out); break;
    case STMT_IF: fputs("if", out); break;
    case STMT_PARAM:
        fprintf(out, "param %s ", s->name);
        print_type(out, s->type);
        break;
    case STMT_INPUT:
        fprintf(out, "input %s ", s->name);
        print_type(out, s->type);
        break;
    case STMT_FREEZE:
        fputs("freeze", out);
        for (int i = 0; i < s->names.len; i++) fprintf(out, " %s", s->names.data[i]);
        break;
    case STMT_AUGMENT: fprintf(out, "augment %s", s->name); break;
    }
    fprintf(out, " @%d:%d\n", s->loc.line, s->loc.col);
    if (s->e) print_expr(out, s->e, ind + 1);
    if (s->kind == STMT_IF) {
        indent(out, ind);
        fputs("then\n", out);
        print_body(out, &s->then, ind + 1);
        if (s->has_else) {
            indent(out, ind);
            fputs("else\n", out);
            print_body(out, &s->els, ind + 1);
        }
    }
}

static void print_body(FILE *out, const AstBody *b, int ind)
{
    for (int i = 0; i < b->len; i++) print_stmt(out, b->data[i], ind);
}

static void print_params(FILE *out, const char *what, const AstParamVec *v)
{
    for (int i = 0; i < v->len; i++) {
        const AstParam *p = &v->data[i];
        fprintf(out, "  %s %s", what, p->name);
        if (p->hp)
            fprintf(out, ": %s", p->hp);
        else if (p->has_type) {
            fputc(' ', out);
            print_type(out, &p->type);
        }
        fprintf(out, " @%d:%d\n", p->loc.line, p->loc.col);
        if (p->def) print_expr(out, p->def, 2);
    }
}

/* Writes the dump of 'ast' to 'out'; one declaration after another. */
void dn_ast_print(const DnAst *ast, FILE *out)
{
    static const char *kind[] = {"model", "block", "train"};
    for (int i = 0; i < ast->decls.len; i++) {
        const AstDecl *d = ast->decls.data[i];
        fprintf(out, "%s %s @%d:%d\n", kind[d->kind], d->name, d->loc.line, d->loc.col);
        print_params(out, d->kind == DECL_MODEL ? "input" : "param", &d->params);
        print_params(out, "output", &d->outputs);
        print_body(out, &d->body, 1);
    }
}

/* ast_print.c -- the --emit=ast dump: one node per line, indented by depth,
 * each with its source position as  @LINE:COL.  Deterministic (no pointers,
 * no hashing), so tests can compare it as text.  Pipes appear desugared:
 * x |> f(a) prints as the call f(x, a).  Chains of any length print
 * without recursion; past 100 levels the indentation stops growing and
 * the line starts with its depth instead ("[150] name x @2:7").
 */
#include "ast.h"

#include <stdlib.h>

static void print_expr(FILE *out, const AstExpr *e, int ind);
static void print_body(FILE *out, const AstBody *b, int ind);

enum { MAX_INDENT = 100 };

/* Indentation for depth 'ind'; past MAX_INDENT levels the depth is written
 * as a number, so the dump of a deep chain stays linear in its size. */
static void indent(FILE *out, int ind)
{
    if (ind <= MAX_INDENT)
        fprintf(out, "%*s", 2 * ind, "");
    else
        fprintf(out, "%*s[%d] ", 2 * MAX_INDENT, "", ind);
}

static void print_type(FILE *out, const AstType *t)
{
    static const char *dt[] = {"f32", "i32", "i64"};
    fprintf(out, "%s[", dt[t->dtype]);
    for (int i = 0; i < t->shape.rank; i++) {
        if (i) fputs(", ", out);
        if (t->shape.dim[i] == DN_DIM_N)
            fputc('N', out);
        else if (t->shape.dim[i] == DN_DIM_SEQ_REF)
            fputc('T', out);
        else if (DN_DIM_IS_SEQ(t->shape.dim[i]))
            fprintf(out, "T<=%lld", (long long)DN_SEQ_BOUND(t->shape.dim[i]));
        else
            fprintf(out, "%lld", (long long)t->shape.dim[i]);
    }
    fputc(']', out);
}

/* One node's own line. */
static void print_node(FILE *out, const AstExpr *e, int ind)
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
}

/* What is left to print: an expression, the "name =" line of a keyword
 * argument, or a repeat's body. */
typedef struct Item {
    enum { ITEM_EXPR, ITEM_KEYWORD, ITEM_BODY } kind;
    const AstExpr *e; /* EXPR; BODY: the repeat */
    const char *name; /* KEYWORD */
    int ind;
} Item;

typedef struct Todo {
    Item *data;
    int len, cap;
} Todo;

static void todo_push(Todo *t, Item it)
{
    if (t->len == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->data = realloc(t->data, (size_t)t->cap * sizeof *t->data);
        if (!t->data) dn_die(__FILE__, __LINE__, "out of memory (%d items)", t->cap);
    }
    t->data[t->len++] = it;
}

/* Pushes the arguments of 'e' (printed first to last, so pushed last first). */
static void push_args(Todo *t, const AstExpr *e, int ind)
{
    for (int i = e->args.len - 1; i >= 0; i--) {
        const AstArg *a = &e->args.data[i];
        todo_push(t, (Item){ITEM_EXPR, a->value, NULL, a->name ? ind + 1 : ind});
        if (a->name) todo_push(t, (Item){ITEM_KEYWORD, NULL, a->name, ind});
    }
}

/* Pushes the children of 'e' in reverse order of printing. */
static void push_children(Todo *t, const AstExpr *e, int ind)
{
    switch (e->kind) {
    case EXPR_TERNARY: todo_push(t, (Item){ITEM_EXPR, e->c, NULL, ind}); /* fall through */
    case EXPR_BINARY: todo_push(t, (Item){ITEM_EXPR, e->b, NULL, ind});  /* fall through */
    case EXPR_UNARY: todo_push(t, (Item){ITEM_EXPR, e->a, NULL, ind}); break;
    case EXPR_SLICE: /* start, stop, then the step when written */
        if (e->c) todo_push(t, (Item){ITEM_EXPR, e->c, NULL, ind});
        todo_push(t, (Item){ITEM_EXPR, e->b, NULL, ind});
        todo_push(t, (Item){ITEM_EXPR, e->a, NULL, ind});
        break;
    case EXPR_INDEX:
        push_args(t, e, ind);
        todo_push(t, (Item){ITEM_EXPR, e->a, NULL, ind});
        break;
    case EXPR_CALL:
    case EXPR_LIST: push_args(t, e, ind); break;
    case EXPR_REPEAT:
        todo_push(t, (Item){ITEM_BODY, e, NULL, ind});
        todo_push(t, (Item){ITEM_EXPR, e->a, NULL, ind});
        break;
    default: break;
    }
}

/* Prints 'e' and its subtree with an explicit stack: chains (a + b + c,
 * x |> f |> g, x[0][0]) nest without bound.  Bodies recurse; the parser
 * bounds their nesting. */
static void print_expr(FILE *out, const AstExpr *e, int ind)
{
    Todo t = {0};
    todo_push(&t, (Item){ITEM_EXPR, e, NULL, ind});
    while (t.len) {
        Item it = t.data[--t.len];
        if (it.kind == ITEM_KEYWORD) {
            indent(out, it.ind);
            fprintf(out, "%s =\n", it.name);
        } else if (it.kind == ITEM_BODY) {
            print_body(out, &it.e->body, it.ind);
        } else {
            print_node(out, it.e, it.ind);
            if (it.e) push_children(&t, it.e, it.ind + 1);
        }
    }
    free(t.data);
}

/* One statement; an else-if chain in a loop, each 'if' one level deeper. */
static void print_stmt(FILE *out, const AstStmt *s, int ind)
{
    for (;;) {
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
        if (s->kind != STMT_IF) return;
        indent(out, ind);
        fputs("then\n", out);
        print_body(out, &s->then, ind + 1);
        if (!s->has_else) return;
        indent(out, ind);
        fputs("else\n", out);
        if (s->els.len != 1 || s->els.data[0]->kind != STMT_IF) {
            print_body(out, &s->els, ind + 1);
            return;
        }
        s = s->els.data[0];
        ind++;
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

/* parse.c -- recursive-descent parser: tokens to the AST (ast.h).
 *
 * Second stage of the frontend (lex -> parse -> lower).  One function per
 * grammar rule of docs/language.md, each headed by its rule.  Errors are
 * reported at the offending token; the parser then enters panic mode (no
 * further messages) until it resynchronises at the next statement boundary
 * (NEWLINE or '}') or declaration, so one run reports several errors.
 * Nesting is limited to MAX_DEPTH so no input can exhaust the stack.
 */
#include "ast.h"

#include <ctype.h>
#include <stdlib.h>

enum { MAX_DEPTH = 200 };

typedef struct Parser {
    DnCtx *cx;
    DnArena *a;
    Token *tok;    /* current token, in 'toks' */
    TokenVec toks; /* the tokens lexed and not yet dropped; malloc'd */
    int last_end;  /* index in 'toks' of the last NEWLINE or EOF */
    Lexer *lx;
    bool panic; /* an error was reported; suppress until sync */
    int nerr;
    int depth;     /* expression/body nesting */
    int64_t nodes; /* AstExpr and AstStmt made */
    bool nolabel;  /* 'x :' is not a label here (ternary, index) */
} Parser;

static AstExpr *parse_expr(Parser *p);
static void parse_body(Parser *p, AstBody *body, bool train);

/* ---- helpers ---------------------------------------------------------- */

static bool at(Parser *p, TokKind k) { return p->tok->kind == k; }
static bool at_ident(Parser *p, const char *s)
{
    return at(p, TOK_IDENT) && p->tok->len == (int)strlen(s) && memcmp(p->tok->text, s, (size_t)p->tok->len) == 0;
}
/* Tokens are lexed a statement at a time: there is always a NEWLINE or EOF
 * at or after p->tok in p->toks, and no lookahead goes past one, so the
 * parser lexes more only when it moves past the last.  Functions keep no
 * Token pointer across a call that may advance. */
static void lex_more(Parser *p)
{
    ptrdiff_t at = p->toks.data ? p->tok - p->toks.data : 0;
    dn_lexer_more(p->lx); /* may move p->toks.data */
    p->tok = p->toks.data + at;
    for (int i = p->toks.len - 1; i >= at; i--)
        if (p->toks.data[i].kind == TOK_NEWLINE || p->toks.data[i].kind == TOK_EOF) {
            p->last_end = i;
            break;
        }
}

/* Drops the tokens before the current one once they are many; called
 * between statements, so memory holds about one statement's tokens. */
static void drop_read_tokens(Parser *p)
{
    int at = (int)(p->tok - p->toks.data);
    if (at < 4096 || at < p->toks.len / 2) return;
    memmove(p->toks.data, p->tok, (size_t)(p->toks.len - at) * sizeof *p->tok);
    p->toks.len -= at;
    p->last_end -= at;
    p->tok = p->toks.data;
}

/* Moves to the next token; returns a copy of the one moved past. */
static Token advance(Parser *p)
{
    Token t = *p->tok;
    if (t.kind == TOK_EOF) return t;
    p->tok++;
    if (p->tok - p->toks.data > p->last_end) lex_more(p);
    return t;
}
static bool accept(Parser *p, TokKind k)
{
    if (!at(p, k)) return false;
    advance(p);
    return true;
}

static void error_at(Parser *p, DnLoc loc, const char *fmt, ...) DN_PRINTF(3, 4);
static void error_at(Parser *p, DnLoc loc, const char *fmt, ...)
{
    p->nerr++;
    if (p->panic) return;
    p->panic = true;
    va_list ap;
    va_start(ap, fmt);
    dn_verror(p->cx, loc, fmt, ap);
    va_end(ap);
}

/* Reports "expected 'X' WHAT, got 'Y'" at the current token. */
static bool expect(Parser *p, TokKind k, const char *what)
{
    if (accept(p, k)) return true;
    char buf[80];
    error_at(p, p->tok->loc, "expected '%s' %s, got %s", dn_tok_spelling(k), what,
             dn_tok_describe(p->tok, buf, sizeof buf));
    return false;
}

static const char *expect_ident(Parser *p, const char *what, DnLoc *loc)
{
    if (loc) *loc = p->tok->loc;
    if (at(p, TOK_IDENT)) {
        Token t = advance(p);
        return dn_arena_strndup(p->a, t.text, (size_t)t.len);
    }
    char buf[80];
    error_at(p, p->tok->loc, "expected %s, got %s", what, dn_tok_describe(p->tok, buf, sizeof buf));
    return "<error>";
}

static AstExpr *new_expr(Parser *p, ExprKind k, DnLoc loc)
{
    AstExpr *e = dn_arena_alloc(p->a, sizeof *e);
    p->nodes++;
    e->kind = k;
    e->loc = loc;
    return e;
}

static AstStmt *new_stmt(Parser *p, StmtKind k, DnLoc loc)
{
    AstStmt *s = dn_arena_alloc(p->a, sizeof *s);
    p->nodes++;
    s->kind = k;
    s->loc = loc;
    return s;
}

/* Skips to the end of the current statement: the next NEWLINE at this brace
 * level (consumed), or a '}' that closes it (not consumed). */
static void sync_stmt(Parser *p)
{
    int braces = 0;
    while (!at(p, TOK_EOF)) {
        if (at(p, TOK_LBRACE))
            braces++;
        else if (at(p, TOK_RBRACE)) {
            if (braces == 0) break;
            braces--;
        } else if (at(p, TOK_NEWLINE) && braces == 0) {
            advance(p);
            break;
        }
        advance(p);
    }
    p->panic = false;
}

static bool enter(Parser *p)
{
    if (++p->depth <= MAX_DEPTH) return true;
    error_at(p, p->tok->loc, "nesting is too deep (more than %d levels)", MAX_DEPTH);
    return false;
}

/* ---- expressions -------------------------------------------------------- */

/* True when 't' can be a part of a label path: a name, an int (PyTorch's
 * "0" of nn.Sequential), or a float written digits.digits, which is two
 * int parts the lexer read as one number ("0.1" in "features.0.1"). */
static bool is_path_part(const Token *t)
{
    if (t->kind == TOK_IDENT || t->kind == TOK_INT) return true;
    if (t->kind != TOK_FLOAT) return false;
    for (int i = 0; i < t->len; i++)
        if (!isdigit((unsigned char)t->text[i]) && t->text[i] != '.') return false;
    return true;
}

/* The token after the path that starts at 't', or NULL when none does. */
static const Token *path_end(const Token *t)
{
    if (!is_path_part(t)) return NULL;
    t++;
    while (t[0].kind == TOK_DOT && is_path_part(&t[1])) t += 2;
    return t;
}

/* path = part { "." part } ;  part = IDENT | INT | INT "." INT (one number token) */
static const char *parse_path(Parser *p)
{
    if (!is_path_part(p->tok)) return expect_ident(p, "a label", NULL);
    size_t n = (size_t)p->tok->len; /* one allocation, so a long path costs linear time */
    for (const Token *t = p->tok + 1; t[0].kind == TOK_DOT && is_path_part(&t[1]); t += 2) n += 1 + (size_t)t[1].len;
    char *s = dn_arena_alloc(p->a, n + 1), *w = s;
    for (;;) {
        Token t = advance(p);
        memcpy(w, t.text, (size_t)t.len);
        w += t.len;
        if (!at(p, TOK_DOT) || !is_path_part(&p->tok[1])) break;
        advance(p);
        *w++ = '.';
    }
    if (accept(p, TOK_DOT)) {
        char buf[80];
        error_at(p, p->tok->loc, "expected a label part after '.', got %s", dn_tok_describe(p->tok, buf, sizeof buf));
    }
    return s;
}

/* True when the tokens at 't' read  path ":" (IDENT | "repeat"). */
static bool looks_like_label(const Token *t)
{
    const Token *e = path_end(t);
    return e && e[0].kind == TOK_COLON && (e[1].kind == TOK_IDENT || e[1].kind == TOK_REPEAT);
}

/* args = "(" [ arg { "," arg } ] ")" ;  arg = [ IDENT "=" ] expr */
static void parse_args(Parser *p, AstExpr *call)
{
    bool save = p->nolabel;
    p->nolabel = false;
    expect(p, TOK_LPAREN, "before arguments");
    while (!at(p, TOK_RPAREN) && !p->panic) {
        AstArg arg = {.loc = p->tok->loc};
        if (at(p, TOK_IDENT) && p->tok[1].kind == TOK_ASSIGN) {
            arg.name = dn_arena_strndup(p->a, p->tok->text, (size_t)p->tok->len);
            advance(p);
            advance(p);
        }
        arg.value = parse_expr(p);
        dn_vec_push(p->a, &call->args, arg);
        if (!accept(p, TOK_COMMA)) break;
    }
    if (!p->panic) expect(p, TOK_RPAREN, "after arguments");
    p->nolabel = save;
}

/* repeat = "repeat" or_expr [ "as" IDENT ] body */
static AstExpr *parse_or(Parser *p);
static AstExpr *parse_repeat(Parser *p)
{
    AstExpr *e = new_expr(p, EXPR_REPEAT, advance(p).loc);
    if (!enter(p)) { /* the count may itself be a repeat */
        p->depth--;
        e->a = new_expr(p, EXPR_INT, e->loc);
        return e;
    }
    e->a = parse_or(p);
    p->depth--;
    if (accept(p, TOK_AS)) e->s = expect_ident(p, "an index name after 'as'", NULL);
    parse_body(p, &e->body, false);
    return e;
}

/* callee = [ path ":" ] ( IDENT [ args ] | repeat ) */
static AstExpr *parse_callee(Parser *p, bool force_call)
{
    const char *label = NULL;
    DnLoc label_loc = p->tok->loc;
    if (!p->nolabel && looks_like_label(p->tok)) {
        label = parse_path(p);
        advance(p); /* ':' */
    } else if (!p->nolabel && path_end(p->tok) && path_end(p->tok)->kind == TOK_COLON &&
               (!at(p, TOK_IDENT) || path_end(p->tok) != p->tok + 1)) {
        const char *s = parse_path(p); /* "0:" or "a.b:" without a call after it ("a:": below) */
        error_at(p, p->tok->loc, "a label must be followed by a layer or block call, as in '%s: dense(10)'", s);
        return new_expr(p, EXPR_INT, label_loc);
    }
    if (at(p, TOK_REPEAT)) {
        AstExpr *e = parse_repeat(p);
        e->label = label;
        e->label_loc = label_loc;
        return e;
    }
    DnLoc loc = p->tok->loc;
    const char *name = expect_ident(p, force_call ? "a layer or block after '|>'" : "an expression", NULL);
    bool call = at(p, TOK_LPAREN);
    AstExpr *e = new_expr(p, call || force_call || label ? EXPR_CALL : EXPR_NAME, loc);
    e->s = name;
    e->label = label;
    e->label_loc = label_loc;
    if (call) {
        e->parens = true;
        parse_args(p, e);
    } else if (at(p, TOK_COLON) && !p->nolabel) {
        error_at(p, p->tok->loc, "a label must be followed by a layer or block call, as in '%s: dense(10)'", name);
    }
    return e;
}

/* list = "[" [ expr { "," expr } ] "]" */
static AstExpr *parse_list(Parser *p)
{
    AstExpr *e = new_expr(p, EXPR_LIST, advance(p).loc);
    bool save = p->nolabel;
    p->nolabel = false;
    while (!at(p, TOK_RBRACKET) && !p->panic) {
        AstArg arg = {.loc = p->tok->loc, .value = parse_expr(p)};
        dn_vec_push(p->a, &e->args, arg);
        if (!accept(p, TOK_COMMA)) break;
    }
    if (!p->panic) expect(p, TOK_RBRACKET, "after list elements");
    p->nolabel = save;
    return e;
}

/* primary = INT | FLOAT | STRING | "true" | "false" | "(" expr ")" | list | callee */
static AstExpr *parse_primary(Parser *p)
{
    Token *t = p->tok;
    AstExpr *e;
    if (t->kind != TOK_IDENT && !p->nolabel && looks_like_label(t))
        return parse_callee(p, false); /* a numeric label: 0: dense(8) */
    switch (t->kind) {
    case TOK_INT:
        e = new_expr(p, EXPR_INT, t->loc);
        e->i = t->ival;
        advance(p);
        return e;
    case TOK_FLOAT:
        e = new_expr(p, EXPR_FLOAT, t->loc);
        e->f = t->fval;
        advance(p);
        return e;
    case TOK_STRING:
        e = new_expr(p, EXPR_STR, t->loc);
        e->s = t->str;
        advance(p);
        return e;
    case TOK_TRUE:
    case TOK_FALSE:
        e = new_expr(p, EXPR_BOOL, t->loc);
        e->i = t->kind == TOK_TRUE;
        advance(p);
        return e;
    case TOK_LPAREN: {
        advance(p);
        bool save = p->nolabel;
        p->nolabel = false;
        e = parse_expr(p);
        p->nolabel = save;
        expect(p, TOK_RPAREN, "after parenthesized expression");
        return e;
    }
    case TOK_LBRACKET: return parse_list(p);
    case TOK_IDENT:
    case TOK_REPEAT: return parse_callee(p, false);
    default: {
        char buf[80];
        error_at(p, t->loc, "expected an expression, got %s", dn_tok_describe(t, buf, sizeof buf));
        return new_expr(p, EXPR_INT, t->loc);
    }
    }
}

/* index = [ expr ] [ ":" [ expr ] [ ":" [ expr ] ] ]   (start:stop:step) */
static AstExpr *parse_index(Parser *p)
{
    DnLoc loc = p->tok->loc;
    AstExpr *lo = NULL;
    if (!at(p, TOK_COLON)) lo = parse_expr(p);
    if (!accept(p, TOK_COLON)) return lo;
    AstExpr *e = new_expr(p, EXPR_SLICE, loc);
    e->a = lo;
    if (!at(p, TOK_COMMA) && !at(p, TOK_RBRACKET) && !at(p, TOK_COLON)) e->b = parse_expr(p);
    if (accept(p, TOK_COLON) && !at(p, TOK_COMMA) && !at(p, TOK_RBRACKET)) e->c = parse_expr(p);
    return e;
}

/* postfix = primary { "[" index { "," index } "]" } */
static AstExpr *parse_postfix(Parser *p)
{
    AstExpr *e = parse_primary(p);
    while (at(p, TOK_LBRACKET) && !p->panic) {
        AstExpr *ix = new_expr(p, EXPR_INDEX, advance(p).loc);
        ix->a = e;
        bool save = p->nolabel;
        p->nolabel = true;
        do {
            AstArg arg = {.loc = p->tok->loc, .value = parse_index(p)};
            dn_vec_push(p->a, &ix->args, arg);
        } while (accept(p, TOK_COMMA) && !p->panic);
        p->nolabel = save;
        expect(p, TOK_RBRACKET, "after index");
        e = ix;
    }
    return e;
}

/* unary = "-" unary | postfix */
static AstExpr *parse_unary(Parser *p)
{
    if (!at(p, TOK_MINUS)) return parse_postfix(p);
    AstExpr *e = new_expr(p, EXPR_UNARY, advance(p).loc);
    e->op = TOK_MINUS;
    if (enter(p))
        e->a = parse_unary(p);
    else
        e->a = new_expr(p, EXPR_INT, e->loc);
    p->depth--;
    return e;
}

static AstExpr *binary(Parser *p, const Token *op, AstExpr *l, AstExpr *r)
{
    AstExpr *e = new_expr(p, EXPR_BINARY, op->loc);
    e->op = op->kind;
    e->a = l;
    e->b = r;
    return e;
}

/* mul = unary { ("*" | "/" | "@") unary } */
static AstExpr *parse_mul(Parser *p)
{
    AstExpr *e = parse_unary(p);
    while ((at(p, TOK_STAR) || at(p, TOK_SLASH) || at(p, TOK_AT)) && !p->panic) {
        Token op = advance(p);
        e = binary(p, &op, e, parse_unary(p));
    }
    return e;
}

/* add = mul { ("+" | "-") mul } */
static AstExpr *parse_add(Parser *p)
{
    AstExpr *e = parse_mul(p);
    while ((at(p, TOK_PLUS) || at(p, TOK_MINUS)) && !p->panic) {
        Token op = advance(p);
        e = binary(p, &op, e, parse_mul(p));
    }
    return e;
}

/* cmp = add [ ("==" | "!=" | "<" | "<=" | ">" | ">=") add ] */
static AstExpr *parse_cmp(Parser *p)
{
    AstExpr *e = parse_add(p);
    if (p->tok->kind >= TOK_EQ && p->tok->kind <= TOK_GE) {
        Token op = advance(p);
        e = binary(p, &op, e, parse_add(p));
    }
    return e;
}

/* not = "not" not | cmp */
static AstExpr *parse_not(Parser *p)
{
    if (!at(p, TOK_NOT)) return parse_cmp(p);
    AstExpr *e = new_expr(p, EXPR_UNARY, advance(p).loc);
    e->op = TOK_NOT;
    if (enter(p))
        e->a = parse_not(p);
    else
        e->a = new_expr(p, EXPR_BOOL, e->loc);
    p->depth--;
    return e;
}

/* and = not { "and" not } */
static AstExpr *parse_and(Parser *p)
{
    AstExpr *e = parse_not(p);
    while (at(p, TOK_AND) && !p->panic) {
        Token op = advance(p);
        e = binary(p, &op, e, parse_not(p));
    }
    return e;
}

/* or = and { "or" and } */
static AstExpr *parse_or(Parser *p)
{
    AstExpr *e = parse_and(p);
    while (at(p, TOK_OR) && !p->panic) {
        Token op = advance(p);
        e = binary(p, &op, e, parse_and(p));
    }
    return e;
}

/* ternary = or [ "?" ternary ":" ternary ]
 * A chain a ? b : c ? d : e is read in a loop (it nests to the right
 * without bound); the middle operand nests within the depth limit. */
static AstExpr *parse_ternary(Parser *p)
{
    AstExpr *c = parse_or(p), *top = c, **slot = &top;
    while (at(p, TOK_QUESTION) && !p->panic) {
        AstExpr *e = new_expr(p, EXPR_TERNARY, advance(p).loc);
        e->a = c;
        bool save = p->nolabel;
        p->nolabel = true;
        if (enter(p))
            e->b = parse_ternary(p);
        else
            e->b = new_expr(p, EXPR_INT, e->loc);
        p->depth--;
        p->nolabel = save;
        expect(p, TOK_COLON, "in conditional expression");
        *slot = e;
        slot = &e->c;
        c = *slot = parse_or(p);
    }
    return top;
}

/* expr = ternary { "|>" callee } */
static AstExpr *parse_expr(Parser *p)
{
    if (!enter(p)) {
        p->depth--;
        return new_expr(p, EXPR_INT, p->tok->loc);
    }
    AstExpr *e = parse_ternary(p);
    while (at(p, TOK_PIPE) && !p->panic) {
        advance(p);
        bool save = p->nolabel;
        p->nolabel = false;
        AstExpr *stage = parse_callee(p, true);
        p->nolabel = save;
        if (stage->kind == EXPR_CALL) {
            /* x |> f(a) is f(x, a): insert the piped value first */
            AstArg arg = {.loc = e->loc, .value = e};
            dn_vec_push(p->a, &stage->args, arg);
            memmove(stage->args.data + 1, stage->args.data, (size_t)(stage->args.len - 1) * sizeof(AstArg));
            stage->args.data[0] = arg;
            e = stage;
        } else {
            error_at(p, stage->loc, "'repeat' cannot be piped into; assign it: x = repeat K { ... }");
        }
    }
    p->depth--;
    return e;
}

/* ---- statements --------------------------------------------------------- */

/* type = IDENT "[" [ dim { "," dim } ] "]" ;  dim = INT | "N" | "T" [ "<=" INT ] */
static void parse_type(Parser *p, AstType *ty)
{
    ty->loc = p->tok->loc;
    DnLoc loc;
    const char *d = expect_ident(p, "a type such as f32[N, 10]", &loc);
    if (!strcmp(d, "f32"))
        ty->dtype = DN_DTYPE_F32;
    else if (!strcmp(d, "i32"))
        ty->dtype = DN_DTYPE_I32;
    else if (!strcmp(d, "i64"))
        ty->dtype = DN_DTYPE_I64;
    else if (!p->panic)
        error_at(p, loc, "unknown element type '%s' (expected f32, i32 or i64)", d);
    if (!expect(p, TOK_LBRACKET, "after the element type")) return;
    while (!at(p, TOK_RBRACKET) && !p->panic) {
        Token *t = p->tok;
        if (ty->shape.rank == DN_MAX_RANK) {
            error_at(p, t->loc, "too many dimensions (at most %d)", DN_MAX_RANK);
            return;
        }
        if (at_ident(p, "N")) {
            if (ty->shape.rank != 0) error_at(p, t->loc, "the batch dimension N must be the first dimension");
            ty->shape.dim[ty->shape.rank++] = DN_DIM_N;
        } else if (at_ident(p, "T")) { /* the run-time sequence axis: T<=bound, or T (its bound given elsewhere) */
            if (ty->shape.rank != 1 || ty->shape.dim[0] != DN_DIM_N)
                error_at(p, t->loc, "the sequence dimension T must be the second dimension, after N");
            int64_t dim = DN_DIM_SEQ_REF;
            if (p->tok[1].kind == TOK_LE) {
                advance(p);
                advance(p);
                Token *b = p->tok;
                if (!at(p, TOK_INT)) {
                    char buf[80];
                    error_at(p, b->loc, "expected the bound of T (an integer), got %s",
                             dn_tok_describe(b, buf, sizeof buf));
                    return;
                }
                if (b->ival < 1 || b->ival > DN_MAX_SEQ_BOUND)
                    error_at(p, b->loc, "the bound of T must be in 1..%lld, got %lld", (long long)DN_MAX_SEQ_BOUND,
                             (long long)b->ival);
                else
                    dim = DN_DIM_SEQ(b->ival);
            }
            ty->shape.dim[ty->shape.rank++] = dim;
        } else if (at(p, TOK_INT)) {
            if (t->ival <= 0 || t->ival > (int64_t)1 << 40)
                error_at(p, t->loc, "dimension %lld is out of range", (long long)t->ival);
            ty->shape.dim[ty->shape.rank++] = t->ival;
        } else {
            char buf[80];
            error_at(p, t->loc, "expected a dimension (an integer, N or T), got %s",
                     dn_tok_describe(t, buf, sizeof buf));
            return;
        }
        advance(p);
        if (!accept(p, TOK_COMMA)) break;
    }
    expect(p, TOK_RBRACKET, "after the dimensions");
}

static AstStmt *parse_stmt(Parser *p, bool train);

/* if = "if" expr body [ "else" ( body | if ) ]
 * An else-if chain is read in a loop: each 'if' after 'else' is the only
 * statement of the previous one's else body. */
static AstStmt *parse_if(Parser *p)
{
    AstStmt *top = new_stmt(p, STMT_IF, advance(p).loc), *s = top;
    for (;;) {
        s->e = parse_expr(p);
        parse_body(p, &s->then, false);
        if (!accept(p, TOK_ELSE)) break;
        s->has_else = true;
        if (!at(p, TOK_IF)) {
            parse_body(p, &s->els, false);
            break;
        }
        AstStmt *next = new_stmt(p, STMT_IF, advance(p).loc);
        dn_vec_push(p->a, &s->els, next);
        s = next;
    }
    return top;
}

/* param = "param" IDENT ":" type [ "=" expr ] */
static AstStmt *parse_param(Parser *p)
{
    AstStmt *s = new_stmt(p, STMT_PARAM, advance(p).loc);
    s->name = expect_ident(p, "a parameter name", &s->name_loc);
    expect(p, TOK_COLON, "after the parameter name");
    s->type = dn_arena_alloc(p->a, sizeof *s->type);
    if (!p->panic) parse_type(p, s->type);
    if (accept(p, TOK_ASSIGN)) s->e = parse_expr(p);
    return s;
}

/* tstmt = IDENT ":" type | "freeze" path { "," path } | "augment" IDENT ":" expr | IDENT "=" expr */
static AstStmt *parse_train_stmt(Parser *p)
{
    DnLoc loc = p->tok->loc;
    if (at(p, TOK_IDENT) && p->tok[1].kind == TOK_COLON) {
        AstStmt *s = new_stmt(p, STMT_INPUT, loc);
        s->name = expect_ident(p, "an input name", &s->name_loc);
        advance(p);
        s->type = dn_arena_alloc(p->a, sizeof *s->type);
        parse_type(p, s->type);
        return s;
    }
    if (at_ident(p, "freeze") && is_path_part(&p->tok[1])) {
        AstStmt *s = new_stmt(p, STMT_FREEZE, advance(p).loc);
        do {
            DnLoc nl = p->tok->loc;
            dn_vec_push(p->a, &s->names, parse_path(p));
            dn_vec_push(p->a, &s->name_locs, nl);
        } while (accept(p, TOK_COMMA) && !p->panic);
        return s;
    }
    if (at_ident(p, "augment") && p->tok[1].kind == TOK_IDENT) {
        AstStmt *s = new_stmt(p, STMT_AUGMENT, advance(p).loc);
        s->name = expect_ident(p, "an input name", &s->name_loc);
        expect(p, TOK_COLON, "after the augmented input's name");
        if (!p->panic) s->e = parse_expr(p);
        return s;
    }
    if (at(p, TOK_IDENT) && p->tok[1].kind == TOK_ASSIGN) return parse_stmt(p, false);
    char buf[80];
    error_at(p, loc, "expected a train statement (input, loss, optimizer, freeze or augment), got %s",
             dn_tok_describe(p->tok, buf, sizeof buf));
    return NULL;
}

/* stmt = param | if | "return" expr | IDENT "=" expr | expr */
static AstStmt *parse_stmt(Parser *p, bool train)
{
    if (train) return parse_train_stmt(p);
    DnLoc loc = p->tok->loc;
    if (at(p, TOK_PARAM)) return parse_param(p);
    if (at(p, TOK_IF)) return parse_if(p);
    if (accept(p, TOK_RETURN)) {
        AstStmt *s = new_stmt(p, STMT_RETURN, loc);
        s->e = parse_expr(p);
        return s;
    }
    if (at(p, TOK_IDENT) && p->tok[1].kind == TOK_ASSIGN) {
        AstStmt *s = new_stmt(p, STMT_ASSIGN, loc);
        s->name = expect_ident(p, "a name", &s->name_loc);
        advance(p);
        s->e = parse_expr(p);
        return s;
    }
    AstStmt *s = new_stmt(p, STMT_EXPR, loc);
    s->e = parse_expr(p);
    return s;
}

/* body = "{" { stmt NEWLINE } "}" */
static void parse_body(Parser *p, AstBody *body, bool train)
{
    if (!expect(p, TOK_LBRACE, "to open a body")) return;
    if (!enter(p)) {
        p->depth--;
        return;
    }
    while (!at(p, TOK_RBRACE) && !at(p, TOK_EOF)) {
        drop_read_tokens(p);
        if (accept(p, TOK_NEWLINE)) continue;
        AstStmt *s = parse_stmt(p, train);
        if (s && !p->panic) dn_vec_push(p->a, body, s);
        if (!p->panic && !at(p, TOK_RBRACE)) {
            char buf[80];
            if (!accept(p, TOK_NEWLINE))
                error_at(p, p->tok->loc, "expected end of statement, got %s", dn_tok_describe(p->tok, buf, sizeof buf));
        }
        if (p->panic) sync_stmt(p);
    }
    p->depth--;
    if (at(p, TOK_EOF))
        error_at(p, p->tok->loc, "expected '}' to close the body, got 'end of file'");
    else
        advance(p);
}

/* ---- declarations ------------------------------------------------------- */

/* io = IDENT ":" type */
static void parse_io(Parser *p, AstDecl *d, bool output)
{
    AstParam prm = {0};
    prm.name = expect_ident(p, output ? "an output name" : "an input name", &prm.loc);
    prm.has_type = true;
    expect(p, TOK_COLON, output ? "after the output name" : "after the input name");
    if (!p->panic) parse_type(p, &prm.type);
    dn_vec_push(p->a, output ? &d->outputs : &d->params, prm);
}

/* model = "model" IDENT "(" [ io { "," io } ] ")" "->" "(" io { "," io } ")" body */
static void parse_model(Parser *p, AstDecl *d)
{
    expect(p, TOK_LPAREN, "after the model name");
    while (!at(p, TOK_RPAREN) && !p->panic) {
        parse_io(p, d, false);
        if (!accept(p, TOK_COMMA)) break;
    }
    expect(p, TOK_RPAREN, "after the model inputs");
    expect(p, TOK_ARROW, "before the model outputs");
    expect(p, TOK_LPAREN, "before the model outputs");
    do {
        if (p->panic) break;
        parse_io(p, d, true);
    } while (accept(p, TOK_COMMA));
    expect(p, TOK_RPAREN, "after the model outputs");
}

/* bparam = IDENT [ ":" IDENT ] [ "=" expr ] */
static void parse_bparam(Parser *p, AstDecl *d)
{
    AstParam prm = {0};
    prm.name = expect_ident(p, "a block parameter name", &prm.loc);
    if (accept(p, TOK_COLON)) {
        DnLoc tl;
        prm.hp = expect_ident(p, "a hyper-parameter type (int, float, bool, str)", &tl);
        prm.has_type = true;
        if (!p->panic && strcmp(prm.hp, "int") && strcmp(prm.hp, "float") && strcmp(prm.hp, "bool") &&
            strcmp(prm.hp, "str"))
            error_at(p, tl, "unknown hyper-parameter type '%s' (expected int, float, bool or str)", prm.hp);
    }
    if (accept(p, TOK_ASSIGN)) prm.def = parse_expr(p);
    dn_vec_push(p->a, &d->params, prm);
}

/* block = "block" IDENT "(" [ bparam { "," bparam } ] ")" body */
static void parse_block(Parser *p, AstDecl *d)
{
    expect(p, TOK_LPAREN, "after the block name");
    while (!at(p, TOK_RPAREN) && !p->panic) {
        parse_bparam(p, d);
        if (!accept(p, TOK_COMMA)) break;
    }
    expect(p, TOK_RPAREN, "after the block parameters");
}

/* decl = ( "model" IDENT model | "block" IDENT block | "train" IDENT ) body */
static AstDecl *parse_decl(Parser *p)
{
    AstDecl *d = dn_arena_alloc(p->a, sizeof *d);
    TokKind k = advance(p).kind;
    d->kind = k == TOK_MODEL ? DECL_MODEL : k == TOK_BLOCK ? DECL_BLOCK : DECL_TRAIN;
    d->name = expect_ident(p, k == TOK_TRAIN ? "the name of the model to train" : "a name", &d->loc);
    if (d->kind == DECL_MODEL)
        parse_model(p, d);
    else if (d->kind == DECL_BLOCK)
        parse_block(p, d);
    if (p->panic) { /* skip a broken header up to its body */
        while (!at(p, TOK_LBRACE) && !at(p, TOK_EOF) && !at(p, TOK_MODEL) && !at(p, TOK_BLOCK) && !at(p, TOK_TRAIN))
            advance(p);
        p->panic = false;
        if (!at(p, TOK_LBRACE)) return d;
    }
    parse_body(p, &d->body, d->kind == DECL_TRAIN);
    return d;
}

/* The name under which 'text' is registered in 'cx' for carets: this very
 * text's registration under 'file' when there is one (the driver registers
 * a file before parsing it), else a new copy, NUL bytes shown as spaces. */
static const char *register_source(DnCtx *cx, const char *file, const char *text, size_t len)
{
    for (DnSource *s = cx->sources; s; s = s->next)
        if (s->text == text && !strcmp(s->name, file)) return s->name;
    if (!memchr(text, 0, len)) {
        dn_ctx_add_source(cx, file, text);
        return cx->sources->name;
    }
    char *shown = malloc(len + 1);
    if (!shown) dn_die(__FILE__, __LINE__, "out of memory (%zu bytes)", len + 1);
    for (size_t i = 0; i < len; i++) shown[i] = text[i] ? text[i] : ' ';
    shown[len] = 0;
    dn_ctx_add_source(cx, file, shown);
    free(shown);
    return cx->sources->name;
}

DnAst *dn_parse(DnCtx *cx, const char *file, const char *text, DnArena *a)
{
    return dn_parse_n(cx, file, text, strlen(text), a);
}

/* file = { decl } EOF */
DnAst *dn_parse_n(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a)
{
    file = register_source(cx, file, text, len); /* lives as long as 'cx', like the diagnostics that point to it */
    int nerr0 = cx->nerr;
    if (len > DN_MAX_SOURCE_BYTES) {
        dn_error(cx, (DnLoc){file, 1, 1}, "the source is %zu bytes, more than the %lld a .dnn file may have", len,
                 (long long)DN_MAX_SOURCE_BYTES);
        return NULL;
    }
    Parser p = {.cx = cx, .a = a};
    p.lx = dn_lexer_new(cx, file, text, len, a, &p.toks);
    p.tok = p.toks.data;
    lex_more(&p);
    DnAst *ast = dn_arena_alloc(a, sizeof *ast);
    ast->file = file;
    ast->arena = a;
    while (!at(&p, TOK_EOF)) {
        drop_read_tokens(&p);
        if (accept(&p, TOK_NEWLINE)) continue;
        if (at(&p, TOK_MODEL) || at(&p, TOK_BLOCK) || at(&p, TOK_TRAIN)) {
            dn_vec_push(a, &ast->decls, parse_decl(&p));
        } else {
            char buf[80];
            error_at(&p, p.tok->loc, "expected 'model', 'block' or 'train', got %s",
                     dn_tok_describe(p.tok, buf, sizeof buf));
        }
        if (p.panic) { /* resync at the next declaration keyword */
            while (!at(&p, TOK_EOF) && !at(&p, TOK_MODEL) && !at(&p, TOK_BLOCK) && !at(&p, TOK_TRAIN)) advance(&p);
            p.panic = false;
        }
    }
    free(p.toks.data);
    ast->nodes = p.nodes;
    return cx->nerr > nerr0 ? NULL : ast;
}

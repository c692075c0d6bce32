/* read.c -- parses the IR text form (docs/ir.md) back into a graph.
 *
 * The inverse of print.c: print(read(print(g))) == print(g).  Used by the
 * golden IR tests and by `dnnc file.dnir`.  Ops go through dn_build, so a
 * text with wrong shapes is rejected exactly as the frontend would be, and
 * declared result types must equal the inferred ones.  The first error
 * stops parsing: it is reported as a diagnostic at file:line:col of the
 * text and dn_graph_read returns NULL.  No input makes it crash.
 */
#include "ir.h"

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdlib.h>

typedef enum { T_EOF, T_IDENT, T_INT, T_FLOAT, T_STR, T_PCT, T_AT, T_PUNCT, T_ARROW } TokKind;

typedef struct Tok {
    TokKind kind;
    int line, col;
    const char *text; /* IDENT, STR, PCT, AT: the (decoded) name, in scratch */
    int64_t i;        /* INT */
    double f;         /* FLOAT */
    char punct;       /* PUNCT */
} Tok;

typedef struct Binding {
    const char *name; /* a %name */
    DnValue *v;
} Binding;

typedef struct OutRef {
    const char *name;
    Tok ref;
} OutRef;

typedef struct Reader {
    DnCtx *cx;
    const char *file; /* in cx's arena */
    const char *p, *line_start;
    int line;
    Tok tok; /* the current token */
    DnArena scratch;
    DnGraph *g;
    DN_VEC(Binding) names;
    DN_VEC(OutRef) outs;
    jmp_buf fail;
} Reader;

/* Reports an error at 't' and abandons the parse. */
static DN_NORETURN void fail_at(Reader *r, const Tok *t, const char *fmt, ...) DN_PRINTF(3, 4);
static DN_NORETURN void fail_at(Reader *r, const Tok *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dn_verror(r->cx, (DnLoc){r->file, t->line, t->col}, fmt, ap);
    va_end(ap);
    longjmp(r->fail, 1);
}

/* ---- lexer ------------------------------------------------------------------ */

static bool name_char(char c)
{
    return c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static void skip_space(Reader *r)
{
    for (;;) {
        char c = *r->p;
        if (c == '\n') {
            r->p++;
            r->line++;
            r->line_start = r->p;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            r->p++;
        } else if (c == '#' || (c == '/' && r->p[1] == '/')) {
            while (*r->p && *r->p != '\n') r->p++;
        } else {
            return;
        }
    }
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* "..." with \" \\ \n \t \xHH escapes; r->p at the opening quote. */
static const char *lex_string(Reader *r, Tok *t)
{
    DN_VEC(char) s = {0};
    r->p++;
    while (*r->p != '"') {
        char c = *r->p;
        if (c == 0 || c == '\n') fail_at(r, t, "unterminated string");
        if (c == '\\') {
            char e = r->p[1];
            if (e == 'x' && hex(r->p[2]) >= 0 && hex(r->p[3]) >= 0) {
                c = (char)(hex(r->p[2]) * 16 + hex(r->p[3]));
                r->p += 2;
            } else if (e == '"' || e == '\\')
                c = e;
            else if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else
                fail_at(r, t, "unknown escape in string");
            r->p++;
        }
        if (c == 0) fail_at(r, t, "NUL character in string");
        dn_vec_push(&r->scratch, &s, c);
        r->p++;
    }
    r->p++;
    dn_vec_push(&r->scratch, &s, 0);
    return s.data;
}

/* A name after '%' or '@': bare or quoted. */
static const char *lex_name(Reader *r, Tok *t)
{
    if (*r->p == '"') return lex_string(r, t);
    const char *s = r->p;
    while (name_char(*r->p)) r->p++;
    if (r->p == s) fail_at(r, t, "expected a name after '%c'", s[-1]);
    return dn_arena_strndup(&r->scratch, s, (size_t)(r->p - s));
}

/* [-+]digits[.digits][e[-+]digits], or [-]inf / nan. */
static void lex_number(Reader *r, Tok *t)
{
    const char *s = r->p, *q = s;
    if (*q == '-' || *q == '+') q++;
    if (!strncmp(q, "inf", 3) && !name_char(q[3])) {
        t->kind = T_FLOAT;
        t->f = *s == '-' ? -INFINITY : INFINITY;
        r->p = q + 3;
        return;
    }
    bool isf = false;
    while (*q >= '0' && *q <= '9') q++;
    if (*q == '.')
        for (isf = true, q++; *q >= '0' && *q <= '9';) q++;
    if ((*q == 'e' || *q == 'E') &&
        ((q[1] >= '0' && q[1] <= '9') || ((q[1] == '-' || q[1] == '+') && q[2] >= '0' && q[2] <= '9')))
        for (isf = true, q += 2; *q >= '0' && *q <= '9';) q++;
    if (name_char(*q)) fail_at(r, t, "malformed number");
    char buf[64];
    if (q - s >= (int)sizeof buf) fail_at(r, t, "number too long");
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = 0;
    errno = 0;
    if (isf)
        t->f = strtod(buf, NULL);
    else
        t->i = strtoll(buf, NULL, 10);
    if (errno) fail_at(r, t, "number out of range");
    t->kind = isf ? T_FLOAT : T_INT;
    r->p = q;
}

static void next(Reader *r)
{
    skip_space(r);
    Tok *t = &r->tok;
    memset(t, 0, sizeof *t);
    t->line = r->line;
    t->col = (int)(r->p - r->line_start) + 1;
    char c = *r->p;
    if (c == 0)
        t->kind = T_EOF;
    else if (c == '"')
        t->kind = T_STR, t->text = lex_string(r, t);
    else if (c == '%' || c == '@') {
        r->p++;
        t->kind = c == '%' ? T_PCT : T_AT;
        t->text = lex_name(r, t);
    } else if (c == '-' && r->p[1] == '>')
        t->kind = T_ARROW, r->p += 2;
    else if ((c >= '0' && c <= '9') ||
             ((c == '-' || c == '+') && ((r->p[1] >= '0' && r->p[1] <= '9') || r->p[1] == 'i')))
        lex_number(r, t);
    else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') {
        const char *s = r->p;
        while (name_char(*r->p)) r->p++;
        t->kind = T_IDENT;
        t->text = dn_arena_strndup(&r->scratch, s, (size_t)(r->p - s));
        if (!strcmp(t->text, "inf") || !strcmp(t->text, "nan"))
            t->kind = T_FLOAT, t->f = t->text[0] == 'i' ? INFINITY : NAN;
    } else if (strchr("(){}[],:=<", c))
        t->kind = T_PUNCT, t->punct = c, r->p++;
    else if (c > 32 && c < 127)
        fail_at(r, t, "unexpected character '%c'", c);
    else
        fail_at(r, t, "unexpected character \\x%02x", (unsigned char)c);
}

/* ---- token helpers ---------------------------------------------------------- */

static const char *describe(const Tok *t)
{
    switch (t->kind) {
    case T_EOF: return "end of input";
    case T_IDENT: return "a name";
    case T_INT: return "an integer";
    case T_FLOAT: return "a float";
    case T_STR: return "a string";
    case T_PCT: return "a %value";
    case T_AT: return "a @name";
    case T_ARROW: return "'->'";
    case T_PUNCT: return "punctuation";
    }
    return "?";
}

static bool is_punct(Reader *r, char c) { return r->tok.kind == T_PUNCT && r->tok.punct == c; }
static bool is_word(Reader *r, const char *w) { return r->tok.kind == T_IDENT && !strcmp(r->tok.text, w); }

static bool accept(Reader *r, char c)
{
    if (!is_punct(r, c)) return false;
    next(r);
    return true;
}

static void expect(Reader *r, char c)
{
    if (is_punct(r, c))
        next(r);
    else if (r->tok.kind == T_PUNCT)
        fail_at(r, &r->tok, "expected '%c', got '%c'", c, r->tok.punct);
    else
        fail_at(r, &r->tok, "expected '%c', got %s", c, describe(&r->tok));
}

static void expect_word(Reader *r, const char *w)
{
    if (!is_word(r, w)) fail_at(r, &r->tok, "expected '%s', got %s", w, describe(&r->tok));
    next(r);
}

/* Returns the current token, which must be of kind 'k', and advances. */
static Tok take(Reader *r, TokKind k, const char *what)
{
    if (r->tok.kind != k) fail_at(r, &r->tok, "expected %s, got %s", what, describe(&r->tok));
    Tok t = r->tok;
    next(r);
    return t;
}

static double take_number(Reader *r)
{
    if (r->tok.kind == T_INT) return (double)take(r, T_INT, "a number").i;
    return take(r, T_FLOAT, "a number").f;
}

/* ---- pieces ----------------------------------------------------------------- */

/* type = dtype "[" [dim {"," dim}] "]"     dim = "N" | "T" "<" "=" int | int >= 1 */
static void parse_type(Reader *r, DnDType *dt, DnShape *s)
{
    Tok t = take(r, T_IDENT, "a type");
    int k = 0;
    while (k < DN_DTYPE_COUNT && strcmp(dn_dtype_name((DnDType)k), t.text)) k++;
    if (k == DN_DTYPE_COUNT) fail_at(r, &t, "unknown dtype '%s'", t.text);
    *dt = (DnDType)k;
    memset(s, 0, sizeof *s);
    expect(r, '[');
    while (!is_punct(r, ']')) {
        if (s->rank) expect(r, ',');
        if (s->rank == DN_MAX_RANK) fail_at(r, &r->tok, "more than %d dimensions", DN_MAX_RANK);
        if (is_word(r, "N")) {
            if (s->rank) fail_at(r, &r->tok, "N may only be the first dimension");
            next(r);
            s->dim[s->rank++] = DN_DIM_N;
            continue;
        }
        if (is_word(r, "T")) { /* the run-time sequence axis, with its bound */
            if (s->rank != 1 || s->dim[0] != DN_DIM_N)
                fail_at(r, &r->tok, "T may only be the second dimension, after N");
            next(r);
            expect(r, '<');
            expect(r, '=');
            Tok b = take(r, T_INT, "the bound of T");
            if (b.i < 1 || b.i > DN_MAX_SEQ_BOUND)
                fail_at(r, &b, "the bound of T must be in 1..%lld, got %lld", (long long)DN_MAX_SEQ_BOUND,
                        (long long)b.i);
            s->dim[s->rank++] = DN_DIM_SEQ(b.i);
            continue;
        }
        Tok d = take(r, T_INT, "a dimension");
        if (d.i < 1) fail_at(r, &d, "dimension must be >= 1, got %lld", (long long)d.i);
        s->dim[s->rank++] = d.i;
    }
    next(r);
}

/* loc = "loc" "(" string ":" int ":" int ")"  -- optional */
static DnLoc parse_loc(Reader *r)
{
    DnLoc loc = {0};
    if (!is_word(r, "loc")) return loc;
    next(r);
    expect(r, '(');
    loc.file = take(r, T_STR, "a file name").text;
    expect(r, ':');
    Tok l = take(r, T_INT, "a line number");
    expect(r, ':');
    Tok c = take(r, T_INT, "a column number");
    expect(r, ')');
    if (l.i < 1 || l.i > INT32_MAX || c.i < 1 || c.i > INT32_MAX)
        fail_at(r, &l, "location out of range (line and column start at 1)");
    loc.line = (int)l.i;
    loc.col = (int)c.i;
    return dn_graph_loc(r->g, loc);
}

static DnValue *lookup(Reader *r, const char *name)
{
    for (int i = 0; i < r->names.len; i++)
        if (!strcmp(r->names.data[i].name, name)) return r->names.data[i].v;
    return NULL;
}

static void bind(Reader *r, const Tok *t, DnValue *v)
{
    if (lookup(r, t->text)) fail_at(r, t, "%%%s is defined twice", t->text);
    dn_vec_push(&r->scratch, &r->names, ((Binding){t->text, v}));
}

static DnValue *resolve(Reader *r, const Tok *t)
{
    if (t->kind == T_AT) {
        DnParam *p = dn_graph_find_param(r->g, t->text);
        if (!p) fail_at(r, t, "use of undefined parameter @%s", t->text);
        return p->value;
    }
    if (t->kind != T_PCT) fail_at(r, t, "expected a %%value or @parameter, got %s", describe(t));
    DnValue *v = lookup(r, t->text);
    if (!v) fail_at(r, t, "use of undefined value %%%s", t->text);
    return v;
}

static DnValue *parse_ref(Reader *r)
{
    Tok t = r->tok;
    DnValue *v = resolve(r, &t);
    next(r);
    return v;
}

/* attr = name "=" (int | float | string | "[" [int {"," int}] "]") */
static DnAttr parse_attr(Reader *r)
{
    DnAttr a = {.name = take(r, T_IDENT, "an attribute name").text};
    expect(r, '=');
    if (r->tok.kind == T_INT)
        a.kind = DN_ATTR_INT, a.i = r->tok.i;
    else if (r->tok.kind == T_FLOAT)
        a.kind = DN_ATTR_FLOAT, a.f = r->tok.f;
    else if (r->tok.kind == T_STR)
        a.kind = DN_ATTR_STR, a.s = r->tok.text;
    else if (is_punct(r, '[')) {
        DN_VEC(int64_t) v = {0};
        next(r);
        while (!is_punct(r, ']')) {
            if (v.len) expect(r, ',');
            int64_t x = take(r, T_INT, "an integer").i;
            dn_vec_push(&r->scratch, &v, x);
        }
        a.kind = DN_ATTR_INTS;
        a.nints = v.len;
        a.ints = v.data;
    } else
        fail_at(r, &r->tok, "expected an attribute value, got %s", describe(&r->tok));
    next(r);
    return a;
}

/* attrs = "{" [attr {"," attr}] "}"  -- optional; returns the count, list in *out */
static int parse_attrs(Reader *r, DnAttr **out)
{
    DN_VEC(DnAttr) v = {0};
    if (accept(r, '{'))
        while (!accept(r, '}')) {
            if (v.len) expect(r, ',');
            DnAttr a = parse_attr(r);
            dn_vec_push(&r->scratch, &v, a);
        }
    *out = v.data;
    return v.len;
}

/* ---- statements ------------------------------------------------------------- */

/* input = "%" name ":" type ["train_only"] [loc] */
static void parse_input(Reader *r)
{
    Tok name = take(r, T_PCT, "an input %name");
    expect(r, ':');
    DnDType dt;
    DnShape s;
    parse_type(r, &dt, &s);
    bool train_only = is_word(r, "train_only");
    if (train_only) next(r);
    DnValue *v = dn_graph_add_input(r->g, name.text, dt, &s, parse_loc(r));
    v->train_only = train_only;
    bind(r, &name, v);
}

/* init = ("zeros" | "ones" | ("uniform" | "normal") "(" number "," number ")") ["zero_row" int] */
static DnInit parse_init(Reader *r)
{
    DnInit init = {0};
    Tok t = take(r, T_IDENT, "an initializer");
    if (!strcmp(t.text, "zeros"))
        init.kind = DN_INIT_ZEROS;
    else if (!strcmp(t.text, "ones"))
        init.kind = DN_INIT_ONES;
    else if (!strcmp(t.text, "uniform") || !strcmp(t.text, "normal")) {
        init.kind = t.text[0] == 'u' ? DN_INIT_UNIFORM : DN_INIT_NORMAL;
        expect(r, '(');
        init.a = take_number(r);
        expect(r, ',');
        init.b = take_number(r);
        expect(r, ')');
    } else
        fail_at(r, &t, "unknown initializer '%s'", t.text);
    if (is_word(r, "zero_row")) {
        next(r);
        Tok row = take(r, T_INT, "a row index");
        if (row.i < 0) fail_at(r, &row, "zero_row must be >= 0, got %lld", (long long)row.i);
        init.zero_row = row.i + 1;
    }
    return init;
}

/* param = "param" "@" name ":" type ("weight" | "buffer" | "optim" | "cache") ["frozen" | "trainable"] init [loc] */
static void parse_param(Reader *r)
{
    static const char *kinds[] = {"weight", "buffer", "optim", "cache"};
    next(r);
    Tok name = take(r, T_AT, "a @parameter name");
    if (dn_graph_find_param(r->g, name.text)) fail_at(r, &name, "parameter @%s is defined twice", name.text);
    expect(r, ':');
    DnDType dt;
    DnShape s;
    Tok tt = r->tok;
    parse_type(r, &dt, &s);
    if (dn_shape_has_n(&s)) fail_at(r, &tt, "parameter shapes cannot hold N");
    Tok k = take(r, T_IDENT, "weight, buffer, optim or cache");
    int kind = 0;
    while (kind < 4 && strcmp(kinds[kind], k.text)) kind++;
    if (kind == 4) fail_at(r, &k, "expected weight, buffer, optim or cache, got '%s'", k.text);
    bool frozen = is_word(r, "frozen"), trainable = is_word(r, "trainable");
    if ((frozen && kind != DN_PARAM_WEIGHT) || (trainable && kind == DN_PARAM_WEIGHT))
        fail_at(r, &r->tok, "'%s' does not apply to a %s", r->tok.text, kinds[kind]);
    if (frozen || trainable) next(r);
    DnInit init = parse_init(r);
    DnParam *p = dn_graph_add_param(r->g, name.text, (DnParamKind)kind, dt, &s, init, parse_loc(r));
    p->trainable = kind == DN_PARAM_WEIGHT ? !frozen : trainable;
}

static DnOpKind parse_op_name(Reader *r)
{
    Tok t = take(r, T_IDENT, "an op name");
    DnOpKind k = dn_op_lookup(t.text);
    if (k == DN_OP_COUNT) fail_at(r, &t, "unknown op '%s'", t.text);
    return k;
}

/* Checks the declared result types against the inferred ones. */
static void check_types(Reader *r, const DnOp *op, const Tok *res, int ntypes, const DnDType *dt, const DnShape *sh)
{
    if (ntypes == 0) return;
    if (ntypes != op->nout)
        fail_at(r, &res[0], "%s has %d result%s, %d types declared", dn_op_info[op->kind].name, op->nout,
                op->nout == 1 ? "" : "s", ntypes);
    for (int i = 0; i < ntypes; i++) {
        const DnValue *v = op->out[i];
        char a[96], b[96];
        if (v->dtype != dt[i] || !dn_shape_eq(&v->shape, &sh[i]))
            fail_at(r, &res[i], "%%%s: declared type %s differs from the inferred %s", res[i].text,
                    dn_type_str(dt[i], &sh[i], a, sizeof a), dn_type_str(v->dtype, &v->shape, b, sizeof b));
    }
}

/* op = [results "="] opname [ref {"," ref}] [attrs] [":" type {"," type}] [loc]
 * results = "%" name {"," "%" name} */
static void parse_op(Reader *r)
{
    Tok res[DN_MAX_OUTS + 1], start = r->tok;
    int nres = 0;
    while (r->tok.kind == T_PCT) {
        if (nres == DN_MAX_OUTS) fail_at(r, &r->tok, "too many results");
        res[nres++] = take(r, T_PCT, "a result");
        if (!accept(r, ',')) break;
    }
    if (nres) expect(r, '=');
    Tok optok = r->tok;
    DnOpKind kind = parse_op_name(r);
    if (nres != dn_op_info[kind].nout)
        fail_at(r, nres ? &res[0] : &optok, "%s has %d result%s, %d named", dn_op_info[kind].name,
                dn_op_info[kind].nout, dn_op_info[kind].nout == 1 ? "" : "s", nres);
    DN_VEC(DnValue *) in = {0};
    while (r->tok.kind == T_PCT || r->tok.kind == T_AT) {
        DnValue *v = parse_ref(r);
        dn_vec_push(&r->scratch, &in, v);
        if (!accept(r, ',')) break;
    }
    DnAttr *attrs;
    int nattrs = parse_attrs(r, &attrs);
    DnDType dt[DN_MAX_OUTS];
    DnShape sh[DN_MAX_OUTS];
    int ntypes = 0;
    if (accept(r, ':')) do {
            if (ntypes == DN_MAX_OUTS) fail_at(r, &r->tok, "too many types");
            parse_type(r, &dt[ntypes], &sh[ntypes]);
            ntypes++;
        } while (accept(r, ','));
    DnLoc loc = parse_loc(r);
    DnOp *op = dn_build(r->cx, r->g, kind, in.len, in.data, nattrs, attrs, (DnLoc){r->file, optok.line, optok.col});
    if (!op) longjmp(r->fail, 1); /* dn_build reported it */
    op->loc = loc;
    for (int i = 0; i < op->nout; i++) {
        op->out[i]->loc = loc;
        bind(r, &res[i], op->out[i]);
    }
    check_types(r, op, nres ? res : &start, ntypes, dt, sh);
}

/* "optimizer" opname [attrs] [loc] */
static void parse_optimizer(Reader *r)
{
    next(r);
    Tok t = r->tok;
    DnOpKind kind = parse_op_name(r);
    if (kind != DN_OP_SGD_UPDATE && kind != DN_OP_ADAM_UPDATE)
        fail_at(r, &t, "optimizer must be sgd_update or adam_update, got '%s'", t.text);
    if (r->g->optim) fail_at(r, &t, "more than one optimizer");
    DnAttr *attrs;
    int nattrs = parse_attrs(r, &attrs);
    DnOptimSpec *o = dn_arena_alloc(&r->g->arena, sizeof *o);
    o->kind = kind;
    o->attrs = dn_attrs_complete(r->cx, r->g, kind, NULL, nattrs, attrs, (DnLoc){r->file, t.line, t.col}, &o->nattrs);
    if (!o->attrs) longjmp(r->fail, 1);
    o->loc = parse_loc(r);
    r->g->optim = o;
}

static void parse_loss(Reader *r)
{
    next(r);
    Tok t = r->tok;
    if (r->g->loss) fail_at(r, &t, "more than one loss");
    DnValue *v = parse_ref(r);
    if (v->dtype != DN_DTYPE_F32 || v->shape.rank != 0) fail_at(r, &t, "the loss must be an f32[] value");
    r->g->loss = v;
}

/* header = "func" "@" name "(" [input {"," input}] ")" "->" "(" [output {"," output}] ")"
 * output = (name | string) "=" ref   -- resolved after the body */
static void parse_header(Reader *r)
{
    expect_word(r, "func");
    r->g->name = dn_arena_strdup(&r->g->arena, take(r, T_AT, "a @function name").text);
    expect(r, '(');
    while (!accept(r, ')')) {
        if (r->g->inputs.len) expect(r, ',');
        parse_input(r);
    }
    take(r, T_ARROW, "'->'");
    expect(r, '(');
    while (!accept(r, ')')) {
        if (r->outs.len) expect(r, ',');
        Tok name = r->tok.kind == T_STR ? take(r, T_STR, "") : take(r, T_IDENT, "an output name");
        expect(r, '=');
        if (r->tok.kind != T_PCT && r->tok.kind != T_AT)
            fail_at(r, &r->tok, "expected a %%value or @parameter, got %s", describe(&r->tok));
        OutRef o = {name.text, r->tok};
        dn_vec_push(&r->scratch, &r->outs, o);
        next(r);
    }
    expect(r, '{');
}

/* graph = header {param | op | "loss" ref | "optimizer" ...} "}" */
static void parse_graph(Reader *r)
{
    parse_header(r);
    while (!accept(r, '}')) {
        if (r->tok.kind == T_EOF) fail_at(r, &r->tok, "expected '}' at the end of the function");
        if (is_word(r, "param"))
            parse_param(r);
        else if (is_word(r, "loss"))
            parse_loss(r);
        else if (is_word(r, "optimizer"))
            parse_optimizer(r);
        else
            parse_op(r);
    }
    if (r->tok.kind != T_EOF) fail_at(r, &r->tok, "unexpected %s after the function", describe(&r->tok));
    for (int i = 0; i < r->outs.len; i++)
        dn_graph_add_output(r->g, r->outs.data[i].name, resolve(r, &r->outs.data[i].ref));
}

DnGraph *dn_graph_read(DnCtx *cx, const char *file, const char *text)
{
    Reader *r = calloc(1, sizeof *r); /* on the heap: fields change between setjmp and longjmp */
    if (!r) dn_die(__FILE__, __LINE__, "out of memory");
    r->cx = cx;
    r->file = dn_arena_strdup(&cx->arena, file ? file : "<ir>");
    r->p = r->line_start = dn_ctx_add_source(cx, r->file, text ? text : "");
    r->line = 1;
    r->g = dn_graph_new("");
    DnGraph *g = r->g;
    if (setjmp(r->fail)) {
        dn_graph_free(r->g);
        g = NULL;
    } else {
        next(r);
        parse_graph(r);
    }
    dn_arena_free(&r->scratch);
    free(r);
    return g;
}

/* lex.c -- the .dnn lexer: source text to a token array.
 *
 * First stage of the frontend (lex -> parse -> lower).  Statements end at
 * NEWLINE tokens; a newline is not a statement end inside ( ) or [ ], after
 * '|>', or before a line whose first token is '|>', so a chain of layers may
 * span lines.  '#' starts a comment.  Bad bytes (a NUL among them, also in
 * comments and strings), unterminated strings and out-of-range numbers are
 * diagnosed and skipped; the token array always ends with TOK_EOF.  The
 * parser takes tokens a statement at a time (dn_lexer_more), so it never
 * holds the whole file's.
 */
#include "ast.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

/* ORDER TOK */
static const char *tok_names[TOK_COUNT] = {
    "end of file", "newline", "identifier", "integer", "number", "string", "model", "block", "train",
    "return",      "repeat",  "as",         "if",      "else",   "param",  "and",   "or",    "not",
    "true",        "false",   "(",          ")",       "[",      "]",      "{",     "}",     ",",
    ":",           ".",       "=",          "->",      "|>",     "?",      "+",     "-",     "*",
    "/",           "@",       "==",         "!=",      "<",      "<=",     ">",     ">=",
};

struct Lexer {
    DnCtx *cx;
    DnArena *a;
    const char *file;
    const char *p;     /* current byte */
    const char *end;   /* one past the last byte; *end is NUL */
    const char *line0; /* start of the current line */
    int line;
    int depth; /* ( and [ nesting */
    TokenVec *out;
    bool heap; /* 'out' grows with realloc (dn_lex_n), else in 'a' */
    int ends;  /* NEWLINE and EOF tokens pushed so far */
    bool done; /* EOF pushed */
};

const char *dn_tok_spelling(TokKind k) { return tok_names[k]; }

/* Describes 't' for messages: "'('", "identifier 'x'", "newline". */
const char *dn_tok_describe(const Token *t, char *buf, size_t len)
{
    switch (t->kind) {
    case TOK_EOF:
    case TOK_NEWLINE: snprintf(buf, len, "'%s'", tok_names[t->kind]); break;
    case TOK_IDENT: snprintf(buf, len, "identifier '%.*s'", t->len > 40 ? 40 : t->len, t->text); break;
    case TOK_INT:
    case TOK_FLOAT: snprintf(buf, len, "number '%.*s'", t->len > 40 ? 40 : t->len, t->text); break;
    case TOK_STRING: snprintf(buf, len, "a string"); break;
    default: snprintf(buf, len, "'%s'", tok_names[t->kind]); break;
    }
    return buf;
}

static DnLoc here(Lexer *lx, const char *at) { return (DnLoc){lx->file, lx->line, (int)(at - lx->line0) + 1}; }

static Token *push(Lexer *lx, TokKind k, const char *start, int len)
{
    Token t = {.kind = k, .loc = here(lx, start), .text = start, .len = len};
    TokenVec *v = lx->out;
    lx->ends += k == TOK_NEWLINE || k == TOK_EOF;
    if (!lx->heap) {
        dn_vec_push(lx->a, v, t);
    } else {
        if (v->len == v->cap) {
            DN_ASSERT(v->cap < INT32_MAX / 2); /* dn_parse_n bounds the source size */
            v->cap = v->cap ? 2 * v->cap : 1024;
            v->data = realloc(v->data, (size_t)v->cap * sizeof *v->data);
            if (!v->data) dn_die(__FILE__, __LINE__, "out of memory (%d tokens)", v->cap);
        }
        v->data[v->len++] = t;
    }
    return &v->data[v->len - 1];
}

static TokKind last_kind(Lexer *lx) { return lx->out->len ? lx->out->data[lx->out->len - 1].kind : TOK_NEWLINE; }

/* Skips blanks, comments and newlines after position 'p' and reports
 * whether the next token is '|>' (a continuation line). */
static bool next_line_is_pipe(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
        if (*p == '#') {
            while (*p && *p != '\n') p++;
            continue;
        }
        return p[0] == '|' && p[1] == '>';
    }
}

/* Reports the NUL byte at lx->p (before lx->end) and skips the run it starts. */
static void nul_byte(Lexer *lx)
{
    dn_error(lx->cx, here(lx, lx->p), "NUL byte in source");
    while (lx->p < lx->end && *lx->p == 0) lx->p++;
}

/* '#' to the end of the line; a NUL byte inside is reported and skipped. */
static void comment(Lexer *lx)
{
    while (lx->p < lx->end && *lx->p != '\n') {
        if (*lx->p == 0)
            nul_byte(lx);
        else
            lx->p++;
    }
}

/* A newline ends a statement unless one of the continuation rules holds. */
static void newline(Lexer *lx)
{
    TokKind k = last_kind(lx);
    if (lx->depth == 0 && k != TOK_NEWLINE && k != TOK_PIPE && k != TOK_LBRACE && !next_line_is_pipe(lx->p + 1))
        push(lx, TOK_NEWLINE, lx->p, 1);
    lx->p++;
    lx->line++;
    lx->line0 = lx->p;
}

static const struct {
    const char *w;
    TokKind k;
} keywords[] = {
    {"model", TOK_MODEL}, {"block", TOK_BLOCK}, {"train", TOK_TRAIN}, {"return", TOK_RETURN}, {"repeat", TOK_REPEAT},
    {"as", TOK_AS},       {"if", TOK_IF},       {"else", TOK_ELSE},   {"param", TOK_PARAM},   {"and", TOK_AND},
    {"or", TOK_OR},       {"not", TOK_NOT},     {"true", TOK_TRUE},   {"false", TOK_FALSE},
};

static void ident(Lexer *lx)
{
    const char *s = lx->p;
    while (isalnum((unsigned char)*lx->p) || *lx->p == '_') lx->p++;
    int len = (int)(lx->p - s);
    TokKind k = TOK_IDENT;
    for (size_t i = 0; i < sizeof keywords / sizeof keywords[0] && len <= 6; i++)
        if (keywords[i].w[0] == *s && (int)strlen(keywords[i].w) == len && memcmp(keywords[i].w, s, (size_t)len) == 0)
            k = keywords[i].k;
    push(lx, k, s, len);
}

/* int = digit {digit};  float = digit {digit} ("." {digit} [exp] | exp);  exp = ("e"|"E") ["+"|"-"] digit {digit} */
static void number(Lexer *lx)
{
    const char *s = lx->p, *q = s;
    bool isfloat = false;
    while (isdigit((unsigned char)*q)) q++;
    if (*q == '.' && isdigit((unsigned char)q[1])) {
        isfloat = true;
        q++;
        while (isdigit((unsigned char)*q)) q++;
    }
    if (*q == 'e' || *q == 'E') {
        const char *e = q + 1;
        if (*e == '+' || *e == '-') e++;
        if (isdigit((unsigned char)*e)) {
            isfloat = true;
            while (isdigit((unsigned char)*e)) e++;
            q = e;
        }
    }
    while (isalnum((unsigned char)*q) || *q == '_') q++; /* swallow a bad suffix whole */
    lx->p = q;
    int len = (int)(q - s);
    char buf[64];
    if (len >= (int)sizeof buf) {
        dn_error(lx->cx, here(lx, s), "number literal is too long");
        push(lx, TOK_INT, s, len);
        return;
    }
    memcpy(buf, s, (size_t)len);
    buf[len] = 0;
    char *end;
    errno = 0;
    Token *t = push(lx, isfloat ? TOK_FLOAT : TOK_INT, s, len);
    if (isfloat) {
        t->fval = strtod(buf, &end);
        if (*end)
            dn_error(lx->cx, t->loc, "malformed number '%s'", buf);
        else if (errno == ERANGE && isinf(t->fval))
            dn_error(lx->cx, t->loc, "number '%s' is out of range", buf);
    } else {
        unsigned long long v = strtoull(buf, &end, 10);
        if (*end)
            dn_error(lx->cx, t->loc, "malformed number '%s'", buf);
        else if (errno == ERANGE || v > (unsigned long long)INT64_MAX)
            dn_error(lx->cx, t->loc, "integer '%s' is too large", buf);
        else
            t->ival = (int64_t)v;
    }
}

/* string = '"' { char | '\' ('"' | '\' | 'n' | 't') } '"'  (one line) */
static void string(Lexer *lx)
{
    const char *s = lx->p++, *q = lx->p;
    while (q < lx->end && *q != '"' && *q != '\n') q += *q == '\\' && q + 1 < lx->end ? 2 : 1;
    char *buf = dn_arena_alloc(lx->a, (size_t)(q - s) + 1); /* unescaping only shortens */
    int n = 0;
    while (*lx->p != '"') {
        if (lx->p == lx->end || *lx->p == '\n') {
            dn_error(lx->cx, here(lx, s), "unterminated string");
            break;
        }
        if (*lx->p == 0) {
            nul_byte(lx);
            continue;
        }
        char c = *lx->p++;
        if (c == '\\') {
            char e = *lx->p;
            if (e == 'n')
                c = '\n';
            else if (e == 't')
                c = '\t';
            else if (e == '"' || e == '\\')
                c = e;
            else {
                dn_error(lx->cx, here(lx, lx->p - 1), "unknown escape sequence in string");
                if (e == 0 || e == '\n') continue;
                c = e;
            }
            lx->p++;
        }
        buf[n++] = c;
    }
    if (*lx->p == '"') lx->p++;
    buf[n] = 0;
    Token *t = push(lx, TOK_STRING, s, (int)(lx->p - s));
    t->str = buf;
}

static const struct {
    const char *s;
    TokKind k;
} puncts[] = {
    {"->", TOK_ARROW}, {"|>", TOK_PIPE},    {"==", TOK_EQ},    {"!=", TOK_NE},      {"<=", TOK_LE},
    {">=", TOK_GE},    {"(", TOK_LPAREN},   {")", TOK_RPAREN}, {"[", TOK_LBRACKET}, {"]", TOK_RBRACKET},
    {"{", TOK_LBRACE}, {"}", TOK_RBRACE},   {",", TOK_COMMA},  {":", TOK_COLON},    {".", TOK_DOT},
    {"=", TOK_ASSIGN}, {"?", TOK_QUESTION}, {"+", TOK_PLUS},   {"-", TOK_MINUS},    {"*", TOK_STAR},
    {"/", TOK_SLASH},  {"@", TOK_AT},       {"<", TOK_LT},     {">", TOK_GT},
};

/* Returns true when a punctuation token was consumed. */
static bool punct(Lexer *lx)
{
    for (size_t i = 0; i < sizeof puncts / sizeof puncts[0]; i++) {
        size_t n = puncts[i].s[1] ? 2 : 1;
        if (lx->p[0] != puncts[i].s[0] || (n == 2 && lx->p[1] != puncts[i].s[1])) continue;
        TokKind k = puncts[i].k;
        if (k == TOK_RBRACE && last_kind(lx) != TOK_NEWLINE && last_kind(lx) != TOK_LBRACE && lx->depth == 0)
            push(lx, TOK_NEWLINE, lx->p, 0); /* '}' ends the statement before it */
        push(lx, k, lx->p, (int)n);
        if (k == TOK_LPAREN || k == TOK_LBRACKET) lx->depth++;
        if ((k == TOK_RPAREN || k == TOK_RBRACKET) && lx->depth > 0) lx->depth--;
        /* a brace resets bracket nesting so one missing ')' does not eat the file */
        if (k == TOK_LBRACE || k == TOK_RBRACE) lx->depth = 0;
        lx->p += n;
        return true;
    }
    return false;
}

static void bad_byte(Lexer *lx)
{
    if (*lx->p == 0) {
        nul_byte(lx);
        return;
    }
    unsigned char c = (unsigned char)*lx->p;
    if (c >= 0x80) {
        dn_error(lx->cx, here(lx, lx->p),
                 "invalid byte 0x%02X (non-ASCII characters are only allowed in comments and strings)", c);
        while ((unsigned char)*lx->p >= 0x80) lx->p++; /* one message per run of bytes */
    } else {
        if (isprint(c))
            dn_error(lx->cx, here(lx, lx->p), "invalid character '%c'", c);
        else
            dn_error(lx->cx, here(lx, lx->p), "invalid character 0x%02X", c);
        lx->p++;
    }
}

/* One token (or blank, comment, bad byte) at lx->p. */
static void step(Lexer *lx)
{
    char c = *lx->p;
    if (c == '\n')
        newline(lx);
    else if (c == ' ' || c == '\t' || c == '\r')
        lx->p++;
    else if (c == '#')
        comment(lx);
    else if (isalpha((unsigned char)c) || c == '_')
        ident(lx);
    else if (isdigit((unsigned char)c))
        number(lx);
    else if (c == '"')
        string(lx);
    else if (!punct(lx))
        bad_byte(lx);
}

bool dn_lexer_more(Lexer *lx)
{
    if (lx->done) return false;
    int ends = lx->ends;
    while (lx->p < lx->end && lx->ends == ends) step(lx);
    if (lx->p == lx->end) {
        if (last_kind(lx) != TOK_NEWLINE) push(lx, TOK_NEWLINE, lx->p, 0);
        push(lx, TOK_EOF, lx->p, 0);
        lx->done = true;
    }
    return true;
}

Lexer *dn_lexer_new(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a, TokenVec *out)
{
    Lexer *lx = dn_arena_alloc(a, sizeof *lx);
    *lx = (Lexer){.cx = cx,
                  .a = a,
                  .file = file,
                  .p = text,
                  .end = text + len,
                  .line0 = text,
                  .line = 1,
                  .out = out,
                  .heap = true};
    return lx;
}

void dn_lex(DnCtx *cx, const char *file, const char *text, DnArena *a, TokenVec *out)
{
    Lexer lx = {
        .cx = cx, .a = a, .file = file, .p = text, .end = text + strlen(text), .line0 = text, .line = 1, .out = out};
    while (dn_lexer_more(&lx)) continue;
}

void dn_lex_n(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a, TokenVec *out)
{
    Lexer *lx = dn_lexer_new(cx, file, text, len, a, out);
    while (dn_lexer_more(lx)) continue;
}

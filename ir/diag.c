/* diag.c -- user diagnostics and the internal-bug channel.
 * Errors accumulate in the DnCtx (several per run) and print chibicc-style:
 *     lenet.dnn:7:12: error: conv2d expects a 4-d input, got f32[N, 784]
 *         x = conv2d(x, 6)
 *                    ^
 */
#include "support.h"

#include <stdlib.h>

void dn_ctx_init(DnCtx *cx)
{
    memset(cx, 0, sizeof *cx);
    cx->tail = &cx->diags;
}

void dn_ctx_free(DnCtx *cx)
{
    dn_arena_free(&cx->arena);
    dn_ctx_init(cx);
}

const char *dn_ctx_add_source(DnCtx *cx, const char *name, const char *text)
{
    DnSource *s = dn_arena_alloc(&cx->arena, sizeof *s);
    s->name = dn_arena_strdup(&cx->arena, name);
    s->text = dn_arena_strdup(&cx->arena, text);
    s->next = cx->sources;
    cx->sources = s;
    return s->text;
}

static void report(DnCtx *cx, DnSeverity sev, DnLoc loc, const char *fmt, va_list ap)
{
    int limit = cx->max_errors ? cx->max_errors : 20;
    if (sev == DN_SEV_ERROR && cx->nerr++ >= limit) return;
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    char *msg = dn_arena_alloc(&cx->arena, (size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap);
    DnDiag *d = dn_arena_alloc(&cx->arena, sizeof *d);
    d->sev = sev;
    d->loc = loc;
    if (loc.file) d->loc.file = dn_arena_strdup(&cx->arena, loc.file); /* graphs die before diags print */
    d->msg = msg;
    *cx->tail = d;
    cx->tail = &d->next;
}

void dn_verror(DnCtx *cx, DnLoc loc, const char *fmt, va_list ap) { report(cx, DN_SEV_ERROR, loc, fmt, ap); }

#define REPORT_FN(fn, sev)                                                                                             \
    void fn(DnCtx *cx, DnLoc loc, const char *fmt, ...)                                                                \
    {                                                                                                                  \
        va_list ap;                                                                                                    \
        va_start(ap, fmt);                                                                                             \
        report(cx, sev, loc, fmt, ap);                                                                                 \
        va_end(ap);                                                                                                    \
    }
REPORT_FN(dn_error, DN_SEV_ERROR)
REPORT_FN(dn_warning, DN_SEV_WARNING)
REPORT_FN(dn_note, DN_SEV_NOTE)

static const DnSource *find_source(DnCtx *cx, const char *name)
{
    for (DnSource *s = cx->sources; s; s = s->next)
        if (name && strcmp(s->name, name) == 0) return s;
    return NULL;
}

/* Prints line 'line' of 'text' and a caret under column 'col'. */
static void print_caret(FILE *out, const char *text, int line, int col)
{
    const char *p = text;
    for (int l = 1; l < line && *p; p++)
        if (*p == '\n') l++;
    const char *end = strchr(p, '\n');
    int len = end ? (int)(end - p) : (int)strlen(p);
    fprintf(out, "  %.*s\n  ", len, p);
    for (int i = 1; i < col && i <= len; i++) fputc(p[i - 1] == '\t' ? '\t' : ' ', out);
    fputs("^\n", out);
}

void dn_ctx_print_diags(DnCtx *cx, FILE *out)
{
    static const char *sevname[] = {"error", "warning", "note"};
    for (DnDiag *d = cx->diags; d; d = d->next) {
        if (d->loc.file)
            fprintf(out, "%s:%d:%d: %s: %s\n", d->loc.file, d->loc.line, d->loc.col, sevname[d->sev], d->msg);
        else
            fprintf(out, "dnnc: %s: %s\n", sevname[d->sev], d->msg);
        const DnSource *s = d->loc.file && d->loc.line > 0 ? find_source(cx, d->loc.file) : NULL;
        if (s) print_caret(out, s->text, d->loc.line, d->loc.col);
    }
    int limit = cx->max_errors ? cx->max_errors : 20;
    if (cx->nerr > limit) fprintf(out, "dnnc: too many errors (%d), stopping\n", cx->nerr);
}

void dn_die(const char *file, int line, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "dnnc: internal error at %s:%d: %s\n", file, line, msg);
    abort();
}

char *dn_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (!c) dn_die(__FILE__, __LINE__, "out of memory");
    return memcpy(c, s, n);
}

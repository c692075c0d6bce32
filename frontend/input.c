/* input.c -- the one place where an input file's kind is chosen, by its
 * file type: a .dnn source (parse + lower) or a .dnir graph in the IR text
 * form (docs/ir.md).  A new frontend (.onnx) is one more row of 'formats'.
 */
#include <limits.h>
#include <string.h>

#include "frontend.h"

static DnGraph *load_dnn(DnCtx *cx, const char *path, const char *text, const char *model, DnArena *a)
{
    DnAst *ast = dn_parse(cx, path, text, a);
    if (!ast || cx->nerr) return NULL;
    return dn_lower(cx, ast, model);
}

static DnGraph *load_dnir(DnCtx *cx, const char *path, const char *text, const char *model, DnArena *a)
{
    (void)a;
    DnGraph *g = dn_graph_read(cx, path, text);
    if (g && model && strcmp(model, g->name)) {
        dn_error(cx, (DnLoc){0}, "%s: --model %s: the file defines '%s'", path, model, g->name);
        dn_graph_free(g);
        return NULL;
    }
    return g;
}

static const DnInputFormat formats[] = {
    {".dnn", "dnn", "a model in the .dnn language (docs/language.md)", load_dnn},
    {".dnir", "dnir", "a graph in the IR text form (docs/ir.md)", load_dnir},
};

const DnInputFormat *dn_input_format(const char *path)
{
    size_t n = strlen(path);
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        size_t e = strlen(formats[i].ext);
        if (n > e && !strcmp(path + n - e, formats[i].ext)) return &formats[i];
    }
    return &formats[0]; /* any other name: a .dnn source */
}

DnStatus dn_input_check_text(DnCtx *cx, const char *path, const char *text, size_t len)
{
    DnStatus st = DN_OK;
    int line = 1;
    const char *line0 = text, *end = text + len;
    for (const char *p = text; p < end; p++) {
        if (*p == '\n') {
            line++;
            line0 = p + 1;
        } else if (*p == 0 && (p == text || p[-1] != 0)) {
            int col = p - line0 < INT_MAX ? (int)(p - line0) + 1 : INT_MAX;
            dn_error(cx, (DnLoc){path, line, col}, "NUL byte in source");
            st = DN_ERR;
        }
    }
    return st;
}

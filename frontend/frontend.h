/* frontend.h -- .dnn source to graph IR.
 *
 * lex.c (tokens) -> parse.c (AST, recursive descent, one function per
 * grammar rule) -> lower.c (names, blocks, repeat, hyper-parameter
 * expressions, compile-time if, labels -> parameter names, lowering through
 * the IR builder), with the layer table in layers.c and the train section
 * in train.c; input.c picks the reader by file type (.dnn here, or .dnir
 * IR text).  The grammar is in docs/language.md.  Every user error
 * is a diagnostic in the DnCtx with file, line and column; nothing here
 * exits or aborts on user input.
 */
#ifndef DN_FRONTEND_H
#define DN_FRONTEND_H

#include "../ir/ir.h"

typedef struct DnAst DnAst; /* a parsed file; private to the frontend */

/* Parses 'text' (registered in 'cx' under 'file' for carets).  Returns the
 * AST allocated in 'a', or NULL when there were syntax errors (all of them
 * reported, with recovery at statement boundaries). */
DnAst *dn_parse(DnCtx *cx, const char *file, const char *text, DnArena *a);
/* --emit=ast: an indented, deterministic dump. */
void dn_ast_print(const DnAst *ast, FILE *out);
/* Lowers model 'model' (NULL: the file's only model; an error if there are
 * several) and its train section, if any, to a new graph:
 *   - model inputs in order, then train-section inputs (train_only = true);
 *   - outputs named as the model declares them;
 *   - parameters with PyTorch names, shapes and default initializers;
 *     frozen ones trainable = false;
 *   - dropout ops present (the inference pass removes them), batchnorm in
 *     its inference form (the training pass switches it);
 *   - g->loss and g->optim from the train section (NULL without one).
 * Returns NULL when any error was reported. */
DnGraph *dn_lower(DnCtx *cx, const DnAst *ast, const char *model);

/* input.c: the input kinds, chosen by file type. */
typedef struct DnInputFormat {
    const char *ext;  /* ".dnn", ".dnir" */
    const char *name; /* "dnn", "dnir" */
    const char *help;
    /* Reads 'text' (the file 'path') into a new graph, model 'model' (NULL:
     * the file's only one); NULL after reporting errors in 'cx'. */
    DnGraph *(*load)(DnCtx *cx, const char *path, const char *text, const char *model, DnArena *a);
} DnInputFormat;
/* The format of 'path' by its extension; .dnn for any unknown one. */
const DnInputFormat *dn_input_format(const char *path);

#endif

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
/* dn_parse over the 'len' bytes at 'text' (text[len] is NUL).  A NUL byte
 * among them, where dn_parse would stop reading, is an error ("NUL byte in
 * source") at its line and column; so is a source longer than
 * DN_MAX_SOURCE_BYTES (docs/language.md).  Registers the text with 'cx'
 * unless it is already registered under 'file' (same pointer). */
DnAst *dn_parse_n(DnCtx *cx, const char *file, const char *text, size_t len, DnArena *a);
/* The largest .dnn source accepted, in bytes. */
#define DN_MAX_SOURCE_BYTES ((size_t)64 << 20)
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
/* For a reader of C strings (the 'load' functions above): reports every
 * run of NUL bytes among the 'len' bytes of 'text' (the file 'path') as
 * "NUL byte in source" at its line and column, since a C string would end
 * there.  Returns DN_ERR when there was one. */
DnStatus dn_input_check_text(DnCtx *cx, const char *path, const char *text, size_t len);

#endif

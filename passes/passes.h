/* passes.h -- graph passes: the pass table and the one pass signature.
 *
 * A pass is a file passes/<name>.c (with _ for -) exporting one function with the DnPassFn
 * signature; passes.def lists them with their kind, so the driver accepts
 * --passes=a,b,c, -fno-<name> and --print-after=<name> for every pass
 * without knowing any of them.  Passes never free IR (they mark ops dead)
 * and never test which backend is active.  pipeline.h runs them.
 */
#ifndef DN_PASSES_H
#define DN_PASSES_H

#include "module.h"

typedef struct DnPassCtx {
    DnCtx *cx;                     /* user diagnostics */
    DnArena scratch;               /* reset after each pass */
    bool training;                 /* the graph is the training graph */
    const int64_t *attention_tile; /* tile-attention's block_q, block_k (0: the backend's choice) */
} DnPassCtx;

typedef DnStatus (*DnPassFn)(DnPassCtx *pc, DnGraph *g);

/* What a row of passes.def does (its kind column). */
typedef enum DnPassKind {
    DN_PASS_DEFINE_TRAIN, /* makes a copy the training graph; no-op on the inference copy */
    DN_PASS_DEFINE_INFER, /* makes a copy the inference graph; no-op on the training copy */
    DN_PASS_OPTIMIZATION, /* optional: -fno-NAME skips it */
    DN_PASS_PLAN,         /* the memory plan of the module (not a DnPassFn) */
} DnPassKind;

typedef struct DnPassInfo {
    const char *name; /* "canonicalize", "plan-memory", ... */
    const char *help;
    DnPassKind kind;
    DnPassFn fn; /* NULL for DN_PASS_PLAN */
} DnPassInfo;

#define PASS(fn, name, kind, help) DnStatus dn_pass_##fn(DnPassCtx *pc, DnGraph *g);
#define STAGE(id, name, kind, help)
#include "passes.def"
#undef PASS
#undef STAGE

/* Row indexes of dn_pass_table (DN_PASS_ROW_canonicalize, ...) and their count. */
enum {
#define PASS(fn, name, kind, help)  DN_PASS_ROW_##fn,
#define STAGE(id, name, kind, help) DN_PASS_ROW_##id,
#include "passes.def"
#undef PASS
#undef STAGE
    DN_PASS_COUNT
};

/* passes.c: the rows of passes.def, in order (dn_pass_count == DN_PASS_COUNT). */
extern const DnPassInfo dn_pass_table[];
extern const int dn_pass_count;
/* The row named 'name', or NULL. */
const DnPassInfo *dn_pass_lookup(const char *name);
/* The row that defines the training graph ('training') or the inference
 * graph: the first of kind DN_PASS_DEFINE_TRAIN / DN_PASS_DEFINE_INFER. */
const DnPassInfo *dn_pass_defining(bool training);

/* canonicalize.c: marks dead every unused op without side effects that is no guard. */
void dn_dce(DnGraph *g, DnArena *scratch);

/* concat_views.c: whether operand k of concat 'op' may be a strided view of
 * its result (see the file); 'uses' from dn_fill_uses(g).  plan-memory
 * makes it one when the op is marked views = 1 and the buffers allow. */
bool dn_concat_view_operand(const DnGraph *g, const int *uses, const DnOp *op, int k);

/* plan_outputs.c: gives every output of 'g' that is not a distinct op result
 * (an input, a parameter, an op result an earlier output names) a copy op
 * of its own, placed before any op that writes parameters (for an input or
 * a parameter) or right after the op (for an op result), and makes the
 * output name it.  Returns the number of copies added (0 when every output
 * already is a distinct op result).  The first step of plan-memory
 * (dn_module_plan); the planner requires it. */
int dn_plan_outputs(DnGraph *g);

#endif

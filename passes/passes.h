/* passes.h -- graph passes: the pass table and the one pass signature.
 *
 * A pass is a file passes/<name>.c exporting one function with the DnPassFn
 * signature; passes.def lists them, so the driver accepts
 * --passes=a,b,c, -fno-<name> and --print-after=<name> for every pass
 * without knowing any of them.  Passes never free IR (they mark ops dead)
 * and never test which backend is active.
 */
#ifndef DN_PASSES_H
#define DN_PASSES_H

#include "module.h"

typedef struct DnPassCtx {
    DnCtx *cx;       /* user diagnostics */
    DnArena scratch; /* reset after each pass */
    bool training;   /* the graph is the training graph */
} DnPassCtx;

typedef DnStatus (*DnPassFn)(DnPassCtx *pc, DnGraph *g);

typedef struct DnPassInfo {
    const char *name; /* "canonicalize", "plan-memory", ... */
    const char *help;
    DnPassFn fn;
} DnPassInfo;

#define PASS(fn, name, help) DnStatus dn_pass_##fn(DnPassCtx *pc, DnGraph *g);
#include "passes.def"
#undef PASS

extern const DnPassInfo dn_pass_table[];
extern const int dn_pass_count;
const DnPassInfo *dn_pass_lookup(const char *name);

/* canonicalize.c: marks dead every unused op without side effects. */
void dn_dce(DnGraph *g, DnArena *scratch);

#endif

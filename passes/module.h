/* module.h -- what the passes hand the backends: the memory plan of each
 * graph, the state layout, and the compiled module (DnModule).
 *
 * Included by passes (plan_memory.c fills the plan) and by backends alike;
 * it depends only on the IR.
 */
#ifndef DN_MODULE_H
#define DN_MODULE_H

#include "../ir/ir.h"

/* ---- memory plan (plan_memory.c) ----------------------------------------
 * Where each value lives while the graph runs.  Arena offsets have the
 * form  coef_n * n + offset  so one plan serves every batch size. */
typedef enum {
    DN_BUF_NONE,   /* not materialised (dead) */
    DN_BUF_ARENA,  /* session scratch: arena + coef_n * n + offset */
    DN_BUF_STATE,  /* state block + offset (parameters, optimizer state) */
    DN_BUF_INPUT,  /* inputs[index] */
    DN_BUF_OUTPUT, /* outputs[index] */
} DnBufKind;

typedef struct DnBuf {
    DnBufKind kind;
    int index;      /* INPUT/OUTPUT */
    int64_t coef_n; /* ARENA */
    int64_t offset; /* ARENA, STATE; bytes */
} DnBuf;

typedef struct DnPlan {
    DnBuf *buf;               /* indexed by value id, g->nvalues entries */
    int64_t arena_n, arena_b; /* arena bytes = arena_n * n + arena_b */
    int64_t naive_n, naive_b; /* what one buffer per value would take (for the report) */
} DnPlan;

/* State layout: one block holding every parameter, buffer and optimizer
 * state tensor of 'g' at 64-aligned offsets, in g->params order.  Filled by
 * dn_state_layout (plan_memory.c); the same order and offsets are used by
 * every graph of a module (the inference graph's params are a prefix of the
 * training graph's). */
typedef struct DnStateLayout {
    int n;
    int64_t *offset; /* per g->params[i] */
    int64_t bytes;
} DnStateLayout;

void dn_state_layout(const DnGraph *g, DnArena *a, DnStateLayout *out);
/* Plans 'g' (after all other passes): every op result gets a DnBuf;
 * inputs, outputs and params are pinned; reshape aliases its operand;
 * arena buffers reuse memory once their last use has run. */
DnPlan *dn_plan_memory(DnGraph *g, const DnStateLayout *state, DnArena *a);
void dn_plan_print(const DnGraph *g, const DnPlan *p, FILE *out);

/* ---- the module the backends consume ----------------------------------- */
typedef struct DnModule {
    const char *name;
    DnGraph *infer; /* inference graph (always) */
    DnPlan *infer_plan;
    DnGraph *train; /* training step graph, or NULL (--no-train, no train section) */
    DnPlan *train_plan;
    DnStateLayout state;        /* over train's params when train, else infer's */
    const DnGraph *state_graph; /* the graph whose params 'state' describes */
    float lr;                   /* base learning rate (0 without training) */
} DnModule;

#endif

/* pipeline.h -- the compile pipeline as a library: a verified graph in,
 * a DnModule (optimized graphs, state layout, memory plans) out.
 *
 *   g --clone--> inference graph --passes--+
 *     --clone--> training graph  --passes--+--> state layout + plan-memory --> DnModule
 *
 * The driver, the tests and the fuzzers all compile through dn_compile;
 * a harness that builds its graphs by hand plans them with dn_module_plan,
 * the same last stage dn_compile runs.  Depends on passes/ and ir/ only.
 */
#ifndef DN_PIPELINE_H
#define DN_PIPELINE_H

#include "passes.h"

/* Called after every graph pass that succeeded (before verify_each and
 * print_after); returning DN_ERR stops the compile.  For test harnesses
 * that check their own invariants between passes. */
typedef DnStatus (*DnPassHook)(void *arg, const DnPassInfo *p, DnGraph *g, bool training);

/* How dn_compile runs; all zeros is the default pipeline. */
typedef struct DnCompileOptions {
    bool no_train;                /* inference graph only, even when the graph has a loss */
    bool verify_each;             /* dn_verify after every pass (always done at the end) */
    bool disabled[DN_PASS_COUNT]; /* by dn_pass_table index; honoured for DN_PASS_OPTIMIZATION rows only */
    /* "a,b,c": run these graph passes, in this order, instead of the table's;
     * the graph's defining pass runs first if not listed; "plan-memory" may
     * only end the list (it runs last anyway).  NULL: the table's order. */
    const char *passes;
    const char *print_after; /* a stage name, or "all"; NULL: print nothing */
    FILE *print_to;          /* where print_after writes; NULL: stderr */
    DnPassHook after_pass;   /* optional */
    void *after_pass_arg;
    /* The target's workspace query (DnBackend.workspace) and its data, so
     * plan-memory places each kernel's scratch in the arena; NULL: kernels
     * keep their scratch on the stack. */
    DnWorkspaceFn workspace;
    void *workspace_data;
    /* tile-attention's block_q and block_k for every op it makes; 0: the
     * backend's choice (dnnc --attention-tile=QxK) */
    int64_t attention_tile[2];
} DnCompileOptions;

/* Compiles the verified graph 'g' (not modified) into 'm': a clone of 'g'
 * becomes the inference graph and, when g has a loss and not o->no_train,
 * another the training graph; each runs the passes per 'o' (NULL: the
 * defaults) and the verifier; then dn_module_plan.  Plans and the state
 * layout live in 'a'; the graphs are m's (dn_module_free).  Returns DN_OK,
 * or DN_ERR after reporting through 'cx' (an unknown or misplaced name in
 * o->passes, a pass's error); m then holds what was built so far and must
 * still be freed with dn_module_free. */
DnStatus dn_compile(DnCtx *cx, const DnGraph *g, const DnCompileOptions *o, DnModule *m, DnArena *a);

/* The plan-memory stage: gives every output of m->infer and m->train that
 * is not a distinct op result a copy op (dn_plan_outputs, so the graphs
 * change: --emit=ir-opt shows the copies), sets m->state_graph (m->train
 * if set, else m->infer), lays out the state of that graph's params and plans the memory
 * of m->infer and m->train (if set), all in 'a', with o->workspace's
 * per-op workspaces ('o' may be NULL: none); prints the plans when
 * o->print_after asks for plan-memory ('o' may be NULL).  The graphs must
 * be final (no pass may run after it), and the inference graph's params a
 * prefix of the training graph's (a bug otherwise: dn_die).  Never fails. */
void dn_module_plan(DnModule *m, DnArena *a, const DnCompileOptions *o);

/* Frees the graphs of a module built by dn_compile and clears 'm' (the
 * plans live in the caller's arena).  'm' zeroed, or partly built, is fine. */
void dn_module_free(DnModule *m);

#endif

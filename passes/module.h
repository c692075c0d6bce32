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
 * form  coef_n * n + offset  so one plan serves every batch size.
 *
 * A value either owns a buffer (ARENA, STATE, INPUT, OUTPUT) or is a VIEW:
 * it lies inside the buffer of another value, its 'base', which always
 * owns its buffer (views of views are flattened).  For a view 'v':
 *   - without N: its bytes are  [addr(base) + offset, + bytes(v)), contiguous;
 *   - with N: batch item i of 'v' starts at  addr(base) + offset + i * stride,
 *     where 'stride' is the base's bytes per batch item, and the item's own
 *     bytes (bytes(v) per item, at most 'stride') are contiguous.  So a
 *     slice along axis 1 of [N, C, ...] is the offset of its first channel
 *     with the stride of the whole [C, ...] item; a reshape is the view at
 *     offset 0 whose stride equals its own item size (contiguous).
 * Strides along other axes are not expressible: such a slice is a copy.
 * dn_plan_locate (plan_locate.c) resolves any value to the buffer that
 * holds it; backends address values through it, never through 'buf'. */
typedef enum {
    DN_BUF_NONE,   /* not materialised (dead) */
    DN_BUF_ARENA,  /* session scratch: arena + coef_n * n + offset */
    DN_BUF_STATE,  /* state block + offset (parameters, optimizer state) */
    DN_BUF_INPUT,  /* inputs[index] */
    DN_BUF_OUTPUT, /* outputs[index] */
    DN_BUF_VIEW,   /* inside the buffer of value 'base' at 'offset' (and 'stride' per batch item) */
} DnBufKind;

typedef struct DnBuf {
    DnBufKind kind;
    int index;      /* INPUT/OUTPUT */
    int64_t coef_n; /* ARENA */
    int64_t offset; /* ARENA, STATE, VIEW; bytes */
    int base;       /* VIEW: id of the value that owns the buffer (never itself a VIEW) */
    int64_t stride; /* VIEW of a value with N: bytes from one batch item to the next; else 0 */
} DnBuf;

/* The scratch an op needs while it runs (a backend's request), in two
 * parts:
 *   - one copy for the whole op (bytes_n * n + bytes_b), placed in the
 *     arena's pools like a value that lives only during its op: it may
 *     reuse the bytes of values dead by then, and never overlaps a value
 *     the op reads or writes, nor any other value live at that op;
 *   - 'per_worker' bytes for each worker thread (dnrt_kernel_fn's worker
 *     index), in the worker section at the end of the arena, one slice of
 *     arena_t bytes per thread, which all ops share (one op runs at a time).
 *     Its size depends on the session's thread count, known only at run
 *     time, so it cannot fit in a dead value's bytes planned at compile time.
 * The arena is [ fixed pool: arena_b ][ per-N pool: arena_n * N ][ T slices of arena_t ]. */
typedef struct DnWorkspace {
    DnBuf buf;                /* the whole-op part: NONE (none) or ARENA */
    int64_t bytes_n, bytes_b; /* its bytes, bytes_n * n + bytes_b: the request rounded up to 64
                                 (a request with both terms takes bytes_n + bytes_b per item) */
    int64_t per_worker;       /* bytes of each worker's slice it uses (from the slice's start), 64-aligned */
} DnWorkspace;

typedef struct DnPlan {
    DnBuf *buf;               /* indexed by value id, g->nvalues entries */
    DnWorkspace *workspace;   /* indexed by op position in g->ops, g->ops.len entries (all empty without a query) */
    int64_t arena_n, arena_b; /* the pools' bytes = arena_n * n + arena_b, whole-op workspaces included */
    int64_t arena_t;          /* bytes of each worker's slice: the arena takes arena_n*n + arena_b + arena_t*threads */
    int64_t naive_n, naive_b; /* what one buffer per value would take (for the report) */
} DnPlan;

/* What a backend's workspace query asks for one op (see DnWorkspace). */
typedef struct DnWorkspaceReq {
    int64_t bytes_n, bytes_b; /* one copy for the op: bytes_n * n + bytes_b */
    int64_t per_worker;       /* and this many bytes for each worker thread */
} DnWorkspaceReq;

/* A backend's workspace query, called by the planner once per live op:
 * fills *req (zeroed on entry) and returns true, or returns false when
 * 'op' needs no workspace.  'backend_data' is what the caller of
 * dn_plan_memory_ws passed (e.g. the backend's options).  The backend must
 * later use at most that many bytes, where dn_plan_locate_workspace and
 * dn_plan_locate_worker say. */
typedef bool (*DnWorkspaceFn)(const DnOp *op, void *backend_data, DnWorkspaceReq *req);

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
 * inputs, outputs and params are pinned (every output must be a distinct
 * op result, as dn_plan_outputs in passes.h makes them; dies otherwise); reshape is a view of its operand
 * (the operand's buffer lives as long as any view of it is used); arena
 * buffers reuse memory once their last use has run.  No workspaces.  The
 * plan lives in 'a'; 'g' must not change afterwards. */
DnPlan *dn_plan_memory(DnGraph *g, const DnStateLayout *state, DnArena *a);
/* The same, and every live op for which 'ws' (may be NULL) asks for bytes
 * gets a workspace in the arena (DnPlan.workspace, DnPlan.arena_t). */
DnPlan *dn_plan_memory_ws(DnGraph *g, const DnStateLayout *state, DnWorkspaceFn ws, void *backend_data, DnArena *a);
/* --emit=plan (plan_print.c): one line per op result (numbered as the IR
 * text numbers them), where it lives, each workspace, and the arena size. */
void dn_plan_print(const DnGraph *g, const DnPlan *p, FILE *out);

/* Where value 'v' lives under a plan (plan_locate.c): the buffer that holds
 * it and the bytes it covers there, views resolved.  Its first byte is at
 * buffer + at_n * n + at_b; it covers the bytes up to span_n * n + span_b
 * past that (for a strided view: from its first item's first byte to its
 * last item's last byte, with the other values' bytes in between). */
typedef struct DnBufLoc {
    DnBufKind kind;         /* ARENA, STATE, INPUT or OUTPUT; NONE when 'v' has no buffer */
    int index;              /* INPUT/OUTPUT: the slot */
    int64_t at_n, at_b;     /* byte offset in that buffer */
    int64_t span_n, span_b; /* byte extent */
    int64_t stride;         /* bytes between batch items of a strided view (between worker slices for
                               dn_plan_locate_worker); 0 when the bytes are contiguous */
} DnBufLoc;
DnBufLoc dn_plan_locate(const DnPlan *p, const DnValue *v);
/* Bytes from one batch item of 'v' (which has N) to the next: its own item
 * size, or a strided view's stride.  Kernels of ops flagged
 * DN_OPF_STRIDED_OUT write result 0 at this stride. */
int64_t dn_plan_item_stride(const DnPlan *p, const DnValue *v);
/* Whether 'x' is a view inside y's buffer at byte offset 'off' of every
 * batch item (a concat operand its producer wrote in place: the concat's
 * kernel skips it). */
bool dn_plan_is_view_at(const DnPlan *p, const DnValue *x, const DnValue *y, int64_t off);
/* The same for the whole-op workspace of the op at position 'op_index'
 * (NONE when it has none). */
DnBufLoc dn_plan_locate_workspace(const DnPlan *p, int op_index);
/* Worker 0's slice for the op at 'op_index' (NONE when it has none): worker
 * w's starts 'stride' (= arena_t) bytes after worker 0's; span_b = the
 * bytes the op uses of it. */
DnBufLoc dn_plan_locate_worker(const DnPlan *p, int op_index);

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

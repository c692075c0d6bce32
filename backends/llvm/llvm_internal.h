/* llvm_internal.h -- the CPU backend's one internal header: the contract
 * between the host layer's launch hook (llvm_launch.c) and the kernel
 * generators (kernel_*.c), and the building blocks generators share.
 *
 * Every op of a planned graph becomes one internal function
 *     void kernel(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker)
 * that computes iterations [begin, end) of the op's parallel loop.  The
 * generator of the op's kind (dn_llvm_kernels[kind]) fills the body and
 * sets how many iterations there are (par_n * N + par_b); the entry
 * function calls dnrt_parallel_for(c, kernel, par_n * N + par_b), or the
 * kernel directly when that count is 1 or the op is cheap
 * (dn_host_call_kernel).  Operand and result pointers are already computed
 * from the memory plan when the generator runs.
 *
 * Generators are specialised to static shapes: every dimension except N is
 * an LLVM constant, so loops have constant trip counts the optimizer can
 * unroll and vectorize.  The sequence axis T (ir/seq.c) never reaches a
 * generator as a dim, except in the DN_SEQ_AWARE ops, which read k->t.  A generator may replace its loop nest with a
 * tiled one without touching anything else.
 */
#ifndef DN_LLVM_INTERNAL_H
#define DN_LLVM_INTERNAL_H

#include <llvm-c/Core.h>

#include "../host/host.h"

/* A kernel is generated into a unit (llvm_units.c): a DnHost of its own
 * (context, module, builder, types) that shares the host's options and
 * diagnostics. */
typedef DnHost DnLlvm;

#define DN_KERNEL_MAX_IN  DN_LAUNCH_MAX_IN
#define DN_KERNEL_MAX_OUT DN_LAUNCH_MAX_OUT

/* ---- llvm_workspace.c: per-op workspace -------------------------------------
 * A kernel's large scratch arrays live in the arena, in two parts the
 * memory plan places (dn_llvm_workspace is the backend's DnWorkspaceFn,
 * passes/module.h): a part one copy of which serves all workers (indexed
 * by iteration, so workers touch disjoint bytes), placed for the op's
 * duration, and a part in each worker's slice (dnrt_kernel_fn's worker
 * index picks the slice).  A plan without them (dn_plan_memory) leaves
 * the pointers NULL and the same arrays go on the kernel's stack, as
 * before. */
typedef struct DnScratch {
    int64_t shared; /* bytes all workers share */
    int64_t slice;  /* bytes each worker has for itself */
} DnScratch;

typedef struct DnKernel {
    DnLlvm *L;
    const DnGraph *g;
    const DnPlan *plan;
    const DnOp *op;
    LLVMValueRef fn;                     /* the kernel function */
    LLVMValueRef c, begin, end;          /* its parameters (c: ptr to dnrt_call) */
    LLVMValueRef n;                      /* i64 batch size, loaded from c (n * t for a DN_SEQ_ROWS op) */
    LLVMValueRef t;                      /* i64 sequence length, for a DN_SEQ_AWARE op only (else NULL) */
    LLVMValueRef in[DN_KERNEL_MAX_IN];   /* operand base pointers (NULL for absent optional operands) */
    LLVMValueRef out[DN_KERNEL_MAX_OUT]; /* result base pointers */
    int64_t par_n, par_b;                /* set by the generator; default 0, 1 (serial) */
    /* workspace: the shared part and this call's worker slice, or both NULL (stack scratch);
     * 'scratch' the sizes dn_llvm_scratch gave, 'used' what the generator took */
    LLVMValueRef ws_shared, ws_slice;
    DnScratch scratch, used;
    /* phases: a generator may split an op into nphase kernels run one after
     * the other (each its own parallel loop, e.g. a weight transform into
     * the shared workspace, then the convolution that reads it).  It is
     * called once per phase with 'phase' set (0 first) and sets 'nphase'
     * (default 1) in phase 0; every phase takes the same scratch. */
    int phase, nphase;
} DnKernel;

typedef void (*DnKernelGen)(DnKernel *k);
/* Generators are named dn_kernel_<op name> (e.g. dn_kernel_conv2d) and live
 * in kernel_<family>.c; kernels.c builds the table from ops.def. */
/* Indexed by DnOpKind; every op has a generator (a missing one is a link
 * error).  A future backend-specific gap would be NULL, which the launch
 * hook reports as "llvm backend: no kernel for op X" at the op. */
extern const DnKernelGen dn_llvm_kernels[DN_OP_COUNT];

/* ---- llvm_launch.c: the hooks the host layer calls -------------------------- */
/* begin_module declares dnrt_parallel_for; launch emits the kernel of the op
 * (through dn_llvm_kernels) and its call (dn_host_call_kernel). */
extern const DnHostHooks dn_llvm_hooks;

/* Adds, in H->mod, the empty body function 'name' of l's kernel with 'nws'
 * (0 or 2) workspace pointers after the operands, its pointer facts as
 * parameter attributes; its type in *body_t. */
LLVMValueRef dn_llvm_add_body(DnHost *H, const char *name, const DnLaunch *l, int nws, LLVMTypeRef *body_t);

/* ---- llvm_units.c: one module per distinct kernel ----------------------------- */
typedef struct DnUnit DnUnit;
/* A new unit for l's kernel, with its empty body in *body; the generator
 * builds it with dn_unit_host(u). */
DnUnit *dn_unit_begin(DnHost *H, const DnLaunch *l, int nws, LLVMValueRef *body);
DnHost *dn_unit_host(DnUnit *u);
/* Ends unit 'u' (whose body is complete) and returns the body's symbol:
 * u's own, now one of H's units, or that of an earlier unit with the same
 * text, when 'u' is freed. */
const char *dn_unit_end(DnHost *H, DnUnit *u, LLVMValueRef body, const char *opname);
/* With H's module optimized and H->tm set: appends an object per unit to
 * 'objs', from the kernel cache or compiled on o->jobs threads; prints
 * the counts to o->stats.  DN_ERR with diagnostics when one fails. */
DnStatus dn_units_build(DnHost *H, DnObjects *objs);
/* --emit=code: optimizes every unit and prints each after H's module. */
DnStatus dn_units_print(DnHost *H, FILE *out);
/* The dispose hook: frees the units and their contexts. */
void dn_units_dispose(DnHost *H);

/* ---- llvm_workspace.c ----------------------------------------------------- */
/* The scratch the kernel of 'op' takes under options 'o' (NULL: the
 * defaults); all zero for none.  Follows the generators' own choices (the
 * driver dies when a generator takes other amounts: a compiler bug). */
DnScratch dn_llvm_scratch(const DnOp *op, const DnBackendOptions *o);
/* The DnWorkspaceFn of the LLVM backend; 'backend_data' is a const
 * DnBackendOptions * (or NULL). */
bool dn_llvm_workspace(const DnOp *op, void *backend_data, DnWorkspaceReq *req);
/* Bytes an f32 array of 'n' elements takes in a workspace (64-aligned). */
int64_t dn_ws_f32_bytes(int64_t n);
/* Generators' scratch arrays of 'n' f32: in the shared part / this worker's
 * slice of the workspace, after the ones taken before (64-aligned); on
 * the stack (dn_scratch_f32) when the kernel has no workspace. */
LLVMValueRef dn_ws_shared_f32(DnKernel *k, int64_t n, const char *name);
LLVMValueRef dn_ws_slice_f32(DnKernel *k, int64_t n, const char *name);
/* How the driver sets up the workspace of the op at position 'at': what
 * the kernel needs, and whether (and where) the plan provides it. */
typedef struct DnOpWorkspace {
    DnScratch need;
    bool in_plan;           /* the plan holds both parts, at least as large as 'need' */
    DnBufLoc shared, slice; /* where (dn_plan_locate_workspace, dn_plan_locate_worker); NONE for an unused part */
} DnOpWorkspace;
DnOpWorkspace dn_llvm_op_workspace(const DnLlvm *L, const DnPlan *plan, const DnOp *op, int at);
/* Dies unless the generator of k->op took exactly k->scratch. */
void dn_llvm_check_scratch(const DnKernel *k);

/* ---- llvm_util.c: building blocks for generators -------------------------- */
/* False under --direct-kernels: fast kernels then decline every op. */
bool dn_llvm_fast_kernels(const DnKernel *k);
LLVMValueRef dn_i64(DnKernel *k, int64_t v);
LLVMValueRef dn_i32(DnKernel *k, int32_t v);
LLVMValueRef dn_f32(DnKernel *k, double v);
/* Size of axis 'axis' of 'v' as an i64 value (k->n for the batch axis, k->t
 * for the sequence axis). */
LLVMValueRef dn_dim(DnKernel *k, const DnValue *v, int axis);
/* Product of all dims (N included). */
LLVMValueRef dn_numel(DnKernel *k, const DnValue *v);
/* Reads field 'field' (DN_CALL_*) of the call struct. */
LLVMValueRef dn_call_field(DnKernel *k, int field);

/* Counted loops:  DnLoop l = dn_loop_begin(k, lo, hi, "i");  ... l.i ...  dn_loop_end(k, &l);
 * Iterates i = lo, lo+1, ..., hi-1 (i64); nothing when lo >= hi. */
typedef struct DnLoop {
    LLVMValueRef i;
    LLVMBasicBlockRef head, body, exit;
    LLVMValueRef phi;
} DnLoop;
DnLoop dn_loop_begin(DnKernel *k, LLVMValueRef lo, LLVMValueRef hi, const char *name);
void dn_loop_end(DnKernel *k, DnLoop *l);

/* Mutable scalars (allocas in the entry block; mem2reg turns them into SSA). */
LLVMValueRef dn_var(DnKernel *k, LLVMTypeRef t, LLVMValueRef init, const char *name);
LLVMValueRef dn_get(DnKernel *k, LLVMValueRef var, LLVMTypeRef t);
void dn_set(DnKernel *k, LLVMValueRef var, LLVMValueRef v);

/* Element access: base[idx] for f32 / i32 elements (idx: i64). */
LLVMValueRef dn_load_f32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx);
void dn_store_f32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx, LLVMValueRef v);
LLVMValueRef dn_load_i32(DnKernel *k, LLVMValueRef base, LLVMValueRef idx);

/* Arithmetic shorthands on i64 and f32 (nsw/fast-math where safe). */
LLVMValueRef dn_add(DnKernel *k, LLVMValueRef a, LLVMValueRef b);  /* i64 */
LLVMValueRef dn_mul(DnKernel *k, LLVMValueRef a, LLVMValueRef b);  /* i64 */
LLVMValueRef dn_imin(DnKernel *k, LLVMValueRef a, LLVMValueRef b); /* i64, signed */
LLVMValueRef dn_fadd(DnKernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef dn_fmul(DnKernel *k, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef dn_fma(DnKernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c); /* llvm.fma.f32 */
/* llvm.maximum.f32: NaN if either is NaN, and -0 < +0; loops that reduce
 * with it vectorize (a select on a compare does not, without fast-math). */
LLVMValueRef dn_fmax(DnKernel *k, LLVMValueRef a, LLVMValueRef b);
/* exp, tanh and erf of f32 as inline code (llvm_math.c: their error bounds). */
LLVMValueRef dn_exp_f32(DnKernel *k, LLVMValueRef x);
LLVMValueRef dn_tanh_f32(DnKernel *k, LLVMValueRef x);
LLVMValueRef dn_erf_f32(DnKernel *k, LLVMValueRef x);
/* Calls the unary f32 intrinsic or libm function 'name' ("llvm.log.f32", "expm1f", ...);
 * "llvm.exp.f32", "tanhf" and "erff" become the inline code of llvm_math.c. */
LLVMValueRef dn_call_f32(DnKernel *k, const char *name, LLVMValueRef x);
/* if (cond) { ... }:  LLVMBasicBlockRef after = dn_if_begin(k, cond); ...; dn_if_end(k, after); */
LLVMBasicBlockRef dn_if_begin(DnKernel *k, LLVMValueRef cond);
void dn_if_end(DnKernel *k, LLVMBasicBlockRef after);

/* ---- kernel_dropout.c: Philox 4x32-10 in LLVM IR ---------------------------- */
/* The session's Philox key {seed lo, seed hi} as i32 values (read from the call struct). */
void dn_llvm_philox_key(DnKernel *k, LLVMValueRef key[2]);
/* out[0..3] = Philox4x32-10(key, ctr) on i32 values, inline; the same
 * function as the runtime's dnrt_philox4x32. */
void dn_llvm_philox(DnKernel *k, LLVMValueRef key[2], LLVMValueRef ctr[4], LLVMValueRef out[4]);

#endif

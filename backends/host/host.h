/* host.h -- the host layer shared by every backend: the part of a generated
 * library that runs on the CPU, emitted as LLVM IR whatever the device.
 *
 * For a DnModule it builds one LLVM module holding the entry function of
 * each graph (which runs the graph's live ops in order), the descriptor
 * <model>_descriptor (dnrt_model_desc) and the exported typed functions of
 * <model>.h, then optimizes it and writes an object file or the IR text.
 * What runs one op is the backend's: the host calls its launch hook once
 * per live op, at the op's place in the entry function (DnHostHooks below).
 * The CPU backend (backends/llvm/) emits kernels into this same module.
 */
#ifndef DN_HOST_H
#define DN_HOST_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "../backend.h"

typedef struct DnHostHooks DnHostHooks;

/* The state of one module being built; lives from module setup to disposal
 * inside dn_host_emit_object / dn_host_emit_text. */
typedef struct DnHost {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTypeRef i1, i8, i32, i64, f32, f64, ptr, void_t;
    LLVMTypeRef call_t;      /* struct dnrt_call, field order as in dnrt.h */
    LLVMTypeRef kernel_fn_t; /* void (ptr, i64, i64, i32): dnrt_kernel_fn, what dnrt_parallel_for runs */
    const DnModule *m;
    const DnBackendOptions *opt; /* may be NULL (defaults) */
    DnCtx *cx;
    const DnHostHooks *hooks; /* the backend's */
    void *be;                 /* the backend's own state, set by its hooks (allocate it in cx->arena) */
    int nlaunch;              /* launches so far in the module (DnLaunch.seq of the next one) */
    LLVMTargetMachineRef tm;  /* the target machine, once the module is optimized */
    int vec_regs;             /* the target's vector registers (dn_host_vector_registers), for register blocking */
    LLVMValueRef gpu_program; /* GPU backends: the dnrt_gpu_program the descriptor points to (set by
                                 end_module); NULL for the CPU */
} DnHost;

/* Field numbers of call_t (LLVMBuildStructGEP2). */
enum {
    DN_CALL_N,
    DN_CALL_ARENA,
    DN_CALL_STATE,
    DN_CALL_INPUTS,
    DN_CALL_OUTPUTS,
    DN_CALL_POOL,
    DN_CALL_STEP,
    DN_CALL_SEED,
    DN_CALL_LR,
    DN_CALL_DEV,
    DN_CALL_T
}; /* ORDER dnrt_call fields */

#define DN_LAUNCH_MAX_IN   8
#define DN_LAUNCH_MAX_OUT  4
#define DN_LAUNCH_MAX_PTRS (DN_LAUNCH_MAX_IN + DN_LAUNCH_MAX_OUT)

/* One pointer an op's code receives, with what the memory plan says of it:
 * 'loc' is where it points, views resolved to their owner's buffer
 * (dn_plan_locate; dn_host_launch_ptrs emits the address), and the bytes it
 * spans (for a strided view, first item to last, gaps included). */
typedef struct DnLaunchPtr {
    const DnValue *v; /* the operand or result (NULL for a buffer that is no value's) */
    DnBufLoc loc;     /* an input's index is the graph's, not the descriptor's */
    bool written;     /* the op writes through it */
    bool noalias;     /* no other pointer of the op may overlap it where either is written */
    bool align64;     /* 64-byte aligned for every N */
    int same_as;      /* an earlier pointer of the op that is this one for every N (in place), or -1 */
} DnLaunchPtr;

/* What the host hands the launch hook for one op.  ptr[] lists the op's
 * operands, then its results: ptr[i] is op->in[i] for i < op->nin and
 * op->out[i - op->nin] after.  The op's workspace, if the plan gives it
 * one, is found by its position 'at' (dn_plan_locate_workspace/_worker). */
typedef struct DnLaunch {
    const DnGraph *g;
    const DnPlan *plan;
    const DnOp *op;
    int at;             /* op's position in g->ops */
    int seq;            /* 0, 1, ... over the whole module, in launch order: for unique names */
    LLVMValueRef entry; /* the entry function being built */
    LLVMValueRef c;     /* its parameter: ptr to the dnrt_call */
    int nptrs;
    DnLaunchPtr ptr[DN_LAUNCH_MAX_PTRS];
    DnSeqForm seq_form; /* how the op meets the sequence axis T (ir/seq.c); DN_SEQ_ROWS: its kernel's batch is n * t */
} DnLaunch;

/* The batch count a kernel of 'l' sees, loaded from the dnrt_call 'c' in
 * the function being built: n, or n * t for a DN_SEQ_ROWS op (addresses
 * always use n). */
LLVMValueRef dn_host_kernel_n(DnHost *H, const DnLaunch *l, LLVMValueRef c, LLVMValueRef n);

/* ---- the backend's hooks ---------------------------------------------------
 * A backend built on the host layer supplies these; the host calls them while
 * it builds the module, in this order:
 *   begin_module  once, after module setup, before any entry function;
 *   launch        once per live op of the inference graph, then of the
 *                 training graph, in graph order;
 *   end_module    once, after every entry function and before the
 *                 descriptor and the wrappers (only when every launch
 *                 succeeded).
 * Hooks may add anything to H->mod (functions, globals, declarations) and
 * keep state in H->be.  A hook that fails reports a diagnostic and returns
 * DN_ERR; the module is then not written. */
struct DnHostHooks {
    /* Optional.  E.g. declare the runtime functions the launches call, or
     * start the device program the launches add kernels to. */
    DnStatus (*begin_module)(DnHost *H);
    /* Required.  Emits whatever runs op l->op: on entry the builder is at
     * the end of the entry function's current block; the hook may move it
     * (to build other functions) but must leave it at the end of the block
     * where l->entry continues after the op.  Operand addresses come from
     * dn_host_launch_ptrs, the CPU's serial/parallel policy from
     * dn_host_call_kernel.  An op the backend cannot run: a diagnostic at
     * l->op->loc and DN_ERR (the host goes on with the next op, so every
     * such op is reported, then fails the module). */
    DnStatus (*launch)(DnHost *H, const DnLaunch *l);
    /* Optional.  E.g. embed the kernel image the launches collected and add
     * the function that loads it at session creation. */
    DnStatus (*end_module)(DnHost *H);
    /* true: the launch hook itself returns the entry's status after a guard
     * op (and after any launch that fails), because the guard's result is
     * not in host memory (GPU backends); false: the host reads the result
     * at its plan address after the launch (the CPU). */
    bool launch_returns;
    /* optional: releases what the hooks made in H->be (LLVM contexts);
     * called once, when the module is done with, built or not */
    void (*dispose)(DnHost *H);
};

/* ---- host_module.c: module setup and the emission of a whole DnModule ---- */

/* Builds the module of 'm' with 'hooks', optimizes it for the target of 'o'
 * (NULL: host CPU, -O3) and writes it to a new temporary object appended
 * to 'objs'.  Returns DN_OK, or DN_ERR with diagnostics in 'cx'. */
DnStatus dn_host_emit_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks,
                             DnObjects *objs);
/* The same module, optimized, as LLVM IR text on 'out'. */
DnStatus dn_host_emit_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks,
                           FILE *out);
/* The same module, optimized, handed to 'write' (which reports its own
 * failures); for backends whose output is more than the host module
 * (the GPU targets' --emit=code prints the kernels' source from H->be). */
DnStatus dn_host_emit_with(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks,
                           DnStatus (*write)(DnHost *H, void *arg), void *arg);
/* Sets up *H for a new, empty module of 'm' in a context of its own
 * (types, builder, vector registers); dn_host_dispose releases it.  The
 * CPU backend also makes one per distinct kernel (backends/llvm/llvm_units.c). */
void dn_host_init(DnHost *H, DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const DnHostHooks *hooks);
void dn_host_dispose(DnHost *H);
/* Declares (once) the hidden runtime function 'name' of type 't' in H->mod
 * (libdnnrt.a defines it) and returns it. */
LLVMValueRef dn_host_runtime_fn(DnHost *H, const char *name, LLVMTypeRef t);
/* Adds the enum attribute 'name' (with 'val' when it takes one) at
 * attribute index 'idx' of 'fn' (LLVMAttributeFunctionIndex, or parameter
 * number + 1). */
void dn_host_add_attr(DnHost *H, LLVMValueRef fn, unsigned idx, const char *name, uint64_t val);

/* ---- host_entry.c: entry functions and the CPU's serial/parallel policy --- */

/* Emits the entry function 'name' (i32 (ptr c), internal: dnrt_entry_fn)
 * of graph 'g': one launch per live op, in order; after a guard op
 * (DN_OPF_GUARD) it returns the op's i32 result when that is non-zero, and
 * 0 after the last op.  A backend whose launches leave results off the
 * host must make a guard's result readable at its plan address when the
 * launch hook returns.  Returns the function, or NULL when some launch
 * failed (diagnostics reported). */
LLVMValueRef dn_host_emit_entry(DnHost *H, const DnGraph *g, const DnPlan *plan, const char *name);
/* Declares (once) void dnrt_parallel_for(ptr c, ptr kernel, i64 count) and
 * returns it, its type in *t. */
LLVMValueRef dn_host_parallel_for(DnHost *H, LLVMTypeRef *t);
/* Emits, at the builder's position in l->entry, the call of the
 * dnrt_kernel_fn 'kfn' over iterations [0, par_n * N + par_b): directly on
 * the calling thread when there is one iteration or the op's work (ir/cost.c:
 * FLOPs + bytes / 4) is below 2^17 units, else through dnrt_parallel_for.
 * Leaves the builder at the end of the block where the entry continues. */
void dn_host_call_kernel(DnHost *H, const DnLaunch *l, LLVMValueRef kfn, int64_t par_n, int64_t par_b);

/* ---- host_addr.c: plan addressing ------------------------------------------ */

/* Fills l->nptrs and l->ptr[] for l->op from l->plan: buffers, sizes,
 * whether written (results, and operands of side-effect ops), and the
 * noalias and alignment facts the plan guarantees. */
void dn_host_launch_fill(DnLaunch *l);
/* Emits, at the builder's position in a function whose dnrt_call pointer
 * is 'c' and batch size (i64) is 'n', the address of every pointer of 'l'
 * into out[0 .. l->nptrs). */
void dn_host_launch_ptrs(DnHost *H, const DnLaunch *l, LLVMValueRef c, LLVMValueRef n, LLVMValueRef *out);
/* Position in dnrt_call.inputs (descriptor order: the inference graph's
 * inputs, then the training graph's train-only ones) of input 'idx' of 'g'. */
int dn_host_input_slot(const DnModule *m, const DnGraph *g, int idx);
/* The address  buffer + loc.at_n * n + loc.at_b  of location 'loc' of graph
 * 'g' (kind not NONE), emitted likewise; 'name' names it in the IR.  For
 * buffers that are no value's, such as an op's workspace. */
LLVMValueRef dn_host_loc_addr(DnHost *H, const DnGraph *g, DnBufLoc loc, LLVMValueRef c, LLVMValueRef n,
                              const char *name);

/* ---- host_desc.c: the descriptor and the typed wrappers -------------------- */

/* The LLVM struct types laid out exactly as dnrt.h's C structs (natural
 * alignment; checked against offsetof in tests/unit/test_llvm_kernels.c). */
LLVMTypeRef dn_host_call_type(LLVMContextRef ctx);
LLVMTypeRef dn_host_tensor_desc_type(LLVMContextRef ctx);
LLVMTypeRef dn_host_model_desc_type(LLVMContextRef ctx);
/* Adds <model>_descriptor (exported constant) and its alias dnnc_descriptor;
 * 'train_entry' is NULL when the module does not train.  Returns the global. */
LLVMValueRef dn_host_emit_descriptor(DnHost *H, LLVMValueRef infer_entry, LLVMValueRef train_entry);
/* Adds the exported typed functions of <model>.h (see header.c) over the
 * runtime's dnrt_session_* functions. */
void dn_host_emit_wrappers(DnHost *H, LLVMValueRef desc);

/* ---- host_target.c: target machine, optimization, emission ----------------- */

/* Creates the target machine for 'o' (host CPU and features unless o->cpu);
 * on failure reports a diagnostic and returns NULL.  Caller disposes. */
LLVMTargetMachineRef dn_host_target_machine(DnCtx *cx, const DnBackendOptions *o);
/* 32 when the target has AVX-512 (the host's features, or o->features when
 * o names a CPU or features), else 16. */
int dn_host_vector_registers(const DnBackendOptions *o);
/* Verifies 'mod' (a failure is a compiler bug: dn_die with the verifier's
 * message), sets its triple and data layout from 'tm' and runs the
 * default<O'opt_level'> pipeline. */
DnStatus dn_host_optimize(DnCtx *cx, LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
/* The same, safe to run on several threads at once for modules of
 * different contexts, each with its own 'tm': returns NULL, or the
 * pipeline's error message (malloc'd). */
char *dn_host_run_pipeline(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
/* Writes 'mod' as an object file for 'tm' to 'path'; DN_ERR + diagnostic
 * when it cannot. */
DnStatus dn_host_write_object(DnCtx *cx, LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path);
/* Prints 'mod' as LLVM IR text on 'out'. */
void dn_host_write_text(LLVMModuleRef mod, FILE *out);

#endif

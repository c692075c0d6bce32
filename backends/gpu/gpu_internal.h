/* gpu_internal.h -- the GPU backends' one internal header: the kernel
 * dialect, the contract between the launch hook (gpu_launch.c) and the
 * kernel generators (gpu_kernel_*.c), and the program that collects the
 * kernels (gpu_program.c).
 *
 * One generator per op kind writes each kernel ONCE, as text in a small
 * C-style GPU dialect; the program renders it for CUDA (NVRTC) or OpenCL C
 * by prepending one of two preludes (gpu_prelude.c), which define:
 *   KERNEL            the kernel qualifier and return type:  KERNEL name(...)
 *   GLOBAL, LOCAL     address spaces (LOCAL: work-group shared memory, declared
 *                     at the kernel's outermost scope:  LOCAL float tile[256];)
 *   DEVICE            qualifier of helper functions
 *   LOCAL_ID GROUP_ID GROUP_SIZE NUM_GROUPS GLOBAL_ID   1-D indices, as i64
 *   BARRIER()         work-group barrier with local-memory fence
 *   i64 u64 u32 u8    integer types
 *   MULHI32(a, b)     high 32 bits of the u32 product
 *   FLOAT_AS_U32(x), U32_AS_FLOAT(u)  bit casts;  F32_INF  +infinity;  ISFINITE(x)
 *   DN_ROUND_IN(x)    an operand of a convolution or matrix product rounded to
 *                     the --precision (the identity for fp32): GEMM-like kernels
 *                     apply it where they load operands
 *   math              expf logf sqrtf tanhf fabsf fmaxf fminf floorf powf rintf erff expm1f on float,
 *                     exp log sqrt cos sin floor pow round on double (fp64 is required)
 * and the helpers every kernel may call (written once in the dialect):
 *   dn_philox(u32 key0, u32 key1, u32 c0, u32 c1, u32 c2, u32 c3, u32 out[4])
 *                     Philox4x32-10, bit-identical to runtime/philox.c.
 * Kernels are 1-D: a launch runs items_n * n + items_b work items (rounded up
 * to a multiple of the group size, so a kernel checks its index), in groups
 * of 'group' (<= 256 unless a generator knows better; a multiple of 32).
 * A kernel with BARRIER() must reach it from every item of a group: guard
 * the work, not the barrier.
 *
 * Every kernel's first parameter is  i64 n  (the batch size); then the
 * parameters the generator declares, in order.  A buffer is two parameters
 * (GLOBAL u8 *NAME_b, i64 NAME_o) and the generator's kernel sees a typed
 * pointer NAME to its first element.  Shapes other than N are constants in
 * the text (the generator prints them), so one generator serves every
 * shape and each kernel is specialised to its op; identical kernel texts
 * are emitted once.
 *
 * The sequence axis T (ir/seq.c): an op that treats every (n, t) position
 * alike (DN_SEQ_ROWS) reaches its generator as the folded op
 * (dn_op_seq_rows: [N, T, ...] -> [N, ...]), so the generator writes its
 * batch-only kernels unchanged and the launch runs them with n = n * t
 * (DNRT_BATCH_NT); the buffers' plan locations stay those of the op.  An op
 * that reads T itself (DN_SEQ_AWARE: the recurrent scans, sequence_mask,
 * a matrix product summing over T) sees its shapes with DN_DIM_SEQ and
 * takes t as a DNRT_ARG_SEQ parameter.
 */
#ifndef DN_GPU_INTERNAL_H
#define DN_GPU_INTERNAL_H

#include <stdarg.h>

#include "../host/host.h"
#include "dnrt.h"

/* ---- text buffers ---------------------------------------------------------- */
typedef struct DnText {
    char *s;
    size_t len, cap;
} DnText;
void dn_text_printf(DnText *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dn_text_vprintf(DnText *t, const char *fmt, va_list ap);
void dn_text_append(DnText *t, const char *s, size_t n);
void dn_text_free(DnText *t);

/* ---- gpu_program.c: the kernels of one module -------------------------------- */
/* Lives in 'arena' (the compile's). */
typedef struct DnGpuProgram {
    DnArena *arena;
    int api;               /* DNRT_GPU_CUDA or DNRT_GPU_OPENCL */
    const char *precision; /* --precision; NULL: fp32 */
    int nkernels, cap;
    char **names; /* "k3_conv2d" */
    char **texts; /* the kernel's text after its name: "(i64 n, ...) { ... }" */
} DnGpuProgram;
/* The index of the kernel with this text (added, named k<index>_<base>,
 * when new).  'text' starts at the parameter list. */
int dn_gpu_program_add(DnGpuProgram *p, const char *base, const char *text);
/* The whole rendered source for p->api: prelude, helpers, every kernel. */
void dn_gpu_program_render(const DnGpuProgram *p, DnText *out);
/* gpu_prelude.c: the prelude of 'api' with DN_ROUND_IN for 'precision'
 * (NULL: fp32), and the helpers written in the dialect. */
void dn_gpu_prelude_render(int api, const char *precision, DnText *out);
extern const char dn_gpu_helpers[];

/* ---- the generators' interface -------------------------------------------- */
#define DN_GPU_MAX_ARGS 30

/* One launch of the op, as the host will emit it. */
typedef struct DnGpuLaunchRec {
    int kernel;
    int nargs;
    dnrt_gpu_arg args[DN_GPU_MAX_ARGS];
    int64_t items_n, items_b;
    int group;
    int guard; /* -1 or an argument index */
} DnGpuLaunchRec;

/* What a generator works on: one op, the kernels it writes for it and
 * their launches, in order.  The generator calls, per kernel:
 *   dn_gk_begin  (a name suffix, may be "");
 *   dn_gk_ptr / dn_gk_ws / dn_gk_i64 / dn_gk_f32 / dn_gk_rt   parameters;
 *   dn_gk_line   the body, line by line (C statements in the dialect);
 *   dn_gk_end    the launch geometry.
 * A generator may write several kernels (run in order) or none (an op the
 * plan makes a no-op, such as a reshape that is a view). */
typedef struct DnGpuGen {
    DnHost *H;
    const DnLaunch *l; /* the op, its plan and its pointers */
    const DnOp *op;
    DnGpuProgram *prog;
    /* the kernel being written */
    bool open;
    char base[64];
    DnText params, decls, body;
    DnGpuLaunchRec cur;
    /* the op's launches */
    int nlaunch;
    DnGpuLaunchRec launch[8];
    bool failed; /* the generator reported a diagnostic (the op cannot run on this target) */
} DnGpuGen;

typedef void (*DnGpuKernelGen)(DnGpuGen *G);
/* Generators are named dn_gpu_kernel_<op name> and live in gpu_kernel_<family>.c;
 * gpu_kernels.c builds the table from ops.def (a missing one is a link error). */
extern const DnGpuKernelGen dn_gpu_kernels[DN_OP_COUNT];

void dn_gk_begin(DnGpuGen *G, const char *suffix);
/* Buffer parameter for the op's pointer 'i' (dn_host_launch_fill's order:
 * operands, then results), seen in the body as 'ctype *name'; ctype NULL
 * picks float / int / long from the value's dtype. */
void dn_gk_ptr(DnGpuGen *G, int i, const char *ctype, const char *name);
/* Buffer parameter for the op's whole-op workspace (the plan must hold one). */
void dn_gk_ws(DnGpuGen *G, const char *ctype, const char *name);
void dn_gk_i64(DnGpuGen *G, const char *name, int64_t a, int64_t b); /* i64 name = a * n + b */
void dn_gk_f32(DnGpuGen *G, const char *name, float v);
/* A run-time value: DNRT_ARG_STEP (i64), DNRT_ARG_SEED (i64), DNRT_ARG_LR (float),
 * DNRT_ARG_SEQ (i64: the sequence length t, for an op that reads T itself). */
void dn_gk_rt(DnGpuGen *G, const char *name, int kind);
void dn_gk_line(DnGpuGen *G, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Ends the kernel: items_n * n + items_b work items in groups of 'group'. */
void dn_gk_end(DnGpuGen *G, int64_t items_n, int64_t items_b, int group);
/* Marks the last ended launch as a guard whose result is buffer parameter
 * 'arg' (the index among the parameters declared, 0-based). */
void dn_gk_guard(DnGpuGen *G, int arg);
/* A float constant as dialect text that reads back exactly ("0x1.8p+1f"). */
const char *dn_gk_float(DnGpuGen *G, float v);

/* Small shape helpers for generators. */
int64_t dn_gk_numel(const DnValue *v); /* elements per batch item (all when no N) */
bool dn_gk_has_n(const DnValue *v);
/* The element count of 'v' as dialect text: "(n * 120)" or "84". */
const char *dn_gk_count(DnGpuGen *G, const DnValue *v);
/* One work item per element of 'v': the launch size for dn_gk_end. */
void dn_gk_items(const DnValue *v, int64_t *items_n, int64_t *items_b);
/* Emits  i64 name = <the element of x that numpy broadcasting pairs with
 * element 'flat' (an expression) of the result r>. */
void dn_gk_bcast_index(DnGpuGen *G, const DnValue *x, const DnValue *r, const char *flat, const char *name);
/* Whether the op's operand i and result j are at the same address (a view
 * or an in-place result): then a copy is a no-op. */
bool dn_gk_same_place(DnGpuGen *G, int ptr_a, int ptr_b);

/* ---- gpu_launch.c: the hooks ------------------------------------------------ */
/* 'compile' = true: end_module compiles the CUDA images with NVRTC (objects);
 * false: only the source is collected (--emit=code). */
extern const DnHostHooks dn_gpu_hooks_object, dn_gpu_hooks_text;
/* The LLVM struct types of dnrt_gpu_arg, _launch, _image, _program (dnrt.h). */
LLVMTypeRef dn_gpu_arg_type(LLVMContextRef ctx);
LLVMTypeRef dn_gpu_launch_type(LLVMContextRef ctx);
LLVMTypeRef dn_gpu_image_type(LLVMContextRef ctx);
LLVMTypeRef dn_gpu_program_type(LLVMContextRef ctx);
/* The module's program and options, kept in DnHost.be by the hooks. */
typedef struct DnGpuModule {
    DnGpuProgram prog;
    bool compile;
} DnGpuModule;
/* The GPU workspace query (gpu_kernels.c): the DnWorkspaceFn of both rows. */
bool dn_gpu_workspace(const DnOp *op, void *backend_data, DnWorkspaceReq *req);
/* Per-op workspace requests, one per op kind that needs one (gpu_kernel_*.c);
 * NULL: none. */
typedef bool (*DnGpuWorkspaceFn)(const DnOp *op, DnWorkspaceReq *req);
extern const DnGpuWorkspaceFn dn_gpu_workspaces[DN_OP_COUNT];

/* Tree reduction in LOCAL memory (gpu_gen.c), emitted into the open kernel
 * at its outermost scope (it holds barriers: every item of the group must
 * run it).  The group holds independent sequences of 'slices' items each
 * (a power of two); 'slice' (an expression) is the item's position in its
 * sequence and 'stride' the distance in LOCAL_ID between neighbours of one
 * sequence (1: a sequence is adjacent items; W: W sequences interleaved).
 * 'arr' is a LOCAL ctype array of GROUP_SIZE entries the kernel declares;
 * 'combine' is an expression of 'a' and 'b' (e.g. "a + b", "fmaxf(a, b)").
 * Afterwards every item's 'var' holds its sequence's reduction; 'arr' is
 * free again. */
void dn_gk_tree_reduce(DnGpuGen *G, const char *arr, const char *ctype, const char *var, const char *combine,
                       const char *slice, int slices, int stride);
/* A double constant as dialect text that reads back exactly ("1.50000000000000000e+00"). */
const char *dn_gk_double(DnGpuGen *G, double v);

/* A workspace request of 'bytes' per element of 'v' (per batch item when v has N). */
void dn_gk_ws_per_element(const DnValue *v, int64_t bytes, DnWorkspaceReq *req);

#endif

/* llvm_launch.c -- the CPU backend's hooks on the host layer: each op
 * becomes a kernel in the host module, run from the entry function on the
 * calling thread or the runtime's pool (dn_host_call_kernel).
 *
 * A kernel is two functions: the generator (dn_llvm_kernels, kernels.c)
 * fills an always-inline body
 *     void kN_op.body(ptr c, i64 begin, i64 end, i64 n, ptr p0, ...)
 * whose operand pointers carry noalias/nonnull/align attributes (the facts
 * dn_host_launch_fill read from the memory plan), and a wrapper
 *     void kN_op(ptr c, i64 begin, i64 end)
 * (the dnrt_kernel_fn) computes the pointers (dn_host_launch_ptrs) and
 * calls it.  After inlining, the noalias facts survive as scoped alias
 * metadata.
 */
#include "llvm_internal.h"

/* Adds nonnull and noalias to 'c', and nonnull, align 64 and noalias (as
 * the plan allows) to the pointer parameters of 'body' (parameter 4 + i
 * for pointer i). */
static void mark_pointers(DnHost *H, LLVMValueRef body, const DnLaunch *l)
{
    dn_host_add_attr(H, body, 1, "nonnull", 0);
    dn_host_add_attr(H, body, 1, "noalias", 0);
    for (int i = 0; i < l->nptrs; i++) {
        unsigned idx = 5 + (unsigned)i; /* attribute index = param index + 1 */
        if (l->ptr[i].noalias) dn_host_add_attr(H, body, idx, "noalias", 0);
        dn_host_add_attr(H, body, idx, "nonnull", 0);
        if (l->ptr[i].align64) dn_host_add_attr(H, body, idx, "align", 64);
    }
}

/* Builds the wrapper  void name(ptr c, i64 begin, i64 end)  that computes
 * the pointers of 'l' and calls 'body'. */
static LLVMValueRef build_wrapper(DnHost *H, const char *name, LLVMValueRef body, LLVMTypeRef body_t, const DnLaunch *l)
{
    LLVMValueRef fn = LLVMAddFunction(H->mod, name, H->kernel_fn_t);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    dn_host_add_attr(H, fn, 1, "nonnull", 0);
    dn_host_add_attr(H, fn, 1, "noalias", 0);
    LLVMPositionBuilderAtEnd(H->b, LLVMAppendBasicBlockInContext(H->ctx, fn, "entry"));
    LLVMValueRef c = LLVMGetParam(fn, 0);
    LLVMValueRef nptr = LLVMBuildStructGEP2(H->b, H->call_t, c, DN_CALL_N, "");
    LLVMValueRef args[4 + DN_LAUNCH_MAX_PTRS];
    args[0] = c, args[1] = LLVMGetParam(fn, 1), args[2] = LLVMGetParam(fn, 2);
    args[3] = LLVMBuildLoad2(H->b, H->i64, nptr, "n");
    dn_host_launch_ptrs(H, l, c, args[3], args + 4);
    LLVMBuildCall2(H->b, body_t, body, args, (unsigned)(4 + l->nptrs), "");
    LLVMBuildRetVoid(H->b);
    return fn;
}

/* Adds the (empty) body function of the kernel named 'name'. */
static LLVMValueRef add_body(DnHost *H, const char *name, const DnLaunch *l, LLVMTypeRef *body_t)
{
    LLVMTypeRef pt[4 + DN_LAUNCH_MAX_PTRS] = {H->ptr, H->i64, H->i64, H->i64};
    for (int i = 0; i < l->nptrs; i++) pt[4 + i] = H->ptr;
    *body_t = LLVMFunctionType(H->void_t, pt, (unsigned)(4 + l->nptrs), 0);
    char bname[112];
    snprintf(bname, sizeof bname, "%s.body", name);
    LLVMValueRef body = LLVMAddFunction(H->mod, bname, *body_t);
    LLVMSetLinkage(body, LLVMInternalLinkage);
    dn_host_add_attr(H, body, (unsigned)LLVMAttributeFunctionIndex, "alwaysinline", 0);
    dn_host_add_attr(H, body, (unsigned)LLVMAttributeFunctionIndex, "nounwind", 0);
    mark_pointers(H, body, l);
    return body;
}

/* Emits the kernel of l->op; returns its wrapper (the dnrt_kernel_fn) and
 * the iteration count in *par_n, *par_b, or NULL with a diagnostic. */
static LLVMValueRef emit_kernel(DnHost *H, const DnLaunch *l, int64_t *par_n, int64_t *par_b)
{
    const DnOp *op = l->op;
    DnKernelGen gen = dn_llvm_kernels[op->kind];
    const char *opname = dn_op_info[op->kind].name;
    if (!gen) {
        dn_error(H->cx, op->loc, "llvm backend: no kernel for op '%s'", opname);
        return NULL;
    }
    char name[96];
    snprintf(name, sizeof name, "k%d_%s", l->seq, opname);
    LLVMTypeRef body_t;
    LLVMValueRef body = add_body(H, name, l, &body_t);

    DnKernel k = {.L = H, .g = l->g, .plan = l->plan, .op = op, .fn = body, .par_n = 0, .par_b = 1};
    k.c = LLVMGetParam(body, 0), k.begin = LLVMGetParam(body, 1), k.end = LLVMGetParam(body, 2);
    k.n = LLVMGetParam(body, 3);
    for (int i = 0; i < op->nin; i++) k.in[i] = LLVMGetParam(body, 4 + (unsigned)i);
    for (int i = 0; i < op->nout; i++) k.out[i] = LLVMGetParam(body, 4 + (unsigned)(op->nin + i));
    LLVMPositionBuilderAtEnd(H->b, LLVMAppendBasicBlockInContext(H->ctx, body, "entry"));
    gen(&k);
    LLVMBuildRetVoid(H->b); /* generators leave the builder at the end of their last block */
    *par_n = k.par_n, *par_b = k.par_b;
    return build_wrapper(H, name, body, body_t, l);
}

/* The launch hook: the kernel, then its call at the op's place in the entry. */
static DnStatus llvm_launch(DnHost *H, const DnLaunch *l)
{
    LLVMBasicBlockRef at = LLVMGetInsertBlock(H->b);
    int64_t pn, pb;
    LLVMValueRef kfn = emit_kernel(H, l, &pn, &pb);
    if (!kfn) return DN_ERR;
    LLVMPositionBuilderAtEnd(H->b, at);
    dn_host_call_kernel(H, l, kfn, pn, pb);
    return DN_OK;
}

/* Declares dnrt_parallel_for first, so that the module lists it before the
 * entry functions and kernels that call it. */
static DnStatus llvm_begin_module(DnHost *H)
{
    LLVMTypeRef t;
    dn_host_parallel_for(H, &t);
    return DN_OK;
}

const DnHostHooks dn_llvm_hooks = {llvm_begin_module, llvm_launch, NULL};

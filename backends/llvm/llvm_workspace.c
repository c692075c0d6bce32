/* llvm_workspace.c -- per-op workspace of the LLVM backend (llvm_internal.h).
 *
 * Before planning, the memory plan asks dn_llvm_workspace how many bytes
 * each op's kernel needs beyond its operands; the plan places them in the
 * arena for the duration of the op.  The generators take their scratch
 * arrays with dn_ws_shared_f32 / dn_ws_slice_f32, which hand out
 * consecutive 64-aligned pieces of the workspace:
 *     [ shared part ][ slice of worker 0 ][ slice of worker 1 ] ...
 * Worker w's slice starts at shared + w * slice; the entry function caps
 * the op's dnrt_parallel_for at dn_llvm_workers slices, so two calls that
 * run at once never share a slice.  dn_llvm_scratch must agree with what
 * the generators take: it calls the same setup functions, and the driver
 * checks every kernel against it (dn_llvm_check_scratch).
 */
#include "llvm_gemm.h"

int64_t dn_ws_f32_bytes(int64_t n) { return (n * 4 + 63) / 64 * 64; }

DnScratch dn_llvm_scratch(const DnOp *op, const DnBackendOptions *o)
{
    DnScratch s = {0};
    bool fast = !(o && o->direct_kernels);
    switch (op->kind) {
    case DN_OP_CONV2D_BWD_FILTER: /* ORDER dn_kernel_conv2d_bwd_filter: dot, GEMM, then the direct loops (none) */
        if (fast && (dn_conv_bwd_filter_dot_scratch(op, &s) || dn_conv_bwd_filter_gemm_scratch(op, &s))) return s;
        return (DnScratch){0};
    default: return s;
    }
}

int dn_llvm_workers(const DnScratch *s)
{
    return s->iters > 0 && s->iters < DN_LLVM_MAX_WORKERS ? (int)s->iters : DN_LLVM_MAX_WORKERS;
}

int64_t dn_llvm_workspace_bytes(const DnScratch *s)
{
    if (!s->shared && !s->slice) return 0;
    return s->shared + dn_llvm_workers(s) * s->slice;
}

bool dn_llvm_workspace(const DnOp *op, void *backend_data, int64_t *bytes_n, int64_t *bytes_b)
{
    DnScratch s = dn_llvm_scratch(op, backend_data);
    *bytes_n = 0, *bytes_b = dn_llvm_workspace_bytes(&s);
    return *bytes_b > 0;
}

DnOpWorkspace dn_llvm_op_workspace(const DnLlvm *L, const DnPlan *plan, const DnOp *op, int at)
{
    DnOpWorkspace w = {.need = dn_llvm_scratch(op, L->opt)};
    int64_t bytes = dn_llvm_workspace_bytes(&w.need);
    w.loc = dn_plan_locate_workspace(plan, at);
    w.in_plan = bytes > 0 && w.loc.kind == DN_BUF_ARENA && w.loc.span_n == 0 && w.loc.span_b >= bytes;
    w.workers = w.in_plan ? dn_llvm_workers(&w.need) : 0;
    return w;
}

/* The i8 address base + off (off an i64 value). */
static LLVMValueRef byte_ptr(DnKernel *k, LLVMValueRef base, LLVMValueRef off, const char *name)
{
    return LLVMBuildInBoundsGEP2(k->L->b, k->L->i8, base, &off, 1, name);
}

LLVMValueRef dn_ws_shared_f32(DnKernel *k, int64_t n, const char *name)
{
    int64_t at = k->used.shared;
    k->used.shared += dn_ws_f32_bytes(n);
    if (!k->ws) return dn_scratch_f32(k, n, name);
    return byte_ptr(k, k->ws, dn_i64(k, at), name);
}

LLVMValueRef dn_ws_slice_f32(DnKernel *k, int64_t n, const char *name)
{
    int64_t at = k->used.slice;
    k->used.slice += dn_ws_f32_bytes(n);
    if (!k->ws) return dn_scratch_f32(k, n, name);
    LLVMValueRef slice = dn_add(k, dn_mul(k, k->worker, dn_i64(k, k->scratch.slice)), dn_i64(k, k->scratch.shared));
    return byte_ptr(k, k->ws, dn_add(k, slice, dn_i64(k, at)), name);
}

void dn_llvm_check_scratch(const DnKernel *k)
{
    if (k->used.shared != k->scratch.shared || k->used.slice != k->scratch.slice)
        dn_die(__FILE__, __LINE__,
               "llvm backend: the %s kernel took %lld + %lld bytes of scratch, dn_llvm_scratch says %lld + %lld",
               dn_op_info[k->op->kind].name, (long long)k->used.shared, (long long)k->used.slice,
               (long long)k->scratch.shared, (long long)k->scratch.slice);
}

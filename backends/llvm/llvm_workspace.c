/* llvm_workspace.c -- per-op workspace of the LLVM backend (llvm_internal.h).
 *
 * Before planning, the memory plan asks dn_llvm_workspace what each op's
 * kernel needs beyond its operands: a part shared by all workers, placed
 * in the arena for the duration of the op, and a part of each worker
 * thread's slice (the slices follow the rest of the arena, one per pool
 * thread).  The generators take their scratch arrays with dn_ws_shared_f32
 * and dn_ws_slice_f32, which hand out consecutive 64-aligned pieces of
 * either part.  dn_llvm_scratch must agree with what the generators take:
 * it calls the same setup functions, and the driver checks every kernel
 * against it (dn_llvm_check_scratch).
 */
#include "llvm_gemm.h"

int64_t dn_ws_f32_bytes(int64_t n) { return (n * 4 + 63) / 64 * 64; }

DnScratch dn_llvm_scratch(const DnOp *op, const DnBackendOptions *o)
{
    DnScratch s = {0};
    bool fast = !(o && o->direct_kernels);
    switch (op->kind) { /* ORDER the generators' own choices: the fast forms in turn, then the direct loops (none) */
    case DN_OP_CONV2D:
        if (dn_conv_winograd_scratch(op, o, &s)) return s;
        if (fast && dn_conv_fwd_gemm_scratch(op, &s)) return s;
        return (DnScratch){0};
    case DN_OP_CONV2D_BWD_DATA:
        if (dn_conv_bwd_data_winograd_scratch(op, o, &s)) return s;
        if (fast && dn_conv_bwd_data_gemm_scratch(op, &s)) return s;
        return (DnScratch){0};
    case DN_OP_CONV2D_BWD_FILTER:
        if (fast && (dn_conv_bwd_filter_dot_scratch(op, &s) || dn_conv_bwd_filter_gemm_scratch(op, &s))) return s;
        return (DnScratch){0};
    case DN_OP_MATMUL:
        if (fast && dn_matmul_gemm_scratch(op, &s)) return s;
        return (DnScratch){0};
    case DN_OP_FLASH_ATTENTION:
    case DN_OP_FLASH_ATTENTION_BWD: dn_attention_scratch(op, &s); return s;
    default: return s;
    }
}

bool dn_llvm_workspace(const DnOp *op, void *backend_data, DnWorkspaceReq *req)
{
    DnScratch s = dn_llvm_scratch(op, backend_data);
    *req = (DnWorkspaceReq){.bytes_b = s.shared, .per_worker = s.slice};
    return s.shared > 0 || s.slice > 0;
}

DnOpWorkspace dn_llvm_op_workspace(const DnLlvm *L, const DnPlan *plan, const DnOp *op, int at)
{
    DnOpWorkspace w = {.need = dn_llvm_scratch(op, L->opt)};
    if (w.need.shared) w.shared = dn_plan_locate_workspace(plan, at);
    if (w.need.slice) w.slice = dn_plan_locate_worker(plan, at);
    bool shared_ok =
        !w.need.shared || (w.shared.kind == DN_BUF_ARENA && w.shared.span_n == 0 && w.shared.span_b >= w.need.shared);
    bool slice_ok = !w.need.slice || (w.slice.kind == DN_BUF_ARENA && w.slice.span_b >= w.need.slice);
    w.in_plan = (w.need.shared || w.need.slice) && shared_ok && slice_ok;
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
    return k->ws_shared ? byte_ptr(k, k->ws_shared, dn_i64(k, at), name) : dn_scratch_f32(k, n, name);
}

LLVMValueRef dn_ws_slice_f32(DnKernel *k, int64_t n, const char *name)
{
    int64_t at = k->used.slice;
    k->used.slice += dn_ws_f32_bytes(n);
    return k->ws_slice ? byte_ptr(k, k->ws_slice, dn_i64(k, at), name) : dn_scratch_f32(k, n, name);
}

void dn_llvm_check_scratch(const DnKernel *k)
{
    if (k->used.shared != k->scratch.shared || k->used.slice != k->scratch.slice)
        dn_die(__FILE__, __LINE__,
               "llvm backend: the %s kernel took %lld + %lld bytes of scratch, dn_llvm_scratch says %lld + %lld",
               dn_op_info[k->op->kind].name, (long long)k->used.shared, (long long)k->used.slice,
               (long long)k->scratch.shared, (long long)k->scratch.slice);
}

/* host_entry.c -- the entry functions, and the CPU's serial/parallel policy.
 *
 * The entry function of a graph, int32_t entry(const dnrt_call *c), runs
 * the graph's live ops in order: for each, the host fills a DnLaunch from
 * the memory plan (host_addr.c) and the backend's launch hook emits what
 * runs the op at that point.  After a guard op (DN_OPF_GUARD: check_finite)
 * it reads the op's i32 result and, when that is non-zero, returns it
 * without running any later op; otherwise the entry returns 0 at the end.
 * A hook that runs a dnrt_kernel_fn on the CPU calls dn_host_call_kernel,
 * which picks the calling thread or the runtime's pool.
 */
#include "host.h"

/* Kernels whose work is below this many units (FLOPs + bytes / 4) run on
 * the calling thread: waking the pool costs microseconds, more than they
 * take (LeNet at batch 1 was slower on 2 threads than on 1 without it). */
#define SERIAL_GRAIN (INT64_C(1) << 17)

/* Contracts: host.h. */

/* void dnrt_parallel_for(const dnrt_call *c, dnrt_kernel_fn k, int64_t count) */
LLVMValueRef dn_host_parallel_for(DnHost *H, LLVMTypeRef *t)
{
    LLVMTypeRef args[3] = {H->ptr, H->ptr, H->i64};
    *t = LLVMFunctionType(H->void_t, args, 3, 0);
    return dn_host_runtime_fn(H, "dnrt_parallel_for", *t);
}

/* The i1 condition "run on the calling thread" for an op of pn * n + pb
 * iterations and wn * n + wb units of work; 'n' is NULL when neither
 * depends on it. */
static LLVMValueRef serial_cond(DnHost *H, int64_t pn, int64_t pb, int64_t wn, int64_t wb, LLVMValueRef n)
{
    if (pn == 0 && pb == 1) return LLVMConstInt(H->i1, 1, 0);
    if (wn == 0) return LLVMConstInt(H->i1, wb < SERIAL_GRAIN, 0);
    /* work grows with n even when the iteration count does not (conv2d_bwd_filter) */
    LLVMValueRef work = LLVMBuildAdd(H->b, LLVMBuildMul(H->b, n, LLVMConstInt(H->i64, (unsigned long long)wn, 1), ""),
                                     LLVMConstInt(H->i64, (unsigned long long)wb, 1), "work");
    return LLVMBuildICmp(H->b, LLVMIntSLT, work, LLVMConstInt(H->i64, SERIAL_GRAIN, 1), "small");
}

/* if (serial) kfn(c, 0, count); else dnrt_parallel_for(c, kfn, count); */
void dn_host_call_kernel(DnHost *H, const DnLaunch *l, LLVMValueRef kfn, int64_t pn, int64_t pb)
{
    DnCost cost; /* per item of the kernel's batch: for a rows op over T, per (n, t) position */
    dn_op_cost(l->seq_form == DN_SEQ_ROWS ? dn_op_seq_rows(l->op, &H->cx->arena) : l->op, &cost);
    int64_t wn = cost.flops_n + cost.bytes_n / 4, wb = cost.flops_b + cost.bytes_b / 4;
    LLVMValueRef c = l->c, n = NULL;
    LLVMValueRef cnt = LLVMConstInt(H->i64, (unsigned long long)pb, 1);
    if (pn || wn)
        n = dn_host_kernel_n(H, l, c,
                             LLVMBuildLoad2(H->b, H->i64, LLVMBuildStructGEP2(H->b, H->call_t, c, DN_CALL_N, ""), "n"));
    if (pn)
        cnt = LLVMBuildNSWAdd(H->b, LLVMBuildNSWMul(H->b, n, LLVMConstInt(H->i64, (unsigned long long)pn, 1), ""), cnt,
                              "count");
    LLVMValueRef serial = serial_cond(H, pn, pb, wn, wb, n);
    LLVMTypeRef pf_t;
    LLVMValueRef pf = dn_host_parallel_for(H, &pf_t);
    LLVMBasicBlockRef one = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "serial");
    LLVMBasicBlockRef many = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "parallel");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "next");
    LLVMBuildCondBr(H->b, serial, one, many);
    LLVMPositionBuilderAtEnd(H->b, one);
    LLVMValueRef kargs[4] = {c, LLVMConstInt(H->i64, 0, 0), cnt, LLVMConstInt(H->i32, 0, 0)}; /* as worker 0 */
    LLVMBuildCall2(H->b, H->kernel_fn_t, kfn, kargs, 4, "");
    LLVMBuildBr(H->b, next);
    LLVMPositionBuilderAtEnd(H->b, many);
    LLVMValueRef pargs[3] = {c, kfn, cnt};
    LLVMBuildCall2(H->b, pf_t, pf, pargs, 3, "");
    LLVMBuildBr(H->b, next);
    LLVMPositionBuilderAtEnd(H->b, next);
}

/* After guard op 'l' (DN_OPF_GUARD): loads its i32 result and returns it
 * from the entry when it is non-zero; the builder continues in the block
 * where the entry goes on with the next op. */
static void emit_guard(DnHost *H, const DnLaunch *l)
{
    const DnLaunchPtr *res = &l->ptr[l->op->nin];
    DN_ASSERT(l->op->nout >= 1 && res->v->dtype == DN_DTYPE_I32 && res->v->shape.rank == 0);
    LLVMValueRef n = LLVMBuildLoad2(H->b, H->i64, LLVMBuildStructGEP2(H->b, H->call_t, l->c, DN_CALL_N, ""), "n");
    LLVMValueRef addr = dn_host_loc_addr(H, l->g, res->loc, l->c, n, "guard");
    LLVMValueRef flag = LLVMBuildLoad2(H->b, H->i32, addr, "flag");
    LLVMSetAlignment(flag, 4);
    LLVMBasicBlockRef stop = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "guard.stop");
    LLVMBasicBlockRef go = LLVMAppendBasicBlockInContext(H->ctx, l->entry, "guard.ok");
    LLVMBuildCondBr(H->b, LLVMBuildICmp(H->b, LLVMIntNE, flag, LLVMConstInt(H->i32, 0, 0), ""), stop, go);
    LLVMPositionBuilderAtEnd(H->b, stop);
    LLVMBuildRet(H->b, flag);
    LLVMPositionBuilderAtEnd(H->b, go);
}

/* One launch per live op; the builder returns to where each hook left it. */
LLVMValueRef dn_host_emit_entry(DnHost *H, const DnGraph *g, const DnPlan *plan, const char *name)
{
    LLVMTypeRef entry_t = LLVMFunctionType(H->i32, &H->ptr, 1, 0);
    LLVMValueRef entry = LLVMAddFunction(H->mod, name, entry_t);
    LLVMSetLinkage(entry, LLVMInternalLinkage);
    dn_host_add_attr(H, entry, 1, "nonnull", 0);
    LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(H->ctx, entry, "entry");
    DnLaunch l = {.g = g, .plan = plan, .entry = entry, .c = LLVMGetParam(entry, 0)};
    bool ok = true;
    for (int i = 0; i < g->ops.len; i++) {
        if (g->ops.data[i]->dead) continue;
        l.op = g->ops.data[i], l.at = i;
        l.seq = H->nlaunch++;
        dn_host_launch_fill(&l);
        LLVMPositionBuilderAtEnd(H->b, bb);
        if (H->hooks->launch(H, &l) != DN_OK) {
            ok = false;
            continue;
        }
        if ((dn_op_info[l.op->kind].flags & DN_OPF_GUARD) && !H->hooks->launch_returns) emit_guard(H, &l);
        bb = LLVMGetInsertBlock(H->b);
    }
    LLVMPositionBuilderAtEnd(H->b, bb);
    LLVMBuildRet(H->b, LLVMConstInt(H->i32, 0, 0));
    return ok ? entry : NULL;
}

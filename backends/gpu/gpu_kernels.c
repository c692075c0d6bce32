/* gpu_kernels.c -- the tables of GPU kernel generators and workspace
 * requests, one row per op kind, built from ops.def: the generator of op X
 * is dn_gpu_kernel_X and its workspace request dn_gpu_workspace_X (only ops
 * that need scratch define one: a weak reference, NULL for the others),
 * each in some gpu_kernel_*.c file.  A missing generator is a link error.
 */
#include "gpu_internal.h"

#define OP(E, name, mi, ma, no, fl, at)                                                                                \
    void dn_gpu_kernel_##name(DnGpuGen *G);                                                                            \
    bool dn_gpu_workspace_##name(const DnOp *op, DnWorkspaceReq *req) __attribute__((weak));
#include "../../ir/ops.def"
#undef OP

const DnGpuKernelGen dn_gpu_kernels[DN_OP_COUNT] = {
#define OP(E, name, mi, ma, no, fl, at) [DN_OP_##E] = dn_gpu_kernel_##name,
#include "../../ir/ops.def"
#undef OP
};

const DnGpuWorkspaceFn dn_gpu_workspaces[DN_OP_COUNT] = {
#define OP(E, name, mi, ma, no, fl, at) [DN_OP_##E] = dn_gpu_workspace_##name,
#include "../../ir/ops.def"
#undef OP
};

/* An op over T that treats every (n, t) position alike gets the workspace
 * of its folded op (gpu_internal.h), whose per-item part is per (n, t)
 * position: per n, that times the bound. */
bool dn_gpu_workspace(const DnOp *op, void *backend_data, DnWorkspaceReq *req)
{
    (void)backend_data;
    DnGpuWorkspaceFn fn = dn_gpu_workspaces[op->kind];
    if (!fn) return false;
    const char *why;
    if (dn_op_seq_form(op, &why) != DN_SEQ_ROWS) return fn(op, req);
    DnArena a = {0};
    bool any = fn(dn_op_seq_rows(op, &a), req);
    dn_arena_free(&a);
    req->bytes_n *= dn_op_seq_bound(op);
    return any;
}

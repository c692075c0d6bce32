/* llvm_module.c -- the CPU backend, dn_backend_llvm: the host layer
 * (backends/host/) builds the module, with this backend's hooks
 * (llvm_launch.c) emitting one kernel per op from the generator table
 * (kernels.c); the object is native code for the host CPU or --cpu.
 */
#include "llvm_internal.h"

static DnStatus llvm_emit_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const char *obj_path)
{
    return dn_host_emit_object(cx, m, o, &dn_llvm_hooks, obj_path);
}

static DnStatus llvm_emit_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    return dn_host_emit_text(cx, m, o, &dn_llvm_hooks, out);
}

static bool llvm_supports_op(const DnOp *op) { return dn_llvm_kernels[op->kind] != NULL; }

const DnBackend dn_backend_llvm = {"cpu",
                                   "native code for this machine's CPU (LLVM), or --cpu",
                                   NULL,
                                   llvm_emit_object,
                                   llvm_emit_text,
                                   llvm_supports_op,
                                   dn_llvm_workspace};

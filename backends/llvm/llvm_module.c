/* llvm_module.c -- the CPU backend, dn_backend_llvm: the host layer
 * (backends/host/) builds the module, with this backend's hooks
 * (llvm_launch.c) emitting one kernel per op from the generator table
 * (kernels.c) into units (llvm_units.c); the objects, the host module's
 * and one per distinct kernel, are native code for the host CPU or --cpu.
 */
#include "llvm_internal.h"

/* The host module into a temporary object, then every kernel unit. */
static DnStatus write_objects(DnHost *H, void *objs)
{
    const char *path = dn_objects_add_temp(H->cx, objs);
    if (!path || dn_host_write_object(H->cx, H->mod, H->tm, path) != DN_OK) return DN_ERR;
    return dn_units_build(H, objs);
}

/* The host module's text, then each unit's. */
static DnStatus write_text(DnHost *H, void *out)
{
    dn_host_write_text(H->mod, out);
    return dn_units_print(H, out);
}

static DnStatus llvm_emit_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, DnObjects *objs)
{
    return dn_host_emit_with(cx, m, o, &dn_llvm_hooks, write_objects, objs);
}

static DnStatus llvm_emit_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    return dn_host_emit_with(cx, m, o, &dn_llvm_hooks, write_text, out);
}

static bool llvm_supports_op(const DnOp *op) { return dn_llvm_kernels[op->kind] != NULL; }

const DnBackend dn_backend_llvm = {"cpu",
                                   "native code for this machine's CPU (LLVM), or --cpu",
                                   NULL,
                                   llvm_emit_object,
                                   llvm_emit_text,
                                   llvm_supports_op,
                                   dn_llvm_workspace};

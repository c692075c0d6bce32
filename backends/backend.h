/* backend.h -- code generators, chosen by name (the driver's table).
 *
 * A backend turns a DnModule (optimized graphs + memory plans + state
 * layout) into an object file that defines, for model M:
 *   - the entry functions (dnrt_entry_fn) of the inference and training
 *     graphs, which run each op's kernel in order through dnrt_parallel_for;
 *   - M_descriptor (dnrt_model_desc, see runtime/include/dnrt.h) and the
 *     alias dnnc_descriptor, both exported;
 *   - the typed functions of M.h (header.c), as thin wrappers over the
 *     runtime's dnrt_session_* functions.
 * The object is then linked with libdnnrt.a into M.so (link.c).
 */
#ifndef DN_BACKEND_H
#define DN_BACKEND_H

#include "../passes/module.h"

typedef struct DnBackendOptions {
    const char *cpu;      /* LLVM CPU name; NULL = host */
    const char *features; /* LLVM feature string; NULL = host's (or none when cpu is set) */
    int opt_level;        /* 0..3 */
    bool direct_kernels;  /* plain loop nests only, no GEMM-based kernels (A/B, reference) */
} DnBackendOptions;

typedef struct DnBackend {
    const char *name; /* "llvm", "cuda" */
    /* Writes an object file to 'obj_path'. */
    DnStatus (*emit_object)(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, const char *obj_path);
    /* --emit=llvm (or cuda): the generated code as text, after optimization. */
    DnStatus (*emit_text)(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out);
    bool (*supports_op)(const DnOp *op); /* optional */
    /* optional: the workspace each op's kernel needs, for dn_plan_memory_ws;
     * its backend_data is the const DnBackendOptions * the backend is given */
    DnWorkspaceFn workspace;
} DnBackend;

extern const DnBackend dn_backend_llvm;

/* header.c: writes the typed C header of 'm' (needs only <stdint.h>). */
void dn_emit_header(const DnModule *m, FILE *out);

/* link.c: links 'obj' with the runtime archive 'runtime_lib' into the shared
 * library 'out_so' with the system C compiler; 'out_so' is replaced only on
 * success (written to a temporary name, then renamed). */
DnStatus dn_link_shared(DnCtx *cx, const char *obj, const char *runtime_lib, const char *out_so);

#endif

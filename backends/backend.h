/* backend.h -- code generators, chosen by name (backends.c's table).
 *
 * A backend turns a DnModule (optimized graphs + memory plans + state
 * layout) into an object file that defines, for model M:
 *   - the entry functions (dnrt_entry_fn) of the inference and training
 *     graphs, which run each op in order;
 *   - M_descriptor (dnrt_model_desc, see runtime/include/dnrt.h) and the
 *     alias dnnc_descriptor, both exported;
 *   - the typed functions of M.h (header.c), as thin wrappers over the
 *     runtime's dnrt_session_* functions.
 * All of that but the ops' code is backend-neutral and built by the host
 * layer (host/host.h); a backend supplies the hook that emits one op's code
 * and its launch (the CPU backend, llvm/: kernels in LLVM IR run through
 * dnrt_parallel_for).  The object is then linked with libdnnrt.a into M.so
 * (link.c).
 */
#ifndef DN_BACKEND_H
#define DN_BACKEND_H

#include "../passes/module.h"

typedef struct DnBackendOptions {
    const char *cpu;       /* LLVM CPU name; NULL = host */
    const char *features;  /* LLVM feature string; NULL = host's (or none when cpu is set) */
    int opt_level;         /* 0..3 */
    bool direct_kernels;   /* plain loop nests only, no GEMM-based kernels (A/B, reference) */
    bool no_winograd;      /* cpu: no Winograd F(2x2, 3x3) convolutions (--no-winograd) */
    const char *gpu_arch;  /* cuda: --gpu-arch, comma-separated ("sm_80,sm_90"); NULL = that default */
    const char *precision; /* GPU targets: --precision (fp32, tf32, fp16, bf16); NULL = fp32 */
    int gpu_api;           /* set by the GPU backends themselves: dnrt_gpu_api */
    const char *cache_dir; /* cpu: the compiled-kernel cache (kernel_cache.h); NULL: none (--no-cache) */
    int jobs;              /* cpu: threads that optimize and generate code; <= 0: one per core */
    FILE *stats;           /* --stats: kernel counts and times are printed here; NULL: not printed */
} DnBackendOptions;

/* The object files of one library, in link order; emit_object appends.  A
 * temporary one (dn_objects_add_temp) is removed by dn_objects_release;
 * one kept elsewhere (a kernel cache entry) is only listed. */
typedef struct DnObject {
    char *path;
    bool temporary;
} DnObject;
typedef struct DnObjects {
    int n, cap;
    DnObject *obj;
} DnObjects;
/* Appends a new, empty temporary object ($TMPDIR/dnnc-tmp.PID.XXXXXX.o,
 * output.h) and returns its path; NULL with a diagnostic when it cannot be
 * created. */
const char *dn_objects_add_temp(DnCtx *cx, DnObjects *objs);
/* Appends a copy of 'path', an object that stays after the link. */
void dn_objects_add(DnObjects *objs, const char *path);
/* Removes the temporaries and frees the list (zeroed again). */
void dn_objects_release(DnObjects *objs);

typedef struct DnBackend {
    const char *name; /* --target=NAME: "cpu" (the LLVM backend), "cuda", "opencl" */
    const char *help; /* one line for dnnc --help */
    /* optional (NULL: always): whether this machine can build for the target;
     * when not, *why (static storage) says what is missing and how to fix it */
    bool (*available)(const char **why);
    /* Appends the object files of the library to 'objs' (at least one). */
    DnStatus (*emit_object)(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, DnObjects *objs);
    /* --emit=code: the generated code as text, after optimization. */
    DnStatus (*emit_text)(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out);
    bool (*supports_op)(const DnOp *op); /* optional (NULL: every op) */
    /* optional: the workspace each op's kernel needs, for dn_plan_memory_ws;
     * its backend_data is the const DnBackendOptions * the backend is given */
    DnWorkspaceFn workspace;
} DnBackend;

extern const DnBackend dn_backend_llvm;   /* llvm/llvm_module.c; the row named "cpu" */
extern const DnBackend dn_backend_cuda;   /* gpu/gpu_module.c: CUDA C through NVRTC */
extern const DnBackend dn_backend_opencl; /* gpu/gpu_module.c: OpenCL C */

/* ---- backends.c: the targets, by name ------------------------------------ */

/* Every backend, the default ("cpu") first; dn_backend_count rows. */
extern const DnBackend *const dn_backend_table[];
extern const int dn_backend_count;
/* The backend named 'name', or NULL. */
const DnBackend *dn_backend_lookup(const char *name);
/* Asks 'b'->supports_op about every live op of every graph of 'm'; each op
 * kind it lacks is reported once, at its first op's location ("target 'cpu'
 * has no kernel for op 'foo'").  Returns DN_ERR if any, else DN_OK. */
DnStatus dn_backend_check(DnCtx *cx, const DnBackend *b, const DnModule *m);

/* ---- library.c: object + link + header, as one step ---------------------- */

/* Builds the shared library 'out_so' and its header (out_so with .h for
 * .so) from 'm': dn_backend_check, then 'b'->emit_object into temporary
 * object files (and cache entries), dn_link_shared with 'runtime_lib' (NULL: $DNNC_RUNTIME, else
 * the build's DNNC_RUNTIME_LIB), and the header written to a temporary name
 * and renamed (output.h).  Returns DN_ERR after reporting through 'cx'.
 * The library and then the header are each replaced only once written in
 * full (the header is written before the link), so a failed check,
 * emission, link or write leaves both as they were; no temporary file is
 * left behind.  A symbolic link is followed (its target is replaced).
 * Either path existing as something other than a regular file (a device,
 * a FIFO, a folder) is an error. */
DnStatus dn_build_library(DnCtx *cx, const DnBackend *b, const DnModule *m, const DnBackendOptions *o,
                          const char *runtime_lib, const char *out_so);
/* The header dn_build_library writes beside 'out_so': its name with ".h"
 * for ".so" (or ".h" appended); malloc'd, the caller frees. */
char *dn_library_header_path(const char *out_so);

/* header.c: writes the typed C header of 'm' (needs only <stdint.h>). */
void dn_emit_header(const DnModule *m, FILE *out);

/* link.c: links the objects of 'objs' with the runtime archive
 * 'runtime_lib' into the shared library 'out_so' with the system C
 * compiler; 'out_so' is replaced only on success (written to a temporary
 * name, then renamed). */
DnStatus dn_link_shared(DnCtx *cx, const DnObjects *objs, const char *runtime_lib, const char *out_so);

#endif

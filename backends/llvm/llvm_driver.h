/* llvm_driver.h -- private interface between the files of the LLVM backend's
 * driver (not the kernel generators, which see only llvm_internal.h):
 *   llvm_module.c  the module, kernels and entry functions, the DnBackend
 *   llvm_desc.c    dnrt_model_desc as LLVM types and constants, typed wrappers
 *   llvm_target.c  target machine, the optimization pipeline, object emission
 */
#ifndef DN_LLVM_DRIVER_H
#define DN_LLVM_DRIVER_H

#include <llvm-c/TargetMachine.h>

#include "llvm_internal.h"

/* ---- llvm_desc.c -------------------------------------------------------- */

/* The LLVM struct types laid out exactly as dnrt.h's C structs (natural
 * alignment; checked against offsetof in tests/unit/test_llvm_kernels.c). */
LLVMTypeRef dn_llvm_call_type(LLVMContextRef ctx);
LLVMTypeRef dn_llvm_tensor_desc_type(LLVMContextRef ctx);
LLVMTypeRef dn_llvm_model_desc_type(LLVMContextRef ctx);
/* Adds <model>_descriptor (exported constant) and its alias dnnc_descriptor;
 * 'train_entry' is NULL when the module does not train.  Returns the global. */
LLVMValueRef dn_llvm_emit_descriptor(DnLlvm *L, LLVMValueRef infer_entry, LLVMValueRef train_entry);
/* Adds the exported typed functions of <model>.h (see header.c) over the
 * runtime's dnrt_session_* functions. */
void dn_llvm_emit_wrappers(DnLlvm *L, LLVMValueRef desc);

/* ---- llvm_target.c ------------------------------------------------------ */

/* Creates the target machine for 'o' (host CPU and features unless o->cpu);
 * on failure reports a diagnostic and returns NULL.  Caller disposes. */
LLVMTargetMachineRef dn_llvm_target_machine(DnCtx *cx, const DnBackendOptions *o);
/* Verifies 'mod' (a failure is a compiler bug: dn_die with the verifier's
 * message), sets its triple and data layout from 'tm' and runs the
 * default<O'opt_level'> pipeline. */
DnStatus dn_llvm_optimize(DnCtx *cx, LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);

#endif

/* kernels.c -- the table of kernel generators, one per op kind.
 * Each generator is the function dn_kernel_<op name> defined in some
 * kernel_*.c file.  The references are weak, so an op whose generator is
 * not written yet reads as NULL here and the driver reports it as
 * unsupported instead of failing to link. */
#include "llvm_internal.h"

#define OP(E, name, mi, ma, no, fl, at) void dn_kernel_##name(DnKernel *k) __attribute__((weak));
#include "../../ir/ops.def"
#undef OP

const DnKernelGen dn_llvm_kernels[DN_OP_COUNT] = {
#define OP(E, name, mi, ma, no, fl, at) [DN_OP_##E] = dn_kernel_##name,
#include "../../ir/ops.def"
#undef OP
};

/* kernels.c -- the table of kernel generators, one per op kind, built from
 * ops.def: the generator of op X is the function dn_kernel_X, defined in
 * some kernel_*.c file.  Adding an op without its kernel fails at link time
 * ("undefined reference to dn_kernel_X"), which is the point. */
#include "llvm_internal.h"

#define OP(E, name, mi, ma, no, fl, at) void dn_kernel_##name(DnKernel *k);
#include "../../ir/ops.def"
#undef OP

const DnKernelGen dn_llvm_kernels[DN_OP_COUNT] = {
#define OP(E, name, mi, ma, no, fl, at) [DN_OP_##E] = dn_kernel_##name,
#include "../../ir/ops.def"
#undef OP
};

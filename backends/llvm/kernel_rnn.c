/* kernel_rnn.c -- CPU kernels of rnn_scan and rnn_scan_bwd (ir/rnn_cell.h).
 * PLACEHOLDER on the s9_rnn_base branch: the s9_rnn_cpu branch writes them. */
#include "llvm_internal.h"

void dn_kernel_rnn_scan(DnKernel *k)
{
    (void)k;
    dn_die(__FILE__, __LINE__, "rnn_scan: CPU kernel not written yet");
}

void dn_kernel_rnn_scan_bwd(DnKernel *k)
{
    (void)k;
    dn_die(__FILE__, __LINE__, "rnn_scan_bwd: CPU kernel not written yet");
}

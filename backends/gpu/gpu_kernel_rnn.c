/* gpu_kernel_rnn.c -- GPU kernels of rnn_scan and rnn_scan_bwd (ir/rnn_cell.h).
 * PLACEHOLDER on the s9_rnn_base branch: the s9_rnn_gpu branch writes them. */
#include "gpu_internal.h"

void dn_gpu_kernel_rnn_scan(DnGpuGen *G)
{
    (void)G;
    dn_die(__FILE__, __LINE__, "rnn_scan: GPU kernel not written yet");
}

void dn_gpu_kernel_rnn_scan_bwd(DnGpuGen *G)
{
    (void)G;
    dn_die(__FILE__, __LINE__, "rnn_scan_bwd: GPU kernel not written yet");
}

/* gpu_kernel_attention.c -- flash_attention and flash_attention_bwd on the
 * GPU (placeholder: being written; the op reports that it cannot run). */
#include "gpu_internal.h"

static void not_yet(DnGpuGen *G)
{
    dn_error(G->H->cx, G->op->loc, "%s: no GPU kernel yet (compile with -fno-tile-attention)",
             dn_op_info[G->op->kind].name);
    G->failed = true;
}

void dn_gpu_kernel_flash_attention(DnGpuGen *G) { not_yet(G); }
void dn_gpu_kernel_flash_attention_bwd(DnGpuGen *G) { not_yet(G); }

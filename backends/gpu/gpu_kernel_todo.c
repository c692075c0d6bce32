/* gpu_kernel_todo.c -- the ops whose GPU generator is not written yet: each
 * reports the gap at the op, so a model using one fails to compile for a
 * GPU target with a diagnostic.  Temporary: it goes away with its last line.
 */
#include "gpu_internal.h"

#define TODO(name)                                                                                                     \
    void dn_gpu_kernel_##name(DnGpuGen *G) { dn_gk_missing(G); }

TODO(conv2d)
TODO(dense)
TODO(matmul)
TODO(conv2d_bwd_data)
TODO(conv2d_bwd_filter)

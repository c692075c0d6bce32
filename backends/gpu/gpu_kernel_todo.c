/* gpu_kernel_todo.c -- the ops whose GPU generator is not written yet: each
 * reports the gap at the op, so a model using one fails to compile for a
 * GPU target with a diagnostic.  Temporary: it goes away with its last line.
 */
#include "gpu_internal.h"

#define TODO(name)                                                                                                     \
    void dn_gpu_kernel_##name(DnGpuGen *G) { dn_gk_missing(G); }

TODO(maxpool2d)
TODO(avgpool2d)
TODO(softmax)
TODO(log_softmax)
TODO(transpose)
TODO(sum_to)
TODO(dropout)
TODO(random_flip)
TODO(random_crop)
TODO(random_resized_crop)
TODO(color_jitter)
TODO(pca_lighting)
TODO(batchnorm)
TODO(batchnorm_train)
TODO(cross_entropy)
TODO(mse)
TODO(maxpool2d_bwd)
TODO(avgpool2d_bwd)
TODO(softmax_bwd)
TODO(log_softmax_bwd)
TODO(dropout_bwd)
TODO(batchnorm_bwd)
TODO(cross_entropy_bwd)
TODO(mse_bwd)
TODO(sgd_update)
TODO(adam_update)
TODO(check_finite)

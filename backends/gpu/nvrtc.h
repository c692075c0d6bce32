/* nvrtc.h -- compiling the rendered CUDA source at dnnc time, with NVRTC
 * loaded by dlopen (dnnc runs without the CUDA toolkit for other targets).
 *
 * The library is looked for as libnvrtc.so (and its versioned names) in
 * $CUDA_HOME/lib64, $CUDA_PATH/lib64, /usr/local/cuda/lib64, then on the
 * default search path.  When it is missing, dn_nvrtc_compile reports that
 * the cuda target is unavailable, where it looked, and how to fix it.
 */
#ifndef DN_GPU_NVRTC_H
#define DN_GPU_NVRTC_H

#include "../../ir/ir.h"

/* One compiled form: a cubin for "sm_NN" or PTX for "compute_NN". */
typedef struct DnGpuImage {
    char arch[16];
    uint8_t *data; /* malloc'd */
    size_t size;
} DnGpuImage;

/* Compiles 'source' (CUDA C, extern "C" kernels) for every architecture in
 * 'archs' ("sm_80", "sm_90", ...): a cubin for each, and PTX for the
 * virtual architecture of the first (compute_80), which the driver can JIT
 * for GPUs newer than all of them.  *out gets 'narchs' + 1 images
 * (malloc'd array; free with dn_nvrtc_free).  A compile error is a
 * diagnostic quoting NVRTC's log.  Returns DN_OK or DN_ERR. */
DnStatus dn_nvrtc_compile(DnCtx *cx, const char *source, const char *const *archs, int narchs, DnGpuImage **out,
                          int *nout);
void dn_nvrtc_free(DnGpuImage *img, int n);
/* Whether NVRTC can be loaded; when not and 'why' is given, a message
 * (static storage) saying where it looked. */
bool dn_nvrtc_available(const char **why);

#endif

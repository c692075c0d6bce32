/* gpu_module.c -- the two GPU rows of the backend table, dn_backend_cuda
 * and dn_backend_opencl: the host layer builds the library's CPU side with
 * the GPU hooks (gpu_launch.c), whose kernels come from one generator per
 * op (gpu_kernels.c) rendered for the row's API.  --emit=code prints the
 * rendered kernel source.
 */
#include "gpu_internal.h"
#include "nvrtc.h"

/* 'o' with the row's API filled in. */
static DnBackendOptions with_api(const DnBackendOptions *o, int api)
{
    DnBackendOptions r = o ? *o : (DnBackendOptions){.opt_level = 3};
    r.gpu_api = api;
    return r;
}

static DnStatus write_source(DnHost *H, void *out)
{
    DnGpuModule *M = H->be;
    DnText src = {0};
    dn_gpu_program_render(&M->prog, &src);
    fputs(src.s, out);
    dn_text_free(&src);
    return DN_OK;
}

static DnStatus cuda_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, DnObjects *objs)
{
    DnBackendOptions r = with_api(o, DNRT_GPU_CUDA);
    return dn_host_emit_object(cx, m, &r, &dn_gpu_hooks_object, objs);
}

static DnStatus cuda_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    DnBackendOptions r = with_api(o, DNRT_GPU_CUDA);
    return dn_host_emit_with(cx, m, &r, &dn_gpu_hooks_text, write_source, out);
}

static DnStatus opencl_object(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, DnObjects *objs)
{
    DnBackendOptions r = with_api(o, DNRT_GPU_OPENCL);
    return dn_host_emit_object(cx, m, &r, &dn_gpu_hooks_object, objs);
}

static DnStatus opencl_text(DnCtx *cx, const DnModule *m, const DnBackendOptions *o, FILE *out)
{
    DnBackendOptions r = with_api(o, DNRT_GPU_OPENCL);
    return dn_host_emit_with(cx, m, &r, &dn_gpu_hooks_text, write_source, out);
}

static bool gpu_supports_op(const DnOp *op) { return dn_gpu_kernels[op->kind] != NULL; }

const DnBackend dn_backend_cuda = {
    "cuda",
    "NVIDIA GPUs: CUDA C compiled by NVRTC to cubins (--gpu-arch) and PTX; runs with the driver",
    dn_nvrtc_available,
    cuda_object,
    cuda_text,
    gpu_supports_op,
    dn_gpu_workspace};
const DnBackend dn_backend_opencl = {"opencl",
                                     "any OpenCL 1.2 device (the same kernels; PoCL runs them on a CPU)",
                                     NULL,
                                     opencl_object,
                                     opencl_text,
                                     gpu_supports_op,
                                     dn_gpu_workspace};

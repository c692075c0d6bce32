/* dev_cuda.c -- the device layer (device.h) on the CUDA driver API.
 * (Being written: until then every CUDA session reports the target as not
 * yet runnable.) */
#include "device.h"
#include "internal.h"

static int cu_open(const dnrt_gpu_program *prog, void **impl, dnrt_error *err)
{
    (void)prog;
    *impl = NULL;
    return dnrt_fail(err, DNRT_ERR_DEVICE, "the CUDA device layer is not built into this runtime yet");
}
static void cu_close(void *impl) { (void)impl; }

const dnrt_device_ops dnrt_device_cuda = {"CUDA", cu_open, cu_close};

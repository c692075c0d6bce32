/* cuda_mock.c -- a fake CUDA driver (libcuda) on host memory, for
 * test_dev_cuda.c: the runtime loads it through $DNRT_CUDA_LIBRARY and
 * drives it exactly as it would a real driver, so the CUDA device layer
 * (runtime/dev_cuda.c) and the GPU sessions (runtime/gpu.c) are tested on
 * machines without a GPU.
 *
 * Configured by the environment, read when called:
 *   MOCK_CUDA_INIT    the CUresult cuInit returns (default 0)
 *   MOCK_CUDA_COUNT   devices (default 1)
 *   MOCK_CUDA_CC      compute capability as major * 10 + minor (default 90)
 *   MOCK_CUDA_MEMMAX  the largest allocation, in bytes (default: none)
 * A module image is the text "MOCK:" then kernel names separated by
 * spaces; anything else is CUDA_ERROR_INVALID_IMAGE with a JIT error log.
 * A kernel's parameters are given by its name's last '_' part, one letter
 * each: 'i' an i64, 'p' a device pointer, 'f' a float.  Kernels whose name
 * starts with "mul" compute  y[i] = a[i] * b[i % width]  for i < count over
 * (n, a, aoff, b, boff, y, yoff, count, width); "fault" kernels make the
 * context fail with CUDA_ERROR_ILLEGAL_ADDRESS (700) from then on; others
 * only record their launch.  The test reads what happened through the
 * mock_cuda_* functions (dlsym on the same library).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;
typedef unsigned long long CUdeviceptr;

#define EXPORT __attribute__((visibility("default")))

/* What the test can read back. */
typedef struct MockLaunch {
    char kernel[64];
    unsigned grid, block, shared;
    int has_stream, has_extra;
    int nparams;
    char kinds[32];
    int64_t i[32]; /* 'i' and 'p' parameters */
    float f[32];   /* 'f' parameters */
} MockLaunch;

static MockLaunch last;
static int launches, live_allocs, live_contexts, live_modules, sticky;
static char loaded_image[256];
static char kernel_names[32][64];
static int nkernel_names;

static int env_int(const char *name, int dflt)
{
    const char *s = getenv(name);
    return s && *s ? atoi(s) : dflt;
}

EXPORT const MockLaunch *mock_cuda_last_launch(void) { return &last; }
EXPORT int mock_cuda_launches(void) { return launches; }
EXPORT int mock_cuda_live(void) { return live_allocs + live_contexts + live_modules; }
EXPORT const char *mock_cuda_loaded_image(void) { return loaded_image; }

EXPORT CUresult cuInit(unsigned flags) { return flags ? 1 : env_int("MOCK_CUDA_INIT", 0); }
EXPORT CUresult cuDeviceGetCount(int *n)
{
    *n = env_int("MOCK_CUDA_COUNT", 1);
    return 0;
}
EXPORT CUresult cuDeviceGet(int *dev, int i)
{
    if (i < 0 || i >= env_int("MOCK_CUDA_COUNT", 1)) return 101;
    *dev = i;
    return 0;
}
EXPORT CUresult cuDeviceGetName(char *buf, int len, int dev)
{
    snprintf(buf, (size_t)len, "Mock GPU %d", dev);
    return 0;
}
EXPORT CUresult cuDeviceGetAttribute(int *v, int attr, int dev)
{
    (void)dev;
    int cc = env_int("MOCK_CUDA_CC", 90);
    if (attr == 75)
        *v = cc / 10;
    else if (attr == 76)
        *v = cc % 10;
    else
        return 1;
    return 0;
}
static void *primary; /* the primary context, while retained */
EXPORT CUresult cuDevicePrimaryCtxRetain(void **ctx, int dev)
{
    (void)dev;
    if (!live_contexts++) primary = malloc(1);
    *ctx = primary;
    return 0;
}
EXPORT CUresult cuDevicePrimaryCtxRelease_v2(int dev)
{
    (void)dev;
    if (!--live_contexts) free(primary), primary = NULL;
    return 0;
}
EXPORT CUresult cuCtxSetCurrent(void *ctx) { return ctx ? 0 : 201; }
EXPORT CUresult cuCtxSynchronize(void) { return sticky; }

EXPORT CUresult cuModuleLoadDataEx(void **mod, const void *image, unsigned n, int *opts, void **vals)
{
    const char *text = image;
    snprintf(loaded_image, sizeof loaded_image, "%s", text);
    if (strncmp(text, "MOCK:", 5) != 0) {
        for (unsigned k = 0; k + 1 < n; k++)
            if (opts[k] == 5 && opts[k + 1] == 6)
                snprintf(vals[k], (size_t)(uintptr_t)vals[k + 1], "mock: not a mock image");
        return 200;
    }
    nkernel_names = 0;
    char copy[256];
    snprintf(copy, sizeof copy, "%s", text + 5);
    for (char *t = strtok(copy, " "); t && nkernel_names < 32; t = strtok(NULL, " "))
        snprintf(kernel_names[nkernel_names++], 64, "%s", t);
    *mod = malloc(1);
    live_modules++;
    return 0;
}
EXPORT CUresult cuModuleGetFunction(void **fn, void *mod, const char *name)
{
    (void)mod;
    for (int k = 0; k < nkernel_names; k++)
        if (strcmp(kernel_names[k], name) == 0) {
            *fn = kernel_names[k];
            return 0;
        }
    return 500;
}
EXPORT CUresult cuModuleUnload(void *mod)
{
    free(mod);
    live_modules--;
    return 0;
}

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n)
{
    int max = env_int("MOCK_CUDA_MEMMAX", 0);
    if (max > 0 && n > (size_t)max) return 2;
    void *m = calloc(1, n);
    if (!m) return 2;
    live_allocs++;
    *p = (CUdeviceptr)(uintptr_t)m;
    return 0;
}
EXPORT CUresult cuMemFree_v2(CUdeviceptr p)
{
    free((void *)(uintptr_t)p);
    live_allocs--;
    return 0;
}
EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n)
{
    if (sticky) return sticky;
    memcpy((void *)(uintptr_t)dst, src, n);
    return 0;
}
EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n)
{
    if (sticky) return sticky;
    memcpy(dst, (const void *)(uintptr_t)src, n);
    return 0;
}
EXPORT CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n)
{
    if (sticky) return sticky;
    memset((void *)(uintptr_t)p, v, n);
    return 0;
}

EXPORT CUresult cuLaunchKernel(void *fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                               unsigned shared, void *stream, void **params, void **extra)
{
    if (sticky) return sticky;
    if (gy != 1 || gz != 1 || by != 1 || bz != 1) return 1;
    const char *name = fn, *sig = strrchr(name, '_');
    memset(&last, 0, sizeof last);
    snprintf(last.kernel, sizeof last.kernel, "%s", name);
    last.grid = gx, last.block = bx, last.shared = shared;
    last.has_stream = stream != NULL, last.has_extra = extra != NULL;
    for (const char *k = sig ? sig + 1 : ""; *k && last.nparams < 32; k++) {
        int at = last.nparams++;
        last.kinds[at] = *k;
        if (*k == 'f')
            memcpy(&last.f[at], params[at], sizeof(float));
        else
            memcpy(&last.i[at], params[at], sizeof(int64_t));
    }
    launches++;
    if (strncmp(name, "mul", 3) == 0 && last.nparams == 9) {
        const float *a = (const float *)(uintptr_t)(last.i[1] + last.i[2]);
        const float *b = (const float *)(uintptr_t)(last.i[3] + last.i[4]);
        float *y = (float *)(uintptr_t)(last.i[5] + last.i[6]);
        for (int64_t i = 0; i < last.i[7]; i++) y[i] = a[i] * b[i % last.i[8]];
    }
    if (strncmp(name, "fault", 5) == 0) sticky = 700;
    return 0;
}

/* Names only the errors the mock makes itself: the runtime's own table names
 * the rest (as it must for the toolkit's stub, whose calls all fail). */
EXPORT CUresult cuGetErrorName(CUresult e, const char **s)
{
    if (e != 700 && e != 2) return 1;
    *s = e == 700 ? "CUDA_ERROR_ILLEGAL_ADDRESS" : "CUDA_ERROR_OUT_OF_MEMORY";
    return 0;
}
EXPORT CUresult cuGetErrorString(CUresult e, const char **s)
{
    if (e != 700 && e != 2) return 1;
    *s = e == 700 ? "an illegal memory access was encountered" : "out of memory";
    return 0;
}

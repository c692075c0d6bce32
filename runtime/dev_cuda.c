/* dev_cuda.c -- the device layer (device.h) on the CUDA driver API, with
 * the driver libcuda.so.1 loaded by dlopen (fallback libcuda.so), so a
 * CUDA library loads on a machine without one and its sessions report why
 * they cannot run.
 *
 * Environment:
 *   $DNRT_CUDA_DEVICE   the device's index (0 .. count - 1); default 0.
 *   $DNRT_CUDA_LIBRARY  the path of the driver library to load instead of
 *                       libcuda.so.1 (tests load the toolkit's stub, or a
 *                       mock driver, with it).
 *
 * The device: one context of its own per session, made current on the
 * calling thread by every call (a session may be used from any thread, one
 * at a time, and several sessions may share a thread).  The module: the
 * cubin built for the device's exact architecture, else the newest PTX the
 * device can JIT (dnrt_cuda_pick_image).  Launches go to the default
 * stream, in order; copies are synchronous, so a read sees every earlier
 * launch; launch errors the driver reports late surface at the next copy
 * or sync, naming the last kernel launched.
 *
 * The few CUDA types and constants used are declared here, with the
 * values <cuda.h> gives, so that building needs no CUDA headers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "internal.h"

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;

#define CUDA_SUCCESS                          0
#define CUDA_ERROR_OUT_OF_MEMORY              2
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAP_MAJOR 75
#define CU_DEVICE_ATTRIBUTE_COMPUTE_CAP_MINOR 76
#define CU_JIT_ERROR_LOG_BUFFER               5
#define CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES    6

/* The entry points used: the field name, then the exported symbol. */
#define CU_FUNCS(X)                                                                                                    \
    X(CUresult, cuInit, "cuInit", (unsigned))                                                                          \
    X(CUresult, cuDeviceGetCount, "cuDeviceGetCount", (int *))                                                         \
    X(CUresult, cuDeviceGet, "cuDeviceGet", (CUdevice *, int))                                                         \
    X(CUresult, cuDeviceGetName, "cuDeviceGetName", (char *, int, CUdevice))                                           \
    X(CUresult, cuDeviceGetAttribute, "cuDeviceGetAttribute", (int *, int, CUdevice))                                  \
    X(CUresult, cuDevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", (CUcontext *, CUdevice))                         \
    X(CUresult, cuDevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease_v2", (CUdevice))                                 \
    X(CUresult, cuCtxSetCurrent, "cuCtxSetCurrent", (CUcontext))                                                       \
    X(CUresult, cuCtxSynchronize, "cuCtxSynchronize", (void))                                                          \
    X(CUresult, cuModuleLoadDataEx, "cuModuleLoadDataEx", (CUmodule *, const void *, unsigned, int *, void **))        \
    X(CUresult, cuModuleGetFunction, "cuModuleGetFunction", (CUfunction *, CUmodule, const char *))                    \
    X(CUresult, cuModuleUnload, "cuModuleUnload", (CUmodule))                                                          \
    X(CUresult, cuMemAlloc, "cuMemAlloc_v2", (CUdeviceptr *, size_t))                                                  \
    X(CUresult, cuMemFree, "cuMemFree_v2", (CUdeviceptr))                                                              \
    X(CUresult, cuMemcpyHtoD, "cuMemcpyHtoD_v2", (CUdeviceptr, const void *, size_t))                                  \
    X(CUresult, cuMemcpyDtoH, "cuMemcpyDtoH_v2", (void *, CUdeviceptr, size_t))                                        \
    X(CUresult, cuMemsetD8, "cuMemsetD8_v2", (CUdeviceptr, unsigned char, size_t))                                     \
    X(CUresult, cuLaunchKernel, "cuLaunchKernel",                                                                      \
      (CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **))  \
    X(CUresult, cuGetErrorName, "cuGetErrorName", (CUresult, const char **))                                           \
    X(CUresult, cuGetErrorString, "cuGetErrorString", (CUresult, const char **))

/* The most kernel parameters one launch may have (a buffer counts twice). */
#define CU_MAX_PARAMS 256

typedef struct Cu {
    void *lib;
    const char *lib_name; /* for messages */
#define X(ret, field, sym, args) ret(*field) args;
    CU_FUNCS(X)
#undef X
    CUcontext ctx; /* the device's primary context (the runtime API's), so device_io buffers work */
    CUdevice dev;
    CUmodule mod;
    int nkernels;
    CUfunction *kernels;
    const char *const *names;
    int last_kernel; /* -1 until the first launch */
    char desc[256];
} Cu;

/* The names the driver gives its errors, for drivers (the toolkit's stub)
 * whose cuGetErrorName fails. */
static const char *cu_known_name(CUresult e)
{
    switch (e) {
    case 0: return "CUDA_SUCCESS";
    case 1: return "CUDA_ERROR_INVALID_VALUE";
    case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
    case 3: return "CUDA_ERROR_NOT_INITIALIZED";
    case 4: return "CUDA_ERROR_DEINITIALIZED";
    case 34: return "CUDA_ERROR_STUB_LIBRARY";
    case 100: return "CUDA_ERROR_NO_DEVICE";
    case 101: return "CUDA_ERROR_INVALID_DEVICE";
    case 200: return "CUDA_ERROR_INVALID_IMAGE";
    case 201: return "CUDA_ERROR_INVALID_CONTEXT";
    case 209: return "CUDA_ERROR_NO_BINARY_FOR_GPU";
    case 218: return "CUDA_ERROR_INVALID_PTX";
    case 222: return "CUDA_ERROR_UNSUPPORTED_PTX_VERSION";
    case 500: return "CUDA_ERROR_NOT_FOUND";
    case 700: return "CUDA_ERROR_ILLEGAL_ADDRESS";
    case 701: return "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES";
    case 702: return "CUDA_ERROR_LAUNCH_TIMEOUT";
    case 719: return "CUDA_ERROR_LAUNCH_FAILED";
    case 803: return "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH";
    case 999: return "CUDA_ERROR_UNKNOWN";
    default: return "an unknown CUDA error";
    }
}

/* "CUDA_ERROR_OUT_OF_MEMORY (out of memory)": the driver's name and words. */
static void cu_error_text(const Cu *c, CUresult e, char *buf, size_t len)
{
    const char *name = NULL, *words = NULL;
    if (c->cuGetErrorName && c->cuGetErrorName(e, &name) != CUDA_SUCCESS) name = NULL;
    if (c->cuGetErrorString && c->cuGetErrorString(e, &words) != CUDA_SUCCESS) words = NULL;
    if (!name) name = cu_known_name(e);
    if (e == 34 && !words) words = "the library loaded is the CUDA toolkit's stub, not a driver";
    if (words)
        snprintf(buf, len, "%s (%s)", name, words);
    else
        snprintf(buf, len, "%s (error %d)", name, (int)e);
}

static int cu_fail(Cu *c, dnrt_error *err, const char *call, CUresult e)
{
    char text[200];
    cu_error_text(c, e, text, sizeof text);
    if (c->last_kernel >= 0 && e != CUDA_ERROR_OUT_OF_MEMORY)
        return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: %s failed on %s: %s (the last kernel launched: %s)", call,
                         c->desc, text, c->names[c->last_kernel]);
    return dnrt_fail(err, e == CUDA_ERROR_OUT_OF_MEMORY ? DNRT_ERR_NOMEM : DNRT_ERR_DEVICE, "CUDA: %s failed: %s", call,
                     text);
}

/* Makes the session's context current on the calling thread; 0 or -1. */
static int cu_enter(Cu *c, dnrt_error *err)
{
    CUresult e = c->cuCtxSetCurrent(c->ctx);
    return e == CUDA_SUCCESS ? 0 : cu_fail(c, err, "cuCtxSetCurrent", e);
}

static void cu_close(void *impl)
{
    Cu *c = impl;
    if (!c) return;
    if (c->ctx) {
        c->cuCtxSetCurrent(c->ctx);
        if (c->mod) c->cuModuleUnload(c->mod);
        c->cuDevicePrimaryCtxRelease(c->dev);
    }
    dnrt_free(c->kernels);
    /* the driver stays loaded (no dlclose): drivers keep process-wide state, and
     * reloading one re-runs its setup without freeing the first (leaks, or worse) */
    dnrt_free(c);
}

/* Loads the driver and its entry points; 0 or -1. */
static int load_library(Cu *c, dnrt_error *err)
{
    const char *want = getenv("DNRT_CUDA_LIBRARY");
    if (want && *want) {
        c->lib_name = want;
        c->lib = dlopen(want, RTLD_NOW | RTLD_LOCAL);
    } else {
        c->lib_name = "libcuda.so.1";
        c->lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!c->lib) {
            char first[240];
            snprintf(first, sizeof first, "%s", dlerror());
            c->lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
            if (c->lib) c->lib_name = "libcuda.so";
            if (!c->lib)
                return dnrt_fail(err, DNRT_ERR_DEVICE,
                                 "CUDA is not available: libcuda.so.1 cannot be loaded (%s); a CUDA target needs an "
                                 "NVIDIA GPU and its driver",
                                 first);
        }
    }
    if (!c->lib)
        return dnrt_fail(err, DNRT_ERR_DEVICE,
                         "CUDA is not available: DNRT_CUDA_LIBRARY='%s' cannot be loaded (%s); a CUDA target needs an "
                         "NVIDIA GPU and its driver",
                         want, dlerror());
#define X(ret, field, sym, args)                                                                                       \
    if (!(*(void **)&c->field = dlsym(c->lib, sym)))                                                                   \
        return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: the driver %s has no %s (too old a driver?)", c->lib_name, sym);
    CU_FUNCS(X)
#undef X
    return 0;
}

/* Initializes the driver and picks the device ($DNRT_CUDA_DEVICE, else 0);
 * fills *dev, its capability and the description; 0 or -1. */
static int pick_device(Cu *c, CUdevice *dev, int *major, int *minor, dnrt_error *err)
{
    char text[200];
    CUresult e = c->cuInit(0);
    if (e != CUDA_SUCCESS) {
        cu_error_text(c, e, text, sizeof text);
        return dnrt_fail(err, DNRT_ERR_DEVICE,
                         "CUDA is not available: cuInit of %s failed: %s; a CUDA target needs an NVIDIA GPU and "
                         "its driver",
                         c->lib_name, text);
    }
    int count = 0;
    e = c->cuDeviceGetCount(&count);
    if (e != CUDA_SUCCESS) return cu_fail(c, err, "cuDeviceGetCount", e);
    if (count <= 0)
        return dnrt_fail(err, DNRT_ERR_DEVICE,
                         "CUDA is not available: the driver %s sees no device; a CUDA target needs an NVIDIA GPU",
                         c->lib_name);
    int64_t index = 0;
    const char *want = getenv("DNRT_CUDA_DEVICE");
    if (want && *want && dnrt_decimal(want, 0, count - 1, &index) != 0)
        return dnrt_fail(err, DNRT_ERR_ARG, "CUDA: DNRT_CUDA_DEVICE='%s' is not a device index in [0, %d]", want,
                         count - 1);
    e = c->cuDeviceGet(dev, (int)index);
    if (e != CUDA_SUCCESS) return cu_fail(c, err, "cuDeviceGet", e);
    char name[128] = "?";
    if ((e = c->cuDeviceGetName(name, (int)sizeof name - 1, *dev)) != CUDA_SUCCESS)
        return cu_fail(c, err, "cuDeviceGetName", e);
    name[sizeof name - 1] = 0;
    if ((e = c->cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAP_MAJOR, *dev)) != CUDA_SUCCESS ||
        (e = c->cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAP_MINOR, *dev)) != CUDA_SUCCESS)
        return cu_fail(c, err, "cuDeviceGetAttribute(compute capability)", e);
    snprintf(c->desc, sizeof c->desc, "CUDA device %d '%s' (sm_%d%d)", (int)index, name, *major, *minor);
    return 0;
}

/* Parses "<prefix>NN" (digits only after the prefix); the number, or -1. */
static int arch_number(const char *arch, const char *prefix)
{
    size_t n = strlen(prefix);
    if (!arch || strncmp(arch, prefix, n) != 0 || !arch[n]) return -1;
    int v = 0;
    for (const char *p = arch + n; *p; p++) {
        if (*p < '0' || *p > '9' || v > 100000) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

int dnrt_cuda_pick_image(const dnrt_gpu_program *p, int major, int minor, char *why, size_t len)
{
    int cc = major * 10 + minor, best = -1, best_nn = -1;
    char exact[32];
    snprintf(exact, sizeof exact, "sm_%d%d", major, minor);
    for (int32_t i = 0; i < p->nimages; i++) {
        const dnrt_gpu_image *im = &p->images[i];
        if (!im->arch || !im->data || im->size <= 0) continue;
        if (strcmp(im->arch, exact) == 0) {
            if (why && len) snprintf(why, len, "the cubin for %s", exact);
            return i;
        }
        int nn = arch_number(im->arch, "compute_");
        if (nn >= 0 && nn <= cc && nn > best_nn) best = i, best_nn = nn;
    }
    if (best >= 0) {
        if (why && len)
            snprintf(why, len, "the PTX for %s, compiled by the driver for %s", p->images[best].arch, exact);
        return best;
    }
    if (why && len) {
        size_t at = (size_t)snprintf(why, len, "the library has code for ");
        for (int32_t i = 0; i < p->nimages && at < len; i++)
            at += (size_t)snprintf(why + at, len - at, "%s%s", i ? ", " : "",
                                   p->images[i].arch ? p->images[i].arch : "(unnamed)");
        if (p->nimages <= 0 && at < len) at += (size_t)snprintf(why + at, len - at, "no architecture");
        if (at < len)
            snprintf(why + at, len - at,
                     ", none of which runs on a device of compute capability %d.%d (%s); rebuild it with "
                     "--gpu-arch=%s",
                     major, minor, exact, exact);
    }
    return -1;
}

/* Loads the image picked for the device and looks every kernel up; 0 or -1. */
static int load_module(Cu *c, const dnrt_gpu_program *prog, int major, int minor, dnrt_error *err)
{
    char why[400];
    int pick = dnrt_cuda_pick_image(prog, major, minor, why, sizeof why);
    if (pick < 0) return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: no code for %s: %s", c->desc, why);
    const dnrt_gpu_image *im = &prog->images[pick];
    /* PTX is text the driver reads up to its NUL, which an image need not hold. */
    uint8_t *copy = NULL;
    const void *data = im->data;
    if (strncmp(im->arch, "compute_", 8) == 0 && im->data[im->size - 1] != 0) {
        if (!(copy = dnrt_malloc((size_t)im->size + 1))) return dnrt_fail(err, DNRT_ERR_NOMEM, "CUDA: out of memory");
        memcpy(copy, im->data, (size_t)im->size);
        copy[im->size] = 0;
        data = copy;
    }
    char log[1024] = "";
    int opts[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *vals[2] = {log, (void *)(uintptr_t)(sizeof log - 1)};
    CUresult e = c->cuModuleLoadDataEx(&c->mod, data, 2, opts, vals);
    dnrt_free(copy);
    if (e != CUDA_SUCCESS) {
        char text[200];
        cu_error_text(c, e, text, sizeof text);
        log[sizeof log - 1] = 0;
        c->mod = NULL;
        return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: cuModuleLoadDataEx(%s) failed on %s: %s%s%s", why, c->desc, text,
                         log[0] ? ": " : "", log);
    }
    size_t nk = (size_t)(prog->nkernels > 0 ? prog->nkernels : 1);
    if (!(c->kernels = dnrt_malloc(sizeof(CUfunction) * nk)))
        return dnrt_fail(err, DNRT_ERR_NOMEM, "CUDA: out of memory");
    memset(c->kernels, 0, sizeof(CUfunction) * nk);
    c->nkernels = prog->nkernels;
    c->names = prog->kernels;
    for (int i = 0; i < prog->nkernels; i++) {
        e = c->cuModuleGetFunction(&c->kernels[i], c->mod, prog->kernels[i]);
        if (e != CUDA_SUCCESS) {
            char what[200];
            snprintf(what, sizeof what, "cuModuleGetFunction('%s')", prog->kernels[i]);
            return cu_fail(c, err, what, e);
        }
    }
    return 0;
}

static int cu_open(const dnrt_gpu_program *prog, void **impl, dnrt_error *err)
{
    *impl = NULL;
    Cu *c = dnrt_malloc(sizeof *c);
    if (!c) return dnrt_fail(err, DNRT_ERR_NOMEM, "CUDA: out of memory");
    memset(c, 0, sizeof *c);
    c->last_kernel = -1;
    CUdevice dev = 0;
    int major = 0, minor = 0;
    if (load_library(c, err) || pick_device(c, &dev, &major, &minor, err)) goto fail;
    c->dev = dev;
    CUresult e = c->cuDevicePrimaryCtxRetain(&c->ctx, dev);
    if (e != CUDA_SUCCESS) {
        c->ctx = NULL;
        cu_fail(c, err, "cuDevicePrimaryCtxRetain", e);
        goto fail;
    }
    if (load_module(c, prog, major, minor, err)) goto fail;
    *impl = c;
    return 0;
fail:
    cu_close(c);
    return -1;
}

static int cu_alloc(void *impl, size_t bytes, uint64_t *buf, dnrt_error *err)
{
    Cu *c = impl;
    if (cu_enter(c, err)) return -1;
    CUdeviceptr p = 0;
    CUresult e = c->cuMemAlloc(&p, bytes);
    if (e != CUDA_SUCCESS || p == 0) {
        char text[200];
        cu_error_text(c, e, text, sizeof text);
        return dnrt_fail(err, DNRT_ERR_NOMEM, "CUDA: cannot allocate %zu bytes on %s (cuMemAlloc: %s)", bytes, c->desc,
                         text);
    }
    *buf = (uint64_t)p;
    return 0;
}

static void cu_free(void *impl, uint64_t buf)
{
    Cu *c = impl;
    if (!buf || c->cuCtxSetCurrent(c->ctx) != CUDA_SUCCESS) return;
    c->cuMemFree((CUdeviceptr)buf);
}

static int cu_write(void *impl, uint64_t buf, size_t off, const void *src, size_t n, dnrt_error *err)
{
    Cu *c = impl;
    if (n == 0) return 0;
    if (cu_enter(c, err)) return -1;
    CUresult e = c->cuMemcpyHtoD((CUdeviceptr)(buf + off), src, n);
    return e == CUDA_SUCCESS ? 0 : cu_fail(c, err, "cuMemcpyHtoD", e);
}

static int cu_read(void *impl, uint64_t buf, size_t off, void *dst, size_t n, dnrt_error *err)
{
    Cu *c = impl;
    if (n == 0) return 0;
    if (cu_enter(c, err)) return -1;
    CUresult e = c->cuMemcpyDtoH(dst, (CUdeviceptr)(buf + off), n);
    return e == CUDA_SUCCESS ? 0 : cu_fail(c, err, "cuMemcpyDtoH", e);
}

static int cu_zero(void *impl, uint64_t buf, size_t off, size_t n, dnrt_error *err)
{
    Cu *c = impl;
    if (n == 0) return 0;
    if (cu_enter(c, err)) return -1;
    CUresult e = c->cuMemsetD8((CUdeviceptr)(buf + off), 0, n);
    return e == CUDA_SUCCESS ? 0 : cu_fail(c, err, "cuMemsetD8", e);
}

static int cu_launch(void *impl, int kernel, int64_t groups, int group, int nargs, const dnrt_karg *args,
                     dnrt_error *err)
{
    Cu *c = impl;
    if (kernel < 0 || kernel >= c->nkernels)
        return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: no kernel %d (the program has %d)", kernel, c->nkernels);
    const char *name = c->names[kernel];
    if (groups < 1 || groups > 0x7fffffff || group < 1 || group > 1024)
        return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: kernel %s: %lld blocks of %d threads is outside the grid limits",
                         name, (long long)groups, group);
    /* Each parameter's value lives in one slot; kernelParams points at them. */
    union {
        CUdeviceptr ptr;
        int64_t i;
        float f;
    } slot[CU_MAX_PARAMS];
    void *params[CU_MAX_PARAMS];
    int np = 0;
    for (int i = 0; i < nargs; i++) {
        const dnrt_karg *a = &args[i];
        if (np + 2 > CU_MAX_PARAMS)
            return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: kernel %s: more than %d parameters", name, CU_MAX_PARAMS);
        switch (a->kind) {
        case DNRT_KARG_BUF:
            slot[np].ptr = (CUdeviceptr)a->buf;
            params[np] = &slot[np];
            np++;
            slot[np].i = a->i;
            params[np] = &slot[np];
            np++;
            break;
        case DNRT_KARG_I64:
            slot[np].i = a->i;
            params[np] = &slot[np];
            np++;
            break;
        case DNRT_KARG_F32:
            slot[np].f = a->f;
            params[np] = &slot[np];
            np++;
            break;
        default:
            return dnrt_fail(err, DNRT_ERR_DEVICE, "CUDA: kernel %s: argument %d has unknown kind %d", name, i,
                             a->kind);
        }
    }
    if (cu_enter(c, err)) return -1;
    c->last_kernel = kernel;
    CUresult e =
        c->cuLaunchKernel(c->kernels[kernel], (unsigned)groups, 1, 1, (unsigned)group, 1, 1, 0, NULL, params, NULL);
    if (e != CUDA_SUCCESS) {
        char what[200];
        snprintf(what, sizeof what, "cuLaunchKernel(%s, %lld x %d)", name, (long long)groups, group);
        return cu_fail(c, err, what, e);
    }
    return 0;
}

static int cu_sync(void *impl, dnrt_error *err)
{
    Cu *c = impl;
    if (cu_enter(c, err)) return -1;
    CUresult e = c->cuCtxSynchronize();
    return e == CUDA_SUCCESS ? 0 : cu_fail(c, err, "cuCtxSynchronize", e);
}

static void cu_describe(void *impl, char *buf, size_t len) { snprintf(buf, len, "%s", ((Cu *)impl)->desc); }

static void cu_handles(void *impl, void **context, void **queue, void **device)
{
    Cu *c = impl;
    *context = c->ctx, *queue = NULL, *device = (void *)(intptr_t)c->dev;
}

const dnrt_device_ops dnrt_device_cuda = {"CUDA",  cu_open, cu_close,  cu_alloc, cu_free,     cu_write,
                                          cu_read, cu_zero, cu_launch, cu_sync,  cu_describe, cu_handles};

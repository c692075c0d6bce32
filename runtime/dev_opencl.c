/* dev_opencl.c -- the device layer (device.h) on OpenCL 1.2, through the
 * ICD loader libOpenCL.so.1 loaded with dlopen: any OpenCL device, PoCL on
 * the CPU included (which is how the GPU kernels are run on machines
 * without a GPU).
 *
 * The device: the first GPU of any platform, else the first device of any
 * kind; $DNRT_OPENCL_DEVICE = "P:D" picks device D of platform P (both
 * counted from 0).  The program is built from the embedded source when
 * the session is created, and its binary kept in a cache folder
 * ($DNRT_CACHE_DIR, else $XDG_CACHE_HOME/dnnc, else ~/.cache/dnnc;
 * DNRT_CACHE_DIR=off: none) under a name hashed from the source, the
 * device and its driver, so the next session on that device loads it
 * instead of compiling; a cached binary that does not load or build is
 * ignored (and rewritten).  One in-order queue: launches and copies run in
 * the order they are enqueued, and reads block.
 *
 * The few OpenCL types and constants used are declared here, with the
 * values the Khronos headers give, so that building needs no OpenCL headers.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "internal.h"

typedef int32_t cl_int;
typedef uint32_t cl_uint;
typedef uint64_t cl_ulong;
typedef cl_ulong cl_bitfield;
typedef struct _cl_platform_id *cl_platform_id;
typedef struct _cl_device_id *cl_device_id;
typedef struct _cl_context *cl_context;
typedef struct _cl_command_queue *cl_command_queue;
typedef struct _cl_mem *cl_mem;
typedef struct _cl_program *cl_program;
typedef struct _cl_kernel *cl_kernel;
typedef struct _cl_event *cl_event;

#define CL_SUCCESS              0
#define CL_DEVICE_TYPE_GPU      (1 << 2)
#define CL_DEVICE_TYPE_ALL      0xFFFFFFFF
#define CL_DEVICE_NAME          0x102B
#define CL_PLATFORM_NAME        0x0902
#define CL_MEM_READ_WRITE       (1 << 0)
#define CL_PROGRAM_BUILD_LOG    0x1183
#define CL_TRUE                 1
#define CL_DEVICE_VERSION       0x102F
#define CL_DRIVER_VERSION       0x102D
#define CL_PROGRAM_BINARY_SIZES 0x1165
#define CL_PROGRAM_BINARIES     0x1166

/* The entry points used, loaded by name. */
#define CL_FUNCS(X)                                                                                                    \
    X(cl_int, clGetPlatformIDs, (cl_uint, cl_platform_id *, cl_uint *))                                                \
    X(cl_int, clGetPlatformInfo, (cl_platform_id, cl_uint, size_t, void *, size_t *))                                  \
    X(cl_int, clGetDeviceIDs, (cl_platform_id, cl_bitfield, cl_uint, cl_device_id *, cl_uint *))                       \
    X(cl_int, clGetDeviceInfo, (cl_device_id, cl_uint, size_t, void *, size_t *))                                      \
    X(cl_context, clCreateContext, (const intptr_t *, cl_uint, const cl_device_id *, void *, void *, cl_int *))        \
    X(cl_command_queue, clCreateCommandQueue, (cl_context, cl_device_id, cl_bitfield, cl_int *))                       \
    X(cl_program, clCreateProgramWithSource, (cl_context, cl_uint, const char **, const size_t *, cl_int *))           \
    X(cl_int, clBuildProgram, (cl_program, cl_uint, const cl_device_id *, const char *, void *, void *))               \
    X(cl_program, clCreateProgramWithBinary,                                                                           \
      (cl_context, cl_uint, const cl_device_id *, const size_t *, const unsigned char **, cl_int *, cl_int *))         \
    X(cl_int, clGetProgramInfo, (cl_program, cl_uint, size_t, void *, size_t *))                                       \
    X(cl_int, clGetProgramBuildInfo, (cl_program, cl_device_id, cl_uint, size_t, void *, size_t *))                    \
    X(cl_kernel, clCreateKernel, (cl_program, const char *, cl_int *))                                                 \
    X(cl_mem, clCreateBuffer, (cl_context, cl_bitfield, size_t, void *, cl_int *))                                     \
    X(cl_int, clEnqueueWriteBuffer,                                                                                    \
      (cl_command_queue, cl_mem, cl_uint, size_t, size_t, const void *, cl_uint, const cl_event *, cl_event *))        \
    X(cl_int, clEnqueueReadBuffer,                                                                                     \
      (cl_command_queue, cl_mem, cl_uint, size_t, size_t, void *, cl_uint, const cl_event *, cl_event *))              \
    X(cl_int, clEnqueueFillBuffer,                                                                                     \
      (cl_command_queue, cl_mem, const void *, size_t, size_t, size_t, cl_uint, const cl_event *, cl_event *))         \
    X(cl_int, clSetKernelArg, (cl_kernel, cl_uint, size_t, const void *))                                              \
    X(cl_int, clEnqueueNDRangeKernel,                                                                                  \
      (cl_command_queue, cl_kernel, cl_uint, const size_t *, const size_t *, const size_t *, cl_uint,                  \
       const cl_event *, cl_event *))                                                                                  \
    X(cl_int, clFinish, (cl_command_queue))                                                                            \
    X(cl_int, clReleaseMemObject, (cl_mem))                                                                            \
    X(cl_int, clReleaseKernel, (cl_kernel))                                                                            \
    X(cl_int, clReleaseProgram, (cl_program))                                                                          \
    X(cl_int, clReleaseCommandQueue, (cl_command_queue))                                                               \
    X(cl_int, clReleaseContext, (cl_context))

typedef struct Cl {
    void *lib;
#define X(ret, name, args) ret(*name) args;
    CL_FUNCS(X)
#undef X
    cl_device_id device;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    int nkernels;
    cl_kernel *kernels;
    const char *const *names;
    char desc[256];
} Cl;

/* "clFoo failed: CL error -5 (CL_OUT_OF_RESOURCES)" */
static const char *cl_error_name(cl_int e)
{
    switch (e) {
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case -5: return "CL_OUT_OF_RESOURCES";
    case -6: return "CL_OUT_OF_HOST_MEMORY";
    case -11: return "CL_BUILD_PROGRAM_FAILURE";
    case -30: return "CL_INVALID_VALUE";
    case -38: return "CL_INVALID_MEM_OBJECT";
    case -46: return "CL_INVALID_KERNEL_NAME";
    case -48: return "CL_INVALID_KERNEL";
    case -51: return "CL_INVALID_ARG_SIZE";
    case -52: return "CL_INVALID_KERNEL_ARGS";
    case -54: return "CL_INVALID_WORK_GROUP_SIZE";
    case -61: return "CL_INVALID_BUFFER_SIZE";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL platform is installed)";
    default: return "";
    }
}

static int cl_fail(dnrt_error *err, const char *call, cl_int e)
{
    return dnrt_fail(err, e == -4 || e == -6 ? DNRT_ERR_NOMEM : DNRT_ERR_DEVICE, "OpenCL: %s failed: error %d %s", call,
                     (int)e, cl_error_name(e));
}

static void cl_close(void *impl)
{
    Cl *c = impl;
    if (!c) return;
    for (int i = 0; i < c->nkernels; i++)
        if (c->kernels[i]) c->clReleaseKernel(c->kernels[i]);
    dnrt_free(c->kernels);
    if (c->prog) c->clReleaseProgram(c->prog);
    if (c->q) c->clReleaseCommandQueue(c->q);
    if (c->ctx) c->clReleaseContext(c->ctx);
    /* the ICD loader stays loaded (no dlclose): drivers keep process-wide state, and
     * reloading one re-runs its setup without freeing the first (leaks, or worse) */
    dnrt_free(c);
}

/* Loads the ICD loader and its entry points; 0 or -1. */
static int load_library(Cl *c, dnrt_error *err)
{
    c->lib = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!c->lib) c->lib = dlopen("libOpenCL.so", RTLD_NOW | RTLD_LOCAL);
    if (!c->lib)
        return dnrt_fail(err, DNRT_ERR_DEVICE,
                         "OpenCL is not available: libOpenCL.so.1 cannot be loaded (%s); install an ICD loader and a "
                         "platform (on Debian: ocl-icd-libopencl1 and pocl-opencl-icd, or a GPU vendor's)",
                         dlerror());
#define X(ret, name, args)                                                                                             \
    if (!(*(void **)&c->name = dlsym(c->lib, #name)))                                                                  \
        return dnrt_fail(err, DNRT_ERR_DEVICE, "OpenCL: libOpenCL.so.1 has no %s", #name);
    CL_FUNCS(X)
#undef X
    return 0;
}

/* Picks the device ($DNRT_OPENCL_DEVICE, else the first GPU, else the first
 * device); 0 or -1. */
static int pick_device(Cl *c, dnrt_error *err)
{
    cl_platform_id plats[16];
    cl_uint np = 0;
    cl_int e = c->clGetPlatformIDs(16, plats, &np);
    if (e != CL_SUCCESS || np == 0)
        return dnrt_fail(err, DNRT_ERR_DEVICE,
                         "OpenCL: no platform found (clGetPlatformIDs: error %d %s); install a platform (on Debian: "
                         "pocl-opencl-icd for the CPU, or a GPU vendor's)",
                         (int)e, cl_error_name(e));
    const char *want = getenv("DNRT_OPENCL_DEVICE");
    if (want && *want) {
        unsigned p, dv;
        char extra;
        if (sscanf(want, "%u:%u%c", &p, &dv, &extra) != 2)
            return dnrt_fail(err, DNRT_ERR_ARG, "OpenCL: DNRT_OPENCL_DEVICE='%s' is not PLATFORM:DEVICE", want);
        cl_device_id devs[16];
        cl_uint nd = 0;
        if (p >= np || c->clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 16, devs, &nd) != CL_SUCCESS || dv >= nd)
            return dnrt_fail(err, DNRT_ERR_DEVICE, "OpenCL: DNRT_OPENCL_DEVICE='%s': no such device", want);
        c->device = devs[dv];
        return 0;
    }
    for (int pass = 0; pass < 2 && !c->device; pass++)
        for (cl_uint p = 0; p < np && !c->device; p++) {
            cl_uint nd = 0;
            cl_device_id dv;
            if (c->clGetDeviceIDs(plats[p], pass == 0 ? CL_DEVICE_TYPE_GPU : CL_DEVICE_TYPE_ALL, 1, &dv, &nd) ==
                    CL_SUCCESS &&
                nd > 0)
                c->device = dv;
        }
    if (!c->device) return dnrt_fail(err, DNRT_ERR_DEVICE, "OpenCL: the platforms have no device");
    return 0;
}

/* ---- the binary cache ---------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The cache file of 'src' on this device into 'path'; 0, or -1 when there is no cache folder. */
static int cache_path(Cl *c, const char *src, char *path, size_t len)
{
    const char *dir = getenv("DNRT_CACHE_DIR"), *base = NULL, *sub = "";
    if (dir && !strcmp(dir, "off")) return -1;
    if (dir && *dir)
        base = dir;
    else if ((base = getenv("XDG_CACHE_HOME")) && *base)
        sub = "/dnnc";
    else if ((base = getenv("HOME")) && *base)
        sub = "/.cache/dnnc";
    else
        return -1;
    char info[3][256] = {"", "", ""};
    c->clGetDeviceInfo(c->device, CL_DEVICE_NAME, sizeof info[0] - 1, info[0], NULL);
    c->clGetDeviceInfo(c->device, CL_DEVICE_VERSION, sizeof info[1] - 1, info[1], NULL);
    c->clGetDeviceInfo(c->device, CL_DRIVER_VERSION, sizeof info[2] - 1, info[2], NULL);
    uint64_t h = fnv1a(0xcbf29ce484222325ull, src, strlen(src));
    for (int i = 0; i < 3; i++) h = fnv1a(h, info[i], sizeof info[i]);
    char folder[1024];
    snprintf(folder, sizeof folder, "%s%s", base, sub);
    if (!strcmp(sub, "/.cache/dnnc")) { /* make ~/.cache if needed, then the folder */
        char parent[1024];
        snprintf(parent, sizeof parent, "%s/.cache", base);
        mkdir(parent, 0700);
    }
    mkdir(folder, 0700);
    snprintf(path, len, "%s/opencl-%016llx.bin", folder, (unsigned long long)h);
    return 0;
}

/* The cached binary at 'path' as a built program, or NULL. */
static cl_program load_cached(Cl *c, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *bin = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1L << 30) && fseek(f, 0, SEEK_SET) == 0 &&
        (bin = dnrt_malloc((size_t)n)) && fread(bin, 1, (size_t)n, f) != (size_t)n) {
        dnrt_free(bin);
        bin = NULL;
    }
    fclose(f);
    if (!bin) return NULL;
    size_t len = (size_t)n;
    const unsigned char *bp = bin;
    cl_int status = 0, e = 0;
    cl_program p = c->clCreateProgramWithBinary(c->ctx, 1, &c->device, &len, &bp, &status, &e);
    dnrt_free(bin);
    if (e != CL_SUCCESS || status != CL_SUCCESS) return NULL;
    if (c->clBuildProgram(p, 1, &c->device, "-cl-std=CL1.2", NULL, NULL) != CL_SUCCESS) {
        c->clReleaseProgram(p);
        return NULL;
    }
    return p;
}

/* Writes the built program's binary to 'path' (a temporary name, then
 * rename); any failure only leaves the cache without it. */
static void store_cached(Cl *c, const char *path)
{
    size_t n = 0;
    if (c->clGetProgramInfo(c->prog, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0) return;
    unsigned char *bin = dnrt_malloc(n);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = NULL;
    if (c->clGetProgramInfo(c->prog, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS &&
        (f = fopen(tmp, "wb"))) {
        int ok = fwrite(bin, 1, n, f) == n;
        ok = fclose(f) == 0 && ok;
        if (!ok || rename(tmp, path) != 0) unlink(tmp);
    }
    dnrt_free(bin);
}

/* Builds the program, from the cache when it holds it; a build failure
 * quotes the start of the build log. */
static int build_program(Cl *c, const dnrt_gpu_program *prog, dnrt_error *err)
{
    cl_int e;
    const char *src = prog->source;
    size_t len = strlen(src);
    char cpath[1100];
    int cached = cache_path(c, src, cpath, sizeof cpath) == 0;
    if (cached) c->prog = load_cached(c, cpath);
    if (!c->prog) {
        c->prog = c->clCreateProgramWithSource(c->ctx, 1, &src, &len, &e);
        if (e != CL_SUCCESS) return cl_fail(err, "clCreateProgramWithSource", e);
        e = c->clBuildProgram(c->prog, 1, &c->device, "-cl-std=CL1.2", NULL, NULL);
        if (e != CL_SUCCESS) {
            char log[400] = "";
            size_t got = 0;
            c->clGetProgramBuildInfo(c->prog, c->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &got);
            log[sizeof log - 1] = 0;
            return dnrt_fail(err, DNRT_ERR_DEVICE, "OpenCL: the kernels do not build on %s (error %d): %s", c->desc,
                             (int)e, log);
        }
        if (cached) store_cached(c, cpath);
    }
    c->nkernels = prog->nkernels;
    c->names = prog->kernels;
    c->kernels = dnrt_malloc(sizeof(cl_kernel) * (size_t)(prog->nkernels > 0 ? prog->nkernels : 1));
    if (!c->kernels) return dnrt_fail(err, DNRT_ERR_NOMEM, "OpenCL: out of memory");
    memset(c->kernels, 0, sizeof(cl_kernel) * (size_t)(prog->nkernels > 0 ? prog->nkernels : 1));
    for (int i = 0; i < prog->nkernels; i++) {
        c->kernels[i] = c->clCreateKernel(c->prog, prog->kernels[i], &e);
        if (e != CL_SUCCESS) return cl_fail(err, prog->kernels[i], e);
    }
    return 0;
}

static int cl_open(const dnrt_gpu_program *prog, void **impl, dnrt_error *err)
{
    *impl = NULL;
    Cl *c = dnrt_malloc(sizeof *c);
    if (!c) return dnrt_fail(err, DNRT_ERR_NOMEM, "OpenCL: out of memory");
    memset(c, 0, sizeof *c);
    cl_int e;
    if (load_library(c, err) || pick_device(c, err)) goto fail;
    char dname[128] = "?";
    c->clGetDeviceInfo(c->device, CL_DEVICE_NAME, sizeof dname - 1, dname, NULL);
    snprintf(c->desc, sizeof c->desc, "OpenCL device '%s'", dname);
    c->ctx = c->clCreateContext(NULL, 1, &c->device, NULL, NULL, &e);
    if (e != CL_SUCCESS) {
        cl_fail(err, "clCreateContext", e);
        goto fail;
    }
    c->q = c->clCreateCommandQueue(c->ctx, c->device, 0, &e);
    if (e != CL_SUCCESS) {
        cl_fail(err, "clCreateCommandQueue", e);
        goto fail;
    }
    if (build_program(c, prog, err)) goto fail;
    *impl = c;
    return 0;
fail:
    cl_close(c);
    return -1;
}

static int cl_alloc(void *impl, size_t bytes, uint64_t *buf, dnrt_error *err)
{
    Cl *c = impl;
    cl_int e;
    cl_mem m = c->clCreateBuffer(c->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS) {
        dnrt_fail(err, DNRT_ERR_NOMEM, "OpenCL: cannot allocate %zu bytes on %s (error %d %s)", bytes, c->desc, (int)e,
                  cl_error_name(e));
        return -1;
    }
    *buf = (uint64_t)(uintptr_t)m;
    return 0;
}

static void cl_free(void *impl, uint64_t buf)
{
    Cl *c = impl;
    if (buf) c->clReleaseMemObject((cl_mem)(uintptr_t)buf);
}

static int cl_write(void *impl, uint64_t buf, size_t off, const void *src, size_t n, dnrt_error *err)
{
    Cl *c = impl;
    if (n == 0) return 0;
    cl_int e = c->clEnqueueWriteBuffer(c->q, (cl_mem)(uintptr_t)buf, CL_TRUE, off, n, src, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : cl_fail(err, "clEnqueueWriteBuffer", e);
}

static int cl_read(void *impl, uint64_t buf, size_t off, void *dst, size_t n, dnrt_error *err)
{
    Cl *c = impl;
    if (n == 0) return 0;
    cl_int e = c->clEnqueueReadBuffer(c->q, (cl_mem)(uintptr_t)buf, CL_TRUE, off, n, dst, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : cl_fail(err, "clEnqueueReadBuffer", e);
}

static int cl_zero(void *impl, uint64_t buf, size_t off, size_t n, dnrt_error *err)
{
    Cl *c = impl;
    if (n == 0) return 0;
    uint8_t z = 0;
    cl_int e = c->clEnqueueFillBuffer(c->q, (cl_mem)(uintptr_t)buf, &z, 1, off, n, 0, NULL, NULL);
    return e == CL_SUCCESS ? 0 : cl_fail(err, "clEnqueueFillBuffer", e);
}

static int cl_launch(void *impl, int kernel, int64_t groups, int group, int nargs, const dnrt_karg *args,
                     dnrt_error *err)
{
    Cl *c = impl;
    if (kernel < 0 || kernel >= c->nkernels)
        return dnrt_fail(err, DNRT_ERR_DEVICE, "OpenCL: no kernel %d (the program has %d)", kernel, c->nkernels);
    cl_kernel k = c->kernels[kernel];
    cl_uint at = 0;
    for (int i = 0; i < nargs; i++) {
        const dnrt_karg *a = &args[i];
        cl_int e = CL_SUCCESS;
        if (a->kind == DNRT_KARG_BUF) {
            cl_mem m = (cl_mem)(uintptr_t)a->buf;
            int64_t off = a->i;
            e = c->clSetKernelArg(k, at++, sizeof m, &m);
            if (e == CL_SUCCESS) e = c->clSetKernelArg(k, at++, sizeof off, &off);
        } else if (a->kind == DNRT_KARG_I64) {
            int64_t v = a->i;
            e = c->clSetKernelArg(k, at++, sizeof v, &v);
        } else {
            float v = a->f;
            e = c->clSetKernelArg(k, at++, sizeof v, &v);
        }
        if (e != CL_SUCCESS) {
            char what[160];
            snprintf(what, sizeof what, "clSetKernelArg(%s, %u)", c->names[kernel], at - 1);
            return cl_fail(err, what, e);
        }
    }
    size_t local = (size_t)group, global = (size_t)groups * (size_t)group;
    cl_int e = c->clEnqueueNDRangeKernel(c->q, k, 1, NULL, &global, &local, 0, NULL, NULL);
    if (e != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s, %zu x %zu)", c->names[kernel], global / local, local);
        return cl_fail(err, what, e);
    }
    return 0;
}

static int cl_sync(void *impl, dnrt_error *err)
{
    Cl *c = impl;
    cl_int e = c->clFinish(c->q);
    return e == CL_SUCCESS ? 0 : cl_fail(err, "clFinish", e);
}

static void cl_describe(void *impl, char *buf, size_t len) { snprintf(buf, len, "%s", ((Cl *)impl)->desc); }

static void cl_handles(void *impl, void **context, void **queue, void **device)
{
    Cl *c = impl;
    *context = c->ctx, *queue = c->q, *device = c->device;
}

const dnrt_device_ops dnrt_device_opencl = {"OpenCL", cl_open, cl_close,  cl_alloc, cl_free,     cl_write,
                                            cl_read,  cl_zero, cl_launch, cl_sync,  cl_describe, cl_handles};

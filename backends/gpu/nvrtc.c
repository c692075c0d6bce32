/* nvrtc.c -- the CUDA source compiled at dnnc time by NVRTC, loaded with
 * dlopen (nvrtc.h is the contract).
 *
 * The library is looked for once per process: libnvrtc.so, libnvrtc.so.13
 * and libnvrtc.so.12 in $CUDA_HOME/lib64, $CUDA_PATH/lib64 and
 * /usr/local/cuda/lib64, then the same names on the default search path.
 * Each architecture is one NVRTC compilation (--gpu-architecture=sm_NN,
 * read back as a cubin), and the PTX one more (compute_NN of the first
 * architecture).  PTX images keep NVRTC's terminating NUL (counted in
 * 'size'), so the driver can load them as they are.
 *
 * The few NVRTC types used are declared here, so building needs no CUDA
 * headers.
 */
#include "nvrtc.h"

#include <dlfcn.h>
#include <stdlib.h>

typedef int nvrtcResult;
typedef struct _nvrtcProgram *nvrtcProgram;

#define NVRTC_SUCCESS 0

#define NVRTC_FUNCS(X)                                                                                                 \
    X(nvrtcResult, nvrtcVersion, (int *, int *))                                                                       \
    X(nvrtcResult, nvrtcCreateProgram,                                                                                 \
      (nvrtcProgram *, const char *, const char *, int, const char *const *, const char *const *))                     \
    X(nvrtcResult, nvrtcCompileProgram, (nvrtcProgram, int, const char *const *))                                      \
    X(nvrtcResult, nvrtcGetProgramLogSize, (nvrtcProgram, size_t *))                                                   \
    X(nvrtcResult, nvrtcGetProgramLog, (nvrtcProgram, char *))                                                         \
    X(nvrtcResult, nvrtcGetPTXSize, (nvrtcProgram, size_t *))                                                          \
    X(nvrtcResult, nvrtcGetPTX, (nvrtcProgram, char *))                                                                \
    X(nvrtcResult, nvrtcGetCUBINSize, (nvrtcProgram, size_t *))                                                        \
    X(nvrtcResult, nvrtcGetCUBIN, (nvrtcProgram, char *))                                                              \
    X(nvrtcResult, nvrtcDestroyProgram, (nvrtcProgram *))                                                              \
    X(const char *, nvrtcGetErrorString, (nvrtcResult))

/* The process's one NVRTC, loaded on first use. */
static struct {
    int tried;
    void *lib;
    char where[512]; /* the path or name it was loaded from */
    int major, minor;
    char why[1536]; /* when it could not be loaded */
#define X(ret, name, args) ret(*name) args;
    NVRTC_FUNCS(X)
#undef X
    /* optional (NVRTC 11.2 on): the real architectures it compiles for */
    nvrtcResult (*nvrtcGetNumSupportedArchs)(int *);
    nvrtcResult (*nvrtcGetSupportedArchs)(int *);
} nv;

static const char *const lib_names[] = {"libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12"};
#define NLIB_NAMES 3

/* Binds the entry points of the library just opened; false (with nv.why)
 * when one is missing. */
static bool bind(void)
{
#define X(ret, name, args)                                                                                             \
    if (!(*(void **)&nv.name = dlsym(nv.lib, #name))) {                                                                \
        snprintf(nv.why, sizeof nv.why, "the cuda target cannot use NVRTC %s: it has no %s", nv.where, #name);         \
        return false;                                                                                                  \
    }
    NVRTC_FUNCS(X)
#undef X
    *(void **)&nv.nvrtcGetNumSupportedArchs = dlsym(nv.lib, "nvrtcGetNumSupportedArchs");
    *(void **)&nv.nvrtcGetSupportedArchs = dlsym(nv.lib, "nvrtcGetSupportedArchs");
    if (nv.nvrtcVersion(&nv.major, &nv.minor) != NVRTC_SUCCESS) nv.major = nv.minor = 0;
    return true;
}

/* Tries lib_names in 'dir'/lib64, or on the search path when 'dir' is NULL. */
static bool try_dir(const char *dir, char *last_error, size_t len)
{
    for (int i = 0; i < NLIB_NAMES && !nv.lib; i++) {
        if (dir)
            snprintf(nv.where, sizeof nv.where, "%s/lib64/%s", dir, lib_names[i]);
        else
            snprintf(nv.where, sizeof nv.where, "%s", lib_names[i]);
        nv.lib = dlopen(nv.where, RTLD_NOW | RTLD_LOCAL);
        if (!nv.lib) snprintf(last_error, len, "%s", dlerror());
    }
    return nv.lib != NULL;
}

static bool load(void)
{
    if (nv.tried) return nv.lib != NULL;
    nv.tried = 1;
    const char *home = getenv("CUDA_HOME"), *path = getenv("CUDA_PATH");
    char last[400] = "";
    bool found = (home && *home && try_dir(home, last, sizeof last)) ||
                 (path && *path && try_dir(path, last, sizeof last)) || try_dir("/usr/local/cuda", last, sizeof last) ||
                 try_dir(NULL, last, sizeof last);
    if (!found) {
        snprintf(nv.why, sizeof nv.why,
                 "the cuda target needs NVRTC, the CUDA toolkit's run-time compiler, and it is not installed: no "
                 "libnvrtc.so, libnvrtc.so.13 or libnvrtc.so.12 in $CUDA_HOME/lib64 (%s), $CUDA_PATH/lib64 (%s), "
                 "/usr/local/cuda/lib64 or on the library search path (%s); install the CUDA toolkit, or set "
                 "CUDA_HOME to the folder it is installed in",
                 home && *home ? home : "CUDA_HOME unset", path && *path ? path : "CUDA_PATH unset", last);
        return false;
    }
    if (!bind()) {
        dlclose(nv.lib);
        nv.lib = NULL;
        return false;
    }
    return true;
}

bool dn_nvrtc_available(const char **why)
{
    bool ok = load();
    if (!ok && why) *why = nv.why;
    return ok;
}

/* "sm_" and 2 or 3 digits. */
static bool is_arch(const char *a)
{
    if (!a || strncmp(a, "sm_", 3) != 0) return false;
    size_t n = 0;
    while (a[3 + n] >= '0' && a[3 + n] <= '9') n++;
    return (n == 2 || n == 3) && a[3 + n] == 0;
}

/* Whether this NVRTC compiles for 'arch' (true when it cannot say); else a
 * diagnostic listing what it does compile for. */
static bool supported(DnCtx *cx, const char *arch)
{
    int n = 0, list[128];
    if (!nv.nvrtcGetNumSupportedArchs || !nv.nvrtcGetSupportedArchs ||
        nv.nvrtcGetNumSupportedArchs(&n) != NVRTC_SUCCESS || n <= 0 || n > 128 ||
        nv.nvrtcGetSupportedArchs(list) != NVRTC_SUCCESS)
        return true;
    int want = atoi(arch + 3);
    char have[700] = "";
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        if (list[i] == want) return true;
        if (at < sizeof have) at += (size_t)snprintf(have + at, sizeof have - at, "%ssm_%d", i ? " " : "", list[i]);
    }
    dn_error(cx, (DnLoc){0}, "--gpu-arch: NVRTC %d.%d (%s) does not compile for %s; it compiles for %s", nv.major,
             nv.minor, nv.where, arch, have);
    return false;
}

/* Compiles 'source' for 'arch' (sm_NN: a cubin; compute_NN: PTX) into *img. */
static DnStatus compile_one(DnCtx *cx, const char *source, const char *arch, DnGpuImage *img)
{
    bool ptx = strncmp(arch, "compute_", 8) == 0;
    char opt_arch[64];
    snprintf(opt_arch, sizeof opt_arch, "--gpu-architecture=%s", arch);
    const char *opts[] = {opt_arch, "-default-device", "--std=c++17"};
    nvrtcProgram prog = NULL;
    nvrtcResult r = nv.nvrtcCreateProgram(&prog, source, "dnnc_kernels.cu", 0, NULL, NULL);
    if (r != NVRTC_SUCCESS) {
        dn_error(cx, (DnLoc){0}, "cuda target: nvrtcCreateProgram failed: %s", nv.nvrtcGetErrorString(r));
        return DN_ERR;
    }
    r = nv.nvrtcCompileProgram(prog, 3, opts);
    if (r != NVRTC_SUCCESS) {
        size_t len = 0;
        char *log = NULL;
        if (nv.nvrtcGetProgramLogSize(prog, &len) == NVRTC_SUCCESS && len > 0 && (log = malloc(len + 1))) {
            if (nv.nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = 0;
            log[len] = 0;
            while (len > 0 && (log[len - 1] == '\n' || log[len - 1] == 0)) log[--len] = 0;
        }
        dn_error(cx, (DnLoc){0}, "cuda target: NVRTC %d.%d cannot compile the kernels for %s (%s):\n%.8000s", nv.major,
                 nv.minor, arch, nv.nvrtcGetErrorString(r), log && log[0] ? log : "(no log)");
        free(log);
        nv.nvrtcDestroyProgram(&prog);
        return DN_ERR;
    }
    size_t size = 0;
    r = ptx ? nv.nvrtcGetPTXSize(prog, &size) : nv.nvrtcGetCUBINSize(prog, &size);
    uint8_t *data = r == NVRTC_SUCCESS && size > 0 ? malloc(size) : NULL;
    if (data) r = ptx ? nv.nvrtcGetPTX(prog, (char *)data) : nv.nvrtcGetCUBIN(prog, (char *)data);
    nv.nvrtcDestroyProgram(&prog);
    if (!data || r != NVRTC_SUCCESS) {
        dn_error(cx, (DnLoc){0}, "cuda target: %s for %s failed: %s", ptx ? "nvrtcGetPTX" : "nvrtcGetCUBIN", arch,
                 r != NVRTC_SUCCESS ? nv.nvrtcGetErrorString(r)
                 : size             ? "out of memory"
                                    : "it is empty");
        free(data);
        return DN_ERR;
    }
    snprintf(img->arch, sizeof img->arch, "%s", arch);
    img->data = data;
    img->size = size;
    return DN_OK;
}

DnStatus dn_nvrtc_compile(DnCtx *cx, const char *source, const char *const *archs, int narchs, DnGpuImage **out,
                          int *nout)
{
    *out = NULL;
    *nout = 0;
    if (narchs < 1) {
        dn_error(cx, (DnLoc){0}, "--gpu-arch: no architecture given (give one such as sm_80)");
        return DN_ERR;
    }
    for (int i = 0; i < narchs; i++) {
        if (!is_arch(archs[i])) {
            dn_error(cx, (DnLoc){0}, "--gpu-arch: '%s' is not an architecture such as sm_80", archs[i] ? archs[i] : "");
            return DN_ERR;
        }
        for (int j = 0; j < i; j++)
            if (strcmp(archs[i], archs[j]) == 0) {
                dn_error(cx, (DnLoc){0}, "--gpu-arch: '%s' is given twice", archs[i]);
                return DN_ERR;
            }
    }
    const char *why = NULL;
    if (!dn_nvrtc_available(&why)) {
        dn_error(cx, (DnLoc){0}, "%s", why);
        return DN_ERR;
    }
    for (int i = 0; i < narchs; i++)
        if (!supported(cx, archs[i])) return DN_ERR;
    DnGpuImage *img = calloc((size_t)narchs + 1, sizeof *img);
    if (!img) {
        dn_error(cx, (DnLoc){0}, "cuda target: out of memory");
        return DN_ERR;
    }
    int n = 0;
    for (; n < narchs; n++)
        if (compile_one(cx, source, archs[n], &img[n]) != DN_OK) break;
    if (n == narchs) {
        char virt[16];
        snprintf(virt, sizeof virt, "compute_%s", archs[0] + 3);
        if (compile_one(cx, source, virt, &img[n]) == DN_OK) n++;
    }
    if (n != narchs + 1) {
        dn_nvrtc_free(img, n);
        return DN_ERR;
    }
    *out = img;
    *nout = n;
    return DN_OK;
}

void dn_nvrtc_free(DnGpuImage *img, int n)
{
    if (!img) return;
    for (int i = 0; i < n; i++) free(img[i].data);
    free(img);
}

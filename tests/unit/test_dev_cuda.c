/* test_dev_cuda.c -- the CUDA device layer (runtime/dev_cuda.c) without a
 * GPU:
 *   - with no driver installed, and with a driver path that does not exist,
 *     a session's device fails to open with DNRT_ERR_DEVICE and a message
 *     naming the library;
 *   - with the CUDA toolkit's stub libcuda.so (whose every call fails), it
 *     fails with the driver's error name, CUDA_ERROR_STUB_LIBRARY;
 *   - the choice of the image a device runs (dnrt_cuda_pick_image);
 *   - everything else through a fake driver on host memory
 *     (tests/unit/mock/cuda_mock.c, loaded with $DNRT_CUDA_LIBRARY): device
 *     choice and description, module loading and kernel look-up, the kernel
 *     parameters of a launch, copies, allocation failure, a launch that
 *     faults, and a whole GPU session (gpu.c) on a hand-written model.
 * Each Criterion test runs in its own process, so the environment a test
 * sets stays in it.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/device.h"
#include "dnrt.h"

#define STUB "/usr/local/cuda/lib64/stubs/libcuda.so"

/* ---- programs ------------------------------------------------------------ */

static const char *const no_kernels[] = {"k"};

static dnrt_gpu_program program(const dnrt_gpu_image *images, int n)
{
    return (dnrt_gpu_program){
        .api = DNRT_GPU_CUDA, .nkernels = 1, .kernels = no_kernels, .nimages = n, .images = images};
}

#define IMG(arch, text)                                                                                                \
    {                                                                                                                  \
        arch, (const uint8_t *)(text), (int64_t)sizeof(text)                                                           \
    }

/* ---- no driver, the stub ------------------------------------------------- */

static void expect_open_fails(const char *must_contain, const char *also)
{
    dnrt_gpu_image im[] = {IMG("sm_90", "MOCK:k")};
    dnrt_gpu_program p = program(im, 1);
    void *impl = (void *)1;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_device_cuda.open(&p, &impl, &err), -1);
    cr_assert_null(impl);
    cr_expect_eq(err.code, DNRT_ERR_DEVICE, "code %d: %s", err.code, err.message);
    cr_expect(strstr(err.message, must_contain), "'%s' not in: %s", must_contain, err.message);
    if (also) cr_expect(strstr(err.message, also), "'%s' not in: %s", also, err.message);
}

Test(cuda_driver, absent_names_libcuda)
{
    unsetenv("DNRT_CUDA_LIBRARY");
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) {
        dlclose(h);
        cr_skip("a CUDA driver (libcuda.so.1) is installed on this machine: the no-driver case cannot be tested");
    }
    expect_open_fails("libcuda.so.1 cannot be loaded", "NVIDIA GPU and its driver");
}

Test(cuda_driver, missing_library_path_is_named)
{
    setenv("DNRT_CUDA_LIBRARY", "/nonexistent/dir/libcuda.so.1", 1);
    expect_open_fails("DNRT_CUDA_LIBRARY='/nonexistent/dir/libcuda.so.1' cannot be loaded", "CUDA is not available");
}

Test(cuda_driver, toolkit_stub_fails_with_its_error_name)
{
    if (access(STUB, R_OK) != 0) cr_skip("the CUDA toolkit's stub driver " STUB " is absent: case not tested");
    setenv("DNRT_CUDA_LIBRARY", STUB, 1);
    expect_open_fails("cuInit of " STUB " failed: CUDA_ERROR_STUB_LIBRARY", "stub");
}

/* ---- image choice --------------------------------------------------------- */

static const dnrt_gpu_image some[] = {IMG("sm_80", "a"), IMG("sm_90", "b"), IMG("compute_80", "c"),
                                      IMG("compute_75", "d")};

Test(cuda_pick, exact_cubin)
{
    dnrt_gpu_program p = program(some, 4);
    char why[200];
    cr_expect_eq(dnrt_cuda_pick_image(&p, 9, 0, why, sizeof why), 1);
    cr_expect_str_eq(why, "the cubin for sm_90");
    cr_expect_eq(dnrt_cuda_pick_image(&p, 8, 0, NULL, 0), 0);
}

Test(cuda_pick, ptx_highest_not_above_the_device)
{
    dnrt_gpu_program p = program(some, 4);
    char why[200];
    /* sm_86: no cubin; compute_80 is the newest PTX it runs */
    cr_expect_eq(dnrt_cuda_pick_image(&p, 8, 6, why, sizeof why), 2);
    cr_expect(strstr(why, "PTX for compute_80") && strstr(why, "sm_86"), "%s", why);
    /* sm_100: newer than every cubin */
    cr_expect_eq(dnrt_cuda_pick_image(&p, 10, 0, why, sizeof why), 2);
    /* sm_75 has no cubin and compute_80 is too new for it */
    cr_expect_eq(dnrt_cuda_pick_image(&p, 7, 5, why, sizeof why), 3);
    /* images in another order: still the highest */
    dnrt_gpu_image rev[] = {IMG("compute_75", "d"), IMG("compute_80", "c"), IMG("compute_70", "e")};
    dnrt_gpu_program q = program(rev, 3);
    cr_expect_eq(dnrt_cuda_pick_image(&q, 12, 0, why, sizeof why), 1);
}

Test(cuda_pick, none_lists_the_architectures)
{
    dnrt_gpu_image im[] = {IMG("sm_80", "a"), IMG("sm_90", "b"), IMG("compute_80", "c")};
    dnrt_gpu_program p = program(im, 3);
    char why[300];
    cr_expect_eq(dnrt_cuda_pick_image(&p, 7, 0, why, sizeof why), -1);
    cr_expect(strstr(why, "sm_80, sm_90, compute_80"), "%s", why);
    cr_expect(strstr(why, "7.0") && strstr(why, "sm_70"), "%s", why);
    /* an arch-specific PTX only runs where it was made for; a cubin never elsewhere */
    dnrt_gpu_image odd[] = {IMG("compute_90a", "x"), IMG("sm_86", "y")};
    dnrt_gpu_program q = program(odd, 2);
    cr_expect_eq(dnrt_cuda_pick_image(&q, 9, 1, why, sizeof why), -1);
    dnrt_gpu_program none = program(NULL, 0);
    cr_expect_eq(dnrt_cuda_pick_image(&none, 9, 0, why, sizeof why), -1);
    cr_expect(strstr(why, "no architecture"), "%s", why);
    cr_expect_eq(dnrt_cuda_pick_image(&p, 7, 0, why, 8), -1); /* a short buffer is cut, not overrun */
    cr_expect_eq(strlen(why), 7);
}

/* ---- the mock driver ------------------------------------------------------ */

typedef struct MockLaunch {
    char kernel[64];
    unsigned grid, block, shared;
    int has_stream, has_extra;
    int nparams;
    char kinds[32];
    int64_t i[32];
    float f[32];
} MockLaunch; /* as in cuda_mock.c */

static void *mock;

static void use_mock(void)
{
    setenv("DNRT_CUDA_LIBRARY", DN_CUDA_MOCK, 1);
    mock = dlopen(DN_CUDA_MOCK, RTLD_NOW | RTLD_LOCAL);
    cr_assert_not_null(mock, "%s", dlerror());
}

static int mock_int(const char *fn) { return ((int (*)(void))dlsym(mock, fn))(); }
static const MockLaunch *mock_last(void)
{
    return ((const MockLaunch *(*)(void))dlsym(mock, "mock_cuda_last_launch"))();
}
static const char *mock_image(void) { return ((const char *(*)(void))dlsym(mock, "mock_cuda_loaded_image"))(); }

static const char *const kernels[] = {"rec_ipiif", "fault_i"};
static const dnrt_gpu_image images[] = {IMG("sm_80", "MOCK:wrong"), IMG("sm_90", "MOCK:rec_ipiif fault_i"),
                                        IMG("compute_80", "MOCK:rec_ipiif fault_i ptx")};

static void *open_mock(const dnrt_gpu_image *im, int n)
{
    use_mock();
    dnrt_gpu_program p = {.api = DNRT_GPU_CUDA, .nkernels = 2, .kernels = kernels, .nimages = n, .images = im};
    void *impl = NULL;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_device_cuda.open(&p, &impl, &err), 0, "open: %s", err.message);
    cr_assert_not_null(impl);
    return impl;
}

static void expect_mock_open_fails(const dnrt_gpu_image *im, int n, int code, const char *a, const char *b)
{
    use_mock();
    dnrt_gpu_program p = {.api = DNRT_GPU_CUDA, .nkernels = 2, .kernels = kernels, .nimages = n, .images = im};
    void *impl = (void *)1;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_device_cuda.open(&p, &impl, &err), -1);
    cr_expect_null(impl);
    cr_expect_eq(err.code, code, "code %d: %s", err.code, err.message);
    cr_expect(strstr(err.message, a), "'%s' not in: %s", a, err.message);
    if (b) cr_expect(strstr(err.message, b), "'%s' not in: %s", b, err.message);
    cr_expect_eq(mock_int("mock_cuda_live"), 0, "a failed open left driver objects behind");
}

Test(cuda_mock, opens_the_exact_cubin_and_describes_the_device)
{
    void *c = open_mock(images, 3);
    cr_expect_str_eq(mock_image(), "MOCK:rec_ipiif fault_i");
    char d[200];
    dnrt_device_cuda.describe(c, d, sizeof d);
    cr_expect_str_eq(d, "CUDA device 0 'Mock GPU 0' (sm_90)");
    dnrt_device_cuda.close(c);
    cr_expect_eq(mock_int("mock_cuda_live"), 0, "close left driver objects behind");
    dnrt_device_cuda.close(NULL);
}

Test(cuda_mock, jits_ptx_without_a_nul_for_a_newer_device)
{
    setenv("MOCK_CUDA_CC", "100", 1);
    static const char text[] = "MOCK:rec_ipiif fault_i";
    /* the image's bytes end without a NUL, as an embedded PTX may */
    dnrt_gpu_image im[] = {IMG("sm_90", "MOCK:x"), {"compute_80", (const uint8_t *)text, (int64_t)strlen(text)}};
    void *c = open_mock(im, 2);
    cr_expect_str_eq(mock_image(), text);
    char d[200];
    dnrt_device_cuda.describe(c, d, sizeof d);
    cr_expect_str_eq(d, "CUDA device 0 'Mock GPU 0' (sm_100)");
    dnrt_device_cuda.close(c);
}

Test(cuda_mock, device_index_from_the_environment)
{
    setenv("MOCK_CUDA_COUNT", "2", 1);
    setenv("DNRT_CUDA_DEVICE", "1", 1);
    void *c = open_mock(images, 3);
    char d[200];
    dnrt_device_cuda.describe(c, d, sizeof d);
    cr_expect_str_eq(d, "CUDA device 1 'Mock GPU 1' (sm_90)");
    dnrt_device_cuda.close(c);
    setenv("DNRT_CUDA_DEVICE", "2", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_ARG, "DNRT_CUDA_DEVICE='2' is not a device index in [0, 1]", NULL);
    setenv("DNRT_CUDA_DEVICE", "1x", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_ARG, "DNRT_CUDA_DEVICE='1x'", NULL);
    setenv("DNRT_CUDA_DEVICE", "-1", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_ARG, "DNRT_CUDA_DEVICE='-1'", NULL);
}

Test(cuda_mock, open_failures)
{
    setenv("MOCK_CUDA_INIT", "100", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_DEVICE, "failed: CUDA_ERROR_NO_DEVICE", "NVIDIA GPU");
    setenv("MOCK_CUDA_INIT", "0", 1);
    setenv("MOCK_CUDA_COUNT", "0", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_DEVICE, "sees no device", NULL);
    setenv("MOCK_CUDA_COUNT", "1", 1);
    setenv("MOCK_CUDA_CC", "70", 1);
    expect_mock_open_fails(images, 3, DNRT_ERR_DEVICE, "no code for CUDA device 0 'Mock GPU 0' (sm_70)",
                           "sm_80, sm_90, compute_80");
    setenv("MOCK_CUDA_CC", "90", 1);
    dnrt_gpu_image bad[] = {IMG("sm_90", "not a module")};
    expect_mock_open_fails(bad, 1, DNRT_ERR_DEVICE, "cuModuleLoadDataEx(the cubin for sm_90) failed",
                           "CUDA_ERROR_INVALID_IMAGE (error 200): mock: not a mock image");
    dnrt_gpu_image lacking[] = {IMG("sm_90", "MOCK:rec_ipiif")};
    expect_mock_open_fails(lacking, 1, DNRT_ERR_DEVICE, "cuModuleGetFunction('fault_i') failed",
                           "CUDA_ERROR_NOT_FOUND");
}

Test(cuda_mock, launch_passes_buffers_as_pointer_and_offset)
{
    void *c = open_mock(images, 3);
    dnrt_error err = {0};
    uint64_t buf = 0;
    cr_assert_eq(dnrt_device_cuda.alloc(c, 256, &buf, &err), 0, "%s", err.message);
    dnrt_karg a[] = {{.kind = DNRT_KARG_I64, .i = 7},
                     {.kind = DNRT_KARG_BUF, .buf = buf, .i = 48},
                     {.kind = DNRT_KARG_I64, .i = -5},
                     {.kind = DNRT_KARG_F32, .f = 1.5f}};
    cr_assert_eq(dnrt_device_cuda.launch(c, 0, 3, 128, 4, a, &err), 0, "%s", err.message);
    const MockLaunch *l = mock_last();
    cr_expect_str_eq(l->kernel, "rec_ipiif");
    cr_expect_eq(l->grid, 3);
    cr_expect_eq(l->block, 128);
    cr_expect_eq(l->shared, 0);
    cr_expect(!l->has_stream && !l->has_extra);
    cr_expect_eq(l->i[0], 7);
    cr_expect_eq((uint64_t)l->i[1], buf);
    cr_expect_eq(l->i[2], 48);
    cr_expect_eq(l->i[3], -5);
    cr_expect_eq(l->f[4], 1.5f);
    /* out-of-range kernels and grids are refused before the driver sees them */
    cr_expect_eq(dnrt_device_cuda.launch(c, 2, 1, 1, 0, a, &err), -1);
    cr_expect(strstr(err.message, "no kernel 2"), "%s", err.message);
    cr_expect_eq(dnrt_device_cuda.launch(c, 0, (int64_t)1 << 40, 64, 4, a, &err), -1);
    cr_expect(strstr(err.message, "rec_ipiif") && strstr(err.message, "grid"), "%s", err.message);
    cr_expect_eq(mock_int("mock_cuda_launches"), 1);
    dnrt_device_cuda.free(c, buf);
    dnrt_device_cuda.free(c, 0);
    dnrt_device_cuda.close(c);
    cr_expect_eq(mock_int("mock_cuda_live"), 0);
}

Test(cuda_mock, copies_and_zero_at_an_offset)
{
    void *c = open_mock(images, 3);
    dnrt_error err = {0};
    uint64_t buf = 0;
    cr_assert_eq(dnrt_device_cuda.alloc(c, 64, &buf, &err), 0, "%s", err.message);
    uint8_t src[64], dst[64];
    for (int i = 0; i < 64; i++) src[i] = (uint8_t)(i + 1);
    cr_assert_eq(dnrt_device_cuda.write(c, buf, 0, src, 64, &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_device_cuda.zero(c, buf, 8, 16, &err), 0, "%s", err.message);
    cr_assert_eq(dnrt_device_cuda.read(c, buf, 4, dst, 60, &err), 0, "%s", err.message);
    for (int i = 0; i < 60; i++) {
        int at = i + 4;
        cr_assert_eq(dst[i], at >= 8 && at < 24 ? 0 : at + 1, "byte %d", at);
    }
    cr_expect_eq(dnrt_device_cuda.sync(c, &err), 0, "%s", err.message);
    dnrt_device_cuda.free(c, buf);
    dnrt_device_cuda.close(c);
}

Test(cuda_mock, allocation_failure_is_nomem)
{
    setenv("MOCK_CUDA_MEMMAX", "1000", 1);
    void *c = open_mock(images, 3);
    dnrt_error err = {0};
    uint64_t buf = 0;
    cr_expect_eq(dnrt_device_cuda.alloc(c, 4096, &buf, &err), -1);
    cr_expect_eq(err.code, DNRT_ERR_NOMEM);
    cr_expect(strstr(err.message, "cannot allocate 4096 bytes on CUDA device 0") &&
                  strstr(err.message, "CUDA_ERROR_OUT_OF_MEMORY"),
              "%s", err.message);
    dnrt_device_cuda.close(c);
}

Test(cuda_mock, a_faulting_kernel_is_named_at_the_next_sync)
{
    void *c = open_mock(images, 3);
    dnrt_error err = {0};
    dnrt_karg n = {.kind = DNRT_KARG_I64, .i = 1};
    cr_assert_eq(dnrt_device_cuda.launch(c, 1, 1, 32, 1, &n, &err), 0, "%s", err.message);
    cr_expect_eq(dnrt_device_cuda.sync(c, &err), -1);
    cr_expect_eq(err.code, DNRT_ERR_DEVICE);
    cr_expect(strstr(err.message, "cuCtxSynchronize failed") &&
                  strstr(err.message, "CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)") &&
                  strstr(err.message, "the last kernel launched: fault_i"),
              "%s", err.message);
    uint8_t b;
    cr_expect_eq(dnrt_device_cuda.read(c, 64, 0, &b, 1, &err), -1);
    cr_expect(strstr(err.message, "cuMemcpyDtoH failed"), "%s", err.message);
    dnrt_device_cuda.close(c);
}

/* ---- a whole GPU session on the mock: y = x * w (per feature) ------------ */

#define F 4
static const dnrt_gpu_arg mul_args[] = {
    {.kind = DNRT_ARG_INPUT, .index = 0}, {.kind = DNRT_ARG_STATE, .b = 0}, {.kind = DNRT_ARG_OUTPUT, .index = 0},
    {.kind = DNRT_ARG_I64, .a = F},       {.kind = DNRT_ARG_I64, .b = F},
};
static const dnrt_gpu_launch mul_launch = {
    .kernel = 0, .nargs = 5, .args = mul_args, .items_n = F, .group = 128, .guard = -1};
static int32_t mul_entry(const dnrt_call *c) { return dnrt_gpu_launch_kernel(c, &mul_launch); }

static const char *const mul_kernels[] = {"mul_ipipipiii"};
static const dnrt_gpu_image mul_images[] = {IMG("sm_90", "MOCK:mul_ipipipiii")};
static const dnrt_gpu_program mul_program = {
    .api = DNRT_GPU_CUDA, .nkernels = 1, .kernels = mul_kernels, .nimages = 1, .images = mul_images};
static const dnrt_tensor_desc mul_in[] = {{.name = "x", .dtype = DNRT_F32, .rank = 2, .dim = {-1, F}}};
static const dnrt_tensor_desc mul_out[] = {{.name = "y", .dtype = DNRT_F32, .rank = 2, .dim = {-1, F}}};
static const dnrt_tensor_desc mul_state[] = {{.name = "w",
                                              .dtype = DNRT_F32,
                                              .rank = 1,
                                              .dim = {F},
                                              .kind = DNRT_STATE_WEIGHT,
                                              .init = DNRT_INIT_UNIFORM,
                                              .init_a = 1,
                                              .init_b = 2}};
static const dnrt_model_desc mul_desc = {
    .abi_version = DNRT_ABI_VERSION,
    .name = "mul",
    .ninputs = 1,
    .inputs = mul_in,
    .noutputs = 1,
    .outputs = mul_out,
    .nstate = 1,
    .state = mul_state,
    .state_bytes = 64,
    .infer = mul_entry,
    .api = &dnrt_api_v1,
    .gpu = &mul_program,
};

static void expect_product(dnrt_session *s, const float *w)
{
    enum { N = 3 };
    float x[N * F], y[N * F];
    for (int i = 0; i < N * F; i++) x[i] = (float)i - 5;
    const void *in[] = {x};
    void *out[] = {y};
    dnrt_error err = {0};
    cr_assert_eq(dnrt_session_infer(s, N, in, out, &err), 0, "infer: %s", err.message);
    for (int i = 0; i < N * F; i++) cr_expect_eq(y[i], x[i] * w[i % F], "y[%d] = %g", i, y[i]);
    const MockLaunch *l = mock_last();
    cr_expect_eq(l->grid, 1);
    cr_expect_eq(l->block, 128);
    cr_expect_eq(l->i[0], N);
    cr_expect_eq(l->i[7], N * F);
}

Test(cuda_mock, session_runs_on_the_device)
{
    use_mock();
    dnrt_error err = {0};
    dnrt_options opt = {.seed = 3};
    dnrt_session *s = dnrt_session_create(&mul_desc, &opt, &err);
    cr_assert_not_null(s, "create: %s", err.message);
    float *w = dnrt_session_state(s, "w");
    cr_assert_not_null(w);
    float w0[F];
    memcpy(w0, w, sizeof w0);
    cr_expect(w0[0] >= 1 && w0[0] <= 2, "w[0] = %g", w0[0]);
    expect_product(s, w0);
    /* a write through the host copy reaches the device before the next run */
    w = dnrt_session_state(s, "w");
    for (int i = 0; i < F; i++) w[i] = (float)(i + 10), w0[i] = w[i];
    expect_product(s, w0);
    dnrt_session_destroy(s);
    cr_expect_eq(mock_int("mock_cuda_live"), 0, "the session left device memory behind");
}

Test(cuda_mock, session_create_without_a_device_names_the_model)
{
    use_mock();
    setenv("MOCK_CUDA_COUNT", "0", 1);
    dnrt_error err = {0};
    dnrt_session *s = dnrt_session_create(&mul_desc, NULL, &err);
    cr_expect_null(s);
    cr_expect_eq(err.code, DNRT_ERR_DEVICE);
    cr_expect(strstr(err.message, "model 'mul' was built for CUDA") && strstr(err.message, "sees no device"), "%s",
              err.message);
}

/* test_gpu_session.c -- the runtime side of a GPU library, on OpenCL (PoCL
 * in CI): a clear error at create when no device can be had; the state's
 * round trips between the host copy and the device (load, direct access,
 * training, save); device_io, where the caller passes buffers of the
 * session's own OpenCL context (dnrt_device_info) instead of host pointers;
 * and the cache of program binaries.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

/* y = relu(x * p + b) with p, b parameters, and a train section. */
static const char src[] = "model m(x: f32[N, 5]) -> (y: f32[N, 5]) {\n"
                          "  param p: f32[5] = ones\n"
                          "  param b: f32[5] = zeros\n"
                          "  y = relu(x * p + b)\n"
                          "}\n"
                          "train m {\n  t: f32[N, 5]\n  loss = mse(y, t)\n  optimizer = sgd(lr=0.5)\n}\n";

static void compile_gpu(DnTestLib *lib)
{
    char log[8192];
    cr_assert_eq(dn_test_compile_text(src, "--target=opencl", lib, log, sizeof log), 0, "%s", log);
    cr_assert(lib->desc->gpu && lib->desc->gpu->api == DNRT_GPU_OPENCL, "not an OpenCL library");
}

static void reference(const float *x, const float *p, const float *b, float *y, int n)
{
    for (int i = 0; i < n * 5; i++) {
        float v = x[i] * p[i % 5] + b[i % 5];
        y[i] = v > 0 ? v : 0;
    }
}

Test(gpu_session, no_platform_is_a_clear_error_at_create)
{
    DnTestLib lib;
    compile_gpu(&lib);
    /* the ICD loader finds no platform in an empty vendor folder */
    char dir[] = "/tmp/dnnc-no-icd-XXXXXX";
    cr_assert(mkdtemp(dir));
    setenv("OCL_ICD_VENDORS", dir, 1);
    dnrt_error err = {0};
    dnrt_options o = {0};
    dnrt_session *s = lib.desc->api->create(lib.desc, &o, &err);
    cr_expect_null(s, "create succeeded without an OpenCL platform");
    cr_expect_eq(err.code, DNRT_ERR_DEVICE);
    cr_expect(strstr(err.message, "model 'm' was built for OpenCL") && strstr(err.message, "no platform"),
              "message: %s", err.message);
    rmdir(dir);
    dn_test_close(&lib);
}

Test(gpu_session, state_follows_load_direct_access_training_and_save)
{
    DnTestLib lib;
    compile_gpu(&lib);
    const dnrt_api *api = lib.desc->api;
    dnrt_session *s = dn_test_session(&lib, 1, 3);
    float x[2 * 5], y[2 * 5], want[2 * 5], p[5] = {1, 1, 1, 1, 1}, b[5] = {0};
    for (int i = 0; i < 10; i++) x[i] = (float)(i - 4) * 0.25f;
    const void *in[1] = {x};
    void *out[1] = {y};
    dnrt_error err = {0};
    /* a write through the state pointer reaches the device before the next call */
    float *pp = dnrt_session_state(s, "p");
    cr_assert(pp);
    for (int i = 0; i < 5; i++) pp[i] = p[i] = 0.5f + (float)i;
    cr_assert_eq(api->infer(s, 2, in, out, &err), 0, "%s", err.message);
    reference(x, p, b, want, 2);
    dn_test_expect_close("infer after a direct write", y, want, 10, 0, 0);
    /* training changes the device's copy; save brings it to the host */
    float t[10] = {0}, loss;
    const void *tin[2] = {x, t};
    cr_assert_eq(api->train_step(s, 2, tin, &loss, &err), 0, "%s", err.message);
    char path[] = "/tmp/dnnc-gpu-session-XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    close(fd);
    cr_assert_eq(api->save(s, path, &err), 0, "%s", err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s", err.message);
    const float *sp = dn_test_tensor(&f, "p", DNRT_F32, 5);
    int changed = 0;
    for (int i = 0; i < 5; i++) changed += sp[i] != p[i];
    cr_expect_gt(changed, 0, "the saved weights are those before the step");
    /* a second session loads them and computes what the first now does */
    dnrt_session *s2 = dn_test_session(&lib, 1, 9);
    cr_assert_eq(api->load(s2, path, &err), 0, "%s", err.message);
    float y1[10], y2[10];
    void *o1[1] = {y1}, *o2[1] = {y2};
    cr_assert_eq(api->infer(s, 2, in, o1, &err), 0, "%s", err.message);
    cr_assert_eq(api->infer(s2, 2, in, o2, &err), 0, "%s", err.message);
    dn_test_expect_close("loaded session", y2, y1, 10, 0, 0);
    dnrt_st_free(&f);
    unlink(path);
    api->destroy(s), api->destroy(s2);
    dn_test_close(&lib);
}

/* The few OpenCL entry points the caller of device_io needs. */
typedef void *(*create_buffer_fn)(void *ctx, uint64_t flags, size_t size, void *host, int32_t *err);
typedef int32_t (*write_fn)(void *q, void *mem, uint32_t blocking, size_t off, size_t n, const void *p, uint32_t ne,
                            const void *ev, void *e);
typedef int32_t (*release_fn)(void *mem);

Test(gpu_session, device_io_uses_the_callers_buffers)
{
    DnTestLib lib;
    compile_gpu(&lib);
    const dnrt_api *api = lib.desc->api;
    dnrt_options o = {.threads = 1, .seed = 1, .device_io = 1};
    dnrt_error err = {0};
    dnrt_session *s = api->create(lib.desc, &o, &err);
    cr_assert(s, "%s", err.message);
    dnrt_device_info info;
    cr_assert_eq(api->device_info(s, &info, &err), 0, "%s", err.message);
    cr_assert_eq(info.api, DNRT_GPU_OPENCL);
    cr_assert(info.context && info.queue && info.device && strstr(info.name, "OpenCL device"), "info: %s", info.name);
    void *cl = dlopen("libOpenCL.so.1", RTLD_NOW | RTLD_LOCAL);
    cr_assert(cl, "%s", dlerror());
    create_buffer_fn create = (create_buffer_fn)dlsym(cl, "clCreateBuffer");
    write_fn wr = (write_fn)dlsym(cl, "clEnqueueWriteBuffer");
    write_fn rd = (write_fn)dlsym(cl, "clEnqueueReadBuffer");
    release_fn rel = (release_fn)dlsym(cl, "clReleaseMemObject");
    cr_assert(create && wr && rd && rel);
    float x[3 * 5], y[3 * 5], want[3 * 5], p[5] = {1, 1, 1, 1, 1}, b[5] = {0};
    for (int i = 0; i < 15; i++) x[i] = (float)(i - 7) * 0.5f;
    int32_t e1 = 0, e2 = 0;
    void *dx = create(info.context, 1 /* CL_MEM_READ_WRITE */, sizeof x, NULL, &e1);
    void *dy = create(info.context, 1, sizeof y, NULL, &e2);
    cr_assert(dx && dy && !e1 && !e2);
    cr_assert_eq(wr(info.queue, dx, 1, 0, sizeof x, x, 0, NULL, NULL), 0);
    const void *in[1] = {dx};
    void *out[1] = {dy};
    cr_assert_eq(api->infer(s, 3, in, out, &err), 0, "%s", err.message);
    cr_assert_eq(rd(info.queue, dy, 1, 0, sizeof y, y, 0, NULL, NULL), 0);
    reference(x, p, b, want, 3);
    dn_test_expect_close("device_io infer", y, want, 15, 0, 0);
    /* a CPU session has no device */
    rel(dx), rel(dy);
    api->destroy(s);
    dn_test_close(&lib);
    char log[8192];
    cr_assert_eq(dn_test_compile_text(src, "--target=cpu", &lib, log, sizeof log), 0, "%s", log);
    s = dn_test_session(&lib, 1, 1);
    cr_assert_eq(lib.desc->api->device_info(s, &info, &err), 0);
    cr_expect_eq(info.api, 0);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* Runs one inference of 'lib' in a fresh session; returns y[0..9]. */
static void infer_once(const DnTestLib *lib, float *y)
{
    dnrt_session *s = dn_test_session(lib, 1, 1);
    float x[10];
    for (int i = 0; i < 10; i++) x[i] = (float)i - 3;
    const void *in[1] = {x};
    void *out[1] = {y};
    dnrt_error err = {0};
    cr_assert_eq(lib->desc->api->infer(s, 2, in, out, &err), 0, "%s", err.message);
    lib->desc->api->destroy(s);
}

/* The one regular file in 'dir' into 'path'; returns how many there are. */
static int only_file(const char *dir, char *path, size_t len)
{
    char cmd[600], out[1024];
    snprintf(cmd, sizeof cmd, "ls '%s'", dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0);
    int n = 0;
    for (char *save, *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save), n++)
        snprintf(path, len, "%s/%s", dir, l);
    return n;
}

Test(gpu_session, program_binaries_are_cached_and_a_bad_one_is_replaced)
{
    DnTestLib lib;
    compile_gpu(&lib);
    char dir[] = "/tmp/dnnc-clcache-XXXXXX", bin[700];
    cr_assert(mkdtemp(dir));
    setenv("DNRT_CACHE_DIR", dir, 1);
    float y0[10], y1[10], y2[10];
    infer_once(&lib, y0);
    cr_assert_eq(only_file(dir, bin, sizeof bin), 1, "no binary cached in %s", dir);
    cr_expect(strstr(bin, "/opencl-") && strstr(bin, ".bin"), "%s", bin);
    infer_once(&lib, y1); /* from the cached binary */
    dn_test_expect_close("cached program", y1, y0, 10, 0, 0);
    FILE *f = fopen(bin, "wb");
    cr_assert(f);
    fputs("not a program binary", f);
    fclose(f);
    infer_once(&lib, y2); /* the damaged binary is ignored and rewritten */
    dn_test_expect_close("after a damaged cache", y2, y0, 10, 0, 0);
    size_t len = 0;
    free(dn_test_slurp(bin, &len));
    cr_expect_gt(len, 100, "the damaged binary was not replaced (%zu bytes)", len);
    setenv("DNRT_CACHE_DIR", "off", 1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    dn_test_run(cmd, NULL, 0);
    dn_test_close(&lib);
}

/* dnnrun drives a GPU library through the descriptor as it does a CPU one:
 * training LeNet on the first 640 Fashion-MNIST images on OpenCL gives the
 * CPU's loss and accuracy, and the weights files move between the two. */
static void dnnrun(const char *args, char *out, size_t len)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s", DNNRUN_BIN, args);
    cr_assert_eq(dn_test_run(cmd, out, len), 0, "dnnrun %s:\n%s", args, out);
}

/* The "test accuracy ..." line of a dnnrun output. */
static const char *result_line(const char *out)
{
    const char *p = strstr(out, "test accuracy");
    cr_assert(p, "no accuracy in:\n%s", out);
    static char line[256];
    snprintf(line, sizeof line, "%.*s", (int)strcspn(p, "\n"), p);
    return line;
}

Test(gpu_session, dnnrun_trains_and_evaluates_a_gpu_library, .timeout = 300)
{
    char log[8192], out[16384], args[2048], cpu_line[256];
    DnTestLib gpu, cpu;
    cr_assert_eq(dn_test_compile_file("examples/lenet.dnn", "--target=opencl", &gpu, log, sizeof log), 0, "%s", log);
    cr_assert_eq(dn_test_compile_file("examples/lenet.dnn", "--target=cpu", &cpu, log, sizeof log), 0, "%s", log);
    char dir[] = "/tmp/dnnc-gpu-dnnrun-XXXXXX";
    cr_assert(mkdtemp(dir));
    snprintf(args, sizeof args, "info '%s'", gpu.so_path);
    dnnrun(args, out, sizeof out);
    cr_expect(strstr(out, "target: opencl"), "%s", out);
    snprintf(args, sizeof args, "train '%s' --limit 640 --save '%s/cpu.safetensors'", cpu.so_path, dir);
    dnnrun(args, out, sizeof out);
    snprintf(cpu_line, sizeof cpu_line, "%s", result_line(out));
    snprintf(args, sizeof args, "train '%s' --limit 640 --save '%s/gpu.safetensors'", gpu.so_path, dir);
    dnnrun(args, out, sizeof out);
    cr_expect_str_eq(result_line(out), cpu_line, "OpenCL training differs from the CPU's");
    /* each side's weights evaluate the same on the other side */
    static const char *const sides[2] = {"cpu", "gpu"};
    for (int w = 0; w < 2; w++) {
        char on_cpu[256];
        snprintf(args, sizeof args, "eval '%s' --limit 640 --weights '%s/%s.safetensors'", cpu.so_path, dir, sides[w]);
        dnnrun(args, out, sizeof out);
        snprintf(on_cpu, sizeof on_cpu, "%s", result_line(out));
        snprintf(args, sizeof args, "eval '%s' --limit 640 --weights '%s/%s.safetensors'", gpu.so_path, dir, sides[w]);
        dnnrun(args, out, sizeof out);
        cr_expect_str_eq(result_line(out), on_cpu, "the %s weights evaluate differently on OpenCL", sides[w]);
    }
    snprintf(args, sizeof args, "rm -rf '%s'", dir);
    dn_test_run(args, NULL, 0);
    dn_test_close(&gpu), dn_test_close(&cpu);
}

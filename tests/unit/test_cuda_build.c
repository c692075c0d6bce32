/* test_cuda_build.c -- the cuda target builds every example network, with
 * its training step, without a GPU: dnnc --target=cuda compiles the whole
 * rendered program with NVRTC into cubins for sm_80 and sm_90 and PTX for
 * compute_80, the library loads (no driver is needed to load it) and
 * describes its images, and ptxas accepts the PTX for sm_90.  Where the
 * CUDA toolkit is absent (CI), each test is skipped with a message saying
 * so; the OpenCL tests run the same kernel text.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/gpu/nvrtc.h"
#include "testlib.h"

/* Skips the test, saying why, when NVRTC cannot be loaded here. */
static void need_nvrtc(void)
{
    const char *why = NULL;
    if (!dn_nvrtc_available(&why)) cr_skip_test("the CUDA toolkit is absent: %s", why ? why : "NVRTC not found");
}

/* ptxas next to NVRTC's toolkit, or NULL. */
static const char *ptxas_path(void)
{
    static char p[600];
    const char *homes[] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    for (int i = 0; i < 3; i++) {
        if (!homes[i] || !*homes[i]) continue;
        snprintf(p, sizeof p, "%s/bin/ptxas", homes[i]);
        if (access(p, X_OK) == 0) return p;
    }
    return NULL;
}

static const dnrt_gpu_image *image(const dnrt_gpu_program *g, const char *arch)
{
    for (int32_t i = 0; i < g->nimages; i++)
        if (!strcmp(g->images[i].arch, arch)) return &g->images[i];
    return NULL;
}

/* Builds examples/<name>.dnn for cuda with 'flags' and checks its images. */
static void build_example(const char *name, const char *flags)
{
    need_nvrtc();
    char rel[128], log[16384], all[256];
    snprintf(rel, sizeof rel, "examples/%s.dnn", name);
    snprintf(all, sizeof all, "--target=cuda %s", flags);
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_file(rel, all, &lib, log, sizeof log), 0, "%s: %s", name, log);
    const dnrt_gpu_program *g = lib.desc->gpu;
    cr_assert(g && g->api == DNRT_GPU_CUDA, "%s: not a CUDA library", name);
    cr_expect(lib.desc->trains || strstr(flags, "--no-train"), "%s: no training step", name);
    cr_expect_gt(g->nkernels, 0);
    const char *want[] = {"sm_80", "sm_90", "compute_80"};
    for (int i = 0; i < 3; i++) {
        const dnrt_gpu_image *im = image(g, want[i]);
        cr_assert(im && im->size > 16, "%s: no %s image", name, want[i]);
        if (i < 2) cr_expect(!memcmp(im->data, "\177ELF", 4), "%s: the %s cubin is not ELF", name, want[i]);
    }
    const dnrt_gpu_image *ptx = image(g, "compute_80");
    cr_expect(strstr((const char *)ptx->data, ".entry k0_"), "%s: the PTX has no kernel k0", name);
    const char *ptxas = ptxas_path();
    if (!ptxas) {
        cr_log_warn("%s: ptxas not found next to NVRTC; the PTX was not assembled", name);
    } else {
        char path[] = "/tmp/dnnc-ptx-XXXXXX";
        int fd = mkstemp(path);
        cr_assert(fd >= 0);
        size_t len = strnlen((const char *)ptx->data, (size_t)ptx->size);
        cr_assert_eq(write(fd, ptx->data, len), (ssize_t)len);
        close(fd);
        char cmd[1400], out[8192];
        snprintf(cmd, sizeof cmd, "'%s' -arch=sm_90 '%s' -o /dev/null", ptxas, path);
        cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "%s: ptxas rejects the PTX:\n%s", name, out);
        unlink(path);
    }
    dn_test_close(&lib);
}

Test(cuda_build, lenet, .timeout = 600) { build_example("lenet", ""); }
Test(cuda_build, mlp, .timeout = 600) { build_example("mlp", ""); }
Test(cuda_build, alexnet, .timeout = 600) { build_example("alexnet", ""); }
Test(cuda_build, vgg16, .timeout = 600) { build_example("vgg16", ""); }
Test(cuda_build, resnet18, .timeout = 600) { build_example("resnet", ""); }
/* the operand rounding of --precision compiles for CUDA too */
Test(cuda_build, resnet18_inference_bf16, .timeout = 600) { build_example("resnet", "--no-train --precision=bf16"); }

Test(cuda_build, a_missing_toolkit_is_an_error_before_anything_is_built)
{
    const char *why = NULL;
    if (dn_nvrtc_available(&why)) cr_skip_test("the CUDA toolkit is installed here: nothing to check");
    char log[8192];
    DnTestLib lib;
    cr_assert_neq(dn_test_compile_file("examples/mlp.dnn", "--target=cuda", &lib, log, sizeof log), 0);
    cr_expect(strstr(log, "target 'cuda' is unavailable on this machine"), "%s", log);
}

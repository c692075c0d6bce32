/* test_nvrtc.c -- backends/gpu/nvrtc.c: CUDA source compiled by NVRTC into
 * one cubin per architecture and the PTX of the first one's virtual
 * architecture; the PTX assembles with the toolkit's ptxas; compile errors
 * and bad architectures are diagnostics.
 *
 * Machines without the CUDA toolkit (CI) cannot compile CUDA: the tests
 * that need NVRTC say so and skip; the architecture checks, which come
 * before NVRTC is loaded, run everywhere.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backends/gpu/nvrtc.h"
#include "testlib.h"

#define PTXAS "/usr/local/cuda/bin/ptxas"

static const char kernel_source[] = "extern \"C\" __global__ void scale_rows(float *y, const float *x, float s, long "
                                    "long n)\n"
                                    "{\n"
                                    "    __shared__ float tile[256];\n"
                                    "    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                                    "    tile[threadIdx.x] = i < n ? x[i] : 0.0f;\n"
                                    "    __syncthreads();\n"
                                    "    if (i < n) y[i] = tile[threadIdx.x] * s;\n"
                                    "}\n";

static void need_nvrtc(void)
{
    const char *why = NULL;
    if (!dn_nvrtc_available(&why))
        cr_skip("the CUDA toolkit is absent (NVRTC cannot be loaded), so CUDA cannot be compiled here: %s", why);
}

/* Every diagnostic of 'cx', one per line. */
static const char *diags(DnCtx *cx)
{
    static char all[16384];
    size_t at = 0;
    all[0] = 0;
    for (DnDiag *d = cx->diags; d && at < sizeof all; d = d->next)
        at += (size_t)snprintf(all + at, sizeof all - at, "%s\n", d->msg);
    return all;
}

static void expect_rejected(const char *const *archs, int n, const char *msg)
{
    DnCtx cx;
    dn_ctx_init(&cx);
    DnGpuImage *img = (DnGpuImage *)1;
    int nimg = 7;
    cr_expect_eq(dn_nvrtc_compile(&cx, kernel_source, archs, n, &img, &nimg), DN_ERR);
    cr_expect_null(img);
    cr_expect_eq(nimg, 0);
    cr_expect(strstr(diags(&cx), msg), "'%s' not in: %s", msg, diags(&cx));
    dn_ctx_free(&cx);
}

Test(nvrtc, compiles_a_cubin_per_arch_and_ptx)
{
    need_nvrtc();
    DnCtx cx;
    dn_ctx_init(&cx);
    const char *archs[] = {"sm_80", "sm_90"};
    DnGpuImage *img = NULL;
    int n = 0;
    cr_assert_eq(dn_nvrtc_compile(&cx, kernel_source, archs, 2, &img, &n), DN_OK, "%s", diags(&cx));
    cr_assert_eq(n, 3);
    cr_expect_str_eq(img[0].arch, "sm_80");
    cr_expect_str_eq(img[1].arch, "sm_90");
    cr_expect_str_eq(img[2].arch, "compute_80");
    for (int i = 0; i < 2; i++) {
        cr_assert_gt(img[i].size, 64);
        cr_expect(memcmp(img[i].data, "\177ELF", 4) == 0, "image %s is not an ELF cubin", img[i].arch);
    }
    const char *ptx = (const char *)img[2].data;
    cr_assert_eq(ptx[img[2].size - 1], 0, "the PTX keeps its NUL");
    cr_expect(strstr(ptx, ".entry") && strstr(ptx, "scale_rows"), "no kernel entry in the PTX");
    cr_expect(strstr(ptx, ".target sm_80"), "the PTX is not for compute_80");
    cr_expect(strstr(ptx, ".shared"), "the __shared__ array is not in the PTX");
    dn_nvrtc_free(img, n);
    dn_ctx_free(&cx);
}

Test(nvrtc, ptx_assembles_with_ptxas)
{
    need_nvrtc();
    if (access(PTXAS, X_OK) != 0) cr_skip("the toolkit's assembler " PTXAS " is absent: the PTX is not assembled");
    DnCtx cx;
    dn_ctx_init(&cx);
    const char *archs[] = {"sm_80"};
    DnGpuImage *img = NULL;
    int n = 0;
    cr_assert_eq(dn_nvrtc_compile(&cx, kernel_source, archs, 1, &img, &n), DN_OK, "%s", diags(&cx));
    cr_assert_eq(n, 2);
    char dir[256], path[300], cmd[800], out[4096];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-nvrtc");
    snprintf(path, sizeof path, "%s/kernels.ptx", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(img[1].data, 1, strlen((const char *)img[1].data), f), strlen((const char *)img[1].data));
    fclose(f);
    snprintf(cmd, sizeof cmd, "'%s' -arch=sm_90 '%s' -o /dev/null", PTXAS, path);
    cr_expect_eq(dn_test_run(cmd, out, sizeof out), 0, "ptxas failed:\n%s", out);
    dn_test_rmtree(dir);
    dn_nvrtc_free(img, n);
    dn_ctx_free(&cx);
}

Test(nvrtc, syntax_error_quotes_the_log)
{
    need_nvrtc();
    static const char bad[] = "extern \"C\" __global__ void broken(float *y)\n{\n    y[0] = 1.0f +;\n}\n";
    DnCtx cx;
    dn_ctx_init(&cx);
    const char *archs[] = {"sm_80", "sm_90"};
    DnGpuImage *img = (DnGpuImage *)1;
    int n = 5;
    cr_expect_eq(dn_nvrtc_compile(&cx, bad, archs, 2, &img, &n), DN_ERR);
    cr_expect_null(img);
    cr_expect_eq(n, 0);
    const char *d = diags(&cx);
    cr_expect(strstr(d, "cannot compile the kernels for sm_80"), "%s", d);
    cr_expect(strstr(d, "dnnc_kernels.cu(3)") && strstr(d, "error"), "NVRTC's log is not quoted: %s", d);
    cr_expect_eq(cx.nerr, 1, "one diagnostic, not one per architecture: %s", d);
    dn_ctx_free(&cx);
}

Test(nvrtc, arch_this_nvrtc_cannot_compile_for)
{
    need_nvrtc();
    const char *archs[] = {"sm_90", "sm_20"};
    expect_rejected(archs, 2, "does not compile for sm_20; it compiles for ");
}

/* Checked before NVRTC is loaded: these run without the toolkit. */
Test(nvrtc, bad_arch_strings)
{
    static const char *const bad[] = {"foo", "sm_8", "sm_1000", "sm_90a", "compute_80", "sm_", "SM_80", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char msg[100];
        snprintf(msg, sizeof msg, "--gpu-arch: '%s' is not an architecture such as sm_80", bad[i]);
        const char *archs[] = {"sm_80", bad[i]};
        expect_rejected(archs, 2, msg);
    }
    const char *twice[] = {"sm_80", "sm_90", "sm_80"};
    expect_rejected(twice, 3, "--gpu-arch: 'sm_80' is given twice");
    expect_rejected(twice, 0, "--gpu-arch: no architecture given");
}

Test(nvrtc, availability_says_why)
{
    const char *why = NULL;
    if (dn_nvrtc_available(&why)) {
        cr_expect_null(why, "no reason is given when NVRTC loads");
        cr_skip("NVRTC is installed here: the message for its absence is not shown");
    }
    cr_expect(why && strstr(why, "CUDA toolkit") && strstr(why, "CUDA_HOME") && strstr(why, "/usr/local/cuda/lib64"),
              "%s", why ? why : "(null)");
}

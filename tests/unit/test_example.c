/* test_example.c -- generated libraries used the way a C programmer would.
 *
 * classify: the example program of examples/classify.c (built by
 * examples/examples.cmake against the build's examples/lenet.so) runs on
 * weights from a short `dnnrun train` and prints its predictions, accuracy
 * and time per image.
 * two_libraries: lenet.so and mlp.so, both written by dnnc, are linked into
 * one program (cc prog.c lenet.so mlp.so); each must compute what the same
 * library computes when dlopened alone.  That holds only if the runtime
 * copy inside each library is hidden, so the two cannot bind to each
 * other's symbols. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

static char out[65536];

Test(example, classify)
{
    char exe[1024], so[1024], dir[64], cmd[4096];
    snprintf(exe, sizeof exe, "%s/examples/classify", DNNC_BUILD_DIR);
    snprintf(so, sizeof so, "%s/examples/lenet.so", DNNC_BUILD_DIR);
    struct stat st;
    cr_assert_eq(stat(exe, &st), 0, "%s missing: build the 'classify' target (cmake --build BUILD)", exe);
    cr_assert_eq(stat(so, &st), 0, "%s missing: build the 'lenet_so' target", so);
    dn_test_tmpdir(dir, sizeof dir, "dnnc-example");
    snprintf(cmd, sizeof cmd, "'%s' train '%s' --limit 8192 --epochs 1 --seed 5 --acc-every 0 --save %s/w.safetensors",
             DNNRUN_BIN, so, dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);

    snprintf(cmd, sizeof cmd, "'%s' %s/w.safetensors 200", exe, dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    cr_expect(strstr(out, "   0  predicted "), "%s", out);
    cr_expect(strstr(out, "true Ankle boot"), "first test image is an ankle boot: %s", out);
    cr_expect(strstr(out, "  19  predicted ") && !strstr(out, "  20  predicted "), "%s", out);
    cr_expect(strstr(out, "  ... (180 more)"), "%s", out);
    long correct = -1, total = -1;
    double pct = -1, us = -1;
    const char *acc = strstr(out, "accuracy: ");
    cr_assert_not_null(acc, "%s", out);
    cr_assert_eq(sscanf(acc, "accuracy: %ld/%ld = %lf%%", &correct, &total, &pct), 3, "%s", acc);
    cr_expect_eq(total, 200);
    /* 128 Adam steps reach about 70% on Fashion-MNIST; chance is 10%. */
    cr_expect_geq(correct, 100, "accuracy %ld/200 after a short training run", correct);
    const char *tpi = strstr(out, "time per image: ");
    cr_assert_not_null(tpi, "%s", out);
    cr_expect_eq(sscanf(tpi, "time per image: %lf us", &us), 1);
    cr_expect_gt(us, 0);

    snprintf(cmd, sizeof cmd, "'%s' %s/none.safetensors 5", exe, dir);
    cr_expect_eq(dn_test_run(cmd, out, sizeof out), 1, "%s", out);
    cr_expect(strstr(out, "none.safetensors"), "the error names the weights file: %s", out);
    dn_test_rmtree(dir);
}

/* The program that links both libraries: reads 7 images (raw f32) from
 * argv[3], loads argv[1] into lenet and argv[2] into mlp, prints the 70+70
 * logits as hex floats. */
static const char two_lib_prog[] = "#include <stdio.h>\n"
                                   "#include \"lenet.h\"\n"
                                   "#include \"mlp.h\"\n"
                                   "int main(int argc, char **argv) {\n"
                                   "    if (argc != 4) return 2;\n"
                                   "    static float x[7 * 784], a[70], b[70];\n"
                                   "    FILE *f = fopen(argv[3], \"rb\");\n"
                                   "    if (!f || fread(x, sizeof x, 1, f) != 1) return 3;\n"
                                   "    fclose(f);\n"
                                   "    dnrt_options o = {.threads = 1, .seed = 1};\n"
                                   "    dnrt_error e = {0};\n"
                                   "    lenet *l = lenet_create(&o, &e);\n"
                                   "    mlp *m = mlp_create(&o, &e);\n"
                                   "    if (!l || !m || lenet_load(l, argv[1], &e) || mlp_load(m, argv[2], &e)\n"
                                   "        || lenet_infer(l, 7, x, a, &e) || mlp_infer(m, 7, x, b, &e)) {\n"
                                   "        fprintf(stderr, \"error: %s\\n\", e.message);\n"
                                   "        return 1;\n"
                                   "    }\n"
                                   "    for (int i = 0; i < 70; i++) printf(\"lenet %a\\n\", a[i]);\n"
                                   "    for (int i = 0; i < 70; i++) printf(\"mlp %a\\n\", b[i]);\n"
                                   "    lenet_destroy(l);\n"
                                   "    mlp_destroy(m);\n"
                                   "    return 0;\n"
                                   "}\n";

/* Logits of 'dnn' for the 7 images 'x' through a dlopened library. */
static void dlopen_logits(const char *dnn, const char *weights, const float *x, float *logits)
{
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_file(dnn, "", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_api *api = lib.desc->api;
    dnrt_options o = {.threads = 1, .seed = 1};
    dnrt_error e = {0};
    dnrt_session *s = api->create(lib.desc, &o, &e);
    cr_assert_not_null(s, "%s", e.message);
    cr_assert_eq(api->load(s, weights, &e), 0, "%s", e.message);
    const void *in[1] = {x};
    void *outp[1] = {logits};
    cr_assert_eq(api->infer(s, 7, in, outp, &e), 0, "%s", e.message);
    api->destroy(s);
    dn_test_close(&lib);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    cr_assert_eq(fwrite(data, 1, len, f), len);
    fclose(f);
}

Test(example, two_libraries_in_one_program)
{
    char dir[64], cmd[4096], path[256];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-example");
    snprintf(cmd, sizeof cmd, "cd %s && '%s' '%s' -o lenet.so && '%s' '%s' -o mlp.so", dir, DNNC_BIN,
             dn_test_src("examples/lenet.dnn"), DNNC_BIN, dn_test_src("tests/golden/mlp_sgd.dnn"));
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/prog.c", dir);
    write_file(path, two_lib_prog, strlen(two_lib_prog));
    snprintf(cmd, sizeof cmd,
             "cd %s && cc -std=c11 -Wall -Wextra -Werror -I. prog.c %s/lenet.so %s/mlp.so -Wl,-rpath,%s -o prog %s",
             dir, dir, dir, dir, DNNC_LINK_FLAGS);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);

    /* Inputs and reference logits from the golden files (tests/golden/). */
    dnrt_st_file lg, mg;
    dnrt_error e = {0};
    cr_assert_eq(dnrt_st_read(dn_test_src("tests/golden/lenet_infer.safetensors"), &lg, &e), 0, "%s", e.message);
    cr_assert_eq(dnrt_st_read(dn_test_src("tests/golden/mlp_infer.safetensors"), &mg, &e), 0, "%s", e.message);
    const dnrt_st_tensor *x = dnrt_st_find(&lg, "image.b7"), *lref = dnrt_st_find(&lg, "logits.b7");
    const dnrt_st_tensor *x2 = dnrt_st_find(&mg, "image.b7"), *mref = dnrt_st_find(&mg, "logits.b7");
    cr_assert(x && lref && x2 && mref && x->nbytes == 7 * 784 * 4 && lref->nbytes == 70 * 4 && mref->nbytes == 70 * 4);
    snprintf(path, sizeof path, "%s/x.bin", dir);
    write_file(path, x->data, x->nbytes);

    char lw[1100], mw[1100];
    snprintf(lw, sizeof lw, "%s", dn_test_src("tests/golden/lenet_weights.safetensors"));
    snprintf(mw, sizeof mw, "%s", dn_test_src("tests/golden/mlp_weights.safetensors"));
    snprintf(cmd, sizeof cmd, "%s/prog '%s' '%s' %s/x.bin", dir, lw, mw, dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    float got_l[70], got_m[70];
    char *p = out;
    for (int i = 0; i < 140; i++) {
        char tag[8];
        int used = 0;
        float *dst = i < 70 ? &got_l[i] : &got_m[i - 70];
        cr_assert_eq(sscanf(p, "%7s %a%n", tag, dst, &used), 2, "bad output line %d: %s", i, p);
        cr_assert_str_eq(tag, i < 70 ? "lenet" : "mlp");
        p += used;
    }

    /* The mlp golden input differs from lenet's: the program fed lenet's
     * images to both, so compare mlp with a dlopened mlp on those images. */
    float solo_l[70], solo_m[70];
    dlopen_logits("examples/lenet.dnn", lw, x->data, solo_l);
    dlopen_logits("tests/golden/mlp_sgd.dnn", mw, x->data, solo_m);
    cr_expect_eq(dn_test_close_enough(got_l, solo_l, 70, 1e-6, 1e-7), -1,
                 "lenet linked with mlp differs from lenet alone");
    cr_expect_eq(dn_test_close_enough(got_m, solo_m, 70, 1e-6, 1e-7), -1,
                 "mlp linked with lenet differs from mlp alone");
    cr_expect_eq(dn_test_close_enough(got_l, lref->data, 70, 1e-4, 1e-5), -1, "lenet logits differ from PyTorch's");
    dnrt_st_free(&lg);
    dnrt_st_free(&mg);
    dn_test_rmtree(dir);
}

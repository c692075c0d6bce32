/* test_dnnrun.c -- the generic runner, tools/dnnrun.c, run as a program.
 *
 * Usage errors exit 2, runtime errors exit 1, and every message names the
 * file at fault: damaged IDX files (made here, small), a library without
 * dnnc_descriptor, a model that does not fit Fashion-MNIST.  With the real
 * dnnc-compiled LeNet: `info`, a short `train`, `eval` and `infer` on the
 * saved weights, and a failed save that leaves the previous weights intact.
 * Nothing crashes or hangs: bad labels and image sizes, FIFOs as data,
 * library or weights, an unwritable --save path (found before training),
 * oversized IDX headers, damaged gzip data and huge batches are errors
 * naming the file, with status 1.  Training that goes non-finite or
 * diverges stops with status 1 and never saves over the weights. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#define FMNIST_DIR "/usr/share/datasets/fashion-mnist"

static char out[65536];

/* Runs dnnrun with 'args'; returns its exit status, output in 'out'. */
static int dnnrun(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s", DNNRUN_BIN, args);
    return dn_test_run(cmd, out, sizeof out);
}

/* Compiles examples/lenet.dnn; the library's path goes to 'so'. */
static void compile_lenet(char *so, size_t len)
{
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_file("examples/lenet.dnn", "", &lib, log, sizeof log), 0, "%s", log);
    snprintf(so, len, "%s", lib.so_path);
    dn_test_close(&lib);
}

/* Writes an IDX file: big-endian 'magic', 'ndims' dims, then 'nbytes' bytes. */
static void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndims, size_t nbytes)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    uint32_t words[4] = {magic};
    for (int i = 0; i < ndims; i++) words[i + 1] = dims[i];
    for (int i = 0; i <= ndims; i++) {
        uint8_t be[4] = {words[i] >> 24, words[i] >> 16, words[i] >> 8, words[i]};
        fwrite(be, 1, 4, f);
    }
    for (size_t i = 0; i < nbytes; i++) fputc((int)(i % 10), f);
    fclose(f);
}

/* A training split in 'dir' with 'nimg' images of which 'present' are in
 * the file, 'nlab' labels, and image magic 'magic'. */
static void write_split(const char *dir, uint32_t magic, uint32_t nimg, uint32_t present, uint32_t nlab)
{
    char path[600];
    uint32_t idims[3] = {nimg, 28, 28}, ldims[1] = {nlab};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, magic, idims, 3, (size_t)present * 784);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte", dir);
    write_idx(path, 0x801, ldims, 1, nlab);
}

static int read_file(const char *path, char **data, long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    *len = ftell(f);
    rewind(f);
    *data = malloc(*len ? *len : 1);
    size_t got = fread(*data, 1, *len, f);
    fclose(f);
    return got == (size_t)*len ? 0 : -1;
}

Test(dnnrun, usage_errors_exit_2)
{
    cr_expect_eq(dnnrun(""), 2, "%s", out);
    cr_expect(strstr(out, "missing command"), "%s", out);
    cr_expect_eq(dnnrun("frobnicate x.so"), 2, "%s", out);
    cr_expect(strstr(out, "unknown command 'frobnicate'"), "%s", out);
    cr_expect_eq(dnnrun("train"), 2, "%s", out);
    cr_expect(strstr(out, "missing MODEL.so"), "%s", out);
    cr_expect_eq(dnnrun("train x.so"), 2, "%s", out);
    cr_expect(strstr(out, "--save"), "%s", out);
    cr_expect_eq(dnnrun("eval x.so"), 2, "%s", out);
    cr_expect(strstr(out, "--weights"), "%s", out);
    cr_expect_eq(dnnrun("train x.so --save w --epochs zero"), 2, "%s", out);
    cr_expect(strstr(out, "--epochs expects an integer"), "%s", out);
    cr_expect_eq(dnnrun("train x.so --save w --data mnist"), 2, "%s", out);
    cr_expect(strstr(out, "unknown dataset 'mnist'"), "%s", out);
    cr_expect_eq(dnnrun("info x.so --bogus"), 2, "%s", out);
    cr_expect(strstr(out, "unknown option '--bogus'"), "%s", out);
    cr_expect_eq(dnnrun("--help"), 0, "%s", out);
    cr_expect(strstr(out, "usage: dnnrun COMMAND MODEL.so") && strstr(out, "--no-standardize"), "%s", out);
}

Test(dnnrun, missing_library_and_no_descriptor)
{
    char dir[64], cmd[512];
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-test");
    snprintf(cmd, sizeof cmd, "info %s/none.so", dir);
    cr_expect_eq(dnnrun(cmd), 1, "%s", out);
    cr_expect(strstr(out, "none.so: No such file"), "%s", out);
    /* A real shared library that dnnc did not write. */
    snprintf(cmd, sizeof cmd, "echo 'int answer = 42;' > %s/x.c && cc -shared -fPIC -o %s/plain.so %s/x.c", dir, dir,
             dir);
    cr_assert_eq(dn_test_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(cmd, sizeof cmd, "info %s/plain.so", dir);
    cr_expect_eq(dnnrun(cmd), 1, "%s", out);
    cr_expect(strstr(out, "plain.so: no 'dnnc_descriptor' symbol"), "%s", out);
    dn_test_rmtree(dir);
}

Test(dnnrun, model_not_fashion_mnist_shaped)
{
    static const char src[] = "model flat(x: f32[N, 784]) -> (logits: f32[N, 10]) {\n"
                              "  logits = fc: dense(x, 10)\n"
                              "}\n";
    DnTestLib lib;
    char log[16384], args[1200];
    cr_assert_eq(dn_test_compile_text(src, "", &lib, log, sizeof log), 0, "%s", log);
    snprintf(args, sizeof args, "eval %s --weights w.safetensors", lib.so_path);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "does not take one f32[N, 1, 28, 28] image input"), "%s", out);
    snprintf(args, sizeof args, "train %s --save w.safetensors", lib.so_path);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "model.so: model 'flat'"), "%s", out);
    dn_test_close(&lib);
}

Test(dnnrun, damaged_idx_files_named)
{
    char so[512], dir[64], args[1400], path[600];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-test");
    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data fashion-mnist:%s", so, dir, dir);

    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "train-images-idx3-ubyte.gz: cannot open: No such file"), "missing file: %s", out);

    write_split(dir, 0x802, 4, 4, 4);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte: wrong magic 0x00000802", dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, path), "wrong magic: %s", out);

    write_split(dir, 0x803, 100, 50, 100);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte: truncated", dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, path), "truncated: %s", out);

    /* A header that declares 800 MB over 10 images' bytes: memory follows the
     * data that arrives, not the claim (under a 400 MB address-space limit
     * the claim could not be allocated, and the error would be "out of memory").
     * An AddressSanitizer build reserves terabytes of shadow address space,
     * and an OpenCL platform (the *_opencl run) its compiler's, so there only
     * the message is checked; the plain CPU build checks the limit. */
    write_split(dir, 0x803, 1000000, 10, 1000000);
    char cmd[8192];
#ifdef __SANITIZE_ADDRESS__
    bool limit = false;
    cr_log_info("sanitized build: the 400 MB address-space limit is not applied");
#else
    bool limit = !strcmp(dn_test_target(), "cpu");
    if (!limit) cr_log_info("target %s: the 400 MB address-space limit is not applied", dn_test_target());
#endif
    snprintf(cmd, sizeof cmd, "%s'%s' %s", limit ? "ulimit -v 400000; " : "", DNNRUN_BIN, args);
    cr_expect_eq(dn_test_run(cmd, out, sizeof out), 1, "%s", out);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte: truncated", dir);
    cr_expect(strstr(out, path), "a huge header over a short file: %s", out);

    write_split(dir, 0x803, 100, 100, 90);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte holds 100 images but %s/train-labels-idx1-ubyte holds 90",
             dir, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, path), "count mismatch: %s", out);

    uint32_t bad[3] = {4, 0, 28};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0x803, bad, 3, 0);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "train-images-idx3-ubyte: inconsistent dimensions"), "zero dim: %s", out);
    dn_test_rmtree(dir);
}

Test(dnnrun, info_lenet)
{
    char so[512], args[600];
    compile_lenet(so, sizeof so);
    snprintf(args, sizeof args, "info %s", so);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "model lenet"), "%s", out);
    cr_expect(strstr(out, "image") && strstr(out, "f32[N, 1, 28, 28]"), "%s", out);
    cr_expect(strstr(out, "i32[N]  (train only)"), "%s", out);
    cr_expect(strstr(out, "conv1.weight") && strstr(out, "f32[6, 1, 5, 5]"), "%s", out);
    cr_expect(strstr(out, "fc3.bias") && strstr(out, "f32[10]"), "%s", out);
    cr_expect(strstr(out, "parameters: 61706"), "%s", out);
    cr_expect(strstr(out, "trains: yes"), "%s", out);
    cr_expect(strstr(out, "infer arena bytes:"), "%s", out);
}

Test(dnnrun, train_eval_infer_and_safe_save)
{
    char so[512], dir[64], args[1400], w[128];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-test");
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(args, sizeof args, "train %s --data fashion-mnist:%s --epochs 1 --batch 64 --seed 3 --limit 512 --save %s",
             so, FMNIST_DIR, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "training lenet on 512 images"), "%s", out);
    cr_expect(strstr(out, "epoch 1/1  step 8/8  loss"), "%s", out);
    cr_expect(strstr(out, "test accuracy"), "%s", out);
    cr_expect(strstr(out, "saved "), "%s", out);
    struct stat st;
    cr_assert_eq(stat(w, &st), 0, "no weights file written");

    snprintf(args, sizeof args, "eval %s --weights %s --limit 1000", so, w);
    cr_expect_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "test accuracy") && strstr(out, "(1000 images), test loss"), "%s", out);
    snprintf(args, sizeof args, "infer %s --weights %s --count 3", so, w);
    cr_expect_eq(dnnrun(args), 0, "%s", out);
    cr_expect(strstr(out, "    2  predicted") && strstr(out, "true Trouser") && strstr(out, "of 3 correct"), "%s", out);

    char *before, *after;
    long nbefore, nafter;
    cr_assert_eq(read_file(w, &before, &nbefore), 0);
    /* A save into a missing folder fails with a message naming the path. */
    snprintf(args, sizeof args, "train %s --resume %s --limit 64 --save %s/missing/w.safetensors", so, w, dir);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "missing/w.safetensors"), "%s", out);
    /* A save over the same file that fails half-way (file size limit: the
     * runtime's temporary file cannot grow) must leave the old file whole. */
    snprintf(args, sizeof args, "ulimit -f 64; '%s' train %s --resume %s --limit 64 --save %s", DNNRUN_BIN, so, w, w);
    cr_expect_eq(dn_test_run(args, out, sizeof out), 1, "the save should have failed: %s", out);
    cr_expect(strstr(out, "cannot save the weights") && strstr(out, "w.safetensors"), "%s", out);
    cr_assert_eq(read_file(w, &after, &nafter), 0);
    cr_expect(nbefore == nafter && memcmp(before, after, nbefore) == 0, "weights file changed by a failed save");
    free(before);
    free(after);
    snprintf(args, sizeof args, "eval %s --weights %s --limit 100", so, w);
    cr_expect_eq(dnnrun(args), 0, "old weights unreadable after a failed save: %s", out);
    dn_test_rmtree(dir);
}

/* ---- training that goes non-finite or diverges ---------------------------------- */

/* Expects 'path' to hold exactly 'len' bytes 'data'. */
static void expect_unchanged(const char *path, const char *data, long len, const char *when)
{
    char *now = NULL;
    long nnow = 0;
    cr_assert_eq(read_file(path, &now, &nnow), 0, "%s: %s unreadable", when, path);
    cr_expect(nnow == len && memcmp(now, data, len) == 0, "%s: %s changed", when, path);
    free(now);
}

/* --lr 1e30 sends LeNet's weights to ~1e30 in the first step, and the
 * second step's loss is NaN: dnnrun stops there, names the epoch and step,
 * exits 1 and leaves --save (here also --resume) byte-identical; so does a
 * run that diverges (--diverge), and one resumed from weights that are
 * already NaN.  --diverge takes 0 or a factor > 1. */
Test(dnnrun, nonfinite_or_diverged_training_keeps_the_weights)
{
    char so[512], dir[64], args[1400], w[128], wnan[128];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-nonfinite");
    snprintf(w, sizeof w, "%s/w.safetensors", dir);
    snprintf(args, sizeof args, "train %s --data fashion-mnist:%s --limit 512 --save %s", so, FMNIST_DIR, w);
    cr_assert_eq(dnnrun(args), 0, "%s", out);
    char *good;
    long ngood;
    cr_assert_eq(read_file(w, &good, &ngood), 0);

    snprintf(args, sizeof args, "train %s --data fashion-mnist:%s --limit 512 --lr 1e30 --resume %s --save %s", so,
             FMNIST_DIR, w, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "dnnrun: error: epoch 1, step 2 of 8 went non-finite: train_step: the loss is not finite "
                          "(nan) at step 10 (after 9); parameters, optimizer state and statistics unchanged"),
              "%s", out);
    cr_expect(strstr(out, "training stopped, --save") && strstr(out, "not written (it keeps what it held before)"),
              "%s", out);
    cr_expect_null(strstr(out, "saved "), "%s", out);
    expect_unchanged(w, good, ngood, "--lr 1e30");

    snprintf(args, sizeof args,
             "train %s --data fashion-mnist:%s --limit 512 --lr 0.5 --diverge 10 --resume %s --save %s", so, FMNIST_DIR,
             w, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "dnnrun: error: epoch 1, step ") && strstr(out, "training diverged (--diverge)") &&
                  strstr(out, "more than 10 times the mean loss"),
              "%s", out);
    cr_expect_null(strstr(out, "saved "), "%s", out);
    expect_unchanged(w, good, ngood, "--diverge 10");

    /* the same weights with one NaN in conv1.weight */
    dnrt_st_file f;
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(w, &f, &err), 0, "%s", err.message);
    dnrt_st_tensor *t = malloc(sizeof *t * (size_t)f.ntensors);
    float *bad = NULL;
    for (int i = 0; i < f.ntensors; i++) {
        t[i] = f.tensors[i];
        if (!strcmp(t[i].name, "conv1.weight")) {
            bad = malloc(t[i].nbytes);
            memcpy(bad, t[i].data, t[i].nbytes);
            bad[7] = NAN;
            t[i].data = bad;
        }
    }
    cr_assert_not_null(bad);
    snprintf(wnan, sizeof wnan, "%s/nan.safetensors", dir);
    cr_assert_eq(dnrt_st_write(wnan, f.ntensors, t, f.nmeta, f.meta_keys, f.meta_values, &err), 0, "%s", err.message);
    free(t), free(bad);
    dnrt_st_free(&f);
    snprintf(args, sizeof args, "train %s --data fashion-mnist:%s --limit 512 --resume %s --save %s", so, FMNIST_DIR,
             wnan, w);
    cr_expect_eq(dnnrun(args), 1, "%s", out);
    cr_expect(strstr(out, "epoch 1, step 1 of 8 went non-finite") &&
                  strstr(out, "state tensor 'conv1.weight' was not finite before the step (element 7 is nan)"),
              "%s", out);
    expect_unchanged(w, good, ngood, "--resume with a NaN");

    snprintf(args, sizeof args, "train %s --save %s --diverge 1", so, w);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect(strstr(out, "--diverge expects 0 (off) or a factor > 1, got '1'"), "%s", out);
    snprintf(args, sizeof args, "train %s --save %s --diverge nan", so, w);
    cr_expect_eq(dnnrun(args), 2, "%s", out);
    cr_expect_eq(dnnrun("--help"), 0, "%s", out);
    cr_expect(strstr(out, "--diverge F") && strstr(out, "infinite (the library refuses it"), "%s", out);
    free(good);
    dn_test_rmtree(dir);
}

/* ---- data, libraries and weights that must not crash or hang ------------------- */

/* Writes the 'split' ("train" or "t10k") of a small data set into 'dir':
 * 'n' images of 'side' x 'side' pixels with labels i % 10, but 'bad' at
 * index 'at' (none when 'at' < 0). */
static void write_fashion(const char *dir, const char *split, uint32_t n, uint32_t side, int at, int bad)
{
    char path[600];
    uint32_t idims[3] = {n, side, side};
    snprintf(path, sizeof path, "%s/%s-images-idx3-ubyte", dir, split);
    write_idx(path, 0x803, idims, 3, (size_t)n * side * side);
    snprintf(path, sizeof path, "%s/%s-labels-idx1-ubyte", dir, split);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f, "%s", path);
    uint8_t head[8] = {0, 0, 8, 1, n >> 24, n >> 16, n >> 8, n};
    fwrite(head, 1, 8, f);
    for (uint32_t i = 0; i < n; i++) fputc((int)i == at ? bad : (int)(i % 10), f);
    cr_assert_eq(fclose(f), 0);
}

/* Runs 'dnnrun ARGS' under a 10 s timeout (status 124: it hung). */
static int dnnrun_timed(const char *args)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "timeout 10 '%s' %s", DNNRUN_BIN, args);
    return dn_test_run(cmd, out, sizeof out);
}

/* A label outside 0..9 (10, 200, 255) or images that are not 28x28, in
 * either split, is an error naming the file, the label and its index, or
 * the image size; they used to be read from the freed data set (a crash,
 * or "images are 0x0"). */
Test(dnnrun, labels_and_image_sizes_checked)
{
    char so[512], dir[64], args[1400], want[600];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-labels");
    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data fashion-mnist:%s --epochs 1", so, dir, dir);
    static const char *const splits[] = {"train", "t10k"};
    static const int bad[] = {10, 200, 255};
    for (int s = 0; s < 2; s++)
        for (int b = 0; b < 3; b++) {
            write_fashion(dir, "train", 4, 28, s == 0 ? 2 : -1, bad[b]);
            write_fashion(dir, "t10k", 4, 28, s == 1 ? 2 : -1, bad[b]);
            cr_expect_eq(dnnrun_timed(args), 1, "%s label %d: %s", splits[s], bad[b], out);
            snprintf(want, sizeof want,
                     "dnnrun: error: %s/%s-labels-idx1-ubyte: label %d at index 2 is not a class 0..9", dir, splits[s],
                     bad[b]);
            cr_expect(strstr(out, want), "%s label %d: %s", splits[s], bad[b], out);
        }
    for (int s = 0; s < 2; s++) {
        write_fashion(dir, "train", 4, s == 0 ? 32 : 28, -1, 0);
        write_fashion(dir, "t10k", 4, s == 1 ? 32 : 28, -1, 0);
        cr_expect_eq(dnnrun_timed(args), 1, "%s 32x32: %s", splits[s], out);
        snprintf(want, sizeof want, "dnnrun: error: %s/%s-images-idx3-ubyte: images are 32x32, the model needs 28x28",
                 dir, splits[s]);
        cr_expect(strstr(out, want), "%s 32x32: %s", splits[s], out);
    }
    write_fashion(dir, "train", 4, 28, -1, 0);
    write_fashion(dir, "t10k", 4, 28, -1, 0);
    cr_expect_eq(dnnrun_timed(args), 0, "valid data: %s", out);
    dn_test_rmtree(dir);
}

/* A FIFO as a data file, the library, --weights or --resume is refused
 * at once (each open used to wait forever for a writer). */
Test(dnnrun, fifos_are_refused)
{
    char so[512], dir[64], args[1400], want[600], fifo[128];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-fifo");
    write_fashion(dir, "train", 4, 28, -1, 0);
    write_fashion(dir, "t10k", 4, 28, -1, 0);
    snprintf(fifo, sizeof fifo, "%s/t10k-images-idx3-ubyte", dir);
    cr_assert_eq(unlink(fifo), 0);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data fashion-mnist:%s", so, dir, dir);
    cr_expect_eq(dnnrun_timed(args), 1, "FIFO data (124: it hung): %s", out);
    snprintf(want, sizeof want, "dnnrun: error: %s: cannot open: not a regular file", fifo);
    cr_expect(strstr(out, want), "%s", out);

    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    snprintf(args, sizeof args, "info %s", fifo);
    cr_expect_eq(dnnrun_timed(args), 1, "FIFO library (124: it hung): %s", out);
    snprintf(want, sizeof want, "dnnrun: error: %s: not a regular file", fifo);
    cr_expect(strstr(out, want), "%s", out);
    snprintf(args, sizeof args, "eval %s --weights %s --data fashion-mnist:%s", so, fifo, dir);
    cr_expect_eq(dnnrun_timed(args), 1, "FIFO weights (124: it hung): %s", out);
    snprintf(want, sizeof want, "dnnrun: error: --weights: %s: not a regular file", fifo);
    cr_expect(strstr(out, want), "%s", out);
    snprintf(args, sizeof args, "train %s --resume %s --save %s/w.safetensors --data fashion-mnist:%s", so, fifo, dir,
             dir);
    cr_expect_eq(dnnrun_timed(args), 1, "FIFO --resume (124: it hung): %s", out);
    snprintf(want, sizeof want, "dnnrun: error: --resume: %s: not a regular file", fifo);
    cr_expect(strstr(out, want), "%s", out);
    dn_test_rmtree(dir);
}

/* A --save path that cannot be written fails before any training (it used
 * to fail after the first epoch): a missing folder, a "folder" that is a
 * file, a folder or a FIFO as the file, and (not as root, who may write
 * anywhere) a read-only folder.  The check leaves no file behind. */
Test(dnnrun, save_path_checked_before_training)
{
    char so[512], dir[64], args[1400], path[256], want[600];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-save");
    write_fashion(dir, "train", 4, 28, -1, 0);
    write_fashion(dir, "t10k", 4, 28, -1, 0);
    snprintf(path, sizeof path, "%s/file", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/ro", dir);
    cr_assert_eq(mkdir(path, 0555), 0);
    static const struct {
        const char *save, *folder, *why;
    } cases[] = {
        {"missing/w.safetensors", "missing", "No such file or directory"},
        {"file/w.safetensors", "file", "Not a directory"},
        {"ro/w.safetensors", "ro", "Permission denied"},
    };
    for (int i = 0; i < 3; i++) {
        if (i == 2 && geteuid() == 0) {
            cr_log_info("running as root: the read-only folder case is skipped");
            continue;
        }
        snprintf(args, sizeof args, "train %s --save %s/%s --data fashion-mnist:%s", so, dir, cases[i].save, dir);
        cr_expect_eq(dnnrun_timed(args), 1, "%s: %s", cases[i].save, out);
        snprintf(want, sizeof want, "dnnrun: error: --save %s/%s: cannot create a file in the folder '%s/%s': %s", dir,
                 cases[i].save, dir, cases[i].folder, cases[i].why);
        cr_expect(strstr(out, want), "%s: %s", cases[i].save, out);
        cr_expect_null(strstr(out, "training "), "%s: training started: %s", cases[i].save, out);
    }
    snprintf(args, sizeof args, "train %s --save %s --data fashion-mnist:%s", so, dir, dir);
    cr_expect_eq(dnnrun_timed(args), 1, "%s", out);
    snprintf(want, sizeof want, "dnnrun: error: --save %s: is a folder", dir);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect_null(strstr(out, "training "), "%s", out);
    /* A FIFO stands for a device such as /dev/null, which the save's rename
     * would replace. */
    snprintf(path, sizeof path, "%s/fifo", dir);
    cr_assert_eq(mkfifo(path, 0600), 0);
    snprintf(args, sizeof args, "train %s --save %s --data fashion-mnist:%s", so, path, dir);
    cr_expect_eq(dnnrun_timed(args), 1, "%s", out);
    snprintf(want, sizeof want, "dnnrun: error: --save %s: not a regular file", path);
    cr_expect(strstr(out, want), "%s", out);
    cr_expect_null(strstr(out, "training "), "%s", out);
    unlink(path);

    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data fashion-mnist:%s", so, dir, dir);
    cr_expect_eq(dnnrun_timed(args), 0, "%s", out);
    cr_expect(strstr(out, "saved "), "%s", out);
    snprintf(args, sizeof args, "ls -A '%s'", dir);
    dn_test_run(args, out, sizeof out);
    cr_expect_str_eq(out,
                     "file\nro\nt10k-images-idx3-ubyte\nt10k-labels-idx1-ubyte\ntrain-images-idx3-ubyte\n"
                     "train-labels-idx1-ubyte\nw.safetensors\n",
                     "leftovers: %s", out);
    dn_test_rmtree(dir);
}

/* Dimensions whose product wraps around 64 bits (used to pass the size
 * check), damaged gzip data, and a --batch far beyond the data (its
 * buffer sizes used to overflow) are errors or work, never crashes. */
Test(dnnrun, oversized_headers_damaged_gzip_and_huge_batches)
{
    char so[512], dir[64], args[1400], want[600], path[256];
    compile_lenet(so, sizeof so);
    dn_test_tmpdir(dir, sizeof dir, "dnnrun-huge");
    write_fashion(dir, "train", 4, 28, -1, 0);
    write_fashion(dir, "t10k", 4, 28, -1, 0);
    snprintf(args, sizeof args, "train %s --save %s/w.safetensors --data fashion-mnist:%s --batch 4611686018427387904",
             so, dir, dir);
    cr_expect_eq(dnnrun_timed(args), 0, "%s", out);
    cr_expect(strstr(out, "epoch 1/1  step 1/1"), "%s", out);

    /* 2147479016 * 92682 * 92682 = 2^64 + 8504094368 */
    uint32_t wrap[3] = {2147479016u, 92682, 92682};
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte", dir);
    write_idx(path, 0x803, wrap, 3, 0);
    cr_expect_eq(dnnrun_timed(args), 1, "%s", out);
    snprintf(want, sizeof want, "%s: the header's dimensions make more than 17179869184 bytes", path);
    cr_expect(strstr(out, want), "%s", out);

    write_fashion(dir, "train", 4, 28, -1, 0);
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    static const uint8_t junk[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    fwrite(junk, 1, sizeof junk, f);
    fclose(f);
    cr_expect_eq(dnnrun_timed(args), 1, "%s", out);
    snprintf(want, sizeof want, "%s: damaged gzip data: ", path);
    cr_expect(strstr(out, want), "%s", out);
    dn_test_rmtree(dir);
}

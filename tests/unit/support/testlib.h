/* testlib.h -- helpers shared by the Criterion suites.
 * compile.c: run the real dnnc on a .dnn (file or inline text) and dlopen
 * the library it writes; the tests then drive it through its descriptor,
 * exactly as a user's program would. */
#ifndef DN_TESTLIB_H
#define DN_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include "dnrt.h"
#include "runtime/safetensors.h"

typedef struct DnTestLib {
    void *handle;                /* dlopen handle */
    const dnrt_model_desc *desc; /* dnnc_descriptor */
    char so_path[512], h_path[512];
} DnTestLib;

/* Writes 'source' to a fresh temporary folder as model.dnn, runs
 *   $DNNC_BIN model.dnn -o model.so <flags>
 * and dlopens the result.  Returns 0 on success; on failure returns -1 and
 * copies dnnc's stderr (or the dlopen error) into 'log' (may be NULL). */
int dn_test_compile_text(const char *source, const char *flags, DnTestLib *lib, char *log, size_t loglen);
/* Same for an existing file (path relative to the source tree if not absolute). */
/* Both compile for dn_test_target() unless 'flags' names a --target. */
int dn_test_compile_file(const char *path, const char *flags, DnTestLib *lib, char *log, size_t loglen);
void dn_test_close(DnTestLib *lib);
/* The target the suites compile for: $DNNC_TEST_TARGET, else "cpu".  tests.cmake
 * runs the golden, optimizer, augmentation, training and non-finite suites a
 * second time with DNNC_TEST_TARGET=opencl (their *_opencl tests). */
const char *dn_test_target(void);
/* Runs a shell command, captures stdout+stderr into 'out'; returns the exit status (or -1). */
int dn_test_run(const char *cmd, char *out, size_t outlen);
/* Max-abs-scaled comparison of docs/design.md: |got - ref| <= rtol * max|ref| + atol for all i.
 * Returns the index of the first failing element, or -1 when all pass. */
int64_t dn_test_close_enough(const float *got, const float *ref, int64_t n, double rtol, double atol);
/* Path of a file in the source tree (static buffer per call slot, 4 slots). */
const char *dn_test_src(const char *rel);

/* ---- golden.c (Criterion assertions of the calling test) ---------------- */
/* Reads tests/golden/<name>.safetensors into 'f' (asserts it reads). */
void dn_test_golden_open(const char *name, dnrt_st_file *f);
/* The data of tensor 'name' of 'f', asserting it exists with 'dtype' and
 * 'count' elements (a negative dtype or count: not checked). */
const void *dn_test_tensor(const dnrt_st_file *f, const char *name, int32_t dtype, int64_t count);
/* Element count of a descriptor's static shape (dims as written). */
int64_t dn_test_desc_numel(const dnrt_tensor_desc *t);
/* Elements of descriptor tensor 't' at batch n (its N axis, dim -1, = n). */
int64_t dn_test_desc_count(const dnrt_tensor_desc *t, int64_t n);
/* Runs the library's infer at batch n on the golden tensors '<prefix>.<input
 * name>' (of the descriptor's dtypes) and compares every output (f32) with '<prefix>.<output name>'. */
void dn_test_expect_outputs(const DnTestLib *lib, dnrt_session *s, const dnrt_st_file *golden, const char *prefix,
                            int64_t n, double rtol, double atol);
/* Expects dn_test_close_enough(got, ref, n, rtol, atol) to pass, naming
 * 'what' and the first failing element otherwise. */
void dn_test_expect_close(const char *what, const float *got, const float *ref, int64_t n, double rtol, double atol);
/* Writes the tensors 'names' of 'f' (at most 64) to a new file made from
 * the mkstemp template 'path' (the caller unlinks it). */
void dn_test_write_tensors(const dnrt_st_file *f, const char *const *names, int n, char *path);
/* The golden tensors '<pre>.<name>' of want[0..n), in order, into in[]
 * (asserting each dtype and count; an entry whose name is NULL is
 * skipped); returns how many it stored. */
typedef struct DnTestInput {
    const char *name;
    int32_t dtype;
    int64_t count;
} DnTestInput;
int dn_test_golden_inputs(const dnrt_st_file *f, const char *pre, const DnTestInput *want, int n, const void **in);
/* Same for the tensors of 'f' named '<group>.<under>.*', written as
 * '<under>.*'; asserts there are exactly 'want' of them (at most 64). */
void dn_test_write_under(const dnrt_st_file *f, const char *group, const char *under, int want, char *path);
/* A golden file whose metadata 'source' is the model: compiled with the
 * real dnnc, a session (2 threads, seed 1), the golden 'params' loaded. */
typedef struct DnTestGoldenModel {
    dnrt_st_file g;
    DnTestLib lib;
    dnrt_session *s;
} DnTestGoldenModel;
void dn_test_golden_model_open(DnTestGoldenModel *G, const char *name, const char *const *params, int nparams);
void dn_test_golden_model_close(DnTestGoldenModel *G);
/* One training step at batch n on the golden 'train.<input>' tensors:
 * expects the loss 'train.loss' and, for each of 'params', the gradient
 * 'grad.<param>' as SGD's momentum buffer after that first step. */
void dn_test_expect_sgd_step(DnTestGoldenModel *G, int64_t n, const char *const *params, int nparams, double rtol,
                             double atol);
/* The two checks of a golden model test, each opening and closing the model
 * 'name' with 'params' loaded: every one of its 'noutputs' outputs at each
 * batch size of 'batches' (prefix 'b<n>'), and the SGD step at batch n. */
typedef struct DnTestGoldenSpec {
    const char *name;
    const char *const *params;
    int nparams, noutputs;
    int64_t batches[2], train_n;
    double rtol, atol;
} DnTestGoldenSpec;
void dn_test_golden_outputs(const DnTestGoldenSpec *t);
void dn_test_golden_sgd_step(const DnTestGoldenSpec *t);

/* ---- files.c ------------------------------------------------------------ */
/* Makes a fresh folder /tmp/<tag>-XXXXXX into 'dir' (asserts it could). */
void dn_test_tmpdir(char *dir, size_t len, const char *tag);
/* Removes 'dir' and everything in it. */
void dn_test_rmtree(const char *dir);
/* The whole file 'path', NUL-terminated, malloc'd (caller frees); its
 * length in *len when 'len' is not NULL.  A file that cannot be read fails
 * the calling test. */
char *dn_test_slurp(const char *path, size_t *len);

/* params.c: expects `dnnc MODEL --emit=ir FLAGS` to declare exactly the
 * parameters of 'list' (a file of "name type" lines, '#' comments, as
 * tests/golden/make_goldens.py's write_param_list writes them from a
 * PyTorch state_dict): same names, types and order.  Returns the count. */
int dn_test_expect_param_list(const char *model, const char *flags, const char *list);

/* session.c: a session of 'lib' with 'threads' threads and 'seed' (a failed
 * create fails the calling test). */
dnrt_session *dn_test_session(const DnTestLib *lib, int threads, uint64_t seed);
/* One training step over inputs 'in' (descriptor order) at batch 'n'; a
 * step that fails fails the calling test.  Returns the loss. */
float dn_test_train_step(const DnTestLib *lib, dnrt_session *s, int64_t n, const void *const *in);
/* The session's state saved (api->save) to a temporary file and read back
 * into 'f' (the caller frees it); a failure fails the calling test. */
void dn_test_saved_state(const dnrt_api *api, dnrt_session *s, dnrt_st_file *f);

#endif

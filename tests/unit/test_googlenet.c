/* test_googlenet.c -- examples/googlenet.dnn against torchvision's
 * googlenet(aux_logits=False, transform_input=False): the same parameter
 * names, types and order, and the same logits.
 *
 * tests/golden/make_googlenet_goldens.py (run by hand) fills every entry of
 * torchvision's state_dict from an integer hash of (entry, element) -- its
 * docstring has the formula, which weights() below computes bit for bit --
 * runs eval() on a seeded 2 x 3 x 48 x 48 input and commits only the input,
 * the logits and googlenet_params.txt (the state_dict's names and types), so
 * no weights travel.  The test compiles the example with its input set to
 * 48 x 48 (the one line that declares it, rewritten; the train section,
 * which crops to 224, left out), writes the formula's weights under
 * torchvision's names, loads them and compares the logits.  At 48 x 48
 * ceil_mode changes all four strided max pools (24 -> 12 -> 6 -> 3 -> 2; floor
 * would give 11, 5, 2, 1).
 *
 * Tolerance: rtol 1e-4, atol 1e-5 (docs/design.md's |got - ref| <= rtol
 * max|ref| + atol), as test_golden.c; the reference is a float64 run and
 * PyTorch's own float32 run is within 1.3e-6 of it (the script prints it).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/safetensors.h"
#include "testlib.h"

#define RTOL    1e-4
#define ATOL    1e-5
#define BATCH   2
#define SIZE    48
#define CLASSES 1000
#define NPARAMS 344

typedef struct Entry {
    char name[128];
    int32_t dtype;
    int32_t rank;
    int64_t dim[4];
} Entry;

/* tests/golden/googlenet_params.txt: "name f32[64, 3, 7, 7]" per line, in state_dict order. */
static int read_params(Entry *e, int max)
{
    FILE *f = fopen(dn_test_src("tests/golden/googlenet_params.txt"), "r");
    cr_assert_not_null(f, "tests/golden/googlenet_params.txt (rerun tests/golden/make_googlenet_goldens.py?)");
    char line[512];
    int n = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        cr_assert_lt(n, max, "googlenet_params.txt has more than %d entries", max);
        Entry *t = &e[n++];
        char type[8];
        int used = 0;
        cr_assert_eq(sscanf(line, "%127s %3[a-z0-9][%n", t->name, type, &used), 2, "bad line '%s'", line);
        t->dtype = !strcmp(type, "f32") ? DNRT_F32 : DNRT_I64;
        t->rank = 0;
        for (const char *p = line + used; *p && *p != ']';) {
            char *end;
            long long d = strtoll(p, &end, 10);
            if (end == p) break;
            cr_assert_lt(t->rank, 4);
            t->dim[t->rank++] = d;
            p = end + (*end == ',' ? 1 : 0);
        }
    }
    fclose(f);
    return n;
}

static int64_t numel(const Entry *t)
{
    int64_t c = 1;
    for (int i = 0; i < t->rank; i++) c *= t->dim[i];
    return c;
}

/* The formula's scale and shift for entry 't' (make_googlenet_goldens.py's scale_shift). */
static void scale_shift(const Entry *t, double *scale, double *shift)
{
    const char *dot = strrchr(t->name, '.'), *leaf = dot ? dot + 1 : t->name;
    *shift = 0;
    if (!strcmp(t->name, "fc.weight"))
        *scale = sqrt(12.0 / (double)t->dim[1]);
    else if (!strcmp(t->name, "fc.bias"))
        *scale = 0.2;
    else if (!strcmp(leaf, "weight") && t->rank == 4)
        *scale = sqrt(24.0 / (double)(t->dim[1] * t->dim[2] * t->dim[3]));
    else if (!strcmp(leaf, "weight") || !strcmp(leaf, "running_var"))
        *scale = 0.5, *shift = 1;
    else if (!strcmp(leaf, "bias") || !strcmp(leaf, "running_mean"))
        *scale = 0.2;
    else
        cr_assert_fail("no formula for '%s'", t->name);
}

/* Element i of entry k: (float)(u * scale + shift), u from the mixed hash, in [-0.5, 0.5). */
static float weight(int64_t k, int64_t i, double scale, double shift)
{
    uint64_t h = ((uint64_t)i * 2654435761u + (uint64_t)k * 40503u) & 0xffffffffu;
    h ^= h >> 16;
    h = (h * 0x45d9f3bu) & 0xffffffffu;
    h ^= h >> 16;
    volatile double v = ((double)h / 4294967296.0 - 0.5) * scale; /* no fused multiply-add */
    return (float)(v + shift);
}

/* Writes the formula's weights, under torchvision's names, to 'path'. */
static void write_weights(const Entry *e, int n, const char *path)
{
    dnrt_st_tensor *t = calloc((size_t)n, sizeof *t);
    cr_assert_not_null(t);
    for (int k = 0; k < n; k++) {
        int64_t c = numel(&e[k]);
        t[k].name = e[k].name;
        t[k].dtype = e[k].dtype;
        t[k].rank = e[k].rank;
        memcpy(t[k].dim, e[k].dim, sizeof e[k].dim);
        t[k].nbytes = (size_t)c * (e[k].dtype == DNRT_F32 ? 4 : 8);
        void *data = calloc((size_t)c, e[k].dtype == DNRT_F32 ? 4 : 8); /* num_batches_tracked: 0 */
        cr_assert_not_null(data);
        if (e[k].dtype == DNRT_F32) {
            double scale, shift;
            scale_shift(&e[k], &scale, &shift);
            for (int64_t i = 0; i < c; i++) ((float *)data)[i] = weight(k, i, scale, shift);
        }
        t[k].data = data;
    }
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, n, t, 0, NULL, NULL, &err), 0, "%s", err.message);
    for (int k = 0; k < n; k++) free((void *)t[k].data);
    free(t);
}

/* examples/googlenet.dnn with its input at SIZE x SIZE and without the train section. */
static char *model_at_test_size(void)
{
    char *src = dn_test_slurp(dn_test_src("examples/googlenet.dnn"), NULL);
    const char *from = "image: f32[N, 3, 224, 224]";
    char *at = strstr(src, from);
    cr_assert_not_null(at, "examples/googlenet.dnn does not declare '%s'", from);
    cr_assert_null(strstr(at + 1, from), "examples/googlenet.dnn declares '%s' twice", from);
    char *train = strstr(src, "\ntrain googlenet");
    cr_assert_not_null(train, "examples/googlenet.dnn has no train section");
    train[1] = 0;
    size_t len = strlen(src) + 16;
    char *out = malloc(len);
    cr_assert_not_null(out);
    snprintf(out, len, "%.*simage: f32[N, 3, %d, %d]%s", (int)(at - src), src, SIZE, SIZE, at + strlen(from));
    free(src);
    return out;
}

Test(googlenet, logits_match_torchvision, .timeout = 600)
{
    Entry *e = calloc(NPARAMS + 1, sizeof *e);
    cr_assert_not_null(e);
    int n = read_params(e, NPARAMS + 1);
    cr_assert_eq(n, NPARAMS, "googlenet_params.txt has %d entries", n);
    char dir[256], path[300];
    dn_test_tmpdir(dir, sizeof dir, "dnnc-googlenet");
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    write_weights(e, n, path);
    free(e);

    char *src = model_at_test_size(), log[16384];
    DnTestLib lib;
    cr_assert_eq(dn_test_compile_text(src, "--no-train", &lib, log, sizeof log), 0, "%s", log);
    free(src);
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    const dnrt_api *api = lib.desc->api;
    dnrt_error err = {0};
    cr_assert_eq(api->load(s, path, &err), 0, "load: %s", err.message);
    dn_test_rmtree(dir);

    dnrt_st_file g;
    dn_test_golden_open("googlenet_golden", &g);
    const char *size = dnrt_st_meta(&g, "size");
    cr_assert(size && atoi(size) == SIZE, "googlenet_golden: size %s, the test compiles %d", size ? size : "?", SIZE);
    const void *in[1] = {dn_test_tensor(&g, "image", DNRT_F32, BATCH * 3 * SIZE * SIZE)};
    float *y = calloc(BATCH * CLASSES, sizeof *y);
    void *out[1] = {y};
    cr_assert_eq(api->infer(s, BATCH, in, out, &err), 0, "infer: %s", err.message);
    dn_test_expect_close("logits", y, dn_test_tensor(&g, "logits", DNRT_F32, BATCH * CLASSES), BATCH * CLASSES, RTOL,
                         ATOL);
    free(y);
    dnrt_st_free(&g);
    api->destroy(s);
    dn_test_close(&lib);
}

/* `dnnc --emit=ir examples/googlenet.dnn` declares exactly torchvision's
 * state_dict: same names, same types and shapes, same order. */
Test(googlenet, names_match_torchvision)
{
    static char ir[1 << 18];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir", DNNC_BIN, dn_test_src("examples/googlenet.dnn"));
    cr_assert_eq(dn_test_run(cmd, ir, sizeof ir), 0, "dnnc --emit=ir failed:\n%.2000s", ir);
    cr_assert_lt(strlen(ir), sizeof ir - 1, "IR dump truncated");
    Entry *e = calloc(NPARAMS + 1, sizeof *e);
    cr_assert_not_null(e);
    int n = read_params(e, NPARAMS + 1);
    const char *p = ir;
    for (int k = 0; k < n; k++) {
        char want[256];
        int at = snprintf(want, sizeof want, "%s %s[", e[k].name, e[k].dtype == DNRT_F32 ? "f32" : "i64");
        for (int d = 0; d < e[k].rank; d++)
            at += snprintf(want + at, sizeof want - (size_t)at, "%s%lld", d ? ", " : "", (long long)e[k].dim[d]);
        snprintf(want + at, sizeof want - (size_t)at, "]");
        /* the next IR line "  param @NAME: TYPE ..." */
        const char *q = strstr(p, "  param @");
        cr_assert_not_null(q, "IR has no parameter for '%s' (entry %d of torchvision's state_dict)", want, k + 1);
        q += strlen("  param @");
        const char *colon = strchr(q, ':'), *close = colon ? strchr(colon, ']') : NULL;
        cr_assert(colon && close);
        char got[256];
        snprintf(got, sizeof got, "%.*s %.*s", (int)(colon - q), q, (int)(close - colon - 1), colon + 2);
        cr_expect_str_eq(got, want, "parameter %d: dnnc has '%s', torchvision '%s'", k + 1, got, want);
        p = close;
    }
    free(e);
    cr_expect_eq(n, NPARAMS, "googlenet_params.txt has %d entries", n);
    cr_expect_null(strstr(p, "  param @"), "dnnc declares more parameters than torchvision's %d", n);
}

/* The example builds at its full size, 3 x 224 x 224, and runs one image. */
Test(googlenet, full_size_compiles_and_runs, .timeout = 600)
{
    DnTestLib lib;
    char log[16384];
    cr_assert_eq(dn_test_compile_file("examples/googlenet.dnn", "--no-train", &lib, log, sizeof log), 0, "%s", log);
    const dnrt_tensor_desc *in = &lib.desc->inputs[0], *out = &lib.desc->outputs[0];
    cr_assert(in->rank == 4 && in->dim[1] == 3 && in->dim[2] == 224 && in->dim[3] == 224);
    cr_assert(out->rank == 2 && out->dim[1] == CLASSES);
    dnrt_session *s = dn_test_session(&lib, 2, 1);
    float *x = malloc(sizeof *x * 3 * 224 * 224), *y = malloc(sizeof *y * CLASSES);
    cr_assert(x && y);
    for (int i = 0; i < 3 * 224 * 224; i++) x[i] = sinf(0.001f * (float)i);
    const void *ins[1] = {x};
    void *outs[1] = {y};
    dnrt_error err = {0};
    cr_assert_eq(lib.desc->api->infer(s, 1, ins, outs, &err), 0, "infer: %s", err.message);
    int finite = 1, nonzero = 0;
    for (int i = 0; i < CLASSES; i++) finite &= isfinite(y[i]), nonzero |= y[i] != 0;
    cr_expect(finite && nonzero, "googlenet logits are not finite and non-zero");
    free(x), free(y);
    lib.desc->api->destroy(s);
    dn_test_close(&lib);
}

/* examples/googlenet_fmnist.dnn (the same blocks at a quarter of the width,
 * its input resized by interpolate) builds its training graph: autodiff,
 * batchnorm in training mode, Adam's updates.  (The LLVM build of the step
 * takes minutes; the graph passes, seconds.) */
Test(googlenet, fmnist_training_graph_builds)
{
    static char ir[1 << 21];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir-opt --graph=train", DNNC_BIN,
             dn_test_src("examples/googlenet_fmnist.dnn"));
    cr_assert_eq(dn_test_run(cmd, ir, sizeof ir), 0, "dnnc --emit=ir-opt --graph=train failed:\n%.2000s", ir);
    cr_assert_lt(strlen(ir), sizeof ir - 1, "IR dump truncated");
    cr_expect_not_null(strstr(ir, "{size = [64, 64], mode = \"bilinear\"} : f32[N, 1, 64, 64]"),
                       "no bilinear interpolate of the image to 64x64");
    cr_expect_not_null(strstr(ir, "adam_update"), "no Adam update in the training graph");
    cr_expect_not_null(strstr(ir, "maxpool2d_bwd"), "no max pool backward in the training graph");
}

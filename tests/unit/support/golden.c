/* golden.c -- reading the golden files of tests/golden/ and comparing
 * against them, shared by the suites that check numbers against PyTorch.
 * Failures are Criterion assertions of the calling test. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "testlib.h"

void dn_test_golden_open(const char *name, dnrt_st_file *f)
{
    char rel[256];
    snprintf(rel, sizeof rel, "tests/golden/%s.safetensors", name);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_read(dn_test_src(rel), f, &err), 0, "%s (rerun tests/golden/make_goldens.py?)", err.message);
}

static int64_t st_numel(const dnrt_st_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dim[i];
    return n;
}

const void *dn_test_tensor(const dnrt_st_file *f, const char *name, int32_t dtype, int64_t count)
{
    const dnrt_st_tensor *t = dnrt_st_find(f, name);
    cr_assert_not_null(t, "tensor '%s' missing", name);
    if (dtype >= 0) cr_assert_eq(t->dtype, dtype, "tensor '%s': dtype %s", name, t->dtype_name);
    if (count >= 0)
        cr_assert_eq(st_numel(t), count, "tensor '%s': %lld elements, expected %lld", name, (long long)st_numel(t),
                     (long long)count);
    return t->data;
}

int64_t dn_test_desc_numel(const dnrt_tensor_desc *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dim[i];
    return n;
}

int64_t dn_test_desc_count(const dnrt_tensor_desc *t, int64_t n)
{
    int64_t c = 1;
    for (int32_t k = 0; k < t->rank; k++) c *= t->dim[k] < 0 ? n : t->dim[k];
    return c;
}

void dn_test_expect_outputs(const DnTestLib *lib, dnrt_session *s, const dnrt_st_file *golden, const char *prefix,
                            int64_t n, double rtol, double atol)
{
    const dnrt_model_desc *d = lib->desc;
    enum { MAX_IO = 32 };
    cr_assert_leq(d->ninputs, MAX_IO);
    cr_assert_leq(d->noutputs, MAX_IO);
    char key[160];
    const void *in[MAX_IO] = {0};
    void *out[MAX_IO] = {0};
    int nin = 0;
    for (int i = 0; i < d->ninputs; i++)
        if (!d->inputs[i].train_only) {
            snprintf(key, sizeof key, "%s.%s", prefix, d->inputs[i].name);
            in[nin++] = dn_test_tensor(golden, key, d->inputs[i].dtype, dn_test_desc_count(&d->inputs[i], n));
        }
    for (int i = 0; i < d->noutputs; i++)
        out[i] = calloc((size_t)dn_test_desc_count(&d->outputs[i], n) + 1, sizeof(float));
    dnrt_error err = {0};
    cr_assert_eq(d->api->infer(s, n, in, out, &err), 0, "infer: %s", err.message);
    for (int i = 0; i < d->noutputs; i++) {
        int64_t count = dn_test_desc_count(&d->outputs[i], n);
        snprintf(key, sizeof key, "%s.%s", prefix, d->outputs[i].name);
        dn_test_expect_close(key, out[i], dn_test_tensor(golden, key, DNRT_F32, count), count, rtol, atol);
        free(out[i]);
    }
}

void dn_test_expect_close(const char *what, const float *got, const float *ref, int64_t n, double rtol, double atol)
{
    int64_t bad = dn_test_close_enough(got, ref, n, rtol, atol);
    cr_expect_eq(bad, -1, "%s: element %lld: got %.9g, expected %.9g (rtol %g, atol %g)", what, (long long)bad,
                 bad >= 0 ? got[bad] : 0.0, bad >= 0 ? ref[bad] : 0.0, rtol, atol);
}

/* Writes t[0..n) to a new file made from the mkstemp template 'path'. */
static void write_new(const dnrt_st_tensor *t, int n, char *path)
{
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    dnrt_error err = {0};
    cr_assert_eq(dnrt_st_write(path, n, t, 0, NULL, NULL, &err), 0, "%s", err.message);
}

void dn_test_write_tensors(const dnrt_st_file *f, const char *const *names, int n, char *path)
{
    dnrt_st_tensor t[64];
    cr_assert(n <= 64, "dn_test_write_tensors: %d tensors, at most 64", n);
    for (int i = 0; i < n; i++) {
        const dnrt_st_tensor *x = dnrt_st_find(f, names[i]);
        cr_assert_not_null(x, "tensor '%s' missing", names[i]);
        t[i] = *x;
    }
    write_new(t, n, path);
}

int dn_test_golden_inputs(const dnrt_st_file *f, const char *pre, const DnTestInput *want, int n, const void **in)
{
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!want[i].name) continue;
        char key[128];
        snprintf(key, sizeof key, "%s.%s", pre, want[i].name);
        in[k++] = dn_test_tensor(f, key, want[i].dtype, want[i].count);
    }
    return k;
}

void dn_test_write_under(const dnrt_st_file *f, const char *group, const char *under, int want, char *path)
{
    dnrt_st_tensor t[64];
    char prefix[128];
    int n = 0, plen = snprintf(prefix, sizeof prefix, "%s.%s.", group, under);
    for (int i = 0; i < f->ntensors && n < 64; i++)
        if (!strncmp(f->tensors[i].name, prefix, (size_t)plen)) {
            t[n] = f->tensors[i];
            t[n++].name = f->tensors[i].name + strlen(group) + 1;
        }
    cr_assert_eq(n, want, "%s: %d tensors, expected %d", prefix, n, want);
    write_new(t, n, path);
}

void dn_test_golden_model_open(DnTestGoldenModel *G, const char *name, const char *const *params, int nparams)
{
    dn_test_golden_open(name, &G->g);
    const char *src = dnrt_st_meta(&G->g, "source");
    cr_assert(src, "%s: no model source in the metadata", name);
    char log[16384];
    cr_assert_eq(dn_test_compile_text(src, "", &G->lib, log, sizeof log), 0, "%s\n%s", src, log);
    G->s = dn_test_session(&G->lib, 2, 1);
    char path[] = "/tmp/dnnc-golden-w-XXXXXX";
    dn_test_write_tensors(&G->g, params, nparams, path);
    dnrt_error err = {0};
    int rc = G->lib.desc->api->load(G->s, path, &err);
    unlink(path);
    cr_assert_eq(rc, 0, "load: %s", err.message);
}

void dn_test_golden_model_close(DnTestGoldenModel *G)
{
    G->lib.desc->api->destroy(G->s);
    dn_test_close(&G->lib);
    dnrt_st_free(&G->g);
}

void dn_test_expect_sgd_step(DnTestGoldenModel *G, int64_t n, const char *const *params, int nparams, double rtol,
                             double atol)
{
    const dnrt_model_desc *d = G->lib.desc;
    const void *in[16] = {0};
    cr_assert_leq(d->ninputs, 16);
    char key[128], ref[128];
    for (int i = 0; i < d->ninputs; i++) {
        snprintf(key, sizeof key, "train.%s", d->inputs[i].name);
        in[i] = dn_test_tensor(&G->g, key, d->inputs[i].dtype, dn_test_desc_count(&d->inputs[i], n));
    }
    float loss = dn_test_train_step(&G->lib, G->s, n, in);
    dn_test_expect_close("train.loss", &loss, dn_test_tensor(&G->g, "train.loss", DNRT_F32, 1), 1, rtol, atol);
    dnrt_st_file saved;
    dn_test_saved_state(d->api, G->s, &saved);
    for (int i = 0; i < nparams; i++) {
        snprintf(key, sizeof key, "optim.%s.momentum_buffer", params[i]);
        snprintf(ref, sizeof ref, "grad.%s", params[i]);
        const dnrt_st_tensor *r = dnrt_st_find(&G->g, ref);
        cr_assert_not_null(r, "tensor '%s' missing", ref);
        int64_t count = (int64_t)(r->nbytes / 4);
        dn_test_expect_close(ref, dn_test_tensor(&saved, key, DNRT_F32, count), r->data, count, rtol, atol);
    }
    dnrt_st_free(&saved);
}

void dn_test_golden_outputs(const DnTestGoldenSpec *t)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, t->name, t->params, t->nparams);
    cr_assert_eq(G.lib.desc->noutputs, t->noutputs);
    for (int i = 0; i < 2; i++) {
        char prefix[24];
        snprintf(prefix, sizeof prefix, "b%lld", (long long)t->batches[i]);
        dn_test_expect_outputs(&G.lib, G.s, &G.g, prefix, t->batches[i], t->rtol, t->atol);
    }
    dn_test_golden_model_close(&G);
}

void dn_test_golden_sgd_step(const DnTestGoldenSpec *t)
{
    DnTestGoldenModel G;
    dn_test_golden_model_open(&G, t->name, t->params, t->nparams);
    dn_test_expect_sgd_step(&G, t->train_n, t->params, t->nparams, t->rtol, t->atol);
    dn_test_golden_model_close(&G);
}

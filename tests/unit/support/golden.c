/* golden.c -- reading the golden files of tests/golden/ and comparing
 * against them, shared by the suites that check numbers against PyTorch.
 * Failures are Criterion assertions of the calling test. */
#include <criterion/criterion.h>
#include <stdio.h>

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
            in[nin++] = dn_test_tensor(golden, key, DNRT_F32, dn_test_desc_count(&d->inputs[i], n));
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

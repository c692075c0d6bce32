/* gradcheck.c -- the gradient-check harness (gradcheck.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gradcheck.h"
#include "runtime/safetensors.h"
#include "testlib.h"

/* ---- harness -------------------------------------------------------------- */

static uint64_t rng_state = 88172645463325252ull;
static double uniform(void) /* in [-1, 1) */
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * 0x1p-52 - 1.0;
}

/* Reads the tensor 'name' of a saved session as double (malloc'd). */
static double *read_tensor(const dnrt_st_file *f, const char *name, int64_t *numel)
{
    const dnrt_st_tensor *t = dnrt_st_find(f, name);
    cr_assert(t, "tensor '%s' missing from the saved state", name);
    cr_assert_eq(t->dtype, DNRT_F32, "tensor '%s' is not f32", name);
    *numel = (int64_t)(t->nbytes / 4);
    double *d = malloc((size_t)(*numel + 1) * sizeof *d);
    const float *src = t->data;
    for (int64_t i = 0; i < *numel; i++) d[i] = src[i];
    return d;
}

/* Compares the analytic gradient 'ga' with central differences of c->loss. */
static void check_param(const GcCase *c, Gc *g, int pi, const double *ga)
{
    double maxg = 0, h = 1e-5;
    int64_t n = g->pnumel[pi];
    double *fd = malloc((size_t)n * sizeof *fd);
    for (int64_t i = 0; i < n; i++) {
        double keep = g->p[pi][i];
        g->p[pi][i] = keep + h;
        double lp = c->loss(g);
        g->p[pi][i] = keep - h;
        double lm = c->loss(g);
        g->p[pi][i] = keep;
        fd[i] = (lp - lm) / (2 * h);
        maxg = fmax(maxg, fabs(fd[i]));
    }
    for (int64_t i = 0; i < n; i++)
        cr_expect(fabs(ga[i] - fd[i]) <= 1e-3 * maxg + 1e-5, "%s: d loss / d %s[%lld]: analytic %.8g, numeric %.8g",
                  c->name, c->pname[pi], (long long)i, ga[i], fd[i]);
    cr_assert(maxg > 1e-6, "%s: gradient of %s is all zero: the check would prove nothing", c->name, c->pname[pi]);
    free(fd);
}

/* Fills the case's inputs: float buffers for the library and double copies. */
static void make_inputs(const GcCase *c, Gc *g, float **fin)
{
    g->n = c->n;
    for (int i = 0; i < c->nin; i++) {
        int64_t m = c->n * (c->in_item[i] > 0 ? c->in_item[i] : c->in_item[i] < 0 ? -c->in_item[i] : 1);
        fin[i] = malloc((size_t)m * 4);
        if (c->in_item[i] <= 0) {
            g->label = (int32_t *)fin[i];
            for (int64_t j = 0; j < m; j++) g->label[j] = (int32_t)((uniform() + 1) * 0.5 * c->nclasses) % c->nclasses;
            continue;
        }
        g->in[i] = malloc((size_t)m * sizeof(double));
        for (int64_t j = 0; j < m; j++) g->in[i][j] = fin[i][j] = (float)uniform();
    }
}

void dn_gradcheck(const GcCase *c)
{
    DnTestLib lib;
    char log[8192];
    int rc = dn_test_compile_text(c->src, "", &lib, log, sizeof log);
    cr_assert_eq(rc, 0, "%s: compile failed: %s", c->name, log);
    const dnrt_api *api = lib.desc->api;
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 2, .seed = 1234};
    dnrt_session *s = api->create(lib.desc, &opt, &err);
    cr_assert(s, "%s: create: %s", c->name, err.message);
    Gc g = {0};
    float *fin[DN_GC_MAXI] = {0};
    make_inputs(c, &g, fin);
    float loss = 0;
    api->set_lr(s, 0); /* parameters stay where the gradient was taken */
    cr_assert_eq(api->train_step(s, c->n, (const void *const *)fin, &loss, &err), 0, "%s: %s", c->name, err.message);
    char path[600];
    snprintf(path, sizeof path, "%s.state.safetensors", lib.so_path);
    cr_assert_eq(api->save(s, path, &err), 0, "%s: save: %s", c->name, err.message);
    dnrt_st_file f;
    cr_assert_eq(dnrt_st_read(path, &f, &err), 0, "%s: %s", c->name, err.message);
    double *ga[DN_GC_MAXP];
    for (int i = 0; i < c->np; i++) {
        char bname[256];
        int64_t nb;
        snprintf(bname, sizeof bname, "optim.%s.momentum_buffer", c->pname[i]);
        g.p[i] = read_tensor(&f, c->pname[i], &g.pnumel[i]);
        ga[i] = read_tensor(&f, bname, &nb);
        cr_assert_eq(nb, g.pnumel[i]);
    }
    double ref = c->loss(&g);
    cr_expect(fabs(loss - ref) <= 1e-4 * fabs(ref) + 1e-5, "%s: loss %.8g, reference %.8g", c->name, loss, ref);
    for (int i = 0; i < c->np; i++) check_param(c, &g, i, ga[i]);
    for (int i = 0; i < c->np; i++) free(g.p[i]), free(ga[i]);
    for (int i = 0; i < c->nin; i++) free(fin[i]), free(g.in[i]);
    dnrt_st_free(&f);
    api->destroy(s);
    unlink(path);
    dn_test_close(&lib);
}

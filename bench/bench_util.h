/* bench_util.h -- what the C benchmark drivers share (infer_bench.c,
 * kernels/step_bench.c): a monotonic clock, medians, and opening a dnnc
 * library through dlopen with a session on it.  Header-only, so each
 * driver still builds with one cc command and needs only libc, libdl and
 * dnrt.h. */
#ifndef DN_BENCH_UTIL_H
#define DN_BENCH_UTIL_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "dnrt.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of the 'n' times (seconds) in 't', in milliseconds; sorts 't'. */
static double median_ms(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    return 1e3 * t[n / 2];
}

/* Elements per batch item of a tensor whose dim[0] is the batch. */
static int64_t per_item(const dnrt_tensor_desc *t)
{
    int64_t c = 1;
    for (int i = 1; i < t->rank; i++) c *= t->dim[i];
    return c;
}

/* dlopens 'path', checks its descriptor and creates a session with
 * 'threads' threads and seed 1; on failure prints "prog: why" and exits 1. */
static dnrt_session *open_model(const char *prog, const char *path, int threads, const dnrt_model_desc **out)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const dnrt_model_desc *d = h ? dlsym(h, "dnnc_descriptor") : NULL;
    if (!d || d->abi_version != DNRT_ABI_VERSION) {
        fprintf(stderr, "%s: %s: %s\n", prog, path, h ? "no usable dnnc_descriptor" : dlerror());
        exit(1);
    }
    dnrt_options opt = {.threads = threads, .seed = 1};
    dnrt_error err = {0};
    dnrt_session *s = d->api->create(d, &opt, &err);
    if (!s) {
        fprintf(stderr, "%s: %s\n", prog, err.message);
        exit(1);
    }
    *out = d;
    return s;
}

#endif

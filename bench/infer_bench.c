/* infer_bench.c -- inference latency of a dnnc library, through dlopen.
 * Built and run by bench/infer_lenet.sh:
 *   infer_bench MODEL.so BATCH THREADS [REPS [WARMUP]]
 * Random (seeded) weights from the library's initializers and uniform
 * inputs; times REPS calls of api->infer at batch BATCH and prints
 * "infer batch B median M ms".  Needs only libc, libdl and dnrt.h. */
#define _GNU_SOURCE
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

static int64_t count_per_item(const dnrt_tensor_desc *t)
{
    int64_t c = 1;
    for (int i = 1; i < t->rank; i++) c *= t->dim[i];
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: infer_bench MODEL.so BATCH THREADS [REPS [WARMUP]]\n");
        return 2;
    }
    int64_t n = atoll(argv[2]);
    int reps = argc > 4 ? atoi(argv[4]) : 200, warm = argc > 5 ? atoi(argv[5]) : 20;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const dnrt_model_desc *d = h ? dlsym(h, "dnnc_descriptor") : NULL;
    if (!d || d->abi_version != DNRT_ABI_VERSION || n <= 0 || reps <= 0) {
        fprintf(stderr, "infer_bench: %s: %s\n", argv[1], h ? "no usable dnnc_descriptor" : dlerror());
        return 1;
    }
    dnrt_options opt = {.threads = atoi(argv[3]), .seed = 1};
    dnrt_error err = {0};
    dnrt_session *s = d->api->create(d, &opt, &err);
    if (!s) {
        fprintf(stderr, "infer_bench: %s\n", err.message);
        return 1;
    }
    float *x = malloc(sizeof *x * n * count_per_item(&d->inputs[0]));
    float *y = malloc(sizeof *y * n * count_per_item(&d->outputs[0]));
    for (int64_t i = 0; i < n * count_per_item(&d->inputs[0]); i++) x[i] = (float)rand() / RAND_MAX;
    const void *in[1] = {x};
    void *out[1] = {y};
    double *t = malloc(sizeof *t * reps);
    for (int r = -warm; r < reps; r++) {
        double t0 = now_s();
        if (d->api->infer(s, n, in, out, &err)) {
            fprintf(stderr, "infer_bench: %s\n", err.message);
            return 1;
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    qsort(t, reps, sizeof *t, cmp_double);
    printf("infer batch %lld median %.4f ms\n", (long long)n, 1e3 * t[reps / 2]);
    d->api->destroy(s);
    return 0;
}

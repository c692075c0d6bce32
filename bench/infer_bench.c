/* infer_bench.c -- inference latency of a dnnc library, through dlopen.
 * Built and run by bench/infer_lenet.sh:
 *   infer_bench MODEL.so BATCH THREADS [REPS [WARMUP]]
 * Random (seeded) weights from the library's initializers and uniform
 * inputs; times REPS calls of api->infer at batch BATCH and prints
 * "infer batch B median M ms".  Needs only libc, libdl and dnrt.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: infer_bench MODEL.so BATCH THREADS [REPS [WARMUP]]\n");
        return 2;
    }
    int64_t n = atoll(argv[2]);
    int reps = argc > 4 ? atoi(argv[4]) : 200, warm = argc > 5 ? atoi(argv[5]) : 20;
    if (n <= 0 || reps <= 0) {
        fprintf(stderr, "infer_bench: BATCH and REPS must be >= 1\n");
        return 2;
    }
    const dnrt_model_desc *d;
    dnrt_session *s = open_model("infer_bench", argv[1], atoi(argv[3]), &d);
    dnrt_error err = {0};
    float *x = malloc(sizeof *x * n * per_item(&d->inputs[0]));
    float *y = malloc(sizeof *y * n * per_item(&d->outputs[0]));
    for (int64_t i = 0; i < n * per_item(&d->inputs[0]); i++) x[i] = (float)rand() / RAND_MAX;
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
    printf("infer batch %lld median %.4f ms\n", (long long)n, median_ms(t, reps));
    d->api->destroy(s);
    return 0;
}

/* step_bench.c -- per-step latency of a dnnc library's train_step and
 * infer, through dlopen (the micro-benchmark behind kernel work):
 *   step_bench MODEL.so THREADS [REPS [train|infer]]
 * Random (seeded) weights from the library's initializers, uniform inputs
 * in [0, 1) and labels in [0, 10); prints the median ms per call of
 * train_step at batch BATCH (default 64; when the library trains) and of
 * infer at batch 1 and BATCH (only one of them when the fourth argument
 * says so: for perf).  Needs only libc, libdl and dnrt.h.
 * Build: cc -O2 -I runtime/include bench/kernels/step_bench.c -o step_bench -ldl */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../bench_util.h"

/* Median ms of 'reps' calls (after reps/10 warm-up calls); train when 'train'. */
static double time_calls(const dnrt_model_desc *d, dnrt_session *s, int64_t n, int reps, int train)
{
    float *x = malloc(sizeof *x * n * per_item(&d->inputs[0]));
    float *y = malloc(sizeof *y * n * per_item(&d->outputs[0]));
    int32_t *lab = malloc(sizeof *lab * n);
    for (int64_t i = 0; i < n * per_item(&d->inputs[0]); i++) x[i] = (float)rand() / RAND_MAX;
    for (int64_t i = 0; i < n; i++) lab[i] = rand() % 10;
    const void *in[2] = {x, lab};
    void *out[1] = {y};
    double *t = malloc(sizeof *t * reps);
    dnrt_error err = {0};
    float loss = 0;
    for (int r = -reps / 10 - 1; r < reps; r++) {
        double t0 = now_s();
        int rc = train ? d->api->train_step(s, n, in, &loss, &err) : d->api->infer(s, n, in, out, &err);
        if (rc) {
            fprintf(stderr, "step_bench: %s\n", err.message);
            exit(1);
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    double med = median_ms(t, reps);
    free(x), free(y), free(lab), free(t);
    return med;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: step_bench MODEL.so THREADS [REPS [train|infer|both [BATCH]]]\n");
        return 2;
    }
    int reps = argc > 3 ? atoi(argv[3]) : 200;
    const char *only = argc > 4 ? argv[4] : "";
    int64_t batch = argc > 5 ? atoll(argv[5]) : 64;
    if (batch < 1) {
        fprintf(stderr, "step_bench: BATCH must be >= 1\n");
        return 2;
    }
    if (reps <= 0) {
        fprintf(stderr, "step_bench: REPS must be >= 1\n");
        return 2;
    }
    const dnrt_model_desc *d;
    dnrt_session *s = open_model("step_bench", argv[1], atoi(argv[2]), &d);
    srand(1);
    if (d->trains && strcmp(only, "infer"))
        printf("train batch %lld: %.3f ms/step\n", (long long)batch, time_calls(d, s, batch, reps, 1));
    if (strcmp(only, "train")) {
        printf("infer batch 1:  %.4f ms\n", time_calls(d, s, 1, reps, 0));
        printf("infer batch %lld: %.3f ms\n", (long long)batch, time_calls(d, s, batch, reps, 0));
    }
    d->api->destroy(s);
    return 0;
}

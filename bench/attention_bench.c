/* attention_bench.c -- attention alone in a dnnc library, through dlopen:
 *   attention_bench MODEL.so BATCH THREADS REPS
 * The library is bench/attention.sh's model: inputs q, k, v [N, H, T, d]
 * (f32) and, when it trains, a target t of the output's shape.  Prints the
 * median ms of infer ("forward") and of train_step ("forward+backward")
 * at batch BATCH, and the arena bytes of each (n * arena_n + arena_b +
 * threads * arena_t).  Needs only libc, libdl and dnrt.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: attention_bench MODEL.so BATCH THREADS REPS\n");
        return 2;
    }
    int64_t n = atoll(argv[2]);
    int threads = atoi(argv[3]), reps = atoi(argv[4]);
    if (n <= 0 || reps <= 0 || threads <= 0) {
        fprintf(stderr, "attention_bench: BATCH, THREADS and REPS must be >= 1\n");
        return 2;
    }
    const dnrt_model_desc *d;
    dnrt_session *s = open_model("attention_bench", argv[1], threads, &d);
    const void *in[4];
    for (int i = 0; i < d->ninputs && i < 4; i++) {
        int64_t m = n * per_item(&d->inputs[i]);
        float *x = malloc(sizeof *x * m);
        for (int64_t j = 0; j < m; j++) x[j] = (float)rand() / RAND_MAX - 0.5f;
        in[i] = x;
    }
    float *y = malloc(sizeof *y * n * per_item(&d->outputs[0]));
    void *out[1] = {y};
    dnrt_error err = {0};
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int r = -1; r < reps; r++) { /* one warm-up call */
        double t0 = now_s();
        if (d->api->infer(s, n, in, out, &err)) {
            fprintf(stderr, "attention_bench: infer: %s\n", err.message);
            return 1;
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    printf("forward %.3f ms arena %lld bytes\n", median_ms(t, reps),
           (long long)(n * d->infer_arena_n + d->infer_arena_b + threads * d->infer_arena_t));
    if (d->trains) {
        float loss;
        for (int r = -1; r < reps; r++) {
            double t0 = now_s();
            if (d->api->train_step(s, n, in, &loss, &err)) {
                fprintf(stderr, "attention_bench: train_step: %s\n", err.message);
                return 1;
            }
            if (r >= 0) t[r] = now_s() - t0;
        }
        printf("forward+backward %.3f ms arena %lld bytes\n", median_ms(t, reps),
               (long long)(n * d->train_arena_n + d->train_arena_b + threads * d->train_arena_t));
    }
    d->api->destroy(s);
    return 0;
}

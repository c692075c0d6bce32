/* seq_bench.c -- throughput of a sequence model's train_step and latency
 * of its infer, through dlopen (bench/lstm_lm.sh drives it):
 *   seq_bench MODEL.so train BATCH THREADS [REPS]
 *   seq_bench MODEL.so infer BATCH THREADS [REPS]
 * Inputs come from the descriptor: an i32 input (tokens, labels) gets
 * seeded random values in its valid range ([0, 255] when it declares
 * none), an f32 input (a recurrent state) zeros.  Prints the median ms per
 * call and, for train, tokens per second (batch x the tokens per item of
 * the first input).  Needs only libc, libdl and dnrt.h.
 * Build: cc -O2 -I runtime/include bench/seq_bench.c -o seq_bench -ldl */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

static int64_t bytes_of(int32_t dtype) { return dtype == DNRT_I64 ? 8 : 4; }

/* A buffer for 'n' items of 't', filled as the header comment says. */
static void *fill_input(const dnrt_tensor_desc *t, int64_t n)
{
    int64_t count = n * per_item(t);
    void *p = calloc((size_t)count + 1, (size_t)bytes_of(t->dtype));
    if (!p) {
        fprintf(stderr, "seq_bench: out of memory\n");
        exit(1);
    }
    if (t->dtype == DNRT_I32) {
        int64_t lo = t->valid_min < t->valid_max ? t->valid_min : 0;
        int64_t hi = t->valid_min < t->valid_max ? t->valid_max : 255;
        for (int64_t i = 0; i < count; i++) ((int32_t *)p)[i] = (int32_t)(lo + rand() % (hi - lo + 1));
    }
    return p;
}

int main(int argc, char **argv)
{
    if (argc < 5 || (strcmp(argv[2], "train") && strcmp(argv[2], "infer"))) {
        fprintf(stderr, "usage: seq_bench MODEL.so train|infer BATCH THREADS [REPS]\n");
        return 2;
    }
    int train = !strcmp(argv[2], "train");
    int64_t n = atoll(argv[3]);
    int reps = argc > 5 ? atoi(argv[5]) : 20;
    if (n <= 0 || reps <= 0) {
        fprintf(stderr, "seq_bench: BATCH and REPS must be >= 1\n");
        return 2;
    }
    srand(1);
    const dnrt_model_desc *d;
    dnrt_session *s = open_model("seq_bench", argv[1], atoi(argv[4]), &d);
    if (train && !d->api->train_step) {
        fprintf(stderr, "seq_bench: %s has no training step\n", argv[1]);
        return 1;
    }
    const void *in[16];
    void *out[16];
    if (d->ninputs > 16 || d->noutputs > 16) {
        fprintf(stderr, "seq_bench: more than 16 inputs or outputs\n");
        return 1;
    }
    int nin = 0;
    for (int i = 0; i < d->ninputs; i++)
        if (train || !d->inputs[i].train_only) in[nin++] = fill_input(&d->inputs[i], n);
    for (int i = 0; i < d->noutputs; i++)
        out[i] = calloc((size_t)(n * per_item(&d->outputs[i])) + 1, (size_t)bytes_of(d->outputs[i].dtype));
    double *t = malloc(sizeof *t * reps);
    dnrt_error err = {0};
    float loss = 0;
    for (int r = -reps / 10 - 1; r < reps; r++) {
        double t0 = now_s();
        int rc = train ? d->api->train_step(s, n, in, &loss, &err) : d->api->infer(s, n, in, out, &err);
        if (rc) {
            fprintf(stderr, "seq_bench: %s\n", err.message);
            return 1;
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    double ms = median_ms(t, reps);
    if (train)
        printf("train batch %lld median %.3f ms tokens/s %.0f loss %.4f\n", (long long)n, ms,
               (double)(n * per_item(&d->inputs[0])) / (ms * 1e-3), loss);
    else
        printf("infer batch %lld median %.4f ms\n", (long long)n, ms);
    return 0;
}

/* kv_bench.c -- KV-cache decoding speed of a dnnc step library (token and
 * pos i32[1, 1], logits f32[1, 1, V]), through dlopen.  Built and run by
 * bench/kv_decode.sh:
 *   kv_bench STEP.so THREADS TOKENS [ROUNDS]
 * Seeded random weights; each round decodes TOKENS tokens from pos 0 (each
 * step's argmax fed back) and times the whole sequence; prints
 * "decode T tokens median M ms (R tokens/s)".  Needs only libc, libdl and
 * dnrt.h. */
#define _GNU_SOURCE
#include <string.h>

#include "bench_util.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: kv_bench STEP.so THREADS TOKENS [ROUNDS]\n");
        return 2;
    }
    int tokens = atoi(argv[3]), rounds = argc > 4 ? atoi(argv[4]) : 5;
    if (tokens <= 0 || rounds <= 0) {
        fprintf(stderr, "kv_bench: TOKENS and ROUNDS must be >= 1\n");
        return 2;
    }
    const dnrt_model_desc *d;
    dnrt_session *s = open_model("kv_bench", argv[1], atoi(argv[2]), &d);
    if (d->ninputs != 2 || strcmp(d->inputs[1].name, "pos") || d->noutputs != 1) {
        fprintf(stderr, "kv_bench: %s: expects inputs (token, pos) and one output of logits\n", argv[1]);
        return 1;
    }
    int64_t V = d->outputs[0].dim[2];
    float *z = malloc(sizeof *z * (size_t)V);
    double *t = malloc(sizeof *t * (size_t)rounds);
    dnrt_error err = {0};
    for (int r = -1; r < rounds; r++) { /* round -1 warms up */
        int32_t tok = 1, pos = 0;
        const void *in[2] = {&tok, &pos};
        void *out[1] = {z};
        double t0 = now_s();
        for (pos = 0; pos < tokens; pos++) {
            if (d->api->infer(s, 1, in, out, &err)) {
                fprintf(stderr, "kv_bench: step %d: %s\n", pos, err.message);
                return 1;
            }
            int best = 0;
            for (int64_t k = 1; k < V; k++)
                if (z[k] > z[best]) best = (int)k;
            tok = best;
        }
        if (r >= 0) t[r] = now_s() - t0;
    }
    double ms = median_ms(t, rounds);
    printf("decode %d tokens median %.3f ms (%.0f tokens/s)\n", tokens, ms, tokens / (ms * 1e-3));
    d->api->destroy(s);
    return 0;
}

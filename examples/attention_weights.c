/* attention_weights.c -- translates one Spanish number with a trained
 * examples/seq2seq_attention.dnn and prints where the decoder looked:
 *
 *   attention_weights MODEL.so WEIGHTS "doscientos treinta y siete"
 *
 * Greedy decoding as dnnrun's pairs evaluation does it (tgt_in = BOS, then
 * the bytes decoded so far; the model rerun for each position), then one
 * row per decoded byte: the source text, and under each source byte its
 * attention weight as a digit 0-9 (tenths, '.' below 0.05).  Needs only
 * libc, libdl and dnrt.h: the library is opened through its descriptor.
 * Build: cc -O2 -I runtime/include examples/attention_weights.c -o attention_weights -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnrt.h"

enum { BOS = 1, EOS = 2 };

static int fail(const char *what, const char *why)
{
    fprintf(stderr, "attention_weights: %s: %s\n", what, why);
    return 1;
}

/* Index of the descriptor tensor named 'name' in 't[0..n)', or -1. */
static int find(const dnrt_tensor_desc *t, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(t[i].name, name)) return i;
    return -1;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: attention_weights MODEL.so WEIGHTS SOURCE\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    const dnrt_model_desc *d = h ? dlsym(h, "dnnc_descriptor") : NULL;
    if (!d || d->abi_version != DNRT_ABI_VERSION) return fail(argv[1], h ? "no usable dnnc_descriptor" : dlerror());
    int isrc = find(d->inputs, d->ninputs, "src"), ilen = find(d->inputs, d->ninputs, "src_len");
    int itgt = find(d->inputs, d->ninputs, "tgt_in"), ilog = find(d->outputs, d->noutputs, "logits");
    int iatt = find(d->outputs, d->noutputs, "attn");
    if (isrc != 0 || ilen != 1 || itgt != 2 || ilog != 0 || iatt != 1 || d->noutputs != 2)
        return fail(argv[1], "expected inputs (src, src_len, tgt_in) and outputs (logits, attn)");
    int S = (int)d->inputs[0].dim[1], T = (int)d->inputs[2].dim[1], V = (int)d->outputs[0].dim[2];
    int len = (int)strlen(argv[3]);
    if (len < 1 || len > S) return fail(argv[3], "the source must have 1 to S bytes");
    dnrt_error err = {0};
    dnrt_options opt = {.threads = 1, .seed = 1};
    dnrt_session *s = d->api->create(d, &opt, &err);
    if (!s || d->api->load(s, argv[2], &err)) return fail(argv[2], err.message);
    int32_t *src = calloc((size_t)S, sizeof *src), *tgt = calloc((size_t)T, sizeof *tgt), slen = len;
    float *logits = malloc(sizeof *logits * (size_t)(T * V)), *attn = malloc(sizeof *attn * (size_t)(T * S));
    for (int i = 0; i < len; i++) src[i] = (unsigned char)argv[3][i];
    char out[64] = "";
    int n = 0;
    tgt[0] = BOS;
    const void *in[3] = {src, &slen, tgt};
    void *res[2] = {logits, attn};
    for (int t = 0; t < T; t++) { /* position t's argmax becomes tgt_in[t + 1] */
        if (d->api->infer(s, 1, in, res, &err)) return fail("infer", err.message);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[t * V + v] > logits[t * V + best]) best = v;
        if (best == EOS || t + 1 == T) break;
        out[n++] = (char)best;
        tgt[t + 1] = best;
    }
    out[n] = 0;
    printf("%s -> %s\n\n      %s\n", argv[3], out, argv[3]);
    for (int t = 0; t <= n && t < T; t++) { /* the weights of the last rerun: rows 0..n */
        printf("%-4s  ", t < n ? (char[2]){out[t], 0} : "EOS");
        for (int i = 0; i < len; i++) {
            float w = attn[t * S + i];
            putchar(w < 0.05f ? '.' : w >= 0.95f ? '9' : (char)('0' + (int)(w * 10 + 0.5f)));
        }
        putchar('\n');
    }
    d->api->destroy(s);
    free(src), free(tgt), free(logits), free(attn);
    return 0;
}

/* check.c -- runs a library dnnc wrote on given inputs and compares its
 * outputs with expected ones: the check of tests/gpu/run.sh on a GPU
 * machine, which has no compiler toolchain, hence libc and dlopen only:
 *     cc -O2 tests/gpu/check.c -ldl -o check
 *
 *   check LIB INPUTS [WEIGHTS] [--seed S] [--train N] [--atol A] [--rtol R]
 *     INPUTS (safetensors) holds a tensor per input of the library's
 *     descriptor (labels only with --train) and "expect.<name>" per output;
 *     with --train N, also "expect.train_loss" (f32[N]): the losses of N
 *     training steps on the same inputs, run after the inference.  Prints
 *     "name: max abs err X (ok|FAIL)" per output (and for train_loss);
 *     an element passes when |got - want| <= atol + rtol * |want|
 *     (defaults 1e-4 and 1e-4).
 *   check --record OUT LIB INPUTS [WEIGHTS] [--seed S] [--train N]
 *     runs LIB (the reference: the CPU build) the same way and writes OUT:
 *     the inputs, and its outputs (and losses) as the expected tensors.
 *     INPUTS may be "random:B": deterministic random inputs of batch B
 *     (floats in [-1, 1], integers in the descriptor's valid range, else
 *     [0, 9]).
 *   --bench R (either form): afterwards, times R more inference calls (after
 *     2 unmeasured ones) and, with --train, R more training steps, each
 *     call synchronised by its return, and prints
 *     "bench: infer batch B median M ms" (and "bench: train_step ...").
 * Sessions get threads 0 and seed S (default 1), so dropout and
 * initializers, identical on every backend, draw the same numbers.
 * Exit status: 0 all ok, 1 a mismatch or any error (named on stderr),
 * 2 wrong usage.
 */
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../runtime/include/dnrt.h"

#define MAX_TENSORS 256
#define MAX_RANK    8

typedef struct Tensor {
    char name[160];
    int dtype; /* dnrt_dtype */
    int rank;
    int64_t dim[MAX_RANK];
    void *data; /* malloc'd */
    size_t nbytes;
} Tensor;

typedef struct Set {
    int n;
    Tensor t[MAX_TENSORS];
} Set;

static const char *dtype_names[] = {"F32", "I32", "I64"};
static int esize(int dt) { return dt == DNRT_I64 ? 8 : 4; }

static int fail(const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "check: ");
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return -1;
}

static Tensor *find(Set *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (strcmp(s->t[i].name, name) == 0) return &s->t[i];
    return NULL;
}

/* ---- the safetensors header: a JSON object of tensors ------------------- */

typedef struct Json {
    const char *p, *end;
} Json;

static void ws(Json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}
static int eat(Json *j, char c)
{
    ws(j);
    if (j->p < j->end && *j->p == c) return j->p++, 1;
    return 0;
}
static int string(Json *j, char *out, size_t cap)
{
    size_t n = 0;
    if (!eat(j, '"')) return -1;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\' && j->p < j->end) c = *j->p++, c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        if (n + 1 < cap) out[n++] = c;
    }
    out[n] = 0;
    return j->p < j->end ? (j->p++, 0) : -1;
}
static int integer(Json *j, int64_t *v)
{
    ws(j);
    char *e;
    if (j->p >= j->end || (*j->p != '-' && (*j->p < '0' || *j->p > '9'))) return -1;
    *v = strtoll(j->p, &e, 10);
    return e > j->end ? -1 : (j->p = e, 0);
}
static int skip(Json *j, int depth)
{
    char tmp[8];
    ws(j);
    if (depth > 32 || j->p >= j->end) return -1;
    if (*j->p == '"') return string(j, tmp, sizeof tmp);
    if (*j->p == '{' || *j->p == '[') {
        char close = *j->p++ == '{' ? '}' : ']';
        if (eat(j, close)) return 0;
        do {
            if (close == '}' && (string(j, tmp, sizeof tmp) || !eat(j, ':'))) return -1;
            if (skip(j, depth + 1)) return -1;
        } while (eat(j, ','));
        return eat(j, close) ? 0 : -1;
    }
    while (j->p < j->end && strchr(",}] \n\r\t", *j->p) == NULL) j->p++;
    return 0;
}
static int int_list(Json *j, int64_t *v, int max, int *n)
{
    *n = 0;
    if (!eat(j, '[')) return -1;
    if (eat(j, ']')) return 0;
    do
        if (*n >= max || integer(j, &v[(*n)++])) return -1;
    while (eat(j, ','));
    return eat(j, ']') ? 0 : -1;
}

/* Reads one tensor's header entry; its data_offsets into off[2]. */
static int tensor_entry(Json *j, Tensor *t, int64_t off[2], const char *path)
{
    char key[32], dt[16] = "";
    int noff = 0;
    t->rank = -1;
    if (!eat(j, '{')) return -1;
    do {
        if (string(j, key, sizeof key) || !eat(j, ':')) return -1;
        if (strcmp(key, "dtype") == 0) {
            if (string(j, dt, sizeof dt)) return -1;
        } else if (strcmp(key, "shape") == 0) {
            if (int_list(j, t->dim, MAX_RANK, &t->rank)) return -1;
        } else if (strcmp(key, "data_offsets") == 0) {
            if (int_list(j, off, 2, &noff)) return -1;
        } else if (skip(j, 1))
            return -1;
    } while (eat(j, ','));
    if (!eat(j, '}') || t->rank < 0 || noff != 2) return -1;
    for (t->dtype = 0; t->dtype < 3 && strcmp(dt, dtype_names[t->dtype]) != 0; t->dtype++) {
    }
    if (t->dtype == 3) return fail("%s: tensor '%s' has a dtype other than F32, I32 or I64", path, t->name) - 1;
    return 0;
}

static int64_t numel(const Tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n = t->dim[i] < 0 || (t->dim[i] && n > INT64_MAX / t->dim[i]) ? -1 : n * t->dim[i];
    return n;
}

static int read_file(const char *path, Set *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fail("%s: cannot open (%s)", path, strerror(errno));
    uint8_t len8[8];
    uint64_t hlen = 0;
    long size = -1;
    if (fread(len8, 1, 8, f) == 8 && fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len8[i];
    if (size < 8 || hlen == 0 || hlen > (uint64_t)size - 8 || hlen > 100000000) {
        fclose(f);
        return fail("%s: %s", path, "not a safetensors file (bad 8-byte header length)");
    }
    uint64_t dlen = (uint64_t)size - 8 - hlen;
    char *head = malloc(hlen + 1); /* NUL-terminated: strtoll stops there */
    uint8_t *data = malloc(dlen ? dlen : 1);
    int rc =
        head && data && fseek(f, 8, SEEK_SET) == 0 && fread(head, 1, hlen, f) == hlen && fread(data, 1, dlen, f) == dlen
            ? 0
            : fail("%s: %s", path, "read error");
    fclose(f);
    if (head) head[hlen] = 0;
    Json j = {head, head + hlen};
    if (rc == 0 && !eat(&j, '{')) rc = fail("%s: %s", path, "the header is not a JSON object");
    if (rc == 0 && !eat(&j, '}')) do {
            if (s->n >= MAX_TENSORS) {
                rc = fail("%s: %s", path, "more tensors than check handles (256)");
                break;
            }
            Tensor *t = &s->t[s->n];
            int64_t off[2];
            memset(t, 0, sizeof *t);
            if (string(&j, t->name, sizeof t->name) || !eat(&j, ':')) {
                rc = fail("%s: %s", path, "bad JSON in the header");
                break;
            }
            if (strcmp(t->name, "__metadata__") == 0) {
                if (skip(&j, 0)) rc = fail("%s: %s", path, "bad __metadata__ in the header");
                continue;
            }
            if ((rc = tensor_entry(&j, t, off, path)) == -1)
                fail("%s: bad header entry for tensor '%s'", path, t->name);
            if (rc) break;
            int64_t count = numel(t);
            if (off[0] < 0 || off[1] < off[0] || (uint64_t)off[1] > dlen || count < 0 || (uint64_t)count > dlen ||
                off[1] - off[0] != count * esize(t->dtype)) {
                rc = fail("%s: tensor '%s': data_offsets do not match its shape or the file's size", path, t->name);
                break;
            }
            t->nbytes = (size_t)(off[1] - off[0]);
            if (!(t->data = malloc(t->nbytes ? t->nbytes : 1)))
                rc = fail("%s: %s", path, "out of memory");
            else
                memcpy(t->data, data + off[0], t->nbytes), s->n++;
        } while (rc == 0 && eat(&j, ','));
    if (rc == 0 && !eat(&j, '}')) rc = fail("%s: %s", path, "bad JSON in the header (no closing brace)");
    free(head);
    free(data);
    return rc ? -1 : 0;
}

static int write_file(const char *path, const Set *s)
{
    size_t cap = 256 + (size_t)s->n * 400, at = 0, off = 0;
    char *h = malloc(cap);
    if (!h) return fail("%s: %s", path, "out of memory");
    at += (size_t)snprintf(h + at, cap - at, "{");
    for (int i = 0; i < s->n; i++) {
        const Tensor *t = &s->t[i];
        at += (size_t)snprintf(h + at, cap - at, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "", t->name,
                               dtype_names[t->dtype]);
        for (int d = 0; d < t->rank; d++)
            at += (size_t)snprintf(h + at, cap - at, "%s%lld", d ? "," : "", (long long)t->dim[d]);
        at += (size_t)snprintf(h + at, cap - at, "],\"data_offsets\":[%zu,%zu]}", off, off + t->nbytes);
        off += t->nbytes;
    }
    at += (size_t)snprintf(h + at, cap - at, "}");
    while (at % 8) h[at++] = ' ';
    FILE *f = fopen(path, "wb");
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)at >> (8 * i));
    int ok = f && fwrite(len8, 1, 8, f) == 8 && fwrite(h, 1, at, f) == at;
    for (int i = 0; ok && i < s->n; i++) ok = fwrite(s->t[i].data, 1, s->t[i].nbytes, f) == s->t[i].nbytes;
    free(h);
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : fail("%s: %s", path, "cannot write");
}

/* ---- inputs -------------------------------------------------------------- */

static Tensor *add(Set *s, const char *name, int dtype, int rank, const int64_t *dim, int64_t n)
{
    if (s->n >= MAX_TENSORS) return NULL;
    Tensor *t = &s->t[s->n];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = dtype, t->rank = rank;
    for (int i = 0; i < rank; i++) t->dim[i] = dim[i] < 0 ? n : dim[i];
    t->nbytes = (size_t)numel(t) * (size_t)esize(dtype);
    if (!(t->data = calloc(1, t->nbytes ? t->nbytes : 1))) return NULL;
    return &s->t[s->n++];
}

static int random_inputs(const dnrt_model_desc *d, int64_t n, Set *s)
{
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < d->ninputs; i++) {
        const dnrt_tensor_desc *in = &d->inputs[i];
        Tensor *t = add(s, in->name, in->dtype, in->rank, in->dim, n);
        if (!t) return fail("%s: %s", in->name, "out of memory");
        int64_t lo = in->valid_min < in->valid_max ? in->valid_min : 0, hi = lo < in->valid_max ? in->valid_max : 9;
        for (int64_t k = 0; k < numel(t); k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int64_t v = lo + (int64_t)(x % (uint64_t)(hi - lo + 1));
            if (t->dtype == DNRT_F32)
                ((float *)t->data)[k] = (float)((double)(x >> 11) / 4503599627370496.0 - 1.0);
            else if (t->dtype == DNRT_I32)
                ((int32_t *)t->data)[k] = (int32_t)v;
            else
                ((int64_t *)t->data)[k] = v;
        }
    }
    return 0;
}

/* The data of each input (train-only ones only when 'train') into ptr[];
 * checks dtype and shape against the descriptor; the batch size in *n. */
static int bind_inputs(const dnrt_model_desc *d, Set *s, const char *path, int train, const void **ptr, int64_t *n)
{
    *n = -1;
    for (int i = 0; i < d->ninputs; i++) {
        const dnrt_tensor_desc *in = &d->inputs[i];
        if (in->train_only && !train) continue;
        Tensor *t = find(s, in->name);
        if (!t) return fail("%s: no tensor '%s' (an input of the model)", path, in->name);
        int ok = t->dtype == in->dtype && t->rank == in->rank;
        for (int k = 0; ok && k < in->rank; k++) {
            if (in->dim[k] >= 0)
                ok = t->dim[k] == in->dim[k];
            else if (*n < 0)
                *n = t->dim[k];
            else
                ok = t->dim[k] == *n;
        }
        if (!ok || *n == 0)
            return fail("%s: tensor '%s' has a dtype or shape other than the model's input (or another batch size)",
                        path, in->name);
        ptr[i] = t->data;
    }
    if (*n < 0) *n = 1;
    return 0;
}

/* ---- comparing ------------------------------------------------------------ */

static double value(const Tensor *t, int64_t k)
{
    return t->dtype == DNRT_F32   ? ((float *)t->data)[k]
           : t->dtype == DNRT_I32 ? ((int32_t *)t->data)[k]
                                  : (double)((int64_t *)t->data)[k];
}

static int compare(const char *name, const Tensor *got, Set *in, const char *path, double atol, double rtol)
{
    char key[200];
    snprintf(key, sizeof key, "expect.%s", name);
    const Tensor *want = find(in, key);
    if (!want) return printf("%s: no tensor '%s' in %s (FAIL)\n", name, key, path), 1;
    if (want->dtype != got->dtype || numel(want) != numel(got))
        return printf("%s: '%s' has %lld %s elements, the output %lld %s (FAIL)\n", name, key, (long long)numel(want),
                      dtype_names[want->dtype], (long long)numel(got), dtype_names[got->dtype]),
               1;
    double worst = 0;
    int bad = 0;
    for (int64_t k = 0; k < numel(got); k++) {
        double g = value(got, k), w = value(want, k), e = fabs(g - w);
        if (!(e <= atol + rtol * fabs(w))) bad = 1;
        if (!(e <= worst)) worst = e; /* NaN sticks */
    }
    printf("%s: max abs err %g (%s)\n", name, worst, bad ? "FAIL" : "ok");
    return bad;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Times 'reps' calls of infer (train == 0) or train_step; prints the median. */
static int bench(const dnrt_model_desc *d, dnrt_session *s, int64_t n, const void *const *iptr, void *const *optr,
                 int train, int reps)
{
    double *ms = malloc(sizeof *ms * (size_t)reps);
    if (!ms) return fail("%s: %s", "bench", "out of memory"), 1;
    dnrt_error err = {0};
    float loss;
    for (int r = -2; r < reps; r++) {
        double t0 = now_ms();
        int rc = train ? d->api->train_step(s, n, iptr, &loss, &err) : d->api->infer(s, n, iptr, optr, &err);
        if (rc) {
            free(ms);
            return fail("bench: %s%s", err.message, ""), 1;
        }
        if (r >= 0) ms[r] = now_ms() - t0;
    }
    qsort(ms, (size_t)reps, sizeof *ms, by_value);
    double med = reps % 2 ? ms[reps / 2] : (ms[reps / 2 - 1] + ms[reps / 2]) / 2;
    printf("bench: %s batch %lld median %.3f ms (%d calls)\n", train ? "train_step" : "infer", (long long)n, med, reps);
    free(ms);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: check LIB INPUTS [WEIGHTS] [--seed S] [--train N] [--atol A] [--rtol R] [--bench R]\n"
                    "       check --record OUT LIB INPUTS|random:B [WEIGHTS] [--seed S] [--train N] [--bench R]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *pos[3] = {0}, *record = NULL;
    int npos = 0, train = 0, reps = 0;
    unsigned long long seed = 1;
    double atol = 1e-4, rtol = 1e-4;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] == '-' && a[1] == '-' && i + 1 >= argc) usage();
        if (strcmp(a, "--record") == 0)
            record = argv[++i];
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(argv[++i], NULL, 10);
        else if (strcmp(a, "--train") == 0)
            train = atoi(argv[++i]);
        else if (strcmp(a, "--atol") == 0)
            atol = atof(argv[++i]);
        else if (strcmp(a, "--rtol") == 0)
            rtol = atof(argv[++i]);
        else if (strcmp(a, "--bench") == 0)
            reps = atoi(argv[++i]);
        else if (a[0] == '-' || npos == 3)
            usage();
        else
            pos[npos++] = a;
    }
    if (npos < 2 || train < 0 || train > 100000 || reps < 0 || reps > 100000) usage();
    const char *lib = pos[0], *inputs = pos[1], *weights = pos[2];
    char libpath[4096]; /* a bare name is a file here, not one on the search path */
    snprintf(libpath, sizeof libpath, "%s%s", strchr(lib, '/') ? "" : "./", lib);
    void *h = dlopen(libpath, RTLD_NOW | RTLD_LOCAL);
    if (!h) return fail("cannot load the library: %s%s", dlerror(), ""), 1;
    const dnrt_model_desc *d = dlsym(h, "dnnc_descriptor");
    if (!d || d->abi_version != DNRT_ABI_VERSION)
        return fail("%s: %s", lib, "no dnnc_descriptor of this runtime's ABI version (not a dnnc library?)"), 1;
    if (train && (!d->trains || !d->train)) return fail("%s: %s", lib, "--train: the library has no training"), 1;
    static Set in, out;
    const void *iptr[64] = {0};
    int64_t n = 0;
    if (d->ninputs > 64 || d->noutputs > 64) return fail("%s: %s", lib, "more than 64 inputs or outputs"), 1;
    if (strncmp(inputs, "random:", 7) == 0) {
        if ((n = atoll(inputs + 7)) < 1 || !record) usage();
        if (random_inputs(d, n, &in)) return 1;
    } else if (read_file(inputs, &in))
        return 1;
    if (bind_inputs(d, &in, inputs, 0, iptr, &n)) return 1;
    dnrt_options opt = {.threads = 0, .seed = seed};
    dnrt_error err = {0};
    static dnrt_session *s; /* static: reachable until exit, also on the error paths */
    s = d->api->create(d, &opt, &err);
    if (!s) return fail("%s: create failed: %s", lib, err.message), 1;
    if (weights && d->api->load(s, weights, &err)) return fail("%s: %s", weights, err.message), 1;
    void *optr[64];
    for (int i = 0; i < d->noutputs; i++) {
        const dnrt_tensor_desc *o = &d->outputs[i];
        char key[200];
        snprintf(key, sizeof key, "expect.%s", o->name);
        Tensor *t = add(&out, key, o->dtype, o->rank, o->dim, n);
        if (!t) return fail("%s: %s", lib, "out of memory"), 1;
        optr[i] = t->data;
    }
    if (d->api->infer(s, n, iptr, optr, &err)) return fail("%s: infer failed: %s", lib, err.message), 1;
    int bad = 0;
    for (int i = 0; i < d->noutputs && !record; i++)
        bad |= compare(d->outputs[i].name, &out.t[i], &in, inputs, atol, rtol);
    if (train) {
        int64_t nt, dim[1] = {train};
        Tensor *loss = add(&out, "expect.train_loss", DNRT_F32, 1, dim, 0);
        if (!loss || bind_inputs(d, &in, inputs, 1, iptr, &nt)) return 1;
        for (int k = 0; k < train; k++) {
            float *l = (float *)loss->data + k;
            if (d->api->train_step(s, nt, iptr, l, &err)) return fail("%s: train_step failed: %s", lib, err.message), 1;
            printf("train step %d: loss %.6g\n", k + 1, (double)*l);
        }
        if (!record) bad |= compare("train_loss", loss, &in, inputs, atol, rtol);
    }
    if (reps && (bench(d, s, n, iptr, optr, 0, reps) || (train && bench(d, s, n, iptr, optr, 1, reps)))) return 1;
    d->api->destroy(s);
    if (record) {
        for (int i = 0; i < in.n && out.n < MAX_TENSORS; i++)
            if (strncmp(in.t[i].name, "expect.", 7) != 0) out.t[out.n++] = in.t[i];
        if (write_file(record, &out)) return 1;
        printf("wrote %s: %d tensors\n", record, out.n);
    }
    return bad ? 1 : 0;
}

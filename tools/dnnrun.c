/* dnnrun.c -- the generic runner: drives any library dnnc wrote through
 * dlopen and its exported 'dnnc_descriptor' (runtime/include/dnrt.h).
 *
 *   dnnrun info  MODEL.so
 *   dnnrun train MODEL.so [--data fashion-mnist[:DIR]|text:FILES|pairs:FILE] [--epochs E] [--batch B] ...
 *   dnnrun eval  MODEL.so --weights W [--data ...]
 *   dnnrun infer MODEL.so --weights W [--data ...] [--count K]
 *   dnnrun generate STEP.so --weights W --prompt TEXT [--length L] ...
 *
 * This file holds the options, the library and Fashion-MNIST; text and
 * pairs data are data_text.c and data_pairs.c (their loop seq_train.c),
 * generate is generate.c (docs/dnnrun.md).  Fashion-MNIST: IDX files
 * (gzip'd or raw, tools/idx.c), images scaled to [0, 1] and standardised
 * with the training set's mean 0.2860 and std 0.3530 unless
 * --no-standardize.  Training stops at the first step the
 * library refuses as non-finite (DNRT_ERR_NONFINITE) and at the first loss
 * above --diverge times the mean of the run's first DIVERGE_BASE steps;
 * either way nothing more is saved, so --save keeps the last good epoch's
 * weights (or what it held before).  Exit status: 0 ok, 1 runtime error
 * (files, library, training, a non-finite or diverged run), 2 wrong usage. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "data_pairs.h"
#include "data_text.h"
#include "dnnrun.h"
#include "generate.h"
#include "idx.h"
#include "seq_train.h"

#define DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define FMNIST_MEAN      0.2860f
#define FMNIST_STD       0.3530f
#define FMNIST_CLASSES   10

static const char *const class_names[FMNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

static const char usage_text[] =
    "usage: dnnrun COMMAND MODEL.so [options]\n"
    "\n"
    "Runs a library written by dnnc through its generic descriptor.\n"
    "\n"
    "commands:\n"
    "  info  MODEL.so                  print inputs, outputs, state tensors, arena bytes\n"
    "  train MODEL.so --save W         train on the --data; evaluate on its test or held-out\n"
    "                                  part and save the weights after every epoch\n"
    "  eval  MODEL.so --weights W      fashion-mnist: test-set accuracy and mean cross-entropy;\n"
    "                                  text: held-out cross-entropy and bits/char; pairs: greedy\n"
    "                                  exact-match accuracy and teacher-forced cross-entropy\n"
    "  infer MODEL.so --weights W      predictions for the first --count test images or pairs\n"
    "  generate STEP.so --weights W --prompt TEXT\n"
    "                                  sample text from a step library, one byte a step\n"
    "\n"
    "data (--data):\n"
    "  fashion-mnist[:DIR]  default DIR " DEFAULT_DATA_DIR ";\n"
    "                       DIR holds {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]\n"
    "  text:FILE[,FILE...]  byte-level language modelling: the model takes tokens i32[N, T]\n"
    "                       (bytes) and returns logits f32[N, T, V >= 256]; train's label is\n"
    "                       i32[N, T] (the next bytes).  The last 10% of each file is held\n"
    "                       out; training takes windows of T+1 bytes at seeded random\n"
    "                       offsets, train_bytes / T windows an epoch.  A model declared\n"
    "                       with T<=bound runs at T = --seq-len (default: the bound)\n"
    "  pairs:FILE           sequence to sequence: lines 'source<TAB>target' (bytes); inputs\n"
    "                       by name src i32[N, S], optional src_len i32[N], tgt_in i32[N, T]\n"
    "                       (1 = BOS, target, 0s), train label i32[N, T] (target, 2 = EOS,\n"
    "                       -100s), output logits f32[N, T, 256].  train evaluates on --test\n"
    "                       FILE2 (required); eval and infer on --test FILE2, else on FILE\n"
    "\n"
    "options:\n"
    "  --data D          the data (above; default fashion-mnist)\n"
    "  --test FILE2      pairs: the evaluation pairs\n"
    "  --epochs E        training epochs (default 1)\n"
    "  --batch B         batch size for training and evaluation (default 64)\n"
    "  --seed S          seed of the shuffle or windows, of the session and of generate's\n"
    "                    sampling (default 1)\n"
    "  --lr X            override the compiled base learning rate\n"
    "  --diverge F       stop when a step's loss exceeds F times the mean loss of\n"
    "                    the run's first 10 steps (default 1e4; 0 turns it off)\n"
    "  --threads T       worker threads (default: $DNRT_THREADS or all cores)\n"
    "  --save W          weights file written after each epoch (train; required)\n"
    "  --resume W        load weights (and optimizer state, if present) before training\n"
    "  --weights W       weights to load (eval, infer, generate)\n"
    "  --limit K         use only the first K images or pairs of each split (text: at most\n"
    "                    K windows an epoch and K held-out windows)\n"
    "  --count K         images or pairs to show (infer, default 10)\n"
    "  --seq-len L       text: the window length T for a model whose sequence axis is\n"
    "                    declared T<=bound (1..bound; default the bound)\n"
    "  --acc-every K     running train accuracy from infer on every K-th batch\n"
    "                    (default 20; 0 turns it off; fashion-mnist)\n"
    "  --no-standardize  feed x/255 instead of (x/255 - 0.2860)/0.3530 (fashion-mnist)\n"
    "  --prompt TEXT     generate: the bytes fed first (required)\n"
    "  --length L        generate: bytes to sample (default 200)\n"
    "  --temperature X   generate: sample from softmax(logits / X) (default 1)\n"
    "  --top-k K         generate: sample among the K largest logits only (default 0: all)\n"
    "  --greedy          generate: take the argmax instead of sampling\n"
    "  --help            this text\n"
    "\n"
    "A step library (generate) takes the step's token i32[N, 1] first, then state\n"
    "tensors, and returns logits f32[N, 1, V] (V <= 256) first, then the new states\n"
    "in the order and shapes of the state inputs (none: a bigram model).  generate\n"
    "runs at N = 1 from zero states, feeds the prompt a byte a step, then samples.\n"
    "\n"
    "Weights are safetensors files named by the model's parameters and are\n"
    "written atomically: a failed save leaves the previous file intact.\n"
    "Training stops at the first step whose loss or gradients are NaN or\n"
    "infinite (the library refuses it and keeps its state) or whose loss\n"
    "diverged (--diverge), names the epoch and step, and exits 1 without\n"
    "saving again: --save W keeps the last good epoch's weights, or what it held\n"
    "before.  Weights that are not finite are never saved.\n"
    "exit status: 0 success, 1 runtime error (or a non-finite or diverged run),\n"
    "2 wrong usage\n";

/* ---- errors ---------------------------------------------------------------- */

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dnnrun: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(dnnrun --help for usage)\n", stderr);
    va_end(ap);
    exit(2);
}

int runtime_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dnnrun: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- arguments ------------------------------------------------------------- */

static int64_t parse_int(const char *opt, const char *v, int64_t min)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < min)
        usage_error("%s expects an integer >= %lld, got '%s'", opt, (long long)min, v);
    return x;
}

static void parse_data(Opts *o, const char *v)
{
    if (strcmp(v, "fashion-mnist") == 0)
        o->data = DATA_FASHION, o->data_dir = DEFAULT_DATA_DIR;
    else if (strncmp(v, "fashion-mnist:", 14) == 0 && v[14])
        o->data = DATA_FASHION, o->data_dir = v + 14;
    else if (strncmp(v, "text:", 5) == 0 && v[5])
        o->data = DATA_TEXT, o->files = v + 5;
    else if (strncmp(v, "pairs:", 6) == 0 && v[6])
        o->data = DATA_PAIRS, o->files = v + 6;
    else
        usage_error("--data: unknown dataset '%s' (supported: fashion-mnist[:DIR], text:FILE[,FILE...], pairs:FILE)",
                    v);
}

static double parse_real(const char *opt, const char *v)
{
    char *end;
    double x = strtod(v, &end);
    if (*end || end == v || !(x > 0) || !isfinite(x)) usage_error("%s expects a positive number, got '%s'", opt, v);
    return x;
}

/* Handles option argv[*i] (with its value); returns 0 or exits with status 2. */
static void parse_option(Opts *o, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strcmp(a, "--no-standardize") == 0) {
        o->standardize = 0;
        return;
    }
    if (strcmp(a, "--greedy") == 0) {
        o->greedy = 1;
        return;
    }
    static const char *const with_value[] = {"--data",    "--epochs",      "--batch",   "--seed",    "--lr",
                                             "--threads", "--save",        "--resume",  "--weights", "--limit",
                                             "--count",   "--acc-every",   "--diverge", "--test",    "--prompt",
                                             "--length",  "--temperature", "--top-k",   "--seq-len", NULL};
    int known = 0;
    for (int k = 0; with_value[k]; k++) known |= strcmp(a, with_value[k]) == 0;
    if (!known) usage_error("unknown option '%s'", a);
    if (*i + 1 >= argc) usage_error("%s needs a value", a);
    const char *v = argv[++*i];
    if (!strcmp(a, "--data"))
        parse_data(o, v);
    else if (!strcmp(a, "--epochs"))
        o->epochs = parse_int(a, v, 1);
    else if (!strcmp(a, "--batch"))
        o->batch = parse_int(a, v, 1);
    else if (!strcmp(a, "--seed"))
        o->seed = (uint64_t)parse_int(a, v, 0);
    else if (!strcmp(a, "--threads"))
        o->threads = parse_int(a, v, 1);
    else if (!strcmp(a, "--limit"))
        o->limit = parse_int(a, v, 1);
    else if (!strcmp(a, "--count"))
        o->count = parse_int(a, v, 1);
    else if (!strcmp(a, "--seq-len"))
        o->seq_len = parse_int(a, v, 1);
    else if (!strcmp(a, "--acc-every"))
        o->acc_every = parse_int(a, v, 0);
    else if (!strcmp(a, "--save"))
        o->save = v;
    else if (!strcmp(a, "--resume"))
        o->resume = v;
    else if (!strcmp(a, "--weights"))
        o->weights = v;
    else if (!strcmp(a, "--test"))
        o->test = v;
    else if (!strcmp(a, "--prompt"))
        o->prompt = v;
    else if (!strcmp(a, "--length"))
        o->length = parse_int(a, v, 0);
    else if (!strcmp(a, "--top-k"))
        o->top_k = parse_int(a, v, 0);
    else if (!strcmp(a, "--temperature"))
        o->temperature = parse_real(a, v);
    else if (!strcmp(a, "--diverge")) {
        char *end;
        o->diverge = strtod(v, &end);
        if (*end || end == v || !(o->diverge == 0 || o->diverge > 1) || !isfinite(o->diverge))
            usage_error("--diverge expects 0 (off) or a factor > 1, got '%s'", v);
    } else {
        char *end;
        o->lr = strtof(v, &end);
        if (*end || end == v || !(o->lr > 0) || !isfinite(o->lr))
            usage_error("--lr expects a positive number, got '%s'", v);
        o->has_lr = 1;
    }
}

static void parse_args(int argc, char **argv, Opts *o)
{
    *o = (Opts){.data_dir = DEFAULT_DATA_DIR,
                .epochs = 1,
                .batch = 64,
                .count = 10,
                .acc_every = 20,
                .seed = 1,
                .diverge = DIVERGE_FACTOR,
                .standardize = 1,
                .length = 200,
                .temperature = 1.0};
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            exit(0);
        }
    if (argc < 2) usage_error("missing command (info, train, eval, infer or generate)");
    o->cmd = argv[1];
    if (strcmp(o->cmd, "info") && strcmp(o->cmd, "train") && strcmp(o->cmd, "eval") && strcmp(o->cmd, "infer") &&
        strcmp(o->cmd, "generate"))
        usage_error("unknown command '%s' (info, train, eval, infer or generate)", o->cmd);
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1] == '-')
            parse_option(o, argc, argv, &i);
        else if (!o->model)
            o->model = argv[i];
        else
            usage_error("unexpected argument '%s'", argv[i]);
    }
    if (!o->model) usage_error("%s: missing MODEL.so", o->cmd);
    if (!strcmp(o->cmd, "train") && !o->save) usage_error("train: --save W.safetensors is required");
    if ((!strcmp(o->cmd, "eval") || !strcmp(o->cmd, "infer") || !strcmp(o->cmd, "generate")) && !o->weights)
        usage_error("%s: --weights W.safetensors is required", o->cmd);
    if (o->test && o->data != DATA_PAIRS) usage_error("--test FILE goes with --data pairs:FILE only");
    if (o->seq_len && o->data != DATA_TEXT) usage_error("--seq-len L goes with --data text:FILE only");
    if (!strcmp(o->cmd, "infer") && o->data == DATA_TEXT)
        usage_error("infer: text data has no examples to show; dnnrun generate samples text from a step library");
    if (strcmp(o->cmd, "generate") && (o->prompt || o->greedy))
        usage_error("%s goes with generate only", o->prompt ? "--prompt" : "--greedy");
    if (!strcmp(o->cmd, "generate") && (!o->prompt || !o->prompt[0]))
        usage_error("generate: --prompt TEXT (at least one byte) is required");
}

/* ---- files --------------------------------------------------------------------- */

/* Fails, naming 'path' after 'what', when it exists but is not a regular
 * file: dlopen and the runtime's weights reader open files plainly, which
 * waits forever on a FIFO without a writer.  A missing file is theirs to
 * report. */
int not_regular(const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) return 0;
    return runtime_error("%s%s: not a regular file", what, path);
}

/* Fails unless a file can be created beside --save 'path', so that a path
 * that cannot be written costs no training: creates and removes
 * PATH.dnnrun-check.XXXXXX.  'path' must not be anything but a regular
 * file: the save renames its temporary over it (over /dev/null too). */
int check_save(const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) return runtime_error("--save %s: is a folder", path);
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) return runtime_error("--save %s: not a regular file", path);
    size_t n = strlen(path);
    char *probe = malloc(n + 32);
    if (!probe) return runtime_error("out of memory");
    snprintf(probe, n + 32, "%s.dnnrun-check.XXXXXX", path);
    int fd = mkstemp(probe);
    int e = errno;
    if (fd >= 0) {
        close(fd);
        unlink(probe);
    }
    free(probe);
    if (fd >= 0) return 0;
    const char *slash = strrchr(path, '/');
    int dlen = slash ? (slash == path ? 1 : (int)(slash - path)) : 1;
    return runtime_error("--save %s: cannot create a file in the folder '%.*s': %s", path, dlen, slash ? path : ".",
                         strerror(e));
}

/* ---- the library ------------------------------------------------------------ */

int open_model(const char *path, Model *m)
{
    memset(m, 0, sizeof *m);
    if (access(path, R_OK) != 0) return runtime_error("%s: %s", path, strerror(errno));
    if (not_regular("", path)) return 1;
    /* dlopen searches the library path for names without a slash. */
    char buf[4096];
    if (!strchr(path, '/'))
        snprintf(buf, sizeof buf, "./%s", path);
    else
        snprintf(buf, sizeof buf, "%s", path);
    m->handle = dlopen(buf, RTLD_NOW | RTLD_LOCAL);
    if (!m->handle) return runtime_error("%s: cannot load: %s", path, dlerror());
    m->d = dlsym(m->handle, "dnnc_descriptor");
    if (!m->d) return runtime_error("%s: no 'dnnc_descriptor' symbol: not a library written by dnnc", path);
    if (m->d->abi_version != DNRT_ABI_VERSION)
        return runtime_error("%s: descriptor ABI version %u, this dnnrun understands %d: rebuild one of them", path,
                             m->d->abi_version, DNRT_ABI_VERSION);
    m->api = m->d->api;
    if (!m->api || !m->api->create || !m->api->infer) return runtime_error("%s: descriptor without an API table", path);
    return 0;
}

int create_session(Model *m, const Opts *o)
{
    dnrt_options opt = {.threads = (int32_t)o->threads, .seed = o->seed};
    dnrt_error err = {0};
    m->s = m->api->create(m->d, &opt, &err);
    if (!m->s) return runtime_error("%s: cannot create a session: %s", o->model, err.message);
    return 0;
}

void close_model(Model *m)
{
    if (m->s) m->api->destroy(m->s);
    /* Not dlclose'd: the runtime's worker threads may still be winding down. */
    m->s = NULL;
}

int load_weights(const Opts *o, Model *m)
{
    if (not_regular("--weights: ", o->weights) || create_session(m, o)) return 1;
    dnrt_error err = {0};
    if (m->api->load(m->s, o->weights, &err)) return runtime_error("--weights: %s", err.message);
    return 0;
}

static const char *dtype_name(int32_t dt)
{
    return dt == DNRT_F32 ? "f32" : dt == DNRT_I32 ? "i32" : dt == DNRT_I64 ? "i64" : "?";
}

void print_shape(FILE *f, const dnrt_tensor_desc *t)
{
    char buf[160];
    fputs(shape_str(t, buf, sizeof buf), f);
}

const char *shape_str(const dnrt_tensor_desc *t, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "%s[", dtype_name(t->dtype));
    for (int i = 0; i < t->rank && at < len; i++) {
        if (t->dim[i] == DNRT_DIM_SEQ)
            at += (size_t)snprintf(buf + at, len - at, "%sT", i ? ", " : "");
        else if (t->dim[i] < 0)
            at += (size_t)snprintf(buf + at, len - at, "%sN", i ? ", " : "");
        else
            at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)t->dim[i]);
    }
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

int64_t tensor_numel(const dnrt_tensor_desc *t, int64_t n)
{
    int64_t c = 1;
    for (int i = 0; i < t->rank; i++) c *= t->dim[i] < 0 ? n : t->dim[i];
    return c;
}

int shape_is(const dnrt_tensor_desc *t, int32_t dtype, int rank, const int64_t *dims)
{
    if (t->dtype != dtype || t->rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (t->dim[i] != dims[i]) return 0;
    return 1;
}

/* Checks that the model takes f32[N,1,28,28] (+ i32[N] labels when
 * 'training') and returns f32[N,K] logits with K >= 10. */
static int check_fashion(const char *path, Model *m, int training)
{
    const dnrt_model_desc *d = m->d;
    static const int64_t img[4] = {-1, 1, 28, 28}, lab[1] = {-1};
    int nmodel = 0;
    for (int i = 0; i < d->ninputs; i++) nmodel += !d->inputs[i].train_only;
    if (nmodel != 1 || d->ninputs < 1 || !shape_is(&d->inputs[0], DNRT_F32, 4, img))
        return runtime_error("%s: model '%s' does not take one f32[N, 1, 28, 28] image input: fashion-mnist "
                             "needs that",
                             path, d->name);
    if (d->noutputs < 1 || d->outputs[0].dtype != DNRT_F32 || d->outputs[0].rank != 2 || d->outputs[0].dim[0] != -1 ||
        d->outputs[0].dim[1] < FMNIST_CLASSES)
        return runtime_error("%s: model '%s': first output must be f32[N, K] logits with K >= %d", path, d->name,
                             FMNIST_CLASSES);
    m->classes = d->outputs[0].dim[1];
    if (!training) return 0;
    if (!d->trains || !d->api->train_step)
        return runtime_error("%s: model '%s' was compiled without a train section: cannot train", path, d->name);
    if (d->ninputs != 2 || !shape_is(&d->inputs[1], DNRT_I32, 1, lab))
        return runtime_error("%s: model '%s': training needs exactly one i32[N] label input besides the image", path,
                             d->name);
    return 0;
}

/* ---- info ------------------------------------------------------------------- */

static void print_tensors(const char *title, int n, const dnrt_tensor_desc *t, int state)
{
    static const char *const kinds[] = {"weight", "buffer", "optim", "cache"};
    printf("%s (%d):\n", title, n);
    for (int i = 0; i < n; i++) {
        printf("  %-36s ", t[i].name);
        print_shape(stdout, &t[i]);
        if (state)
            printf("  %s%s  offset %lld", t[i].kind >= 0 && t[i].kind <= 3 ? kinds[t[i].kind] : "?",
                   t[i].kind == DNRT_STATE_WEIGHT && !t[i].trainable ? " (frozen)" : "", (long long)t[i].offset);
        else if (t[i].train_only)
            printf("  (train only)");
        putchar('\n');
    }
}

/* The target line: cpu, or the GPU API with its kernels and compiled images. */
static void print_target(const dnrt_model_desc *d)
{
    if (!d->gpu) {
        printf("target: cpu\n");
        return;
    }
    int api = d->gpu->api;
    printf("target: %s, %d kernels (state, arena, inputs and outputs in device memory)",
           api == DNRT_GPU_CUDA     ? "cuda"
           : api == DNRT_GPU_OPENCL ? "opencl"
                                    : "unknown GPU API",
           d->gpu->nkernels);
    for (int i = 0; i < d->gpu->nimages; i++)
        printf("%s%s (%lld bytes)", i ? ", " : "; images: ", d->gpu->images[i].arch, (long long)d->gpu->images[i].size);
    printf("\n");
}

static int cmd_info(const Opts *o)
{
    Model m;
    if (open_model(o->model, &m)) return 1;
    const dnrt_model_desc *d = m.d;
    int64_t params = 0;
    for (int i = 0; i < d->nstate; i++) {
        if (d->state[i].kind != DNRT_STATE_WEIGHT) continue;
        int64_t c = 1;
        for (int k = 0; k < d->state[i].rank; k++) c *= d->state[i].dim[k];
        params += c;
    }
    printf("model %s (%s, ABI %u)\n", d->name, o->model, d->abi_version);
    print_target(d);
    if (d->seq_bound)
        printf("sequence axis: T, any length t in 1..%lld at each call (arenas sized for t = %lld)\n",
               (long long)d->seq_bound, (long long)d->seq_bound);
    print_tensors("inputs", d->ninputs, d->inputs, 0);
    print_tensors("outputs", d->noutputs, d->outputs, 0);
    print_tensors("state", d->nstate, d->state, 1);
    printf("parameters: %lld\n", (long long)params);
    printf("state bytes: %lld\n", (long long)d->state_bytes);
    printf("infer arena bytes: %lld * n + %lld", (long long)d->infer_arena_n, (long long)d->infer_arena_b);
    if (d->infer_arena_t) printf(" + %lld * threads", (long long)d->infer_arena_t);
    printf("\n");
    if (d->trains) {
        printf("trains: yes (base learning rate %g)\n", d->lr);
        printf("train arena bytes: %lld * n + %lld", (long long)d->train_arena_n, (long long)d->train_arena_b);
        if (d->train_arena_t) printf(" + %lld * threads", (long long)d->train_arena_t);
        printf("\n");
    } else {
        printf("trains: no\n");
    }
    return 0;
}

/* ---- data ------------------------------------------------------------------- */

/* Loads a split and checks it is Fashion-MNIST: 28x28 images, labels 0..9.
 * On failure 'set' is released and the message names the file. */
static int load_split(const Opts *o, int train, DnIdxSet *set)
{
    char ip[4096], lp[4096], err[4600];
    dn_idx_paths(o->data_dir, train, ip, lp, sizeof ip);
    if (dn_idx_load(ip, lp, o->limit, set, err, sizeof err)) return runtime_error("%s", err);
    err[0] = 0;
    if (set->rows != 28 || set->cols != 28)
        snprintf(err, sizeof err, "%s: images are %dx%d, the model needs 28x28", ip, set->rows, set->cols);
    else
        for (int64_t i = 0; i < set->count && !err[0]; i++)
            if (set->labels[i] >= FMNIST_CLASSES)
                snprintf(err, sizeof err, "%s: label %d at index %lld is not a class 0..%d", lp, set->labels[i],
                         (long long)i, FMNIST_CLASSES - 1);
    if (!err[0]) return 0;
    dn_idx_free(set); /* after the message: it reads the set */
    return runtime_error("%s", err);
}

/* Converts examples idx[0..n) of 'set' to floats and int32 labels. */
static void gather(const DnIdxSet *set, const int64_t *idx, int64_t n, int standardize, float *x, int32_t *y)
{
    const int64_t px = (int64_t)set->rows * set->cols;
    const float scale = standardize ? 1.0f / (255.0f * FMNIST_STD) : 1.0f / 255.0f;
    const float shift = standardize ? FMNIST_MEAN / FMNIST_STD : 0.0f;
    for (int64_t b = 0; b < n; b++) {
        const uint8_t *src = set->images + idx[b] * px;
        for (int64_t p = 0; p < px; p++) x[b * px + p] = src[p] * scale - shift;
        if (y) y[b] = set->labels[idx[b]];
    }
}

uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double next_uniform(uint64_t *state) { return (double)(next_random(state) >> 11) * 0x1.0p-53; }

static void shuffle(int64_t *idx, int64_t n, uint64_t *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(next_random(rng) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- evaluation -------------------------------------------------------------- */

typedef struct Batch {
    int64_t cap;
    int64_t *idx;
    float *x, *logits;
    int32_t *y;
} Batch;

/* Buffers for batches of --batch 'batch' examples, or 'most' when fewer:
 * no batch holds more than the largest split, so the sizes cannot
 * overflow whatever --batch says. */
static int batch_alloc(Batch *b, int64_t batch, int64_t most, int64_t classes)
{
    int64_t cap = batch < most ? batch : most;
    if (classes > INT64_MAX / (int64_t)sizeof(float) / cap)
        return runtime_error("%lld logits per batch of %lld: too large", (long long)classes, (long long)cap);
    b->cap = cap;
    b->idx = malloc(sizeof *b->idx * cap);
    b->x = malloc(sizeof *b->x * cap * 784);
    b->y = malloc(sizeof *b->y * cap);
    b->logits = malloc(sizeof *b->logits * cap * classes);
    if (!b->idx || !b->x || !b->y || !b->logits)
        return runtime_error("out of memory for a batch of %lld", (long long)cap);
    return 0;
}

static void batch_free(Batch *b)
{
    free(b->idx);
    free(b->x);
    free(b->y);
    free(b->logits);
}

/* Runs infer on the 'n' examples gathered in 'b'; adds the number of correct
 * argmax predictions to *correct and the summed cross-entropy to *loss. */
static int infer_batch(Model *m, Batch *b, int64_t n, int64_t *correct, double *loss)
{
    dnrt_error err = {0};
    const void *in[1] = {b->x};
    void *out[1] = {b->logits};
    if (m->api->infer(m->s, n, in, out, &err)) return runtime_error("infer: %s", err.message);
    for (int64_t i = 0; i < n; i++) {
        const float *z = b->logits + i * m->classes;
        int64_t best = 0;
        double mx = z[0], sum = 0;
        for (int64_t k = 1; k < m->classes; k++)
            if (z[k] > z[best]) best = k;
        mx = z[best];
        for (int64_t k = 0; k < m->classes; k++) sum += exp((double)z[k] - mx);
        *correct += best == b->y[i];
        if (loss) *loss += mx + log(sum) - z[b->y[i]];
    }
    return 0;
}

static int evaluate(Model *m, const DnIdxSet *test, Batch *b, int standardize, double *acc, double *loss)
{
    int64_t correct = 0;
    double total = 0;
    for (int64_t start = 0; start < test->count; start += b->cap) {
        int64_t n = test->count - start < b->cap ? test->count - start : b->cap;
        for (int64_t i = 0; i < n; i++) b->idx[i] = start + i;
        gather(test, b->idx, n, standardize, b->x, b->y);
        if (infer_batch(m, b, n, &correct, &total)) return 1;
    }
    *acc = (double)correct / test->count;
    *loss = total / test->count;
    return 0;
}

/* ---- training ---------------------------------------------------------------- */

typedef struct Progress {
    int tty;
    int64_t acc_every;
    int64_t epoch, epochs, step, steps, seen;
    double loss_sum;
    int64_t acc_correct, acc_seen;
    double t0, last_draw;
    double base_sum; /* the losses of the run's first base_n (<= DIVERGE_BASE) steps */
    int64_t base_n;
} Progress;

static void fmt_time(char *buf, size_t len, double s)
{
    int64_t t = (int64_t)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, len, "%lld:%02lld:%02lld", (long long)(t / 3600), (long long)(t / 60 % 60), (long long)(t % 60));
    else
        snprintf(buf, len, "%lld:%02lld", (long long)(t / 60), (long long)(t % 60));
}

/* Redraws the progress line (TTY) or prints a plain line about 10 times an epoch. */
static void progress_show(Progress *p, int final)
{
    double t = now_s(), el = t - p->t0;
    if (p->tty && !final && t - p->last_draw < 0.1) return;
    int64_t every = p->steps / 10 > 0 ? p->steps / 10 : 1;
    if (!p->tty && (final ? p->step % every == 0 : p->step % every != 0)) return;
    p->last_draw = t;
    double ips = el > 0 ? p->seen / el : 0;
    char eta[32], acc[64] = "";
    fmt_time(eta, sizeof eta, p->step > 0 ? el / p->step * (p->steps - p->step) : 0);
    if (p->acc_seen)
        snprintf(acc, sizeof acc, "  acc %.1f%% (on 1 in %lld batches)", 100.0 * p->acc_correct / p->acc_seen,
                 (long long)p->acc_every);
    printf("%sepoch %lld/%lld  step %lld/%lld  loss %.4f%s  %.0f img/s  ETA %s%s", p->tty ? "\r\033[K" : "",
           (long long)p->epoch, (long long)p->epochs, (long long)p->step, (long long)p->steps,
           p->step ? p->loss_sum / p->step : 0.0, acc, ips, eta, p->tty ? "" : "\n");
    fflush(stdout);
}

/* What --save holds once training stops in epoch p->epoch. */
static const char *kept(const Progress *p, char *buf, size_t len)
{
    if (p->epoch > 1)
        snprintf(buf, len, "the weights saved after epoch %lld", (long long)p->epoch - 1);
    else
        snprintf(buf, len, "what it held before");
    return buf;
}

/* Whether 'loss' exceeds o->diverge times the mean loss of the run's first
 * DIVERGE_BASE steps (of those taken so far, from the second step on);
 * otherwise counts it among them while there are fewer. */
static int diverged(const Opts *o, Progress *p, float loss, double *ref)
{
    *ref = p->base_n ? p->base_sum / p->base_n : 0;
    if (o->diverge > 0 && *ref > 0 && loss > o->diverge * *ref) return 1;
    if (p->base_n < DIVERGE_BASE) p->base_sum += loss, p->base_n++;
    return 0;
}

static int train_epoch(Model *m, const Opts *o, const DnIdxSet *train, int64_t *order, Batch *b, Progress *p)
{
    p->t0 = now_s();
    p->last_draw = 0;
    p->step = p->seen = p->acc_correct = p->acc_seen = 0;
    p->loss_sum = 0;
    for (int64_t start = 0; start < train->count; start += b->cap) {
        int64_t n = train->count - start < b->cap ? train->count - start : b->cap;
        memcpy(b->idx, order + start, sizeof *b->idx * n);
        gather(train, b->idx, n, o->standardize, b->x, b->y);
        if (o->acc_every > 0 && p->step % o->acc_every == 0) {
            if (infer_batch(m, b, n, &p->acc_correct, NULL)) return 1;
            p->acc_seen += n;
        }
        dnrt_error err = {0};
        const void *in[2] = {b->x, b->y};
        float loss = 0;
        char why[64];
        double ref;
        if (m->api->train_step(m->s, n, in, &loss, &err)) {
            if (p->tty) putchar('\n');
            if (err.code == DNRT_ERR_NONFINITE)
                return runtime_error("epoch %lld, step %lld of %lld went non-finite: %s; training stopped, --save %s "
                                     "not written (it keeps %s)",
                                     (long long)p->epoch, (long long)p->step + 1, (long long)p->steps, err.message,
                                     o->save, kept(p, why, sizeof why));
            return runtime_error("train_step (epoch %lld, step %lld): %s", (long long)p->epoch, (long long)p->step + 1,
                                 err.message);
        }
        if (diverged(o, p, loss, &ref)) {
            if (p->tty) putchar('\n');
            return runtime_error("epoch %lld, step %lld of %lld: the loss %g is more than %g times the mean loss %g of "
                                 "the run's first %lld steps: training diverged (--diverge); stopped, --save %s not "
                                 "written (it keeps %s)",
                                 (long long)p->epoch, (long long)p->step + 1, (long long)p->steps, (double)loss,
                                 o->diverge, ref, (long long)p->base_n, o->save, kept(p, why, sizeof why));
        }
        p->loss_sum += loss;
        p->step++;
        p->seen += n;
        progress_show(p, 0);
    }
    return 0;
}

int save_weights(Model *m, const char *path)
{
    dnrt_error err = {0};
    if (m->api->save(m->s, path, &err)) return runtime_error("cannot save the weights: %s", err.message);
    return 0;
}

static int train_loop(Model *m, const Opts *o, const DnIdxSet *train, const DnIdxSet *test, Batch *b)
{
    int64_t *order = malloc(sizeof *order * train->count);
    if (!order) return runtime_error("out of memory");
    for (int64_t i = 0; i < train->count; i++) order[i] = i;
    uint64_t rng = o->seed ^ 0x5DEECE66Dull;
    Progress p = {.tty = isatty(STDOUT_FILENO),
                  .acc_every = o->acc_every,
                  .epochs = o->epochs,
                  .steps = (train->count + b->cap - 1) / b->cap};
    int rc = 0;
    for (p.epoch = 1; p.epoch <= o->epochs && !rc; p.epoch++) {
        shuffle(order, train->count, &rng);
        if ((rc = train_epoch(m, o, train, order, b, &p))) break;
        double secs = now_s() - p.t0, acc, loss;
        progress_show(&p, 1);
        if (p.tty) putchar('\n');
        if ((rc = evaluate(m, test, b, o->standardize, &acc, &loss))) break;
        printf("epoch %lld/%lld done: train time %.2f s (%.0f img/s), train loss %.4f, test accuracy %.2f%%, "
               "test loss %.4f (%lld images)\n",
               (long long)p.epoch, (long long)o->epochs, secs, train->count / secs, p.loss_sum / p.steps, 100 * acc,
               loss, (long long)test->count);
        fflush(stdout);
        if ((rc = save_weights(m, o->save))) break;
        printf("saved %s\n", o->save);
    }
    free(order);
    return rc;
}

static int cmd_train(const Opts *o)
{
    Model m;
    DnIdxSet train = {0}, test = {0};
    Batch b = {0};
    int rc = open_model(o->model, &m) || check_fashion(o->model, &m, 1) || check_save(o->save) ||
             (o->resume && not_regular("--resume: ", o->resume)) || create_session(&m, o);
    if (!rc && o->resume) {
        dnrt_error err = {0};
        if (m.api->load(m.s, o->resume, &err)) rc = runtime_error("--resume: %s", err.message);
    }
    if (!rc && o->has_lr) {
        dnrt_error err = {0};
        if (m.api->set_learning_rate(m.s, o->lr, &err)) rc = runtime_error("--lr: %s", err.message);
    }
    if (!rc)
        rc = load_split(o, 1, &train) || load_split(o, 0, &test) ||
             batch_alloc(&b, o->batch, train.count > test.count ? train.count : test.count, m.classes);
    if (!rc) {
        printf("training %s on %lld images (test %lld), batch %lld, %lld epoch(s), lr %g, %s inputs\n", m.d->name,
               (long long)train.count, (long long)test.count, (long long)o->batch, (long long)o->epochs,
               m.api->get_lr ? m.api->get_lr(m.s) : m.d->lr, o->standardize ? "standardized" : "x/255");
        fflush(stdout);
        rc = train_loop(&m, o, &train, &test, &b);
    }
    batch_free(&b);
    dn_idx_free(&train);
    dn_idx_free(&test);
    close_model(&m);
    return rc;
}

/* ---- eval and infer ---------------------------------------------------------- */

static int open_with_weights(const Opts *o, Model *m, DnIdxSet *test, Batch *b)
{
    if (open_model(o->model, m) || check_fashion(o->model, m, 0) || not_regular("--weights: ", o->weights) ||
        create_session(m, o))
        return 1;
    dnrt_error err = {0};
    if (m->api->load(m->s, o->weights, &err)) return runtime_error("--weights: %s", err.message);
    return load_split(o, 0, test) || batch_alloc(b, o->batch, test->count, m->classes);
}

static int cmd_eval(const Opts *o)
{
    Model m;
    DnIdxSet test = {0};
    Batch b = {0};
    double acc, loss;
    int rc = open_with_weights(o, &m, &test, &b) || evaluate(&m, &test, &b, o->standardize, &acc, &loss);
    if (!rc) printf("test accuracy %.2f%% (%lld images), test loss %.4f\n", 100 * acc, (long long)test.count, loss);
    batch_free(&b);
    dn_idx_free(&test);
    close_model(&m);
    return rc;
}

static int cmd_infer(const Opts *o)
{
    Model m;
    DnIdxSet test = {0};
    Batch b = {0};
    int rc = open_with_weights(o, &m, &test, &b);
    int64_t n = o->count < test.count ? o->count : test.count, correct = 0, shown = 0;
    for (int64_t start = 0; !rc && start < n; start += b.cap) {
        int64_t k = n - start < b.cap ? n - start : b.cap, dummy = 0;
        for (int64_t i = 0; i < k; i++) b.idx[i] = start + i;
        gather(&test, b.idx, k, o->standardize, b.x, b.y);
        if ((rc = infer_batch(&m, &b, k, &dummy, NULL))) break;
        for (int64_t i = 0; i < k; i++, shown++) {
            const float *z = b.logits + i * m.classes;
            int64_t best = 0;
            for (int64_t c = 1; c < m.classes; c++)
                if (z[c] > z[best]) best = c;
            correct += best == b.y[i];
            printf("%5lld  predicted %-12s  true %-12s %s\n", (long long)shown,
                   best < FMNIST_CLASSES ? class_names[best] : "?", class_names[b.y[i]],
                   best == b.y[i] ? "ok" : "WRONG");
        }
    }
    if (!rc) printf("%lld of %lld correct\n", (long long)correct, (long long)n);
    batch_free(&b);
    dn_idx_free(&test);
    close_model(&m);
    return rc;
}

int main(int argc, char **argv)
{
    Opts o;
    parse_args(argc, argv, &o);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* A write beyond the file size limit fails with EFBIG (and a message)
     * instead of killing the process. */
    signal(SIGXFSZ, SIG_IGN);
    if (!strcmp(o.cmd, "info")) return cmd_info(&o);
    if (!strcmp(o.cmd, "generate")) return cmd_generate(&o);
    if (o.data == DATA_TEXT) return !strcmp(o.cmd, "train") ? text_train(&o) : text_eval(&o);
    if (o.data == DATA_PAIRS)
        return !strcmp(o.cmd, "train") ? pairs_train(&o) : !strcmp(o.cmd, "eval") ? pairs_eval(&o) : pairs_infer(&o);
    if (!strcmp(o.cmd, "train")) return cmd_train(&o);
    if (!strcmp(o.cmd, "eval")) return cmd_eval(&o);
    return cmd_infer(&o);
}

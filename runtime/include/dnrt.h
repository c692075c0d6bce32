/* dnrt.h -- the dnnc runtime: what a generated library is built on, and the
 * generic interface to any generated library.
 *
 * Every library dnnc writes contains a private (hidden) copy of the runtime
 * and exports:
 *   - typed functions declared in its own header (<model>_create, ...);
 *   - <model>_descriptor and, for dlopen users, dnnc_descriptor: a
 *     dnrt_model_desc that names inputs, outputs and state tensors and
 *     holds the generic entry points below (dnrt_api).
 * A program that dlopens a library (tools/dnnrun.c) needs only this header.
 *
 * Conventions: functions returning int return 0 on success and -1 on
 * failure, filling *err (which may be NULL) with a message that names the
 * file, tensor or argument at fault.  The runtime never aborts and never
 * exits.
 *
 * Non-finite training (ABI 4): a training step whose loss, one of whose
 * gradients or one of whose new batchnorm running statistics holds a NaN
 * or an infinity is refused: train_step returns -1 with
 * DNRT_ERR_NONFINITE and leaves the state block (parameters, buffers,
 * optimizer state) bit-identical and the step counter unchanged, so the
 * next step, with other data or a smaller learning rate, goes on as if
 * the refused one had never been called.  set_lr refuses a rate that is
 * NaN, infinite or negative, and save refuses to write state that is not
 * finite.  One thing the check cannot see: an update that overflows a
 * parameter from a finite gradient (an SGD rate near 1e30); the parameter
 * is then infinite, the next step is refused and save refuses the state.
 */
#ifndef DNRT_H
#define DNRT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DNRT_ABI_VERSION 7

/* The types a generated header repeats (same guard, identical text). */
#ifndef DNRT_COMMON_TYPES
#define DNRT_COMMON_TYPES
typedef struct dnrt_options {
    int32_t threads; /* worker threads incl. the caller; 0 = $DNRT_THREADS or all cores */
    uint64_t seed;   /* initializers and dropout; 0 is a valid seed */
    /* GPU targets (ABI 5): 1 = infer and train_step take device buffers instead of host pointers
     * (CUDA: a CUdeviceptr cast to void *; OpenCL: a cl_mem), used where they are; 0 = host pointers */
    int32_t device_io;
} dnrt_options;

typedef struct dnrt_error {
    int32_t code;      /* 0 = no error; otherwise a dnrt_status */
    char message[500]; /* "lenet.safetensors: tensor 'fc1.weight': expected f32[120, 400], got f32[120, 256]" */
} dnrt_error;
#endif

typedef enum dnrt_status {
    DNRT_OK = 0,
    DNRT_ERR_ARG = 1,    /* bad argument at the API: null pointer, n <= 0, ... */
    DNRT_ERR_IO = 2,     /* cannot open, read or write a file */
    DNRT_ERR_FORMAT = 3, /* a damaged or mismatched file */
    DNRT_ERR_NOMEM = 4,
    DNRT_ERR_STATE = 5,     /* e.g. train_step on an inference-only library */
    DNRT_ERR_NONFINITE = 6, /* train_step: a NaN or an infinity in the loss, a gradient or a running
                               statistic; the state is unchanged.  save: the state holds one */
    DNRT_ERR_DEVICE = 7,    /* GPU targets: no usable device or driver, or the device failed */
} dnrt_status;

typedef enum dnrt_dtype { DNRT_F32 = 0, DNRT_I32 = 1, DNRT_I64 = 2 } dnrt_dtype; /* ORDER DN_DTYPE */

typedef enum dnrt_state_kind {
    DNRT_STATE_WEIGHT = 0, /* parameter (trainable unless frozen) */
    DNRT_STATE_BUFFER = 1, /* running statistics and the like */
    DNRT_STATE_OPTIM = 2,  /* optimizer state: optim.<param>.<slot> */
    DNRT_STATE_CACHE = 3,  /* decoding state (a Transformer step's KV cache): zeros at create, updated by
                              every infer, neither saved nor loaded */
} dnrt_state_kind;

typedef enum dnrt_init_kind { DNRT_INIT_ZEROS, DNRT_INIT_ONES, DNRT_INIT_UNIFORM, DNRT_INIT_NORMAL } dnrt_init_kind;

/* One tensor: an input, an output or a state tensor. */
typedef struct dnrt_tensor_desc {
    const char *name;
    int32_t dtype; /* dnrt_dtype */
    int32_t rank;
    int64_t dim[6]; /* dim[0] == -1: the batch dimension n; dim[1] == -2 (ABI 6): the sequence length t */
    /* state tensors only: */
    int64_t offset; /* byte offset in the session's state block (64-aligned) */
    int32_t kind;   /* dnrt_state_kind */
    int32_t trainable;
    int32_t init;         /* dnrt_init_kind */
    float init_a, init_b; /* uniform(a, b) or normal(mean a, std b) */
    /* inputs only: */
    int32_t train_only;           /* labels: an input of train_step, not of infer */
    int64_t valid_min, valid_max; /* integer inputs: every element must lie in [valid_min, valid_max]
                                     (class labels: [0, classes - 1]; token ids of an embedding:
                                     [0, rows - 1]); unchecked unless min < max, so a zeroed
                                     descriptor checks nothing */
    /* (ABI 5, appended) when has_valid_extra is non-zero, an element equal to valid_extra is
       accepted too, in or out of the range: cross_entropy's ignore_index (-100 by default), a
       label that marks a position without a target */
    int32_t has_valid_extra;
    int64_t valid_extra;
    /* (ABI 7, state tensors) > 0: after the fill, row init_zero_row - 1 along axis 0 is set to 0
       (an embedding's padding_idx row, as nn.Embedding starts it); 0: none */
    int64_t init_zero_row;
} dnrt_tensor_desc;

/* What generated code receives.  Buffers are 64-byte aligned. */
typedef struct dnrt_call {
    int64_t n;                 /* batch size */
    uint8_t *arena;            /* scratch, arena_n * n + arena_b + arena_t * threads bytes */
    uint8_t *state;            /* the state block */
    const void *const *inputs; /* in the entry's input order */
    void *const *outputs;
    struct dnrt_pool *pool;  /* thread pool (runtime-private) */
    int64_t step;            /* training step counter before this step */
    uint64_t seed;           /* session seed (dropout) */
    float lr;                /* base learning rate (set_lr) */
    struct dnrt_device *dev; /* GPU targets (ABI 5): the session's device (runtime-private); else NULL */
    int64_t t;               /* (ABI 6) the sequence length, 1..seq_bound; 1 for a model without T */
} dnrt_call;

/* An entry function runs a graph's ops in order and returns 0, or (ABI 4)
 * the non-zero code of the guard op that stopped it before the ops after
 * it ran.  The training graph's guards (check_finite, before the optimizer
 * updates) return DNRT_GUARD_LOSS when the loss is not finite and
 * DNRT_GUARD_STATE + i for state tensor i: a weight whose gradient, or a
 * buffer whose new value (batchnorm's running statistics, written earlier
 * in the step), is not finite.  The runtime then restores the buffers. */
typedef int32_t (*dnrt_entry_fn)(const dnrt_call *c);
#define DNRT_GUARD_LOSS  1
#define DNRT_GUARD_STATE 2
/* A kernel runs iterations [begin, end) of its parallel loop as worker
 * 'worker', in [0, threads): calls of one dnrt_parallel_for that may run
 * at the same time get distinct workers, so a kernel may keep scratch in
 * its worker's slice of the arena (ABI 3; before, kernels had no worker). */
typedef void (*dnrt_kernel_fn)(const dnrt_call *c, int64_t begin, int64_t end, int32_t worker);

typedef struct dnrt_session dnrt_session;
typedef struct dnrt_model_desc dnrt_model_desc;

/* The device a GPU session runs on (ABI 5), for programs that keep their data
 * on it (dnrt_options.device_io): buffers they pass must belong to 'context'. */
typedef struct dnrt_device_info {
    int32_t api;    /* 0: a CPU session (nothing else is set); DNRT_GPU_CUDA or DNRT_GPU_OPENCL */
    void *context;  /* CUDA: the CUcontext (the device's primary context); OpenCL: the cl_context */
    void *queue;    /* OpenCL: the cl_command_queue the session enqueues on (in order); CUDA: NULL (stream 0) */
    void *device;   /* OpenCL: the cl_device_id; CUDA: the CUdevice ordinal, cast */
    char name[200]; /* e.g. "OpenCL device 'cpu-haswell-AMD EPYC 7B13'" */
} dnrt_device_info;

/* The generic interface; every generated library carries its own copy. */
typedef struct dnrt_api {
    dnrt_session *(*create)(const dnrt_model_desc *d, const dnrt_options *opt, dnrt_error *err);
    void (*destroy)(dnrt_session *s);
    int (*load)(dnrt_session *s, const char *path, dnrt_error *err);
    int (*save)(dnrt_session *s, const char *path, dnrt_error *err);
    /* inputs: the non-train-only inputs in order; outputs: all outputs. */
    int (*infer)(dnrt_session *s, int64_t n, const void *const *inputs, void *const *outputs, dnrt_error *err);
    /* inputs: all inputs in order (labels included); *loss receives the mean loss, also when the
     * step is refused as DNRT_ERR_NONFINITE (then possibly not finite). */
    int (*train_step)(dnrt_session *s, int64_t n, const void *const *inputs, float *loss, dnrt_error *err);
    /* The rate must be finite and >= 0.  A refused one leaves the rate as it was and makes every
     * train_step fail with DNRT_ERR_ARG until a valid rate is set (set_lr cannot report it);
     * set_learning_rate reports it instead (-1, DNRT_ERR_ARG) and has no such after-effect. */
    void (*set_lr)(dnrt_session *s, float lr);
    float (*get_lr)(const dnrt_session *s);
    int64_t (*get_step)(const dnrt_session *s);
    int (*set_learning_rate)(dnrt_session *s, float lr, dnrt_error *err);         /* ABI 4 */
    int (*device_info)(dnrt_session *s, dnrt_device_info *info, dnrt_error *err); /* ABI 5 */
    /* (ABI 6) infer and train_step at sequence length t (see "The sequence axis" below) */
    int (*infer_seq)(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, void *const *outputs,
                     dnrt_error *err);
    int (*train_step_seq)(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, float *loss,
                          dnrt_error *err);
} dnrt_api;

struct dnrt_model_desc {
    uint32_t abi_version; /* DNRT_ABI_VERSION */
    const char *name;     /* model name */
    int32_t ninputs;
    const dnrt_tensor_desc *inputs; /* model inputs, then train-only inputs */
    int32_t noutputs;
    const dnrt_tensor_desc *outputs; /* inference outputs */
    int32_t nstate;
    const dnrt_tensor_desc *state; /* weights, buffers, then optimizer state */
    int64_t state_bytes;
    int64_t infer_arena_n, infer_arena_b; /* arena bytes = n * arena_n + arena_b */
    dnrt_entry_fn infer;
    int32_t trains; /* 1 when train is compiled in */
    int64_t train_arena_n, train_arena_b;
    dnrt_entry_fn train; /* outputs[0] = loss (f32 scalar) */
    float lr;            /* compiled base learning rate */
    const dnrt_api *api;
    /* worker slices after the rest of the arena (ABI 3): arena_t bytes per thread */
    int64_t infer_arena_t, train_arena_t;
    /* GPU targets (ABI 5): the kernels the entries launch; NULL for the CPU target */
    const struct dnrt_gpu_program *gpu;
    /* (ABI 6) the bound of the sequence axis T (tensor dims of -2), 0 when the model has none;
     * the arenas above are sized for t = seq_bound */
    int64_t seq_bound;
};

/* ---- the sequence axis (ABI 6) ------------------------------------------------
 * A model whose inputs are declared with T<=bound (tokens: i32[N, T<=256])
 * runs at any sequence length t in 1..bound, given with n at each call:
 * every tensor with dim[1] == -2 then holds n * t * (the other dims)
 * elements, contiguous.  infer and train_step run such a model at
 * t = seq_bound.  infer_seq and train_step_seq take t; t = 0 means
 * seq_bound (or, for a model without T, the only length there is), and a t
 * above the bound is refused with DNRT_ERR_ARG. */
#define DNRT_DIM_BATCH (-1)
#define DNRT_DIM_SEQ   (-2)

/* ---- GPU targets (ABI 5) ------------------------------------------------------
 * A library built for --target=cuda or --target=opencl has the same
 * descriptor, entries and API as a CPU one, but its state block, arena,
 * inputs and outputs live in device memory (the runtime stages host
 * pointers through them), and its entry functions run each op as one or
 * more kernel launches: dnrt_gpu_launch(c, &launch) per launch, in order.
 * A kernel's parameters are  i64 n  then one pair (u8 *base, i64 offset)
 * per buffer argument, an i64 per integer argument and a float per float
 * argument, in the order of its dnrt_gpu_arg list. */
typedef enum dnrt_gpu_api { DNRT_GPU_CUDA = 1, DNRT_GPU_OPENCL = 2 } dnrt_gpu_api;

typedef enum dnrt_gpu_arg_kind {
    DNRT_ARG_ARENA = 0,  /* buffer: the arena, at a * n + b bytes */
    DNRT_ARG_STATE = 1,  /* buffer: the state block, at a * n + b bytes */
    DNRT_ARG_INPUT = 2,  /* buffer: inputs[index] (descriptor order), at a * n + b bytes */
    DNRT_ARG_OUTPUT = 3, /* buffer: outputs[index] of the entry, at a * n + b bytes */
    DNRT_ARG_I64 = 4,    /* i64: a * n + b */
    DNRT_ARG_F32 = 5,    /* float: f */
    DNRT_ARG_STEP = 6,   /* i64: the step counter (dnrt_call.step) */
    DNRT_ARG_SEED = 7,   /* i64: the session seed's 64 bits (dnrt_call.seed) */
    DNRT_ARG_LR = 8,     /* float: the base learning rate (dnrt_call.lr) */
    DNRT_ARG_SEQ = 9,    /* i64: the sequence length t (dnrt_call.t; ABI 7) */
} dnrt_gpu_arg_kind;

/* What 'n' means in a launch (ABI 7): the kernel's first parameter, its work
 * items and its integer arguments use n, or n * t for the kernel of an op
 * over [N, T, ...] that treats every (n, t) position alike; buffer offsets
 * always use n (the buffers are sized for the bound). */
typedef enum dnrt_gpu_batch { DNRT_BATCH_N = 0, DNRT_BATCH_NT = 1 } dnrt_gpu_batch;

typedef struct dnrt_gpu_arg {
    int32_t kind; /* dnrt_gpu_arg_kind */
    int32_t index;
    int64_t a, b;
    float f;
} dnrt_gpu_arg;

typedef struct dnrt_gpu_launch {
    int32_t kernel; /* index in dnrt_gpu_program.kernels */
    int32_t nargs;
    const dnrt_gpu_arg *args;
    int64_t items_n, items_b; /* work items: items_n * n + items_b, rounded up to a multiple of 'group' */
    int32_t group;            /* work-group (CUDA block) size, 1..1024 */
    int32_t guard;            /* -1; or the index of a buffer argument holding an i32 that, when non-zero,
                                 dnrt_gpu_launch returns (a guard op's result, see dnrt_entry_fn) */
    int32_t batch;            /* dnrt_gpu_batch (ABI 7) */
} dnrt_gpu_launch;

/* One compiled form of the program: a cubin for a real architecture
 * ("sm_90"), or PTX for a virtual one ("compute_80"), JIT-compiled by the
 * driver for any newer GPU. */
typedef struct dnrt_gpu_image {
    const char *arch;
    const uint8_t *data;
    int64_t size;
} dnrt_gpu_image;

typedef struct dnrt_gpu_program {
    int32_t api;        /* dnrt_gpu_api */
    const char *source; /* the rendered kernel source (OpenCL builds it when a session is created) */
    int32_t nkernels;
    const char *const *kernels; /* kernel names */
    int32_t nimages;
    const dnrt_gpu_image *images; /* CUDA: cubins and PTX */
} dnrt_gpu_program;

/* Called by generated GPU entries: runs one launch on c->dev; returns 0, the
 * launch's non-zero guard value, or -1 when the device failed (the message
 * is kept in the session and reported by the infer or train_step call). */
int32_t dnrt_gpu_launch_kernel(const dnrt_call *c, const dnrt_gpu_launch *l);

/* ---- the runtime functions (hidden inside generated libraries; linked
 *      directly only by tests and by code built with libdnnrt.a) ---------- */
dnrt_session *dnrt_session_create(const dnrt_model_desc *d, const dnrt_options *opt, dnrt_error *err);
void dnrt_session_destroy(dnrt_session *s);
int dnrt_session_load(dnrt_session *s, const char *path, dnrt_error *err);
int dnrt_session_save(dnrt_session *s, const char *path, dnrt_error *err);
int dnrt_session_infer(dnrt_session *s, int64_t n, const void *const *inputs, void *const *outputs, dnrt_error *err);
/* -1 with DNRT_ERR_NONFINITE when the step is refused (see "Non-finite training" above): the
 * message names the loss or the tensor at fault and the step counter, e.g.
 *   train_step: the loss is not finite (nan) at step 1235 (after 1234); parameters, optimizer
 *   state and statistics unchanged (the step counter stays 1234)
 * or "the gradient of 'fc.weight' is not finite", "the new value of 'bn1.running_var' is not
 * finite", with a note when some state tensor was already not finite before the step. */
int dnrt_session_train_step(dnrt_session *s, int64_t n, const void *const *inputs, float *loss, dnrt_error *err);
int dnrt_session_infer_seq(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, void *const *outputs,
                           dnrt_error *err);
int dnrt_session_train_step_seq(dnrt_session *s, int64_t n, int64_t t, const void *const *inputs, float *loss,
                                dnrt_error *err);
/* Elements of tensor 'd' at batch size n and sequence length t (0 on overflow). */
int64_t dnrt_tensor_count(const dnrt_tensor_desc *d, int64_t n, int64_t t);
void dnrt_session_set_lr(dnrt_session *s, float lr);
int dnrt_session_set_learning_rate(dnrt_session *s, float lr, dnrt_error *err);
float dnrt_session_get_lr(const dnrt_session *s);
int64_t dnrt_session_get_step(const dnrt_session *s);
int dnrt_session_device_info(dnrt_session *s, dnrt_device_info *info, dnrt_error *err);
/* Direct access for tools and tests: the state tensor 'name' (NULL if absent).  GPU targets: the
 * session's host copy, brought up to date first; the device's copy is rewritten from it before
 * the next infer or train_step, so writes through the pointer take effect. */
void *dnrt_session_state(dnrt_session *s, const char *name);
extern const dnrt_api dnrt_api_v1;

/* ---- weights files ----------------------------------------------------------
 * load and save read and write safetensors files (runtime/safetensors.h).
 * Loading reads the 8-byte length and the header first, checks them against
 * the model and the file's real size, and only then reads the bytes of the
 * model's tensors; a failed load leaves the session exactly as it was.  Only
 * a regular file is read (a FIFO, device or folder is refused at once).
 * Limits, each refused with DNRT_ERR_FORMAT and a message naming the file
 * and the limit: */
#define DNRT_ST_MAX_HEADER  100000000 /* header bytes: the safetensors format's own limit (100 MB) */
#define DNRT_ST_MAX_ENTRIES 100000    /* tensors in one file, and "__metadata__" pairs */
/* The metadata "dnnc.step" (the step counter) is a decimal integer in
 * [0, DNRT_MAX_STEP]: exact in double, as the learning-rate schedules use it,
 * and far from int64 overflow however long training goes on. */
#define DNRT_MAX_STEP (INT64_C(1) << 53)
/* Saving refuses (DNRT_ERR_NONFINITE, the destination untouched) state whose f32 tensors hold a
 * NaN or an infinity, naming the first such tensor and element.
 * Saving writes a temporary file in the destination's folder, named
 *   .<name>.dnrt-tmp.<host>.<pid>.<XXXXXX>
 * (<name> the destination's file name, cut at 160 bytes; <host> this
 * machine's host name, cut at 32 bytes, characters other than letters,
 * digits and '-' as '_'; <pid> the saving process; <XXXXXX> unique), then
 * renames it over the destination.  A process killed while saving leaves its
 * temporary file behind; the next save to the same destination from the same
 * host removes every such file of that destination whose process is gone
 * (regular files of the saving user only).  Loading never removes files. */

/* Called by generated code: runs fn(c, b, e, w) over [0, count) split into
 * one contiguous chunk per pool thread, chunk w as worker w (the caller
 * takes part, as worker 0); returns when all are done.  A call that finds
 * the pool busy (nested or concurrent) runs fn(c, 0, count, 0) inline. */
void dnrt_parallel_for(const dnrt_call *c, dnrt_kernel_fn fn, int64_t count);

/* Philox 4x32-10, the random stream of initializers and dropout (identical
 * on every backend): returns 4 words for (key, counter). */
void dnrt_philox4x32(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

#ifdef __cplusplus
}
#endif
#endif

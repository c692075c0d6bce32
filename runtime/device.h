/* device.h -- the runtime's device layer: what a GPU session needs of a
 * device, behind one small interface with one implementation per API
 * (dev_cuda.c: the CUDA driver API; dev_opencl.c: OpenCL through the ICD
 * loader), both loaded with dlopen so a generated library loads, and its
 * CPU-free parts work, on a machine with neither.
 *
 * gpu.c builds the GPU session on it: device memory for the state block,
 * the arena and the staged inputs and outputs; dnrt_gpu_launch_kernel;
 * and the state's round trips to the host for load, save and the
 * non-finite checks.
 *
 * Device buffers are opaque 64-bit handles (a CUdeviceptr, a cl_mem);
 * 0 is never a valid one.  Every function returns 0, or -1 with 'err'
 * filled (DNRT_ERR_DEVICE, or DNRT_ERR_NOMEM for a failed allocation)
 * with a message that names the API, the call and the driver's own words.
 */
#ifndef DNRT_DEVICE_H
#define DNRT_DEVICE_H

#include <stddef.h>
#include <stdint.h>

#include "dnrt.h"

/* One kernel argument as the device layer passes it. */
typedef enum { DNRT_KARG_BUF, DNRT_KARG_I64, DNRT_KARG_F32 } dnrt_karg_kind;
typedef struct dnrt_karg {
    int kind;     /* dnrt_karg_kind; a BUF is passed as two parameters: the buffer, then i64 'i' (byte offset) */
    uint64_t buf; /* BUF */
    int64_t i;    /* BUF: byte offset; I64: the value */
    float f;      /* F32 */
} dnrt_karg;

typedef struct dnrt_device_ops {
    const char *name; /* "CUDA", "OpenCL" */
    /* Finds a device, loads 'prog' (CUDA: the cubin of the device's
     * architecture, else the PTX; OpenCL: builds the source) and looks up
     * every kernel.  *impl is the implementation's state. */
    int (*open)(const dnrt_gpu_program *prog, void **impl, dnrt_error *err);
    void (*close)(void *impl); /* frees everything open made; accepts NULL */
    int (*alloc)(void *impl, size_t bytes, uint64_t *buf, dnrt_error *err);
    void (*free)(void *impl, uint64_t buf); /* accepts 0 */
    /* Blocking copies between host memory and bytes [off, off + n) of 'buf'. */
    int (*write)(void *impl, uint64_t buf, size_t off, const void *src, size_t n, dnrt_error *err);
    int (*read)(void *impl, uint64_t buf, size_t off, void *dst, size_t n, dnrt_error *err);
    /* Sets 'n' bytes of 'buf' at 'off' to zero (ordered after earlier launches). */
    int (*zero)(void *impl, uint64_t buf, size_t off, size_t n, dnrt_error *err);
    /* Enqueues kernel 'kernel' over 'groups' work-groups of 'group' items. */
    int (*launch)(void *impl, int kernel, int64_t groups, int group, int nargs, const dnrt_karg *args, dnrt_error *err);
    int (*sync)(void *impl, dnrt_error *err); /* waits for every enqueued launch */
    /* Writes a one-line description of the device in use into 'buf'. */
    void (*describe)(void *impl, char *buf, size_t len);
    /* The API's own handles, for dnrt_device_info. */
    void (*handles)(void *impl, void **context, void **queue, void **device);
} dnrt_device_ops;

extern const dnrt_device_ops dnrt_device_cuda;   /* dev_cuda.c */
extern const dnrt_device_ops dnrt_device_opencl; /* dev_opencl.c */

/* ---- dev_cuda.c ------------------------------------------------------------ */

/* Which image of CUDA program 'p' a device of compute capability
 * major.minor runs: the cubin whose arch is exactly "sm_<major><minor>",
 * else the PTX "compute_NN" with the highest NN <= the capability (the
 * driver compiles it).  Returns its index, with what was picked ("the cubin
 * for sm_90") in 'why'; or -1 with 'why' listing the architectures the
 * program has and the device's.  'why' may be NULL. */
int dnrt_cuda_pick_image(const dnrt_gpu_program *p, int major, int minor, char *why, size_t len);

/* ---- gpu.c: the GPU side of a session ------------------------------------ */

/* The device state of one session (dnrt_session.dev; dnrt_call.dev). */
struct dnrt_device {
    const dnrt_device_ops *ops;
    void *impl;
    const dnrt_model_desc *d;
    int device_io;                    /* dnrt_options.device_io */
    uint64_t state;                   /* d->state_bytes */
    uint64_t arena;                   /* arena_bytes */
    size_t arena_bytes;               /* 0 until the first call */
    uint64_t *in, *out;               /* staging buffers per input / output slot (0 until used) */
    size_t *in_bytes, *out_bytes;     /* their capacities */
    const uint64_t *cur_in, *cur_out; /* the buffers of the call being run, by slot */
    int host_stale;                   /* the device's state is newer than the session's host copy */
    int dev_stale;                    /* the host copy is newer than the device's state */
    dnrt_error fail;                  /* the first device failure of the running call (code 0: none) */
};

struct dnrt_session;
/* Opens the device of model d (d->gpu != NULL) for session 's' and uploads
 * its initialized state; 0 or -1. */
int dnrt_gpu_open(struct dnrt_session *s, const dnrt_options *opt, dnrt_error *err);
void dnrt_gpu_close(struct dnrt_session *s);
/* Runs 'entry' (an entry of the session's model) on the device with batch
 * size 'n' and sequence length 't' (1 without T): stages the 'ninputs' inputs described by in_desc[] to the device
 * and, afterwards, the 'noutputs' outputs described by out_desc[] back
 * (host pointers; or, with device_io, device buffers used in place), with
 * an arena of 'arena_bytes'; 'host_outputs' stages the outputs even with
 * device_io (train_step's loss is always a host float).  Returns the entry's code (>= 0), or -1 with
 * 'err' filled when the device failed. */
int32_t dnrt_gpu_run(struct dnrt_session *s, dnrt_entry_fn entry, int64_t n, int64_t t, const void *const *inputs,
                     const dnrt_tensor_desc *in_desc, int32_t ninputs, void *const *outputs,
                     const dnrt_tensor_desc *out_desc, int32_t noutputs, int host_outputs, int64_t arena_bytes,
                     dnrt_error *err);
/* Brings the session's host copy of the state up to date (after steps on
 * the device); 0 or -1.  Accepts a CPU session (does nothing). */
int dnrt_gpu_state_to_host(struct dnrt_session *s, dnrt_error *err);
/* The host copy was made current and then changed (load rewrote it, or
 * direct access may write it): the device's state is rewritten from it
 * before the next run.  Accepts a CPU session (does nothing). */
void dnrt_gpu_state_changed(struct dnrt_session *s);
/* Copies bytes [off, off + n) of the device's state to or from 'host'. */
int dnrt_gpu_state_io(struct dnrt_session *s, int to_device, size_t off, void *host, size_t n, dnrt_error *err);

#endif

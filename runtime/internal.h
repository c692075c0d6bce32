/* internal.h -- what the runtime's files share and nobody else sees.
 *
 * The session object, error filling, allocation (through the fault-injection
 * hook of fault.c), the thread pool (pool.c), state initializers (init.c)
 * and dtype helpers (error.c).  Every declaration here is hidden inside a
 * generated library (the archive is built with -fvisibility=hidden).
 */
#ifndef DNRT_INTERNAL_H
#define DNRT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "dnrt.h"

#define DNRT_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define DNRT_ALIGN        64

/* One loaded model: owns its state block, arena and thread pool.  A session
 * is used by one thread at a time. */
struct dnrt_session {
    const dnrt_model_desc *d;
    uint8_t *state;      /* d->state_bytes, 64-aligned */
    uint8_t *arena;      /* NULL until the first call needs it */
    int64_t arena_bytes; /* capacity of 'arena' */
    uint8_t *saved;      /* the buffers (DNRT_STATE_BUFFER) before the current train step, packed;
                            NULL until the first train_step of a model that has buffers */
    struct dnrt_pool *pool;
    int64_t step;
    uint64_t seed;
    float lr;
    int lr_refused;          /* set_lr refused 'refused_lr': train_step fails until a valid rate is set */
    float refused_lr;        /* the last refused rate */
    struct dnrt_device *dev; /* GPU targets (device.h): the device side; NULL for the CPU */
};

/* ---- error.c -------------------------------------------------------------- */
/* Fills 'err' (may be NULL) with 'code' and the formatted message; returns -1
 * so callers can write  return dnrt_fail(err, ...);  */
int dnrt_fail(dnrt_error *err, int code, const char *fmt, ...) DNRT_PRINTF(3, 4);
/* Marks 'err' (may be NULL) as success; returns 0. */
int dnrt_ok(dnrt_error *err);
/* Writes 'v' into 'buf' as "%g" does, but every NaN as "nan" (printf may
 * write "-nan"); returns 'buf'. */
const char *dnrt_num(float v, char *buf, size_t len);
/* Bytes per element of a dnrt_dtype; 0 for an invalid one. */
int dnrt_dtype_size(int32_t dtype);
/* "f32", "i32", "i64"; "?" for an invalid one. */
const char *dnrt_dtype_name(int32_t dtype);
/* Writes "f32[120, 400]" into 'buf' (rank 0: "f32[]"); returns 'buf'. */
char *dnrt_type_str(const char *dtype, int32_t rank, const int64_t *dim, char *buf, size_t len);
/* Element count of a static shape, or -1 if a dimension is negative or the
 * product overflows int64. */
int64_t dnrt_numel(int32_t rank, const int64_t *dim);

/* ---- decimal.c ------------------------------------------------------------ */
enum { DNRT_DEC_SYNTAX = 1, DNRT_DEC_RANGE = 2 };
/* Parses all of 's' as a decimal integer: an optional '-', then digits, and
 * nothing else (no spaces, no '+').  Returns 0 with '*out' set when it lies
 * in [lo, hi]; DNRT_DEC_SYNTAX when 's' (or NULL) is not such a number;
 * DNRT_DEC_RANGE when it is one outside [lo, hi], however many digits. */
int dnrt_decimal(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* ---- fault.c: allocation and I/O, failing on demand (see fault.h) -------- */
void *dnrt_malloc(size_t size);
void *dnrt_realloc(void *p, size_t size);
/* 'size' bytes (rounded up to 64), 64-aligned, zeroed. */
void *dnrt_alloc_aligned(size_t size);
void dnrt_free(void *p);
/* Returns nonzero when the armed fault for this kind of event fires now. */
int dnrt_fault_alloc_now(void);
int dnrt_fault_io_now(void);

/* ---- pool.c --------------------------------------------------------------- */
/* Starts 'nthreads' - 1 workers (the caller is the nth); NULL on failure
 * with 'err' filled. */
struct dnrt_pool *dnrt_pool_new(int nthreads, dnrt_error *err);
/* Stops and joins the workers; accepts NULL. */
void dnrt_pool_free(struct dnrt_pool *p);
int dnrt_pool_threads(const struct dnrt_pool *p);

/* ---- init.c --------------------------------------------------------------- */
/* Fills state tensor 'index' of 'd' in 'state' from its initializer, with
 * the Philox stream keyed by 'seed' and 'index'. */
void dnrt_init_tensor(const dnrt_model_desc *d, int32_t index, uint8_t *state, uint64_t seed);
/* Checks that state tensor 'index' of 'd' is well formed (dtype, rank,
 * static dims, inside state_bytes); 0 or -1 with 'err' filled. */
int dnrt_check_state_desc(const dnrt_model_desc *d, int32_t index, dnrt_error *err);
/* Bytes of state tensor 't' (its shape is static). */
int64_t dnrt_state_nbytes(const dnrt_tensor_desc *t);
/* The first f32 state tensor of 'd' in 'state' holding a NaN or an
 * infinity: returns its index with the element's index in *elem and value
 * in *value, or -1 when every f32 state tensor is finite. */
int32_t dnrt_state_nonfinite(const dnrt_model_desc *d, const uint8_t *state, int64_t *elem, float *value);

#endif

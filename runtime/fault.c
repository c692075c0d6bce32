/* fault.c -- the runtime's allocation and I/O wrappers and their test hook.
 *
 * Every allocation of the runtime goes through dnrt_malloc/dnrt_realloc/
 * dnrt_alloc_aligned, and every file operation asks dnrt_fault_io_now()
 * first, so tests (fault.h) can make any one of them fail.  Disarmed, the
 * cost is one relaxed atomic load.
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "internal.h"

static _Atomic int alloc_countdown; /* 0 = disarmed */
static _Atomic int io_countdown;

void dnrt_fault_fail_alloc(int nth) { atomic_store(&alloc_countdown, nth > 0 ? nth : 0); }
void dnrt_fault_fail_io(int nth) { atomic_store(&io_countdown, nth > 0 ? nth : 0); }
int dnrt_fault_pending(void) { return atomic_load(&alloc_countdown) > 0 || atomic_load(&io_countdown) > 0; }

/* Counts one event down; fires (returns 1) when the count reaches zero. */
static int fire(_Atomic int *countdown)
{
    int v = atomic_load_explicit(countdown, memory_order_relaxed);
    while (v > 0) {
        if (atomic_compare_exchange_weak(countdown, &v, v - 1)) return v == 1;
    }
    return 0;
}

int dnrt_fault_alloc_now(void) { return fire(&alloc_countdown); }
int dnrt_fault_io_now(void) { return fire(&io_countdown); }

/* malloc, or NULL when the armed fault fires. */
void *dnrt_malloc(size_t size)
{
    if (dnrt_fault_alloc_now()) return NULL;
    return malloc(size ? size : 1);
}

/* realloc; on failure (real or injected) 'p' is left untouched. */
void *dnrt_realloc(void *p, size_t size)
{
    if (dnrt_fault_alloc_now()) return NULL;
    return realloc(p, size ? size : 1);
}

/* 64-aligned zeroed block of at least 'size' bytes (one 64-byte line for
 * size 0); release with dnrt_free. */
void *dnrt_alloc_aligned(size_t size)
{
    if (dnrt_fault_alloc_now()) return NULL;
    size_t rounded = (size + DNRT_ALIGN - 1) / DNRT_ALIGN * DNRT_ALIGN;
    if (rounded < size) return NULL;
    if (rounded == 0) rounded = DNRT_ALIGN;
    void *p = aligned_alloc(DNRT_ALIGN, rounded);
    if (p) memset(p, 0, rounded);
    return p;
}

void dnrt_free(void *p) { free(p); }

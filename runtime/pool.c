/* pool.c -- the thread pool behind dnrt_parallel_for.
 *
 * Generated entry functions call dnrt_parallel_for once per op, so a call
 * must cost little more than the work: workers persist for the session's
 * life and wait for a new generation number, first spinning briefly (the
 * next op usually follows within microseconds), then sleeping on a
 * condition variable.  The caller runs chunk 0 itself and waits for the
 * others the same way.  One caller at a time: a nested or concurrent call
 * finds the pool busy and runs its loop inline.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "fault.h"
#include "internal.h"

#define SPIN_ROUNDS 8192 /* ~tens of microseconds before sleeping */
#define YIELD_EVERY 128  /* let an oversubscribed core run the others */

typedef struct dnrt_pool dnrt_pool;
typedef struct worker {
    dnrt_pool *pool;
    int index; /* 1 .. nthreads-1; chunk 'index' is this worker's */
    pthread_t thread;
} worker;

struct dnrt_pool {
    int nthreads; /* including the caller */
    int spin;     /* spin rounds before sleeping; short when oversubscribed */
    int nstarted; /* workers actually running */
    worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* workers: a new generation (or stop) */
    pthread_cond_t done;  /* caller: pending reached 0 */
    _Atomic uint64_t gen; /* written under mu */
    _Atomic int pending;  /* workers still running the current job */
    _Atomic int busy;     /* a dnrt_parallel_for is in progress */
    int stop;             /* under mu */
    /* the current job, published before gen is bumped */
    const dnrt_call *c;
    dnrt_kernel_fn fn;
    int64_t count;
};

/* One round of a spin-wait: a pause, and now and then a yield. */
static inline void cpu_relax(int round)
{
    if (round % YIELD_EVERY == YIELD_EVERY - 1) {
        sched_yield();
        return;
    }
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Runs chunk 'i' of the current job as worker i: [count*i/nt, count*(i+1)/nt). */
static void run_chunk(dnrt_pool *p, int i)
{
    int64_t nt = p->nthreads, count = p->count;
    int64_t b = count / nt * i + count % nt * i / nt;
    int64_t e = count / nt * (i + 1) + count % nt * (i + 1) / nt;
    if (b < e) p->fn(p->c, b, e, i);
}

/* Waits until gen differs from 'seen' or the pool stops; returns the new
 * generation, or 0 to stop. */
static uint64_t wait_job(dnrt_pool *p, uint64_t seen)
{
    for (int i = 0; i < p->spin; i++) {
        uint64_t g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax(i);
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->gen) == seen && !p->stop) pthread_cond_wait(&p->wake, &p->mu);
    uint64_t g = p->stop ? 0 : atomic_load(&p->gen);
    pthread_mutex_unlock(&p->mu);
    return g;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    dnrt_pool *p = w->pool;
    uint64_t seen = 0; /* generations start at 1 */
    for (;;) {
        seen = wait_job(p, seen);
        if (seen == 0) return NULL;
        run_chunk(p, w->index);
        if (atomic_fetch_sub_explicit(&p->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

/* Stops the workers that were started and frees 'p'. */
void dnrt_pool_free(dnrt_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->nstarted; i++) pthread_join(p->workers[i].thread, NULL);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    dnrt_free(p->workers);
    dnrt_free(p);
}

dnrt_pool *dnrt_pool_new(int nthreads, dnrt_error *err)
{
    dnrt_pool *p = dnrt_malloc(sizeof *p);
    worker *ws = nthreads > 1 ? dnrt_malloc(sizeof *ws * (size_t)(nthreads - 1)) : NULL;
    if (!p || (nthreads > 1 && !ws)) {
        dnrt_free(p);
        dnrt_free(ws);
        dnrt_fail(err, DNRT_ERR_NOMEM, "create: out of memory for a pool of %d threads", nthreads);
        return NULL;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    *p = (dnrt_pool){.nthreads = nthreads, .workers = ws, .spin = nthreads <= cpus ? SPIN_ROUNDS : YIELD_EVERY};
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < nthreads - 1; i++) {
        ws[i] = (worker){.pool = p, .index = i + 1};
        if (dnrt_fault_alloc_now() || pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]) != 0) {
            dnrt_pool_free(p);
            dnrt_fail(err, DNRT_ERR_NOMEM, "create: cannot start worker thread %d of %d", i + 1, nthreads - 1);
            return NULL;
        }
        p->nstarted++;
    }
    return p;
}

int dnrt_pool_threads(const dnrt_pool *p) { return p ? p->nthreads : 1; }

/* Waits for the workers of the current job to finish. */
static void wait_done(dnrt_pool *p)
{
    for (int i = 0; i < p->spin; i++) {
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
        cpu_relax(i);
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) != 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void dnrt_parallel_for(const dnrt_call *c, dnrt_kernel_fn fn, int64_t count)
{
    dnrt_pool *p = c->pool;
    if (count <= 0) return;
    if (count == 1 || !p || p->nthreads <= 1 || atomic_exchange(&p->busy, 1)) {
        fn(c, 0, count, 0);
        return;
    }
    p->c = c;
    p->fn = fn;
    p->count = count;
    atomic_store_explicit(&p->pending, p->nthreads - 1, memory_order_relaxed);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->gen, 1, memory_order_release);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    run_chunk(p, 0);
    wait_done(p);
    atomic_store(&p->busy, 0);
}

/* llvm_units.c -- the CPU backend's kernels as units: each distinct kernel
 * body is an LLVM module in a context of its own, so that identical
 * kernels are compiled once, independent ones on all cores at once, and
 * unchanged ones not at all (the kernel cache, ../kernel_cache.h).
 *
 * A kernel body depends only on the op (kind, shapes, attributes), the
 * pointer facts of its launch (noalias, alignment) and the target: the
 * buffers' addresses reach it as parameters from its wrapper in the host
 * module (llvm_launch.c).  So two ops with equal bodies share one: the
 * body's IR text before optimization is its identity, and its symbol is
 * "<op>.<16 hex digits of the text's hash>", hidden, defined in the unit
 * and declared in the host module.
 *
 * Building (dn_units_build): every unit gets its cache key (text, target
 * triple, CPU and features, optimization level, LLVM version, the dnnc
 * executable); a unit whose entry is in the cache and whole is linked from
 * there; the others are optimized and compiled by 'jobs' threads, each
 * with its own target machine, largest first, into a temporary beside
 * their cache entry that is then renamed over it (or into a temporary
 * object with no cache).  Diagnostics are reported on the calling thread
 * once all threads are done.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../kernel_cache.h"
#include "../output.h"
#include "llvm_internal.h"

/* The body's name while it is generated and hashed. */
#define UNIT_BODY "kernel"

struct DnUnit {
    DnHost h;        /* its own context, module and builder */
    char *text;      /* the module's IR before optimization (LLVMDisposeMessage) */
    size_t len;      /* strlen(text) */
    DnHash hash;     /* of text */
    char sym[96];    /* the body's symbol */
    char *path;      /* where its object is written (cache temporary or temporary object); malloc'd */
    char *entry;     /* its cache entry (rename 'path' here), or NULL; malloc'd */
    bool from_cache; /* the entry was whole: nothing to compile */
    bool live;       /* h holds a context */
    int obj;         /* its place in the object list */
    bool unwritable; /* its cache entry could not be written (err says why) */
    char *err;       /* a compile thread's failure (malloc'd) */
    double secs;     /* how long its optimization and code generation took */
};

typedef struct DnUnits {
    DnUnit **u;
    int n, cap;
    int kernels; /* bodies generated: one per launch */
} DnUnits;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static DnUnits *units_of(DnHost *H)
{
    if (!H->be) {
        DnUnits *us = calloc(1, sizeof *us);
        if (!us) dn_die(__FILE__, __LINE__, "out of memory");
        H->be = us;
    }
    return H->be;
}

static void unit_release_llvm(DnUnit *u)
{
    if (!u->live) return;
    dn_host_dispose(&u->h);
    u->live = false;
}

static void unit_free(DnUnit *u)
{
    unit_release_llvm(u);
    if (u->text) LLVMDisposeMessage(u->text);
    free(u->path);
    free(u->entry);
    free(u->err);
    free(u);
}

/* ---- making units (contracts: llvm_internal.h) ------------------------------- */

DnUnit *dn_unit_begin(DnHost *H, const DnLaunch *l, int nws, LLVMValueRef *body)
{
    DnUnit *u = calloc(1, sizeof *u);
    if (!u) dn_die(__FILE__, __LINE__, "out of memory");
    dn_host_init(&u->h, H->cx, H->m, H->opt, H->hooks);
    u->live = true;
    LLVMSetModuleIdentifier(u->h.mod, "dnnc.kernel", 11); /* the text must not name the model */
    LLVMSetSourceFileName(u->h.mod, "dnnc.kernel", 11);
    LLVMTypeRef t;
    *body = dn_llvm_add_body(&u->h, UNIT_BODY, l, nws, &t);
    return u;
}

DnHost *dn_unit_host(DnUnit *u) { return &u->h; }

const char *dn_unit_end(DnHost *H, DnUnit *u, LLVMValueRef body, const char *opname)
{
    DnUnits *us = units_of(H);
    us->kernels++;
    u->text = LLVMPrintModuleToString(u->h.mod);
    u->len = strlen(u->text);
    u->hash = dn_hash_start();
    dn_hash_add(&u->hash, u->text, u->len);
    for (int i = 0; i < us->n; i++) {
        DnUnit *o = us->u[i];
        if (o->hash.a == u->hash.a && o->hash.b == u->hash.b && o->len == u->len && !strcmp(o->text, u->text)) {
            unit_free(u);
            return o->sym;
        }
    }
    char hex[33];
    dn_hash_hex(u->hash, hex);
    snprintf(u->sym, sizeof u->sym, "%s.%.16s", opname, hex);
    LLVMSetValueName2(body, u->sym, strlen(u->sym));
    LLVMSetLinkage(body, LLVMExternalLinkage);
    LLVMSetVisibility(body, LLVMHiddenVisibility);
    if (us->n == us->cap) {
        us->cap = us->cap ? 2 * us->cap : 64;
        us->u = realloc(us->u, (size_t)us->cap * sizeof *us->u);
        if (!us->u) dn_die(__FILE__, __LINE__, "out of memory");
    }
    us->u[us->n++] = u;
    return u->sym;
}

void dn_units_dispose(DnHost *H)
{
    DnUnits *us = H->be;
    if (!us) return;
    for (int i = 0; i < us->n; i++) unit_free(us->u[i]);
    free(us->u);
    free(us);
    H->be = NULL;
}

/* ---- compiling them ------------------------------------------------------------ */

typedef struct Pool {
    DnUnit **todo;
    int n;
    atomic_int next;
    int opt_level;
    bool write; /* objects; else only optimize (--emit=code) */
} Pool;

typedef struct Worker {
    Pool *pool;
    LLVMTargetMachineRef tm;
} Worker;

/* Writes the object of u's optimized module to u->path, then renames it
 * over u->entry when it has one.  NULL, or what failed (malloc'd). */
static char *write_unit(DnUnit *u, LLVMTargetMachineRef tm)
{
    char *msg = NULL, err[4400];
    LLVMMemoryBufferRef buf = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, u->h.mod, LLVMObjectFile, &msg, &buf)) {
        snprintf(err, sizeof err, "llvm backend: cannot compile kernel '%s': %s", u->sym, msg);
        LLVMDisposeMessage(msg);
        return dn_strdup(err);
    }
    /* an entry's temporary is made afresh (a leftover of this PID's, or a
     * link planted there, is never written through); a temporary object
     * exists already, empty (dn_objects_add_temp) */
    if (u->entry) unlink(u->path);
    int fd = open(u->path, O_WRONLY | O_CREAT | O_CLOEXEC | (u->entry ? O_EXCL : O_TRUNC), 0644);
    int rc = fd < 0 ? -1 : dn_write_all(fd, LLVMGetBufferStart(buf), LLVMGetBufferSize(buf));
    int e = errno;
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = -1, e = errno;
    LLVMDisposeMemoryBuffer(buf);
    if (rc == 0 && u->entry && rename(u->path, u->entry) != 0) rc = -1, e = errno;
    if (rc == 0) return NULL;
    if (u->entry) unlink(u->path);
    u->unwritable = u->entry != NULL;
    snprintf(err, sizeof err, "cannot write '%s': %s", u->entry ? u->entry : u->path, strerror(e));
    return dn_strdup(err);
}

static void *compile_units(void *arg)
{
    Worker *w = arg;
    Pool *p = w->pool;
    for (;;) {
        int i = atomic_fetch_add(&p->next, 1);
        if (i >= p->n) break;
        DnUnit *u = p->todo[i];
        double t0 = now_s();
        u->err = dn_host_run_pipeline(u->h.mod, w->tm, p->opt_level);
        if (!u->err && p->write) u->err = write_unit(u, w->tm);
        if (!u->err && p->write) unit_release_llvm(u); /* memory back as the build goes */
        u->secs = now_s() - t0;
    }
    return NULL;
}

static int by_size_desc(const void *a, const void *b)
{
    const DnUnit *x = *(DnUnit *const *)a, *y = *(DnUnit *const *)b;
    return x->len < y->len ? 1 : x->len > y->len ? -1 : 0;
}

static int job_count(const DnBackendOptions *o, int work)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = o && o->jobs > 0 ? o->jobs : cores > 0 ? (int)cores : 1;
    return jobs < work ? jobs : work;
}

/* A unit whose cache entry could not be written (a full disk, a folder
 * made read-only meanwhile) goes to a temporary object instead, once the
 * threads are done: a warning, not a failed build. */
static DnStatus write_uncached(DnHost *H, Pool *p, DnObjects *objs, const char *cache)
{
    bool warned = false;
    for (int i = 0; i < p->n; i++) {
        DnUnit *u = p->todo[i];
        if (!u->unwritable) continue;
        if (!warned) dn_warning(H->cx, (DnLoc){0}, "kernel cache '%s': %s; going on without it", cache, u->err);
        warned = true;
        const char *tmp = dn_objects_add_temp(H->cx, objs);
        if (!tmp) return DN_ERR;
        free(objs->obj[u->obj].path); /* the temporary takes the entry's place in the link order */
        objs->obj[u->obj] = objs->obj[--objs->n];
        free(u->path);
        free(u->entry);
        free(u->err);
        u->path = dn_strdup(tmp), u->entry = NULL, u->unwritable = false;
        u->err = write_unit(u, H->tm);
        if (!u->err) unit_release_llvm(u);
    }
    return DN_OK;
}

/* Optimizes (and with p->write compiles) p->todo on up to 'jobs' threads;
 * with 'objs', units whose cache entry could not be written go to
 * temporary objects there.  Reports the units' failures; DN_ERR if any. */
static DnStatus run_pool(DnHost *H, Pool *p, DnObjects *objs, const char *cache)
{
    int jobs = job_count(H->opt, p->n);
    if (jobs <= 0) return DN_OK;
    qsort(p->todo, (size_t)p->n, sizeof *p->todo, by_size_desc);
    Worker *w = calloc((size_t)jobs, sizeof *w);
    pthread_t *th = calloc((size_t)jobs, sizeof *th);
    if (!w || !th) dn_die(__FILE__, __LINE__, "out of memory");
    int made = 0;
    for (; made < jobs; made++) {
        w[made] = (Worker){p, made == 0 ? H->tm : dn_host_target_machine(H->cx, H->opt)};
        if (!w[made].tm) break;
    }
    int started = 0;
    for (int i = 1; i < made; i++) /* worker 0 is this thread */
        if (pthread_create(&th[i], NULL, compile_units, &w[i]) == 0)
            started = i;
        else
            break;
    if (made > 0) compile_units(&w[0]);
    for (int i = 1; i <= started; i++) pthread_join(th[i], NULL);
    for (int i = 1; i < made; i++) LLVMDisposeTargetMachine(w[i].tm);
    free(w);
    free(th);
    if (made == 0) return DN_ERR;
    DnStatus st = objs ? write_uncached(H, p, objs, cache) : DN_OK;
    for (int i = 0; i < p->n; i++)
        if (p->todo[i]->err) {
            dn_error(H->cx, (DnLoc){0}, "%s", p->todo[i]->err);
            st = DN_ERR;
        }
    return st;
}

/* What every key of one build shares: the target of 'tm', the
 * optimization level, the LLVM version and the compiler that compiles. */
static DnHash target_hash(LLVMTargetMachineRef tm, int opt_level)
{
    DnHash k = dn_hash_start(), self = dn_hash_self();
    char *triple = LLVMGetTargetMachineTriple(tm), *cpu = LLVMGetTargetMachineCPU(tm);
    char *feat = LLVMGetTargetMachineFeatureString(tm);
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    char tail[64];
    snprintf(tail, sizeof tail, "O%d LLVM %u.%u.%u", opt_level, major, minor, patch);
    dn_hash_add_str(&k, triple);
    dn_hash_add_str(&k, cpu);
    dn_hash_add_str(&k, feat);
    dn_hash_add_str(&k, tail);
    dn_hash_add(&k, &self, sizeof self);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(feat);
    return k;
}

/* The cache key of 'u' into hex[33]: its text and symbol, then 'target'
 * (target_hash). */
static void unit_key(const DnUnit *u, DnHash target, char hex[33])
{
    DnHash k = u->hash;
    dn_hash_add_str(&k, u->sym); /* ops of different kinds may have one text, but not one symbol */
    dn_hash_add(&k, &target, sizeof target);
    dn_hash_hex(k, hex);
}

/* "ENTRY.dnnc-tmp.PID", this process's temporary of a cache entry
 * (malloc'd); a killed build's are removed by dn_cache_trim, so there is no
 * scan of the folder per entry. */
static char *entry_temporary(const char *entry)
{
    char tmp[4300];
    snprintf(tmp, sizeof tmp, "%s.dnnc-tmp.%ld", entry, (long)getpid());
    return dn_strdup(tmp);
}

/* Sets u->path and u->entry: the cache entry, whole (from_cache) or to be
 * written; with no usable cache folder, a new temporary object. */
static DnStatus place_unit(DnHost *H, DnUnit *u, const char *cache, DnObjects *objs, DnHash target)
{
    if (cache) {
        char key[33], entry[4200];
        unit_key(u, target, key);
        snprintf(entry, sizeof entry, "%s/%s.o", cache, key);
        u->entry = dn_strdup(entry);
        u->obj = objs->n;
        dn_objects_add(objs, entry);
        if (dn_cache_object_ok(entry)) {
            u->from_cache = true;
            dn_cache_touch(entry);
        } else
            u->path = entry_temporary(entry);
        return DN_OK;
    }
    u->obj = objs->n;
    const char *tmp = dn_objects_add_temp(H->cx, objs);
    if (!tmp) return DN_ERR;
    u->path = dn_strdup(tmp);
    return DN_OK;
}

/* The cache folder to use, or NULL (none asked for, or it cannot be made:
 * then a warning, and the build goes on without it). */
static const char *cache_folder(DnHost *H)
{
    const char *dir = H->opt ? H->opt->cache_dir : NULL;
    if (!dir) return NULL;
    if (dn_cache_make_dir(dir) == 0) return dir;
    dn_warning(H->cx, (DnLoc){0}, "kernel cache '%s' is not usable (%s): compiling every kernel", dir, strerror(errno));
    return NULL;
}

static int by_secs_desc(const void *a, const void *b)
{
    const DnUnit *x = *(DnUnit *const *)a, *y = *(DnUnit *const *)b;
    return x->secs < y->secs ? 1 : x->secs > y->secs ? -1 : 0;
}

/* --stats: the counts, then the kernels that took longest to compile. */
static void print_stats(DnHost *H, const DnUnits *us, Pool *p, const char *cache, double secs)
{
    FILE *f = H->opt ? H->opt->stats : NULL;
    if (!f) return;
    double busy = 0;
    for (int i = 0; i < p->n; i++) busy += p->todo[i]->secs;
    fprintf(f,
            "dnnc: %d kernels, %d distinct: %d compiled, %d from the cache%s%s; %.2f s on %d threads (%.2f s "
            "of compiling)\n",
            us->kernels, us->n, p->n, us->n - p->n, cache ? " " : " (no cache)", cache ? cache : "", secs,
            job_count(H->opt, p->n > 0 ? p->n : 1), busy);
    qsort(p->todo, (size_t)p->n, sizeof *p->todo, by_secs_desc);
    for (int i = 0; i < p->n && i < 5; i++) fprintf(f, "  %8.2f s  %s\n", p->todo[i]->secs, p->todo[i]->sym);
}

DnStatus dn_units_build(DnHost *H, DnObjects *objs)
{
    DnUnits *us = units_of(H);
    double t0 = now_s();
    int opt_level = H->opt ? H->opt->opt_level : 3;
    const char *cache = cache_folder(H);
    DnHash target = target_hash(H->tm, opt_level); /* reads dn_hash_self once, before any thread runs */
    Pool p = {.todo = calloc((size_t)us->n + 1, sizeof(DnUnit *)), .opt_level = opt_level, .write = true};
    if (!p.todo) dn_die(__FILE__, __LINE__, "out of memory");
    DnStatus st = DN_OK;
    for (int i = 0; i < us->n && st == DN_OK; i++) {
        DnUnit *u = us->u[i];
        st = place_unit(H, u, cache, objs, target);
        if (st == DN_OK && !u->from_cache) p.todo[p.n++] = u;
        if (u->from_cache) unit_release_llvm(u);
    }
    if (st == DN_OK) st = run_pool(H, &p, objs, cache);
    for (int i = 0; i < p.n; i++)
        if (p.todo[i]->entry && p.todo[i]->path) unlink(p.todo[i]->path); /* gone unless a write failed */
    if (cache) dn_cache_trim(cache, dn_cache_max_bytes());
    print_stats(H, us, &p, cache, now_s() - t0);
    free(p.todo);
    return st;
}

DnStatus dn_units_print(DnHost *H, FILE *out)
{
    DnUnits *us = units_of(H);
    Pool p = {
        .todo = calloc((size_t)us->n + 1, sizeof(DnUnit *)), .n = us->n, .opt_level = H->opt ? H->opt->opt_level : 3};
    if (!p.todo) dn_die(__FILE__, __LINE__, "out of memory");
    memcpy(p.todo, us->u, (size_t)us->n * sizeof *p.todo);
    DnStatus st = run_pool(H, &p, NULL, NULL);
    free(p.todo);
    for (int i = 0; i < us->n && st == DN_OK; i++) {
        fprintf(out, "\n; ---- kernel %s: its own module (%d of %d) ----\n", us->u[i]->sym, i + 1, us->n);
        dn_host_write_text(us->u[i]->h.mod, out);
    }
    return st;
}

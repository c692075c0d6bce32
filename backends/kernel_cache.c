/* kernel_cache.c -- hashing, the cache folder and entry checks (see
 * kernel_cache.h).  The CPU backend (llvm/llvm_units.c) decides what goes
 * in a key and writes the entries. */
#define _GNU_SOURCE
#include "kernel_cache.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Two FNV-1a-style lanes with different multipliers, each finished with a
 * splitmix64 mix. */
#define LANE_A_PRIME UINT64_C(0x100000001b3)
#define LANE_B_PRIME UINT64_C(0x9e3779b97f4a7c15)

DnHash dn_hash_start(void) { return (DnHash){UINT64_C(0xcbf29ce484222325), UINT64_C(0x84222325cbf29ce4)}; }

void dn_hash_add(DnHash *h, const void *p, size_t n)
{
    const unsigned char *c = p;
    uint64_t a = h->a, b = h->b;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ c[i]) * LANE_A_PRIME;
        b = (b ^ c[i]) * LANE_B_PRIME;
    }
    h->a = a, h->b = b;
}

void dn_hash_add_str(DnHash *h, const char *s) { dn_hash_add(h, s ? s : "", strlen(s ? s : "") + 1); }

static uint64_t mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void dn_hash_hex(DnHash h, char out[33])
{
    snprintf(out, 33, "%016llx%016llx", (unsigned long long)mix(h.a), (unsigned long long)mix(h.b ^ h.a));
}

DnHash dn_hash_self(void)
{
    static DnHash self;
    static bool done;
    if (done) return self;
    self = dn_hash_start();
    bool read_all = false;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        char buf[1 << 16];
        ssize_t r;
        while ((r = read(fd, buf, sizeof buf)) > 0) dn_hash_add(&self, buf, (size_t)r);
        read_all = r == 0;
        close(fd);
    }
    if (!read_all) { /* no /proc: the path and build time still separate one build from another */
        self = dn_hash_start();
        dn_hash_add_str(&self, __FILE__ __DATE__ __TIME__);
    }
    done = true;
    return self;
}

bool dn_cache_default_dir(char *buf, size_t len)
{
    const char *d = getenv("DNNC_CACHE_DIR");
    if (d && *d) return (size_t)snprintf(buf, len, "%s", d) < len;
    d = getenv("XDG_CACHE_HOME");
    if (d && *d == '/') return (size_t)snprintf(buf, len, "%s/dnnc", d) < len;
    d = getenv("HOME");
    if (d && *d) return (size_t)snprintf(buf, len, "%s/.cache/dnnc", d) < len;
    return false;
}

int dn_cache_make_dir(const char *dir)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s", dir) >= sizeof path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p) continue;
        char was = *p;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
        *p = was;
        if (!was) break;
    }
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return access(path, W_OK | X_OK);
}

bool dn_cache_object_ok(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    Elf64_Ehdr e;
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && pread(fd, &e, sizeof e, 0) == (ssize_t)sizeof e;
    close(fd);
    if (!ok || memcmp(e.e_ident, ELFMAG, SELFMAG) || e.e_ident[EI_CLASS] != ELFCLASS64 || e.e_type != ET_REL)
        return false;
    uint64_t end = e.e_shoff + (uint64_t)e.e_shnum * e.e_shentsize;
    return e.e_shoff >= sizeof e && e.e_shnum > 0 && e.e_shentsize == sizeof(Elf64_Shdr) && end <= (uint64_t)st.st_size;
}

void dn_cache_touch(const char *path) { utimensat(AT_FDCWD, path, NULL, 0); }

int64_t dn_cache_max_bytes(void)
{
    const char *v = getenv("DNNC_CACHE_MAX_MB");
    char *end;
    long long mb = v && *v ? strtoll(v, &end, 10) : 1024;
    if (v && *v && (*end || mb < 0)) mb = 1024; /* not a count: the default */
    return (int64_t)mb << 20;
}

/* An entry's name: 32 hex digits and ".o". */
static bool is_entry(const char *name)
{
    size_t n = strlen(name);
    if (n != 34 || strcmp(name + 32, ".o")) return false;
    for (size_t i = 0; i < 32; i++)
        if (!strchr("0123456789abcdef", name[i])) return false;
    return true;
}

/* An entry's temporary: the entry's name, ".dnnc-tmp." and a PID. */
static bool is_temporary(const char *name)
{
    char entry[35];
    if (strlen(name) <= 44 || strncmp(name + 34, ".dnnc-tmp.", 10)) return false;
    snprintf(entry, sizeof entry, "%.34s", name);
    return is_entry(entry) && strspn(name + 44, "0123456789") == strlen(name + 44);
}

typedef struct Entry {
    char name[35];
    int64_t bytes;
    time_t used;
} Entry;

static int by_use(const void *a, const void *b)
{
    const Entry *x = a, *y = b;
    return x->used < y->used ? -1 : x->used > y->used;
}

int dn_cache_trim(const char *dir, int64_t max_bytes)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    Entry *e = NULL;
    int n = 0, cap = 0;
    int64_t total = 0;
    struct dirent *de;
    time_t spare = time(NULL) - 3600;
    while ((de = readdir(d))) {
        struct stat st;
        bool tmp = is_temporary(de->d_name);
        if ((!tmp && !is_entry(de->d_name)) || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
            !S_ISREG(st.st_mode))
            continue;
        if (tmp) { /* a killed build's: no writer takes an hour over one kernel */
            if (st.st_mtime < spare) unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            Entry *more = realloc(e, (size_t)cap * sizeof *e);
            if (!more) break;
            e = more;
        }
        snprintf(e[n].name, sizeof e[n].name, "%s", de->d_name);
        e[n].bytes = (int64_t)st.st_size, e[n].used = st.st_mtime;
        total += e[n++].bytes;
    }
    int removed = 0;
    if (max_bytes > 0 && total > max_bytes) {
        qsort(e, (size_t)n, sizeof *e, by_use);
        for (int i = 0; i < n && total > max_bytes / 10 * 8 && e[i].used < spare; i++)
            if (unlinkat(dirfd(d), e[i].name, 0) == 0) total -= e[i].bytes, removed++;
    }
    closedir(d);
    free(e);
    return removed;
}

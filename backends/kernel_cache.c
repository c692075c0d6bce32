/* kernel_cache.c -- hashing, the cache folder and entry checks (see
 * kernel_cache.h).  The CPU backend (llvm/llvm_units.c) decides what goes
 * in a key and writes the entries. */
#define _GNU_SOURCE
#include "kernel_cache.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

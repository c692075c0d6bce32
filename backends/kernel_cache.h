/* kernel_cache.h -- the content-hash cache of compiled kernels
 * (kernel_cache.c): one object file per distinct kernel, named by a hash
 * of everything that decides its machine code, so that a rebuild compiles
 * only the kernels that changed.
 *
 * An entry is KEY.o in the cache folder: $DNNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/dnnc, else $HOME/.cache/dnnc (dnnc --no-cache uses
 * none).  The key hashes the kernel's LLVM IR before optimization and its
 * symbol, the target (triple, CPU, features, optimization level), the LLVM
 * version and the dnnc executable itself, so a new build of dnnc never
 * reuses an old one's code.  Entries are written to a temporary beside them and renamed,
 * so concurrent compiles and a killed one never leave a partial entry; an
 * entry that is not a whole ELF object (a damaged disk) is compiled again
 * and replaced.  Deleting the folder, or any entry, is always safe.
 *
 * The folder is kept under $DNNC_CACHE_MAX_MB megabytes (default 1024; 0:
 * no bound): an entry a build uses is touched, and after a build the
 * entries used longest ago go until the folder is at 80% of the bound;
 * entries used in the last hour are never removed, so a build running
 * beside this one keeps what it has chosen to link.
 */
#ifndef DN_KERNEL_CACHE_H
#define DN_KERNEL_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A 128-bit hash (two 64-bit lanes); not cryptographic. */
typedef struct DnHash {
    uint64_t a, b;
} DnHash;

/* The hash of nothing; fold bytes in with dn_hash_add. */
DnHash dn_hash_start(void);
void dn_hash_add(DnHash *h, const void *p, size_t n);
/* Adds a NUL-terminated string and its terminator (so "ab","c" != "a","bc"). */
void dn_hash_add_str(DnHash *h, const char *s);
/* 32 lowercase hex digits and a NUL into out[33]. */
void dn_hash_hex(DnHash h, char out[33]);
/* The hash of this process's executable (read once, then remembered; call
 * it first from one thread).  The hash of its path when it cannot be read. */
DnHash dn_hash_self(void);

/* The default cache folder (see above) into 'buf'; false when there is no
 * $HOME to put it in or the name does not fit. */
bool dn_cache_default_dir(char *buf, size_t len);
/* Creates 'dir' and its missing parents (mode 0700).  Returns 0, or -1
 * with errno set. */
int dn_cache_make_dir(const char *dir);
/* Marks entry 'path' as just used (its modification time). */
void dn_cache_touch(const char *path);
/* The bound in bytes from $DNNC_CACHE_MAX_MB (see above); 0: none. */
int64_t dn_cache_max_bytes(void);
/* Removes the entries of 'dir' used longest ago while its entries take
 * more than 'max_bytes' (down to 80% of it), sparing those used in the
 * last hour ('max_bytes' 0: none), and the temporaries of entries that are
 * older than an hour (a killed build's).  Returns how many entries it
 * removed. */
int dn_cache_trim(const char *dir, int64_t max_bytes);
/* Whether 'path' is a whole 64-bit ELF relocatable object: the header is
 * there and the section table it points to lies inside the file. */
bool dn_cache_object_ok(const char *path);

#endif

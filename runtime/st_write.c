/* st_write.c -- writing a safetensors file atomically (dnrt_st_write).
 *
 * The header (metadata first, then the tensors in the given order with
 * contiguous data_offsets) is built in memory and padded with spaces so the
 * data section starts at a multiple of 8.  Everything goes to a temporary
 * file in the destination's folder, which is flushed, fsync'ed and renamed
 * over the destination, and the folder is fsync'ed so the rename lasts; on
 * any failure the temporary file is removed and the previous file is
 * untouched.  Temporary files are named after the destination, the host and
 * the process (dnrt.h, "weights files"), so that a save can tell the ones a
 * killed process left behind from those of a save still running, and
 * removes the former before it writes.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "safetensors.h"
#include "st_dtype.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this runtime writes host-order bytes"
#endif

/* A growable text buffer; 'failed' sticks after an allocation failure. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
} sbuf;

static void put(sbuf *b, const char *s, size_t n)
{
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = (b->cap ? b->cap * 2 : 256) + n;
        char *p = dnrt_realloc(b->p, ncap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void putf(sbuf *b, const char *fmt, long long v)
{
    char tmp[32];
    put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, fmt, v));
}

/* A JSON string literal with the escapes the grammar requires. */
static void put_string(sbuf *b, const char *s)
{
    put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            put(b, e, 2);
        } else if (c < 0x20) {
            putf(b, "\\u%04llx", c);
        } else {
            put(b, (const char *)&c, 1);
        }
    }
    put(b, "\"", 1);
}

/* Checks tensor 't' and returns its dtype name (NULL with 'err' filled). */
static const char *check_tensor(const char *path, const dnrt_st_tensor *t, dnrt_error *err)
{
    const char *dname = t->dtype_name ? t->dtype_name : dnrt_st_dtype_name(t->dtype);
    int32_t dt;
    int size = dname ? dnrt_st_dtype_size(dname, &dt) : 0;
    int64_t numel = t->rank >= 0 && t->rank <= DNRT_ST_MAX_RANK ? dnrt_numel(t->rank, t->dim) : -1;
    if (!t->name || size == 0 || numel < 0 || (uint64_t)numel * (uint64_t)size != t->nbytes ||
        (t->nbytes && !t->data)) {
        dnrt_fail(err, DNRT_ERR_ARG, "%s: cannot write tensor '%s': bad dtype, shape or size", path,
                  t->name ? t->name : "?");
        return NULL;
    }
    return dname;
}

/* Builds the padded header of the file into 'b'; 0 or -1. */
static int build_header(const char *path, sbuf *b, int n, const dnrt_st_tensor *t, int nmeta, const char *const *keys,
                        const char *const *values, dnrt_error *err)
{
    puts_(b, "{");
    if (nmeta > 0) {
        puts_(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (!keys[i] || !values[i]) return dnrt_fail(err, DNRT_ERR_ARG, "%s: metadata pair %d is NULL", path, i);
            if (i) puts_(b, ",");
            put_string(b, keys[i]);
            puts_(b, ":");
            put_string(b, values[i]);
        }
        puts_(b, "}");
    }
    uint64_t at = 0;
    for (int i = 0; i < n; i++) {
        const char *dname = check_tensor(path, &t[i], err);
        if (!dname) return -1;
        puts_(b, i || nmeta > 0 ? ",\n" : "\n");
        put_string(b, t[i].name);
        puts_(b, ":{\"dtype\":");
        put_string(b, dname);
        puts_(b, ",\"shape\":[");
        for (int k = 0; k < t[i].rank; k++) putf(b, k ? ",%lld" : "%lld", (long long)t[i].dim[k]);
        putf(b, "],\"data_offsets\":[%lld,", (long long)at);
        at += t[i].nbytes;
        putf(b, "%lld]}", (long long)at);
    }
    puts_(b, "}");
    while ((b->len + 8) % 8) puts_(b, " ");
    if (b->failed) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for the header", path);
    return 0;
}

/* An injected I/O failure, as errno EIO. */
static int injected(void)
{
    if (!dnrt_fault_io_now()) return 0;
    errno = EIO;
    return 1;
}

/* fwrite of all 'n' bytes; 0 or -1 (errno set). */
static int write_all(FILE *fp, const void *p, size_t n)
{
    if (injected()) return -1;
    errno = EIO; /* fwrite need not set it */
    return n == 0 || fwrite(p, 1, n, fp) == n ? 0 : -1;
}

/* Writes the file body to 'fp' and makes it durable; 0 or -1 (errno). */
static int write_body(FILE *fp, const sbuf *h, int n, const dnrt_st_tensor *t)
{
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h->len >> (8 * i));
    if (write_all(fp, len, 8) || write_all(fp, h->p, h->len)) return -1;
    for (int i = 0; i < n; i++)
        if (write_all(fp, t[i].data, t[i].nbytes)) return -1;
    if (fflush(fp) != 0 || injected() || fsync(fileno(fp)) != 0) return -1;
    return 0;
}

/* Fills the temporary file 'tmp' (open as 'fd') and renames it over
 * 'path'; closes 'fd'.  0 or -1 (errno). */
static int fill_and_rename(int fd, const char *tmp, const char *path, const sbuf *h, int n, const dnrt_st_tensor *t)
{
    fchmod(fd, 0644);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    int rc = write_body(fp, h, n, t);
    int e = errno;
    if (fclose(fp) != 0 && !rc) e = errno, rc = -1;
    if (!rc && (injected() || rename(tmp, path) != 0)) e = errno, rc = -1;
    errno = e;
    return rc;
}

#define TMP_NAME_MAX 160 /* bytes of the destination's name kept in a temporary's name */
#define TMP_HOST_MAX 32

/* This machine's host name as it appears in temporary names. */
static void host_tag(char *buf, size_t len)
{
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0 || !host[0]) strcpy(host, "unknown");
    size_t i = 0;
    for (; host[i] && i < TMP_HOST_MAX && i + 1 < len; i++) {
        char c = host[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
        buf[i] = ok ? c : '_';
    }
    buf[i] = 0;
}

int dnrt_st_temp_prefix(const char *path, char *buf, size_t len)
{
    const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
    size_t nlen = strlen(name);
    char host[TMP_HOST_MAX + 1];
    host_tag(host, sizeof host);
    int n = snprintf(buf, len, "%.*s.%.*s.dnrt-tmp.%s.", (int)(name - path), path,
                     (int)(nlen < TMP_NAME_MAX ? nlen : TMP_NAME_MAX), name, host);
    return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Does the rest of a temporary's name after its prefix, "<pid>.XXXXXX",
 * name a process that is gone?  Never for this process or a malformed rest. */
static int stale_rest(const char *rest)
{
    const char *dot = strchr(rest, '.');
    if (!dot || dot == rest || dot - rest > 10 || strlen(dot + 1) != 6) return 0;
    for (const char *c = dot + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9'))) return 0;
    char digits[12];
    memcpy(digits, rest, (size_t)(dot - rest));
    digits[dot - rest] = 0;
    int64_t pid;
    if (dnrt_decimal(digits, 1, INT_MAX, &pid) || pid == (int64_t)getpid()) return 0;
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* Removes the temporary files of earlier saves to 'path' from this host
 * whose process is gone: regular files of this user only.  Best effort:
 * nothing here makes the save fail. */
static void remove_stale(const char *path)
{
    char prefix[PATH_MAX];
    if (dnrt_st_temp_prefix(path, prefix, sizeof prefix) < 0) return;
    char *slash = strrchr(prefix, '/');
    const char *name = slash ? slash + 1 : prefix;
    if (slash) *slash = 0;
    DIR *d = opendir(slash ? (prefix[0] ? prefix : "/") : ".");
    if (!d) return;
    size_t nlen = strlen(name);
    for (struct dirent *e; (e = readdir(d));) {
        struct stat st;
        if (strncmp(e->d_name, name, nlen) != 0 || !stale_rest(e->d_name + nlen)) continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid())
            unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}

/* Makes the rename into the folder of 'path' durable; best effort (some
 * file systems cannot fsync a folder, and the file is in place anyway). */
static void sync_folder(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    if (!slash)
        strcpy(dir, ".");
    else if ((size_t)(slash - path) < sizeof dir)
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    else
        return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

/* Writes 'h' and the tensors to a temporary file next to 'path' and
 * renames it over 'path'; on failure removes the temporary file. */
static int write_file(const char *path, const sbuf *h, int n, const dnrt_st_tensor *t, dnrt_error *err)
{
    size_t cap = strlen(path) + TMP_HOST_MAX + 96; /* ".", ".dnrt-tmp.", ".", pid, ".XXXXXX" */
    char *tmp = dnrt_malloc(cap);
    if (!tmp) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", path);
    int len = dnrt_st_temp_prefix(path, tmp, cap); /* 'cap' fits the longest prefix */
    if (len < 0) {
        dnrt_free(tmp);
        return dnrt_fail(err, DNRT_ERR_ARG, "%s: path too long for a temporary name", path);
    }
    snprintf(tmp + len, cap - (size_t)len, "%lld.XXXXXX", (long long)getpid());
    remove_stale(path);
    int fd = injected() ? -1 : mkstemp(tmp);
    if (fd < 0) {
        int e = errno;
        dnrt_free(tmp);
        return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    int rc = fill_and_rename(fd, tmp, path, h, n, t);
    if (rc) {
        int e = errno;
        unlink(tmp);
        dnrt_fail(err, DNRT_ERR_IO, "%s: write failed (%s); the previous file is unchanged", path, strerror(e));
    } else {
        sync_folder(path);
    }
    dnrt_free(tmp);
    return rc;
}

int dnrt_st_write(const char *path, int n, const dnrt_st_tensor *t, int nmeta, const char *const *keys,
                  const char *const *values, dnrt_error *err)
{
    if (!path || n < 0 || (n > 0 && !t) || nmeta < 0 || (nmeta > 0 && (!keys || !values)))
        return dnrt_fail(err, DNRT_ERR_ARG, "safetensors write: bad arguments");
    sbuf h = {0};
    int rc = build_header(path, &h, n, t, nmeta, keys, values, err);
    if (!rc) rc = write_file(path, &h, n, t, err);
    dnrt_free(h.p);
    return rc ? -1 : dnrt_ok(err);
}

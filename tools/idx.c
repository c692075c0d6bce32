/* idx.c -- IDX reader (see idx.h).  Reads gzip'd or raw files through zlib,
 * checks magic, dimensions and exact size, and returns uint8 arrays.  Only
 * regular files are read: a FIFO or a device is refused, never waited on. */
#define _GNU_SOURCE
#include "idx.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_DIM      100000u
#define IDX_MAX_BYTES    ((size_t)1 << 34)

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Opens 'path' for zlib without waiting on it (a FIFO without a writer
 * would block a plain open) and only when it is a regular file; NULL with
 * 'err' set otherwise. */
static gzFile open_regular(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        fail(err, errlen, "%s: cannot open: not a regular file", path);
    } else {
        gzFile g = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0 ? gzdopen(fd, "rb") : NULL;
        if (g) return g; /* it owns 'fd' now */
        fail(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    }
    if (fd >= 0) close(fd);
    return NULL;
}

/* After a short read of 'g': 1 with 'err' set when it was an error (an
 * I/O error, damaged gzip data), 0 at the end of the data (a gzip stream
 * cut short: Z_BUF_ERROR), whose truncation the caller reports. */
static int read_error(gzFile g, const char *path, char *err, size_t errlen)
{
    int code;
    const char *msg = gzerror(g, &code);
    if (code == Z_OK || code == Z_BUF_ERROR) return 0;
    if (code == Z_ERRNO)
        fail(err, errlen, "%s: cannot read: %s", path, strerror(errno));
    else
        fail(err, errlen, "%s: damaged gzip data: %s", path, msg);
    return 1;
}

/* Reads exactly 'len' bytes; returns the count actually read (short at the
 * end of the data or on an error, see read_error). */
static size_t read_full(gzFile g, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        unsigned chunk = len - got > (1u << 30) ? (1u << 30) : (unsigned)(len - got);
        int r = gzread(g, (uint8_t *)buf + got, chunk);
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Reads up to 'total' bytes into a malloc'd buffer that grows with what
 * actually arrives (from 16 MiB, doubling), so a header that declares more
 * than the file holds costs memory for the file, not for the header's
 * claim.  Returns the buffer (NULL when out of memory) and the count read
 * in *got (short at the end of the data or on an error, see read_error). */
static uint8_t *read_data(gzFile g, size_t total, size_t *got)
{
    size_t cap = total < ((size_t)1 << 24) ? total : (size_t)1 << 24;
    uint8_t *buf = malloc(cap ? cap : 1);
    *got = 0;
    while (buf) {
        size_t r = read_full(g, buf + *got, cap - *got);
        *got += r;
        if (*got < cap || cap == total) break;
        size_t next = cap > total / 2 ? total : cap * 2;
        uint8_t *more = realloc(buf, next);
        if (!more) free(buf);
        buf = more, cap = next;
    }
    return buf;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one IDX file of 'rank' dims with 'magic' into a malloc'd buffer;
 * dims[] receives the dimensions.  Returns the data or NULL with 'err' set. */
static uint8_t *read_idx(const char *path, uint32_t magic, int rank, uint32_t *dims, char *err, size_t errlen)
{
    gzFile g = open_regular(path, err, errlen);
    if (!g) return NULL;
    uint8_t head[16];
    size_t hlen = 4 + 4 * (size_t)rank;
    size_t got = read_full(g, head, hlen);
    uint8_t *data = NULL;
    if (got < hlen && read_error(g, path, err, errlen)) {
        /* reported */
    } else if (got < 4) {
        fail(err, errlen, "%s: truncated: %zu bytes, no IDX header", path, got);
    } else if (be32(head) != magic) {
        fail(err, errlen, "%s: wrong magic 0x%08x, expected 0x%08x (%s)", path, be32(head), magic,
             magic == IDX_MAGIC_IMAGES ? "uint8 images, 3 dims" : "uint8 labels, 1 dim");
    } else if (got < hlen) {
        fail(err, errlen, "%s: truncated header (%zu of %zu bytes)", path, got, hlen);
    } else {
        size_t total = 1;
        int bad = 0, huge = 0;
        for (int i = 0; i < rank; i++) {
            dims[i] = be32(head + 4 + 4 * i);
            if (dims[i] == 0 || (i > 0 && dims[i] > IDX_MAX_DIM))
                bad = 1;
            else if (total > IDX_MAX_BYTES / dims[i]) /* tested before the product, which must not wrap around */
                huge = 1;
            else
                total *= dims[i];
        }
        if (bad) {
            fail(err, errlen, "%s: inconsistent dimensions in the header", path);
        } else if (huge) {
            fail(err, errlen, "%s: the header's dimensions make more than %zu bytes", path, IDX_MAX_BYTES);
        } else if (!(data = read_data(g, total, &got))) {
            fail(err, errlen, "%s: out of memory for %zu bytes", path, total);
        } else if (got < total) {
            if (!read_error(g, path, err, errlen))
                fail(err, errlen, "%s: truncated: %zu of %zu data bytes (header says %u items)", path, got, total,
                     dims[0]);
            free(data);
            data = NULL;
        } else {
            uint8_t extra;
            if (read_full(g, &extra, 1) == 1) {
                fail(err, errlen, "%s: longer than its header's dimensions say (%zu data bytes)", path, total);
                free(data);
                data = NULL;
            }
        }
    }
    gzclose(g);
    return data;
}

int dn_idx_load(const char *images_path, const char *labels_path, int64_t limit, DnIdxSet *set, char *err,
                size_t errlen)
{
    memset(set, 0, sizeof *set);
    uint32_t idims[3], ldims[1];
    uint8_t *images = read_idx(images_path, IDX_MAGIC_IMAGES, 3, idims, err, errlen);
    if (!images) return -1;
    uint8_t *labels = read_idx(labels_path, IDX_MAGIC_LABELS, 1, ldims, err, errlen);
    if (!labels) {
        free(images);
        return -1;
    }
    if (idims[0] != ldims[0]) {
        free(images);
        free(labels);
        return fail(err, errlen, "%s holds %u images but %s holds %u labels", images_path, idims[0], labels_path,
                    ldims[0]);
    }
    set->count = idims[0];
    if (limit > 0 && limit < set->count) set->count = limit;
    set->rows = (int32_t)idims[1];
    set->cols = (int32_t)idims[2];
    set->images = images;
    set->labels = labels;
    return 0;
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

void dn_idx_paths(const char *dir, int train, char *images_path, char *labels_path, size_t len)
{
    const char *split = train ? "train" : "t10k";
    char raw[4096];
    snprintf(images_path, len, "%s/%s-images-idx3-ubyte.gz", dir, split);
    snprintf(raw, sizeof raw, "%s/%s-images-idx3-ubyte", dir, split);
    if (!exists(images_path) && exists(raw)) snprintf(images_path, len, "%s", raw);
    snprintf(labels_path, len, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    snprintf(raw, sizeof raw, "%s/%s-labels-idx1-ubyte", dir, split);
    if (!exists(labels_path) && exists(raw)) snprintf(labels_path, len, "%s", raw);
}

void dn_idx_free(DnIdxSet *set)
{
    free(set->images);
    free(set->labels);
    memset(set, 0, sizeof *set);
}

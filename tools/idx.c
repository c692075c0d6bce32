/* idx.c -- IDX reader (see idx.h).  Reads gzip'd or raw files through zlib,
 * checks magic, dimensions and exact size, and returns uint8 arrays. */
#include "idx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_DIM      100000u

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (err && errlen) vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* Reads exactly 'len' bytes; returns the count actually read (short on EOF). */
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

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Reads one IDX file of 'rank' dims with 'magic' into a malloc'd buffer;
 * dims[] receives the dimensions.  Returns the data or NULL with 'err' set. */
static uint8_t *read_idx(const char *path, uint32_t magic, int rank, uint32_t *dims, char *err, size_t errlen)
{
    gzFile g = gzopen(path, "rb");
    if (!g) {
        fail(err, errlen, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
        return NULL;
    }
    uint8_t head[16];
    size_t hlen = 4 + 4 * (size_t)rank;
    size_t got = read_full(g, head, hlen);
    uint8_t *data = NULL;
    if (got < 4) {
        fail(err, errlen, "%s: truncated: %zu bytes, no IDX header", path, got);
    } else if (be32(head) != magic) {
        fail(err, errlen, "%s: wrong magic 0x%08x, expected 0x%08x (%s)", path, be32(head), magic,
             magic == IDX_MAGIC_IMAGES ? "uint8 images, 3 dims" : "uint8 labels, 1 dim");
    } else if (got < hlen) {
        fail(err, errlen, "%s: truncated header (%zu of %zu bytes)", path, got, hlen);
    } else {
        size_t total = 1;
        int bad = 0;
        for (int i = 0; i < rank; i++) {
            dims[i] = be32(head + 4 + 4 * i);
            if (dims[i] == 0 || (i > 0 && dims[i] > IDX_MAX_DIM)) bad = 1;
            total *= dims[i];
        }
        if (bad || total > ((size_t)1 << 34)) {
            fail(err, errlen, "%s: inconsistent dimensions in the header", path);
        } else if (!(data = malloc(total))) {
            fail(err, errlen, "%s: out of memory for %zu bytes", path, total);
        } else if ((got = read_full(g, data, total)) < total) {
            fail(err, errlen, "%s: truncated: %zu of %zu data bytes (header says %u items)", path, got, total, dims[0]);
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

/* st_read.c -- reading a safetensors file (dnrt_st_read) and looking into
 * it.  The whole file is read into memory; the header is parsed in place
 * (json.c) and every entry checked: known dtype, shape, offsets inside the
 * data section, byte count = elements * dtype size, no two tensors
 * overlapping, no duplicate names.  Nothing is trusted before it is checked.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "internal.h"
#include "json.h"
#include "safetensors.h"
#include "st_dtype.h"

#define MAX_HEADER 100000000 /* the format's own limit (100 MB) */

/* Reads all of 'path' into f->image / f->size. */
static int read_image(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    FILE *fp = dnrt_fault_io_now() ? (errno = EIO, NULL) : fopen(path, "rb");
    if (!fp) return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot read: not a regular file", path);
    }
    long long size = (long long)st.st_size;
    f->image = dnrt_malloc((size_t)size + 1);
    if (!f->image) {
        fclose(fp);
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for %lld bytes", path, size);
    }
    f->size = (size_t)size;
    size_t got = dnrt_fault_io_now() ? 0 : fread(f->image, 1, f->size, fp);
    fclose(fp);
    if (got != f->size) return dnrt_fail(err, DNRT_ERR_IO, "%s: read error", path);
    return 0;
}

/* Parsing state: the JSON cursor, the file being filled, and the raw
 * data_offsets of each entry (checked once the header is parsed). */
typedef struct reader {
    dnrt_json j;
    dnrt_st_file *f;
    int cap; /* capacity of f->tensors and off */
    int64_t (*off)[2];
} reader;

/* Appends one zeroed entry to f->tensors (and its offsets slot). */
static dnrt_st_tensor *new_tensor(reader *r)
{
    dnrt_st_file *f = r->f;
    if (f->ntensors == r->cap) {
        int ncap = r->cap ? r->cap * 2 : 16;
        dnrt_st_tensor *t = dnrt_realloc(f->tensors, sizeof *t * (size_t)ncap);
        if (t) f->tensors = t;
        int64_t(*off)[2] = t ? dnrt_realloc(r->off, sizeof *off * (size_t)ncap) : NULL;
        if (!off) return NULL;
        r->off = off;
        r->cap = ncap;
    }
    dnrt_st_tensor *t = &f->tensors[f->ntensors++];
    memset(t, 0, sizeof *t);
    return t;
}

/* Grows the metadata arrays to hold one more pair; 0 or -1. */
static int grow_meta(reader *r, int *cap)
{
    dnrt_st_file *f = r->f;
    if (f->nmeta < *cap) return 0;
    int ncap = *cap ? *cap * 2 : 8;
    const char **k = dnrt_realloc(f->meta_keys, sizeof *k * (size_t)ncap);
    if (k) f->meta_keys = k;
    const char **v = k ? dnrt_realloc(f->meta_values, sizeof *v * (size_t)ncap) : NULL;
    if (!v) return dnrt_fail(r->j.err, DNRT_ERR_NOMEM, "%s: out of memory", r->j.path);
    f->meta_values = v;
    *cap = ncap;
    return 0;
}

/* "__metadata__": { "key": "value", ... } */
static int parse_meta(reader *r, int *seen)
{
    dnrt_json *j = &r->j;
    if (*seen) return dnrt_json_fail(j, "duplicate \"__metadata__\"");
    *seen = 1;
    int cap = 0;
    if (dnrt_json_expect(j, '{')) return -1;
    if (dnrt_json_accept(j, '}')) return 0;
    do {
        char *k, *v;
        if (grow_meta(r, &cap) || dnrt_json_string(j, &k) || dnrt_json_expect(j, ':')) return -1;
        if (dnrt_json_peek(j) != '"') return dnrt_json_fail(j, "metadata values must be strings");
        if (dnrt_json_string(j, &v)) return -1;
        r->f->meta_keys[r->f->nmeta] = k;
        r->f->meta_values[r->f->nmeta++] = v;
    } while (dnrt_json_accept(j, ','));
    return dnrt_json_expect(j, '}');
}

/* One field of a tensor entry: "dtype", "shape" or "data_offsets". */
static int parse_field(dnrt_json *j, dnrt_st_tensor *t, int64_t off[2], unsigned *seen)
{
    char *key;
    if (dnrt_json_string(j, &key) || dnrt_json_expect(j, ':')) return -1;
    unsigned bit = strcmp(key, "dtype") == 0          ? 1
                   : strcmp(key, "shape") == 0        ? 2
                   : strcmp(key, "data_offsets") == 0 ? 4
                                                      : 0;
    if (!bit || (*seen & bit)) {
        char msg[160];
        snprintf(msg, sizeof msg, "tensor '%.60s': %s field '%.40s'", t->name, bit ? "duplicate" : "unknown", key);
        return dnrt_json_fail(j, msg);
    }
    *seen |= bit;
    int n;
    if (bit == 1) {
        char *name;
        if (dnrt_json_string(j, &name)) return -1;
        t->dtype_name = name;
        return 0;
    }
    if (bit == 2) {
        if (dnrt_json_int_array(j, t->dim, DNRT_ST_MAX_RANK, &n)) return -1;
        t->rank = n;
        return 0;
    }
    if (dnrt_json_int_array(j, off, 2, &n)) return -1;
    return n == 2 ? 0 : dnrt_json_fail(j, "data_offsets needs 2 integers");
}

/* "name": {"dtype": ..., "shape": [...], "data_offsets": [b, e]} */
static int parse_tensor(reader *r, char *name)
{
    dnrt_json *j = &r->j;
    dnrt_st_tensor *t = new_tensor(r);
    if (!t) return dnrt_fail(j->err, DNRT_ERR_NOMEM, "%s: out of memory", j->path);
    t->name = name;
    int64_t *off = r->off[r->f->ntensors - 1];
    unsigned seen = 0;
    if (dnrt_json_expect(j, '{')) return -1;
    if (!dnrt_json_accept(j, '}')) {
        do {
            if (parse_field(j, t, off, &seen)) return -1;
        } while (dnrt_json_accept(j, ','));
        if (dnrt_json_expect(j, '}')) return -1;
    }
    if (seen != 7)
        return dnrt_fail(j->err, DNRT_ERR_FORMAT, "%s: tensor '%s': missing \"%s\"", j->path, name,
                         !(seen & 1)   ? "dtype"
                         : !(seen & 2) ? "shape"
                                       : "data_offsets");
    return 0;
}

/* The header object: entries and "__metadata__", then only padding. */
static int parse_header(reader *r)
{
    dnrt_json *j = &r->j;
    int meta_seen = 0;
    if (dnrt_json_expect(j, '{')) return -1;
    if (!dnrt_json_accept(j, '}')) {
        do {
            char *key;
            if (dnrt_json_string(j, &key) || dnrt_json_expect(j, ':')) return -1;
            if (strcmp(key, "__metadata__") == 0 ? parse_meta(r, &meta_seen) : parse_tensor(r, key)) return -1;
        } while (dnrt_json_accept(j, ','));
        if (dnrt_json_expect(j, '}')) return -1;
    }
    if (dnrt_json_peek(j) != 0) return dnrt_json_fail(j, "unexpected text after the header object");
    return 0;
}

/* Checks entry 'i' against the data section [data, data + dsize). */
static int check_tensor(reader *r, int i, uint8_t *data, int64_t dsize)
{
    dnrt_st_tensor *t = &r->f->tensors[i];
    const char *path = r->j.path;
    int64_t b = r->off[i][0], e = r->off[i][1];
    int size = dnrt_st_dtype_size(t->dtype_name, &t->dtype);
    if (size == 0)
        return dnrt_fail(r->j.err, DNRT_ERR_FORMAT, "%s: tensor '%s': unknown dtype '%s'", path, t->name,
                         t->dtype_name);
    int64_t numel = dnrt_numel(t->rank, t->dim);
    char ty[200];
    dnrt_type_str(t->dtype_name, t->rank, t->dim, ty, sizeof ty);
    if (numel < 0 || numel > INT64_MAX / size)
        return dnrt_fail(r->j.err, DNRT_ERR_FORMAT, "%s: tensor '%s': bad shape %s", path, t->name, ty);
    if (b < 0 || e < b || e > dsize)
        return dnrt_fail(r->j.err, DNRT_ERR_FORMAT,
                         "%s: tensor '%s': data_offsets [%lld, %lld] outside the data section (%lld bytes)", path,
                         t->name, (long long)b, (long long)e, (long long)dsize);
    if (e - b != numel * size)
        return dnrt_fail(r->j.err, DNRT_ERR_FORMAT, "%s: tensor '%s': %s needs %lld bytes, data_offsets give %lld",
                         path, t->name, ty, (long long)(numel * size), (long long)(e - b));
    t->data = data + b;
    t->nbytes = (size_t)(e - b);
    for (int k = 0; k < i; k++)
        if (strcmp(r->f->tensors[k].name, t->name) == 0)
            return dnrt_fail(r->j.err, DNRT_ERR_FORMAT, "%s: tensor '%s' appears twice", path, t->name);
    return 0;
}

typedef struct span {
    int64_t b, e;
    int index;
} span;

static int by_start(const void *x, const void *y)
{
    const span *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b ? 1 : (a->e > b->e) - (a->e < b->e);
}

/* No two non-empty tensors may share bytes. */
static int check_overlaps(reader *r)
{
    int n = r->f->ntensors;
    span *s = dnrt_malloc(sizeof *s * (size_t)(n ? n : 1));
    if (!s) return dnrt_fail(r->j.err, DNRT_ERR_NOMEM, "%s: out of memory", r->j.path);
    for (int i = 0; i < n; i++) s[i] = (span){r->off[i][0], r->off[i][1], i};
    qsort(s, (size_t)n, sizeof *s, by_start);
    int rc = 0;
    for (int i = 1, last = 0; i < n && !rc; i++) {
        if (s[i].b == s[i].e) continue;
        if (s[last].e > s[i].b && s[last].b != s[last].e)
            rc = dnrt_fail(r->j.err, DNRT_ERR_FORMAT, "%s: tensors '%s' and '%s' overlap", r->j.path,
                           r->f->tensors[s[last].index].name, r->f->tensors[s[i].index].name);
        last = i;
    }
    dnrt_free(s);
    return rc;
}

/* Parses and checks the header of the image in f. */
static int parse_image(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    if (f->size < 8)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: file too short (%zu bytes) for a safetensors header", path,
                         f->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->image[i];
    if (hlen < 2 || hlen > MAX_HEADER || hlen > f->size - 8)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: header length %llu is impossible for a %zu-byte file", path,
                         (unsigned long long)hlen, f->size);
    char *h = (char *)f->image + 8;
    reader r = {.j = {.p = h, .end = h + hlen, .base = h, .base_pos = 8, .path = path, .err = err}, .f = f};
    int rc = parse_header(&r);
    uint8_t *data = f->image + 8 + hlen;
    for (int i = 0; i < f->ntensors && !rc; i++) rc = check_tensor(&r, i, data, (int64_t)(f->size - 8 - hlen));
    if (!rc) rc = check_overlaps(&r);
    dnrt_free(r.off);
    return rc;
}

int dnrt_st_read(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    memset(f, 0, sizeof *f);
    if (!path) {
        return dnrt_fail(err, DNRT_ERR_ARG, "safetensors: path is NULL");
    }
    if (read_image(path, f, err) || parse_image(path, f, err)) {
        dnrt_st_free(f);
        return -1;
    }
    return dnrt_ok(err);
}

void dnrt_st_free(dnrt_st_file *f)
{
    dnrt_free(f->image);
    dnrt_free(f->tensors);
    dnrt_free(f->meta_keys);
    dnrt_free(f->meta_values);
    memset(f, 0, sizeof *f);
}

const dnrt_st_tensor *dnrt_st_find(const dnrt_st_file *f, const char *name)
{
    for (int32_t i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *dnrt_st_meta(const dnrt_st_file *f, const char *key)
{
    for (int32_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

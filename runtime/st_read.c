/* st_read.c -- reading a safetensors file: dnrt_st_open reads and checks
 * the 8-byte length and the header, dnrt_st_read_data one tensor's bytes,
 * dnrt_st_read every tensor's; dnrt_st_find and dnrt_st_meta look inside.
 *
 * Nothing is trusted before it is checked, and nothing is read before what
 * it depends on is checked: the file must be a regular file (opened without
 * blocking, so a FIFO cannot hang the reader); the header length must be
 * within DNRT_ST_MAX_HEADER and the file, the entry count within
 * DNRT_ST_MAX_ENTRIES; then every entry: known dtype, shape, offsets
 * inside the data section of the real file, byte count = elements * dtype
 * size, no two tensors overlapping, no duplicate names (a hash index,
 * names.h) or metadata keys.  The header is parsed in place (json.c).
 * Memory is the header plus the bytes of the tensors read, never the rest
 * of the file.  Names in messages are cut at 120 bytes, so that what is
 * wrong always fits in dnrt_error.message.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "json.h"
#include "safetensors.h"
#include "st_dtype.h"

/* What a file that is not a regular one is, for the message. */
static const char *file_kind(mode_t m)
{
    return S_ISDIR(m)    ? "a directory"
           : S_ISFIFO(m) ? "a FIFO"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
           : S_ISSOCK(m) ? "a socket"
                         : "not a plain file";
}

/* Opens 'path' read-only without blocking (a FIFO without a writer would
 * block open, one with a writer every read), refuses anything but a
 * regular file, then turns blocking back on; fills f->fd and f->size. */
static int open_regular(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    int fd = dnrt_fault_io_now() ? (errno = EIO, -1) : open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int fl;
    if (fstat(fd, &st) != 0 ||
        (S_ISREG(st.st_mode) && ((fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0))) {
        int e = errno;
        close(fd);
        return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot read: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dnrt_fail(err, DNRT_ERR_IO, "%s: cannot read: %s, not a regular file", path, file_kind(st.st_mode));
    }
    f->fd = fd;
    f->fd_open = 1;
    f->size = (size_t)st.st_size;
    return 0;
}

/* Reads 'n' bytes at file offset 'at' into 'dst'; 'what' names them for
 * the message ("the header", "tensor 'w'"). */
static int read_at(dnrt_st_file *f, uint64_t at, void *dst, size_t n, const char *what, dnrt_error *err)
{
    uint8_t *p = dst;
    while (n > 0) {
        ssize_t got = dnrt_fault_io_now() ? (errno = EIO, -1) : pread(f->fd, p, n, (off_t)at);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return dnrt_fail(err, DNRT_ERR_IO, "%s: read error in %s: %s", f->path, what, strerror(errno));
        if (got == 0)
            return dnrt_fail(err, DNRT_ERR_IO,
                             "%s: the file ends at byte %llu, inside %s (was it truncated while being read?)", f->path,
                             (unsigned long long)at, what);
        p += got, at += (uint64_t)got, n -= (size_t)got;
    }
    return 0;
}

/* Parsing state: the JSON cursor, the file being filled, the capacity of
 * f->tensors. */
typedef struct reader {
    dnrt_json j;
    dnrt_st_file *f;
    int cap;
} reader;

/* Appends one zeroed entry to f->tensors, at most DNRT_ST_MAX_ENTRIES. */
static dnrt_st_tensor *new_tensor(reader *r)
{
    dnrt_st_file *f = r->f;
    if (f->ntensors == DNRT_ST_MAX_ENTRIES) {
        char msg[80];
        snprintf(msg, sizeof msg, "more than %d tensors (the limit, DNRT_ST_MAX_ENTRIES)", DNRT_ST_MAX_ENTRIES);
        dnrt_json_fail(&r->j, msg);
        return NULL;
    }
    if (f->ntensors == r->cap) {
        int ncap = r->cap ? r->cap * 2 : 16;
        dnrt_st_tensor *t = dnrt_realloc(f->tensors, sizeof *t * (size_t)ncap);
        if (!t) {
            dnrt_fail(r->j.err, DNRT_ERR_NOMEM, "%s: out of memory", r->j.path);
            return NULL;
        }
        f->tensors = t;
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
    if (f->nmeta == DNRT_ST_MAX_ENTRIES) {
        char msg[96];
        snprintf(msg, sizeof msg, "more than %d metadata pairs (the limit, DNRT_ST_MAX_ENTRIES)", DNRT_ST_MAX_ENTRIES);
        return dnrt_json_fail(&r->j, msg);
    }
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

/* The value of one field, with "tensor 'w': shape" as the context of any
 * error inside it. */
static int parse_value(dnrt_json *j, dnrt_st_tensor *t, unsigned bit, const char *key)
{
    j->ctx_tensor = t->name;
    j->ctx_field = key;
    int n = 0, rc;
    if (bit == 1) {
        char *name;
        rc = dnrt_json_string(j, &name);
        t->dtype_name = name;
    } else if (bit == 2) {
        rc = dnrt_json_int_array(j, t->dim, DNRT_ST_MAX_RANK, &n);
        t->rank = n;
    } else {
        rc = dnrt_json_int_array(j, t->data_offsets, 2, &n);
    }
    j->ctx_tensor = NULL;
    if (!rc && bit == 4 && n != 2) {
        char msg[192];
        snprintf(msg, sizeof msg, "tensor '%.120s': data_offsets needs 2 integers", t->name);
        rc = dnrt_json_fail(j, msg);
    }
    return rc;
}

/* One field of a tensor entry: "dtype", "shape" or "data_offsets". */
static int parse_field(dnrt_json *j, dnrt_st_tensor *t, unsigned *seen)
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
    return parse_value(j, t, bit, key);
}

/* "name": {"dtype": ..., "shape": [...], "data_offsets": [b, e]} */
static int parse_tensor(reader *r, char *name)
{
    dnrt_json *j = &r->j;
    dnrt_st_tensor *t = new_tensor(r);
    if (!t) return -1;
    t->name = name;
    unsigned seen = 0;
    if (dnrt_json_expect(j, '{')) return -1;
    if (!dnrt_json_accept(j, '}')) {
        do {
            if (parse_field(j, t, &seen)) return -1;
        } while (dnrt_json_accept(j, ','));
        if (dnrt_json_expect(j, '}')) return -1;
    }
    if (seen != 7)
        return dnrt_fail(j->err, DNRT_ERR_FORMAT, "%s: tensor '%.120s': missing \"%s\"", j->path, name,
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

/* Why shape 'dim' of 'size'-byte elements is impossible, or NULL. */
static const char *shape_problem(const dnrt_st_tensor *t, int size, char *buf, size_t len)
{
    for (int32_t k = 0; k < t->rank; k++)
        if (t->dim[k] < 0) {
            snprintf(buf, len, "dimension %d is negative", k);
            return buf;
        }
    int64_t numel = dnrt_numel(t->rank, t->dim);
    if (numel < 0 || numel > INT64_MAX / size) return "its byte count overflows 64 bits";
    return NULL;
}

/* Checks entry 'i' against a data section of 'dsize' bytes and against
 * the names before it (f->index). */
static int check_tensor(dnrt_st_file *f, int i, int64_t dsize, dnrt_error *err)
{
    dnrt_st_tensor *t = &f->tensors[i];
    const char *path = f->path;
    int64_t b = t->data_offsets[0], e = t->data_offsets[1];
    int size = dnrt_st_dtype_size(t->dtype_name, &t->dtype);
    if (size == 0)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensor '%.120s': unknown dtype '%.40s'", path, t->name,
                         t->dtype_name);
    char ty[200], why[40];
    const char *bad = shape_problem(t, size, why, sizeof why);
    if (bad)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensor '%.120s': bad shape %s: %s", path, t->name,
                         dnrt_type_str(t->dtype_name, t->rank, t->dim, ty, sizeof ty), bad);
    int64_t numel = dnrt_numel(t->rank, t->dim);
    if (b < 0 || e < b || e > dsize)
        return dnrt_fail(err, DNRT_ERR_FORMAT,
                         "%s: tensor '%.120s': data_offsets [%lld, %lld] outside the data section (%lld bytes)", path,
                         t->name, (long long)b, (long long)e, (long long)dsize);
    if (e - b != numel * size)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensor '%.120s': %s needs %lld bytes, data_offsets give %lld", path,
                         t->name, dnrt_type_str(t->dtype_name, t->rank, t->dim, ty, sizeof ty),
                         (long long)(numel * size), (long long)(e - b));
    t->nbytes = (size_t)(e - b);
    if (dnrt_names_put(&f->index, t->name, i) != -1)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensor '%.120s' appears twice", path, t->name);
    return 0;
}

typedef struct span {
    int64_t b, e;
    int index;
} span;

static int by_start(const void *x, const void *y)
{
    const span *a = x, *b = y;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    if (a->e != b->e) return a->e < b->e ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* The tensors' [begin, end) sorted by begin (then end, then index); NULL
 * when out of memory.  Release with dnrt_free. */
static span *sorted_spans(const dnrt_st_file *f)
{
    int n = f->ntensors;
    span *s = dnrt_malloc(sizeof *s * (size_t)(n ? n : 1));
    if (!s) return NULL;
    for (int i = 0; i < n; i++) s[i] = (span){f->tensors[i].data_offsets[0], f->tensors[i].data_offsets[1], i};
    qsort(s, (size_t)n, sizeof *s, by_start);
    return s;
}

/* No two non-empty tensors may share bytes. */
static int check_overlaps(const dnrt_st_file *f, dnrt_error *err)
{
    span *s = sorted_spans(f);
    if (!s) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", f->path);
    int rc = 0, last = -1;
    for (int i = 0; i < f->ntensors && !rc; i++) {
        if (s[i].b == s[i].e) continue;
        if (last >= 0 && s[last].e > s[i].b)
            rc = dnrt_fail(err, DNRT_ERR_FORMAT, "%s: tensors '%.120s' and '%.120s' overlap", f->path,
                           f->tensors[s[last].index].name, f->tensors[s[i].index].name);
        last = i;
    }
    dnrt_free(s);
    return rc;
}

/* No metadata key twice (the file would say two things at once). */
static int check_meta(const dnrt_st_file *f, dnrt_error *err)
{
    dnrt_names seen;
    if (dnrt_names_init(&seen, (size_t)f->nmeta)) return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", f->path);
    int rc = 0;
    for (int32_t i = 0; i < f->nmeta && !rc; i++)
        if (dnrt_names_put(&seen, f->meta_keys[i], i) != -1)
            rc = dnrt_fail(err, DNRT_ERR_FORMAT, "%s: metadata key '%.120s' appears twice", f->path, f->meta_keys[i]);
    dnrt_names_free(&seen);
    return rc;
}

/* Reads the 8-byte length and the header into f->image. */
static int read_header(dnrt_st_file *f, dnrt_error *err)
{
    const char *path = f->path;
    if (f->size < 8)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: file too short (%zu bytes) for a safetensors header", path,
                         f->size);
    uint8_t len[8];
    if (read_at(f, 0, len, 8, "the header length", err)) return -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | len[i];
    if (hlen > DNRT_ST_MAX_HEADER)
        return dnrt_fail(err, DNRT_ERR_FORMAT,
                         "%s: header length %llu is over the limit of %d bytes (DNRT_ST_MAX_HEADER)", path,
                         (unsigned long long)hlen, DNRT_ST_MAX_HEADER);
    if (hlen < 2 || hlen > f->size - 8)
        return dnrt_fail(err, DNRT_ERR_FORMAT, "%s: header length %llu is impossible for a %zu-byte file", path,
                         (unsigned long long)hlen, f->size);
    f->image = dnrt_malloc((size_t)hlen + 8);
    if (!f->image)
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for a %llu-byte header", path,
                         (unsigned long long)hlen);
    memcpy(f->image, len, 8);
    f->data_start = 8 + hlen;
    return read_at(f, 8, f->image + 8, (size_t)hlen, "the header", err);
}

/* Parses and checks the header in f->image. */
static int check_header(dnrt_st_file *f, dnrt_error *err)
{
    char *h = (char *)f->image + 8;
    reader r = {.j = {.p = h, .end = h + (f->data_start - 8), .base = h, .base_pos = 8, .path = f->path, .err = err},
                .f = f};
    if (parse_header(&r)) return -1;
    if (dnrt_names_init(&f->index, (size_t)f->ntensors))
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory", f->path);
    int64_t dsize = (int64_t)(f->size - f->data_start);
    for (int i = 0; i < f->ntensors; i++)
        if (check_tensor(f, i, dsize, err)) return -1;
    return check_overlaps(f, err) || check_meta(f, err) ? -1 : 0;
}

int dnrt_st_open(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path) return dnrt_fail(err, DNRT_ERR_ARG, "safetensors: path is NULL");
    f->path = path;
    if (open_regular(path, f, err) || read_header(f, err) || check_header(f, err)) {
        dnrt_st_free(f);
        return -1;
    }
    return dnrt_ok(err);
}

int dnrt_st_read_data(dnrt_st_file *f, const dnrt_st_tensor *t, void *dst, dnrt_error *err)
{
    if (t->nbytes == 0) return 0;
    if (!f->fd_open) return dnrt_fail(err, DNRT_ERR_ARG, "%s: the file is not open", f->path ? f->path : "?");
    char what[140];
    snprintf(what, sizeof what, "tensor '%.120s'", t->name);
    return read_at(f, f->data_start + (uint64_t)t->data_offsets[0], dst, t->nbytes, what, err);
}

/* Where each tensor goes in the image: offset[i] from the data section's
 * start, in file order ('s', from sorted_spans), congruent to its file
 * offset modulo 8 and never past it; returns the bytes needed. */
static int64_t place(const dnrt_st_file *f, const span *s, int64_t *offset)
{
    int64_t at = 0;
    for (int i = 0; i < f->ntensors; i++) {
        int64_t b = s[i].b, n = s[i].e - s[i].b;
        offset[s[i].index] = at;
        if (n == 0) continue;
        at += (b - at) % 8; /* at <= b: the tensors before it end by b */
        offset[s[i].index] = at;
        at += n;
    }
    return at;
}

/* 'p', which points into 'old', moved to the same place in 'img'. */
static const char *moved(const char *p, const uint8_t *old, uint8_t *img)
{
    return (const char *)img + ((const uint8_t *)p - old);
}

/* Moves the image to a block of 'extra' more bytes, with every name that
 * points into it (entries, metadata, the index). */
static int grow_image(dnrt_st_file *f, int64_t extra)
{
    uint8_t *old = f->image, *img = dnrt_malloc((size_t)(f->data_start + (uint64_t)extra));
    if (!img) return -1;
    memcpy(img, old, (size_t)f->data_start);
    for (int32_t i = 0; i < f->ntensors; i++) {
        f->tensors[i].name = moved(f->tensors[i].name, old, img);
        f->tensors[i].dtype_name = moved(f->tensors[i].dtype_name, old, img);
    }
    for (int32_t i = 0; i < f->nmeta; i++) {
        f->meta_keys[i] = moved(f->meta_keys[i], old, img);
        f->meta_values[i] = moved(f->meta_values[i], old, img);
    }
    for (size_t i = 0; f->index.key && i <= f->index.mask; i++)
        if (f->index.key[i]) f->index.key[i] = moved(f->index.key[i], old, img);
    dnrt_free(old);
    f->image = img;
    return 0;
}

/* Reads the tensors s[i..] that keep their distance to the file in the
 * image (no gap of 8 bytes or more between them) with one read; returns
 * the index after the last one read, or -1. */
static int read_run(dnrt_st_file *f, const span *s, int i, const int64_t *offset, dnrt_error *err)
{
    int64_t shift = s[i].b - offset[s[i].index];
    int j = i + 1, k = i; /* k: the last non-empty tensor of the run */
    for (; j < f->ntensors && (s[j].b == s[j].e || s[j].b - offset[s[j].index] == shift); j++)
        if (s[j].b != s[j].e) k = j;
    char what[300];
    const char *first = f->tensors[s[i].index].name, *last = f->tensors[s[k].index].name;
    if (k == i)
        snprintf(what, sizeof what, "tensor '%.120s'", first);
    else
        snprintf(what, sizeof what, "the tensors from '%.120s' to '%.120s'", first, last);
    int64_t end = s[k].e;
    uint8_t *dst = f->image + f->data_start + offset[s[i].index];
    return read_at(f, f->data_start + (uint64_t)s[i].b, dst, (size_t)(end - s[i].b), what, err) ? -1 : j;
}

/* Reads every tensor into the image (see dnrt_st_read). */
static int read_all(dnrt_st_file *f, dnrt_error *err)
{
    span *s = sorted_spans(f);
    int64_t *offset = s ? dnrt_malloc(sizeof *offset * (size_t)(f->ntensors ? f->ntensors : 1)) : NULL;
    if (!offset || grow_image(f, place(f, s, offset))) {
        dnrt_free(s);
        dnrt_free(offset);
        return dnrt_fail(err, DNRT_ERR_NOMEM, "%s: out of memory for the tensors", f->path);
    }
    for (int32_t i = 0; i < f->ntensors; i++) f->tensors[i].data = f->image + f->data_start + offset[i];
    int i = 0;
    while (i >= 0 && i < f->ntensors) i = s[i].b == s[i].e ? i + 1 : read_run(f, s, i, offset, err);
    dnrt_free(s);
    dnrt_free(offset);
    return i < 0 ? -1 : 0;
}

int dnrt_st_read(const char *path, dnrt_st_file *f, dnrt_error *err)
{
    if (dnrt_st_open(path, f, err)) return -1;
    if (read_all(f, err)) {
        dnrt_st_free(f);
        return -1;
    }
    close(f->fd);
    f->fd_open = 0;
    f->fd = -1;
    f->path = NULL; /* the caller's string need not outlive this call */
    return dnrt_ok(err);
}

void dnrt_st_free(dnrt_st_file *f)
{
    if (f->fd_open) close(f->fd);
    dnrt_free(f->image);
    dnrt_free(f->tensors);
    dnrt_free(f->meta_keys);
    dnrt_free(f->meta_values);
    dnrt_names_free(&f->index);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

const dnrt_st_tensor *dnrt_st_find(const dnrt_st_file *f, const char *name)
{
    int32_t i = dnrt_names_get(&f->index, name);
    return i >= 0 ? &f->tensors[i] : NULL;
}

const char *dnrt_st_meta(const dnrt_st_file *f, const char *key)
{
    for (int32_t i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

/* safetensors.h -- reading and writing the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data).
 * Runtime-internal (hidden in generated libraries), also linked by tests and
 * tools through libdnnrt.a.  Every failure fills *err with a message naming
 * the file (and the tensor), never aborts. */
#ifndef DNRT_SAFETENSORS_H
#define DNRT_SAFETENSORS_H

#include <stddef.h>
#include "dnrt.h"

#define DNRT_ST_MAX_RANK 8

typedef struct dnrt_st_tensor {
    const char *name;
    int32_t dtype;          /* dnrt_dtype; -1 for a dtype dnnc does not use */
    const char *dtype_name; /* as in the file: "F32", "I32", "I64", ... */
    int32_t rank;
    int64_t dim[DNRT_ST_MAX_RANK];
    const void *data; /* read: points into the file image; write: caller's bytes */
    size_t nbytes;
} dnrt_st_tensor;

typedef struct dnrt_st_file {
    uint8_t *image; /* the whole file */
    size_t size;
    int32_t ntensors;
    dnrt_st_tensor *tensors; /* in file order */
    int32_t nmeta;
    const char **meta_keys, **meta_values; /* "__metadata__" string pairs */
} dnrt_st_file;

/* Reads and validates 'path' (header JSON, offsets inside the file, sizes
 * consistent with dtype and shape, no overlaps).  0 on success. */
int dnrt_st_read(const char *path, dnrt_st_file *f, dnrt_error *err);
void dnrt_st_free(dnrt_st_file *f);
const dnrt_st_tensor *dnrt_st_find(const dnrt_st_file *f, const char *name);
const char *dnrt_st_meta(const dnrt_st_file *f, const char *key);
/* Writes 'n' tensors and 'nmeta' metadata pairs to 'path' atomically
 * (temporary file in the same folder, fsync, rename): an interrupted or
 * failed write leaves any previous file intact.  0 on success. */
int dnrt_st_write(const char *path, int n, const dnrt_st_tensor *t, int nmeta, const char *const *keys,
                  const char *const *values, dnrt_error *err);

#endif

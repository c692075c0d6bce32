/* safetensors.h -- reading and writing the safetensors format
 * (8-byte little-endian header length, JSON header, raw little-endian data).
 * Runtime-internal (hidden in generated libraries), also linked by tests and
 * tools through libdnnrt.a.  Every failure fills *err with a message naming
 * the file (and the tensor), never aborts.  The limits the reader enforces
 * (DNRT_ST_MAX_HEADER, DNRT_ST_MAX_ENTRIES) and the names of the writer's
 * temporary files are in dnrt.h, "weights files". */
#ifndef DNRT_SAFETENSORS_H
#define DNRT_SAFETENSORS_H

#include <stddef.h>
#include "dnrt.h"
#include "names.h"

#define DNRT_ST_MAX_RANK 8

typedef struct dnrt_st_tensor {
    const char *name;
    int32_t dtype;          /* dnrt_dtype; -1 for a dtype dnnc does not use */
    const char *dtype_name; /* as in the file: "F32", "I32", "I64", ... */
    int32_t rank;
    int64_t dim[DNRT_ST_MAX_RANK];
    const void *data; /* read: its bytes in the image (NULL after dnrt_st_open); write: caller's bytes */
    size_t nbytes;
    int64_t data_offsets[2]; /* read: [begin, end) in the data section, as in the header */
} dnrt_st_tensor;

typedef struct dnrt_st_file {
    uint8_t *image;      /* the 8-byte length and the header (names point into it); after
                            dnrt_st_read, then every tensor's bytes (see there) */
    size_t size;         /* of the file */
    uint64_t data_start; /* file offset of the data section: 8 + the header length */
    int32_t ntensors;
    dnrt_st_tensor *tensors; /* in file order */
    int32_t nmeta;
    const char **meta_keys, **meta_values; /* "__metadata__" string pairs */
    dnrt_names index;                      /* tensor name -> index in 'tensors' */
    const char *path;                      /* dnrt_st_open: the caller's, for messages */
    int fd, fd_open;                       /* dnrt_st_open: the file, open while 'fd_open' */
} dnrt_st_file;

/* Opens 'path', which must be a regular file (a FIFO, device or folder is
 * refused without blocking), and reads and validates its 8-byte length and
 * header only: the limits of dnrt.h, the header JSON, known dtypes, offsets
 * inside the data section of the file as it is on disk, sizes consistent
 * with dtype and shape, no overlaps, no duplicate names or metadata keys.
 * The tensors' 'data' stay NULL; read them with dnrt_st_read_data.  'path'
 * must outlive 'f'.  0 on success; on failure 'f' holds nothing. */
int dnrt_st_open(const char *path, dnrt_st_file *f, dnrt_error *err);
/* Reads the 'nbytes' bytes of tensor 't' of the open file 'f' into 'dst';
 * 0, or -1 (DNRT_ERR_IO) when reading fails or the file has become shorter
 * than its header says. */
int dnrt_st_read_data(dnrt_st_file *f, const dnrt_st_tensor *t, void *dst, dnrt_error *err);
/* dnrt_st_open, then every tensor's bytes into f->image after the header,
 * in file order, each at an offset no larger than in the file and with the
 * same alignment modulo 8 (so the image is the file itself up to the end of
 * its last tensor when the tensors leave no gaps, as writers do), and closes
 * the file: memory is the header plus the tensors, never gaps or trailing
 * bytes.  0 on success; on failure 'f' holds nothing (f->image is NULL). */
int dnrt_st_read(const char *path, dnrt_st_file *f, dnrt_error *err);
/* Closes and releases everything 'f' holds; accepts a zeroed or freed 'f'. */
void dnrt_st_free(dnrt_st_file *f);
const dnrt_st_tensor *dnrt_st_find(const dnrt_st_file *f, const char *name);
const char *dnrt_st_meta(const dnrt_st_file *f, const char *key);
/* Writes 'n' tensors and 'nmeta' metadata pairs to 'path' atomically
 * (temporary file in the same folder, fsync, rename, fsync of the folder):
 * an interrupted or failed write leaves any previous file intact.  First
 * removes the temporary files of earlier saves to 'path' whose process is
 * gone (dnrt.h, "weights files").  0 on success. */
int dnrt_st_write(const char *path, int n, const dnrt_st_tensor *t, int nmeta, const char *const *keys,
                  const char *const *values, dnrt_error *err);
/* Writes into 'buf' the name prefix of the temporary files a save to 'path'
 * creates, folder included: "<folder>/.<name>.dnrt-tmp.<host>." (the pid
 * and a unique suffix follow).  Returns the length, or -1 if it does not
 * fit in 'len' bytes. */
int dnrt_st_temp_prefix(const char *path, char *buf, size_t len);

#endif

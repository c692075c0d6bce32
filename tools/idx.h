/* idx.h -- reading the IDX files of MNIST and Fashion-MNIST.
 *
 * An IDX file is a big-endian magic (0x00000803 for uint8 images [count, rows,
 * cols], 0x00000801 for uint8 labels [count]), the dimensions as big-endian
 * uint32, then the bytes.  Files may be gzip'd or raw (zlib reads both).
 * Used by dnnrun and examples/classify.c.  Every failure writes a message
 * naming the file into the caller's buffer; nothing here exits or aborts. */
#ifndef DN_IDX_H
#define DN_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct DnIdxSet {
    int64_t count; /* number of images (== number of labels) */
    int32_t rows, cols;
    uint8_t *images; /* count * rows * cols bytes, row-major; malloc'd */
    uint8_t *labels; /* count bytes; malloc'd */
} DnIdxSet;

/* Reads the images file 'images_path' and labels file 'labels_path' into
 * 'set' (owned by the caller, release with dn_idx_free).  'limit' > 0 keeps
 * only the first 'limit' examples (the files are still checked for size).
 * Returns 0, or -1 with a message naming the file in 'err' (at most
 * 'errlen' bytes): cannot open, not a regular file (a FIFO is refused, not
 * waited on), wrong magic, truncated or damaged (with zlib's words),
 * dimensions inconsistent or too large, or image and label counts differ. */
int dn_idx_load(const char *images_path, const char *labels_path, int64_t limit, DnIdxSet *set, char *err,
                size_t errlen);

/* Fills 'images_path' and 'labels_path' (each 'len' bytes) with the files of
 * a Fashion-MNIST split ('train' non-zero: train, else t10k) in folder
 * 'dir', preferring 'NAME.gz' and falling back to the raw 'NAME' when only that exists. */
void dn_idx_paths(const char *dir, int train, char *images_path, char *labels_path, size_t len);

/* Releases what dn_idx_load allocated; safe on a zeroed set. */
void dn_idx_free(DnIdxSet *set);

#endif

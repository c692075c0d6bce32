/* readfile.h -- a whole regular file into memory, for dnnrun's text and
 * pair readers.  A FIFO or a device is refused, never waited on. */
#ifndef DN_READFILE_H
#define DN_READFILE_H

#include <stddef.h>
#include <stdint.h>

/* Reads 'path' into a malloc'd buffer (*data, NUL-terminated, *len bytes
 * without the NUL).  Returns 0, or -1 with a message naming the file in
 * 'err': cannot open (with the system's words), not a regular file, read
 * error, out of memory. */
int dn_read_file(const char *path, uint8_t **data, int64_t *len, char *err, size_t errlen);

#endif

/* st_dtype.h -- the safetensors dtype names and sizes, shared by the
 * reader and the writer (st_read.c, st_write.c). */
#ifndef DNRT_ST_DTYPE_H
#define DNRT_ST_DTYPE_H

#include <stdint.h>

/* Element size of safetensors dtype 'name' (0 if unknown) and the matching
 * dnrt_dtype in '*dtype' (-1 for dtypes dnnc does not use). */
int dnrt_st_dtype_size(const char *name, int32_t *dtype);
/* "F32", "I32", "I64" for a dnrt_dtype; NULL otherwise. */
const char *dnrt_st_dtype_name(int32_t dtype);

#endif

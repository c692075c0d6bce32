/* st_dtype.c -- the dtype table of the safetensors format (sub-byte types
 * excluded). */
#include <string.h>

#include "dnrt.h"
#include "st_dtype.h"

static const struct {
    const char *name;
    int size;
    int32_t dtype;
} table[] = {
    {"F32", 4, DNRT_F32}, {"I32", 4, DNRT_I32}, {"I64", 8, DNRT_I64}, /* ORDER DN_DTYPE */
    {"F64", 8, -1},       {"F16", 2, -1},       {"BF16", 2, -1},      {"I16", 2, -1},
    {"I8", 1, -1},        {"U8", 1, -1},        {"U16", 2, -1},       {"U32", 4, -1},
    {"U64", 8, -1},       {"BOOL", 1, -1},      {"F8_E4M3", 1, -1},   {"F8_E5M2", 1, -1},
};

int dnrt_st_dtype_size(const char *name, int32_t *dtype)
{
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(table[i].name, name) == 0) {
            *dtype = table[i].dtype;
            return table[i].size;
        }
    *dtype = -1;
    return 0;
}

const char *dnrt_st_dtype_name(int32_t dtype) { return dtype >= 0 && dtype <= DNRT_I64 ? table[dtype].name : NULL; }

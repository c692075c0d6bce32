/* error.c -- filling dnrt_error, and the dtype and shape helpers every
 * message uses.  The runtime reports every failure through these: it never
 * prints, aborts or exits.
 */
#include <stdarg.h>
#include <stdio.h>

#include "internal.h"

int dnrt_fail(dnrt_error *err, int code, const char *fmt, ...)
{
    if (!err) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    err->code = code;
    return -1;
}

int dnrt_ok(dnrt_error *err)
{
    if (err) {
        err->code = DNRT_OK;
        err->message[0] = 0;
    }
    return 0;
}

const char *dnrt_num(float v, char *buf, size_t len)
{
    if (v != v)
        snprintf(buf, len, "nan");
    else
        snprintf(buf, len, "%g", (double)v);
    return buf;
}

/* ORDER DN_DTYPE */
static const int dtype_size[] = {4, 4, 8};
static const char *const dtype_name[] = {"f32", "i32", "i64"};

int dnrt_dtype_size(int32_t dtype) { return dtype >= 0 && dtype <= DNRT_I64 ? dtype_size[dtype] : 0; }

const char *dnrt_dtype_name(int32_t dtype) { return dtype >= 0 && dtype <= DNRT_I64 ? dtype_name[dtype] : "?"; }

char *dnrt_type_str(const char *dtype, int32_t rank, const int64_t *dim, char *buf, size_t len)
{
    size_t at = (size_t)snprintf(buf, len, "%s[", dtype);
    for (int32_t i = 0; i < rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)dim[i]);
    if (at < len) snprintf(buf + at, len - at, "]");
    return buf;
}

int64_t dnrt_numel(int32_t rank, const int64_t *dim)
{
    int64_t n = 1;
    for (int32_t i = 0; i < rank; i++) {
        if (dim[i] < 0 || (dim[i] > 0 && n > INT64_MAX / dim[i])) return -1;
        n *= dim[i];
    }
    return n;
}

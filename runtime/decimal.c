/* decimal.c -- strict decimal integers from files and the environment
 * (dnrt_decimal): the one place the runtime turns text into a number, so
 * that every such value is range-checked the same way (no strtol, whose
 * ERANGE, leading spaces, '+' and trailing text each need their own test).
 */
#include "internal.h"

int dnrt_decimal(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (!s) return DNRT_DEC_SYNTAX;
    int neg = *s == '-';
    const char *p = s + neg;
    if (*p < '0' || *p > '9') return DNRT_DEC_SYNTAX;
    uint64_t v = 0;
    int big = 0; /* more than 2^63 in magnitude */
    for (; *p >= '0' && *p <= '9'; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > ((UINT64_C(1) << 63) - d) / 10) big = 1;
        if (!big) v = v * 10 + d;
    }
    if (*p) return DNRT_DEC_SYNTAX;
    if (big || (!neg && v > (uint64_t)INT64_MAX)) return DNRT_DEC_RANGE;
    int64_t x = neg ? (v == UINT64_C(1) << 63 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    if (x < lo || x > hi) return DNRT_DEC_RANGE;
    *out = x;
    return 0;
}

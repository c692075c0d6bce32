/* json.c -- a strict, allocation-free JSON reader for the safetensors
 * header (see json.h).  Objects and arrays are walked by the caller with
 * peek/expect/accept; this file reads the leaves.
 */
#include "json.h"

#include <stdio.h>
#include <string.h>

int dnrt_json_fail(dnrt_json *j, const char *msg)
{
    long long at = j->base_pos + (long long)(j->p - j->base);
    if (j->ctx_tensor)
        return dnrt_fail(j->err, DNRT_ERR_FORMAT, "%s: header: tensor '%.120s': %s: %s at byte %lld", j->path,
                         j->ctx_tensor, j->ctx_field, msg, at);
    return dnrt_fail(j->err, DNRT_ERR_FORMAT, "%s: header: %s at byte %lld", j->path, msg, at);
}

int dnrt_json_peek(dnrt_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
    return j->p < j->end ? (unsigned char)*j->p : 0;
}

int dnrt_json_accept(dnrt_json *j, char c)
{
    if (dnrt_json_peek(j) != (unsigned char)c) return 0;
    j->p++;
    return 1;
}

int dnrt_json_expect(dnrt_json *j, char c)
{
    if (dnrt_json_accept(j, c)) return 0;
    char msg[40];
    snprintf(msg, sizeof msg, j->p < j->end ? "expected '%c'" : "expected '%c', found the end", c);
    return dnrt_json_fail(j, msg);
}

/* Four hex digits at j->p; -1 if malformed. */
static long hex4(const dnrt_json *j)
{
    if (j->end - j->p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes \uXXXX (and its low surrogate) at j->p (after the 'u') to UTF-8
 * at '*w'.  The output never overtakes the input. */
static int unicode_escape(dnrt_json *j, char **w)
{
    long cp = hex4(j);
    if (cp < 0) return dnrt_json_fail(j, "bad \\u escape");
    j->p += 4;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return dnrt_json_fail(j, "unpaired surrogate");
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u') return dnrt_json_fail(j, "unpaired surrogate");
        j->p += 2;
        long lo = hex4(j);
        if (lo < 0xDC00 || lo > 0xDFFF) return dnrt_json_fail(j, "unpaired surrogate");
        j->p += 4;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    char *o = *w;
    if (cp < 0x80) {
        *o++ = (char)cp;
    } else if (cp < 0x800) {
        *o++ = (char)(0xC0 | cp >> 6);
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char)(0xE0 | cp >> 12);
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (char)(0xF0 | cp >> 18);
        *o++ = (char)(0x80 | (cp >> 12 & 0x3F));
        *o++ = (char)(0x80 | (cp >> 6 & 0x3F));
        *o++ = (char)(0x80 | (cp & 0x3F));
    }
    *w = o;
    return 0;
}

/* One escape after the backslash; appends its bytes at '*w'. */
static int escape(dnrt_json *j, char **w)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (j->p >= j->end) return dnrt_json_fail(j, "unterminated string");
    char c = *j->p++;
    if (c == 'u') return unicode_escape(j, w);
    const char *k = c ? strchr(from, c) : NULL;
    if (!k) return dnrt_json_fail(j, "bad escape in string");
    *(*w)++ = to[k - from];
    return 0;
}

int dnrt_json_string(dnrt_json *j, char **out)
{
    if (dnrt_json_expect(j, '"')) return -1;
    char *w = j->p;
    *out = w;
    for (;;) {
        if (j->p >= j->end) return dnrt_json_fail(j, "unterminated string");
        char c = *j->p;
        if (c == '"') break;
        if ((unsigned char)c < 0x20) return dnrt_json_fail(j, "control character in string");
        j->p++;
        if (c != '\\')
            *w++ = c;
        else if (escape(j, &w))
            return -1;
    }
    j->p++; /* past the quote; w <= the quote's position */
    *w = 0;
    return 0;
}

int dnrt_json_int(dnrt_json *j, int64_t *out)
{
    int c = dnrt_json_peek(j);
    int neg = c == '-';
    if (neg) j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return dnrt_json_fail(j, "expected an integer");
    if (*j->p == '0' && j->end - j->p > 1 && j->p[1] >= '0' && j->p[1] <= '9')
        return dnrt_json_fail(j, "leading zero in number");
    uint64_t v = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (v > ((uint64_t)INT64_MAX - (uint64_t)(*j->p - '0')) / 10) return dnrt_json_fail(j, "integer too large");
        v = v * 10 + (uint64_t)(*j->p++ - '0');
    }
    if (j->p < j->end && (*j->p == '.' || *j->p == 'e' || *j->p == 'E'))
        return dnrt_json_fail(j, "expected an integer");
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int dnrt_json_int_array(dnrt_json *j, int64_t *v, int max, int *n)
{
    *n = 0;
    if (dnrt_json_expect(j, '[')) return -1;
    if (dnrt_json_accept(j, ']')) return 0;
    do {
        if (*n == max) return dnrt_json_fail(j, "too many elements in array");
        if (dnrt_json_int(j, &v[(*n)++])) return -1;
    } while (dnrt_json_accept(j, ','));
    return dnrt_json_expect(j, ']');
}

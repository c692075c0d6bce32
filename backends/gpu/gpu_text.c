/* gpu_text.c -- growable text buffers (DnText), the GPU backends' way of
 * writing kernel source.  Allocation failure is fatal (dn_die), as for
 * every compiler-side allocation. */
#include <stdio.h>
#include <stdlib.h>

#include "gpu_internal.h"

void dn_text_append(DnText *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 256;
        while (cap < t->len + n + 1) cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) dn_die(__FILE__, __LINE__, "out of memory for %zu bytes of kernel text", cap);
        t->s = p, t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = 0;
}

void dn_text_vprintf(DnText *t, const char *fmt, va_list ap)
{
    char small[512];
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(small, sizeof small, fmt, cp);
    va_end(cp);
    if (n < 0) dn_die(__FILE__, __LINE__, "bad format '%s'", fmt);
    if ((size_t)n < sizeof small) {
        dn_text_append(t, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) dn_die(__FILE__, __LINE__, "out of memory");
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    dn_text_append(t, big, (size_t)n);
    free(big);
}

void dn_text_printf(DnText *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    dn_text_vprintf(t, fmt, ap);
    va_end(ap);
}

void dn_text_free(DnText *t)
{
    free(t->s);
    *t = (DnText){0};
}

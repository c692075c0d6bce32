/* arena.c -- bump allocation whose lifetime is the work it serves.
 * A graph, a compilation context and each pass's scratch space own one
 * arena; nothing inside is freed individually. */
#include "support.h"

#include <stdlib.h>

struct DnArenaBlock {
    DnArenaBlock *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { BLOCK_MIN = 64 * 1024 };

void *dn_arena_alloc(DnArena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    DnArenaBlock *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > BLOCK_MIN ? size : BLOCK_MIN;
        b = malloc(sizeof *b + cap);
        if (!b) dn_die(__FILE__, __LINE__, "out of memory (%zu bytes)", cap);
        b->next = a->head;
        b->used = 0;
        b->cap = cap;
        a->head = b;
    }
    void *p = b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *dn_arena_strndup(DnArena *a, const char *s, size_t n)
{
    char *d = dn_arena_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *dn_arena_strdup(DnArena *a, const char *s) { return dn_arena_strndup(a, s, strlen(s)); }

char *dn_arena_printf(DnArena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *d = dn_arena_alloc(a, (size_t)n + 1);
    vsnprintf(d, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return d;
}

void dn_arena_free(DnArena *a)
{
    for (DnArenaBlock *b = a->head, *next; b; b = next) {
        next = b->next;
        free(b);
    }
    a->head = NULL;
}

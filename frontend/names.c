/* names.c -- a string-keyed hash map in an arena, for the frontend's name
 * lookups (variables in a scope, labels, declarations, parameter names,
 * automatic-name counters), so that lowering stays linear in the number of
 * names a source defines.  Open addressing with linear probing, FNV-1a,
 * at most half full; on growth the old table is left to the arena (the
 * tables of one map sum to less than twice the last one).
 */
#include "ast.h"

static uint64_t hash(const char *s)
{
    uint64_t h = 14695981039346656037u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The slot of 'key' in 'm' (m->cap > 0): where it is, or the empty slot
 * where it would go. */
static int slot(const NameMap *m, const char *key)
{
    int mask = m->cap - 1, i = (int)(hash(key) & (uint64_t)mask);
    while (m->keys[i] && strcmp(m->keys[i], key)) i = (i + 1) & mask;
    return i;
}

void *dn_namemap_get(const NameMap *m, const char *key)
{
    if (!m->len) return NULL;
    int i = slot(m, key);
    return m->keys[i] ? m->vals[i] : NULL;
}

static void grow(DnArena *a, NameMap *m)
{
    NameMap n = {.cap = m->cap ? 2 * m->cap : 16};
    n.keys = dn_arena_alloc(a, (size_t)n.cap * sizeof *n.keys);
    n.vals = dn_arena_alloc(a, (size_t)n.cap * sizeof *n.vals);
    for (int i = 0; i < m->cap; i++)
        if (m->keys[i]) {
            int j = slot(&n, m->keys[i]);
            n.keys[j] = m->keys[i];
            n.vals[j] = m->vals[i];
            n.len++;
        }
    *m = n;
}

void dn_namemap_put(DnArena *a, NameMap *m, const char *key, void *val)
{
    DN_ASSERT(val);
    if (2 * (m->len + 1) > m->cap) grow(a, m);
    int i = slot(m, key);
    if (!m->keys[i]) {
        m->keys[i] = key;
        m->len++;
    }
    m->vals[i] = val;
}

/* names.c -- the hash index of names.h: open addressing with linear
 * probing over a power-of-two table, FNV-1a mixed with a per-table seed
 * and finished with the MurmurHash3 64-bit finalizer (so the low bits that
 * pick a slot depend on every bit of the name and of the seed).
 */
#include <string.h>

#include "internal.h"
#include "names.h"

static uint64_t hash(const char *s, uint64_t seed)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    return h ^ h >> 33;
}

int dnrt_names_init(dnrt_names *h, size_t n)
{
    memset(h, 0, sizeof *h);
    if (n > SIZE_MAX / 4 / sizeof *h->key) return -1;
    size_t slots = 16;
    while (slots < 2 * n) slots *= 2;
    h->key = dnrt_malloc(sizeof *h->key * slots);
    h->value = h->key ? dnrt_malloc(sizeof *h->value * slots) : NULL;
    if (!h->value) {
        dnrt_free(h->key);
        h->key = NULL;
        return -1;
    }
    memset(h->key, 0, sizeof *h->key * slots);
    h->mask = slots - 1;
    h->limit = n;
    h->seed = hash("dnrt", (uint64_t)(uintptr_t)h->key);
    return 0;
}

/* The slot holding 'key', or the empty slot where it would go. */
static size_t find(const dnrt_names *h, const char *key)
{
    size_t i = (size_t)hash(key, h->seed) & h->mask;
    while (h->key[i] && strcmp(h->key[i], key) != 0) i = (i + 1) & h->mask;
    return i;
}

int32_t dnrt_names_put(dnrt_names *h, const char *key, int32_t value)
{
    size_t i = find(h, key);
    if (h->key[i]) return h->value[i];
    if (h->count == h->limit) return -2;
    h->key[i] = key;
    h->value[i] = value;
    h->count++;
    return -1;
}

int32_t dnrt_names_get(const dnrt_names *h, const char *key)
{
    if (!h->key) return -1;
    size_t i = find(h, key);
    return h->key[i] ? h->value[i] : -1;
}

void dnrt_names_free(dnrt_names *h)
{
    dnrt_free(h->key);
    dnrt_free(h->value);
    memset(h, 0, sizeof *h);
}

/* names.h -- a set of strings with an int32 value each (a hash index over
 * names that live elsewhere), so that finding a tensor by name or finding
 * a duplicate costs O(1) on average instead of a scan: the safetensors
 * reader (st_read.c) indexes every tensor name of a file with it.
 *
 * Open addressing in a table of at least twice the planned size; the hash
 * is seeded per table (from the table's address, which ASLR varies), so a
 * file cannot be crafted once to make every name collide.
 */
#ifndef DNRT_NAMES_H
#define DNRT_NAMES_H

#include <stddef.h>
#include <stdint.h>

typedef struct dnrt_names {
    const char **key; /* slots; NULL = empty; the strings are the caller's */
    int32_t *value;
    size_t mask; /* slot count - 1 (a power of two), 0 before init */
    size_t count, limit;
    uint64_t seed;
} dnrt_names;

/* Prepares 'h' for up to 'n' names (allocating through fault.c); 0, or -1
 * when out of memory (then 'h' needs no dnrt_names_free). */
int dnrt_names_init(dnrt_names *h, size_t n);
/* Adds 'key' with 'value' unless it is there: returns -1 when it was added,
 * else the value already stored under 'key' (which stays).  'key' must
 * outlive 'h'; at most the 'n' of init names fit (more return -2). */
int32_t dnrt_names_put(dnrt_names *h, const char *key, int32_t value);
/* The value stored under 'key', or -1 (also for an initialized-to-zero 'h'). */
int32_t dnrt_names_get(const dnrt_names *h, const char *key);
/* Releases the table (not the strings); accepts a zeroed 'h'. */
void dnrt_names_free(dnrt_names *h);

#endif

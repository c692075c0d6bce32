/* fuzz_frontend.c -- libFuzzer harness: bytes as a .dnn source through
 * parse -> lower -> verify -> every pass (inference and training graphs)
 * -> state layout -> memory plan, with the invariants of robust.h.
 *
 * A custom mutator (LLVMFuzzerCustomMutator) makes, one time in two, a
 * change that byte-level mutation reaches only by luck: a pipe stage
 * ("|> relu") repeated up to 8192 times or any short span up to 4096
 * times, part of a line wrapped in up to 2048 pairs of parentheses, or a
 * number replaced by a huge or odd one; otherwise it leaves the input to
 * libFuzzer's own mutations.  Build and run: see README.md. */
#include "robust.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0; /* a NUL inside ends the text, as it would for dnnc */
    const char *why = rb_check_dnn("fuzz.dnn", text);
    if (why) {
        fprintf(stderr, "fuzz_frontend: invariant broken: %s\n", why);
        abort();
    }
    free(text);
    return 0;
}

/* ---- the custom mutator -------------------------------------------------------- */

static uint64_t mut_state;

static uint64_t mut_rnd(void) /* splitmix64 */
{
    uint64_t z = (mut_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static size_t mut_below(size_t n) { return n ? (size_t)(mut_rnd() % n) : 0; }

/* A repeat count from 1 to 2^'maxlog', small ones as likely as large ones
 * in each power of two: deep recursion needs thousands, in one step, since
 * a chain only a little longer than the corpus's brings no new coverage. */
static size_t mut_count(int maxlog) { return 1 + mut_below((size_t)1 << (1 + mut_below((size_t)maxlog))); }

/* Inserts 'n' bytes of 'src' (not inside 'data') 'times' times at 'at';
 * as many copies as fit in 'max_size'.  Returns the new size. */
static size_t insert_rep(uint8_t *data, size_t size, size_t max_size, size_t at, const uint8_t *src, size_t n,
                         size_t times)
{
    if (n == 0 || size >= max_size) return size;
    if (times > (max_size - size) / n) times = (max_size - size) / n;
    size_t add = n * times;
    memmove(data + at + add, data + at, size - at);
    for (size_t k = 0; k < times; k++) memcpy(data + at + k * n, src, n);
    return size + add;
}

/* The first occurrence of 'pat' at or after 'from', wrapping around; 'size' if none. */
static size_t find_from(const uint8_t *data, size_t size, size_t from, const char *pat)
{
    size_t m = strlen(pat);
    for (size_t k = 0; k + m <= size; k++) {
        size_t i = (from + k) % size;
        if (i + m <= size && !memcmp(data + i, pat, m)) return i;
    }
    return size;
}

static int is_num_char(uint8_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '.' || c == 'x' ||
           c == 'X';
}

static const char *const huge_numbers[] = {
    "99999999999999999999",
    "4611686018427387904",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "18446744073709551616",
    "3037000500",
    "2147483648",
    "4294967296",
    "46341",
    "65536",
    "1e999",
    "-1e999",
    "1e-999",
    "1e308",
    "-0x8000000000000000",
    "0x7fffffffffffffff",
    "-0x1",
    "0x",
    "-0",
    "0",
    "-1",
    "1.",
    ".5",
    "1e",
    "1e+",
    "00000000000000000001",
    "0.000000000000000000000000000000000000000000001",
};
#define NHUGE (sizeof huge_numbers / sizeof huge_numbers[0])

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    mut_state = seed;
    if (size == 0 || size > max_size || mut_below(2)) return LLVMFuzzerMutate(data, size, max_size);
    uint8_t span[256];
    switch (mut_below(4)) {
    case 0: { /* a pipe stage repeated: x |> relu |> relu |> relu ... */
        size_t p = find_from(data, size, mut_below(size), "|>");
        if (p == size) {
            static const char stage[] = " |> relu";
            return insert_rep(data, size, max_size, mut_below(size + 1), (const uint8_t *)stage, sizeof stage - 1,
                              mut_count(13));
        }
        size_t e = p + 2;
        while (e < size && data[e] != '\n' && !(e + 1 < size && data[e] == '|' && data[e + 1] == '>')) e++;
        size_t n = e - p < sizeof span ? e - p : sizeof span;
        memcpy(span, data + p, n);
        return insert_rep(data, size, max_size, p, span, n, mut_count(13));
    }
    case 1: { /* any short span repeated */
        size_t s = mut_below(size), n = 1 + mut_below(32);
        if (n > size - s) n = size - s;
        memcpy(span, data + s, n);
        return insert_rep(data, size, max_size, s, span, n, mut_count(12));
    }
    case 2: { /* part of a line wrapped in k pairs of parentheses */
        size_t i = mut_below(size), j = i;
        while (j < size && data[j] != '\n') j++;
        j = i + mut_below(j - i + 1);
        size_t k = mut_count(11);
        if (2 * k > max_size - size) k = (max_size - size) / 2;
        if (k == 0) return LLVMFuzzerMutate(data, size, max_size);
        size = insert_rep(data, size, max_size, j, (const uint8_t *)")", 1, k);
        return insert_rep(data, size, max_size, i, (const uint8_t *)"(", 1, k);
    }
    default: { /* a number replaced by a huge or odd one (or one inserted) */
        const char *num = huge_numbers[mut_below(NHUGE)];
        size_t n = strlen(num), s = mut_below(size);
        while (s < size && !(data[s] >= '0' && data[s] <= '9')) s++;
        if (s == size) return insert_rep(data, size, max_size, mut_below(size + 1), (const uint8_t *)num, n, 1);
        size_t e = s;
        while (s > 0 && (is_num_char(data[s - 1]) || data[s - 1] == '-')) s--;
        while (e < size && is_num_char(data[e])) e++;
        if (size - (e - s) + n > max_size) return LLVMFuzzerMutate(data, size, max_size);
        memmove(data + s + n, data + e, size - e);
        memcpy(data + s, num, n);
        return size - (e - s) + n;
    }
    }
}

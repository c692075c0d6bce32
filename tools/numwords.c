/* numwords.c -- the translation pairs of dnnrun's pairs data: Spanish
 * number words -> digits, for 0 .. 999999.
 *
 *   numwords --train N1 --test N2 [--seed S] --out DIR
 *
 * writes DIR/train.tsv (N1 lines) and DIR/test.tsv (N2 lines), each line
 * 'words<TAB>digits' ("doscientos treinta y siete\t237"), UTF-8.  The
 * numbers are a splitmix64 Fisher-Yates permutation of 0 .. 999999 seeded
 * by S (default 1): train.tsv takes its first N1, test.tsv the next N2, so
 * no number is in both and a seed always gives the same files.
 * Spelling: the masculine cardinals of the RAE ("veintiún mil", "ciento
 * un mil": uno shortens to un before mil; "mil", not "un mil"; "cien"
 * alone, "ciento" before more).  Exit status 0, 1 (files), 2 (usage). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUMWORDS_COUNT 1000000

static const char *const small[30] = {
    "cero",         "uno",         "dos",        "tres",        "cuatro",     "cinco",       "seis",      "siete",
    "ocho",         "nueve",       "diez",       "once",        "doce",       "trece",       "catorce",   "quince",
    "dieciséis",    "diecisiete",  "dieciocho",  "diecinueve",  "veinte",     "veintiuno",   "veintidós", "veintitrés",
    "veinticuatro", "veinticinco", "veintiséis", "veintisiete", "veintiocho", "veintinueve",
};
static const char *const tens[10] = {"",          "",        "",        "treinta", "cuarenta",
                                     "cincuenta", "sesenta", "setenta", "ochenta", "noventa"};
static const char *const hundreds[10] = {"",           "ciento",      "doscientos",  "trescientos", "cuatrocientos",
                                         "quinientos", "seiscientos", "setecientos", "ochocientos", "novecientos"};

/* 1 .. 99; 'apocope': uno -> un, veintiuno -> veintiún (before mil). */
static void below100(char *s, size_t len, int n, int apocope)
{
    size_t at = strlen(s);
    if (n < 30) {
        snprintf(s + at, len - at, "%s", apocope && n == 1 ? "un" : apocope && n == 21 ? "veintiún" : small[n]);
        return;
    }
    at += (size_t)snprintf(s + at, len - at, "%s", tens[n / 10]);
    if (n % 10) snprintf(s + at, len - at, " y %s", apocope && n % 10 == 1 ? "un" : small[n % 10]);
}

/* 1 .. 999 */
static void below1000(char *s, size_t len, int n, int apocope)
{
    if (n == 100) {
        strncat(s, "cien", len - strlen(s) - 1);
        return;
    }
    if (n >= 100) {
        strncat(s, hundreds[n / 100], len - strlen(s) - 1);
        if (n % 100) strncat(s, " ", len - strlen(s) - 1);
    }
    if (n % 100) below100(s, len, n % 100, apocope);
}

/* The words of 0 <= n < 1000000 into 's'. */
static void spell(char *s, size_t len, int n)
{
    s[0] = 0;
    if (n == 0) {
        snprintf(s, len, "cero");
        return;
    }
    int th = n / 1000, rest = n % 1000;
    if (th == 1)
        strncat(s, "mil", len - 1);
    else if (th > 1) {
        below1000(s, len, th, 1);
        strncat(s, " mil", len - strlen(s) - 1);
    }
    if (th && rest) strncat(s, " ", len - strlen(s) - 1);
    if (rest) below1000(s, len, rest, 0);
}

static uint64_t next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void usage(const char *msg, const char *arg)
{
    if (msg) fprintf(stderr, "numwords: %s%s\n", msg, arg ? arg : "");
    fputs("usage: numwords --train N1 --test N2 [--seed S] --out DIR\n"
          "writes DIR/train.tsv and DIR/test.tsv: 'spanish words<TAB>digits' for N1 and N2\n"
          "distinct numbers of 0..999999 (N1 + N2 <= 1000000), split by a permutation seeded by S\n"
          "(default 1)\n",
          msg ? stderr : stdout);
    exit(msg ? 2 : 0);
}

static long long parse_count(const char *opt, const char *v)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || *end || end == v || x < 0) {
        fprintf(stderr, "numwords: %s expects an integer >= 0, got '%s'\n", opt, v);
        exit(2);
    }
    return x;
}

static int write_split(const char *dir, const char *name, const int32_t *nums, long long n)
{
    char path[4096], words[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "numwords: %s: cannot create: %s\n", path, strerror(errno));
        return 1;
    }
    for (long long i = 0; i < n; i++) {
        spell(words, sizeof words, nums[i]);
        fprintf(f, "%s\t%d\n", words, nums[i]);
    }
    if (fclose(f) != 0) {
        fprintf(stderr, "numwords: %s: cannot write: %s\n", path, strerror(errno));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    long long ntrain = -1, ntest = -1;
    uint64_t seed = 1;
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) usage(NULL, NULL);
        if (i + 1 >= argc) usage("missing a value after ", argv[i]);
        if (!strcmp(argv[i], "--train"))
            ntrain = parse_count(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--test"))
            ntest = parse_count(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = (uint64_t)parse_count(argv[i], argv[i + 1]);
        else if (!strcmp(argv[i], "--out"))
            out = argv[i + 1];
        else
            usage("unknown option ", argv[i]);
        i++;
    }
    if (ntrain < 0 || ntest < 0 || !out) usage("--train, --test and --out are required", NULL);
    if (ntrain + ntest > NUMWORDS_COUNT) {
        fprintf(stderr, "numwords: --train %lld + --test %lld exceeds the %d numbers 0..999999\n", ntrain, ntest,
                NUMWORDS_COUNT);
        return 2;
    }
    int32_t *nums = malloc(sizeof *nums * NUMWORDS_COUNT);
    if (!nums) {
        fprintf(stderr, "numwords: out of memory\n");
        return 1;
    }
    for (int32_t i = 0; i < NUMWORDS_COUNT; i++) nums[i] = i;
    uint64_t rng = seed ^ 0x5DEECE66Dull;
    for (int32_t i = NUMWORDS_COUNT - 1; i > 0; i--) {
        int32_t j = (int32_t)(next_random(&rng) % (uint64_t)(i + 1)), t = nums[i];
        nums[i] = nums[j];
        nums[j] = t;
    }
    int rc = write_split(out, "train.tsv", nums, ntrain) || write_split(out, "test.tsv", nums + ntrain, ntest);
    free(nums);
    return rc;
}

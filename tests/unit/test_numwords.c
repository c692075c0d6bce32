/* test_numwords.c -- tools/numwords.c, the generator of the Spanish number
 * words -> digits pairs, run as a program.
 *
 * All 1,000,000 numbers split 600,000 / 400,000: every number is in exactly
 * one file with its digits, the spellings of a list of tricky numbers are
 * exact (accents, apocope before mil, cien / ciento), the longest source
 * in bytes is found and must fit a src of 72 bytes; the same seed writes
 * the same files and another seed other ones; bad usage exits 2. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testlib.h"

#define COUNT 1000000

static char out[8192];

static int numwords(const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s", NUMWORDS_BIN, args);
    return dn_test_run(cmd, out, sizeof out);
}

/* Reads 'path' and records, per number, its words (pointers into the
 * returned buffer) and which file (tag) held it; asserts each line is
 * 'words<TAB>digits' and no number appears twice. */
static char *read_split(const char *path, char tag, char **words, char *where, long *lines)
{
    size_t len;
    char *data = dn_test_slurp(path, &len);
    *lines = 0;
    for (char *line = data, *nl; *line; line = nl + 1) {
        nl = strchr(line, '\n');
        cr_assert(nl, "%s: last line without a newline", path);
        *nl = 0;
        char *tab = strchr(line, '\t'), *end;
        cr_assert(tab && tab > line, "%s: line %ld '%s' is not 'words<TAB>digits'", path, *lines + 1, line);
        *tab = 0;
        long n = strtol(tab + 1, &end, 10);
        cr_assert(*end == 0 && end > tab + 1 && n >= 0 && n < COUNT, "%s: bad digits '%s'", path, tab + 1);
        cr_assert(!where[n], "%s: number %ld also in the %s file", path, n, where[n] == 'r' ? "train" : "test");
        where[n] = tag;
        words[n] = line;
        ++*lines;
    }
    return data;
}

Test(numwords, spellings_split_and_lengths)
{
    char dir[64], args[256], path[128];
    dn_test_tmpdir(dir, sizeof dir, "numwords-test");
    snprintf(args, sizeof args, "--train 600000 --test 400000 --seed 7 --out %s", dir);
    cr_assert_eq(numwords(args), 0, "%s", out);
    char **words = calloc(COUNT, sizeof *words), *where = calloc(COUNT, 1);
    long ntrain, ntest;
    snprintf(path, sizeof path, "%s/train.tsv", dir);
    char *a = read_split(path, 'r', words, where, &ntrain);
    snprintf(path, sizeof path, "%s/test.tsv", dir);
    char *b = read_split(path, 'e', words, where, &ntest);
    cr_expect_eq(ntrain, 600000);
    cr_expect_eq(ntest, 400000);
    for (long n = 0; n < COUNT; n++) cr_assert(where[n], "number %ld is in neither file", n);

    static const struct {
        long n;
        const char *w;
    } cases[] = {
        {0, "cero"},
        {1, "uno"},
        {10, "diez"},
        {15, "quince"},
        {16, "dieciséis"},
        {20, "veinte"},
        {21, "veintiuno"},
        {22, "veintidós"},
        {23, "veintitrés"},
        {26, "veintiséis"},
        {30, "treinta"},
        {31, "treinta y uno"},
        {99, "noventa y nueve"},
        {100, "cien"},
        {101, "ciento uno"},
        {115, "ciento quince"},
        {237, "doscientos treinta y siete"},
        {500, "quinientos"},
        {700, "setecientos"},
        {900, "novecientos"},
        {1000, "mil"},
        {1001, "mil uno"},
        {1100, "mil cien"},
        {2000, "dos mil"},
        {16000, "dieciséis mil"},
        {21000, "veintiún mil"},
        {21021, "veintiún mil veintiuno"},
        {22000, "veintidós mil"},
        {31000, "treinta y un mil"},
        {100000, "cien mil"},
        {101000, "ciento un mil"},
        {201000, "doscientos un mil"},
        {555555, "quinientos cincuenta y cinco mil quinientos cincuenta y cinco"},
        {999999, "novecientos noventa y nueve mil novecientos noventa y nueve"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        cr_expect_str_eq(words[cases[i].n], cases[i].w, "%ld", cases[i].n);

    size_t most = 0;
    long longest = 0;
    for (long n = 0; n < COUNT; n++)
        if (strlen(words[n]) > most) most = strlen(words[n]), longest = n;
    cr_log_info("the longest source: %zu bytes, %ld '%s'", most, longest, words[longest]);
    /* Not 64: "cuatrocientos cincuenta y cuatro mil cuatrocientos cincuenta y cuatro" is 69 bytes. */
    cr_expect(most > 64 && most <= 72, "the longest source is %zu bytes (%ld)", most, longest);
    free(a), free(b), free(words), free(where);
    dn_test_rmtree(dir);
}

Test(numwords, deterministic_for_a_seed)
{
    char dir[64], args[256], p1[128], p2[128];
    dn_test_tmpdir(dir, sizeof dir, "numwords-test");
    const char *sub[3] = {"a", "b", "c"};
    const int seeds[3] = {3, 3, 4};
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "--train 2000 --test 500 --seed %d --out %s/%s", seeds[i], dir, sub[i]);
        char cmd[512];
        snprintf(cmd, sizeof cmd, "mkdir %s/%s", dir, sub[i]);
        cr_assert_eq(dn_test_run(cmd, NULL, 0), 0);
        cr_assert_eq(numwords(args), 0, "%s", out);
    }
    for (int f = 0; f < 2; f++) {
        const char *name = f ? "test.tsv" : "train.tsv";
        size_t la, lb, lc;
        snprintf(p1, sizeof p1, "%s/a/%s", dir, name);
        char *a = dn_test_slurp(p1, &la);
        snprintf(p2, sizeof p2, "%s/b/%s", dir, name);
        char *b = dn_test_slurp(p2, &lb);
        snprintf(p2, sizeof p2, "%s/c/%s", dir, name);
        char *c = dn_test_slurp(p2, &lc);
        cr_expect(la == lb && !memcmp(a, b, la), "%s differs for the same seed", name);
        cr_expect(la != lc || memcmp(a, c, la), "%s is the same for seeds 3 and 4", name);
        free(a), free(b), free(c);
    }
    dn_test_rmtree(dir);
}

Test(numwords, usage_errors)
{
    cr_expect_eq(numwords("--train 600000 --test 400001 --out /tmp"), 2, "%s", out);
    cr_expect(strstr(out, "exceeds the 1000000 numbers"), "%s", out);
    cr_expect_eq(numwords("--train 10 --out /tmp"), 2, "%s", out);
    cr_expect(strstr(out, "required"), "%s", out);
    cr_expect_eq(numwords("--train ten --test 1 --out /tmp"), 2, "%s", out);
    cr_expect(strstr(out, "--train expects an integer"), "%s", out);
    cr_expect_eq(numwords("--train 1 --test 1 --out /nonexistent-dir-numwords"), 1, "%s", out);
    cr_expect(strstr(out, "/nonexistent-dir-numwords/train.tsv: cannot create"), "%s", out);
    cr_expect_eq(numwords("--help"), 0, "%s", out);
    cr_expect(strstr(out, "usage: numwords --train N1 --test N2"), "%s", out);
}

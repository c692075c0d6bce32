/* files.c -- files for tests: temporary folders, and reading a whole file
 * (Criterion assertions of the calling test). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

#include "testlib.h"

void dn_test_tmpdir(char *dir, size_t len, const char *tag)
{
    snprintf(dir, len, "/tmp/%s-XXXXXX", tag);
    cr_assert_not_null(mkdtemp(dir), "cannot make a temporary folder %s", dir);
}

void dn_test_rmtree(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    dn_test_run(cmd, NULL, 0);
}

char *dn_test_slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    cr_assert_geq(n, 0, "cannot tell the size of %s", path);
    char *s = malloc((size_t)n + 1);
    cr_assert_not_null(s);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n, "cannot read %s", path);
    fclose(f);
    s[n] = 0;
    if (len) *len = (size_t)n;
    return s;
}

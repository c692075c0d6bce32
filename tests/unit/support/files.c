/* files.c -- temporary folders for tests that write files (Criterion
 * assertions of the calling test). */
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

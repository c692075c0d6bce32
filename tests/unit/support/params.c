/* params.c -- see testlib.h (dn_test_expect_param_list). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"

int dn_test_expect_param_list(const char *model, const char *flags, const char *list)
{
    static char ir[1 << 19];
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' '%s' --emit=ir %s", DNNC_BIN, dn_test_src(model), flags);
    cr_assert_eq(dn_test_run(cmd, ir, sizeof ir), 0, "%s: dnnc --emit=ir failed:\n%.2000s", model, ir);
    cr_assert_lt(strlen(ir), sizeof ir - 1, "%s: IR dump truncated", model);

    FILE *f = fopen(dn_test_src(list), "r");
    cr_assert_not_null(f, "%s (rerun the script its first line names)", list);
    char line[512];
    const char *p = ir;
    int nwant = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = 0;
        nwant++;
        /* the next IR line "  param @NAME: TYPE ..." */
        const char *q = strstr(p, "  param @");
        cr_assert_not_null(q, "%s: IR has no parameter for '%s' (entry %d of %s)", model, line, nwant, list);
        q += strlen("  param @");
        char got[512];
        size_t k = 0;
        const char *colon = strchr(q, ':');
        cr_assert_not_null(colon);
        for (const char *c = q; c < colon && k < sizeof got - 1; c++) got[k++] = *c;
        got[k++] = ' ';
        const char *t = colon + 2, *close = strchr(t, ']');
        cr_assert_not_null(close);
        for (const char *c = t; c <= close && k < sizeof got - 1; c++) got[k++] = *c;
        got[k] = 0;
        cr_expect_str_eq(got, line, "%s: parameter %d is '%s', %s says '%s'", model, nwant, got, list, line);
        p = close;
    }
    fclose(f);
    cr_expect_null(strstr(p, "  param @"), "%s declares more parameters than the %d of %s", model, nwant, list);
    return nwant;
}

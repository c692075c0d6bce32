/* passes.c -- the pass table built from passes.def, so the driver can run,
 * skip or print after any pass by name without knowing it. */
#include "passes.h"

const DnPassInfo dn_pass_table[] = {
#define PASS(fn, name, help) {name, help, dn_pass_##fn},
#include "passes.def"
#undef PASS
};
const int dn_pass_count = (int)(sizeof dn_pass_table / sizeof dn_pass_table[0]);

const DnPassInfo *dn_pass_lookup(const char *name)
{
    for (int i = 0; i < dn_pass_count; i++)
        if (strcmp(dn_pass_table[i].name, name) == 0) return &dn_pass_table[i];
    return NULL;
}

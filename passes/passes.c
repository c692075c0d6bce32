/* passes.c -- the pass table built from passes.def, so the driver can run,
 * skip or print after any pass by name, and find the graph-defining passes
 * by their kind, without knowing any of them. */
#include "passes.h"

const DnPassInfo dn_pass_table[] = {
#define PASS(fn, name, kind, help)  {name, help, DN_PASS_##kind, dn_pass_##fn},
#define STAGE(id, name, kind, help) {name, help, DN_PASS_##kind, NULL},
#include "passes.def"
#undef PASS
#undef STAGE
};
const int dn_pass_count = DN_PASS_COUNT;
_Static_assert(sizeof dn_pass_table / sizeof dn_pass_table[0] == DN_PASS_COUNT, "passes.def rows");

const DnPassInfo *dn_pass_lookup(const char *name)
{
    for (int i = 0; i < dn_pass_count; i++)
        if (strcmp(dn_pass_table[i].name, name) == 0) return &dn_pass_table[i];
    return NULL;
}

const DnPassInfo *dn_pass_defining(bool training)
{
    DnPassKind kind = training ? DN_PASS_DEFINE_TRAIN : DN_PASS_DEFINE_INFER;
    for (int i = 0; i < dn_pass_count; i++)
        if (dn_pass_table[i].kind == kind) return &dn_pass_table[i];
    DN_UNREACHABLE();
}

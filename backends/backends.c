/* backends.c -- the table of code generators, chosen by name (--target=),
 * and the check that the chosen one has a kernel for every op it will see.
 *
 * The check runs before any code generation (dn_build_library, and the
 * driver's --emit=code), so an op a target lacks is a diagnostic at the
 * op's source location, never a link error or a crash in the backend.
 */
#include "backend.h"

const DnBackend *const dn_backend_table[] = {&dn_backend_llvm, &dn_backend_cuda, &dn_backend_opencl};
const int dn_backend_count = (int)(sizeof dn_backend_table / sizeof dn_backend_table[0]);

const DnBackend *dn_backend_lookup(const char *name)
{
    for (int i = 0; i < dn_backend_count; i++)
        if (strcmp(dn_backend_table[i]->name, name) == 0) return dn_backend_table[i];
    return NULL;
}

/* Reports each op kind of 'g' that 'b' lacks and 'seen' does not hold yet. */
static void check_graph(DnCtx *cx, const DnBackend *b, const DnGraph *g, bool *seen)
{
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead || seen[op->kind] || b->supports_op(op)) continue;
        seen[op->kind] = true;
        dn_error(cx, op->loc, "target '%s' has no kernel for op '%s'", b->name, dn_op_info[op->kind].name);
    }
}

DnStatus dn_backend_check(DnCtx *cx, const DnBackend *b, const DnModule *m)
{
    if (!b->supports_op) return DN_OK;
    bool seen[DN_OP_COUNT] = {0};
    int before = cx->nerr;
    check_graph(cx, b, m->infer, seen);
    if (m->train) check_graph(cx, b, m->train, seen);
    return cx->nerr == before ? DN_OK : DN_ERR;
}

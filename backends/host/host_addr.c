/* host_addr.c -- plan addressing: from the memory plan to the pointers an
 * op's code receives.
 *
 * dn_host_launch_fill lists an op's operand and result buffers with their
 * byte ranges and decides, from the plan alone, which of them can carry
 * noalias (no overlap with a buffer that either side writes, for any batch
 * size) and which are 64-byte aligned.  dn_host_launch_ptrs emits their
 * addresses from the dnrt_call fields, in whatever function holds the call
 * pointer: a CPU kernel wrapper or an entry function.
 */
#include "host.h"

/* ---- byte ranges and overlap ------------------------------------------------- */

/* Byte range of a buffer as  [s_n*n + s_b, + z_n*n + z_b). */
typedef struct Range {
    DnBufKind kind;
    int index;
    int64_t s_n, s_b, z_n, z_b;
    bool written;
} Range;

static Range ptr_range(const DnLaunchPtr *p)
{
    const DnBufLoc *l = &p->loc;
    return (Range){l->kind, l->index, l->at_n, l->at_b, l->span_n, l->span_b, p->written};
}

static bool overlap_at(const Range *a, const Range *b, int64_t n)
{
    int64_t as = a->s_n * n + a->s_b, ae = as + a->z_n * n + a->z_b;
    int64_t bs = b->s_n * n + b->s_b, be = bs + b->z_n * n + b->z_b;
    return as < be && bs < ae && ae > as && be > bs;
}

/* Whether two buffers can share a byte for some batch size n >= 1.  Both
 * conditions of overlap are linear in n, so it suffices to test n = 1, a
 * large n and the points around where the two conditions cross. */
static bool may_overlap(const Range *a, const Range *b)
{
    if (a->kind != b->kind) return false;
    if (a->kind == DN_BUF_INPUT || a->kind == DN_BUF_OUTPUT) return a->index == b->index;
    if (a->kind != DN_BUF_ARENA && a->kind != DN_BUF_STATE) return true;
    int64_t p1 = a->s_n + a->z_n - b->s_n, q1 = a->s_b + a->z_b - b->s_b; /* ae - bs */
    int64_t p2 = b->s_n + b->z_n - a->s_n, q2 = b->s_b + b->z_b - a->s_b; /* be - as */
    int64_t cand[6] = {1, 2, (int64_t)1 << 30, 1, 1, 1};
    if (p1 != p2) {
        int64_t x = (q2 - q1) / (p1 - p2);
        cand[3] = x - 1, cand[4] = x, cand[5] = x + 1;
    }
    for (int i = 0; i < 6; i++)
        if (cand[i] >= 1 && overlap_at(a, b, cand[i])) return true;
    return false;
}

/* ---- the pointers of one op ----------------------------------------------------- */

static DnLaunchPtr value_ptr(const DnPlan *plan, const DnValue *v, bool written)
{
    return (DnLaunchPtr){.v = v, .loc = dn_plan_locate(plan, v), .written = written};
}

/* Whether two buffers start at the same byte for every batch size. */
static bool same_start(const Range *a, const Range *b)
{
    return a->kind == b->kind && a->kind != DN_BUF_NONE && a->index == b->index && a->s_n == b->s_n && a->s_b == b->s_b;
}

/* Sets noalias, align64 and same_as on every pointer of 'l' from their ranges. */
static void mark_facts(DnLaunch *l)
{
    Range r[DN_LAUNCH_MAX_PTRS];
    for (int i = 0; i < l->nptrs; i++) r[i] = ptr_range(&l->ptr[i]);
    for (int i = 0; i < l->nptrs; i++) {
        l->ptr[i].same_as = -1;
        for (int j = 0; j < i && l->ptr[i].same_as < 0; j++)
            if (same_start(&r[i], &r[j])) l->ptr[i].same_as = l->ptr[j].same_as >= 0 ? l->ptr[j].same_as : j;
        bool alone = true;
        for (int j = 0; j < l->nptrs; j++)
            if (j != i && (r[i].written || r[j].written) && may_overlap(&r[i], &r[j])) alone = false;
        l->ptr[i].noalias = alone;
        l->ptr[i].align64 = (r[i].kind == DN_BUF_ARENA && r[i].s_n % 64 == 0 && r[i].s_b % 64 == 0) ||
                            (r[i].kind == DN_BUF_STATE && r[i].s_b % 64 == 0);
    }
}

/* Contracts: host.h. */

/* Operands (written when the op has side effects), then results. */
void dn_host_launch_fill(DnLaunch *l)
{
    const DnOp *op = l->op;
    bool side = dn_op_info[op->kind].flags & DN_OPF_SIDE_EFFECT;
    DN_ASSERT(op->nin <= DN_LAUNCH_MAX_IN && op->nout <= DN_LAUNCH_MAX_OUT);
    l->nptrs = 0;
    for (int i = 0; i < op->nin; i++) l->ptr[l->nptrs++] = value_ptr(l->plan, op->in[i], side);
    for (int i = 0; i < op->nout; i++) l->ptr[l->nptrs++] = value_ptr(l->plan, op->out[i], true);
    mark_facts(l);
    const char *why;
    l->seq_form = dn_op_seq_form(op, &why);
    DN_ASSERT(l->seq_form != DN_SEQ_UNSUPPORTED); /* refused where the op was built */
}

LLVMValueRef dn_host_kernel_n(DnHost *H, const DnLaunch *l, LLVMValueRef c, LLVMValueRef n)
{
    if (l->seq_form != DN_SEQ_ROWS) return n;
    LLVMValueRef t = LLVMBuildLoad2(H->b, H->i64, LLVMBuildStructGEP2(H->b, H->call_t, c, DN_CALL_T, ""), "t");
    return LLVMBuildNSWMul(H->b, n, t, "nt");
}

/* ---- addresses ------------------------------------------------------------------ */

int dn_host_input_slot(const DnModule *m, const DnGraph *g, int idx)
{
    const DnGraph *inf = m->infer;
    if (g == inf) return idx;
    const DnValue *v = g->inputs.data[idx];
    int slot = inf->inputs.len;
    for (int i = 0; i < inf->inputs.len; i++)
        if (!strcmp(inf->inputs.data[i]->name, v->name)) return i;
    for (int i = 0; i < idx; i++) slot += g->inputs.data[i]->train_only;
    if (!v->train_only) dn_die(__FILE__, __LINE__, "host: training input '%s' not in the model", v->name);
    return slot;
}

LLVMValueRef dn_host_loc_addr(DnHost *H, const DnGraph *g, DnBufLoc l, LLVMValueRef c, LLVMValueRef n, const char *name)
{
    if (l.kind == DN_BUF_INPUT) l.index = dn_host_input_slot(H->m, g, l.index);
    LLVMBuilderRef bd = H->b;
    int field = l.kind == DN_BUF_ARENA   ? DN_CALL_ARENA
                : l.kind == DN_BUF_STATE ? DN_CALL_STATE
                : l.kind == DN_BUF_INPUT ? DN_CALL_INPUTS
                                         : DN_CALL_OUTPUTS;
    LLVMValueRef fp = LLVMBuildStructGEP2(bd, H->call_t, c, (unsigned)field, "");
    LLVMValueRef base = LLVMBuildLoad2(bd, H->ptr, fp, "");
    if (l.kind == DN_BUF_INPUT || l.kind == DN_BUF_OUTPUT) {
        LLVMValueRef idx = LLVMConstInt(H->i64, (unsigned long long)l.index, 0);
        LLVMValueRef slot = LLVMBuildInBoundsGEP2(bd, H->ptr, base, &idx, 1, "");
        base = LLVMBuildLoad2(bd, H->ptr, slot, l.at_n || l.at_b ? "" : name);
        if (!l.at_n && !l.at_b) return base;
    }
    LLVMValueRef off = LLVMConstInt(H->i64, (unsigned long long)l.at_b, 1);
    if (l.at_n)
        off = LLVMBuildNSWAdd(bd, LLVMBuildNSWMul(bd, n, LLVMConstInt(H->i64, (unsigned long long)l.at_n, 1), ""), off,
                              "");
    return LLVMBuildInBoundsGEP2(bd, H->i8, base, &off, 1, "");
}

/* The address of pointer 'p' of graph 'g' (see dn_host_loc_addr). */
static LLVMValueRef ptr_addr(DnHost *H, const DnGraph *g, const DnLaunchPtr *p, LLVMValueRef c, LLVMValueRef n)
{
    if (p->loc.kind == DN_BUF_NONE)
        dn_die(__FILE__, __LINE__, "host: value %%%d (%s) has no buffer in the plan", p->v ? p->v->id : -1,
               p->v && p->v->name ? p->v->name : "?");
    return dn_host_loc_addr(H, g, p->loc, c, n, p->v && p->v->name ? p->v->name : "");
}

/* The addresses of l's pointers, in order. */
void dn_host_launch_ptrs(DnHost *H, const DnLaunch *l, LLVMValueRef c, LLVMValueRef n, LLVMValueRef *out)
{
    for (int i = 0; i < l->nptrs; i++) out[i] = ptr_addr(H, l->g, &l->ptr[i], c, n);
}

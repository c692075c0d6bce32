/* plan_print.c -- the memory plan as text (dnnc --emit=plan).
 *
 * One line per op result, in op order: the result's number as the IR text
 * prints it (%0, %1, ... over live ops' results), the op, the type and
 * where the value lives:
 *     arena + 1024*N + 64       an arena buffer of its own
 *     view %3 + 256             inside value %3's buffer at byte offset 256
 *     view %3 + 256 stride 1024 ... with that many bytes between batch items
 *                               (only when it differs from its own item size)
 *     state + 128, input 0, output 0
 * then a line for each part of the op's workspace it has (whole-op, and
 * per worker), and the arena's total size (with its bytes per thread when
 * some op uses the worker slices).  Deterministic: no pointers, so tests compare the text.
 */
#include <stdlib.h>

#include "passes.h"

/* Printed numbers of op results and the values by id, for naming view bases. */
typedef struct Names {
    const DnGraph *g;
    int *num;              /* op result value id -> printed number */
    const DnValue **value; /* value id -> the value (inputs, params and live op results) */
} Names;

static Names names_new(const DnGraph *g)
{
    Names nm = {g, calloc((size_t)g->nvalues + 1, sizeof(int)), calloc((size_t)g->nvalues + 1, sizeof(DnValue *))};
    if (!nm.num || !nm.value) dn_die(__FILE__, __LINE__, "out of memory");
    for (int i = 0; i < g->inputs.len; i++) nm.value[g->inputs.data[i]->id] = g->inputs.data[i];
    for (int i = 0; i < g->params.len; i++) nm.value[g->params.data[i]->value->id] = g->params.data[i]->value;
    int next = 0;
    for (int i = 0; i < g->ops.len; i++)
        if (!g->ops.data[i]->dead)
            for (int r = 0; r < g->ops.data[i]->nout; r++) {
                const DnValue *v = g->ops.data[i]->out[r];
                nm.num[v->id] = next++;
                nm.value[v->id] = v;
            }
    return nm;
}

/* Writes the name of value id 'id' as the IR text does (%k, %input, @param). */
static void ref_str(const Names *nm, int id, char *s, size_t len)
{
    const DnValue *v = id >= 0 && id < nm->g->nvalues ? nm->value[id] : NULL;
    const DnGraph *g = nm->g;
    if (!v)
        snprintf(s, len, "%%?%d", id);
    else if (v->kind == DN_VAL_PARAM)
        snprintf(s, len, "@%s", g->params.data[v->index]->name);
    else if (v->kind == DN_VAL_INPUT)
        snprintf(s, len, "%%%s", v->name ? v->name : "?");
    else
        snprintf(s, len, "%%%d", nm->num[v->id]);
}

static void arena_str(const DnBuf *b, char *s, size_t len)
{
    if (b->coef_n)
        snprintf(s, len, "arena + %lld*N + %lld", (long long)b->coef_n, (long long)b->offset);
    else
        snprintf(s, len, "arena + %lld", (long long)b->offset);
}

/* Where value 'v' (buffer 'b') lives, as text. */
static const char *buf_str(const Names *nm, const DnValue *v, const DnBuf *b, char *s, size_t len)
{
    switch (b->kind) {
    case DN_BUF_NONE: snprintf(s, len, "-"); break;
    case DN_BUF_ARENA: arena_str(b, s, len); break;
    case DN_BUF_STATE: snprintf(s, len, "state + %lld", (long long)b->offset); break;
    case DN_BUF_INPUT: snprintf(s, len, "input %d", b->index); break;
    case DN_BUF_OUTPUT: snprintf(s, len, "output %d", b->index); break;
    case DN_BUF_VIEW: {
        char base[80];
        ref_str(nm, b->base, base, sizeof base);
        int64_t item = dn_shape_has_n(&v->shape) ? dn_shape_numel_static(&v->shape) * dn_dtype_size(v->dtype) : 0;
        if (b->stride && b->stride != item)
            snprintf(s, len, "view %s + %lld stride %lld", base, (long long)b->offset, (long long)b->stride);
        else
            snprintf(s, len, "view %s + %lld", base, (long long)b->offset);
        break;
    }
    }
    return s;
}

/* The workspace lines of the op at position 'at': its whole-op part and
 * its part of each worker's slice, when it has them. */
static void print_workspace(const DnPlan *p, int at, FILE *out)
{
    const DnWorkspace *w = &p->workspace[at];
    char size[48], where[96];
    if (w->buf.kind == DN_BUF_ARENA) {
        if (w->bytes_n)
            snprintf(size, sizeof size, "%lld*N bytes", (long long)w->bytes_n);
        else
            snprintf(size, sizeof size, "%lld bytes", (long long)w->bytes_b);
        arena_str(&w->buf, where, sizeof where);
        fprintf(out, "  %-5s %-18s %-28s %s\n", "", "workspace", size, where);
    }
    if (w->per_worker > 0) {
        snprintf(size, sizeof size, "%lld bytes", (long long)w->per_worker);
        fprintf(out, "  %-5s %-18s %-28s %s\n", "", "workspace/worker", size, "worker slices");
    }
}

/* The KV caches of a decoding step (cache parameters, in the session's
 * state): their count, rows and bytes. */
static void print_caches(const DnGraph *g, FILE *out)
{
    int64_t bytes = 0, rows = 0;
    int n = 0;
    for (int i = 0; i < g->params.len; i++) {
        const DnParam *pr = g->params.data[i];
        if (pr->kind != DN_PARAM_CACHE) continue;
        bytes += dn_shape_numel_static(&pr->shape) * dn_dtype_size(pr->dtype);
        rows = pr->shape.dim[1];
        n++;
    }
    if (n)
        fprintf(out, "  kv cache: %d tensors of %lld positions, %lld bytes in the session's state\n", n,
                (long long)rows, (long long)bytes);
}

void dn_plan_print(const DnGraph *g, const DnPlan *p, FILE *out)
{
    Names nm = names_new(g);
    fprintf(out, "plan @%s {\n", g->name);
    for (int i = 0; i < g->ops.len; i++) {
        const DnOp *op = g->ops.data[i];
        if (op->dead) continue;
        for (int r = 0; r < op->nout; r++) {
            char id[16], ty[128], where[128];
            const DnValue *v = op->out[r];
            snprintf(id, sizeof id, "%%%d", nm.num[v->id]);
            fprintf(out, "  %-5s %-18s %-28s %s\n", id, dn_op_info[op->kind].name,
                    dn_type_str(v->dtype, &v->shape, ty, sizeof ty),
                    buf_str(&nm, v, &p->buf[v->id], where, sizeof where));
        }
        print_workspace(p, i, out);
    }
    char slices[48] = ""; /* the worker slices follow the pools */
    if (p->arena_t) snprintf(slices, sizeof slices, " + %lld*threads", (long long)p->arena_t);
    char seq[64] = ""; /* the values with T are sized for its bound, so any t fits */
    int64_t bound = dn_graph_seq_bound(g);
    if (bound) snprintf(seq, sizeof seq, " for any t <= %lld (T at its bound)", (long long)bound);
    fprintf(out, "  arena: %lld*N + %lld%s bytes%s (one buffer per value: %lld*N + %lld)\n", (long long)p->arena_n,
            (long long)p->arena_b, slices, seq, (long long)p->naive_n, (long long)p->naive_b);
    print_caches(g, out);
    fprintf(out, "}\n");
    free(nm.num);
    free(nm.value);
}

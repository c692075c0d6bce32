/* gpu_gen.c -- the generators' interface (gpu_internal.h): parameters,
 * body lines and launch geometry of the kernels one op writes, turned into
 * kernel text (added to the program once per distinct text) and launch
 * records for the host.
 */
#include <stdio.h>

#include "gpu_internal.h"

void dn_gk_begin(DnGpuGen *G, const char *suffix)
{
    DN_ASSERT(!G->open && G->nlaunch < (int)(sizeof G->launch / sizeof G->launch[0]));
    G->open = true;
    snprintf(G->base, sizeof G->base, "%s%s%s", dn_op_info[G->op->kind].name, suffix && *suffix ? "_" : "",
             suffix ? suffix : "");
    G->params.len = G->decls.len = G->body.len = 0;
    dn_text_append(&G->params, "", 0), dn_text_append(&G->decls, "", 0), dn_text_append(&G->body, "", 0);
    G->cur = (DnGpuLaunchRec){.guard = -1};
    dn_text_printf(&G->params, "(i64 n");
}

static dnrt_gpu_arg *new_arg(DnGpuGen *G)
{
    DN_ASSERT(G->open && G->cur.nargs < DN_GPU_MAX_ARGS);
    return &G->cur.args[G->cur.nargs++];
}

static const char *ctype_of(DnDType t) { return t == DN_DTYPE_I32 ? "int" : t == DN_DTYPE_I64 ? "i64" : "float"; }

/* The argument and parameters of a buffer at plan location 'loc'. */
static void buffer_param(DnGpuGen *G, DnBufLoc loc, const char *ctype, const char *name)
{
    DN_ASSERT(loc.kind != DN_BUF_NONE);
    dnrt_gpu_arg *a = new_arg(G);
    int kind = loc.kind == DN_BUF_ARENA   ? DNRT_ARG_ARENA
               : loc.kind == DN_BUF_STATE ? DNRT_ARG_STATE
               : loc.kind == DN_BUF_INPUT ? DNRT_ARG_INPUT
                                          : DNRT_ARG_OUTPUT;
    int index = loc.kind == DN_BUF_INPUT ? dn_host_input_slot(G->H->m, G->l->g, loc.index) : loc.index;
    *a = (dnrt_gpu_arg){.kind = kind, .index = index, .a = loc.at_n, .b = loc.at_b};
    dn_text_printf(&G->params, ", GLOBAL u8 *%s_b, i64 %s_o", name, name);
    dn_text_printf(&G->decls, "    GLOBAL %s *%s = (GLOBAL %s *)(%s_b + %s_o);\n", ctype, name, ctype, name, name);
}

void dn_gk_ptr(DnGpuGen *G, int i, const char *ctype, const char *name)
{
    DN_ASSERT(i >= 0 && i < G->l->nptrs);
    const DnLaunchPtr *p = &G->l->ptr[i];
    /* kernels index items contiguously, but for result 0 of an op whose kernels honour the item stride */
    DN_ASSERT(p->loc.stride == 0 || (i == G->op->nin && (dn_op_info[G->op->kind].flags & DN_OPF_STRIDED_OUT)));
    buffer_param(G, p->loc, ctype ? ctype : ctype_of(p->v->dtype), name);
}

void dn_gk_ws(DnGpuGen *G, const char *ctype, const char *name)
{
    buffer_param(G, dn_plan_locate_workspace(G->l->plan, G->l->at), ctype, name);
}

void dn_gk_i64(DnGpuGen *G, const char *name, int64_t a, int64_t b)
{
    *new_arg(G) = (dnrt_gpu_arg){.kind = DNRT_ARG_I64, .a = a, .b = b};
    dn_text_printf(&G->params, ", i64 %s", name);
}

void dn_gk_f32(DnGpuGen *G, const char *name, float v)
{
    *new_arg(G) = (dnrt_gpu_arg){.kind = DNRT_ARG_F32, .f = v};
    dn_text_printf(&G->params, ", float %s", name);
}

void dn_gk_rt(DnGpuGen *G, const char *name, int kind)
{
    DN_ASSERT(kind == DNRT_ARG_STEP || kind == DNRT_ARG_SEED || kind == DNRT_ARG_LR || kind == DNRT_ARG_SEQ);
    *new_arg(G) = (dnrt_gpu_arg){.kind = kind};
    dn_text_printf(&G->params, ", %s %s", kind == DNRT_ARG_LR ? "float" : "i64", name);
}

void dn_gk_line(DnGpuGen *G, const char *fmt, ...)
{
    DN_ASSERT(G->open);
    va_list ap;
    va_start(ap, fmt);
    dn_text_append(&G->body, "    ", 4);
    dn_text_vprintf(&G->body, fmt, ap);
    dn_text_append(&G->body, "\n", 1);
    va_end(ap);
}

void dn_gk_end(DnGpuGen *G, int64_t items_n, int64_t items_b, int group)
{
    DN_ASSERT(G->open && group >= 1 && group <= 1024);
    G->open = false;
    DnText t = {0};
    dn_text_printf(&t, "%s)\n{\n%s%s}\n", G->params.s, G->decls.s, G->body.s);
    G->cur.kernel = dn_gpu_program_add(G->prog, G->base, t.s);
    dn_text_free(&t);
    G->cur.items_n = items_n, G->cur.items_b = items_b, G->cur.group = group;
    G->launch[G->nlaunch++] = G->cur;
}

void dn_gk_guard(DnGpuGen *G, int arg)
{
    DN_ASSERT(G->nlaunch > 0);
    DnGpuLaunchRec *r = &G->launch[G->nlaunch - 1];
    DN_ASSERT(arg >= 0 && arg < r->nargs && r->args[arg].kind <= DNRT_ARG_OUTPUT);
    r->guard = arg;
}

const char *dn_gk_float(DnGpuGen *G, float v)
{
    char buf[48];
    if (v != v)
        snprintf(buf, sizeof buf, "U32_AS_FLOAT(0x7fc00000u)");
    else if (v > 3.4e38f || v < -3.4e38f)
        snprintf(buf, sizeof buf, "%sF32_INF", v < 0 ? "-" : "");
    else
        snprintf(buf, sizeof buf, "%.9ef", (double)v);
    size_t n = strlen(buf) + 1;
    char *p = dn_arena_alloc(&G->H->cx->arena, n);
    return memcpy(p, buf, n);
}

int64_t dn_gk_numel(const DnValue *v) { return dn_shape_numel_static(&v->shape); }

bool dn_gk_has_n(const DnValue *v) { return dn_shape_has_n(&v->shape); }

bool dn_gk_same_place(DnGpuGen *G, int a, int b)
{
    const DnBufLoc *x = &G->l->ptr[a].loc, *y = &G->l->ptr[b].loc;
    return x->kind == y->kind && x->index == y->index && x->at_n == y->at_n && x->at_b == y->at_b;
}

const char *dn_gk_count(DnGpuGen *G, const DnValue *v)
{
    char buf[48];
    if (dn_gk_has_n(v))
        snprintf(buf, sizeof buf, "(n * %lld)", (long long)dn_gk_numel(v));
    else
        snprintf(buf, sizeof buf, "%lld", (long long)dn_gk_numel(v));
    size_t len = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, len), buf, len);
}

void dn_gk_items(const DnValue *v, int64_t *items_n, int64_t *items_b)
{
    *items_n = dn_gk_has_n(v) ? dn_gk_numel(v) : 0;
    *items_b = dn_gk_has_n(v) ? 0 : dn_gk_numel(v);
}

void dn_gk_bcast_index(DnGpuGen *G, const DnValue *x, const DnValue *r, const char *flat, const char *name)
{
    if (x->shape.rank == r->shape.rank && dn_shape_eq(&x->shape, &r->shape)) {
        dn_gk_line(G, "i64 %s = %s;", name, flat);
        return;
    }
    int off = r->shape.rank - x->shape.rank;
    int64_t st[DN_MAX_RANK], s = 1;
    for (int d = r->shape.rank - 1; d >= 0; d--) { /* x's element stride along result axis d (0: broadcast) */
        int xd = d - off;
        int64_t e = xd < 0 ? 1 : x->shape.dim[xd];
        st[d] = xd >= 0 && (e == DN_DIM_N || r->shape.dim[d] == e) ? s : 0;
        if (xd >= 0 && e != DN_DIM_N) s *= e;
    }
    dn_gk_line(G, "i64 %s = 0;", name);
    dn_gk_line(G, "{");
    dn_gk_line(G, "    i64 rest = %s;", flat);
    for (int d = r->shape.rank - 1; d >= 0; d--) {
        int64_t e = r->shape.dim[d];
        if (d == 0 || e == DN_DIM_N) { /* the outermost axis takes what is left */
            if (st[d]) dn_gk_line(G, "    %s += rest * %lld;", name, (long long)st[d]);
            break;
        }
        if (st[d]) dn_gk_line(G, "    %s += (rest %% %lld) * %lld;", name, (long long)e, (long long)st[d]);
        dn_gk_line(G, "    rest /= %lld;", (long long)e);
    }
    dn_gk_line(G, "}");
}

void dn_gk_tree_reduce(DnGpuGen *G, const char *arr, const char *ctype, const char *var, const char *combine,
                       const char *slice, int slices, int stride)
{
    DN_ASSERT(slices >= 1 && (slices & (slices - 1)) == 0 && stride >= 1);
    dn_gk_line(G, "%s[LOCAL_ID] = %s;", arr, var);
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "for (int h_ = %d; h_ > 0; h_ >>= 1) {", slices / 2);
    dn_gk_line(G, "    if (%s < h_) {", slice);
    dn_gk_line(G, "        %s a = %s[LOCAL_ID], b = %s[LOCAL_ID + h_ * %d];", ctype, arr, arr, stride);
    dn_gk_line(G, "        %s[LOCAL_ID] = %s;", arr, combine);
    dn_gk_line(G, "    }");
    dn_gk_line(G, "    BARRIER();");
    dn_gk_line(G, "}");
    if (!strcmp(slice, "LOCAL_ID") && stride == 1) /* one sequence: the whole group */
        dn_gk_line(G, "%s = %s[0];", var, arr);
    else
        dn_gk_line(G, "%s = %s[LOCAL_ID - (%s) * %d];", var, arr, slice, stride);
    dn_gk_line(G, "BARRIER();");
}

const char *dn_gk_double(DnGpuGen *G, double v)
{
    char buf[48];
    if (v != v)
        snprintf(buf, sizeof buf, "(0.0 / 0.0)");
    else if (v > 1.7e308 || v < -1.7e308)
        snprintf(buf, sizeof buf, "%s(double)F32_INF", v < 0 ? "-" : "");
    else
        snprintf(buf, sizeof buf, "%.17e", v);
    size_t n = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, n), buf, n);
}

void dn_gk_ws_per_element(const DnValue *v, int64_t bytes, DnWorkspaceReq *req)
{
    req->bytes_n = dn_gk_has_n(v) ? dn_gk_numel(v) * bytes : 0;
    req->bytes_b = dn_gk_has_n(v) ? 0 : dn_gk_numel(v) * bytes;
}

/* gpu_kernel_reduce.c -- sum_to (the reverse of broadcasting) and
 * check_finite (the training step's guard) on the GPU (ops.def; the CPU
 * kernels kernel_shape.c and kernel_guard.c are the reference).
 *
 * sum_to: x's axes (size-1 axes dropped, neighbours of one kind merged) are
 * either kept (they index y: output o) or summed (reduction index r); a
 * work-group of 256 items holds W outputs x T slices; an item sums r =
 * slice, slice + T, ... of its output, the group adds the slices by a tree
 * in LOCAL memory.  When the innermost axis is summed, the slices of one
 * output are adjacent items (coalesced along r), else the outputs of one
 * slice are (coalesced along o).  A long reduction with few outputs (a conv
 * bias gradient: [N, C, H, W] -> C) runs in two kernels: chunks of r per
 * group into partial sums in the workspace, then one small reduction of
 * the partials per output, in a fixed order.  Float sums, as the CPU.
 *
 * check_finite: kernel 1 splits every checked tensor into chunks of 4096
 * elements, a group per chunk; items test |bits| >= 0x7f800000 (NaN or
 * infinity, without a float compare, as the CPU) and the group ORs its
 * result by a tree into one word per chunk (bit j for tensor j) in the
 * workspace; kernel 2 (one group) ORs those words, picks the code of the
 * lowest tensor with its bit set, lets a non-zero earlier result win and
 * writes y, which the launch marks as the guard the runtime reads.
 */
#include "gpu_internal.h"

#define GROUP    256
#define PER_ITEM 16 /* elements an item takes per chunk */

static int pow2_at_least(int64_t v, int cap)
{
    int p = 1;
    while (p < cap && p < v) p *= 2;
    return p;
}

/* ---- sum_to -------------------------------------------------------------- */

/* Axes of one kind, outermost first; the outermost may hold N (then its
 * extent is n times ext[0]); an offset takes 'rest' at the outermost. */
typedef struct Axes {
    int n;
    int64_t ext[DN_MAX_RANK], stride[DN_MAX_RANK];
    int64_t count; /* static product of the extents */
    bool has_n;
} Axes;

typedef struct SumPlan {
    Axes kept, red;
    bool row;       /* innermost axis summed: slices adjacent */
    int w, t;       /* outputs and slices per group */
    bool two_stage; /* partial sums in the workspace, then a second kernel */
    int64_t tiles;  /* two-stage: groups per chunk = ceil(outputs / w) */
    int64_t chunk;  /* two-stage: r per chunk (when red.has_n: k whole blocks of red.count) */
    int64_t k;      /* two-stage with red.has_n: batch items per chunk */
} SumPlan;

static SumPlan sum_plan(const DnOp *op)
{
    const DnValue *x = op->in[0], *y = op->out[0];
    SumPlan p = {.kept = {.count = 1}, .red = {.count = 1}};
    int r = x->shape.rank, off = r - y->shape.rank, last = -1; /* kind of the previous axis: 0 red, 1 kept */
    int64_t xs[DN_MAX_RANK], s = 1;
    for (int d = r - 1; d >= 0; d--) {
        xs[d] = s;
        if (x->shape.dim[d] != DN_DIM_N) s *= x->shape.dim[d];
    }
    for (int d = 0; d < r; d++) {
        int64_t e = x->shape.dim[d];
        if (e == 1) continue;
        int yd = d - off;
        int kept = yd >= 0 && y->shape.dim[yd] == e;
        Axes *a = kept ? &p.kept : &p.red;
        if (e == DN_DIM_N)
            a->has_n = true;
        else
            a->count *= e;
        if (last == kept) { /* merge with the previous axis: contiguous */
            a->ext[a->n - 1] *= e == DN_DIM_N ? 1 : e;
            a->stride[a->n - 1] = xs[d];
        } else {
            a->ext[a->n] = e == DN_DIM_N ? 1 : e;
            a->stride[a->n++] = xs[d];
        }
        last = kept;
    }
    p.row = last == 0 || last == -1;
    int cap = p.row ? GROUP : 8;
    p.t = p.red.has_n ? cap : pow2_at_least(p.red.count, cap);
    p.w = GROUP / p.t;
    p.tiles = (p.kept.count + p.w - 1) / p.w;
    bool long_red = p.red.has_n ? p.red.count >= 16 : p.red.count > PER_ITEM * p.t;
    p.two_stage = long_red && !p.kept.has_n && p.tiles < GROUP;
    if (p.red.has_n) {
        int64_t k = PER_ITEM * p.t / p.red.count;
        p.k = k > 1 ? k : 1;
        p.chunk = p.k * p.red.count;
    } else {
        p.chunk = PER_ITEM * p.t;
    }
    return p;
}

/* "(n * c)" or "c" */
static const char *count_text(DnGpuGen *G, bool has_n, int64_t c)
{
    char buf[48];
    snprintf(buf, sizeof buf, has_n ? "(n * %lld)" : "%lld", (long long)c);
    size_t len = strlen(buf) + 1;
    return memcpy(dn_arena_alloc(&G->H->cx->arena, len), buf, len);
}

/* i64 name = x's offset of flat index 'flat' over the axes 'a'. */
static void axes_offset(DnGpuGen *G, const Axes *a, const char *flat, const char *name, const char *indent)
{
    dn_gk_line(G, "%si64 %s = 0;", indent, name);
    if (a->n == 0) return;
    dn_gk_line(G, "%s{", indent);
    dn_gk_line(G, "%s    i64 rest = %s;", indent, flat);
    for (int k = a->n - 1; k >= 0; k--) {
        if (k == 0) {
            dn_gk_line(G, "%s    %s += rest * %lld;", indent, name, (long long)a->stride[k]);
            break;
        }
        dn_gk_line(G, "%s    %s += (rest %% %lld) * %lld;", indent, name, (long long)a->ext[k],
                   (long long)a->stride[k]);
        dn_gk_line(G, "%s    rest /= %lld;", indent, (long long)a->ext[k]);
    }
    dn_gk_line(G, "%s}", indent);
}

/* The number of chunks P of the two-stage plan, as a kernel statement. */
static void chunk_count(DnGpuGen *G, const SumPlan *p)
{
    dn_gk_line(G, "i64 P = (%s + %lld) / %lld;", count_text(G, p->red.has_n, p->red.count), (long long)(p->chunk - 1),
               (long long)p->chunk);
}

/* Groups of the two-stage first kernel: tiles x (a bound on) P. */
static void first_stage_groups(const SumPlan *p, int64_t *groups_n, int64_t *groups_b)
{
    if (p->red.has_n) { /* P = ceil(n / k) <= n / k + 1 */
        *groups_n = (p->tiles + p->k - 1) / p->k;
        *groups_b = p->tiles;
    } else {
        *groups_n = 0;
        *groups_b = p->tiles * ((p->red.count + p->chunk - 1) / p->chunk);
    }
}

bool dn_gpu_workspace_sum_to(const DnOp *op, DnWorkspaceReq *req)
{
    SumPlan p = sum_plan(op);
    if (!p.two_stage) return false;
    /* kept.count partials per chunk; chunks: at most n / k + 1, or static */
    if (p.red.has_n) {
        req->bytes_n = 4 * ((p.kept.count + p.k - 1) / p.k);
        req->bytes_b = 4 * p.kept.count;
    } else {
        req->bytes_b = 4 * p.kept.count * ((p.red.count + p.chunk - 1) / p.chunk);
    }
    return true;
}

void dn_gpu_kernel_sum_to(DnGpuGen *G)
{
    SumPlan p = sum_plan(G->op);
    const char *O = count_text(G, p.kept.has_n, p.kept.count), *R = count_text(G, p.red.has_n, p.red.count);
    dn_gk_begin(G, p.two_stage ? "partial" : "");
    dn_gk_ptr(G, 0, "float", "x");
    if (p.two_stage)
        dn_gk_ws(G, "float", "part");
    else
        dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "LOCAL float red[%d];", GROUP);
    if (p.row) {
        dn_gk_line(G, "i64 sl = LOCAL_ID %% %d, oi = LOCAL_ID / %d;", p.t, p.t);
    } else {
        dn_gk_line(G, "i64 sl = LOCAL_ID / %d, oi = LOCAL_ID %% %d;", p.w, p.w);
    }
    if (p.two_stage) {
        chunk_count(G, &p);
        dn_gk_line(G, "i64 tile = GROUP_ID %% %lld, c = GROUP_ID / %lld;", (long long)p.tiles, (long long)p.tiles);
        dn_gk_line(G, "if (c >= P) return; /* the whole group: no barrier yet */");
        dn_gk_line(G, "i64 r0 = c * %lld, r1 = r0 + %lld < %s ? r0 + %lld : %s;", (long long)p.chunk,
                   (long long)p.chunk, R, (long long)p.chunk, R);
    } else {
        dn_gk_line(G, "i64 tile = GROUP_ID, r0 = 0, r1 = %s;", R);
    }
    dn_gk_line(G, "i64 o = tile * %d + oi;", p.w);
    dn_gk_line(G, "int live = o < %s;", O);
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "if (live) {");
    axes_offset(G, &p.kept, "o", "xo", "    ");
    dn_gk_line(G, "    for (i64 r = r0 + sl; r < r1; r += %d) {", p.t);
    axes_offset(G, &p.red, "r", "xr", "        ");
    dn_gk_line(G, "        s += x[xo + xr];");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "}");
    dn_gk_tree_reduce(G, "red", "float", "s", "a + b", "sl", p.t, p.row ? 1 : p.w);
    if (p.two_stage)
        dn_gk_line(G, "if (live && sl == 0) part[c * %s + o] = s;", O);
    else
        dn_gk_line(G, "if (live && sl == 0) y[o] = s;");
    if (!p.two_stage) {
        /* ceil(outputs / w) groups: outputs * t items, rounded up by the launch */
        dn_gk_end(G, p.kept.has_n ? p.kept.count * p.t : 0, p.kept.has_n ? 0 : p.kept.count * p.t, GROUP);
        return;
    }
    int64_t gn, gb;
    first_stage_groups(&p, &gn, &gb);
    dn_gk_end(G, gn * GROUP, gb * GROUP, GROUP);

    /* y[o] = sum over the chunks c of part[c * O + o]: 32 outputs x 8 slices per group */
    dn_gk_begin(G, "");
    dn_gk_ws(G, "float", "part");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "LOCAL float red[%d];", GROUP);
    dn_gk_line(G, "i64 sl = LOCAL_ID / 32, o = GROUP_ID * 32 + LOCAL_ID %% 32;");
    chunk_count(G, &p);
    dn_gk_line(G, "int live = o < %s;", O);
    dn_gk_line(G, "float s = 0.0f;");
    dn_gk_line(G, "if (live) for (i64 c = sl; c < P; c += 8) s += part[c * %s + o];", O);
    dn_gk_tree_reduce(G, "red", "float", "s", "a + b", "sl", 8, 32);
    dn_gk_line(G, "if (live && sl == 0) y[o] = s;");
    dn_gk_end(G, 0, p.kept.count * 8, GROUP);
}

/* ---- check_finite -------------------------------------------------------- */

#define CHUNK (GROUP * PER_ITEM)

/* Chunks of tensor j: at most a * n + b. */
static void chunks_of(const DnValue *x, int64_t *a, int64_t *b)
{
    int64_t c = (dn_gk_numel(x) + CHUNK - 1) / CHUNK;
    *a = dn_gk_has_n(x) ? c : 0;
    *b = dn_gk_has_n(x) ? 0 : c;
}

static int checked(const DnOp *op)
{
    int nc;
    dn_op_ints(op, "codes", &nc);
    return nc;
}

bool dn_gpu_workspace_check_finite(const DnOp *op, DnWorkspaceReq *req)
{
    for (int j = 0; j < checked(op); j++) {
        int64_t a, b;
        chunks_of(op->in[j], &a, &b);
        req->bytes_n += 4 * a, req->bytes_b += 4 * b;
    }
    return true;
}

void dn_gpu_kernel_check_finite(DnGpuGen *G)
{
    const DnOp *op = G->op;
    int nc;
    const int64_t *codes = dn_op_ints(op, "codes", &nc);
    int64_t an = 0, ab = 0;

    /* kernel 1: one word per chunk: bit j when chunk's tensor j holds a NaN or an infinity */
    dn_gk_begin(G, "chunks");
    for (int j = 0; j < nc; j++) {
        char name[16];
        snprintf(name, sizeof name, "x%d", j);
        dn_gk_ptr(G, j, "u32", name);
    }
    dn_gk_ws(G, "u32", "flags");
    dn_gk_line(G, "LOCAL u32 red[%d];", GROUP);
    /* The group's tensor is chosen first (uniform selects), then one loop
     * reads its chunk: a loop per tensor made PoCL's work-group compiler
     * take tens of seconds on eight tensors. */
    dn_gk_line(G, "i64 g = GROUP_ID, first = 0, cnt = 0;");
    dn_gk_line(G, "GLOBAL u32 *x = 0;");
    dn_gk_line(G, "u32 bit = 0;");
    for (int j = 0; j < nc; j++) {
        const char *c = dn_gk_count(G, op->in[j]);
        dn_gk_line(G, "if (!bit) { /* tensor %d: chunks [first, first + P) */", j);
        dn_gk_line(G, "    i64 c = %s, P = (c + %d) / %d;", c, CHUNK - 1, CHUNK);
        dn_gk_line(G, "    if (g < first + P) x = x%d, cnt = c, bit = %uu;", j, 1u << j);
        dn_gk_line(G, "    else first += P;");
        dn_gk_line(G, "}");
        int64_t a, b;
        chunks_of(op->in[j], &a, &b);
        an += a, ab += b;
    }
    dn_gk_line(G, "if (!bit) return; /* the whole group: past the last chunk */");
    dn_gk_line(G, "i64 at = (g - first) * %d + LOCAL_ID;", CHUNK);
    dn_gk_line(G, "u32 m = 0;");
    dn_gk_line(G, "for (int e = 0; e < %d; e++, at += %d)", PER_ITEM, GROUP);
    dn_gk_line(G, "    if (at < cnt) {");
    dn_gk_line(G, "        u32 v = x[at] & 0x7fffffffu; /* |x| as bits */");
    dn_gk_line(G, "        m = v > m ? v : m;");
    dn_gk_line(G, "    }");
    dn_gk_line(G, "u32 bad = m >= 0x7f800000u ? bit : 0u;");
    dn_gk_tree_reduce(G, "red", "u32", "bad", "a | b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID == 0) flags[g] = bad;");
    dn_gk_end(G, an * GROUP, ab * GROUP, GROUP);

    /* kernel 2: OR of the words; the code of the lowest tensor set; an earlier result first */
    dn_gk_begin(G, "result");
    dn_gk_ws(G, "u32", "flags");
    dn_gk_ptr(G, op->nin, "int", "y");
    bool chained = op->nin > nc;
    if (chained) dn_gk_ptr(G, nc, "int", "prev");
    dn_gk_line(G, "LOCAL u32 red[%d];", GROUP);
    dn_gk_line(G, "i64 words = 0;");
    for (int j = 0; j < nc; j++) dn_gk_line(G, "words += (%s + %d) / %d;", dn_gk_count(G, op->in[j]), CHUNK - 1, CHUNK);
    dn_gk_line(G, "u32 bad = 0;");
    dn_gk_line(G, "for (i64 w = LOCAL_ID; w < words; w += %d) bad |= flags[w];", GROUP);
    dn_gk_tree_reduce(G, "red", "u32", "bad", "a | b", "LOCAL_ID", GROUP, 1);
    dn_gk_line(G, "if (LOCAL_ID != 0) return;");
    dn_gk_line(G, "int code = 0;");
    for (int j = nc - 1; j >= 0; j--) dn_gk_line(G, "if (bad & %uu) code = %d;", 1u << j, (int)codes[j]);
    if (chained) dn_gk_line(G, "if (prev[0] != 0) code = prev[0];");
    dn_gk_line(G, "y[0] = code;");
    dn_gk_end(G, 0, GROUP, GROUP);
    dn_gk_guard(G, 1); /* y: the parameter after the workspace */
}

/* gpu_kernel_shape.c -- transpose on the GPU (ops.def: y = permute(x, perm),
 * any rank, any dtype; elements move as 32- or 64-bit words).
 *
 * When the input's last axis stays last, one work item per output element
 * gathers its source: reads and writes both run along the contiguous axis.
 * When it moves, a gather would read with a stride, so the op is a batch of
 * 2-d transposes instead: one work group per 32x32 tile of the plane
 * (input axis a = perm[last], input's last axis) of one slice (an index of
 * every other axis), read along the input's last axis into local memory
 * and written along the output's last axis (input axis a), both coalesced.
 */
#include "gpu_internal.h"

#define LL(v) ((long long)(v))
#define TILE  32

/* Contiguous element strides of 'v' (N counts as extent 1: it is axis 0). */
static void strides(const DnValue *v, int64_t *st)
{
    int64_t s = 1;
    for (int d = v->shape.rank - 1; d >= 0; d--) {
        st[d] = s;
        if (v->shape.dim[d] != DN_DIM_N) s *= v->shape.dim[d];
    }
}

/* One item per output element; the source index by the output's axes. */
static void transpose_gather(DnGpuGen *G, const char *word, const int64_t *perm, const int64_t *xs)
{
    const DnValue *y = G->op->out[0];
    int r = y->shape.rank;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, word, "x");
    dn_gk_ptr(G, 1, word, "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    dn_gk_line(G, "i64 rest = i, src = 0;");
    for (int d = r - 1; d >= 1; d--) {
        dn_gk_line(G, "src += (rest %% %lld) * %lld;", LL(y->shape.dim[d]), LL(xs[perm[d]]));
        dn_gk_line(G, "rest /= %lld;", LL(y->shape.dim[d]));
    }
    if (r > 0) dn_gk_line(G, "src += rest * %lld;", LL(xs[perm[0]]));
    dn_gk_line(G, "y[i] = x[src];");
    int64_t in, ib;
    dn_gk_items(y, &in, &ib);
    dn_gk_end(G, in, ib, 256);
}

/* Tiles of the plane (input axis a, input axis last) per slice. */
static void transpose_tiled(DnGpuGen *G, const char *word, const int64_t *perm, const int64_t *xs, const int64_t *ys)
{
    const DnValue *x = G->op->in[0];
    int r = x->shape.rank, last = r - 1, a = (int)perm[last], inv[DN_MAX_RANK];
    for (int d = 0; d < r; d++) inv[perm[d]] = d;
    int64_t DA = x->shape.dim[a], DL = x->shape.dim[last];
    int64_t TA = (DA + TILE - 1) / TILE, TL = (DL + TILE - 1) / TILE, slices = 1;
    dn_gk_begin(G, "tiled");
    dn_gk_ptr(G, 0, word, "x");
    dn_gk_ptr(G, 1, word, "y");
    dn_gk_line(G, "LOCAL %s tile[%d];", word, TILE * (TILE + 1));
    dn_gk_line(G, "i64 g = GROUP_ID, t = LOCAL_ID;");
    dn_gk_line(G, "i64 tl = g %% %lld;", LL(TL));
    dn_gk_line(G, "g /= %lld;", LL(TL));
    dn_gk_line(G, "i64 ta = g %% %lld;", LL(TA));
    dn_gk_line(G, "g /= %lld;", LL(TA));
    dn_gk_line(G, "i64 xo = 0, yo = 0;");
    int first = -1; /* the outermost other axis takes what is left of g */
    for (int d = 0; d < r && first < 0; d++)
        if (d != a && d != last) first = d;
    for (int d = last - 1; d >= 0; d--) {
        if (d == a || d == last) continue;
        if (d == first) {
            dn_gk_line(G, "xo += g * %lld;", LL(xs[d]));
            dn_gk_line(G, "yo += g * %lld;", LL(ys[inv[d]]));
        } else {
            dn_gk_line(G, "xo += (g %% %lld) * %lld;", LL(x->shape.dim[d]), LL(xs[d]));
            dn_gk_line(G, "yo += (g %% %lld) * %lld;", LL(x->shape.dim[d]), LL(ys[inv[d]]));
            dn_gk_line(G, "g /= %lld;", LL(x->shape.dim[d]));
        }
        if (x->shape.dim[d] != DN_DIM_N) slices *= x->shape.dim[d];
    }
    dn_gk_line(G, "i64 c = t %% %d, r0 = t / %d;", TILE, TILE);
    dn_gk_line(G, "for (i64 k = r0; k < %d; k += %d) {", TILE, 256 / TILE);
    dn_gk_line(G, "    i64 ia = ta * %d + k, il = tl * %d + c;", TILE, TILE);
    dn_gk_line(G, "    if (ia < %lld && il < %lld) tile[k * %d + c] = x[xo + ia * %lld + il];", LL(DA), LL(DL),
               TILE + 1, LL(xs[a]));
    dn_gk_line(G, "}");
    dn_gk_line(G, "BARRIER();");
    dn_gk_line(G, "for (i64 k = r0; k < %d; k += %d) {", TILE, 256 / TILE);
    dn_gk_line(G, "    i64 il = tl * %d + k, ia = ta * %d + c;", TILE, TILE);
    dn_gk_line(G, "    if (ia < %lld && il < %lld) y[yo + il * %lld + ia] = tile[c * %d + k];", LL(DA), LL(DL),
               LL(ys[inv[last]]), TILE + 1);
    dn_gk_line(G, "}");
    int64_t per = slices * TA * TL * 256;
    bool has_n = dn_gk_has_n(x);
    dn_gk_end(G, has_n ? per : 0, has_n ? 0 : per, 256);
}

void dn_gpu_kernel_transpose(DnGpuGen *G)
{
    const DnValue *x = G->op->in[0], *y = G->op->out[0];
    int n, r = y->shape.rank;
    const int64_t *perm = dn_op_ints(G->op, "perm", &n);
    const char *word = dn_dtype_size(y->dtype) == 8 ? "u64" : "u32";
    int64_t xs[DN_MAX_RANK], ys[DN_MAX_RANK];
    strides(x, xs);
    strides(y, ys);
    if (r >= 2 && perm[r - 1] != r - 1)
        transpose_tiled(G, word, perm, xs, ys);
    else
        transpose_gather(G, word, perm, xs);
}

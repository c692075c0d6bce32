/* gpu_kernel_embed.c -- the embedding family on the GPU (ops.def):
 * embedding, embedding_bwd, sequence_mask, causal_bias and sinusoid (one item per element); the CPU kernels
 * (kernel_embed.c) are the reference, and both backends give bit-identical results.
 *
 * embedding: one work item per output element (token s, column d) copies
 * weight[indices[s], d], or writes 0 for an index outside [0, V) (the
 * kernel never reads outside the table).
 *
 * embedding_bwd, deterministic without atomics: the rows of dweight are cut
 * into G = min(num, 32) contiguous bands; work item (band g, column d)
 * zeroes its band of column d, then walks every token in flat index order
 * and adds dy[s, d] to row indices[s] when that row is in its band (not
 * padding_idx).  Every element is the ordered f32 sum the CPU makes.  Cost:
 * G * D items each reading all T tokens' indices (adjacent items share d's
 * neighbours, so the dy reads of a token are coalesced and its index is one
 * broadcast read): O(G * T * D) reads for G * D-way parallelism.
 */
#include <math.h>

#include "gpu_internal.h"

#define LL(v) ((long long)(v))
#define GROUP 256
#define BANDS 32

void dn_gpu_kernel_embedding(DnGpuGen *G)
{
    const DnValue *w = G->op->in[1], *y = G->op->out[0];
    int64_t V = w->shape.dim[0], D = w->shape.dim[1];
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "int", "ix");
    dn_gk_ptr(G, 1, "float", "w");
    dn_gk_ptr(G, 2, "float", "y");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
    dn_gk_line(G, "i64 s = i / %lld, d = i %% %lld;", LL(D), LL(D));
    dn_gk_line(G, "int v = ix[s];");
    dn_gk_line(G, "y[i] = (u32)v < %lldu ? w[(i64)v * %lld + d] : 0.0f;", LL(V), LL(D));
    int64_t a, b;
    dn_gk_items(y, &a, &b);
    dn_gk_end(G, a, b, GROUP);
}

void dn_gpu_kernel_embedding_bwd(DnGpuGen *G)
{
    const DnValue *ix = G->op->in[0];
    int64_t V = dn_op_int(G->op, "num"), pad = dn_op_int(G->op, "padding_idx");
    int64_t D = G->op->out[0]->shape.dim[1];
    int64_t bands = V < BANDS ? V : BANDS, band = (V + bands - 1) / bands;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "int", "ix");
    dn_gk_ptr(G, 1, "float", "dy");
    dn_gk_ptr(G, 2, "float", "dw");
    dn_gk_line(G, "i64 i = GLOBAL_ID;");
    dn_gk_line(G, "if (i >= %lld) return;", LL(bands * D));
    dn_gk_line(G, "i64 d = i %% %lld, lo = (i / %lld) * %lld;", LL(D), LL(D), LL(band));
    dn_gk_line(G, "i64 hi = lo + %lld < %lld ? lo + %lld : %lld;", LL(band), LL(V), LL(band), LL(V));
    dn_gk_line(G, "for (i64 v = lo; v < hi; v++) dw[v * %lld + d] = 0.0f;", LL(D));
    dn_gk_line(G, "for (i64 s = 0; s < %s; s++) {", dn_gk_count(G, ix));
    dn_gk_line(G, "    i64 v = (i64)ix[s];");
    dn_gk_line(G, "    if (v >= lo && v < hi && v != %lld) dw[v * %lld + d] += dy[s * %lld + d];", LL(pad), LL(D),
               LL(D));
    dn_gk_line(G, "}");
    dn_gk_end(G, 0, bands * D, GROUP);
}

void dn_gpu_kernel_sequence_mask(DnGpuGen *G)
{
    const DnValue *y = G->op->out[0];
    int64_t T = y->shape.dim[y->shape.rank - 1];
    int64_t a, b;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "int", "len");
    dn_gk_ptr(G, 1, "float", "y");
    if (DN_DIM_IS_SEQ(T)) { /* [N, T]: t columns, n * t items of the n * bound launched */
        dn_gk_rt(G, "t", DNRT_ARG_SEQ);
        dn_gk_line(G, "i64 i = GLOBAL_ID;");
        dn_gk_line(G, "if (i >= n * t) return;");
        dn_gk_line(G, "y[i] = i %% t < (i64)len[i / t] ? 1.0f : 0.0f;");
        a = DN_SEQ_BOUND(T), b = 0;
    } else {
        dn_gk_line(G, "i64 i = GLOBAL_ID;");
        dn_gk_line(G, "if (i >= %s) return;", dn_gk_count(G, y));
        dn_gk_line(G, "y[i] = i %% %lld < (i64)len[i / %lld] ? 1.0f : 0.0f;", LL(T), LL(T));
        dn_gk_items(y, &a, &b);
    }
    dn_gk_end(G, a, b, GROUP);
}

/* Opens a kernel over every element e of the constant table [rows, cols]
 * of G's op (causal_bias, sinusoid), written to 'y'; end_table closes it. */
static int64_t begin_table(DnGpuGen *G)
{
    int64_t rows = dn_op_int(G->op, "rows"), cols = dn_op_int(G->op, "cols");
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "y");
    dn_gk_line(G, "i64 e = GLOBAL_ID;");
    dn_gk_line(G, "if (e >= %lld) return;", LL(rows * cols));
    return cols;
}

static void end_table(DnGpuGen *G) { dn_gk_end(G, 0, dn_op_int(G->op, "rows") * dn_op_int(G->op, "cols"), GROUP); }

void dn_gpu_kernel_causal_bias(DnGpuGen *G)
{
    int64_t cols = begin_table(G);
    dn_gk_line(G, "y[e] = e %% %lld > e / %lld ? -1.0e9f : 0.0f;", LL(cols), LL(cols));
    end_table(G);
}

/* The table, or with an operand the rows it names (an item per element of
 * y: row pos[s], zeros for a pos outside the table). */
void dn_gpu_kernel_sinusoid(DnGpuGen *G)
{
    if (G->op->nin == 0) {
        int64_t cols = begin_table(G);
        dn_gk_line(G, "i64 p = e / %lld, j = e %% %lld;", LL(cols), LL(cols));
        dn_gk_line(G, "double a = (double)p * exp((double)(j - j %% 2) * %s);",
                   dn_gk_double(G, -log(10000.0) / (double)cols));
        dn_gk_line(G, "y[e] = (float)(j %% 2 ? cos(a) : sin(a));");
        end_table(G);
        return;
    }
    int64_t rows = dn_op_int(G->op, "rows"), cols = dn_op_int(G->op, "cols");
    int64_t count = dn_shape_numel_static(&G->op->in[0]->shape) * cols;
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "int", "pos");
    dn_gk_ptr(G, 1, "float", "y");
    dn_gk_line(G, "i64 e = GLOBAL_ID;");
    dn_gk_line(G, "if (e >= %lld) return;", LL(count));
    dn_gk_line(G, "i64 p = (i64)pos[e / %lld], j = e %% %lld;", LL(cols), LL(cols));
    dn_gk_line(G, "double a = (double)p * exp((double)(j - j %% 2) * %s);",
               dn_gk_double(G, -log(10000.0) / (double)cols));
    dn_gk_line(G, "y[e] = p >= 0 && p < %lld ? (float)(j %% 2 ? cos(a) : sin(a)) : 0.0f;", LL(rows));
    dn_gk_end(G, 0, count, GROUP);
}

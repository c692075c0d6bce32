/* gpu_kernel_cached_attention.c -- cached_attention on the GPU (ops.def),
 * one work item per (batch row, head) doing what an iteration of the CPU
 * kernel does (kernel_cached_attention.c): write this step's k and v into
 * cache row pos, then three passes over the rows 0..pos (the maximum
 * score, the exponentials summed with v accumulated into o, o / sum), in
 * the CPU kernel's order of operations.  A pos outside [0, S) writes
 * nothing and gives o = 0.  A decoding step has a handful of heads, so
 * the launch is small; the step's cost is its O(pos) walk over the cache.
 */
#include "gpu_internal.h"

#define LL(v) ((long long)(v))
#define GROUP 32

/* s = q·k_j over the head's dh features (before the scale), as the CPU kernel sums it */
static void score_line(DnGpuGen *G, int64_t dh, int64_t E)
{
    dn_gk_line(G, "    float s = 0.0f;");
    dn_gk_line(G, "    for (i64 f = 0; f < %lld; f++) s = fmaf(q[qb + f], kc[cb + j * %lld + f], s);", LL(dh), LL(E));
}

void dn_gpu_kernel_cached_attention(DnGpuGen *G)
{
    const DnValue *q = G->op->in[0], *cache = G->op->in[3];
    int64_t B = q->shape.dim[0], E = q->shape.dim[2], S = cache->shape.dim[1];
    int64_t H = dn_op_int(G->op, "heads"), dh = E / H;
    const char *scale = dn_gk_float(G, (float)dn_op_float(G->op, "scale"));
    dn_gk_begin(G, "");
    dn_gk_ptr(G, 0, "float", "q");
    dn_gk_ptr(G, 1, "float", "k");
    dn_gk_ptr(G, 2, "float", "v");
    dn_gk_ptr(G, 3, "float", "kc");
    dn_gk_ptr(G, 4, "float", "vc");
    dn_gk_ptr(G, 5, "int", "pos");
    dn_gk_ptr(G, 6, "float", "o");
    dn_gk_line(G, "i64 it = GLOBAL_ID;");
    dn_gk_line(G, "if (it >= %lld) return;", LL(B * H));
    dn_gk_line(G, "i64 b = it / %lld, h = it %% %lld;", LL(H), LL(H));
    dn_gk_line(G, "i64 p = (i64)pos[b];");
    dn_gk_line(G, "int valid = p >= 0 && p < %lld;", LL(S));
    dn_gk_line(G, "i64 len = valid ? p + 1 : 0;");
    dn_gk_line(G, "i64 qb = b * %lld + h * %lld, cb = b * %lld + h * %lld;", LL(E), LL(dh), LL(S * E), LL(dh));
    dn_gk_line(G, "if (valid) {");
    dn_gk_line(G, "    i64 at = cb + p * %lld;", LL(E));
    dn_gk_line(G, "    for (i64 f = 0; f < %lld; f++) { kc[at + f] = k[qb + f]; vc[at + f] = v[qb + f]; }", LL(dh));
    dn_gk_line(G, "}");
    dn_gk_line(G, "float m = -F32_INF;");
    dn_gk_line(G, "for (i64 j = 0; j < len; j++) {");
    score_line(G, dh, E);
    dn_gk_line(G, "    s *= %s;", scale);
    dn_gk_line(G, "    if (s > m) m = s;");
    dn_gk_line(G, "}");
    dn_gk_line(G, "for (i64 f = 0; f < %lld; f++) o[qb + f] = 0.0f;", LL(dh));
    dn_gk_line(G, "float l = 0.0f;");
    dn_gk_line(G, "for (i64 j = 0; j < len; j++) {");
    score_line(G, dh, E);
    dn_gk_line(G, "    float e = expf(s * %s - m);", scale);
    dn_gk_line(G, "    l += e;");
    dn_gk_line(G, "    for (i64 f = 0; f < %lld; f++) o[qb + f] = fmaf(e, vc[cb + j * %lld + f], o[qb + f]);", LL(dh),
               LL(E));
    dn_gk_line(G, "}");
    dn_gk_line(G, "if (valid) {");
    dn_gk_line(G, "    float inv = 1.0f / l;");
    dn_gk_line(G, "    for (i64 f = 0; f < %lld; f++) o[qb + f] *= inv;", LL(dh));
    dn_gk_line(G, "}");
    dn_gk_end(G, 0, B * H, GROUP);
}
